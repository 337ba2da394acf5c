"""Shared core of the PCANet family (PCANet, TFNet, HybridNet): image checks, training-patch
sampling, PCA and Tucker filter learning, the convolution cascade, binary hashing and block
histograms.

Everything here is vectorised with torch (``conv2d``, ``unfold``, ``scatter_add_``) and numpy;
there is no per-pixel Python loop. Shapes follow torch: a batch of images is (n, C, H, W).

Conventions (Chan et al. 2015, and their MATLAB code that Verma et al. reuse):

- Filters are learned from **all k x k patches at stride 1 of the unpadded maps** (MATLAB
  ``im2colstep``, "sliding"), or from a uniform random subset of them (``n_patches``).
- Filtering uses "same" output size: the map is zero-padded by (k - 1) / 2 on each side, so the
  patch size k must be odd.
- The hash of the last stage's L binary maps is T = sum_j 2^(L - j) H(O_j), j = 1..L (the first
  filter gives the most significant bit), with H(x) = 1 if x > 0 else 0.
- Block histograms use blocks at 0, s, 2s, ... while start + block <= size, with the stride
  s = MATLAB round((1 - overlap) * block) (round half away from zero: 3.5 -> 4).

>>> block_stride(7, 0.5), block_stride(8, 0.5), block_stride(5, 0.5)
(4, 4, 3)
>>> block_starts(28, 7, 4).tolist()
[0, 4, 8, 12, 16, 20]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "BlockHistogram",
    "ConvBank",
    "amplitude",
    "as_image_batch",
    "block_starts",
    "block_stride",
    "cascade",
    "check_images",
    "extract_features",
    "hash_codes",
    "input_scale",
    "matlab_round",
    "pca_conv_bank",
    "pca_filter_bank",
    "sample_patches",
    "tensor_conv_bank",
    "tucker_filter_bank",
]

#: A filter bank ready for ``conv2d``: (weight (L, C, k, k) float32, bias (L,) float32).
ConvBank = tuple[torch.Tensor, torch.Tensor]

MAX_HASH_BITS = 16  # 2 ** 16 histogram bins per block is already far beyond any useful setting


# -- input -------------------------------------------------------------------------------------
def check_images(X: Any, *, name: str = "X") -> np.ndarray:
    """Validate a batch of grey (n, H, W) or colour (n, H, W, C) images.

    Parameters
    ----------
    X : array-like of a real dtype (integer or floating), shape (n, H, W) or (n, H, W, C).
    name : argument name used in error messages.

    Returns
    -------
    ndarray, shape (n, H, W, C)
        A view of ``X`` (grey images get C = 1); the dtype is kept, so nothing is copied.

    Raises
    ------
    TypeError
        For bool, complex, object or other non-real dtypes.
    ValueError
        For a wrong number of dimensions, an empty batch or images, NaN or infinite values.
    """
    X = np.asarray(X)
    if X.dtype == np.bool_ or not (np.issubdtype(X.dtype, np.integer)
                                   or np.issubdtype(X.dtype, np.floating)):
        raise TypeError(f"{name} must hold real numbers (integer or float), got dtype {X.dtype}")
    if X.ndim not in (3, 4):
        raise ValueError(
            f"{name} must be grey images (n, H, W) or colour images (n, H, W, C), "
            f"got an array of shape {X.shape}"
        )
    if X.size == 0:
        raise ValueError(f"{name} is empty (shape {X.shape})")
    if np.issubdtype(X.dtype, np.floating) and not np.isfinite(X).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return X[..., None] if X.ndim == 3 else X


def amplitude(X: np.ndarray) -> float:
    """max |X| of a real array, as a float (no temporary copy of ``X``)."""
    return float(max(X.max(), -X.min())) if np.issubdtype(X.dtype, np.floating) \
        else float(max(int(X.max()), -int(X.min())))


def input_scale(amplitude: float) -> float:
    """Power of two 2^-e that brings images of largest magnitude ``amplitude`` into [1, 2) when
    it lies outside [2^-32, 2^32] (else 1.0: ordinary data is left exactly as it is).

    The PCANet family is invariant to a positive scale of its input (filters are eigenvectors
    or Tucker factors, the hash keeps only signs, the Tucker mean patch and its bias scale
    along), and a power of two rescales float values exactly; so 1e30 or 1e-30 images give the
    features of their rescaled copies instead of overflowing (or underflowing) the float32
    Gram matrix of the patches.

    >>> input_scale(255.0), input_scale(1e30) * 1e30, input_scale(0.0)
    (1.0, 1.5777218104420236, 1.0)
    """
    if amplitude == 0 or 2.0 ** -32 <= amplitude <= 2.0 ** 32:
        return 1.0
    return 2.0 ** (1 - math.frexp(amplitude)[1])


def as_image_batch(X: np.ndarray, scale: float = 1.0) -> torch.Tensor:
    """(n, H, W, C) images from :func:`check_images`, times ``scale`` (a power of two from
    :func:`input_scale`, applied in float64), as a contiguous float32 tensor (n, C, H, W).

    >>> as_image_batch(np.zeros((2, 5, 6, 3), dtype=np.uint8)).shape
    torch.Size([2, 3, 5, 6])
    """
    if scale != 1.0:
        X = X.astype(np.float64) * scale
    return torch.from_numpy(np.ascontiguousarray(X)).permute(0, 3, 1, 2).to(
        torch.float32, memory_format=torch.contiguous_format)


# -- blocks ------------------------------------------------------------------------------------
def matlab_round(x: float) -> int:
    """MATLAB's ``round``: to the nearest integer, halves away from zero (2.5 -> 3, -2.5 -> -3),
    unlike Python's ``round`` (2.5 -> 2)."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def block_stride(block_size: int, overlap: float) -> int:
    """Histogram block stride ``round((1 - overlap) * block_size)`` as in Chan's
    ``HashingHist.m`` (MATLAB rounding: 7 x 0.5 = 3.5 -> 4)."""
    return matlab_round((1.0 - overlap) * block_size)


def block_starts(size: int, block_size: int, stride: int) -> np.ndarray:
    """0-based start of every block along an axis of ``size`` pixels: 0, s, 2s, ... while
    start + block_size <= size (MATLAB ``im2col_general``)."""
    return np.arange(0, size - block_size + 1, stride, dtype=np.int64)


# -- filter learning ---------------------------------------------------------------------------
def sample_patches(
    maps: Callable[[int, int], torch.Tensor],
    *,
    n_images: int,
    n_maps: int,
    n_channels: int,
    image_shape: tuple[int, int],
    patch_size: int,
    n_patches: int | None,
    rng: np.random.Generator,
    batch_size: int,
) -> Iterator[torch.Tensor]:
    """Yield training patches of a stage, batch by batch, so memory stays bounded.

    The stage's input is ``n_images`` x ``n_maps`` maps of ``n_channels`` channels each;
    ``maps(start, stop)`` returns those of images ``start:stop`` as a float32 tensor of shape
    (stop - start, n_maps, n_channels, H, W). The patches are the k x k windows at stride 1 of
    the unpadded maps ((H - k + 1) (W - k + 1) per map): all of them when ``n_patches`` is None
    or not smaller than their number, else ``n_patches`` drawn uniformly without replacement.

    Yields
    ------
    Tensor of float32, shape (m, n_channels, k, k)
    """
    k = patch_size
    height, width = image_shape
    rows, cols = height - k + 1, width - k + 1
    per_map = rows * cols
    per_image = n_maps * per_map
    total = n_images * per_image
    chosen = None
    if n_patches is not None and n_patches < total:
        chosen = np.sort(rng.choice(total, size=n_patches, replace=False))
    offsets = torch.arange(k)
    channels = torch.arange(n_channels)[None, :, None, None]
    for start in range(0, n_images, batch_size):
        stop = min(start + batch_size, n_images)
        if chosen is not None:
            lo, hi = np.searchsorted(chosen, [start * per_image, stop * per_image])
            if lo == hi:
                continue
            local = torch.from_numpy(chosen[lo:hi] - start * per_image)
        batch = maps(start, stop).reshape(-1, n_channels, height, width)
        if chosen is None:
            windows = F.unfold(batch, k)  # (B * n_maps, C * k * k, per_map)
            yield windows.transpose(1, 2).reshape(-1, n_channels, k, k)
        else:
            index, pos = local // per_map, local % per_map
            top, left = pos // cols, pos % cols
            yield batch[index[:, None, None, None], channels,
                        (top[:, None] + offsets)[:, None, :, None],
                        (left[:, None] + offsets)[:, None, None, :]]


def _fix_signs(vectors: np.ndarray) -> np.ndarray:
    """Flip each column so that its largest-magnitude entry is positive (Verma's
    ``Iterate_HOOI_Mode_I_updated.m``); the first such entry wins ties."""
    pivot = np.abs(vectors).argmax(axis=0)
    signs = np.sign(vectors[pivot, np.arange(vectors.shape[1])])
    return vectors * np.where(signs == 0, 1.0, signs)


def pca_filter_bank(patches: Iterator[torch.Tensor], n_filters: int) -> np.ndarray:
    """Chan's PCA filters (``PCA_FilterBank.m``) from a stream of training patches.

    Every patch is vectorised (channels stacked), its own mean is subtracted, and
    R = sum x x^T / (number of patches) is accumulated in float64 batch by batch; the filters
    are the ``n_filters`` leading eigenvectors of R.

    Parameters
    ----------
    patches : iterator of float32 tensors, each of shape (m, C, k, k).
    n_filters : number of filters L <= C k^2.

    Returns
    -------
    ndarray of float64, shape (L, C, k, k)
        Orthonormal filters in decreasing order of eigenvalue. [INTERP] The sign of an
        eigenvector is arbitrary (MATLAB's ``eig`` returns whatever LAPACK gives); each is made
        deterministic by making its largest-magnitude entry positive.
    """
    gram: np.ndarray | None = None
    count = 0
    shape: tuple[int, ...] = ()
    for batch in patches:
        shape = tuple(batch.shape[1:])
        flat = batch.reshape(batch.shape[0], -1)
        flat = flat - flat.mean(dim=1, keepdim=True)
        part = (flat.T @ flat).double().numpy()
        gram = part if gram is None else gram + part
        count += batch.shape[0]
    if gram is None:
        raise ValueError("no training patches: the images are smaller than the patch size")
    _, vectors = np.linalg.eigh(gram / count)
    leading = _fix_signs(vectors[:, ::-1][:, :n_filters])
    return np.ascontiguousarray(leading.T).reshape(n_filters, *shape)


def tucker_filter_bank(
    patches: np.ndarray,
    *,
    rank: int,
    max_iter: int,
    tol: float,
    random_state: int,
) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """Verma's tensor-factorisation filters (``TD_UTF.m``, ``Tensor_output_revised.m``).

    The patches are kept as a tensor N x k x k (grey) or N x k x k x C (colour), the mean patch
    over N is subtracted (no per-patch mean removal), and a Tucker decomposition on the patch
    modes only (the sample mode is never reduced) is computed by HOSVD initialisation and HOOI
    (``tensorly.decomposition.partial_tucker``) with rank ``rank`` on each spatial mode and
    ``min(rank, C)`` on the channel mode. Each factor column's sign is fixed so that its
    largest-magnitude entry is positive.

    Filters are outer products of factor columns, enumerated with the last mode fastest:
    colour -> u_i o v_j o w_l (rank^3 filters, 27 for rank 3); grey -> u_i o v_j (rank^2),
    of which the second-to-last is dropped (Verma: ``Filters{end-1} = Filters{end}``), so rank 3
    gives 8 filters.

    Parameters
    ----------
    patches : ndarray, shape (N, C, k, k)
    rank : Tucker rank of each patch mode.
    max_iter, tol : HOOI stopping rule (at most ``max_iter`` iterations, stop when the
        relative reconstruction error changes by less than ``tol``).
    random_state : seed passed to tensorly (used only if a factor needs completing).

    Returns
    -------
    filters : ndarray of float64, shape (L, C, k, k)
    factors : list of ndarray of float64
        The sign-fixed factors of the patch modes: rows (k, r), columns (k, r) and, for colour,
        channels (C, min(r, C)).
    mean_patch : ndarray of float64, shape (C, k, k)
    """
    import tensorly as tl
    from tensorly.decomposition import partial_tucker

    n, channels, k, _ = patches.shape
    data = np.asarray(patches, dtype=np.float64).transpose(0, 2, 3, 1)  # (N, k, k, C)
    if channels == 1:
        data = data[..., 0]
    mean_patch = data.mean(axis=0)
    modes = list(range(1, data.ndim))
    ranks = [min(rank, data.shape[m]) for m in modes]
    with tl.backend_context("numpy"):
        (_, factors), _ = partial_tucker(
            data - mean_patch, rank=ranks, modes=modes, n_iter_max=max_iter, init="svd",
            tol=tol, random_state=random_state,
        )
    factors = [_fix_signs(np.asarray(f, dtype=np.float64)) for f in factors]
    rows, cols = factors[0], factors[1]
    if channels == 1:
        filters = np.einsum("ai,bj->ijab", rows, cols).reshape(-1, 1, k, k)
        if len(filters) > 1:  # Verma: Filters{end-1} = Filters{end}; NumFilters - 1
            filters = np.delete(filters, len(filters) - 2, axis=0)
        mean_patch = mean_patch[None]
    else:
        filters = np.einsum("ai,bj,cl->ijlcab", rows, cols, factors[2]).reshape(
            -1, channels, k, k)
        mean_patch = mean_patch.transpose(2, 0, 1)
    return np.ascontiguousarray(filters), factors, np.ascontiguousarray(mean_patch)


# -- filtering ---------------------------------------------------------------------------------
def pca_conv_bank(filters: np.ndarray) -> ConvBank:
    """Convolution bank that projects **mean-removed**, zero-padded patches on ``filters``.

    (p - mean(p)) . w = p . (w - mean(w)), so the projection is ``conv2d`` with the zero-mean
    filters and no bias, exactly (Chan's ``PCA_output.m``).
    """
    weight = filters - filters.mean(axis=(1, 2, 3), keepdims=True)
    return (torch.from_numpy(weight.astype(np.float32)),
            torch.zeros(len(filters), dtype=torch.float32))


def tensor_conv_bank(filters: np.ndarray, mean_patch: np.ndarray) -> ConvBank:
    """Convolution bank that projects zero-padded patches minus the global ``mean_patch`` on
    ``filters``: (p - m) . w = conv2d(x, w) - <w, m> (Verma's ``Tensor_output_revised.m``)."""
    bias = -np.tensordot(filters, mean_patch, axes=3)
    return (torch.from_numpy(filters.astype(np.float32)),
            torch.from_numpy(bias.astype(np.float32)))


def cascade(x: torch.Tensor, banks: Sequence[ConvBank]) -> torch.Tensor:
    """Run the filter banks in cascade with "same" zero padding.

    Stage 1 filters the C-channel images; every later stage treats each output map of the
    previous stage as a separate single-channel image (Chan's stage 2).

    Parameters
    ----------
    x : Tensor of float32, shape (B, C, H, W)
    banks : conv banks; the first has C input channels, the others 1.

    Returns
    -------
    Tensor of float32, shape (B, L_1 * ... * L_S, H, W)
        Map (l_1, ..., l_S) at index l_1 L_2...L_S + ... + l_S: the last stage varies fastest.
    """
    batch, _, height, width = x.shape
    for stage, (weight, bias) in enumerate(banks):
        inputs = x if stage == 0 else x.reshape(-1, 1, height, width)
        x = F.conv2d(inputs, weight, bias, padding=weight.shape[-1] // 2)
        x = x.reshape(batch, -1, height, width)
    return x


def hash_codes(maps: torch.Tensor, n_bits: int) -> torch.Tensor:
    """Binary hashing of consecutive groups of ``n_bits`` maps (Chan's ``HashingHist.m``).

    T = sum_{j=1..n_bits} 2^(n_bits - j) H(O_j) with H(x) = 1 if x > 0 else 0, so the first map
    of a group is the most significant bit.

    Vectorised over words: the 0/1 bytes of ``maps > 0`` are read as int64 words of 8 pixels,
    so shifting a word moves the bit of each of its 8 pixels at once (a byte holds 0 or 1 and
    shifts by < 8, so nothing carries into the next pixel); up to 8 maps are packed into each
    byte of the code with n_bits - 1 word shifts and ORs per group of 8 maps.

    Parameters
    ----------
    maps : Tensor, shape (B, G * n_bits, H, W)
    n_bits : maps per group (the number of last-stage filters), 1..16.

    Returns
    -------
    Tensor, shape (B, G, H, W), of uint8 (n_bits <= 8) or int32, values in [0, 2^n_bits).

    >>> o = torch.tensor([1.0, -1.0, 0.0, 2.0]).reshape(1, 4, 1, 1)
    >>> hash_codes(o, 4).item()  # bits 1, 0, 0, 1 -> 8 + 1
    9
    """
    batch, n_maps, height, width = maps.shape
    groups, area = n_maps // n_bits, height * width
    padded = -(-area // 8) * 8  # whole int64 words of 8 pixels
    bits = np.empty((batch * groups, n_bits, padded), dtype=bool)
    bits[:, :, area:] = False
    np.greater(maps.numpy().reshape(batch * groups, n_bits, area), 0, out=bits[:, :, :area])
    words = bits.view(np.int64)  # (B G, n_bits, padded / 8)
    codes = None
    for first in range(0, n_bits, 8):  # bytes of the code, most significant first
        last = min(first + 8, n_bits)
        byte = words[:, first].copy()
        for j in range(first + 1, last):
            np.left_shift(byte, 1, out=byte)
            np.bitwise_or(byte, words[:, j], out=byte)
        byte = byte.view(np.uint8)[:, :area]
        if n_bits <= 8:
            codes = byte
        else:
            byte = byte.astype(np.int32)
            codes = byte if codes is None else (codes << (last - first)) | byte
    return torch.from_numpy(np.ascontiguousarray(codes)).reshape(batch, groups, height, width)


class BlockHistogram:
    """Block-wise histograms of hash codes, the output layer of PCANet (``HashingHist.m``).

    Parameters
    ----------
    image_shape : (H, W) of the code maps.
    block_size : side of the square blocks.
    stride : block stride (see :func:`block_stride`).
    n_bits : bits of the codes (filters of the last stage); histograms have 2^n_bits bins.
    n_groups : G, code maps per image.
    pyramid : None, or the levels of a spatial pyramid, e.g. (4, 2, 1).

    Notes
    -----
    Without a pyramid each block histogram is rescaled to sum 2^n_bits (Chan) and the feature is
    the concatenation over (code map g, block, bin), blocks in row-major order of their grid:
    dimension G 2^n_bits n_blocks. With a pyramid, the raw block histograms are max-pooled in
    every cell of every pyramid level (a block belongs to the cell holding its centre, Chan's
    ``spp``), ordered (g, level, cell row-major, bin), and the whole vector is L2-normalised:
    dimension G 2^n_bits sum(p^2). Chan's MATLAB vector holds the same numbers in another fixed
    order, which no classifier can tell apart.

    The sparse output without a pyramid never forms the (B, n_features) table: the codes of
    each block are sorted (numpy's vectorised row sort of 16-bit integers), and each run of
    equal codes is one non-zero, its length the count, already in column order.
    """

    def __init__(self, image_shape: tuple[int, int], *, block_size: int, stride: int,
                 n_bits: int, n_groups: int, pyramid: tuple[int, ...] | None) -> None:
        height, width = image_shape
        top, left = block_starts(height, block_size, stride), block_starts(width, block_size,
                                                                          stride)
        self.block_size, self.stride = block_size, stride
        self.area = block_size * block_size
        self.n_blocks = len(top) * len(left)
        self.n_bits = n_bits
        self.n_bins = 2 ** n_bits
        self.n_groups = n_groups
        self.pyramid = pyramid
        self.n_cells = 0
        if pyramid is not None:  # Chan's spp: cell of a block = ceil(centre / (size / p))
            centre_y = np.repeat(top + math.ceil(block_size / 2), len(left))
            centre_x = np.tile(left + math.ceil(block_size / 2), len(top))
            cells = []
            for p in pyramid:
                cell_y = np.ceil(centre_y / (height / p)).astype(np.int64) - 1
                cell_x = np.ceil(centre_x / (width / p)).astype(np.int64) - 1
                cells.append(self.n_cells + cell_y * p + cell_x)
                self.n_cells += p * p
            #: cell of every block at every level (n_levels * n_blocks,), and its block
            self._cell_of = torch.from_numpy(np.concatenate(cells))
            self._block_of = torch.arange(self.n_blocks).repeat(len(pyramid))

    @property
    def n_features(self) -> int:
        """Length of the feature vector of one image."""
        units = self.n_cells if self.pyramid is not None else self.n_blocks
        return self.n_groups * units * self.n_bins

    def _blocks(self, codes: torch.Tensor, dtype: type) -> np.ndarray:
        """The codes of every block as a new (B G n_blocks, area) array of ``dtype``: blocks
        row-major within each code map, pixels row-major within each block."""
        b, s = self.block_size, self.stride
        windows = sliding_window_view(codes.numpy(), (b, b), axis=(2, 3))[:, :, ::s, ::s]
        return windows.astype(dtype, order="C").reshape(-1, self.area)

    def _counts(self, codes: torch.Tensor) -> torch.Tensor:
        """Histogram counts, an integer tensor (B, G, n_blocks, n_bins) of the narrowest dtype
        that holds the block area."""
        index = torch.from_numpy(self._blocks(codes, np.int64))
        dtype = next(d for d, top in ((torch.uint8, 2 ** 8), (torch.int16, 2 ** 15),
                                      (torch.int32, 2 ** 31)) if self.area < top)
        counts = torch.zeros(index.shape[0], self.n_bins, dtype=dtype)
        counts.scatter_add_(1, index, torch.ones(1, dtype=dtype).expand_as(index))
        return counts.reshape(codes.shape[0], self.n_groups, self.n_blocks, self.n_bins)

    def _pooled(self, codes: torch.Tensor) -> torch.Tensor:
        """Pyramid features (B, n_features) float32: block histograms max-pooled per cell (one
        ``scatter_reduce`` over all levels; an empty cell stays 0), L2-normalised."""
        counts = self._counts(codes).to(torch.float32)[:, :, self._block_of]
        batch = counts.shape[0]
        pooled = torch.zeros(batch, self.n_groups, self.n_cells, self.n_bins)
        index = self._cell_of[None, None, :, None].expand_as(counts)
        pooled.scatter_reduce_(2, index, counts, "amax")
        pooled = pooled.reshape(batch, -1)
        pooled /= torch.linalg.vector_norm(pooled, dim=1, keepdim=True)
        return pooled

    def __call__(self, codes: torch.Tensor) -> np.ndarray:
        """Features of a batch as a dense float32 array (B, n_features).

        Parameters
        ----------
        codes : integer Tensor, shape (B, G, H, W), values in [0, 2^n_bits).
        """
        if self.pyramid is not None:
            return self._pooled(codes).numpy()
        counts = self._counts(codes)
        out = counts.reshape(counts.shape[0], -1).to(torch.float32).numpy()
        out *= np.float32(self.n_bins / self.area)
        return out

    def sparse(self, codes: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Features of a batch as CSR parts (data float32, column indices int32 (int64 beyond
        2^31 features), non-zeros per row), with sorted column indices, never forming a dense
        (B, n_features) array without a pyramid."""
        batch = codes.shape[0]
        if self.pyramid is not None:
            values = self._pooled(codes).numpy()
            flat = np.flatnonzero(values)
            width = values.shape[1]
            bounds = np.searchsorted(flat, np.arange(batch + 1, dtype=np.int64) * width)
            columns = flat - np.repeat(np.arange(batch, dtype=np.int64) * width,
                                       np.diff(bounds))
            return (values.reshape(-1)[flat], self._column_dtype(columns), np.diff(bounds))
        # one row per block of every image; codes sorted within each block (16-bit SIMD sort)
        entries = self._blocks(codes, np.uint16)
        entries.sort(axis=1)
        starts = np.empty(entries.shape, dtype=bool)  # first entry of each run of equal codes
        starts[:, 0] = True
        np.not_equal(entries[:, 1:], entries[:, :-1], out=starts[:, 1:])
        first = np.flatnonzero(starts)  # runs never cross a block: its first entry starts one
        data = np.diff(first, append=entries.size).astype(np.float32)
        data *= np.float32(self.n_bins / self.area)
        # column of an entry: (g n_blocks + block) n_bins + code, block rows repeating per image
        units = self.n_groups * self.n_blocks
        offsets = np.arange(units, dtype=np.int64 if self.n_features >= 2 ** 31 else np.int32)
        keys = entries.reshape(batch, units, self.area) + (offsets * self.n_bins)[:, None]
        columns = keys.reshape(-1)[first]
        per_row = np.diff(np.searchsorted(first, np.arange(batch + 1) * (units * self.area)))
        return data, self._column_dtype(columns), per_row

    def _column_dtype(self, columns: np.ndarray) -> np.ndarray:
        return columns.astype(np.int32 if self.n_features < 2 ** 31 else np.int64, copy=False)


# -- transform engine --------------------------------------------------------------------------
class _CSRBuilder:
    """CSR rows appended batch by batch into buffers sized for the projected total (plus 5 %),
    trimmed in place at the end, so the result is normally written once and peak memory stays
    near its final size."""

    def __init__(self, n_rows: int, width: int) -> None:
        self.n_rows, self.width = n_rows, width
        self.data = np.empty(0, dtype=np.float32)
        self.columns = np.empty(0, dtype=np.int32 if width < 2 ** 31 else np.int64)
        self.per_row = np.empty(n_rows, dtype=np.int64)
        self.size = self.rows = 0

    def append(self, data: np.ndarray, columns: np.ndarray, per_row: np.ndarray) -> None:
        end, rows = self.size + len(data), self.rows + len(per_row)
        if end > len(self.data):  # room for the projected total plus 5 %
            capacity = max(end, int(end * self.n_rows / rows * 1.05))
            for name in ("data", "columns"):
                old = getattr(self, name)
                grown = np.empty(capacity, dtype=old.dtype)  # untouched pages cost no memory
                grown[:self.size] = old[:self.size]
                setattr(self, name, grown)
        self.data[self.size:end] = data
        self.columns[self.size:end] = columns
        self.per_row[self.rows:rows] = per_row
        self.size, self.rows = end, rows

    def finish(self) -> sp.csr_matrix:
        self.data.resize(self.size, refcheck=False)  # shrinking: realloc, no copy
        self.columns.resize(self.size, refcheck=False)
        indptr = np.zeros(self.n_rows + 1, dtype=np.int32 if self.size < 2 ** 31 else np.int64)
        np.cumsum(self.per_row, out=indptr[1:])
        return sp.csr_matrix((self.data, self.columns, indptr), shape=(self.n_rows, self.width))


def _join_columns(parts: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
                  widths: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Side-by-side concatenation of the CSR parts (data, columns, non-zeros per row) of the
    same rows; the columns of part v are shifted by the widths of the parts before it."""
    per_row = np.sum([r for _, _, r in parts], axis=0)
    row_start = np.cumsum(per_row) - per_row
    total = int(per_row.sum())
    data = np.empty(total, dtype=np.float32)
    columns = np.empty(total, dtype=np.int32 if sum(widths) < 2 ** 31 else np.int64)
    filled = np.zeros_like(per_row)
    for (values, cols, rows), offset in zip(parts, np.cumsum([0, *widths[:-1]]), strict=True):
        dest = np.arange(len(values)) + np.repeat(row_start + filled - (np.cumsum(rows) - rows),
                                                  rows)
        data[dest] = values
        columns[dest] = cols + offset
        filled += rows
    return data, columns, per_row


def extract_features(
    X: np.ndarray,
    views: Sequence[tuple[Sequence[ConvBank], BlockHistogram]],
    *,
    batch_size: int,
    sparse: bool,
    concatenate: bool = False,
    scale: float = 1.0,
) -> list[sp.csr_matrix | np.ndarray]:
    """Features of every image for each view (a cascade of filter banks and its output layer),
    batch by batch.

    Parameters
    ----------
    X : ndarray, shape (n, H, W, C), from :func:`check_images`.
    views : (conv banks, histogram) per view; PCANet and TFNet have one view, HybridNet two.
        The last bank's filter count must equal ``histogram.n_bits``.
    batch_size : images per batch; memory stays about batch_size x L_1 ... L_S x H x W floats
        plus the batch's histograms.
    sparse : return ``scipy.sparse.csr_matrix`` (else a dense ndarray), float32.
    concatenate : return one matrix with the views side by side, assembled batch by batch.
    scale : the images are multiplied by it first (see :func:`input_scale`).

    Returns
    -------
    list with one (n, histogram.n_features) float32 matrix per view, or the single
    (n, sum of n_features) matrix when ``concatenate``.
    """
    n = X.shape[0]
    widths = [histogram.n_features for _, histogram in views]
    out_widths = [sum(widths)] if concatenate else widths
    if sparse:
        builders = [_CSRBuilder(n, width) for width in out_widths]
    else:
        dense = [np.empty((n, width), dtype=np.float32) for width in out_widths]
    for start in range(0, n, batch_size):
        x = as_image_batch(X[start:start + batch_size], scale)
        batch = []
        for banks, histogram in views:
            codes = hash_codes(cascade(x, banks), histogram.n_bits)
            batch.append(histogram.sparse(codes) if sparse else histogram(codes))
        if concatenate and len(batch) > 1:
            batch = [_join_columns(batch, widths) if sparse else np.hstack(batch)]
        for view, features in enumerate(batch):
            if sparse:
                builders[view].append(*features)
            else:
                dense[view][start:start + len(x)] = features
    return [b.finish() for b in builders] if sparse else dense
