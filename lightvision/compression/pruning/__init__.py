"""Structured pruning that physically removes channels.

- :func:`channel_groups`, :func:`prune_channels`: the structural surgery shared by every pruner
  (``torch.fx`` graph, real removal, rewiring of every layer that reads the channels).
- :class:`Pruner` (base, a :class:`~lightvision.compression.CompressionMethod`) and
  :func:`prune` (functional facade).
- Pruners: :class:`L1Pruner` (Li et al. 2017, baseline), :class:`EPruner` (seed #4),
  :class:`FilterSketch` (seed #6), :class:`SSR` (seed #22, trains on ``data``), registered in
  :data:`lightvision.registry.PRUNERS`.

Fine-tuning, save and load are shared by every compression family:
:func:`lightvision.compression.fine_tune`, :func:`~lightvision.compression.save_compressed`,
:func:`~lightvision.compression.load_compressed`.
"""

from ..base import CompressionReport, fine_tune
from .base import (
    Pruner,
    Selection,
    filter_matrix,
    load_pruned,
    prune,
    save_pruned,
)
from .epruner import EPruner, exemplar_filters
from .filtersketch import FilterSketch, frequent_directions
from .magnitude import L1Pruner
from .ssr import SSR, group_prox
from .surgery import ChannelGroup, channel_groups, layer_like, prune_channels

__all__ = [
    "ChannelGroup",
    "CompressionReport",
    "EPruner",
    "FilterSketch",
    "L1Pruner",
    "Pruner",
    "SSR",
    "Selection",
    "channel_groups",
    "exemplar_filters",
    "filter_matrix",
    "fine_tune",
    "frequent_directions",
    "group_prox",
    "layer_like",
    "load_pruned",
    "prune",
    "prune_channels",
    "save_pruned",
]
