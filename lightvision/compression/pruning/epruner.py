"""EPruner (Lin et al., seed #4): keep the exemplar filters found by Affinity Propagation."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from ..._checks import check_array, check_int, check_random_state, check_real
from ..._rng import legacy_random_state
from ...registry import PRUNERS
from .base import (
    Pruner,
    Selection,
    filter_matrix,
    keep_per_division,
    per_group,
)
from .surgery import ChannelGroup

__all__ = ["EPruner", "exemplar_filters"]


def _check_damping(damping: Any) -> float:
    """``damping`` as a float in scikit-learn's range [0.5, 1)."""
    damping = check_real(damping, "damping")
    if not 0.5 <= damping < 1.0:
        raise ValueError(f"damping must be in [0.5, 1), got {damping}")
    return damping


def _check_filters(filters: Any) -> np.ndarray:
    """``filters`` as a finite float64 (n, d) array with n >= 1."""
    a = check_array(filters, "filters")
    if a.ndim != 2 or a.shape[0] < 1:
        raise ValueError(f"filters must be a non-empty (n, d) array, got shape {a.shape}")
    a = a.astype(np.float64, copy=False)
    if not np.isfinite(a).all():
        raise ValueError("filters contain NaN or infinite values")
    return a


def exemplar_filters(
    filters: np.ndarray | torch.Tensor,
    beta: float,
    *,
    damping: float = 0.5,
    max_iter: int = 200,
    convergence_iter: int = 15,
    random_state: Any = 0,
) -> np.ndarray:
    """Indices (sorted) of the exemplar filters chosen by Affinity Propagation.

    The similarity of filters i and j is ``-||a_i - a_j||^2`` and the preference of filter j
    is ``beta`` times the median of column j of the similarity matrix (its zero diagonal
    included), as in the EPruner code: a larger ``beta`` gives fewer exemplars. scikit-learn's
    ``AffinityPropagation`` runs on the precomputed similarities with ``random_state`` pinned
    (scikit-learn adds seeded noise to break ties). If it does not converge (scikit-learn then
    returns no exemplar), it is rerun with damping 0.9 and 5x the iterations; if that fails
    too, every filter is kept, with a warning, instead of a zero-width layer.

    Parameters
    ----------
    filters : (n, d) array, one flattened filter per row.
    beta : preference scale, > 0.
    damping, max_iter, convergence_iter, random_state : scikit-learn's AP settings (its
        defaults, with the seed pinned): damping in [0.5, 1), iteration counts >= 1;
        ``random_state`` None (fresh OS entropy, never numpy's global generator), an int
        (scikit-learn's stream below 2**32), a numpy ``RandomState`` (advanced) or
        ``Generator``.

    Returns
    -------
    int64 array of exemplar indices, at least one.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> centres = rng.normal(size=(3, 8))
    >>> filters = np.repeat(centres, 4, axis=0) + 0.01 * rng.normal(size=(12, 8))
    >>> len(exemplar_filters(filters, beta=1.0))
    3
    """
    from sklearn.cluster import AffinityPropagation
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics.pairwise import euclidean_distances

    beta = check_real(beta, "beta")
    damping = _check_damping(damping)
    max_iter = check_int(max_iter, "max_iter")
    convergence_iter = check_int(convergence_iter, "convergence_iter")
    check_random_state(random_state)
    a = _check_filters(filters)
    if a.shape[0] == 1:
        return np.zeros(1, dtype=np.int64)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below
        similarity = -euclidean_distances(a, squared=True)
    if not np.isfinite(similarity).all():
        raise ValueError(f"filters are too large: their squared distances overflow float64 "
                         f"(max |value| {np.abs(a).max():g})")
    preference = beta * np.median(similarity, axis=0)
    for damp, iters in ((damping, max_iter), (0.9, 5 * max_iter)):
        ap = AffinityPropagation(affinity="precomputed", preference=preference, damping=damp,
                                 max_iter=iters, convergence_iter=convergence_iter,
                                 random_state=legacy_random_state(random_state))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ap.fit(similarity)
        if len(ap.cluster_centers_indices_):
            return np.sort(np.asarray(ap.cluster_centers_indices_, dtype=np.int64))
    warnings.warn(f"Affinity Propagation did not converge on {a.shape[0]} filters; "
                  "keeping them all", RuntimeWarning, stacklevel=2)
    return np.arange(a.shape[0], dtype=np.int64)


@PRUNERS.register(name="epruner", tags={"structured"}, test_params={"beta": 0.8},
                  bench_params={"mild": {"beta": 0.4}, "strong": {"beta": 0.55}})
class EPruner(Pruner):
    """EPruner: per layer, keep the exemplars of Affinity Propagation on the filters.

    Each pruned layer keeps the filters that Affinity Propagation picks as exemplars (see
    :func:`exemplar_filters`), so the number kept adapts to how redundant the layer's filters
    are ([INTERP] a group split among the groups of a grouped convolution keeps the same
    number, ``round(exemplars / divisions)``, in each division: exemplars first, then the
    filters of largest L1 norm); the exemplars' trained weights initialise the pruned layer,
    and the next layer keeps the matching input channels. Selection needs only the trained
    weights (no data). As in the authors' code, the batch norms of pruned layers are
    re-initialised (``reset_norms=True``; False keeps the statistics of the kept channels).
    Prunes, with ``layers="auto"``, every single-convolution channel group: all convolutions
    of a VGG, the block-internal ones of a ResNet (the authors' choice: block outputs and the
    stem are never pruned).

    Parameters
    ----------
    beta : preference scale, > 0 (larger: fewer exemplars, more pruning). The paper's
        VGG-16/CIFAR-10 setting is 0.73 (-76 % FLOPs); ResNet-56 0.76; ResNet-110 0.6.
    layer_beta : a mapping ``{group name: beta}`` of overrides per layer (the authors' code
        uses 0.92 for VGG-16 convolutions 8 and later).
    layers : which groups to prune (see :class:`~lightvision.compression.pruning.Pruner`).
    reset_norms : re-initialise the batch norms of pruned layers (the authors' behaviour).
    damping, max_iter, convergence_iter, random_state : Affinity Propagation settings.

    References
    ----------
    M. Lin, R. Ji, S. Li, Y. Wang, Y. Wu, F. Huang, Q. Ye, "Network Pruning Using Adaptive
    Exemplar Filters", IEEE TNNLS 33:7357-7366, 2022 (seed #4).
    B. J. Frey, D. Dueck, "Clustering by Passing Messages Between Data Points", Science
    315:972-976, 2007.
    """

    def __init__(
        self,
        beta: float = 0.73,
        *,
        layer_beta: Mapping[str, float] | None = None,
        layers="auto",
        reset_norms: bool = True,
        damping: float = 0.5,
        max_iter: int = 200,
        convergence_iter: int = 15,
        random_state: Any = 0,
    ) -> None:
        super().__init__(layers=layers)
        self.beta = check_real(beta, "beta")
        if layer_beta is not None and not isinstance(layer_beta, Mapping):
            raise TypeError(f"layer_beta must be a mapping {{group name: beta}}, got "
                            f"{type(layer_beta).__name__}")
        wrong = [name for name in layer_beta or {} if not isinstance(name, str)]
        if wrong:
            raise TypeError(f"layer_beta's keys must be group names (str), got {wrong}")
        self.layer_beta = {name: check_real(b, f"layer_beta[{name!r}]")
                           for name, b in dict(layer_beta or {}).items()}
        self.reset_norms = bool(reset_norms)
        self.damping = _check_damping(damping)
        self.max_iter = check_int(max_iter, "max_iter")
        self.convergence_iter = check_int(convergence_iter, "convergence_iter")
        self.random_state = check_random_state(random_state, generator=False)
        import sklearn.cluster  # noqa: F401  (imported here, not timed in the report)

    def select(self, model: nn.Module, groups: list[ChannelGroup]) -> dict[str, Selection]:
        betas = per_group(self.layer_beta, self.beta, groups, "layer_beta")
        selections = {}
        for group, beta in zip(groups, betas, strict=True):
            filters = filter_matrix(model, group)
            exemplars = torch.from_numpy(exemplar_filters(
                filters, beta, damping=self.damping, max_iter=self.max_iter,
                convergence_iter=self.convergence_iter, random_state=self.random_state))
            # [INTERP] per division: exemplars first, then the largest L1 norms (the exemplars
            # exactly when the group has one division)
            l1 = filters.abs().sum(1)
            scores = l1 / (2 * l1.max()).clamp_min(torch.finfo(l1.dtype).tiny)
            scores[exemplars] += 1
            divisions = group.divisions
            per = round(len(exemplars) / divisions)
            selections[group.name] = Selection(keep_per_division(scores, per, divisions),
                                               reset_norms=self.reset_norms)
        return selections
