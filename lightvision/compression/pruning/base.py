"""The pruner interface, its report, the functional facade, fine-tuning and save/load.

A pruner is configured once (``L1Pruner(ratio=0.5)``) and called on a model with example
inputs; it chooses channels per channel group, :func:`~.surgery.prune_channels` removes them
for real, and a :class:`CompressionReport` says what it cost and saved.
"""

from __future__ import annotations

import abc
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ..._checks import check_model, check_real
from ...metrics import count_ops, count_params, model_size_bytes
from ...registry import PRUNERS
from .surgery import _CONV, _NORM, ChannelGroup, channel_groups, layer_like, prune_channels

__all__ = [
    "CompressionReport",
    "Pruner",
    "Selection",
    "filter_matrix",
    "fine_tune",
    "load_pruned",
    "prune",
    "save_pruned",
]


@dataclass(frozen=True)
class CompressionReport:
    """What a compression did: cost before and after, channels kept, time taken.

    Attributes
    ----------
    method : name of the method.
    params, macs, model_bytes : (before, after) trainable parameters, real multiply-accumulates
        of one forward pass on the example inputs, and storage bytes
        (:func:`lightvision.metrics.model_size_bytes`).
    kept : ``{channel group: (kept, original)}`` for every group the method pruned.
    seconds : wall time of the selection and the surgery (fine-tuning excluded).
    """

    method: str
    params: tuple[int, int]
    macs: tuple[int, int]
    model_bytes: tuple[int, int]
    kept: dict[str, tuple[int, int]]
    seconds: float

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
        """Bytes after / before."""
        return self.model_bytes[1] / self.model_bytes[0]

    def __str__(self) -> str:
        rows = [f"{self.method}: {self.seconds:.3f} s",
                f"  params {self.params[0]:,} -> {self.params[1]:,} (x{self.params_ratio:.3f})",
                f"  MACs   {self.macs[0]:,} -> {self.macs[1]:,} (x{self.macs_ratio:.3f})",
                f"  bytes  {self.model_bytes[0]:,} -> {self.model_bytes[1]:,} "
                f"(x{self.bytes_ratio:.3f})"]
        rows += [f"  {name}: {k}/{n}" for name, (k, n) in self.kept.items()]
        return "\n".join(rows)


@dataclass(frozen=True)
class Selection:
    """A pruner's choice for one channel group.

    Attributes
    ----------
    keep : indices of the kept channels (into the group).
    new_weights : ``{layer name: weight}`` for rebuilt layers, shaped as after the pruning.
    reset_norms : re-initialise the batch norms of the group (statistics and affine).
    zero_bias : set the producers' biases of the kept channels to 0.
    """

    keep: torch.Tensor
    new_weights: Mapping[str, torch.Tensor] | None = None
    reset_norms: bool = False
    zero_bias: bool = False


def _check_ratio(ratio: Any, name: str = "ratio") -> float:
    ratio = check_real(ratio, name, strict=False)
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"{name} must be in [0, 1) (the fraction of channels removed), "
                         f"got {ratio}")
    return ratio


def _is_plain_conv(module: nn.Module) -> bool:
    return isinstance(module, _CONV) and module.groups == 1


def per_group(values: Mapping[str, float], default: float, groups: list[ChannelGroup],
              argument: str) -> list[float]:
    """One value per group: ``values[name]`` for the first producer of the group named in
    ``values``, else ``default``. Names that match no group raise a ``KeyError``."""
    unknown = set(values) - {p for g in groups for p in g.producers}
    if unknown:
        raise KeyError(f"{argument} names {sorted(unknown)}, which are not pruned groups: "
                       f"{[g.name for g in groups]}")
    return [next((values[p] for p in g.producers if p in values), default) for g in groups]


def filter_matrix(model: nn.Module, group: ChannelGroup) -> torch.Tensor:
    """The group's filters as rows, (size, fan_in): each producer's weight flattened per
    output channel, producers side by side."""
    return torch.cat([model.get_submodule(p).weight.detach().flatten(1)
                      for p in group.producers], dim=1)


def _costs(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> tuple[int, int, int]:
    return (count_params(model).trainable, count_ops(model, inputs).macs,
            model_size_bytes(model))


class Pruner(abc.ABC):
    """Base of the structured pruners: configure once, call on a model.

    Parameters
    ----------
    layers : which channel groups to prune. ``"auto"`` (default): every prunable group made by
        a single ordinary convolution (not joined to others by a residual sum), e.g. all the
        convolutions of a VGG and the block-internal ones of a ResNet, as EPruner and
        FilterSketch prune ResNets; ``"all"``: every prunable group, residual streams and
        hidden linear layers included; or a sequence of group names (see
        :func:`~lightvision.compression.pruning.channel_groups`).

    Subclasses implement :meth:`select`.
    """

    method: ClassVar[str]

    def __init__(self, *, layers: str | Sequence[str] = "auto") -> None:
        if isinstance(layers, str):
            if layers not in ("auto", "all"):
                raise ValueError(f"layers must be 'auto', 'all' or a sequence of group names, "
                                 f"got {layers!r}")
        elif not all(isinstance(name, str) for name in layers):
            raise TypeError("layers must be 'auto', 'all' or a sequence of group names")
        self.layers = layers if isinstance(layers, str) else tuple(layers)

    def target_groups(self, model: nn.Module, groups: list[ChannelGroup]) -> list[ChannelGroup]:
        """The groups this pruner will prune (see ``layers``)."""
        if isinstance(self.layers, tuple):
            by_name = {p: g for g in groups for p in g.producers}
            missing = [n for n in self.layers if n not in by_name]
            if missing:
                raise KeyError(f"layers {missing} produce no channel group; groups: "
                               f"{[g.name for g in groups]}")
            chosen = list({id(by_name[n]): by_name[n] for n in self.layers}.values())
            blocked = [g for g in chosen if not g.prunable]
            if blocked:
                raise ValueError("layers cannot be pruned: " + "; ".join(
                    f"{g.name}: {', '.join(g.blockers)}" for g in blocked))
            return chosen
        chosen = [g for g in groups if g.prunable and g.size > 1]
        if self.layers == "auto":
            chosen = [g for g in chosen if len(g.producers) == 1
                      and _is_plain_conv(model.get_submodule(g.producers[0]))]
        if not chosen:
            raise ValueError(f"the model has no prunable layer for {type(self).__name__} "
                             f"(layers={self.layers!r}); groups and their blockers: "
                             f"{[(g.name, g.blockers) for g in groups]}")
        return chosen

    @abc.abstractmethod
    def select(self, model: nn.Module, groups: list[ChannelGroup]) -> dict[str, Selection]:
        """Choose the channels to keep in each group (``{group name: Selection}``)."""

    def prune(
        self, model: nn.Module, example_inputs: Any, *, inplace: bool = False
    ) -> tuple[nn.Module, CompressionReport]:
        """Prune ``model``; return the smaller model and the :class:`CompressionReport`.

        ``example_inputs`` (a tensor or tuple the model accepts) fixes the traced shapes and
        the MACs of the report. The input model is left untouched unless ``inplace``.
        """
        check_model(model)
        inputs = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
        before = _costs(model, inputs)
        start = time.perf_counter()
        groups = channel_groups(model, example_inputs)
        targets = self.target_groups(model, groups)
        selections = self.select(model, targets)
        new_weights: dict[str, torch.Tensor] = {}
        for s in selections.values():
            new_weights.update(s.new_weights or {})
        pruned = prune_channels(model, {name: s.keep for name, s in selections.items()},
                                example_inputs, new_weights=new_weights, inplace=inplace)
        by_name = {g.name: g for g in targets}
        with torch.no_grad():
            for name, s in selections.items():
                for layer, role in by_name[name].users:
                    module = pruned.get_submodule(layer)
                    if role == "norm" and s.reset_norms:
                        module.reset_running_stats()
                        module.reset_parameters()
                    elif role == "out" and s.zero_bias and module.bias is not None:
                        module.bias.zero_()
        seconds = time.perf_counter() - start
        after = _costs(pruned, inputs)
        kept = {name: (len(s.keep), by_name[name].size) for name, s in selections.items()}
        report = CompressionReport(self.method, (before[0], after[0]), (before[1], after[1]),
                                   (before[2], after[2]), kept, seconds)
        return pruned, report

    __call__ = prune

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


def prune(
    model: nn.Module, example_inputs: Any, *, method: str = "l1", inplace: bool = False,
    **config: Any,
) -> tuple[nn.Module, CompressionReport]:
    """Prune ``model`` with the registered pruner ``method`` configured by ``config``.

    >>> import torch, lightvision
    >>> net = lightvision.create_model("small_cnn")
    >>> small, report = lightvision.prune(net, torch.randn(1, 1, 28, 28), method="l1",
    ...                                   ratio=0.5)
    >>> report.params_ratio < 0.5
    True

    Returns the pruned model and its :class:`CompressionReport`. ``method`` is one of
    ``lightvision.registry.PRUNERS.list()``.
    """
    return PRUNERS.create(method, **config).prune(model, example_inputs, inplace=inplace)


def fine_tune(model: nn.Module, X: Any, y: Any, **fit_kwargs: Any) -> Any:
    """Fine-tune a pruned model with :func:`lightvision.training.fit`.

    Defaults follow the pruning papers' CIFAR fine-tuning (SGD with momentum 0.9, weight
    decay 5e-4, lr 0.01, cosine schedule), over 10 epochs; any ``fit`` keyword overrides them.
    Returns the training :class:`~lightvision.training.History`.
    """
    from ...training import fit

    settings = {"optimizer": "sgd", "lr": 0.01, "weight_decay": 5e-4, "epochs": 10,
                "progress": False, **fit_kwargs}
    return fit(model, X, y, **settings)


def _layer_spec(module: nn.Module) -> dict[str, int]:
    """The shape arguments of :func:`~.surgery.layer_like` that rebuild ``module``."""
    if isinstance(module, nn.Linear):
        return {"in_channels": module.in_features, "out_channels": module.out_features}
    if isinstance(module, _NORM):
        return {"num_features": module.num_features}
    return {"in_channels": module.in_channels, "out_channels": module.out_channels,
            "groups": module.groups}


def save_pruned(model: nn.Module, path: str | os.PathLike[str]) -> None:
    """Save a pruned model: the shape of every conv, linear and batch-norm layer + weights.

    Reload with :func:`load_pruned` into a fresh instance of the *unpruned* architecture (e.g.
    ``lightvision.create_model(name, **kwargs)``). Only tensors and plain Python values are
    stored, so the file loads with ``torch.load(weights_only=True)``.
    """
    check_model(model)
    layers = {name: _layer_spec(m) for name, m in model.named_modules()
              if isinstance(m, (*_CONV, nn.Linear, *_NORM))}
    torch.save({"format": "lightvision.pruned/1", "layers": layers,
                "state_dict": model.state_dict()}, path)


def load_pruned(path: str | os.PathLike[str], model: nn.Module) -> nn.Module:
    """Rebuild the pruned architecture saved by :func:`save_pruned` on ``model`` (a fresh
    unpruned instance of the same architecture, modified in place and returned) and load the
    weights."""
    check_model(model)
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(saved, dict) or saved.get("format") != "lightvision.pruned/1":
        raise ValueError(f"{path} is not a file written by save_pruned")
    for name, spec in saved["layers"].items():
        try:
            old = model.get_submodule(name)
        except AttributeError as error:
            raise ValueError(f"the model has no layer {name!r} of the saved one") from error
        if _layer_spec(old) != spec:
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child,
                    layer_like(old, **spec))
    model.load_state_dict(saved["state_dict"])
    return model
