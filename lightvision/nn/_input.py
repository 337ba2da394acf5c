"""The input checks shared by the blocks of :mod:`lightvision.nn` and the models."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

import torch

_INPUT_CHECKED = contextvars.ContextVar("lightvision_input_checked", default=False)


@contextlib.contextmanager
def input_checked() -> Iterator[None]:
    """Blocks run inside skip the finiteness check of :func:`check_maps`: a model's forward
    checks its input once and runs its blocks inside, so that not every block pays one more
    pass over its feature maps (a block called on its own still checks)."""
    token = _INPUT_CHECKED.set(True)
    try:
        yield
    finally:
        _INPUT_CHECKED.reset(token)


def check_maps(x: Any, channels: int, name: str, *, min_size: int = 1,
               dtype: torch.dtype | None = None) -> None:
    """Raise a clear error unless ``x`` is a finite floating-point (N, ``channels``, H, W)
    tensor with H and W at least ``min_size`` (and of ``dtype``, the block's weights' dtype,
    when given); ``name`` names the input in the message. ``torch.fx`` proxies (a graph being
    traced) pass unchecked; finiteness is not checked again inside :func:`input_checked`.

    Integer and bool maps are refused rather than converted: the blocks compute in floating
    point, and which scale (0..255 or 0..1) an integer image has is the caller's choice."""
    if isinstance(x, torch.fx.Proxy):
        return
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}: convert it "
                        "(e.g. x.float())")
    if dtype is not None and x.dtype != dtype:
        raise TypeError(f"{name} is {x.dtype} but the block's weights are {dtype}: convert the "
                        f"input (x.to({dtype})) or the block (block.to({x.dtype}))")
    if not _INPUT_CHECKED.get():
        check_finite(x, name)
    if x.ndim != 4:
        raise ValueError(f"{name} must be a 4-D input (N, C, H, W), got shape {tuple(x.shape)}")
    if x.shape[1] != channels:
        raise ValueError(f"{name} has {x.shape[1]} channels, expected {channels} "
                         f"(input shape {tuple(x.shape)})")
    if min(x.shape[-2:]) < min_size:
        raise ValueError(f"{name} is {x.shape[-2]}x{x.shape[-1]} pixels, too small: at least "
                         f"{min_size}x{min_size} needed")


def check_finite(x: torch.Tensor, name: str) -> torch.Tensor:
    """``x`` unchanged, or ``ValueError`` naming ``name`` if it holds NaN or infinities.

    Skipped while ``torch.jit.trace``, ``torch.compile`` or ``torch.export`` trace the model
    (a data-dependent check cannot be part of an exported graph)."""
    if (x.is_floating_point() and not (torch.jit.is_tracing() or torch.compiler.is_compiling())
            and not torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return x
