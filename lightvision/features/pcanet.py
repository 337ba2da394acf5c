"""PCANet (Chan et al. 2015), TFNet and HybridNet (Verma et al.) as scikit-learn transformers.

All three share the core in :mod:`lightvision.features.filterbank`: filter banks learned from
image patches, applied in cascade with "same" zero padding, binary hashing of the last stage's
responses and block-wise histograms, giving one (sparse) feature vector per image.
"""

from __future__ import annotations

import math
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .._checks import (
    check_bool,
    check_int,
    check_int_sequence,
    check_real,
    is_integer,
)
from .._rng import legacy_random_state
from ..registry import FEATURES
from .filterbank import (
    MAX_HASH_BITS,
    BlockHistogram,
    ConvBank,
    amplitude,
    as_image_batch,
    block_stride,
    cascade,
    check_images,
    extract_features,
    input_scale,
    pca_conv_bank,
    pca_filter_bank,
    sample_patches,
    tensor_conv_bank,
    tucker_filter_bank,
)

__all__ = ["HybridNet", "PCANet", "TFNet"]

_TAGS = ("images", "unsupervised", "sparse_output")
#: Registry metadata: ``bench_params`` ({} = the MNIST configuration) are for 28x28 images;
#: 8x8 digits take 3x3 patches and 4x4 blocks (stride 2, 3x3 blocks); ``test_params`` are
#: sized for digits and also run on 28x28 images.
_META = {"dataset": "fashion_mnist", "input_shape": (28, 28),
         "test_dataset": "digits", "test_input_shape": (8, 8),
         "dataset_params": {"digits": {"patch_size": 3, "block_size": 4}}}


@dataclass(frozen=True)
class _Config:
    """Validated hyperparameters shared by the PCANet family."""

    patch_sizes: tuple[int, ...]
    block_size: int
    stride: int
    pyramid: tuple[int, ...] | None
    n_patches: int | None
    batch_size: int


#: Largest cascade output of one batch (float32 maps of the last stage, all chains) that
#: ``fit`` accepts: the maps grow as the product of the filter counts, so a deep or wide
#: network is refused up front with the estimate rather than failing with a MemoryError.
MAX_BATCH_BYTES = 2 ** 33  # 8 GiB
#: Largest |pixel| x input_scale_ that transform filters in float32 without overflow.
_MAX_SCALED = 2.0 ** 100


def _check_bits(n_bits: int, name: str) -> None:
    if n_bits > MAX_HASH_BITS:
        raise ValueError(
            f"{name} gives {n_bits} last-stage filters, hence 2^{n_bits} histogram bins per "
            f"block; at most {MAX_HASH_BITS} are supported"
        )


class _FilterNet(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator, ABC):
    """Plumbing shared by PCANet, TFNet and HybridNet (validation, patch sampling, output)."""

    def _config(self, n_stages: int) -> _Config:
        """Validate the shared hyperparameters."""
        if is_integer(self.patch_size):
            patch_sizes = (check_int(self.patch_size, "patch_size"),) * n_stages
        else:
            patch_sizes = check_int_sequence(self.patch_size, "patch_size")
            if len(patch_sizes) != n_stages:
                raise ValueError(f"patch_size must be an int or give one size per stage "
                                 f"({n_stages}), got {self.patch_size!r}")
        if any(k % 2 == 0 for k in patch_sizes):
            raise ValueError(f"patch_size must be odd (\"same\" padding by (k - 1) / 2), "
                             f"got {self.patch_size!r}")
        block_size = check_int(self.block_size, "block_size")
        overlap = check_real(self.overlap, "overlap", 0.0, strict=False)
        if overlap >= 1.0:
            raise ValueError(f"overlap must be in [0, 1), got {self.overlap!r}")
        stride = block_stride(block_size, overlap)
        if stride < 1:
            raise ValueError(f"overlap={self.overlap!r} with block_size={block_size} rounds "
                             f"the block stride to 0; lower overlap")
        pyramid = None if self.pyramid is None else check_int_sequence(self.pyramid, "pyramid")
        n_patches = None if self.n_patches is None else check_int(self.n_patches, "n_patches")
        check_bool(self.sparse, "sparse")
        return _Config(patch_sizes, block_size, stride, pyramid, n_patches,
                       check_int(self.batch_size, "batch_size"))

    def _fit_images(self, X: Any, config: _Config) -> np.ndarray:
        """Check the training images against the patch and block sizes; record their shape."""
        X = check_images(X)
        _, height, width, channels = X.shape
        smallest = max(*config.patch_sizes, config.block_size)
        if min(height, width) < smallest:
            raise ValueError(
                f"X holds {height}x{width} images, smaller than the patch size "
                f"{max(config.patch_sizes)} or the block size {config.block_size}"
            )
        self.n_channels_ = channels
        self.image_shape_ = (height, width)
        self.input_scale_ = input_scale(amplitude(X))
        return X

    def _check_memory(self, config: _Config, n_images: int,
                      chains: Sequence[Sequence[int]]) -> None:
        """Refuse, before any work, a network whose last-stage maps of one batch (float32,
        ``chains``: the filter count of every stage of each view) would exceed
        :data:`MAX_BATCH_BYTES`."""
        height, width = self.image_shape_
        maps = sum(math.prod(counts) for counts in chains)
        batch = min(config.batch_size, n_images)
        size = batch * maps * height * width * 4
        if size > MAX_BATCH_BYTES:
            counts = chains[0]
            filters = f"{counts[0]}" if len(set(counts)) == 1 else " x ".join(map(str, counts))
            raise ValueError(
                f"{type(self).__name__} with {len(counts)} stages of {filters} filters gives "
                f"{maps:,} maps of "
                f"{height}x{width} per image: about {size / 2 ** 30:,.1f} GiB of float32 maps "
                f"per batch of {batch} images, beyond the {MAX_BATCH_BYTES / 2 ** 30:g} GiB "
                f"limit; use fewer stages or filters (or a smaller batch_size)")

    def _transform_images(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = check_images(X)
        scaled = amplitude(X) * self.input_scale_
        if scaled > _MAX_SCALED:
            raise ValueError(f"X holds values up to {amplitude(X):.3g}, too large for the float32 "
                             f"filtering of a transformer fitted on values up to "
                             f"{_MAX_SCALED / self.input_scale_:.3g}")
        if X.shape[3] != self.n_channels_:
            raise ValueError(f"X has {X.shape[3]} channel(s) but the transformer was fitted on "
                             f"{self.n_channels_}")
        if X.shape[1:3] != self.image_shape_:
            raise ValueError(f"X holds {X.shape[1]}x{X.shape[2]} images but the transformer was "
                             f"fitted on {self.image_shape_[0]}x{self.image_shape_[1]} images")
        return X

    def _check_filter_count(self, stage: int, patch_size: int, n_filters: int) -> None:
        """A PCA bank has at most C k^2 - 1 filters: its patches are mean-removed, so the
        constant direction of the C k^2 dimensions is null (its eigenvalue is 0 and the
        eigenvector would hash rounding noise)."""
        dim = (self.n_channels_ if stage == 0 else 1) * patch_size * patch_size
        if n_filters > dim - 1:
            raise ValueError(
                f"n_filters[{stage}] = {n_filters} exceeds {dim - 1}, the rank of the "
                f"mean-removed {'x'.join(map(str, (patch_size, patch_size)))} patches "
                f"(patch dimension {dim} minus the null constant direction)")

    def _rng(self) -> np.random.Generator:
        """The patch-sampling generator; None draws fresh OS entropy rather than numpy's
        global state, which is never touched."""
        return np.random.default_rng(
            legacy_random_state(self.random_state).randint(2 ** 31))

    def _patches(self, X: np.ndarray, chains: Sequence[Sequence[ConvBank]], stage: int,
                 config: _Config, rng: np.random.Generator) -> Iterator[torch.Tensor]:
        """Training patches of ``stage``: of the images (stage 0) or of the previous stage's
        output maps of every chain, pooled."""
        n, height, width, channels = X.shape
        scale = self.input_scale_

        def maps(start: int, stop: int) -> torch.Tensor:
            x = as_image_batch(X[start:stop], scale)
            if stage == 0:
                return x[:, None]
            return torch.cat([cascade(x, banks) for banks in chains], dim=1)[:, :, None]

        n_maps = 1 if stage == 0 else sum(math.prod(b[0].shape[0] for b in banks)
                                          for banks in chains)
        return sample_patches(
            maps, n_images=n, n_maps=n_maps, n_channels=channels if stage == 0 else 1,
            image_shape=(height, width), patch_size=config.patch_sizes[stage],
            n_patches=config.n_patches, rng=rng, batch_size=config.batch_size,
        )

    def _histogram(self, config: _Config, chain: Sequence[ConvBank]) -> BlockHistogram:
        counts = [b[0].shape[0] for b in chain]
        return BlockHistogram(self.image_shape_, block_size=config.block_size,
                              stride=config.stride, n_bits=counts[-1],
                              n_groups=math.prod(counts[:-1]), pyramid=config.pyramid)

    @abstractmethod
    def _views(self) -> list[tuple[list[ConvBank], BlockHistogram]]:
        """(conv banks, histogram) of each view of the fitted transformer."""

    def _extract(self, X: Any, *, concatenate: bool) -> list[sp.csr_matrix | np.ndarray]:
        X = self._transform_images(X)
        return extract_features(X, self._views(),
                                batch_size=check_int(self.batch_size, "batch_size"),
                                sparse=check_bool(self.sparse, "sparse"),
                                concatenate=concatenate, scale=self.input_scale_)

    def transform(self, X: Any) -> sp.csr_matrix | np.ndarray:
        """Feature vectors of images ``X``.

        Parameters
        ----------
        X : array-like, shape (n, H, W) or (n, H, W, C), real dtype
            Same channel count and image size as in ``fit``.

        Returns
        -------
        scipy.sparse.csr_matrix (``sparse=True``) or ndarray, float32, shape
        (n, n_features_out_)
        """
        return self._extract(X, concatenate=True)[0]

    @property
    def _n_features_out(self) -> int:
        return self.n_features_out_

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True  # (n, H, W) images; (n, H, W, C) for colour
        tags.transformer_tags.preserves_dtype = []  # always float32 histograms
        return tags


_PATCH_DOC = """    patch_size : int or sequence of int, default=7
        Side k of the square patches (filters), odd ("same" zero padding by (k - 1) / 2, as
        Chan's code assumes); one value for all stages or one per stage.
"""

_COMMON_DOC = """    block_size : int, default=7
        Side of the square histogram blocks.
    overlap : float in [0, 1), default=0.5
        Block overlap ratio; stride = MATLAB round((1 - overlap) * block_size) (7, 0.5 -> 4).
    pyramid : sequence of int or None, default=None
        Spatial-pyramid levels, e.g. (4, 2, 1): block histograms are max-pooled in every
        pyramid cell and the whole vector is L2-normalised. None: each block histogram is
        rescaled to sum 2^L (L = filters of the last stage) and all are concatenated.
    n_patches : int or None, default=100_000
        Training patches per stage, drawn uniformly without replacement (``random_state``)
        from all k x k patches (stride 1) of the unpadded training maps; None uses all of
        them. [INTERP] Chan and Verma use all patches of up to 150 000 images; 100 000 patches
        estimate the filters of a k^2 <= 75 dimensional patch space closely at a fraction of
        the cost.
    sparse : bool, default=True
        Return a ``scipy.sparse.csr_matrix`` (else a dense ndarray), float32.
    batch_size : int, default=64
        Images per batch in ``fit`` and ``transform``; memory stays bounded by about
        batch_size x (number of maps) x H x W floats whatever the number of images.
    random_state : int, RandomState instance or None, default=None
        Seeds the sampling of training patches.
"""

_OUTPUT_DOC = """\
    Output: for each image, the last stage's L_S responses of every map of the previous
    stages are binarised (x > 0) and hashed to T = sum_j 2^(L_S - j) H(O_j) (first filter =
    most significant bit); block histograms of T with 2^L_S bins follow. Feature order: (hashed map
    g, block in row-major order of the block grid, bin), or (g, pyramid level, cell in
    row-major order, bin) with a pyramid; Chan's MATLAB vector holds the same numbers in
    another fixed order. Dimension: G 2^L_S n_blocks, or G 2^L_S sum(p^2) with a pyramid,
    where G is the number of hashed maps per image.
"""


@FEATURES.register(
    name="pcanet", deprecated_names=("PCANet",),
    tags=_TAGS,
    test_params={"patch_size": 3, "n_filters": (2, 2), "block_size": 4, "random_state": 0},
    bench_params={},
    **_META,
)
class PCANet(_FilterNet):
    __doc__ = f"""PCANet: cascaded PCA filter banks, binary hashing and block histograms
    (Chan et al. 2015).

    A scikit-learn transformer from grey (n, H, W) or colour (n, H, W, C) images of any real
    dtype to one feature vector per image. The defaults are the paper's MNIST configuration:
    two stages of 8 filters of 7x7, 7x7 blocks with overlap 0.5 (stride 4), no pyramid, which
    on 28x28 images gives 8 x 256 x 36 = 73,728 features.

    Algorithm (Chan's MATLAB code, ``PCA_FilterBank.m``, ``PCA_output.m``,
    ``HashingHist.m``). Stage s learns L_s filters from the k x k patches (stride 1) of its
    input maps, unpadded: each patch is vectorised with the channels stacked, its own mean is
    removed, and the filters are the L_s leading eigenvectors of R = sum x x^T / count. The
    maps are filtered with "same" size (zero padding by (k - 1) / 2) by projecting the
    mean-removed patches on the filters. Stage 1 filters the images; every later stage treats
    each output map of the previous stage as a separate grey image, so two stages give
    L_1 L_2 maps per image; the second stage's filters are learned on the first stage's outputs
    of the training images.

{_OUTPUT_DOC}
    Parameters
    ----------
{_PATCH_DOC}    n_filters : sequence of int, default=(8, 8)
        Filters per stage; its length is the number of stages (1, 2 or more). Stage 1 needs
        L_1 <= C k^2 - 1, later stages L_s <= k^2 - 1 (patches are mean-removed, so one of
        the C k^2 directions is null), and the last stage at most 16.
{_COMMON_DOC}
    Attributes
    ----------
    filters_ : list of ndarray of float64, shape (L_s, C_s, k_s, k_s)
        Orthonormal PCA filters of each stage (C_1 = C, later C_s = 1). [INTERP] Each
        eigenvector's sign makes its largest-magnitude entry positive.
    n_channels_ : int
        Channels C of the training images (1 for grey).
    image_shape_ : tuple of int
        (H, W) of the training images; ``transform`` needs the same.
    histogram_ : :class:`~lightvision.features.filterbank.BlockHistogram`
        The output layer.
    n_features_out_ : int
        Length of the feature vector.

    References
    ----------
    .. [1] T.-H. Chan, K. Jia, S. Gao, J. Lu, Z. Zeng, Y. Ma, "PCANet: A Simple Deep Learning
       Baseline for Image Classification?", IEEE Trans. Image Processing 24(12):5017-5032,
       2015.

    Examples
    --------
    >>> from lightvision.datasets import load_digits
    >>> from lightvision.features import PCANet
    >>> X, y = load_digits()
    >>> net = PCANet(patch_size=3, n_filters=(2, 2), block_size=4, random_state=0)
    >>> features = net.fit(X[:200]).transform(X[:5])
    >>> features.shape  # 2 maps x 2^2 bins x 3x3 blocks (stride 2 on 8x8)
    (5, 72)
    >>> features.sum(axis=1).T.tolist()  # every block histogram sums 2^2
    [[72.0, 72.0, 72.0, 72.0, 72.0]]
    """

    def __init__(
        self,
        patch_size: int | Sequence[int] = 7,
        n_filters: Sequence[int] = (8, 8),
        *,
        block_size: int = 7,
        overlap: float = 0.5,
        pyramid: Sequence[int] | None = None,
        n_patches: int | None = 100_000,
        sparse: bool = True,
        batch_size: int = 64,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.patch_size = patch_size
        self.n_filters = n_filters
        self.block_size = block_size
        self.overlap = overlap
        self.pyramid = pyramid
        self.n_patches = n_patches
        self.sparse = sparse
        self.batch_size = batch_size
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> PCANet:
        """Learn the PCA filters of every stage from images ``X``.

        Parameters
        ----------
        X : array-like, shape (n, H, W) or (n, H, W, C), real dtype
        y : ignored

        Returns
        -------
        self
        """
        n_filters = check_int_sequence(self.n_filters, "n_filters")
        _check_bits(n_filters[-1], "n_filters")
        config = self._config(len(n_filters))
        X = self._fit_images(X, config)
        self._check_memory(config, len(X), [n_filters])
        rng = self._rng()
        banks: list[ConvBank] = []
        self.filters_ = []
        for stage, (k, n) in enumerate(zip(config.patch_sizes, n_filters, strict=True)):
            self._check_filter_count(stage, k, n)
            filters = pca_filter_bank(self._patches(X, [banks], stage, config, rng), n)
            self.filters_.append(filters)
            banks.append(pca_conv_bank(filters))
        self.histogram_ = self._histogram(config, banks)
        self.n_features_out_ = self.histogram_.n_features
        return self

    def _views(self) -> list[tuple[list[ConvBank], BlockHistogram]]:
        return [([pca_conv_bank(f) for f in self.filters_], self.histogram_)]


class _TensorMixin:
    """Tucker hyperparameter checks and filter learning shared by TFNet and HybridNet."""

    rank: int
    max_iter: int
    n_iter_max: Any
    tol: float

    def _check_tucker(self) -> None:
        self._rank = check_int(self.rank, "rank", minimum=2)
        if self.n_iter_max != "deprecated":
            warnings.warn(f"{type(self).__name__}(n_iter_max=) is deprecated; use max_iter=",
                          DeprecationWarning, stacklevel=3)
            self._max_iter = check_int(self.n_iter_max, "n_iter_max")
        else:
            self._max_iter = check_int(self.max_iter, "max_iter")
        self._tol = check_real(self.tol, "tol", 0.0, strict=False)

    def _tensor_bits(self, stage: int, channels: int) -> int:
        """Tucker filters of a stage: rank^2 - 1 for grey maps, rank^2 min(rank, C) for colour
        images."""
        rank = self._rank
        return rank ** 2 * min(rank, channels) if stage == 0 and channels > 1 else rank ** 2 - 1

    def _learn_tucker(self, patches: torch.Tensor, k: int,
                      rng: np.random.Generator) -> tuple[np.ndarray, list[np.ndarray],
                                                         np.ndarray]:
        if self._rank > k:
            raise ValueError(f"rank = {self._rank} exceeds the patch size {k}")
        return tucker_filter_bank(patches.double().numpy(), rank=self._rank,
                                  max_iter=self._max_iter, tol=self._tol,
                                  random_state=int(rng.integers(2 ** 31)))


_TUCKER_DOC = """    rank : int, default=3
        Tucker rank of every patch mode (Verma: 3); grey maps give rank^2 - 1 filters, colour
        images rank^2 min(rank, C) at stage 1.
    max_iter : int, default=10
        Maximum HOOI iterations after the HOSVD initialisation (Verma: 10).
    tol : float, default=1e-6
        HOOI stops when the relative reconstruction error changes by less than ``tol``
        (Verma: 1e-6 on the change of fit = 1 - error). The Tucker decomposition needs the
        stage's training patches in memory: keep ``n_patches`` finite on large sets.
    n_iter_max : int, deprecated
        Former name of ``max_iter`` (it still works, with a ``DeprecationWarning``).
"""


@FEATURES.register(
    name="tfnet", deprecated_names=("TFNet",),
    tags=(*_TAGS, "tensor"),
    test_params={"patch_size": 3, "rank": 2, "block_size": 4, "random_state": 0},
    bench_params={},
    **_META,
)
class TFNet(_TensorMixin, _FilterNet):
    __doc__ = f"""TFNet: PCANet with tensor-factorisation filters (Verma et al., the "minutiae"
    view of HybridNet).

    Patches are kept as tensors N x k x k (grey) or N x k x k x C (colour) and the filters come
    from their Tucker decomposition instead of PCA. Defaults: grey 28x28 images with the
    PCANet MNIST configuration (7x7 patches, two stages, 7x7 blocks, overlap 0.5, no
    pyramid) and Verma's Tucker settings (rank 3, at most 10 HOOI iterations, tolerance 1e-6):
    8 filters per stage, 8 x 256 x 36 = 73,728 features. [INTERP] Verma et al. report the
    colour (CIFAR) configuration ``patch_size=5, block_size=8, pyramid=(4, 2, 1)``, which on
    32x32 RGB images gives 27 x 256 x 21 = 145,152 features; the grey defaults follow PCANet's
    MNIST setting, as the papers give no other.

    Algorithm (``create_tensor_patches_revised.m``, ``TD_UTF.m``,
    ``Tensor_output_revised.m``). For each stage, the patch tensor (all k x k patches at
    stride 1 of the unpadded maps, or ``n_patches`` of them) has its mean patch subtracted,
    with **no per-patch mean removal**, and is decomposed by HOSVD + HOOI on the patch modes
    only (``tensorly.decomposition.partial_tucker``); each factor column's sign makes its
    largest-magnitude entry positive. The filters are outer products of factor columns:
    u_i o v_j o w_l (i, j, l = 1..3; last index fastest) for colour images -> 27 filters, and
    u_i o v_j -> 9 for grey maps, of which the second-to-last is dropped (Verma's
    ``Filters{{end-1}} = Filters{{end}}``) -> 8. Filtering projects the zero-padded patches
    minus the mean patch on the filters. Every later stage treats each output map as a grey
    image, as in PCANet.

{_OUTPUT_DOC}
    Parameters
    ----------
{_PATCH_DOC}    n_stages : int, default=2
        Number of filter stages.
{_TUCKER_DOC}{_COMMON_DOC}
    Attributes
    ----------
    filters_ : list of ndarray of float64, shape (L_s, C_s, k_s, k_s)
        Tucker filters of each stage.
    factors_ : list of list of ndarray of float64
        Sign-fixed Tucker factors of each stage: rows (k, r), columns (k, r) and, for colour
        images at stage 1, channels (C, min(r, C)).
    patch_means_ : list of ndarray of float64, shape (C_s, k_s, k_s)
        Mean training patch of each stage.
    n_channels_, image_shape_, histogram_, n_features_out_ :
        As in :class:`PCANet`.

    References
    ----------
    .. [1] S. Verma, C. Wang, L. Zhu, W. Liu, "Attn-HybridNet: Improving Discriminability of
       Hybrid Features with Attention Fusion", IEEE Trans. Cybernetics, 2021.
       arXiv:2010.06096.
    .. [2] S. Verma, W. Liu, C. Wang, L. Zhu, "Hybrid Networks: Improving Deep Learning
       Networks via Integrating Two Views of Images", ICONIP 2018.

    Examples
    --------
    >>> from lightvision.datasets import load_digits
    >>> from lightvision.features import TFNet
    >>> X, y = load_digits()
    >>> net = TFNet(patch_size=3, rank=2, block_size=4, random_state=0).fit(X[:200])
    >>> [f.shape[0] for f in net.filters_]  # 2^2 - 1 filters per grey stage
    [3, 3]
    >>> net.transform(X[:5]).shape  # 3 maps x 2^3 bins x 9 blocks
    (5, 216)
    """

    def __init__(
        self,
        patch_size: int | Sequence[int] = 7,
        n_stages: int = 2,
        *,
        rank: int = 3,
        max_iter: int = 10,
        tol: float = 1e-6,
        block_size: int = 7,
        overlap: float = 0.5,
        pyramid: Sequence[int] | None = None,
        n_patches: int | None = 100_000,
        sparse: bool = True,
        batch_size: int = 64,
        random_state: int | np.random.RandomState | None = None,
        n_iter_max: Any = "deprecated",
    ) -> None:
        self.patch_size = patch_size
        self.n_stages = n_stages
        self.rank = rank
        self.max_iter = max_iter
        self.tol = tol
        self.block_size = block_size
        self.overlap = overlap
        self.pyramid = pyramid
        self.n_patches = n_patches
        self.sparse = sparse
        self.batch_size = batch_size
        self.random_state = random_state
        self.n_iter_max = n_iter_max

    def fit(self, X: Any, y: Any = None) -> TFNet:
        """Learn the Tucker filters of every stage from images ``X``.

        Parameters
        ----------
        X : array-like, shape (n, H, W) or (n, H, W, C), real dtype
        y : ignored

        Returns
        -------
        self
        """
        n_stages = check_int(self.n_stages, "n_stages")
        self._check_tucker()
        config = self._config(n_stages)
        X = self._fit_images(X, config)
        _check_bits(self._tensor_bits(n_stages - 1, self.n_channels_), "rank")
        self._check_memory(config, len(X), [[self._tensor_bits(stage, self.n_channels_)
                                             for stage in range(n_stages)]])
        rng = self._rng()
        banks: list[ConvBank] = []
        self.filters_, self.factors_, self.patch_means_ = [], [], []
        for stage, k in enumerate(config.patch_sizes):
            patches = torch.cat(list(self._patches(X, [banks], stage, config, rng)))
            filters, factors, mean = self._learn_tucker(patches, k, rng)
            self.filters_.append(filters)
            self.factors_.append(factors)
            self.patch_means_.append(mean)
            banks.append(tensor_conv_bank(filters, mean))
        self.histogram_ = self._histogram(config, banks)
        self.n_features_out_ = self.histogram_.n_features
        return self

    def _views(self) -> list[tuple[list[ConvBank], BlockHistogram]]:
        banks = [tensor_conv_bank(f, m) for f, m in zip(self.filters_, self.patch_means_,
                                                          strict=True)]
        return [(banks, self.histogram_)]


@FEATURES.register(
    name="hybridnet", deprecated_names=("HybridNet",),
    tags=(*_TAGS, "tensor"),
    test_params={"patch_size": 3, "n_filters": (2, 2), "rank": 2, "block_size": 4,
                 "random_state": 0},
    bench_params={},
    **_META,
)
class HybridNet(_TensorMixin, _FilterNet):
    __doc__ = f"""HybridNet: a tensor (TFNet) view and a PCA (PCANet) view learned together
    (Verma et al., ICONIP 2018; the base of Attn-HybridNet).

    At every stage both a Tucker filter bank and a PCA filter bank are learned. Stage 1 learns
    both from the images; **every later stage learns both banks from the pooled outputs of
    both views** at the previous stage (Verma's ``Hybrid_train.m``: ``OutImg = [OutImg_TD;
    OutImg_P]``). At transform time the two chains stay separate (tensor stage 1 -> tensor
    stage 2 -> hashing and histograms; PCA -> PCA -> hashing and histograms) and the feature
    is [f_tensor, f_pca]. [INTERP] With more than two stages, stage s learns from the pooled
    stage s - 1 outputs of the two separate chains (Verma's code would mix the views from
    stage 2 on; both agree for two stages). Both views use one patch sample per stage.
    Defaults: PCANet's MNIST configuration for both views (7x7 patches, 8 PCA filters and
    rank-3 Tucker filters, i.e. 8 on grey images, per stage; 7x7 blocks, overlap 0.5): on
    28x28 grey images 2 x 73,728 = 147,456 features. Verma's colour (CIFAR) configuration is
    ``patch_size=5, n_filters=(27, 8), block_size=8, pyramid=(4, 2, 1)``.

{_OUTPUT_DOC}
    Parameters
    ----------
{_PATCH_DOC}    n_filters : sequence of int, default=(8, 8)
        PCA filters per stage; its length is the number of stages.
{_TUCKER_DOC}{_COMMON_DOC}
    Attributes
    ----------
    pca_filters_ : list of ndarray of float64, shape (L_s, C_s, k_s, k_s)
        PCA filters of each stage.
    tensor_filters_, tensor_factors_, patch_means_ : lists
        Tucker filters, factors and mean patches of each stage (see :class:`TFNet`).
    n_features_tensor_, n_features_pca_ : int
        Lengths of the two views' feature vectors.
    n_channels_, image_shape_, n_features_out_ :
        As in :class:`PCANet`.

    References
    ----------
    .. [1] S. Verma, W. Liu, C. Wang, L. Zhu, "Hybrid Networks: Improving Deep Learning
       Networks via Integrating Two Views of Images", ICONIP 2018.
    .. [2] S. Verma, C. Wang, L. Zhu, W. Liu, "Attn-HybridNet: Improving Discriminability of
       Hybrid Features with Attention Fusion", IEEE Trans. Cybernetics, 2021.
       arXiv:2010.06096.
    .. [3] T.-H. Chan et al., "PCANet: A Simple Deep Learning Baseline for Image
       Classification?", IEEE Trans. Image Processing 24(12):5017-5032, 2015.

    Examples
    --------
    >>> from lightvision.datasets import load_digits
    >>> from lightvision.features import HybridNet
    >>> X, y = load_digits()
    >>> net = HybridNet(patch_size=3, n_filters=(2, 2), rank=2, block_size=4, random_state=0)
    >>> f_tensor, f_pca = net.fit(X[:200]).transform_views(X[:5])
    >>> f_tensor.shape, f_pca.shape, net.transform(X[:5]).shape
    ((5, 216), (5, 72), (5, 288))
    """

    def __init__(
        self,
        patch_size: int | Sequence[int] = 7,
        n_filters: Sequence[int] = (8, 8),
        *,
        rank: int = 3,
        max_iter: int = 10,
        tol: float = 1e-6,
        block_size: int = 7,
        overlap: float = 0.5,
        pyramid: Sequence[int] | None = None,
        n_patches: int | None = 100_000,
        sparse: bool = True,
        batch_size: int = 64,
        random_state: int | np.random.RandomState | None = None,
        n_iter_max: Any = "deprecated",
    ) -> None:
        self.patch_size = patch_size
        self.n_filters = n_filters
        self.rank = rank
        self.max_iter = max_iter
        self.tol = tol
        self.block_size = block_size
        self.overlap = overlap
        self.pyramid = pyramid
        self.n_patches = n_patches
        self.sparse = sparse
        self.batch_size = batch_size
        self.random_state = random_state
        self.n_iter_max = n_iter_max

    def fit(self, X: Any, y: Any = None) -> HybridNet:
        """Learn the Tucker and PCA filter banks of every stage from images ``X``.

        Parameters
        ----------
        X : array-like, shape (n, H, W) or (n, H, W, C), real dtype
        y : ignored

        Returns
        -------
        self
        """
        n_filters = check_int_sequence(self.n_filters, "n_filters")
        _check_bits(n_filters[-1], "n_filters")
        self._check_tucker()
        config = self._config(len(n_filters))
        X = self._fit_images(X, config)
        _check_bits(self._tensor_bits(len(n_filters) - 1, self.n_channels_), "rank")
        self._check_memory(config, len(X), [
            n_filters, [self._tensor_bits(stage, self.n_channels_)
                        for stage in range(len(n_filters))]])
        rng = self._rng()
        tensor_banks: list[ConvBank] = []
        pca_banks: list[ConvBank] = []
        self.pca_filters_, self.tensor_filters_ = [], []
        self.tensor_factors_, self.patch_means_ = [], []
        for stage, (k, n) in enumerate(zip(config.patch_sizes, n_filters, strict=True)):
            self._check_filter_count(stage, k, n)
            patches = torch.cat(list(self._patches(X, [tensor_banks, pca_banks], stage,
                                                   config, rng)))
            filters, factors, mean = self._learn_tucker(patches, k, rng)
            self.tensor_filters_.append(filters)
            self.tensor_factors_.append(factors)
            self.patch_means_.append(mean)
            tensor_banks.append(tensor_conv_bank(filters, mean))
            self.pca_filters_.append(pca_filter_bank(iter([patches]), n))
            pca_banks.append(pca_conv_bank(self.pca_filters_[-1]))
        self.histogram_tensor_ = self._histogram(config, tensor_banks)
        self.histogram_pca_ = self._histogram(config, pca_banks)
        self.n_features_tensor_ = self.histogram_tensor_.n_features
        self.n_features_pca_ = self.histogram_pca_.n_features
        self.n_features_out_ = self.n_features_tensor_ + self.n_features_pca_
        return self

    def _views(self) -> list[tuple[list[ConvBank], BlockHistogram]]:
        tensor = [tensor_conv_bank(f, m) for f, m in zip(self.tensor_filters_,
                                                           self.patch_means_, strict=True)]
        return [(tensor, self.histogram_tensor_),
                ([pca_conv_bank(f) for f in self.pca_filters_], self.histogram_pca_)]

    def transform_views(self, X: Any) -> tuple[sp.csr_matrix | np.ndarray,
                                               sp.csr_matrix | np.ndarray]:
        """The two views' features of images ``X``, computed in one pass.

        Returns
        -------
        f_tensor : csr_matrix or ndarray, float32, shape (n, n_features_tensor_)
        f_pca : csr_matrix or ndarray, float32, shape (n, n_features_pca_)
        """
        f_tensor, f_pca = self._extract(X, concatenate=False)
        return f_tensor, f_pca

