"""The pruner interface and the functional facade.

A pruner is a :class:`~lightvision.compression.CompressionMethod`: configured once
(``L1Pruner(ratio=0.5)``) and called on a model with example inputs (and ``data`` for those
that train, as SSR); it chooses channels per channel group, :func:`~.surgery.prune_channels`
removes them for real, and the :class:`~lightvision.compression.CompressionReport` says what it
cost and saved (``details["kept"]``: kept / original channels per pruned group;
``details["skipped"]``: the groups the pruner left alone with ``layers="auto"`` or ``"all"``,
with the reason).
"""

from __future__ import annotations

import abc
import io
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ..._checks import check_model, check_real
from ...registry import PRUNERS
from ..base import CompressionMethod, CompressionReport, replace_module
from ..serialization import load_compressed, save_compressed
from .surgery import _CONV, _NORM, ChannelGroup, channel_groups, layer_like, prune_channels

__all__ = [
    "Pruner",
    "Selection",
    "filter_matrix",
    "keep_per_division",
    "load_pruned",
    "prune",
    "save_pruned",
]


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


def keep_per_division(scores: torch.Tensor, per_division: int, divisions: int = 1
                      ) -> torch.Tensor:
    """Sorted indices of the ``per_division`` highest ``scores`` in each of ``divisions`` equal
    consecutive blocks of the channels (``scores``: (size,); ``per_division`` is clipped to
    [1, size / divisions]). The one rule every pruner keeps channels by, so that a grouped
    convolution keeps the same number in each of its groups.

    >>> keep_per_division(torch.tensor([3.0, 1.0, 2.0, 0.0, 5.0, 4.0]), 1, divisions=2)
    tensor([0, 4])
    """
    block = scores.numel() // divisions
    per = min(max(1, per_division), block)
    top = scores.reshape(divisions, block).topk(per, dim=1).indices
    return (top + block * torch.arange(divisions)[:, None]).flatten().sort().values


def non_finite_tensor(model: nn.Module) -> str | None:
    """The name of the first parameter or buffer of ``model`` that holds NaN or infinite
    values (None: all finite)."""
    for name, tensor in (*model.named_parameters(), *model.named_buffers()):
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            return name
    return None


def check_finite_weights(model: nn.Module) -> None:
    """``ValueError`` naming the first parameter or buffer of ``model`` that holds NaN or
    infinite values: a pruner scores, sketches and copies filters, so one non-finite weight
    would be kept (or sorted) silently."""
    name = non_finite_tensor(model)
    if name is not None:
        raise ValueError(f"model has non-finite values (NaN or inf) in {name!r}: pruning "
                         "needs finite weights")


def filter_matrix(model: nn.Module, group: ChannelGroup) -> torch.Tensor:
    """The group's filters as rows, (size, fan_in): each producer's weight flattened per
    output channel, producers side by side."""
    return torch.cat([model.get_submodule(p).weight.detach().flatten(1)
                      for p in group.producers], dim=1)


class Pruner(CompressionMethod):
    """Base of the structured pruners: configure once, call on a model.

    Parameters
    ----------
    layers : which channel groups to prune. ``"auto"`` (default): every prunable group made by
        a single ordinary convolution (not joined to others by a residual sum), e.g. all the
        convolutions of a VGG and the block-internal ones of a ResNet, as EPruner and
        FilterSketch prune ResNets; ``"all"``: every prunable group, residual streams and
        hidden linear layers included; or a sequence of group names (see
        :func:`~lightvision.compression.pruning.channel_groups`). With ``"auto"`` and
        ``"all"``, groups the pruner cannot handle (:meth:`unsupported`) are left alone and
        reported in ``details["skipped"]``; named ones raise a ``ValueError``. A model with
        NaN or infinite weights raises a ``ValueError`` naming the tensor.

    Subclasses implement :meth:`select` (choosing per division of the groups a grouped
    convolution splits, with :func:`keep_per_division`) and override :meth:`unsupported` for
    the groups they cannot handle.
    """

    family: ClassVar[str] = "pruning"

    def __init__(self, *, layers: str | Sequence[str] = "auto") -> None:
        if isinstance(layers, str):
            if layers not in ("auto", "all"):
                raise ValueError(f"layers must be 'auto', 'all' or a sequence of group names, "
                                 f"got {layers!r}")
        elif not isinstance(layers, Sequence):
            raise TypeError(f"layers must be 'auto', 'all' or a sequence of group names, got "
                            f"{type(layers).__name__}")
        else:
            wrong = [type(name).__name__ for name in layers if not isinstance(name, str)]
            if wrong:
                raise TypeError(f"layers must be a sequence of group names (str), got items of "
                                f"type {sorted(set(wrong))}")
            if not layers:
                raise ValueError("layers must name at least one group (or be 'auto' / 'all')")
        self.layers = layers if isinstance(layers, str) else tuple(layers)

    def unsupported(self, model: nn.Module, group: ChannelGroup) -> str | None:
        """Why this pruner cannot prune ``group``, a prunable group (None: it can). Such
        groups are left alone with ``layers="auto"`` or ``"all"`` (reported in
        ``details["skipped"]``) and refused with a ``ValueError`` when ``layers`` names them.
        The base handles every group."""
        return None

    def target_groups(self, model: nn.Module, groups: list[ChannelGroup]) -> list[ChannelGroup]:
        """The groups this pruner will prune (see ``layers``)."""
        return self.choose_groups(model, groups)[0]

    def choose_groups(self, model: nn.Module, groups: list[ChannelGroup]
                      ) -> tuple[list[ChannelGroup], dict[str, str]]:
        """The groups this pruner will prune (see ``layers``) and ``{group name: reason}`` for
        those it skips (see :meth:`unsupported`)."""
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
            refused = {g.name: self.unsupported(model, g) for g in chosen}
            refused = {name: why for name, why in refused.items() if why is not None}
            if refused:
                raise ValueError(f"layers cannot be pruned by {type(self).__name__}: " + "; ".join(
                    f"{name}: {why}" for name, why in refused.items()))
            return chosen, {}
        chosen = [g for g in groups if g.prunable and g.size // g.divisions > 1]
        if self.layers == "auto":
            chosen = [g for g in chosen if len(g.producers) == 1
                      and _is_plain_conv(model.get_submodule(g.producers[0]))]
        reasons = {g.name: self.unsupported(model, g) for g in chosen}
        skipped = {name: why for name, why in reasons.items() if why is not None}
        chosen = [g for g in chosen if g.name not in skipped]
        if not chosen:
            raise ValueError(f"the model has no prunable layer for {type(self).__name__} "
                             f"(layers={self.layers!r}); groups and their blockers: "
                             f"{[(g.name, g.blockers) for g in groups]}"
                             + (f"; skipped: {skipped}" if skipped else ""))
        return chosen, skipped

    @abc.abstractmethod
    def select(self, model: nn.Module, groups: list[ChannelGroup]) -> dict[str, Selection]:
        """Choose the channels to keep in each group (``{group name: Selection}``)."""

    def _compress(self, model: nn.Module, example_inputs: tuple[torch.Tensor, ...],
                  data: Any) -> tuple[nn.Module, dict[str, Any]]:
        check_finite_weights(model)
        groups = channel_groups(model, example_inputs)
        targets, skipped = self.choose_groups(model, groups)
        selections = self.select(model, targets)
        new_weights: dict[str, torch.Tensor] = {}
        for s in selections.values():
            new_weights.update(s.new_weights or {})
        pruned = prune_channels(model, {name: s.keep for name, s in selections.items()},
                                example_inputs, new_weights=new_weights, inplace=True)
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
        kept = {name: (len(s.keep), by_name[name].size) for name, s in selections.items()}
        return pruned, {"kept": kept, "skipped": skipped}


def prune(
    model: nn.Module, example_inputs: Any, *, method: str = "l1", data: Any = None,
    inplace: bool = False, latency: bool = False, **config: Any,
) -> tuple[nn.Module, CompressionReport]:
    """Prune ``model`` with the registered pruner ``method`` configured by ``config``.

    >>> import torch, lightvision
    >>> net = lightvision.create_model("small_cnn")
    >>> small, report = lightvision.prune(net, torch.randn(1, 1, 28, 28), method="l1",
    ...                                   ratio=0.5)
    >>> report.params_ratio < 0.5
    True

    Returns the pruned model and its :class:`~lightvision.compression.CompressionReport`.
    ``method`` is one of ``lightvision.registry.PRUNERS.list()``; ``data`` goes to the pruners
    that train (SSR: labelled data, e.g. ``data=(X, y)``); ``inplace`` and ``latency`` as for
    :class:`~lightvision.compression.CompressionMethod`.
    """
    pruner = PRUNERS.get(method, argument="method").create(**config)
    return pruner(model, example_inputs, data=data, inplace=inplace, latency=latency)


def save_pruned(model: nn.Module, path: str | os.PathLike[str]) -> None:
    """Deprecated: use :func:`lightvision.compression.save_compressed`."""
    warnings.warn("save_pruned is deprecated; use lightvision.compression.save_compressed",
                  DeprecationWarning, stacklevel=2)
    save_compressed(model, path)


def _layer_spec(module: nn.Module) -> dict[str, int]:
    """The shape arguments of :func:`~.surgery.layer_like` that rebuild ``module`` (the
    ``lightvision.pruned/1`` files of version 0.1)."""
    if isinstance(module, nn.Linear):
        return {"in_channels": module.in_features, "out_channels": module.out_features}
    if isinstance(module, _NORM):
        return {"num_features": module.num_features}
    return {"in_channels": module.in_channels, "out_channels": module.out_channels,
            "groups": module.groups}


def load_pruned(path: str | os.PathLike[str], model: nn.Module) -> nn.Module:
    """Deprecated: use :func:`lightvision.compression.load_compressed` (``model`` is the
    fresh unpruned architecture, changed in place and returned). Also reads the files that
    ``save_pruned`` wrote in version 0.1 (format ``lightvision.pruned/1``)."""
    warnings.warn("load_pruned is deprecated; use lightvision.compression.load_compressed",
                  DeprecationWarning, stacklevel=2)
    check_model(model)
    start = path.tell() if isinstance(path, io.IOBase) else None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - not a legacy file: load_compressed names the problem
        saved = None
    if not (isinstance(saved, dict) and saved.get("format") == "lightvision.pruned/1"):
        if start is not None:  # a file object: load_compressed reads it from the start again
            path.seek(start)
        return load_compressed(path, model)
    for name, spec in saved["layers"].items():
        try:
            old = model.get_submodule(name)
        except AttributeError as error:
            raise ValueError(f"the model has no layer {name!r} of the saved one") from error
        if _layer_spec(old) != spec:
            replace_module(model, name, layer_like(old, **spec))
    try:
        model.load_state_dict(saved["state_dict"])
    except RuntimeError as error:
        raise ValueError(f"the weights in {path!r} do not fit the rebuilt model (is model "
                         f"the right base architecture?): {error}") from error
    return model


