"""FilterSketch (Lin et al., seed #6): the pruned layer's filters are a Frequent Directions
sketch of the trained filters."""

from __future__ import annotations

import torch
from torch import nn

from ..._checks import check_int
from ...registry import PRUNERS
from .base import Pruner, Selection, _check_ratio, filter_matrix
from .magnitude import kept_count
from .surgery import ChannelGroup

__all__ = ["FilterSketch", "frequent_directions", "live_rows"]

_CHANNEL_MODES = ("paper", "legacy")


def frequent_directions(a: torch.Tensor, rows: int) -> torch.Tensor:
    """Frequent Directions sketch ``B`` (rows x d) of ``a`` (n x d), over all n rows.

    Guarantees (Liberty 2013; Ghashami et al. 2016): ``A^T A - B^T B`` is positive
    semi-definite and ``||A^T A - B^T B||_2 <= ||A||_F^2 / rows`` (within the FilterSketch
    paper's bound ``2 ||A||_F^2 / rows``). The fast variant: a buffer of ``2 * rows`` rows is
    filled; when full, its SVD is taken, every squared singular value is reduced by the
    ``(rows + 1)``-th one and the bottom half becomes zero; a last shrink leaves ``rows`` rows.
    Unlike the FilterSketch code, no trailing row is dropped. Computed in float64.

    Parameters
    ----------
    a : (n, d) tensor.
    rows : sketch size l >= 1. With ``l >= rank(a)`` the sketch is exact
        (``B^T B = A^T A``).

    Returns
    -------
    (rows, d) tensor of ``a``'s dtype; rows beyond the rank are zero.

    Examples
    --------
    >>> a = torch.randn(50, 20, generator=torch.Generator().manual_seed(0))
    >>> b = frequent_directions(a, 8)
    >>> err = torch.linalg.matrix_norm(a.T @ a - b.T @ b, ord=2)
    >>> bool(err <= a.square().sum() / 8)
    True
    """
    if not isinstance(a, torch.Tensor):
        raise TypeError(f"a must be a torch.Tensor (n, d), got {type(a).__name__}")
    if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"a must be a non-empty 2-d tensor (n, d), got shape {tuple(a.shape)}")
    if not a.is_floating_point():
        raise TypeError(f"a must be a floating-point tensor, got {a.dtype}")
    if not bool(torch.isfinite(a).all()):
        raise ValueError("a has NaN or infinite values: a sketch of them is meaningless")
    rows = check_int(rows, "rows")
    x = a.detach().to(torch.float64)
    d = x.shape[1]
    buffer = torch.zeros(2 * rows, d, dtype=torch.float64, device=x.device)
    filled = 0

    def shrink(b: torch.Tensor) -> torch.Tensor:
        _, s, vh = torch.linalg.svd(b, full_matrices=False)
        delta = s[rows] ** 2 if s.numel() > rows else s.new_zeros(())
        s = (s[:rows] ** 2 - delta).clamp_min(0).sqrt()
        out = b.new_zeros(rows, d)
        out[: s.numel()] = s[:, None] * vh[: s.numel()]
        return out

    start = 0
    while start < x.shape[0]:
        take = min(2 * rows - filled, x.shape[0] - start)
        buffer[filled: filled + take] = x[start: start + take]
        filled += take
        start += take
        if filled == 2 * rows:
            buffer[:rows] = shrink(buffer)
            buffer[rows:] = 0
            filled = rows
    return shrink(buffer[:filled]).to(a.dtype)


def live_rows(sketch: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """The rows of ``sketch`` (a :func:`frequent_directions` sketch of ``a``) that carry
    anything: norm above the numerical-rank tolerance of ``a``, ``sigma_max(a) * max(n, d) *
    eps`` (``eps`` of ``a``'s dtype: NumPy's ``matrix_rank`` default, the level of ``a``'s own
    rounding error). The sketch's rows are orthogonal, their norms its singular values, and
    ``B^T B <= A^T A`` bounds each by ``a``'s, so at most ``rank(a)`` rows (<= the fan-in)
    are kept; at least one is, the largest.

    >>> a = torch.randn(32, 9, generator=torch.Generator().manual_seed(0))
    >>> live_rows(frequent_directions(a, 22), a).shape
    torch.Size([9, 9])
    """
    norms = sketch.double().norm(dim=1)
    x = a.detach().double()
    tol = torch.linalg.matrix_norm(x, ord=2) * max(x.shape) * torch.finfo(a.dtype).eps
    live = norms > tol
    live[norms.argmax()] = True
    return sketch[live]


def _channel_sketch(weight: torch.Tensor, offset: int, size: int, repeat: int, rows: int,
                    mode: str) -> torch.Tensor:
    """``weight`` with the ``size`` input channels at ``offset`` (each ``repeat`` positions
    wide) sketched to ``rows`` channels; the other input positions unchanged.

    ``weight`` is (out, in, *kernel) for a conv or (out, in) for a linear layer. Paper mode:
    the channel slices (size, out * repeat * kernel) are sketched (a transpose). Legacy mode:
    the FilterSketch code's ``view(size, -1)`` of the (out, size, *kernel) block, which is not
    a channel slice unless the layer is square.
    """
    out, kernel = weight.shape[0], weight.shape[2:]
    end = offset + size * repeat
    block = weight[:, offset:end].reshape(out, size, repeat, *kernel)
    if mode == "legacy":
        sketch = frequent_directions(block.reshape(size, -1), rows)
        sketch = sketch.reshape(out, rows * repeat, *kernel)
    else:
        slices = block.transpose(0, 1).reshape(size, -1)
        sketch = frequent_directions(slices, rows).reshape(rows, out, repeat, *kernel)
        sketch = sketch.transpose(0, 1).reshape(out, rows * repeat, *kernel)
    return torch.cat([weight[:, :offset], sketch, weight[:, end:]], dim=1)


@PRUNERS.register(name="filtersketch", tags={"structured"}, test_params={"ratio": 0.5},
                  bench_params={"mild": {"ratio": 0.3}, "strong": {"ratio": 0.5}})
class FilterSketch(Pruner):
    """FilterSketch: replace a layer's n filters by a Frequent Directions sketch of l rows.

    For every pruned group (one producing convolution), with l = ``round(n * (1 - ratio))``:
    the filters A (n x c k k) are sketched by :func:`frequent_directions` and the sketch rows
    become the new filters (a new basis that keeps A's second-order information ``A^T A``, not
    a subset of the filters). A sketch holds at most ``rank(A) <= c k k`` non-zero rows, so
    only its live rows are kept (:func:`live_rows`): the layer keeps ``min(l, rank(A))``
    filters, never an exactly zero one (e.g. a first layer on one-channel 3x3 inputs keeps
    at most 9); ``details["kept"]``, the MACs and the parameters count only those. Each
    layer that reads the channels gets its input channels sketched the same way, from its own
    weights (as the authors do: the result is not function-preserving and needs
    fine-tuning); batch norms of pruned layers are
    re-initialised and biases of sketched filters set to 0 ([INTERP]: the code's convolutions
    have none).

    Parameters
    ----------
    ratio : fraction of the filters removed, in [0, 1) (the paper's "sketch rate" is
        ``1 - ratio``; ResNet-56 used 0.6, i.e. ``ratio=0.4``).
    channel_mode : ``"paper"`` sketches the next layer's input-channel slices (a transpose);
        ``"legacy"`` reproduces the authors' code, which reshapes the (out, in, k, k) weight to
        (in, -1) without transposing and so scrambles non-square layers (for comparisons).
    layers : which groups to prune (see :class:`~lightvision.compression.pruning.Pruner`);
        a pruned group must be made by one ordinary layer and read only by ordinary
        convolutions or linear layers. With ``"auto"`` or ``"all"`` the other groups (e.g.
        read by a depthwise convolution, as in a MobileNet, or split among the groups of a
        grouped convolution) are left alone and reported in ``details["skipped"]``; naming
        one in ``layers`` raises a ``ValueError``.

    References
    ----------
    M. Lin, L. Cao, S. Li, Q. Ye, Y. Tian, J. Liu, Q. Tian, R. Ji, "Filter Sketch for Network
    Pruning", IEEE TNNLS 33:7091-7100, 2022 (seed #6).
    E. Liberty, "Simple and Deterministic Matrix Sketching", KDD 2013.
    M. Ghashami, E. Liberty, J. M. Phillips, D. P. Woodruff, "Frequent Directions: Simple and
    Deterministic Matrix Sketches", SIAM J. Computing 45:1762-1792, 2016.
    """

    def __init__(self, ratio: float = 0.5, *, channel_mode: str = "paper",
                 layers="auto") -> None:
        super().__init__(layers=layers)
        self.ratio = _check_ratio(ratio)
        if channel_mode not in _CHANNEL_MODES:
            raise ValueError(f"channel_mode must be one of {_CHANNEL_MODES}, got "
                             f"{channel_mode!r}")
        self.channel_mode = channel_mode

    def unsupported(self, model: nn.Module, group: ChannelGroup) -> str | None:
        if len(group.producers) != 1:
            return f"FilterSketch sketches one layer's filters; the group is made by " \
                   f"{group.producers}"
        if group.divisions > 1 or (group.name, "out") not in group.users:
            return ("its channels are split among the groups of a grouped convolution, and a "
                    "sketch mixes filters across them")
        for layer, role in group.users:
            if role in ("out", "norm"):
                continue
            slot = group.slots.get((layer, role))
            if role != "in" or slot is None or (self.channel_mode == "legacy" and slot[1] > 1):
                kind = type(model.get_submodule(layer)).__name__
                return (f"FilterSketch cannot sketch the input channels of {layer!r} ({kind}, "
                        f"{role})")
        return None

    def select(self, model: nn.Module, groups: list[ChannelGroup]) -> dict[str, Selection]:
        rows: dict[str, int] = {}
        weights: dict[str, torch.Tensor] = {}
        for group in groups:  # the filters of every pruned layer, sketched from the originals
            shape = model.get_submodule(group.name).weight.shape
            filters = filter_matrix(model, group)
            sketch = live_rows(frequent_directions(filters, kept_count(group.size, self.ratio)),
                               filters)
            rows[group.name] = len(sketch)
            weights[group.name] = sketch.reshape(len(sketch), *shape[1:])
        readers = []
        for group in groups:  # then the input channels of every layer that reads them
            readers += [(layer, *group.slots[layer, role], group)
                        for layer, role in group.users if role == "in"]
        for layer, offset, repeat, group in sorted(readers, key=lambda r: (r[0], -r[1])):
            weight = weights.get(layer, model.get_submodule(layer).weight.detach())
            weights[layer] = _channel_sketch(weight, offset, group.size, repeat,
                                             rows[group.name], self.channel_mode)
        selections = {}
        for group in groups:
            mine = {layer: weights.pop(layer) for layer in list(weights)
                    if layer == group.name or (layer, "in") in group.users}
            selections[group.name] = Selection(torch.arange(rows[group.name]), mine,
                                               reset_norms=True, zero_bias=True)
        return selections
