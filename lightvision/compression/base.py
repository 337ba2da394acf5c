"""The contract every compression method meets, its report, and the helpers they share.

A compression method (pruning, quantization, factorization, distillation, ...) is configured
once and called on a model::

    method = SomeMethod(**config)          # configuration only, validated here
    small, report = method(model, example_inputs, data=None, inplace=False)

- ``example_inputs`` (a tensor or a tuple of tensors the model accepts) fix the traced shapes
  and the MACs of the report.
- ``data``: a method declares what it needs in :attr:`CompressionMethod.needs_data`: nothing
  (``None``), unlabelled inputs for calibration (``"unlabelled"``) or labelled pairs for
  training (``"labelled"``). It then receives them through ``data`` in any form of
  :func:`lightvision.training.as_batches` (a tuple ``(X, y)``, ``X`` alone, a ``DataLoader``,
  an iterable of batches); without them the call raises a ``TypeError`` naming ``data``.
  Data-free methods ignore ``data``, so one loop can pass the same data to every method.
- The method works on a deep copy unless ``inplace=True``: the input model is left bit for
  bit as it was (parameters, buffers, train/eval mode), and torch's global random state too.
- The :class:`CompressionReport` counts the cost before and after from the models themselves
  (parameters, MACs, stored bits; latency on request) and carries the configuration and a
  family-specific ``details`` mapping; :meth:`CompressionReport.to_dict` gives plain JSON.

:func:`compress` runs any registered method by name (every registry of
:data:`lightvision.registry.COMPRESSION_REGISTRIES`); :func:`fine_tune` and
:func:`replace_module` are the shared helpers; save and load are in
:mod:`lightvision.compression.serialization`.
"""

from __future__ import annotations

import abc
import copy
import inspect
import math
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from .._checks import check_bool, check_model, torch_seed
from .._rng import seeded
from ..registry import COMPRESSION_REGISTRIES

__all__ = [
    "CompressionMethod",
    "CompressionReport",
    "compress",
    "fine_tune",
    "replace_module",
]

_DATA_KINDS = (None, "unlabelled", "labelled")


def _plain(value: Any) -> Any:
    """``value`` with tuples as lists, mappings as dicts and numpy/torch scalars as Python
    numbers, recursively (what ``json.dumps`` takes)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return value.item()
    return repr(value)


@dataclass(frozen=True)
class CompressionReport:
    """What a compression did: its cost before and after, its time, its configuration.

    Every cost is a pair ``(before, after)`` counted on the models themselves by
    :mod:`lightvision.metrics`.

    Attributes
    ----------
    method : registry name of the method.
    family : ``"pruning"``, ``"quantization"``, ...
    config : the method's configuration (its constructor arguments).
    params : parameter elements, trainable and fixed (weights kept as buffers included,
        normalisation statistics excluded): :func:`lightvision.metrics.count_params` ``.total``.
    macs : real multiply-accumulates of one forward pass on the example inputs.
    storage_bits : bits of the stored parameters and buffers
        (:func:`lightvision.metrics.model_size_bits`).
    seconds : wall time of the method, training phases included (fine-tuning afterwards is
        not).
    latency_ms : median batch-1 latency in ms, (before, after), when measured (``latency=True``).
    details : family-specific facts, plain values: kept channels for pruning (``"kept"``:
        ``{channel group: [kept, original]}``); bits per layer, ranks, non-zeros for the
        families to come.
    """

    method: str
    family: str
    config: Mapping[str, Any]
    params: tuple[int, int]
    macs: tuple[int, int]
    storage_bits: tuple[int, int]
    seconds: float
    latency_ms: tuple[float, float] | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def model_bytes(self) -> tuple[int, int]:
        """Stored bytes (before, after): the bits rounded up to whole bytes."""
        return (math.ceil(self.storage_bits[0] / 8), math.ceil(self.storage_bits[1] / 8))

    @property
    def params_ratio(self) -> float:
        """Parameters after / before."""
        return self.params[1] / self.params[0]

    @property
    def macs_ratio(self) -> float:
        """MACs after / before."""
        return self.macs[1] / self.macs[0]

    @property
    def bytes_ratio(self) -> float:
        """Stored bits after / before."""
        return self.storage_bits[1] / self.storage_bits[0]

    @property
    def kept(self) -> dict[str, tuple[int, int]]:
        """Deprecated: ``details["kept"]`` of a pruning report."""
        warnings.warn("CompressionReport.kept is deprecated; use report.details['kept']",
                      DeprecationWarning, stacklevel=2)
        return {name: tuple(pair) for name, pair in self.details["kept"].items()}

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-serialisable values (tuples become lists)."""
        return _plain({name: getattr(self, name) for name in self.__dataclass_fields__})

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> CompressionReport:
        """The report written by :meth:`to_dict`."""
        missing = set(cls.__dataclass_fields__) - set(values) - {"latency_ms", "details"}
        if missing:
            raise ValueError(f"a compression report needs {sorted(missing)}")
        pairs = {k: tuple(values[k]) for k in ("params", "macs", "storage_bits")}
        latency = values.get("latency_ms")
        return cls(method=values["method"], family=values["family"],
                   config=dict(values["config"]), seconds=float(values["seconds"]),
                   latency_ms=None if latency is None else tuple(latency),
                   details=dict(values.get("details", {})), **pairs)

    def __str__(self) -> str:
        rows = [f"{self.method} ({self.family}): {self.seconds:.3f} s",
                f"  params {self.params[0]:,} -> {self.params[1]:,} (x{self.params_ratio:.3f})",
                f"  MACs   {self.macs[0]:,} -> {self.macs[1]:,} (x{self.macs_ratio:.3f})",
                f"  bytes  {self.model_bytes[0]:,} -> {self.model_bytes[1]:,} "
                f"(x{self.bytes_ratio:.3f})"]
        if self.latency_ms is not None:
            rows.append(f"  latency {self.latency_ms[0]:.3f} -> {self.latency_ms[1]:.3f} ms")
        rows += [f"  {name}: {kept}/{size}"
                 for name, (kept, size) in self.details.get("kept", {}).items()]
        return "\n".join(rows)


def _costs(model: nn.Module, inputs: tuple[torch.Tensor, ...], latency: bool):
    from ..metrics import count_ops, count_params, measure_latency, model_size_bits

    ms = measure_latency(model, inputs, repeats=20).median_ms if latency else None
    return (count_params(model).total, count_ops(model, inputs).macs, model_size_bits(model),
            ms)


class CompressionMethod(abc.ABC):
    """Base of every compression method: a configuration, then one call.

    Subclasses set :attr:`family` and :attr:`needs_data`, store every constructor argument
    under its own name (so that :meth:`get_config` and ``repr`` show it), and implement
    :meth:`_compress`. A method with randomness takes ``random_state``; torch's generator is
    seeded from it for the whole call (and the caller's global state restored afterwards).
    """

    #: ``"pruning"``, ``"quantization"``, ...
    family: ClassVar[str]
    #: what the method needs: None (data-free), "unlabelled" or "labelled" (see the module
    #: docstring). A method whose need depends on its configuration overrides it by a property.
    needs_data: ClassVar[str | None] = None

    @property
    def name(self) -> str:
        """The name the method is registered under (its class name if it is not)."""
        for registry in COMPRESSION_REGISTRIES:
            for entry in registry.entries():
                if entry.obj is type(self):
                    return entry.name
        return type(self).__name__

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, as stored: ``type(m)(**m.get_config())`` rebuilds it."""
        names = [p.name for p in inspect.signature(type(self).__init__).parameters.values()
                 if p.name != "self" and p.kind is not p.VAR_KEYWORD]
        return {name: getattr(self, name) for name in names}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    @abc.abstractmethod
    def _compress(self, model: nn.Module, example_inputs: tuple[torch.Tensor, ...],
                  data: Any) -> tuple[nn.Module, dict[str, Any]]:
        """Compress ``model`` (already the copy to change, changed in place and returned) and
        return it with the report's ``details``. ``data`` is a
        :class:`lightvision.training.Batches` (None for a data-free method)."""

    def __call__(
        self, model: nn.Module, example_inputs: Any, *, data: Any = None,
        inplace: bool = False, latency: bool = False,
    ) -> tuple[nn.Module, CompressionReport]:
        """Compress ``model``; return the compressed model and its :class:`CompressionReport`.

        Parameters
        ----------
        model : the network (left untouched unless ``inplace``).
        example_inputs : a tensor or tuple of tensors the model accepts (a few samples).
        data : the data the method needs (:attr:`needs_data`), in any form of
            :func:`lightvision.training.as_batches`; ignored by data-free methods.
        inplace : change ``model`` itself instead of a copy (and return it).
        latency : also measure the median batch-1 latency before and after (20 runs each).
        """
        from ..metrics._validation import check_inputs
        from ..training import as_batches

        check_model(model)
        inputs = check_inputs(example_inputs)
        inplace, latency = check_bool(inplace, "inplace"), check_bool(latency, "latency")
        kind = self.needs_data
        if kind not in _DATA_KINDS:
            raise TypeError(f"{type(self).__name__}.needs_data must be one of {_DATA_KINDS}, "
                            f"got {kind!r}")
        batches = None
        if kind is not None:
            if data is None:
                raise TypeError(
                    f"{type(self).__name__} needs {kind} data: pass data="
                    + ("(X, y) or a DataLoader of (x, y) batches" if kind == "labelled"
                       else "X (inputs), (X, y) or a DataLoader"))
            batches = as_batches(data, name="data", labelled=kind == "labelled")
        target = model if inplace else copy.deepcopy(model)
        before = _costs(target, inputs, latency)
        seed = torch_seed(getattr(self, "random_state", None))
        start = time.perf_counter()
        with seeded(seed):
            compressed, details = self._compress(target, inputs, batches)
        seconds = time.perf_counter() - start
        after = _costs(compressed, inputs, latency)
        report = CompressionReport(
            method=self.name, family=self.family, config=_plain(self.get_config()),
            params=(before[0], after[0]), macs=(before[1], after[1]),
            storage_bits=(before[2], after[2]), seconds=seconds,
            latency_ms=(before[3], after[3]) if latency else None, details=_plain(details))
        return compressed, report


def _entry(method: str):
    if not isinstance(method, str):
        raise TypeError(f"method must be a str, got {type(method).__name__}")
    for registry in COMPRESSION_REGISTRIES:
        if method in registry:
            return registry.get(method)
    known = sorted(n for r in COMPRESSION_REGISTRIES for n in r.list())
    raise ValueError(f"unknown compression method {method!r}; known: {known}")


def compress(
    model: nn.Module, example_inputs: Any, *, method: str, data: Any = None,
    inplace: bool = False, latency: bool = False, **config: Any,
) -> tuple[nn.Module, CompressionReport]:
    """Compress ``model`` with the registered method ``method`` configured by ``config``.

    ``method`` is a name of any registry of :data:`lightvision.registry.COMPRESSION_REGISTRIES`
    (``PRUNERS.list()``, ...); the other arguments are those of :class:`CompressionMethod`.

    >>> import torch, lightvision
    >>> net = lightvision.create_model("small_cnn")
    >>> small, report = lightvision.compress(net, torch.randn(1, 1, 28, 28), method="l1",
    ...                                      ratio=0.5)
    >>> report.family, report.params_ratio < 0.5
    ('pruning', True)
    """
    return _entry(method).create(**config)(model, example_inputs, data=data, inplace=inplace,
                                           latency=latency)


def fine_tune(model: nn.Module, data: Any, y: Any = None, **fit_kwargs: Any) -> Any:
    """Fine-tune a compressed model in place with :func:`lightvision.training.fit`.

    Defaults follow the pruning papers' CIFAR fine-tuning (SGD with momentum 0.9, weight
    decay 5e-4, lr 0.01, cosine schedule), over 10 epochs; any ``fit`` keyword overrides them.
    ``data, y`` as for ``fit``: tensors ``X, y``, or data in any accepted form with ``y`` None.
    Returns the training :class:`~lightvision.training.History`.
    """
    from ..training import fit

    settings = {"optimizer": "sgd", "lr": 0.01, "weight_decay": 5e-4, "epochs": 10,
                "progress": False, **fit_kwargs}
    return fit(model, data, y, **settings)


def replace_module(model: nn.Module, name: str, new: nn.Module) -> nn.Module:
    """Put ``new`` in place of the submodule ``name`` (a dotted path, as in
    ``named_modules``) of ``model``, in place; return the module it replaced.

    The one way compression methods swap layers (pruning surgery, quantized and factorized
    layers). A missing path raises a ``KeyError`` naming it.

    >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
    >>> type(replace_module(net, "1", nn.Identity())).__name__, type(net[1]).__name__
    ('ReLU', 'Identity')
    """
    check_model(model)
    check_model(new, "new")
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty dotted module path, got {name!r}")
    parent_name, _, child = name.rpartition(".")
    try:
        parent = model.get_submodule(parent_name)
        old = parent.get_submodule(child)
    except AttributeError:
        raise KeyError(f"the model has no submodule {name!r}") from None
    setattr(parent, child, new)
    return old
