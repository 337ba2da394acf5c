"""Parameter and operation counts.

Conventions
-----------
* **Parameters.** ``trainable`` is the number of elements of parameters with
  ``requires_grad=True``. ``fixed`` is the number of elements of parameters with
  ``requires_grad=False`` plus buffers (fixed weights kept as buffers, e.g. the {-1, 0, +1}
  weights of a local binary convolution), excluding normalisation running statistics
  (``running_mean``, ``running_var``) and ``num_batches_tracked``: they fold into the previous
  layer at deployment. Tied tensors are counted once.
* **Operations.** Counted with :class:`torch.utils.flop_counter.FlopCounterMode` during one
  ``no_grad`` forward pass in eval mode. One MAC is one multiply-accumulate of a convolution or
  matrix product (``FlopCounterMode`` FLOPs / 2); bias additions, normalisation and
  activation functions are not counted; FLOPs = 2 x MACs.
* **Binary and ternary operations.** The MACs ``FlopCounterMode`` attributes to a module
  registered with :func:`register_cost` (``op_kind="binary"`` or ``"ternary"``) are moved from
  ``macs`` to ``binary_ops`` / ``ternary_ops``. A module's count includes its children's; each
  MAC goes to the nearest enclosing registered module (itself included), so nothing is counted
  twice.
* **Non-zero and dense counts.** ``binary_ops`` / ``ternary_ops`` count only the operations
  whose weight is non-zero: a weight of 0 selects nothing and adds nothing, so a sparse
  {-1, 0, +1} convolution of density d does ``d`` times the dense work (the convolution
  kernel, or the second operand of a matrix product, is the weight; padded borders count as
  in the dense count) [INTERP]. ``dense_binary_ops`` / ``dense_ternary_ops`` count every
  weight position, zeros included (the work of hardware that does not skip zeros). The energy
  estimate (:func:`~lightvision.metrics.estimate_energy`) uses the non-zero counts. Real MACs
  are always dense.
* **Other operations** (``other_ops``) are pooling and mean reductions, added to
  ``FlopCounterMode`` through ``custom_mapping``:

  - max pooling: ``out_numel * (prod(kernel) - 1)`` comparisons;
  - average pooling: ``out_numel * prod(kernel)`` operations (``prod(kernel) - 1`` additions
    and one scaling per output), always the full window, whatever the padding or
    ``count_include_pad`` (an upper bound at padded borders);
  - adaptive average pooling and ``mean``: one addition per input element;
  - adaptive max pooling: ``in_numel - out_numel`` comparisons (exact for non-overlapping
    windows).

References
----------
.. [1] C. Fabre et al., "Metrics for embedded AI vision systems", Sensors 24(16):5446, 2024.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, flop_registry

from .._deprecation import renamed_kwargs
from ._validation import check_inputs, check_model, eval_mode, plain_no_grad

__all__ = ["CostSpec", "OpCount", "ParamCount", "count_ops", "count_params", "register_cost"]

OpKind = Literal["binary", "ternary"]
_OP_KINDS = ("binary", "ternary")
_INSTANCE_ATTR = "_lightvision_cost"
_NORM_STATS = ("running_mean", "running_var")

M = TypeVar("M")


@dataclass(frozen=True)
class ParamCount:
    """Numbers of parameter elements.

    Attributes
    ----------
    trainable : int
        Elements of parameters with ``requires_grad=True``.
    fixed : int
        Elements of frozen parameters and of buffers, normalisation running statistics excluded.
    """

    trainable: int
    fixed: int

    @property
    def total(self) -> int:
        """``trainable + fixed``."""
        return self.trainable + self.fixed


@dataclass(frozen=True)
class OpCount:
    """Operations of one forward pass.

    Attributes
    ----------
    macs : int
        Real-valued multiply-accumulates of convolutions and matrix products.
    binary_ops : int
        Multiply-accumulates of modules registered with ``op_kind="binary"``.
    ternary_ops : int
        Multiply-accumulates of modules registered with ``op_kind="ternary"``.
    other_ops : int
        Pooling comparisons/additions and mean-reduction additions.
    dense_binary_ops, dense_ternary_ops : int
        The same operations counted densely, zero weights included; default (None): equal to
        ``binary_ops`` / ``ternary_ops`` (no zero weight).

    ``binary_ops`` and ``ternary_ops`` skip the operations of zero weights (see the module
    conventions); they are what :func:`~lightvision.metrics.estimate_energy` charges.
    """

    macs: int
    binary_ops: int = 0
    ternary_ops: int = 0
    other_ops: int = 0
    dense_binary_ops: int | None = None
    dense_ternary_ops: int | None = None

    def __post_init__(self) -> None:
        for kind in _OP_KINDS:
            sparse = getattr(self, f"{kind}_ops")
            dense = getattr(self, f"dense_{kind}_ops")
            if dense is None:
                object.__setattr__(self, f"dense_{kind}_ops", sparse)
            elif dense < sparse:
                raise ValueError(f"dense_{kind}_ops ({dense}) must be >= {kind}_ops ({sparse})")

    @property
    def flops(self) -> int:
        """Real floating-point operations, ``2 * macs``."""
        return 2 * self.macs


@dataclass(frozen=True)
class CostSpec:
    """Cost annotations of a module class or instance (see :func:`register_cost`)."""

    op_kind: OpKind | None = None
    storage_bits: Mapping[str, int] | None = None


_REGISTRY: weakref.WeakKeyDictionary[type, CostSpec] = weakref.WeakKeyDictionary()


def register_cost(
    module_cls: M | None = None,
    *,
    op_kind: OpKind | None = None,
    storage_bits: Mapping[str, int] | None = None,
) -> M | Callable[[M], M]:
    """Declare how a module class (or one module instance) is costed.

    Usable as a class decorator, ``@register_cost(op_kind="ternary", storage_bits={"weight": 2})``,
    or called directly on a class or an ``nn.Module`` instance (the instance setting overrides the
    class one).

    Parameters
    ----------
    module_cls : type[nn.Module] or nn.Module, optional
        The class or instance to annotate; omitted when used as ``@register_cost(...)``.
    op_kind : {"binary", "ternary"}, optional
        Count the multiply-accumulates attributed to such modules as binary or ternary
        operations instead of MACs.
    storage_bits : Mapping[str, int], optional
        Bits per element of the module's own tensors, by local name (e.g. ``{"weight": 2}`` for
        a ternary weight packed into 2 bits), used by :func:`~lightvision.metrics.model_size_bytes`.

    Returns
    -------
    The class or instance itself, or a decorator when ``module_cls`` is omitted.
    """
    if op_kind is not None and op_kind not in _OP_KINDS:
        raise ValueError(f"op_kind must be one of {_OP_KINDS} or None, got {op_kind!r}")
    if storage_bits is not None:
        if not isinstance(storage_bits, Mapping):
            raise TypeError(f"storage_bits must be a mapping, got {type(storage_bits).__name__}")
        for key, bits in storage_bits.items():
            if not isinstance(key, str):
                raise TypeError(f"storage_bits keys must be tensor names (str), got {key!r}")
            if isinstance(bits, bool) or not isinstance(bits, int) or bits < 1:
                raise ValueError(f"storage_bits[{key!r}] must be a positive int, got {bits!r}")
        storage_bits = dict(storage_bits)
    if op_kind is None and storage_bits is None:
        raise ValueError("register_cost needs op_kind or storage_bits")
    spec = CostSpec(op_kind=op_kind, storage_bits=storage_bits)

    def apply(target: M) -> M:
        if isinstance(target, nn.Module):
            setattr(target, _INSTANCE_ATTR, spec)
        elif isinstance(target, type) and issubclass(target, nn.Module):
            _REGISTRY[target] = spec
        else:
            raise TypeError(f"module_cls must be an nn.Module subclass or instance, got {target!r}")
        return target

    return apply if module_cls is None else apply(module_cls)


def cost_spec(module: nn.Module) -> CostSpec | None:
    """The :class:`CostSpec` of ``module``: its own setting, else its nearest registered class."""
    spec = getattr(module, _INSTANCE_ATTR, None)
    if isinstance(spec, CostSpec):
        return spec
    for cls in type(module).__mro__:
        if cls in _REGISTRY:
            return _REGISTRY[cls]
    return None


def count_params(model: nn.Module) -> ParamCount:
    """Count trainable and fixed parameter elements (see the module conventions).

    Parameters
    ----------
    model : nn.Module

    Returns
    -------
    ParamCount
    """
    check_model(model)
    trainable = fixed = 0
    seen: set[int] = set()
    for module in model.modules():
        stats = _NORM_STATS if isinstance(module, nn.modules.batchnorm._NormBase) else ()
        for p in module.parameters(recurse=False):
            if id(p) not in seen:
                seen.add(id(p))
                if p.requires_grad:
                    trainable += p.numel()
                else:
                    fixed += p.numel()
        for name, b in module.named_buffers(recurse=False):
            if id(b) not in seen and name != "num_batches_tracked" and name not in stats:
                seen.add(id(b))
                fixed += b.numel()
    return ParamCount(trainable=trainable, fixed=fixed)


def _kernel_numel(kernel_size: list[int], ndim: int) -> int:
    k = list(kernel_size)
    return math.prod(k * ndim if len(k) == 1 else k)


def _max_pool(ndim: int) -> Callable[..., int]:
    def count(x_shape: Any, kernel_size: list[int], *args: Any, out_shape: Any, **kw: Any) -> int:
        return math.prod(out_shape[0]) * (_kernel_numel(kernel_size, ndim) - 1)

    return count


def _avg_pool(ndim: int) -> Callable[..., int]:
    def count(x_shape: Any, kernel_size: list[int], *args: Any, out_shape: Any, **kw: Any) -> int:
        return math.prod(out_shape) * _kernel_numel(kernel_size, ndim)

    return count


def _per_input(x_shape: Any, *args: Any, out_shape: Any, **kwargs: Any) -> int:
    return math.prod(x_shape)


def _adaptive_max(x_shape: Any, *args: Any, out_shape: Any, **kwargs: Any) -> int:
    return math.prod(x_shape) - math.prod(out_shape[0])


_aten = torch.ops.aten
_OTHER_OPS: dict[Any, Callable[..., int]] = {
    _aten.max_pool2d_with_indices: _max_pool(2),
    _aten.max_pool3d_with_indices: _max_pool(3),
    _aten.avg_pool2d: _avg_pool(2),
    _aten.avg_pool3d: _avg_pool(3),
    _aten._adaptive_avg_pool2d: _per_input,
    _aten._adaptive_avg_pool3d: _per_input,
    _aten.mean: _per_input,
    _aten.adaptive_max_pool2d: _adaptive_max,
    _aten.adaptive_max_pool3d: _adaptive_max,
}


# Index of the weight operand of the operations FlopCounterMode counts.
_WEIGHT_ARG = {
    _aten.convolution: 1,
    _aten._convolution: 1,
    _aten.cudnn_convolution: 1,
    _aten.convolution_overrideable: 1,
    _aten._slow_conv2d_forward: 1,
    _aten.mm: 1,
    _aten.addmm: 2,
    _aten.bmm: 1,
    _aten.baddbmm: 2,
}


def _nonzero_formula(op: Any) -> Callable[..., int]:
    """``op``'s FLOP formula scaled by the non-zero fraction of its weight operand.

    Every dense formula of these operations is ``2 * (output positions) * weight.numel()``, so
    ``dense * nnz // numel`` is exact: the FLOPs of the non-zero weights."""
    dense = flop_registry[op]
    index = _WEIGHT_ARG[op]

    def count(*args: Any, out_val: Any = None, **kwargs: Any) -> int:
        flops = dense(*args, out_val=out_val, **kwargs)
        weight = args[index]
        numel = weight.numel()
        return flops * int(torch.count_nonzero(weight)) // numel if numel else flops

    count._get_raw = True  # type: ignore[attr-defined]  # FlopCounterMode: pass the tensors
    return count


_NONZERO_OPS = {**_OTHER_OPS, **{op: _nonzero_formula(op) for op in _WEIGHT_ARG}}


def _tracker_names(model: nn.Module) -> dict[str, nn.Module]:
    """Module names as ``FlopCounterMode``'s module tracker writes them.

    The root is named by its class (``"Sequential"``), a child by its parent's name, a dot and
    its attribute name (``"Sequential.1.conv"``), at any depth (``FlopCounterMode``'s ``depth``
    only limits its printed table). A shared module keeps the last path the walk gives it.
    """
    names: dict[int, str] = {id(model): type(model).__name__}
    modules: dict[int, nn.Module] = {id(model): model}
    seen: set[int] = set()

    def walk(module: nn.Module) -> None:
        seen.add(id(module))
        for child_name, child in module.named_children():
            names[id(child)] = f"{names[id(module)]}.{child_name}"
            modules[id(child)] = child
            if id(child) not in seen:
                walk(child)

    walk(model)
    return {names[key]: modules[key] for key in names}


def _is_inside(name: str, ancestor: str) -> bool:
    return name.startswith(ancestor + ".")


@renamed_kwargs(example_input="example_inputs")
def count_ops(model: nn.Module, example_inputs: torch.Tensor | tuple[torch.Tensor, ...]) -> OpCount:
    """Count the operations of one forward pass (see the module conventions).

    Parameters
    ----------
    model : nn.Module
        Run once in eval mode under ``no_grad``; its training flags are restored.
    example_inputs : Tensor or tuple of Tensor
        Input of shape ``(N, ...)``; counts are for the whole batch ``N``.

    Returns
    -------
    OpCount
        Real MACs (dense), binary and ternary operations of non-zero weights (what the energy
        estimate charges) and their dense counts, other operations.
    """
    check_model(model)
    inputs = check_inputs(example_inputs)
    # Two counters in one pass: the outer one counts the FLOPs of non-zero weights (its
    # formulas run after the inner, dense one has counted, and are not counted themselves).
    nonzero = FlopCounterMode(display=False, custom_mapping=_NONZERO_OPS)
    dense = FlopCounterMode(display=False, custom_mapping=_OTHER_OPS)
    with eval_mode(model), plain_no_grad(), nonzero, dense:
        model(*inputs)
    dense_counts, nonzero_counts = dense.get_flop_counts(), nonzero.get_flop_counts()

    def real_and_other(counts: dict[str, dict[Any, int]], name: str) -> tuple[int, int]:
        ops = counts.get(name, {})
        other = sum(v for k, v in ops.items() if k in _OTHER_OPS)
        return sum(ops.values()) - other, other

    total_flops, other_ops = real_and_other(dense_counts, "Global")
    kinds = {
        name: spec.op_kind
        for name, module in _tracker_names(model).items()
        if name in dense_counts and (spec := cost_spec(module)) is not None
        and spec.op_kind is not None
    }

    def moved(counts: dict[str, dict[Any, int]]) -> dict[str, int]:
        """FLOPs of each op kind: a registered module's, less its nearest registered inner
        modules'."""
        flops = dict.fromkeys(_OP_KINDS, 0)
        for name, kind in kinds.items():
            nearest_inner = [
                inner
                for inner in kinds
                if _is_inside(inner, name)
                and not any(_is_inside(inner, mid) and _is_inside(mid, name) for mid in kinds)
            ]
            flops[kind] += real_and_other(counts, name)[0] - sum(
                real_and_other(counts, inner)[0] for inner in nearest_inner)
        return flops

    dense_moved, nonzero_moved = moved(dense_counts), moved(nonzero_counts)
    return OpCount(
        macs=(total_flops - dense_moved["binary"] - dense_moved["ternary"]) // 2,
        binary_ops=nonzero_moved["binary"] // 2,
        ternary_ops=nonzero_moved["ternary"] // 2,
        other_ops=other_ops,
        dense_binary_ops=dense_moved["binary"] // 2,
        dense_ternary_ops=dense_moved["ternary"] // 2,
    )
