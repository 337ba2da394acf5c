"""Structural surgery: remove output channels for real and rewire everything that uses them.

:func:`channel_groups` traces a model with ``torch.fx`` and finds the *channel groups*: sets of
channels that must be removed together because one layer produces them and others read them
(a convolution's filters, its batch norm, the next convolution's input channels, a depthwise
convolution in between, the linear layer after a flatten, every branch of a residual sum, the
slices of a concatenation). :func:`prune_channels` keeps the requested channels of some groups
and returns a model whose layers are simply smaller: ordinary ``nn.Conv2d`` / ``nn.Linear`` /
``nn.BatchNorm`` modules with fewer channels, no masks, no index gathers at run time.

Supported layers: ``nn.Conv1d/2d`` (plain, grouped, depthwise), ``nn.Linear`` (on the last
axis: after a flatten, or a pointwise convolution on channels-last maps), ``nn.BatchNorm1d/2d``,
``nn.LayerNorm`` over the channels (channels-last), ``nn.PReLU`` (one slope per channel or a
shared one), element-wise activations, dropout, pooling, ``nn.Identity``, flatten / ``view`` /
``reshape`` / ``squeeze`` / ``unsqueeze`` that keep the channel axis whole (or merge it with
the axes after it), ``permute`` / ``transpose`` (the channel axis is followed wherever it
moves), indexing that takes the channel axis whole (``x[:, 0]``), means and sums over other
axes, ``chunk`` into equal parts along the channels, element-wise ``+ - * /`` between tensors
(broadcasting, e.g. squeeze-and-excitation gates ``(N, C, H, W) * (N, C, 1, 1)``) and with
per-channel parameters (a layer scale, a bias: sliced with the channels), and ``torch.cat``
(along the channels, or along another axis of tensors with the same channels). Grouped
convolutions and ``chunk`` split a group into :attr:`ChannelGroup.divisions` equal blocks that
must keep equal numbers of channels.

Anything else that reads a group's channels *blocks* that group: it cannot be pruned, and
:attr:`ChannelGroup.blockers` says why (a custom layer traced into functional calls, a
reduction over the channel axis, a reshape that splits the channels such as a channel shuffle
or attention heads, ``split`` into fixed sizes, a size written as a constant into a reshape,
``nn.MultiheadAttention``, a module called twice, the model's input or output).
:func:`channel_groups` also runs a copy with one channel removed from every prunable group, so
that code the graph does not show (a Python check of a block's input width) blocks its groups
up front instead of failing the pruning late.

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
import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
import torch.fx
from torch import nn
from torch.fx.passes.shape_prop import ShapeProp

from ..._checks import check_model
from ..._rng import seeded
from ...metrics._validation import check_inputs
from ..base import replace_module

__all__ = ["ChannelGroup", "channel_groups", "prune_channels"]

_CONV = (nn.Conv1d, nn.Conv2d)
_NORM = (nn.BatchNorm1d, nn.BatchNorm2d)
# element-wise modules and functions: channels pass through whatever axis they are on
_POINTWISE_MODULES = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh,
    nn.Hardswish, nn.Hardsigmoid, nn.Mish, nn.Dropout, nn.Identity,
)
# modules and functions acting on the trailing (spatial) axes: channels must be on axis 1
_SPATIAL_MODULES = (
    nn.Dropout1d, nn.Dropout2d, nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d,
    nn.Upsample, nn.ZeroPad2d, nn.ReplicationPad2d, nn.ReflectionPad2d, nn.ConstantPad2d,
)
_F = torch.nn.functional
_POINTWISE_FUNCTIONS = {
    torch.relu, torch.sigmoid, torch.tanh, _F.relu, _F.relu6, _F.leaky_relu, _F.elu, _F.gelu,
    _F.silu, _F.hardswish, _F.hardsigmoid, _F.mish, _F.sigmoid, _F.dropout,
}
_SPATIAL_FUNCTIONS = {
    _F.max_pool1d, _F.max_pool2d, _F.avg_pool1d, _F.avg_pool2d, _F.adaptive_avg_pool1d,
    _F.adaptive_avg_pool2d, _F.adaptive_max_pool2d, _F.interpolate,
}
# on a parameter, these views keep its trailing axes (broadcasting still aligns them)
_PASS_METHODS = {"relu", "sigmoid", "tanh", "contiguous", "clone", "detach", "float", "to",
                 "type_as", "expand", "expand_as"}
_ELEMENTWISE = {operator.add, operator.sub, operator.mul, operator.truediv, operator.iadd,
                operator.imul, torch.add, torch.sub, torch.mul, torch.div}
_ELEMENTWISE_METHODS = {"add", "sub", "mul", "div", "add_", "mul_"}
_RESHAPE_METHODS = {"flatten", "view", "reshape", "squeeze", "unsqueeze"}
_RESHAPE_FUNCTIONS = {torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze}
_PERMUTE = {"permute", "transpose", "swapaxes"}
_REDUCE = {"mean", "sum", "amax", "amin"}

@dataclass(frozen=True)
class _Segment:
    """Channels ``start .. start + length`` of a space, each ``repeat`` times in a row (a
    flatten of ``repeat`` positions per channel)."""

    space: int
    start: int
    length: int
    repeat: int = 1


class _Layout(NamedTuple):
    """Where a tensor's tracked channels are: ``segments`` laid along dimension ``axis``."""

    segments: tuple[_Segment, ...]
    axis: int


class _Pieces(NamedTuple):
    """The layouts of the tensors of a tuple (``chunk`` / ``split``)."""

    layouts: tuple[_Layout | None, ...]


@dataclass
class _Use:
    module: str
    role: str  # "out", "norm", "layer_norm", "param", "depthwise", "in", "group_in", "group_out"
    layout: tuple[_Segment, ...]
    attr: str = ""  # role "param": the attribute of ``module`` holding the parameter ...
    dim: int = 0  # ... and its dimension along the channels


@dataclass
class ChannelGroup:
    """Channels that are removed together.

    Attributes
    ----------
    name : qualified name of the first layer that produces the channels (the key to pass to
        :func:`prune_channels`).
    size : number of channels.
    producers : layers whose filters make the channels (convolutions, linear layers).
    users : every layer touched by removing the channels, with its role: ``"out"`` (filters
        of a producer), ``"group_out"`` (filters of a grouped convolution), ``"in"`` /
        ``"group_in"`` (input channels of a reader), ``"depthwise"``, ``"norm"`` (a batch
        norm), ``"layer_norm"`` (a LayerNorm over channels-last features), ``"param"`` (a
        per-channel parameter of that module: a PReLU's slopes, a layer scale, a bias added to
        the features).
    prunable : False when an unsupported operation reads the channels or they are the model's
        input or output.
    blockers : descriptions of what prevents pruning.
    slots : ``{(layer, role): (offset, repeat)}`` for the users that see all the group's
        channels as one run: along the layer's channel (or feature) axis, channel c sits at
        ``offset + c * repeat`` and is repeated ``repeat`` times (a flatten of ``repeat``
        positions).
    divisions : the channels form ``divisions`` equal consecutive blocks (``size //
        divisions`` channels each) that must each keep the same non-zero number of channels,
        because a grouped convolution reads or makes them group by group (or a ``chunk``
        splits them): the least common multiple over those users; 1 for ordinary groups.
    """

    name: str
    size: int
    producers: tuple[str, ...]
    users: tuple[tuple[str, str], ...]
    prunable: bool
    blockers: tuple[str, ...] = field(default=())
    slots: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    divisions: int = 1


def _length(segments: tuple[_Segment, ...]) -> int:
    return sum(s.length * s.repeat for s in segments)


def _name(node: torch.fx.Node) -> str:
    what = node.target if isinstance(node.target, str) else getattr(
        node.target, "__name__", str(node.target))
    return f"{what} ({node.name})"


class _Analysis:
    """Channel spaces of every traced value, their unions and their users."""

    def __init__(self, model: nn.Module, example_inputs: tuple[torch.Tensor, ...]) -> None:
        self.model = model
        self.graph_module = torch.fx.symbolic_trace(model)
        try:
            ShapeProp(self.graph_module).propagate(*example_inputs)
        except Exception as error:  # noqa: BLE001 - any failure of the model on the inputs
            shapes = [tuple(x.shape) for x in example_inputs]
            raise ValueError(f"the model does not run on example_inputs of shapes {shapes}: "
                             f"{error}") from error
        self.parent: list[int] = []
        self.sizes: list[int] = []
        self.divisions: list[int] = []
        self.producer: dict[int, str] = {}
        self.blockers: dict[int, list[str]] = {}
        self.uses: list[_Use] = []
        self.calls: dict[str, int] = {}
        self.params: dict[torch.fx.Node, str] = {}  # nodes that are a parameter (or a view)
        layouts: dict[torch.fx.Node, Any] = {}
        for node in self.graph_module.graph.nodes:
            layouts[node] = self._visit(node, layouts)
        for name, count in self.calls.items():
            if count > 1:  # a module applied twice: its channels are shared, do not touch them
                for use in self.uses:
                    if use.module == name:
                        self._block(use.layout, f"{name} (module called {count} times)")
        for space in range(len(self.parent)):
            if space == self.find(space) and self.divisions[space] == self.sizes[space] > 1:
                self._block_space(space, f"grouped users need {self.divisions[space]} equal "
                                         f"divisions of its {self.sizes[space]} channels: none "
                                         "can be removed")

    # -- spaces ---------------------------------------------------------------------------
    def _new_space(self, size: int, producer: str | None = None, divisions: int = 1) -> int:
        self.parent.append(len(self.parent))
        self.sizes.append(size)
        self.divisions.append(divisions)
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
            self.divisions[a] = math.lcm(self.divisions[a], self.divisions[b])
            self.blockers.setdefault(a, []).extend(self.blockers.pop(b, []))

    def _block_space(self, space: int, why: str) -> None:
        self.blockers.setdefault(self.find(space), []).append(why)

    def _block(self, layout: Any, why: str) -> None:
        if isinstance(layout, _Pieces):
            for piece in layout.layouts:
                self._block(piece, why)
            return
        if isinstance(layout, _Layout):
            layout = layout.segments
        for segment in layout or ():
            self._block_space(segment.space, why)

    def _divide(self, layout: _Layout, parts: int, why: str) -> bool:
        """Require ``parts`` equal divisions of the single space ``layout`` holds."""
        segments = layout.segments
        if len(segments) != 1 or segments[0].repeat != 1 or segments[0].start != 0 or (
                segments[0].length != self.sizes[self.find(segments[0].space)]):
            self._block(layout, f"{why} over channels of several sources")
            return False
        root = self.find(segments[0].space)
        self.divisions[root] = math.lcm(self.divisions[root], parts)
        return True

    # -- graph ------------------------------------------------------------------------------
    def _shape(self, node: Any) -> tuple[int, ...] | None:
        meta = node.meta.get("tensor_meta") if isinstance(node, torch.fx.Node) else None
        return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None

    def _fresh(self, node: torch.fx.Node, why: str) -> _Layout | None:
        """A blocked layout (on axis 1) for the output of an operation we do not follow."""
        shape = self._shape(node)
        if shape is None or len(shape) < 2:
            return None
        space = self._new_space(shape[1])
        self.blockers[space] = [why]
        return _Layout((_Segment(space, 0, shape[1]),), 1)

    def _stop(self, node: torch.fx.Node, layouts: dict, why: str) -> _Layout | None:
        """Block every tracked input of ``node``; its output is a fresh blocked space."""
        for arg in node.all_input_nodes:
            self._block(layouts.get(arg), why)
        return self._fresh(node, f"output of {why}")

    def _arg(self, node: torch.fx.Node, index: int, key: str, default: Any = None) -> Any:
        if len(node.args) > index:
            return node.args[index]
        return node.kwargs.get(key, default)

    def _visit(self, node: torch.fx.Node, layouts: dict) -> Any:
        if node.op == "placeholder":
            return self._fresh(node, "the model's input")
        if node.op == "output":
            for arg in node.all_input_nodes:
                self._block(layouts.get(arg), "the model's output")
            return None
        if node.op == "get_attr":
            self.params[node] = str(node.target)
            return None
        if node.op == "call_module":
            return self._visit_module(node, layouts)
        first = layouts.get(node.args[0]) if node.args and isinstance(
            node.args[0], torch.fx.Node) else None
        tensor_args = [a for a in node.all_input_nodes if layouts.get(a) is not None]
        fn, method = node.op == "call_function", node.op == "call_method"
        target = node.target
        if fn and target is operator.getitem and isinstance(first, _Pieces):
            return first.layouts[node.args[1]]
        if method and target in ("size", "dim") or fn and target is getattr and (
                node.args[1] in ("shape", "dtype", "device", "ndim")):
            return None
        if method and target in _PASS_METHODS and node.args[0] in self.params:
            self.params[node] = self.params[node.args[0]]  # e.g. self.scale.type_as(x)
            return None
        if not tensor_args:
            if self._shape(node) is None or (
                    fn and target in _ELEMENTWISE or method and target in _ELEMENTWISE_METHODS):
                return None  # arithmetic on sizes, or on parameters only
        if (fn and target in _POINTWISE_FUNCTIONS or method and target in _PASS_METHODS) and (
                len(tensor_args) == 1 and isinstance(first, _Layout)):
            return first
        if fn and target in _SPATIAL_FUNCTIONS and isinstance(first, _Layout):
            if first.axis == 1 and len(tensor_args) == 1 and len(self._shape(node) or ()) >= 3:
                return first
            return self._stop(node, layouts, f"{_name(node)} over the channel axis")
        if fn and target in _ELEMENTWISE or method and target in _ELEMENTWISE_METHODS:
            return self._elementwise(node, layouts)
        if fn and target is torch.cat:
            return self._cat(node, layouts)
        if not isinstance(first, _Layout) or len(tensor_args) != 1:
            return self._stop(node, layouts, _name(node))
        if method and target in _RESHAPE_METHODS or fn and target in _RESHAPE_FUNCTIONS:
            return self._reshape(node, first)
        if (method and target in _PERMUTE or fn and target in (torch.permute, torch.transpose)
                ) and self._shape(node):
            return self._permute(node, first)
        if method and target in _REDUCE or fn and target in (torch.mean, torch.sum):
            return self._reduce(node, first)
        if method and target in ("chunk", "split") or fn and target in (torch.chunk,
                                                                       torch.split):
            return self._chunk(node, first)
        if fn and target is operator.getitem:
            return self._index_tensor(node, first)
        return self._stop(node, layouts, _name(node))

    def _visit_module(self, node: torch.fx.Node, layouts: dict) -> Any:
        name = str(node.target)
        module = self.graph_module.get_submodule(name)
        self.calls[name] = self.calls.get(name, 0) + 1
        kind = f"{name} ({type(module).__name__})"
        source = layouts.get(node.args[0]) if node.args else None
        if isinstance(module, nn.MultiheadAttention):
            return self._stop(node, layouts,
                              f"{name} (MultiheadAttention: attention heads are not pruned)")
        if len([a for a in node.all_input_nodes if layouts.get(a) is not None]) > 1 or (
                not isinstance(source, _Layout)):
            return self._stop(node, layouts, kind)
        ndim = len(self._shape(node.args[0]) or ())
        on_axis1, last = source.axis == 1, source.axis == ndim - 1
        if isinstance(module, _POINTWISE_MODULES) or isinstance(module, nn.PReLU) and (
                module.num_parameters == 1):
            return source
        if isinstance(module, _SPATIAL_MODULES) and on_axis1 and ndim >= 3:  # batched maps
            return source
        if isinstance(module, _CONV) and on_axis1:
            if module.groups == 1:
                self.uses.append(_Use(name, "in", source.segments))
                return self._produce(name, module.out_channels, "out", 1)
            if module.groups == module.in_channels == module.out_channels:
                self.uses.append(_Use(name, "depthwise", source.segments))
                return source
            if not self._divide(source, module.groups, f"{kind} (grouped)"):
                return self._fresh(node, f"output of {kind}")
            self.uses.append(_Use(name, "group_in", source.segments))
            return self._produce(name, module.out_channels, "group_out", 1, module.groups)
        if isinstance(module, nn.Linear):
            if last:  # also a pointwise convolution on channels-last maps
                self.uses.append(_Use(name, "in", source.segments))
            else:
                self._block(source, f"{kind} across a non-channel axis")
            return self._produce(name, module.out_features, "out", ndim - 1)
        if isinstance(module, _NORM) and on_axis1:
            self.uses.append(_Use(name, "norm", source.segments))
            return source
        if isinstance(module, nn.LayerNorm):
            normalized = len(module.normalized_shape)
            if source.axis < ndim - normalized:  # normalises other axes only
                return source
            if normalized == 1 and last:
                self.uses.append(_Use(name, "layer_norm", source.segments))
                return source
        if isinstance(module, nn.PReLU) and on_axis1:
            self.uses.append(_Use(name, "param", source.segments, "weight", 0))
            return source
        if isinstance(module, (nn.Flatten, nn.Unflatten)):
            return self._reshape(node, source)
        return self._stop(node, layouts, kind)

    def _produce(self, name: str, size: int, role: str, axis: int,
                 divisions: int = 1) -> _Layout:
        segments = (_Segment(self._new_space(size, name, divisions), 0, size),)
        self.uses.append(_Use(name, role, segments))
        return _Layout(segments, axis)

    def _param_use(self, node: torch.fx.Node, layout: _Layout, out_ndim: int, why: str) -> bool:
        """Register the parameter ``node`` (broadcast onto features with ``layout``) as a user
        of their channels; False (and the group blocked) when it cannot be sliced."""
        target = self.params.get(node)
        if target is not None:  # its own shape: the views we follow keep the trailing axes
            tensor: Any = self.graph_module
            for part in target.split("."):
                tensor = getattr(tensor, part)
            shape = tuple(tensor.shape)
        else:
            shape = self._shape(node)
        if shape is None:
            return True  # a Python number
        dim = len(shape) - (out_ndim - layout.axis)
        if dim < 0 or shape[dim] == 1:
            return True  # broadcast over the channels
        segments = layout.segments
        if target is None or shape[dim] != _length(segments):
            self._block(layout, f"{why} with a tensor of shape {shape} we do not follow")
            return False
        owner, _, attr = target.rpartition(".")
        self.uses.append(_Use(owner, "param", segments, attr, dim))
        return True

    def _elementwise(self, node: torch.fx.Node, layouts: dict) -> _Layout | None:
        why = _name(node)
        out_ndim = len(self._shape(node) or ())
        tracked = [(a, layouts[a]) for a in node.all_input_nodes
                   if isinstance(layouts.get(a), _Layout)]
        if len(tracked) != len([a for a in node.all_input_nodes if layouts.get(a) is not None]):
            return self._stop(node, layouts, why)
        # channel axis of each tracked operand, in the (right-aligned) broadcast output
        axes = {layout.axis + out_ndim - len(self._shape(a) or ()) for a, layout in tracked}
        first = tracked[0][1]
        if len(axes) != 1 or any(
                len(layout.segments) != len(first.segments) or any(
                    (x.start, x.length, x.repeat) != (y.start, y.length, y.repeat)
                    or self.sizes[self.find(x.space)] != self.sizes[self.find(y.space)]
                    for x, y in zip(layout.segments, first.segments, strict=True))
                for _, layout in tracked):
            for _, layout in tracked:
                self._block(layout, f"{why} of unaligned channels")
            return self._fresh(node, f"output of {why}")
        result = _Layout(first.segments, axes.pop())
        for other in node.all_input_nodes:
            if layouts.get(other) is None and not self._param_use(other, result, out_ndim, why):
                return self._fresh(node, f"output of {why}")
        for _, layout in tracked[1:]:
            for x, y in zip(first.segments, layout.segments, strict=True):
                self._union(x.space, y.space)
        return result

    def _cat(self, node: torch.fx.Node, layouts: dict) -> _Layout | None:
        why = _name(node)
        tensors = self._arg(node, 0, "tensors")
        ndim = len(self._shape(node) or ())
        dim = self._arg(node, 1, "dim", 0)
        parts = [layouts.get(t) for t in tensors]
        known = [p for p in parts if isinstance(p, _Layout)]
        if not ndim or not isinstance(dim, int) or not known or any(
                p.axis != known[0].axis for p in known) or any(
                p is not None and not isinstance(p, _Layout) for p in parts):
            return self._stop(node, layouts, f"{why} of unaligned channels")
        axis = known[0].axis
        if dim % ndim == axis:
            if len(known) == len(parts):
                return _Layout(tuple(s for p in parts for s in p.segments), axis)
            return self._stop(node, layouts, f"{why} with a tensor we do not follow")
        # along another axis (e.g. a class token before the patch tokens): the same channels
        first = known[0]
        if any(len(p.segments) != len(first.segments) or _length(p.segments) != _length(
                first.segments) for p in known):
            return self._stop(node, layouts, f"{why} of unaligned channels")
        for part, tensor in zip(parts, tensors, strict=True):
            if part is None and not self._param_use(tensor, first, ndim, why):
                return self._fresh(node, f"output of {why}")
        for part in known[1:]:
            if any((x.start, x.length, x.repeat) != (y.start, y.length, y.repeat)
                   for x, y in zip(first.segments, part.segments, strict=True)):
                return self._stop(node, layouts, f"{why} of unaligned channels")
            for x, y in zip(first.segments, part.segments, strict=True):
                self._union(x.space, y.space)
        return first

    def _reshape(self, node: torch.fx.Node, source: _Layout) -> _Layout | None:
        """Follow the channel axis through a reshape (flatten, view, squeeze...): it either
        stays one axis, or merges with the axes after it (each channel a run of ``repeat``
        features)."""
        shape_in, shape_out = self._shape(node.args[0]), self._shape(node)
        why = f"{_name(node)} splitting or tiling the channel axis"
        if shape_in is None or shape_out is None:
            return self._stop(node, {node.args[0]: source}, why)
        before = math.prod(shape_in[:source.axis])
        length = shape_in[source.axis]
        sizes: tuple = ()  # the sizes a view / reshape asks for, as written in the code
        if node.target in ("view", "reshape", torch.reshape):
            sizes = tuple(node.args[1:]) if node.op == "call_method" else (node.args[1],)
            if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
                sizes = tuple(sizes[0])
        for k in range(len(shape_out)):
            if math.prod(shape_out[:k]) != before:
                continue
            merges = [m for m in (math.prod(shape_in[source.axis + 1:j])
                                  for j in range(source.axis + 1, len(shape_in) + 1))
                      if shape_out[k] == length * m]
            if not merges:
                continue
            if len(sizes) == len(shape_out) and isinstance(sizes[k], int) and sizes[k] != -1:
                return self._stop(node, {node.args[0]: source},
                                  f"{_name(node)} to the fixed size {sizes[k]} of the channels")
            return _Layout(tuple(_Segment(s.space, s.start, s.length, s.repeat * merges[0])
                                 for s in source.segments), k)
        return self._stop(node, {node.args[0]: source}, why)

    def _permute(self, node: torch.fx.Node, source: _Layout) -> _Layout:
        ndim = len(self._shape(node) or ())
        args = [a for a in node.args[1:]] or list(node.kwargs.values())
        if node.target in ("permute", torch.permute):
            dims = args[0] if len(args) == 1 and isinstance(args[0], (tuple, list)) else args
            order = [d % ndim for d in dims]
            return _Layout(source.segments, order.index(source.axis))
        i, j = (d % ndim for d in args[:2])
        axis = j if source.axis == i else i if source.axis == j else source.axis
        return _Layout(source.segments, axis)

    def _reduce(self, node: torch.fx.Node, source: _Layout) -> _Layout | None:
        why = _name(node)
        ndim = len(self._shape(node.args[0]) or ())
        dims = self._arg(node, 1, "dim")
        keepdim = self._arg(node, 2, "keepdim", False)
        dims = (dims,) if isinstance(dims, int) else dims
        if not ndim or not isinstance(dims, (tuple, list)) or not all(
                isinstance(d, int) for d in dims) or not isinstance(keepdim, bool):
            return self._stop(node, {node.args[0]: source}, f"{why} over every axis")
        dims = {d % ndim for d in dims}
        if source.axis in dims:
            return self._stop(node, {node.args[0]: source}, f"{why} over the channel axis")
        return _Layout(source.segments,
                       source.axis if keepdim else source.axis - sum(d < source.axis
                                                                    for d in dims))

    def _chunk(self, node: torch.fx.Node, source: _Layout) -> Any:
        why = _name(node)
        metas = node.meta.get("tensor_meta")
        ndim = len(self._shape(node.args[0]) or ())
        dim = self._arg(node, 2, "dim", 0)
        if not isinstance(metas, (tuple, list)) or not isinstance(dim, int) or not ndim:
            return self._stop(node, {node.args[0]: source}, why)
        dim %= ndim
        if dim != source.axis:
            return _Pieces(tuple(source for _ in metas))
        if node.target in ("split", torch.split):  # fixed sizes, unchanged after pruning
            return self._stop(node, {node.args[0]: source}, f"{why} of the channels into "
                                                            "fixed sizes")
        sizes = [meta.shape[dim] for meta in metas]
        if len(set(sizes)) != 1 or not self._divide(source, len(sizes), why):
            return self._stop(node, {node.args[0]: source}, f"{why} of the channels")
        space, per = source.segments[0].space, sizes[0]
        return _Pieces(tuple(_Layout((_Segment(space, k * per, per),), dim)
                             for k in range(len(sizes))))

    def _index_tensor(self, node: torch.fx.Node, source: _Layout) -> _Layout | None:
        """``x[...]`` with slices, ints and None: the channel axis must be taken whole."""
        index = node.args[1] if isinstance(node.args[1], tuple) else (node.args[1],)
        ndim = len(self._shape(node.args[0]) or ())
        why = f"{_name(node)} indexing the channels"
        if sum(i is Ellipsis for i in index) > 1 or any(
                not (i is None or i is Ellipsis or isinstance(i, (int, slice))) for i in index):
            return self._stop(node, {node.args[0]: source}, why)
        if Ellipsis in index:
            at = index.index(Ellipsis)
            fill = ndim - sum(i is not None for i in index if i is not Ellipsis)
            index = index[:at] + (slice(None),) * fill + index[at + 1:]
        dim, out = 0, 0
        for item in index:
            if item is None:
                out += 1
                continue
            if dim == source.axis:
                if item != slice(None):
                    return self._stop(node, {node.args[0]: source}, why)
                return _Layout(source.segments, out)
            dim += 1
            out += not isinstance(item, int)
        return _Layout(source.segments, out + source.axis - dim)

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
                slots={k: v for k, v in slots.get(root, {}).items() if v is not None},
                divisions=self.divisions[root])
        return result

    def probe(self, inputs: tuple[torch.Tensor, ...]) -> None:
        """Block the groups whose removal breaks code the graph does not show (a Python check
        of the channel count, a size written into a reshape): remove one channel per division
        of every prunable group from a copy, run it, and bisect the failures."""
        groups = self.groups()

        def trial(roots: list[int]) -> str | None:
            kept = {}
            for root in roots:
                per = groups[root].size // groups[root].divisions
                kept[root] = torch.arange(groups[root].size)
                kept[root] = kept[root][kept[root] % per != per - 1]
            copied = copy.deepcopy(self.model)
            try:
                _apply(copied, self, kept, {})
                copied(*inputs)
            except Exception as error:  # noqa: BLE001 - any failure names the blocker
                return f"{type(error).__name__}: {error}"
            return None

        def search(roots: list[int], error: str) -> None:
            if len(roots) > 1:
                halves = roots[:len(roots) // 2], roots[len(roots) // 2:]
                errors = [trial(half) for half in halves]
                if any(errors):
                    for half, found in zip(halves, errors, strict=True):
                        if found:
                            search(half, found)
                    return
            for root in roots:  # one group, or groups that fail only together
                self._block_space(root, f"the model fails when its channels are removed "
                                        f"({error})")

        candidates = [root for root, g in groups.items()
                      if g.prunable and g.size > g.divisions]
        error = trial(candidates) if candidates else None
        if error:
            search(candidates, error)


def _analyse(model: nn.Module, example_inputs: Any, *, probe: bool = False) -> _Analysis:
    check_model(model)
    inputs = check_inputs(example_inputs)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            analysis = _Analysis(model, inputs)
            if probe:
                analysis.probe(inputs)
            return analysis
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
        (e.g. the spatial size behind a flatten). The model is run in eval mode: once, then
        a copy with one channel removed from every prunable group (to find the groups that
        code outside the graph depends on, such as a Python check of a block's input width).

    Returns
    -------
    list of :class:`ChannelGroup`; prunable or not (see ``blockers``).
    """
    with seeded(None):  # the probe's new layers draw their initial weights: not the caller's
        analysis = _analyse(model, example_inputs, probe=True)
    return list(analysis.groups().values())


def _kept_indices(keep: Any, group: ChannelGroup) -> torch.Tensor:
    try:
        indices = torch.as_tensor(keep if isinstance(keep, torch.Tensor) else list(keep))
    except (TypeError, ValueError, RuntimeError) as error:
        raise TypeError(f"keep[{group.name!r}] must be a sequence of channel indices") from error
    indices = indices.flatten()
    if indices.numel() == 0:
        raise ValueError(f"keep[{group.name!r}] is empty: a layer cannot be pruned to zero width")
    if indices.is_floating_point() or indices.is_complex() or indices.dtype == torch.bool:
        raise TypeError(f"keep[{group.name!r}] must hold integer channel indices, got "
                        f"{indices.dtype}")
    indices = indices.long()
    if indices.min() < 0 or indices.max() >= group.size:
        raise ValueError(f"keep[{group.name!r}] has indices outside [0, {group.size})")
    unique = torch.unique(indices)  # sorted: channel order is preserved
    if unique.numel() != indices.numel():
        raise ValueError(f"keep[{group.name!r}] has repeated indices")
    if group.divisions > 1:
        per = group.size // group.divisions
        counts = torch.bincount(unique // per, minlength=group.divisions).tolist()
        if len(set(counts)) != 1:
            raise ValueError(
                f"keep[{group.name!r}]: the group's {group.size} channels form "
                f"{group.divisions} divisions of {per} consecutive channels (read or made by a "
                f"grouped convolution or a chunk); it must keep the same non-zero number in "
                f"every group, got {counts}")
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
    """A new conv / linear / batch-norm / layer-norm layer like ``old`` (same hyperparameters,
    device and dtype, fresh weights) with another shape: ``in_channels``, ``out_channels``
    (features for a linear layer) and ``groups``, or ``num_features`` for a batch norm or a
    LayerNorm over one axis."""
    if isinstance(old, nn.LayerNorm):
        new = nn.LayerNorm(shape["num_features"], eps=old.eps,
                           elementwise_affine=old.elementwise_affine, bias=old.bias is not None)
        reference = old.weight
    elif isinstance(old, _NORM):
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
    if isinstance(module, (*_NORM, nn.LayerNorm)):
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


def _slice_parameter(owner: nn.Module, use: _Use, index: torch.Tensor) -> None:
    """Keep the ``index`` entries of ``owner.<use.attr>`` along ``use.dim`` (a PReLU's slopes,
    a layer scale, a per-channel bias...)."""
    old = getattr(owner, use.attr)
    sliced = old.detach().index_select(use.dim, index.to(old.device)).clone()
    if isinstance(owner, nn.PReLU):
        owner.num_parameters = len(index)
    if isinstance(old, nn.Parameter):
        setattr(owner, use.attr, nn.Parameter(sliced, requires_grad=old.requires_grad))
    else:
        setattr(owner, use.attr, sliced)


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
    KeyError for a name that is not a group's producer; TypeError for non-integer indices;
    ValueError for a blocked group (the message names the blockers; a group whose removal
    makes the rebuilt model fail is named so too), empty, repeated or out-of-range indices,
    unequal numbers kept in the :attr:`ChannelGroup.divisions` of a group, or a
    ``new_weights`` of the wrong shape (nothing is changed then, even with ``inplace``).
    """
    if not isinstance(keep, Mapping):
        raise TypeError(f"keep must be a mapping {{group name: indices}}, got {type(keep)}")
    with seeded(None):  # new layers draw their initial weights: not on the caller's streams
        return _prune_channels(model, keep, example_inputs, new_weights, inplace)


def _prune_channels(model: nn.Module, keep: Mapping[str, Any], example_inputs: Any,
                    new_weights: Mapping[str, torch.Tensor] | None, inplace: bool) -> nn.Module:
    new_weights = dict(new_weights or {})
    inputs = check_inputs(example_inputs)
    analysis = _analyse(model, inputs)
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
    undo = _apply(target, analysis, kept, new_weights)
    was_training = target.training
    target.eval()
    try:
        with torch.no_grad():
            target(*inputs)
    except Exception as error:  # noqa: BLE001 - report any failure of the rebuilt model
        for owner, attr, old in reversed(undo):  # in place: give the model back unchanged
            setattr(owner, attr, old)
        with torch.no_grad():
            analysis.probe(inputs)  # name the groups whose removal breaks the model
        blocked = [g for root, g in analysis.groups().items() if root in kept and g.blockers]
        if blocked:
            raise ValueError("channel groups cannot be pruned: " + "; ".join(
                f"{g.name!r}: {', '.join(g.blockers)}" for g in blocked)) from error
        raise RuntimeError(
            "the pruned model does not run on example_inputs; a layer outside the supported "
            f"set probably depends on the removed channels: {error}") from error
    finally:
        target.train(was_training)
    return target


def _apply(target: nn.Module, analysis: _Analysis, kept: dict[int, torch.Tensor],
           new_weights: Mapping[str, Any]) -> list[tuple[nn.Module, str, Any]]:
    """Replace, in ``target``, every layer and parameter that reads or makes the ``kept``
    spaces (``{root space: kept channels}``) by its pruned version; returns what was replaced
    as ``(owner, attribute, old value)``, to undo it."""
    touched: dict[str, dict[str, tuple[_Segment, ...]]] = {}
    params: list[_Use] = []
    for use in analysis.uses:
        if any(analysis.find(s.space) in kept for s in use.layout):
            if use.role == "param":
                params.append(use)
            else:
                touched.setdefault(use.module, {})[use.role] = use.layout
    for name in new_weights:
        if name not in touched:
            raise KeyError(f"new_weights[{name!r}]: {name!r} is not a pruned layer")
    rebuilt = {}
    for name, roles in touched.items():
        module = target.get_submodule(name)

        def positions(role: str, size: int, roles: dict = roles) -> torch.Tensor:
            layout = roles.get(role)
            return torch.arange(size) if layout is None else _index(layout, kept, analysis.find)

        if isinstance(module, _NORM):
            new = _rebuild(module, name, None, None, positions("norm", module.num_features))
        elif isinstance(module, nn.LayerNorm):
            new = _rebuild(module, name, None, None,
                           positions("layer_norm", module.normalized_shape[0]))
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
            weight = torch.as_tensor(new_weights[name])
            if tuple(weight.shape) != tuple(new.weight.shape):
                raise ValueError(f"new_weights[{name!r}] has shape {tuple(weight.shape)}, the "
                                 f"pruned layer needs {tuple(new.weight.shape)}")
            new.weight.data.copy_(weight)
        rebuilt[name] = new
    undo: list[tuple[nn.Module, str, Any]] = []  # (owner, attribute, old value)
    for name, new in rebuilt.items():  # only once every check passed: nothing half-done
        parent, _, attr = name.rpartition(".")
        undo.append((target.get_submodule(parent), attr, target.get_submodule(name)))
        replace_module(target, name, new)
    for use in params:
        owner = target.get_submodule(use.module)
        undo.append((owner, use.attr, getattr(owner, use.attr)))
        if isinstance(owner, nn.PReLU):
            undo.append((owner, "num_parameters", owner.num_parameters))
        _slice_parameter(owner, use, _index(use.layout, kept, analysis.find))
    return undo
