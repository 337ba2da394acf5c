"""Model storage size and activation memory.

Conventions
-----------
* **Model size** is the bits of the actual storage: every parameter and buffer
  (``num_batches_tracked`` excluded; normalisation running statistics included) counts
  ``numel x bits``, where ``bits`` is the dtype width unless the owning module was registered
  with :func:`~lightvision.metrics.register_cost` ``storage_bits`` for that tensor name (a
  ternary weight packed into 2 bits counts 2 bits). Tied tensors count once; the total is
  rounded up to whole bytes.
* **Activations** are measured during one ``no_grad`` forward pass in eval mode by a
  ``TorchDispatchMode`` that records the storage of every op output and of the input
  (parameters and buffers excluded). A storage counts once however many views share it, and
  stops counting when the last tensor using it is freed. The peak is the largest live total,
  so it reflects eager freeing: the caller's input stays live for the whole pass, and a layer's
  input and output are live together. The integer indices returned by
  ``aten.max_pool*_with_indices`` are not counted (an inference kernel does not need them).
  Allocations inside an aten kernel (workspaces) are not seen: the result is an estimate.

References
----------
.. [1] C. Fabre et al., "Metrics for embedded AI vision systems", Sensors 24(16):5446, 2024.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from .._checks import check_int
from .._deprecation import renamed_kwargs
from ._validation import check_inputs, check_model, eval_mode, plain_no_grad
from .counting import cost_spec

__all__ = ["activation_traffic_bytes", "model_size_bits", "model_size_bytes",
           "peak_activation_bytes"]

_WITH_INDICES = {
    torch.ops.aten.max_pool2d_with_indices,
    torch.ops.aten.max_pool3d_with_indices,
    torch.ops.aten.adaptive_max_pool2d,
    torch.ops.aten.adaptive_max_pool3d,
}


def model_size_bytes(model: nn.Module) -> int:
    """Bytes needed to store the model's parameters and buffers (see the module conventions).

    Parameters
    ----------
    model : nn.Module

    Returns
    -------
    int
        ``ceil(model_size_bits(model) / 8)``.
    """
    return math.ceil(model_size_bits(model) / 8)


def model_size_bits(model: nn.Module) -> int:
    """Bits of the actual storage of the model's parameters and buffers (see the module
    conventions): ``numel x bits`` per tensor, tied tensors once."""
    check_model(model)
    total_bits = 0
    seen: set[Any] = set()
    for module in model.modules():
        spec = cost_spec(module)
        custom = spec.storage_bits if spec is not None and spec.storage_bits else {}
        tensors = [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]
        for name, t in tensors:
            key = (t.data_ptr(), t.numel(), t.dtype) if t.data_ptr() else id(t)
            if name == "num_batches_tracked" or key in seen:
                continue
            seen.add(key)
            total_bits += t.numel() * custom.get(name, t.element_size() * 8)
    return total_bits


@dataclass
class _ActivationStats:
    """Live and cumulative activation bits, updated as tensors are created and freed."""

    bits_per_element: int | None
    live_bits: int = 0
    peak_bits: int = 0
    total_bits: int = 0

    def __post_init__(self) -> None:
        self._storages: dict[int, list[int]] = {}  # data_ptr -> [bits, tensor count]
        self._tensors: set[int] = set()
        self._excluded: set[int] = set()

    def exclude(self, t: torch.Tensor) -> None:
        self._excluded.add(t.untyped_storage().data_ptr())

    def add(self, t: torch.Tensor) -> None:
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if id(t) in self._tensors or ptr in self._excluded or storage.nbytes() == 0:
            return
        self._tensors.add(id(t))
        if ptr in self._storages:
            self._storages[ptr][1] += 1
        else:
            elements = storage.nbytes() // t.element_size()
            bits = elements * (self.bits_per_element or t.element_size() * 8)
            self._storages[ptr] = [bits, 1]
            self.live_bits += bits
            self.total_bits += bits
            self.peak_bits = max(self.peak_bits, self.live_bits)
        weakref.finalize(t, self._release, id(t), ptr).atexit = False

    def _release(self, tensor_id: int, ptr: int) -> None:
        self._tensors.discard(tensor_id)
        entry = self._storages[ptr]
        entry[1] -= 1
        if entry[1] == 0:
            self.live_bits -= entry[0]
            del self._storages[ptr]


class _ActivationTracker(TorchDispatchMode):
    def __init__(self, stats: _ActivationStats) -> None:
        super().__init__()
        self.stats = stats

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None
    ) -> Any:
        out = func(*args, **(kwargs or {}))
        produced = out[:1] if func.overloadpacket in _WITH_INDICES else out
        for t in tree_leaves(produced):
            if isinstance(t, torch.Tensor):
                self.stats.add(t)
        return out


def _activation_stats(
    model: nn.Module, example_inputs: object, activation_bits: int | None
) -> _ActivationStats:
    check_model(model)
    inputs = check_inputs(example_inputs)
    if activation_bits is not None:
        check_int(activation_bits, "activation_bits")
    stats = _ActivationStats(activation_bits)
    for t in [*model.parameters(), *model.buffers()]:
        stats.exclude(t)
    for t in inputs:
        stats.add(t)
    with eval_mode(model), plain_no_grad(), _ActivationTracker(stats):
        out = model(*inputs)
    del out
    return stats


@renamed_kwargs(example_input="example_inputs")
def peak_activation_bytes(
    model: nn.Module,
    example_inputs: torch.Tensor | tuple[torch.Tensor, ...],
    *,
    activation_bits: int | None = None,
) -> int:
    """Estimate the peak live activation memory of one inference forward pass.

    Parameters
    ----------
    model : nn.Module
    example_inputs : Tensor or tuple of Tensor
        Input of shape ``(N, ...)``; the estimate is for the whole batch ``N``.
    activation_bits : int, optional
        Bits per activation element (e.g. 8 for an int8 deployment); default the dtype width.

    Returns
    -------
    int
        Peak bytes, ``ceil(peak_bits / 8)``, input included (see the module conventions).
    """
    return math.ceil(_activation_stats(model, example_inputs, activation_bits).peak_bits / 8)


@renamed_kwargs(example_input="example_inputs")
def activation_traffic_bytes(
    model: nn.Module,
    example_inputs: torch.Tensor | tuple[torch.Tensor, ...],
    *,
    activation_bits: int | None = None,
) -> int:
    """Estimate the bytes of all activations produced in one inference forward pass.

    Every distinct storage (the input and each op output, views not duplicated, parameters
    excluded) counts once: the data written, and read back once, by the layers.

    Parameters
    ----------
    model : nn.Module
    example_inputs : Tensor or tuple of Tensor
        Input of shape ``(N, ...)``.
    activation_bits : int, optional
        Bits per activation element; default the dtype width.

    Returns
    -------
    int
        ``ceil(total_bits / 8)``.
    """
    return math.ceil(_activation_stats(model, example_inputs, activation_bits).total_bits / 8)
