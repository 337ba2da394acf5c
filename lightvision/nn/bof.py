"""Bag-of-Features pooling (CBoF, seed #24): soft-quantised codeword histograms of feature maps."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .._checks import check_int, check_real, floating_dtype
from .._rng import random_streams
from ..registry import BLOCKS
from ._input import check_maps

__all__ = ["BoFPooling"]

_KINDS = ("rbf", "linear")
# Floors that keep the square root and the division by the width differentiable and finite.
_DIST2_FLOOR = 1e-12
_WIDTH_FLOOR = 1e-8
#: Largest feature magnitude of the k-means initialisation: squared distances summed over
#: channels stay finite in float64.
_MAX_FEATURE = 1e100


@BLOCKS.register(
    name="bof_pooling", deprecated_names=("BoFPooling",),
    tags={"pooling"},
    test_params={"in_channels": 8, "n_codewords": 4},
    bench_params={"in_channels": 64, "n_codewords": 64, "spatial_level": 1},
    input_shape=(64, 8, 8),
    test_input_shape=(8, 5, 7),
)
class BoFPooling(nn.Module):
    """Bag-of-Features pooling: a histogram of soft codeword memberships of the feature vectors.

    Every spatial position j of a feature map gives a feature vector x_j in R^C. Each of the
    ``n_codewords`` RBF neurons (codewords) v_k in R^C with a trainable width sigma_k measures
    its distance to x_j; the memberships are normalised over the codewords,

        u_k(x_j) = exp(-||x_j - v_k|| / sigma_k) / sum_m exp(-||x_j - v_m|| / sigma_m),

    and averaged over the positions into a histogram s = (1 / HW) sum_j u(x_j). The output size
    no longer depends on C, H or W, so a network with this pooling accepts any input size
    (the paper's scale-robustness claim).

    Implementation choices:

    * Distance: the Euclidean (square-rooted) distance divided by the width, as in the
      TNNLS/ICCV papers and the authors' official layer (``passalis/cbof``, ``models/bof.py``),
      not the squared distance over sigma^2 of the later Keras port. The squared distances are
      computed as ||x||^2 + ||v||^2 - 2 x.v (one 1x1 convolution), clipped at a tiny floor
      (1e-12) before the square root so that gradients stay finite.
    * Memberships are a softmax over the codewords (max-subtracted), so they never underflow to
      all zeros and have no NaN even for inputs far from every codeword (the official layer
      divided exp(.) by its sum + eps and underflowed). Widths enter as |sigma_k| (as the
      official layer's |gamma|), floored at 1e-8.
    * The Keras port's "multiply the histogram by n_codewords" trick is not used: it is in
      neither paper nor the official layer.
    * ``spatial_level=1`` (CBoF spatial segmentation, as the official layer): one shared
      codebook, histograms of the whole map and of its 4 quadrants, concatenated region by
      region as [whole, top-left, top-right, bottom-left, bottom-right], each block of
      ``n_codewords`` values. The split is at row H // 2 and column W // 2 (integer midpoints,
      as the official code), so for odd sizes the bottom/right quadrants get the extra
      row/column. Level 1 needs H, W >= 2.
    * ``kind="linear"`` [INTERP]: the TNNLS paper's "fast linear variant" is in no code found.
      Here the memberships are the softmax over codewords of a linear 1x1 projection,
      u(x) = softmax(W x + b), then averaged as above. With W_k = v_k / sigma^2 and
      b_k = -||v_k||^2 / (2 sigma^2) it equals the RBF memberships with the squared distance
      and one shared width, which is how :meth:`initialize_codewords` sets it.

    Call :meth:`initialize_codewords` on features of the (untrained) network before training,
    as the paper does; the constructor's random codebook (standard normal codewords, widths
    0.1 x their expected pairwise distance sqrt(2C)) is only a data-free placeholder.

    Parameters
    ----------
    in_channels : number of channels C of the input feature maps (>= 1).
    n_codewords : number of codewords (RBF neurons) N_K (>= 1); 64 in the paper's MNIST runs.
    spatial_level : 0 (one histogram) or 1 (whole map + 4 quadrants).
    kind : ``"rbf"`` (the paper's RBF memberships) or ``"linear"`` ([INTERP], see above).

    Attributes
    ----------
    codewords : ``nn.Parameter`` of shape (n_codewords, in_channels): the codewords v_k
        (``"rbf"``) or the projection weights W (``"linear"``).
    widths : ``nn.Parameter`` of shape (n_codewords,), the widths sigma_k (``"rbf"`` only;
        ``None`` for ``"linear"``).
    bias : ``nn.Parameter`` of shape (n_codewords,) (``"linear"`` only; ``None`` for ``"rbf"``).
    out_features : size of the output vector, ``n_codewords * (1 if spatial_level == 0 else 5)``.

    Shapes
    ------
    input : (N, C, H, W), any H, W >= 1 (>= 2 for ``spatial_level=1``), finite, of the
        layer's dtype (else ``TypeError``: convert one of them). Values so large that their
        squared distances to the codewords overflow the dtype (about 1e19 in float32) raise
        ``ValueError``, checked on the output histogram (the input is read only on failure).
    output : (N, n_codewords) for ``spatial_level=0``, (N, 5 * n_codewords) for level 1; each
        block of ``n_codewords`` values is a histogram that sums to 1.

    References
    ----------
    N. Passalis, A. Tefas, "Training Lightweight Deep Convolutional Neural Networks Using
    Bag-of-Features Pooling", IEEE Transactions on Neural Networks and Learning Systems
    30(6):1705-1715, 2019 (seed #24).
    N. Passalis, A. Tefas, "Learning Bag-of-Features Pooling for Deep Convolutional Neural
    Networks", ICCV 2017 (CBoF).

    Examples
    --------
    >>> import torch
    >>> from lightvision.nn.bof import BoFPooling
    >>> pool = BoFPooling(16, n_codewords=8, spatial_level=1)
    >>> features = torch.randn(4, 16, 6, 6)
    >>> pool.initialize_codewords(features, n_samples=100, random_state=0)
    BoFPooling(in_channels=16, n_codewords=8, spatial_level=1, kind='rbf')
    >>> out = pool(torch.randn(2, 16, 7, 5))  # any spatial size
    >>> out.shape
    torch.Size([2, 40])
    >>> torch.allclose(out.view(2, 5, 8).sum(-1), torch.ones(2, 5))
    True
    """

    def __init__(
        self,
        in_channels: int,
        *,
        n_codewords: int = 64,
        spatial_level: int = 0,
        kind: Literal["rbf", "linear"] = "rbf",
    ) -> None:
        super().__init__()
        self.in_channels = check_int(in_channels, "in_channels", 1)
        self.n_codewords = check_int(n_codewords, "n_codewords", 1)
        self.spatial_level = check_int(spatial_level, "spatial_level", 0)
        if self.spatial_level > 1:
            raise ValueError(f"spatial_level must be 0 or 1, got {spatial_level}")
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
        self.kind = kind
        self.out_features = self.n_codewords * (5 if self.spatial_level == 1 else 1)
        k, c = self.n_codewords, self.in_channels
        if kind == "rbf":
            self.codewords = nn.Parameter(torch.randn(k, c))
            # The initialize_codewords rule (0.1 x mean pairwise codeword distance) applied to
            # the expected distance between two standard normal codewords, sqrt(2C).
            self.widths = nn.Parameter(torch.full((k,), 0.1 * (2.0 * c) ** 0.5))
            self.register_parameter("bias", None)
        else:
            bound = 1.0 / c**0.5  # nn.Linear's default range
            self.codewords = nn.Parameter(torch.empty(k, c).uniform_(-bound, bound))
            self.register_parameter("widths", None)
            self.bias = nn.Parameter(torch.zeros(k))

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, n_codewords={self.n_codewords}, "
            f"spatial_level={self.spatial_level}, kind={self.kind!r}"
        )

    # -- forward -----------------------------------------------------------------------------
    def _check_input(self, x: torch.Tensor) -> None:
        check_maps(x, self.in_channels, "BoFPooling input",
                   min_size=2 if self.spatial_level == 1 else 1, dtype=floating_dtype(self))

    def _check_memberships(self, x: torch.Tensor, summary: torch.Tensor) -> None:
        """ValueError if ``summary`` (memberships or their histogram; NaN propagates through
        the mean) is not finite: the input's squared distances (or, for ``"linear"``, its
        projections) overflowed, or the parameters are not finite. Costs one reduction of
        ``summary``; the input is inspected only on failure. Skipped while tracing."""
        if (isinstance(x, torch.fx.Proxy) or torch.jit.is_tracing()
                or torch.compiler.is_compiling() or bool(torch.isfinite(summary).all())):
            return
        if not all(bool(torch.isfinite(p).all()) for p in self.parameters()):
            raise ValueError("BoFPooling parameters (codewords, widths or bias) are not "
                             "finite: re-initialise the layer (initialize_codewords)")
        top = float(x.detach().abs().max())
        what = "projections" if self.kind == "linear" else "distances to the codewords"
        raise ValueError(f"BoFPooling input holds values up to {top:.3g} in magnitude: its "
                         f"{what} overflow {x.dtype} (largest finite "
                         f"{torch.finfo(x.dtype).max:.3g}) and the memberships are not "
                         f"finite; rescale the input")

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        """Membership logits (N, K, H, W) before the softmax over codewords."""
        weight = self.codewords[:, :, None, None]
        if self.kind == "linear":
            return F.conv2d(x, weight, self.bias)
        x2 = x.square().sum(1, keepdim=True)  # (N, 1, H, W)
        v2 = self.codewords.square().sum(1)[None, :, None, None]  # (1, K, 1, 1)
        dist2 = x2 + v2 - 2.0 * F.conv2d(x, weight)
        dist = dist2.clamp_min(_DIST2_FLOOR).sqrt()
        return -dist / self.widths.abs().clamp_min(_WIDTH_FLOOR)[None, :, None, None]

    def memberships(self, x: torch.Tensor) -> torch.Tensor:
        """Soft memberships u_k(x_j) of every position to every codeword, shape (N, K, H, W);
        they sum to 1 over the codeword axis."""
        self._check_input(x)
        u = torch.softmax(self._logits(x), dim=1)
        self._check_memberships(x, u)
        return u

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        u = torch.softmax(self._logits(x), dim=1)
        histogram = u.mean(dim=(2, 3))
        self._check_memberships(x, histogram)
        if self.spatial_level == 0:
            return histogram
        h, w = u.shape[2] // 2, u.shape[3] // 2
        quadrants = (u[:, :, :h, :w], u[:, :, :h, w:], u[:, :, h:, :w], u[:, :, h:, w:])
        return torch.cat([histogram, *(q.mean(dim=(2, 3)) for q in quadrants)], dim=1)

    # -- initialisation ----------------------------------------------------------------------
    @torch.no_grad()
    def initialize_codewords(
        self,
        features: Any,
        *,
        n_samples: int = 10_000,
        random_state: int | np.random.RandomState | np.random.Generator | None = None,
        n_init: int = 5,
        max_iter: int = 100,
        width_scale: float = 0.1,
    ) -> BoFPooling:
        """Initialise the codebook by k-means on feature vectors sampled from feature maps.

        Every spatial position of ``features`` gives one vector in R^C; ``n_samples`` of them
        (all if fewer) are drawn uniformly without replacement over all the batches (each
        vector gets a uniform random key and the ``n_samples`` smallest keys are kept while
        streaming, so memory stays O(n_samples + batch)) and clustered by scikit-learn's
        ``KMeans``. The codewords become the cluster centres and every width becomes
        ``width_scale`` x the mean pairwise Euclidean distance between the centres (the
        official CBoF layer's rule, with its 0.1 default; not the Keras port's squared value).
        With one codeword, the mean distance of the sampled vectors to it is used instead.

        For ``kind="linear"`` [INTERP], with those centres c_k and width sigma, the projection
        is set to W_k = c_k / sigma^2 and b_k = -||c_k||^2 / (2 sigma^2), i.e. the RBF
        memberships of the squared distance with one shared width.

        Parameters
        ----------
        features : feature maps (N, C, H, W) as a tensor or array, or an iterable of them
            (e.g. a ``DataLoader``; from batches that are tuples/lists the first item is used).
        n_samples : number of feature vectors to cluster (>= n_codewords).
        random_state : None, int, ``RandomState`` or ``Generator``, for the sampling and for
            k-means (None: fresh entropy; numpy's global generator is never used).
        n_init : k-means restarts (5 as the official code).
        max_iter : k-means iterations per restart (100 as the paper code).
        width_scale : widths = width_scale x the mean pairwise codeword distance.

        Returns
        -------
        self, with ``codewords`` and ``widths`` (or ``bias``) set in place.
        """
        from sklearn.cluster import KMeans

        n_samples = check_int(n_samples, "n_samples", 1)
        n_init = check_int(n_init, "n_init", 1)
        max_iter = check_int(max_iter, "max_iter", 1)
        width_scale = check_real(width_scale, "width_scale", 0.0)
        seed, rng = random_streams(random_state)

        if isinstance(features, torch.Tensor | np.ndarray):
            batches: Iterable[Any] = [features]
        elif isinstance(features, Iterable) and not isinstance(features, str | bytes):
            batches = features
        else:
            raise TypeError(f"features must be feature maps (N, C, H, W) as a tensor or array, "
                            f"or an iterable of them, got {type(features).__name__}")
        sample, keys = np.empty((0, self.in_channels)), np.empty(0)
        n_batches = 0
        for batch in batches:
            if isinstance(batch, tuple | list) and batch:
                batch = batch[0]
            vectors = np.concatenate([sample, self._feature_vectors(batch)])
            keys = np.concatenate([keys, rng.random(len(vectors) - len(sample))])
            if len(keys) > n_samples:  # the n_samples smallest keys so far
                keep = np.argpartition(keys, n_samples - 1)[:n_samples]
                vectors, keys = vectors[keep], keys[keep]
            sample = vectors
            n_batches += 1
        if not n_batches:
            raise ValueError("features is empty: no feature maps to initialise the codebook")
        if len(sample) < self.n_codewords:
            raise ValueError(
                f"need at least n_codewords={self.n_codewords} feature vectors for k-means, "
                f"got {len(sample)}"
            )

        kmeans = KMeans(
            n_clusters=self.n_codewords, n_init=n_init, max_iter=max_iter, random_state=seed
        )
        centres = kmeans.fit(sample).cluster_centers_
        k = self.n_codewords
        if k > 1:
            diff = centres[:, None, :] - centres[None, :, :]
            mean_dist = np.sqrt(np.square(diff).sum(-1)).sum() / (k * (k - 1))
        else:
            mean_dist = np.sqrt(np.square(sample - centres[0]).sum(-1)).mean()
        if not np.isfinite(mean_dist) or mean_dist <= 0:
            mean_dist = 1.0  # degenerate data (all vectors equal): keep a unit scale
        width = width_scale * float(mean_dist)

        def to_param(array: np.ndarray, param: nn.Parameter) -> torch.Tensor:
            return torch.as_tensor(array, dtype=param.dtype, device=param.device)

        if self.kind == "rbf":
            self.codewords.copy_(to_param(centres, self.codewords))
            self.widths.fill_(width)
        else:
            self.codewords.copy_(to_param(centres / width**2, self.codewords))
            bias = -np.square(centres).sum(1) / (2.0 * width**2)
            self.bias.copy_(to_param(bias, self.bias))
        return self

    def _feature_vectors(self, batch: Any) -> np.ndarray:
        """(N * H * W, C) float64 array of the feature vectors of one (N, C, H, W) batch."""
        if isinstance(batch, torch.Tensor):
            batch = batch.detach().cpu()
            array = batch.numpy() if batch.dtype != torch.bfloat16 else batch.float().numpy()
        elif batch is None:
            raise TypeError("features must be feature maps (N, C, H, W), got None")
        else:
            array = np.asarray(batch)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"features must be real numbers (bool, int or float), got dtype "
                            f"{array.dtype}")
        if array.ndim != 4 or array.shape[1] != self.in_channels:
            raise ValueError(
                f"features must be feature maps (N, C, H, W) with C = in_channels = "
                f"{self.in_channels} channels, got shape {array.shape}"
            )
        array = array.astype(np.float64)
        # squared distances of k-means and of the forward pass must stay finite
        if array.size and not np.abs(array).max() <= _MAX_FEATURE:
            raise ValueError(f"features must be finite and at most {_MAX_FEATURE:g} in "
                             f"magnitude, got values up to {np.abs(array).max():.3g}")
        return array.transpose(0, 2, 3, 1).reshape(-1, self.in_channels)

