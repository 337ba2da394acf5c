"""Shared argument checks and context managers for :mod:`lightvision.metrics`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from .._checks import check_model

__all__ = ["check_inputs", "check_model", "eval_mode", "first_sample", "plain_no_grad"]

Inputs = torch.Tensor | tuple[torch.Tensor, ...]


def check_inputs(example_inputs: object, name: str = "example_inputs") -> tuple[torch.Tensor, ...]:
    """Normalise a tensor or a tuple of tensors to a non-empty tuple of batched, finite tensors.

    Raises
    ------
    TypeError
        If ``example_inputs`` is neither a tensor nor a tuple of tensors.
    ValueError
        If a tensor has no batch dimension, a zero batch dimension, or non-finite values.
    """
    if isinstance(example_inputs, torch.Tensor):
        tensors: tuple[torch.Tensor, ...] = (example_inputs,)
    elif (
        isinstance(example_inputs, tuple)
        and example_inputs
        and all(isinstance(t, torch.Tensor) for t in example_inputs)
    ):
        tensors = example_inputs
    else:
        raise TypeError(
            f"{name} must be a torch.Tensor or a non-empty tuple of tensors, "
            f"got {type(example_inputs).__name__}"
        )
    for t in tensors:
        if t.dim() == 0 or t.shape[0] == 0:
            raise ValueError(f"{name} needs a non-zero batch dimension, got shape {tuple(t.shape)}")
        if (t.is_floating_point() or t.is_complex()) and not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    return tensors


def first_sample(inputs: tuple[torch.Tensor, ...], batch_size: int = 1) -> tuple[torch.Tensor, ...]:
    """Repeat the first sample of every input ``batch_size`` times: shapes ``(batch_size, ...)``."""
    return tuple(t[:1].expand(batch_size, *t.shape[1:]).contiguous() for t in inputs)


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put every submodule in eval mode and restore each one's ``training`` flag on exit."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, flag in flags:
            m.training = flag


@contextlib.contextmanager
def plain_no_grad() -> Iterator[None]:
    """``no_grad`` outside inference mode, so aten ops are decomposed the same way every time."""
    with torch.inference_mode(False), torch.no_grad():
        yield
