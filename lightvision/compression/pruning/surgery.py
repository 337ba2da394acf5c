"""Structural surgery: remove output channels for real and rewire everything that uses them.

:func:`channel_groups` traces a model with ``torch.fx`` and finds the *channel groups*: sets of
channels that must be removed together because one layer produces them and others read them
(a convolution's filters, its batch norm, the next convolution's input channels, a depthwise
convolution in between, the linear layer after a flatten, every branch of a residual sum, the
slices of a concatenation). :func:`prune_channels` keeps the requested channels of some groups
and returns a model whose layers are simply smaller: ordinary ``nn.Conv2d`` / ``nn.Linear`` /
``nn.BatchNorm`` modules with fewer channels, no masks, no index gathers at run time.

Supported layers: ``nn.Conv1d/2d`` (plain, grouped, depthwise), ``nn.Linear``,
``nn.BatchNorm1d/2d``, element-wise activations, dropout, pooling, ``nn.Identity``,
``nn.Flatten`` / ``flatten`` / ``view`` / ``reshape`` to (N, -1), global means, element-wise
``+ - *`` between tensors, and ``torch.cat`` along the channels. Any other operation that reads
a group's channels (a custom layer traced into functional calls, a LayerNorm, a reshape of the
channels, the model's output) *blocks* that group: it cannot be pruned, and asking for it
raises an error naming the blocking operations.

>>> import torch
>>> from torch import nn
>>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 4, 3))
>>> x = torch.randn(2, 3, 9, 9)
>>> [(g.name, g.size, g.prunable) for g in channel_groups(net, x)]
[('0', 8, True), ('3', 4, False)]
>>> small = prune_channels(net, {"0": [0, 2, 5]}, x)
>>> small[0].out_channels, small[1].num_features, small[3].in_channels
(3, 3, 3)
"""

from __future__ import annotations

import copy
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx
from torch import nn
from torch.fx.passes.shape_prop import ShapeProp

from ..._checks import check_model
from ...metrics._validation import check_inputs
from ..base import replace_module

__all__ = ["ChannelGroup", "channel_groups", "prune_channels"]

_CONV = (nn.Conv1d, nn.Conv2d)
_NORM = (nn.BatchNorm1d, nn.BatchNorm2d)
_PASS_MODULES = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh,
    nn.Hardswish, nn.Hardsigmoid, nn.Mish, nn.PReLU, nn.Dropout, nn.Dropout1d, nn.Dropout2d,
    nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.Identity, nn.Upsample,
    nn.ZeroPad2d, nn.ReplicationPad2d, nn.ReflectionPad2d, nn.ConstantPad2d,
)
_PASS_FUNCTIONS = {
    torch.relu, torch.sigmoid, torch.tanh, torch.nn.functional.relu,
    torch.nn.functional.relu6, torch.nn.functional.leaky_relu, torch.nn.functional.elu,
    torch.nn.functional.gelu, torch.nn.functional.silu, torch.nn.functional.hardswish,
    torch.nn.functional.sigmoid, torch.nn.functional.dropout, torch.nn.functional.max_pool2d,
    torch.nn.functional.avg_pool2d, torch.nn.functional.adaptive_avg_pool2d,
    torch.nn.functional.adaptive_max_pool2d, torch.nn.functional.interpolate,
}
_PASS_METHODS = {"relu", "sigmoid", "tanh", "contiguous", "clone", "detach", "float", "to"}
_ELEMENTWISE = {operator.add, operator.sub, operator.mul, operator.iadd, operator.imul,
                torch.add, torch.sub, torch.mul}
_ELEMENTWISE_METHODS = {"add", "sub", "mul", "add_", "mul_"}
_FLATTEN_METHODS = {"flatten", "view", "reshape"}


@dataclass(frozen=True)
class _Segment:
    """Channels ``start .. start + length`` of a space, each ``repeat`` times in a row (a
    flatten of ``repeat`` spatial positions per channel)."""

    space: int
    start: int
    length: int
    repeat: int = 1


@dataclass
class _Use:
    module: str
    role: str  # "out" (conv/linear filters), "norm", "depthwise", "in", "group_in", "group_out"
    layout: tuple[_Segment, ...]


@dataclass
class ChannelGroup:
    """Channels that are removed together.

    Attributes
    ----------
    name : qualified name of the first layer that produces the channels (the key to pass to
        :func:`prune_channels`).
    size : number of channels.
    producers : layers whose filters make the channels (convolutions, linear layers).
    users : every layer touched by removing the channels, with its role.
    prunable : False when an unsupported operation reads the channels or they are the model's
        input or output.
    blockers : descriptions of what prevents pruning.
    slots : ``{(layer, role): (offset, repeat)}`` for the users that see all the group's
        channels as one run: along the layer's channel (or feature) axis, channel c sits at
        ``offset + c * repeat`` and is repeated ``repeat`` times (a flatten of ``repeat``
        positions).
    """

    name: str
    size: int
    producers: tuple[str, ...]
    users: tuple[tuple[str, str], ...]
    prunable: bool
    blockers: tuple[str, ...] = field(default=())
    slots: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)


class _Analysis:
    """Channel spaces of every traced value, their unions and their users."""

    def __init__(self, model: nn.Module, example_inputs: tuple[torch.Tensor, ...]) -> None:
        self.model = model
        self.graph_module = torch.fx.symbolic_trace(model)
        ShapeProp(self.graph_module).propagate(*example_inputs)
        self.parent: list[int] = []
        self.sizes: list[int] = []
        self.producer: dict[int, str] = {}
        self.blockers: dict[int, list[str]] = {}
        self.uses: list[_Use] = []
        self.calls: dict[str, int] = {}
        layouts: dict[torch.fx.Node, tuple[_Segment, ...] | None] = {}
        for node in self.graph_module.graph.nodes:
            layouts[node] = self._visit(node, layouts)
        for name, count in self.calls.items():
            if count > 1:  # a module applied twice: its channels are shared, do not touch them
                for use in self.uses:
                    if use.module == name:
                        self._block(use.layout, f"{name} (module called {count} times)")

    # -- spaces ---------------------------------------------------------------------------
    def _new_space(self, size: int, producer: str | None = None) -> int:
        self.parent.append(len(self.parent))
        self.sizes.append(size)
        if producer is not None:
            self.producer[len(self.parent) - 1] = producer
        return len(self.parent) - 1

    def find(self, space: int) -> int:
        while self.parent[space] != space:
            self.parent[space] = self.parent[self.parent[space]]
            space = self.parent[space]
        return space

    def _union(self, a: int, b: int) -> None:
        a, b = self.find(a), self.find(b)
        if a != b:
            self.parent[b] = a
            self.blockers.setdefault(a, []).extend(self.blockers.pop(b, []))

    def _block(self, layout: tuple[_Segment, ...] | None, why: str) -> None:
        for segment in layout or ():
            self.blockers.setdefault(self.find(segment.space), []).append(why)

    # -- graph ------------------------------------------------------------------------------
    def _shape(self, node: Any) -> tuple[int, ...] | None:
        meta = node.meta.get("tensor_meta") if isinstance(node, torch.fx.Node) else None
        return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None

    def _fresh(self, node: torch.fx.Node, why: str) -> tuple[_Segment, ...] | None:
        """A blocked layout for the output of an operation we do not follow."""
        shape = self._shape(node)
        if shape is None or len(shape) < 2:
            return None
        space = self._new_space(shape[1])
        self.blockers[space] = [why]
        return (_Segment(space, 0, shape[1]),)

    def _visit(self, node: torch.fx.Node, layouts: dict) -> tuple[_Segment, ...] | None:
        tensor_args = [a for a in node.all_input_nodes if layouts.get(a) is not None]
        if node.op == "placeholder":
            return self._fresh(node, "the model's input")
        if node.op == "output":
            for arg in node.all_input_nodes:
                self._block(layouts.get(arg), "the model's output")
            return None
        if node.op == "get_attr":
            return None
        if node.op == "call_module":
            return self._visit_module(node, layouts)
        what = node.target if isinstance(node.target, str) else getattr(
            node.target, "__name__", str(node.target))
        first = layouts.get(node.args[0]) if node.args and isinstance(
            node.args[0], torch.fx.Node) else None
        if node.op == "call_function" and node.target in _PASS_FUNCTIONS or (
                node.op == "call_method" and node.target in _PASS_METHODS):
            if len(tensor_args) <= 1:
                return first
        if node.op == "call_function" and node.target in _ELEMENTWISE or (
                node.op == "call_method" and node.target in _ELEMENTWISE_METHODS):
            return self._elementwise(node, [layouts[a] for a in tensor_args], what)
        if node.op == "call_function" and node.target is torch.cat:
            return self._cat(node, layouts, what)
        if (node.op == "call_method" and node.target in _FLATTEN_METHODS
                or node.op == "call_function" and node.target is torch.flatten):
            flat = self._flatten(node, first)
            if flat is not None:
                return flat
        if node.op == "call_method" and node.target == "mean" or (
                node.op == "call_function" and node.target is torch.mean):
            reduced = self._mean(node, first)
            if reduced is not None:
                return reduced
        if node.op == "call_method" and node.target in ("size", "dim") or (
                node.op == "call_function" and node.target is getattr
                and node.args[1] in ("shape", "dtype", "device", "ndim")):
            return None
        for arg in tensor_args:
            self._block(layouts[arg], f"{what} ({node.name})")
        return self._fresh(node, f"output of {what} ({node.name})")

    def _visit_module(self, node: torch.fx.Node, layouts: dict) -> tuple[_Segment, ...] | None:
        name = str(node.target)
        module = self.graph_module.get_submodule(name)
        self.calls[name] = self.calls.get(name, 0) + 1
        source = layouts.get(node.args[0]) if node.args else None
        if isinstance(module, _CONV) and source is not None:
            if module.groups == 1:
                self.uses.append(_Use(name, "in", source))
                return self._produce(name, module.out_channels, "out")
            if module.groups == module.in_channels == module.out_channels:
                self.uses.append(_Use(name, "depthwise", source))
                return source
            self.uses.append(_Use(name, "group_in", source))
            return self._produce(name, module.out_channels, "group_out")
        if isinstance(module, nn.Linear) and source is not None:
            self.uses.append(_Use(name, "in", source))
            return self._produce(name, module.out_features, "out")
        if isinstance(module, _NORM) and source is not None:
            self.uses.append(_Use(name, "norm", source))
            return source
        if isinstance(module, _PASS_MODULES):
            return source
        if isinstance(module, nn.Flatten) and module.end_dim == -1 and module.start_dim == 1:
            flat = self._flatten(node, source)
            if flat is not None:
                return flat
        kind = type(module).__name__
        for arg in node.all_input_nodes:
            self._block(layouts.get(arg), f"{name} ({kind})")
        return self._fresh(node, f"output of {name} ({kind})")

    def _produce(self, name: str, size: int, role: str) -> tuple[_Segment, ...]:
        layout = (_Segment(self._new_space(size, name), 0, size),)
        self.uses.append(_Use(name, role, layout))
        return layout

    def _elementwise(self, node: torch.fx.Node, args: list, what: str):
        others = [a for a in node.all_input_nodes if len(self._shape(a) or ()) >= 2]
        if len(others) > len(args):  # e.g. a (1, C, 1, 1) parameter: its C would need pruning
            for layout in args:
                self._block(layout, f"{what} ({node.name}) with a tensor we do not follow")
            return self._fresh(node, f"output of {what} ({node.name})")
        if len(args) == 1:
            return args[0]
        shapes = [self._shape(a) for a in node.all_input_nodes]
        a, b = args[0], args[1]
        aligned = (len(args) == 2 and len(a) == len(b) and shapes[0] == shapes[1] and all(
            (x.start, x.length, x.repeat) == (y.start, y.length, y.repeat)
            and self.sizes[x.space] == self.sizes[y.space] for x, y in zip(a, b, strict=True)))
        if not aligned:
            for layout in args:
                self._block(layout, f"{what} ({node.name}) of unaligned channels")
            return self._fresh(node, f"output of {what} ({node.name})")
        for x, y in zip(a, b, strict=True):
            self._union(x.space, y.space)
        return a

    def _cat(self, node: torch.fx.Node, layouts: dict, what: str):
        tensors = node.args[0] if node.args else node.kwargs.get("tensors")
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
        parts = [layouts.get(t) for t in tensors]
        ndim = len(self._shape(node) or ())
        if ndim >= 2 and dim % ndim == 1 and all(
                p is not None and all(s.repeat == 1 for s in p) for p in parts):
            return tuple(s for p in parts for s in p)
        for part in parts:
            self._block(part, f"{what} ({node.name}) along dim {dim}")
        return self._fresh(node, f"output of {what} ({node.name})")

    def _flatten(self, node: torch.fx.Node, source):
        """(N, C, *spatial) -> (N, C * prod(spatial)): each channel becomes a run of features."""
        shape_in, shape_out = self._shape(node.args[0]), self._shape(node)
        if source is None or shape_in is None or shape_out is None or len(shape_out) != 2:
            return None
        if shape_out[0] != shape_in[0] or any(s.repeat != 1 for s in source):
            return None
        spatial = 1
        for size in shape_in[2:]:
            spatial *= size
        if shape_out[1] != shape_in[1] * spatial:
            return None
        return tuple(_Segment(s.space, s.start, s.length, spatial) for s in source)

    def _mean(self, node: torch.fx.Node, source):
        shape_in, shape_out = self._shape(node.args[0]), self._shape(node)
        if source is None or shape_in is None or shape_out is None or len(shape_in) < 3:
            return None
        return source if shape_out[:2] == shape_in[:2] else None

    # -- groups -----------------------------------------------------------------------------
    def groups(self) -> dict[int, ChannelGroup]:
        members: dict[int, list[tuple[str, str]]] = {}
        slots: dict[int, dict[tuple[str, str], tuple[int, int] | None]] = {}
        for use in self.uses:
            offset = 0
            for segment in use.layout:
                root = self.find(segment.space)
                key = (use.module, use.role)
                if key not in members.setdefault(root, []):
                    members[root].append(key)
                whole = segment.start == 0 and segment.length == self.sizes[root]
                seen = slots.setdefault(root, {})
                seen[key] = (offset, segment.repeat) if whole and key not in seen else None
                offset += segment.length * segment.repeat
        result = {}
        for space in sorted(self.producer):
            root = self.find(space)
            if root in result:
                continue
            producers = tuple(self.producer[s] for s in sorted(self.producer)
                              if self.find(s) == root)
            blockers = tuple(dict.fromkeys(self.blockers.get(root, ())))
            result[root] = ChannelGroup(
                name=producers[0], size=self.sizes[root], producers=producers,
                users=tuple(members.get(root, ())), prunable=not blockers, blockers=blockers,
                slots={k: v for k, v in slots.get(root, {}).items() if v is not None})
        return result


def _analyse(model: nn.Module, example_inputs: Any) -> _Analysis:
    check_model(model)
    inputs = check_inputs(example_inputs)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return _Analysis(model, inputs)
    except torch.fx.proxy.TraceError as error:
        raise ValueError(f"the model cannot be traced by torch.fx: {error}") from error
    finally:
        model.train(was_training)


def channel_groups(model: nn.Module, example_inputs: Any) -> list[ChannelGroup]:
    """The channel groups of ``model``, in the order of their first producer in the graph.

    Parameters
    ----------
    model : an ``nn.Module`` that ``torch.fx.symbolic_trace`` can trace.
    example_inputs : a tensor (or tuple of tensors) the model accepts; it fixes the shapes
        (e.g. the spatial size behind a flatten). The model is run once, in eval mode.

    Returns
    -------
    list of :class:`ChannelGroup`; prunable or not (see ``blockers``).
    """
    analysis = _analyse(model, example_inputs)
    return list(analysis.groups().values())


def _kept_indices(keep: Any, group: ChannelGroup) -> torch.Tensor:
    try:
        indices = torch.as_tensor(keep, dtype=torch.long).flatten()
    except (TypeError, ValueError, RuntimeError) as error:
        raise TypeError(f"keep[{group.name!r}] must be a sequence of channel indices") from error
    if indices.numel() == 0:
        raise ValueError(f"keep[{group.name!r}] is empty: a layer cannot be pruned to zero width")
    if indices.min() < 0 or indices.max() >= group.size:
        raise ValueError(f"keep[{group.name!r}] has indices outside [0, {group.size})")
    unique = torch.unique(indices)  # sorted: channel order is preserved
    if unique.numel() != indices.numel():
        raise ValueError(f"keep[{group.name!r}] has repeated indices")
    return unique


def _index(layout: tuple[_Segment, ...], kept: dict[int, torch.Tensor], find) -> torch.Tensor:
    """Positions, along the channel/feature axis of a tensor with ``layout``, that remain."""
    parts, offset = [], 0
    for segment in layout:
        channels = kept.get(find(segment.space))
        if channels is None:
            channels = torch.arange(segment.start, segment.start + segment.length)
        else:
            inside = (channels >= segment.start) & (channels < segment.start + segment.length)
            channels = channels[inside]
        local = channels - segment.start
        if segment.repeat > 1:
            local = (local[:, None] * segment.repeat
                     + torch.arange(segment.repeat)[None, :]).flatten()
        parts.append(local + offset)
        offset += segment.length * segment.repeat
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long)


def layer_like(old: nn.Module, **shape: int) -> nn.Module:
    """A new conv / linear / batch-norm layer like ``old`` (same hyperparameters, device and
    dtype, fresh weights) with another shape: ``in_channels``, ``out_channels`` (features for
    a linear layer) and ``groups``, or ``num_features`` for a batch norm."""
    if isinstance(old, _NORM):
        new = type(old)(shape["num_features"], eps=old.eps, momentum=old.momentum,
                        affine=old.affine, track_running_stats=old.track_running_stats)
        reference = next(iter(old.state_dict().values()), None)
    elif isinstance(old, nn.Linear):
        new = nn.Linear(shape["in_channels"], shape["out_channels"], bias=old.bias is not None)
        reference = old.weight
    else:
        new = type(old)(
            shape["in_channels"], shape["out_channels"], old.kernel_size, stride=old.stride,
            padding=old.padding, dilation=old.dilation, groups=shape.get("groups", 1),
            bias=old.bias is not None, padding_mode=old.padding_mode)
        reference = old.weight
    if reference is not None:
        new = new.to(device=reference.device,
                     dtype=reference.dtype if reference.is_floating_point() else None)
    return new.train(old.training)


def _group_slices(index: torch.Tensor, size: int, groups: int, name: str, what: str):
    """Split kept positions of a grouped conv's channels by group; equal counts required."""
    per = size // groups
    by_group = [index[(index >= g * per) & (index < (g + 1) * per)] - g * per
                for g in range(groups)]
    counts = {len(part) for part in by_group}
    if len(counts) != 1 or 0 in counts:
        raise ValueError(
            f"{name} is a grouped convolution ({groups} groups): its {what} channels must keep "
            f"the same non-zero number in every group, got {[len(p) for p in by_group]}")
    return by_group


def _rebuild(module: nn.Module, name: str, out_idx, in_idx, channel_idx) -> nn.Module:
    """A new layer holding only the kept weights."""
    if isinstance(module, _NORM):
        new = layer_like(module, num_features=len(channel_idx))
        new.load_state_dict({k: (v[channel_idx] if v.ndim == 1 else v)
                             for k, v in module.state_dict().items()})
        return new
    weight = module.weight.detach()
    if isinstance(module, nn.Linear):
        new = layer_like(module, in_channels=len(in_idx), out_channels=len(out_idx))
        new.weight.data.copy_(weight[out_idx][:, in_idx])
    elif module.groups == 1:
        new = layer_like(module, in_channels=len(in_idx), out_channels=len(out_idx))
        new.weight.data.copy_(weight[out_idx][:, in_idx])
    elif channel_idx is not None:  # depthwise
        out_idx = channel_idx
        new = layer_like(module, in_channels=len(out_idx), out_channels=len(out_idx),
                         groups=len(out_idx))
        new.weight.data.copy_(weight[out_idx])
    else:
        g = module.groups
        outs = _group_slices(out_idx, module.out_channels, g, name, "output")
        ins = _group_slices(in_idx, module.in_channels, g, name, "input")
        per_out = module.out_channels // g
        rows = [weight[o + k * per_out][:, ins[k]] for k, o in enumerate(outs)]
        new = layer_like(module, in_channels=g * len(ins[0]), out_channels=g * len(outs[0]),
                         groups=g)
        new.weight.data.copy_(torch.cat(rows))
        out_idx = torch.cat([o + k * per_out for k, o in enumerate(outs)])
    if module.bias is not None:
        new.bias.data.copy_(module.bias.detach()[out_idx])
    return new


def prune_channels(
    model: nn.Module,
    keep: Mapping[str, Sequence[int] | torch.Tensor],
    example_inputs: Any,
    *,
    new_weights: Mapping[str, torch.Tensor] | None = None,
    inplace: bool = False,
) -> nn.Module:
    """Remove output channels for real and rewire every layer that uses them.

    Parameters
    ----------
    model : the model (``torch.fx``-traceable).
    keep : ``{group name: indices of the channels to keep}``; a group is named by any of its
        producers (see :func:`channel_groups`). Unnamed groups keep all their channels. Kept
        channels stay in their original order.
    example_inputs : a tensor (or tuple) the model accepts; used to trace the shapes, and run
        through the result as a check.
    new_weights : ``{layer name: weight}`` replacing the sliced weight of a rebuilt layer (e.g.
        sketched filters); its shape must be the new layer's.
    inplace : modify ``model`` itself (default: a deep copy is pruned, ``model`` is untouched).

    Returns
    -------
    The pruned model: the same class, with its pruned layers replaced by smaller ordinary
    layers. Batch-norm statistics and biases of kept channels are kept.

    Raises
    ------
    KeyError for a name that is not a group's producer; ValueError for a blocked group (the
    message names the blockers), empty or out-of-range indices, unbalanced grouped
    convolutions or a ``new_weights`` of the wrong shape.
    """
    if not isinstance(keep, Mapping):
        raise TypeError(f"keep must be a mapping {{group name: indices}}, got {type(keep)}")
    new_weights = dict(new_weights or {})
    analysis = _analyse(model, example_inputs)
    groups = analysis.groups()
    by_name = {p: root for root, g in groups.items() for p in g.producers}
    kept: dict[int, torch.Tensor] = {}
    for name, indices in keep.items():
        if name not in by_name:
            close = [n for n in by_name if name in n or n in name][:5]
            raise KeyError(f"{name!r} produces no channel group; groups: "
                           f"{[g.name for g in groups.values()]}" +
                           (f" (close: {close})" if close else ""))
        root = by_name[name]
        group = groups[root]
        if not group.prunable:
            raise ValueError(f"channel group {group.name!r} cannot be pruned: read by "
                             + "; ".join(group.blockers))
        indices = _kept_indices(indices, group)
        if root in kept and not torch.equal(kept[root], indices):
            raise ValueError(f"conflicting indices for channel group {group.name!r} "
                             f"(named twice through {group.producers})")
        kept[root] = indices

    target = model if inplace else copy.deepcopy(model)
    touched: dict[str, dict[str, _Segment | Any]] = {}
    for use in analysis.uses:
        if any(analysis.find(s.space) in kept for s in use.layout):
            touched.setdefault(use.module, {})[use.role] = use.layout
    for name in list(new_weights):
        if name not in touched:
            raise KeyError(f"new_weights[{name!r}]: {name!r} is not a pruned layer")
    for name, roles in touched.items():
        module = target.get_submodule(name)

        def positions(role: str, size: int, roles: dict = roles) -> torch.Tensor:
            layout = roles.get(role)
            return torch.arange(size) if layout is None else _index(layout, kept, analysis.find)

        if isinstance(module, _NORM):
            new = _rebuild(module, name, None, None, positions("norm", module.num_features))
        elif isinstance(module, nn.Linear):
            new = _rebuild(module, name, positions("out", module.out_features),
                           positions("in", module.in_features), None)
        elif "depthwise" in roles:
            new = _rebuild(module, name, None, None,
                           positions("depthwise", module.out_channels))
        else:
            out_role = "group_out" if module.groups > 1 else "out"
            in_role = "group_in" if module.groups > 1 else "in"
            new = _rebuild(module, name, positions(out_role, module.out_channels),
                           positions(in_role, module.in_channels), None)
        if name in new_weights:
            weight = torch.as_tensor(new_weights.pop(name))
            if tuple(weight.shape) != tuple(new.weight.shape):
                raise ValueError(f"new_weights[{name!r}] has shape {tuple(weight.shape)}, the "
                                 f"pruned layer needs {tuple(new.weight.shape)}")
            new.weight.data.copy_(weight)
        replace_module(target, name, new)

    was_training = target.training
    target.eval()
    try:
        with torch.no_grad():
            target(*check_inputs(example_inputs))
    except Exception as error:  # noqa: BLE001 - report any failure of the rebuilt model
        raise RuntimeError(
            "the pruned model does not run on example_inputs; a layer outside the supported "
            f"set probably depends on the removed channels: {error}") from error
    finally:
        target.train(was_training)
    return target
