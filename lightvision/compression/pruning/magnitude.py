"""L1-norm filter pruning (Li et al. 2017), the common baseline of the pruning papers."""

from __future__ import annotations

from torch import nn

from ...registry import PRUNERS
from .base import (
    Pruner,
    Selection,
    _check_ratio,
    filter_matrix,
    keep_per_division,
)
from .surgery import ChannelGroup

__all__ = ["L1Pruner", "kept_count"]


def kept_count(size: int, ratio: float) -> int:
    """Channels kept when removing the fraction ``ratio`` of ``size``: round, at least 1."""
    return max(1, round(size * (1.0 - ratio)))


@PRUNERS.register(name="l1", tags={"structured"}, test_params={"ratio": 0.5},
                  bench_params={"mild": {"ratio": 0.3}, "strong": {"ratio": 0.5}})
class L1Pruner(Pruner):
    """Keep, in every channel group, the channels whose filters have the largest L1 norms.

    A channel's score is the sum of the L1 norms of its filters in every layer that produces
    it (one layer, except for channels joined by a residual sum with ``layers="all"``). The
    kept filters keep their weights, batch norms and biases.

    Parameters
    ----------
    ratio : fraction of the channels removed from every pruned group, in [0, 1);
        ``round(size * (1 - ratio))`` channels are kept, at least one (per division of a
        group split among the groups of a grouped convolution: ``round(size / divisions *
        (1 - ratio))`` in each).
    layers : which groups to prune (see :class:`~lightvision.compression.pruning.Pruner`).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 3))
    >>> small, report = L1Pruner(ratio=0.5)(net, torch.randn(1, 1, 8, 8))
    >>> small[0].out_channels, small[2].in_channels, report.details["kept"]
    (2, 2, {'0': [2, 4]})

    References
    ----------
    H. Li, A. Kadav, I. Durdanovic, H. Samet, H. P. Graf, "Pruning Filters for Efficient
    ConvNets", ICLR 2017.
    """

    def __init__(self, ratio: float = 0.5, *, layers="auto") -> None:
        super().__init__(layers=layers)
        self.ratio = _check_ratio(ratio)

    def select(self, model: nn.Module, groups: list[ChannelGroup]) -> dict[str, Selection]:
        selections = {}
        for group in groups:
            scores = filter_matrix(model, group).abs().sum(1)
            divisions = group.divisions
            per = kept_count(group.size // divisions, self.ratio)
            selections[group.name] = Selection(keep_per_division(scores, per, divisions))
        return selections
