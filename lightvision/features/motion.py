"""Local motion descriptors of videos: a compact binary descriptor (Leyva et al. 2019), HOF and
MBH, all on the same dense grid of spatio-temporal support regions.

A *support region* is s x s pixels (``region_size``) by tau flow fields (``region_frames``),
split into n_x x n_y x n_t cells (``cells``), as in dense trajectories (Wang et al. 2013: s = 32,
tau = 15, 2 x 2 x 3 cells) but on a fixed grid instead of along trajectories. Cells of
c_x x c_y = (s / n_x) x (s / n_y) pixels tile the frame from its top-left corner; the right and
bottom remainders that do not fill a cell are ignored. Regions start every ``stride`` pixels
(default one cell) and every tau / n_t flow fields (one temporal cell), so consecutive regions
overlap by (n_t - 1) / n_t in time. Regions whose mean flow magnitude is below ``min_motion``
(static background) are discarded, as dense trajectories discard static trajectories.

Computation is streamed and vectorised: each flow field is reduced at once to per-cell sums of
per-pixel quantities (reshape-and-sum or ``np.bincount`` over the cell grid), consecutive
fields are summed into temporal cells, only the last n_t temporal cells are kept (memory
independent of the video length), and each completed temporal cell emits the descriptors of
all the regions of the grid together (``sliding_window_view`` over the cell grid).

References
----------
.. [1] C. Leyva, V. Sanchez, C.-T. Li, "Compact and Low-Complexity Binary Feature Descriptor
   and Fisher Vectors for Video Analytics", IEEE Trans. Image Processing 28(12):6169-6184,
   2019 (seed paper; only its abstract was available, so the binary descriptor is
   interpreted).
.. [2] I. Laptev, M. Marszalek, C. Schmid, B. Rozenfeld, "Learning realistic human actions
   from movies", CVPR 2008 (HOF).
.. [3] N. Dalal, B. Triggs, C. Schmid, "Human Detection Using Oriented Histograms of Flow and
   Appearance", ECCV 2006 (motion boundary histograms).
.. [4] H. Wang, A. Klaser, C. Schmid, C.-L. Liu, "Dense Trajectories and Motion Boundary
   Descriptors for Action Recognition", IJCV 103(1):60-79, 2013.
.. [5] G. Farneback, "Two-Frame Motion Estimation Based on Polynomial Expansion", SCIA 2003.
.. [6] T. Kroeger, R. Timofte, D. Dai, L. Van Gool, "Fast Optical Flow using Dense Inverse
   Search", ECCV 2016.
"""

from __future__ import annotations

import math
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from sklearn.base import BaseEstimator, TransformerMixin

from .._checks import check_int, check_real
from ..registry import FEATURES
from .video import FLOW_METHODS, _flow_settings, _optical_flow

__all__ = ["BinaryMotionDescriptor", "HOFDescriptor", "MBHDescriptor"]

#: Registry metadata shared by the three descriptors: videos (T, H, W) of the "actions" data.
_META = {"input": "videos", "input_shape": (75, 120, 160), "test_input_shape": (12, 48, 64),
         "dataset": "actions"}
_REFERENCES = ("region", "zero")
_TEST_PARAMS = {"region_size": 16, "region_frames": 4, "cells": (2, 2, 2), "min_motion": 0.0}
#: Largest flow component accepted, pixels/frame: far beyond any frame size, and small enough
#: that the float32 magnitudes, gradients and cell sums of the descriptors stay finite.
_MAX_FLOW = 1e15


@dataclass(frozen=True)
class _Config:
    """Validated region geometry and flow settings."""

    region_size: int
    region_frames: int
    n_x: int
    n_y: int
    n_t: int
    stride_x: int  # pixels
    stride_y: int
    min_motion: float
    flow: str
    flow_params: dict[str, Any]

    @property
    def cell_w(self) -> int:
        return self.region_size // self.n_x

    @property
    def cell_h(self) -> int:
        return self.region_size // self.n_y

    @property
    def cell_fields(self) -> int:
        """Flow fields per temporal cell (= the temporal stride)."""
        return self.region_frames // self.n_t

    @property
    def n_cells(self) -> int:
        return self.n_x * self.n_y * self.n_t


class _Grid:
    """The cell grid and region grid of frames of one size."""

    def __init__(self, config: _Config, height: int, width: int, source: str) -> None:
        s = config.region_size
        if height < s or width < s:
            raise ValueError(f"{source}: frames of {height}x{width} pixels are smaller than a "
                             f"region ({s}x{s}); lower region_size")
        self.config = config
        self.shape = (height, width)
        self.rows, self.cols = height // config.cell_h, width // config.cell_w
        self.crop = (self.rows * config.cell_h, self.cols * config.cell_w)
        self.step = (config.stride_y // config.cell_h, config.stride_x // config.cell_w)
        ys = np.arange(0, height - s + 1, config.stride_y)
        xs = np.arange(0, width - s + 1, config.stride_x)
        #: (x, y) of the top-left pixel of every region, row-major over the region grid.
        self.corners = np.stack(np.broadcast_arrays(xs[None, :], ys[:, None]), -1).reshape(-1, 2)
        cell_y = np.arange(self.crop[0]) // config.cell_h
        cell_x = np.arange(self.crop[1]) // config.cell_w
        #: Cell number (row-major) of every pixel of the cropped frame, shape crop.
        self.cell_index = cell_y[:, None] * self.cols + cell_x[None, :]
        #: Buffers of the descriptor, reused for every field of the stream.
        self.workspace: dict[str, Any] = {}

    @property
    def n_grid_cells(self) -> int:
        return self.rows * self.cols

    def cell_sum(self, a: np.ndarray) -> np.ndarray:
        """Per-cell sums of a per-pixel map (H, W, K) -> (rows, cols, K); remainder ignored."""
        c = self.config
        a = a[: self.crop[0], : self.crop[1]]
        k = a.shape[2]
        a = a.reshape(self.rows, c.cell_h, self.crop[1] * k).sum(axis=1)
        return a.reshape(self.rows, self.cols, c.cell_w, k).sum(axis=2)

    def _windows(self, cells: np.ndarray) -> np.ndarray:
        """(n_t, rows, cols, ...) -> (n_t, regions_y, regions_x, ..., n_y, n_x) view."""
        c = self.config
        windows = sliding_window_view(cells, (c.n_y, c.n_x), axis=(1, 2))
        return windows[:, :: self.step[0], :: self.step[1]]

    def regions(self, cells: np.ndarray) -> np.ndarray:
        """Temporal cells (n_t, rows, cols, K) -> region cells (n_regions, n_t, n_y, n_x, K)."""
        c = self.config
        windows = self._windows(cells).transpose(1, 2, 0, 4, 5, 3)
        return windows.reshape(-1, c.n_t, c.n_y, c.n_x, cells.shape[-1])

    def mean_motion(self, magnitude: np.ndarray) -> np.ndarray:
        """Per-cell magnitude sums (n_t, rows, cols) -> mean magnitude per region (n_regions,),
        pixels/frame."""
        c = self.config
        total = self._windows(magnitude).sum(axis=(0, 3, 4)).ravel()
        return total / (c.region_size ** 2 * c.region_frames)


def _cells(value: Any) -> tuple[int, int, int]:
    if isinstance(value, str) or not isinstance(value, Sequence) or len(value) != 3:
        raise TypeError(f"cells must be a sequence of 3 ints (n_x, n_y, n_t), got {value!r}")
    n_x, n_y, n_t = (check_int(v, f"cells[{i}]") for i, v in enumerate(value))
    return n_x, n_y, n_t


def _check_field(field: Any, index: int) -> np.ndarray:
    if field is None:
        raise TypeError(f"flows[{index}] must be a flow field (H, W, 2), got None")
    try:
        field = np.asarray(field)
    except ValueError as error:  # ragged nested lists
        raise ValueError(f"flows[{index}] must be a flow field (H, W, 2): {error}") from None
    if field.ndim != 3 or field.shape[2] != 2:
        raise ValueError(f"flows[{index}] must have shape (H, W, 2), got {field.shape}")
    if field.dtype.kind not in "iuf":
        raise TypeError(f"flows[{index}] has dtype {field.dtype}; expected a real dtype")
    if field.size == 0:
        raise ValueError(f"flows[{index}] has no pixels, shape {field.shape}")
    field = np.ascontiguousarray(field, dtype=np.float32)
    low, high = field.min(), field.max()  # NaN propagates through min and max
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError(f"flows[{index}] holds NaN or infinite values")
    if max(-low, high) > _MAX_FLOW:
        raise ValueError(f"flows[{index}] holds flow components up to {max(-low, high):.3g} "
                         f"pixels/frame in magnitude; at most {_MAX_FLOW:g} are supported "
                         f"(larger ones overflow the float32 magnitudes and gradients)")
    return field


class _OrientationHistograms:
    """Magnitude-weighted orientation histograms of per-pixel vectors, summed per group.

    Linear binning as in Wang et al.'s code: an orientation a in [0, 2 pi) lies between the
    bin orientations k = floor(p) and k + 1 (cyclic), p = a n_bins / (2 pi), which get the
    magnitude times 1 - (p - k) and p - k. With ``zero_flow`` set, vectors of magnitude
    <= zero_flow go to one extra last bin with weight 1 each instead. All per-pixel buffers
    are allocated once and reused for every flow field (no page faults per field).

    Parameters
    ----------
    groups : ndarray of int, shape (h, w)
        The histogram (group) each pixel adds to, in [0, n_groups).
    """

    def __init__(self, groups: np.ndarray, n_groups: int, n_bins: int,
                 zero_flow: float | None = None) -> None:
        self.n_bins, self.n_groups, self.zero_flow = n_bins, n_groups, zero_flow
        # slots per group: the n_bins orientations, orientation n_bins (= 0, folded into 0
        # afterwards, so that k + 1 needs no modulo), and the no-motion bin if any
        self.slots = n_bins + 1 + (zero_flow is not None)
        self.base = (groups * self.slots).ravel()
        self.keep = [*range(n_bins), *([n_bins + 1] if zero_flow is not None else [])]
        size = self.base.size
        self.magnitude = np.empty(groups.shape, np.float32)
        self.angle = np.empty(groups.shape, np.float32)
        self.whole, self.fraction = np.empty(size, np.float32), np.empty(size, np.float32)
        self.index = np.empty(2 * size, np.intp)  # [bins k, bins k + 1]
        self.weight = np.empty(2 * size, np.float64)
        if zero_flow is not None:
            self.zero_index = self.base + n_bins + 1
            self.still = np.empty(size, bool)

    def __call__(self, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
        """Vectors (dx, dy) of shape (h, w) -> histograms (n_groups, n_bins [+ 1])."""
        import cv2

        cv2.cartToPolar(dx, dy, magnitude=self.magnitude, angle=self.angle)
        magnitude, position = self.magnitude.ravel(), self.angle.ravel()
        size = self.base.size
        low, high = self.index[:size], self.index[size:]
        low_weight, high_weight = self.weight[:size], self.weight[size:]
        position *= np.float32(self.n_bins / (2 * np.pi))
        # an angle rounded up to 2 pi goes (almost) all to orientation n_bins = 0
        np.minimum(position, np.nextafter(np.float32(self.n_bins), np.float32(0)),
                   out=position)
        np.floor(position, out=self.whole)
        np.subtract(position, self.whole, out=self.fraction)
        np.add(self.base, self.whole, out=low, casting="unsafe")  # exact small integers
        np.add(low, 1, out=high)
        np.multiply(self.fraction, magnitude, out=high_weight)
        np.subtract(magnitude, high_weight, out=low_weight)
        if self.zero_flow is not None:
            np.less_equal(magnitude, self.zero_flow, out=self.still)
            np.copyto(low, self.zero_index, where=self.still)
            np.copyto(low_weight, 1.0, where=self.still)
            np.copyto(high_weight, 0.0, where=self.still)
        sums = np.bincount(self.index, self.weight, minlength=self.n_groups * self.slots)
        sums = sums.reshape(self.n_groups, self.slots)
        sums[:, 0] += sums[:, self.n_bins]
        return sums[:, self.keep]


def _l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm along the last axis; all-zero rows stay zero."""
    norm = np.sqrt(np.einsum("...i,...i->...", x, x))[..., None]
    return x / np.maximum(norm, np.finfo(np.float64).tiny)


_PARAMS_DOC = """    region_size : int, default=32
        Side s of the square support regions, pixels; divisible by n_x and n_y.
    region_frames : int, default=15
        Flow fields tau per region; divisible by n_t.
    cells : tuple of int, default=(2, 2, 3)
        (n_x, n_y, n_t) cells per region; cell = (s / n_x) x (s / n_y) pixels x tau / n_t
        flow fields.
    stride : int or None, default=None
        Spatial stride of the region grid, pixels; a multiple of the cell size. None: one
        cell (s / n_x across, s / n_y down).
    min_motion : float, default=0.3
        Regions whose mean flow magnitude (pixels/frame, over all their pixels and fields) is
        below this are discarded; 0 keeps all.
    flow : {"farneback", "dis"}, default="farneback"
        Optical flow of :meth:`extract` (see :func:`lightvision.features.video.optical_flow`).
    flow_params : dict or None, default=None
        Parameters of the flow method, e.g. ``{"winsize": 9}`` or ``{"preset": "fast"}``.
"""

_OUTPUT_DOC = """\
    Regions are emitted in time order, then row-major over the region grid; ``positions`` are
    (x, y, t): the region's top-left pixel and its first flow field (field t is the flow
    from frame t to t + 1). A video shorter than one region (fewer than tau flow fields)
    gives an empty (0, n_dims_) array; frames smaller than a region raise ``ValueError``.
"""


class _MotionDescriptor(TransformerMixin, BaseEstimator, ABC):
    """Shared region grid, validation and streaming of the motion descriptors."""

    #: dtype of the descriptor arrays.
    _dtype: ClassVar[type]

    def __init__(self, *, region_size: int, region_frames: int, cells: Sequence[int],
                 stride: int | None, min_motion: float, flow: str,
                 flow_params: Mapping[str, Any] | None) -> None:
        self.region_size = region_size
        self.region_frames = region_frames
        self.cells = cells
        self.stride = stride
        self.min_motion = min_motion
        self.flow = flow
        self.flow_params = flow_params

    # -- per-descriptor hooks ---------------------------------------------------------------
    @abstractmethod
    def _check_own_params(self) -> None:
        """Validate the parameters of the descriptor itself."""

    @abstractmethod
    def _dims(self, config: _Config) -> int:
        """Columns of the descriptor array."""

    @abstractmethod
    def _cell_sums(self, field: np.ndarray, grid: _Grid) -> np.ndarray:
        """One flow field (H, W, 2) -> per-cell sums (rows, cols, K) of per-pixel quantities."""

    @abstractmethod
    def _encode(self, cells: np.ndarray, config: _Config) -> np.ndarray:
        """Region cells (n, n_t, n_y, n_x, K), sums over the cells' pixels and fields ->
        descriptors (n, n_dims_)."""

    # -- validation ---------------------------------------------------------------------------
    def _config(self) -> _Config:
        region_size = check_int(self.region_size, "region_size")
        region_frames = check_int(self.region_frames, "region_frames")
        n_x, n_y, n_t = _cells(self.cells)
        if region_size % n_x or region_size % n_y:
            raise ValueError(f"region_size = {region_size} must be divisible by the number of "
                             f"cells along x and y, cells = {self.cells!r}")
        if region_frames % n_t:
            raise ValueError(f"region_frames = {region_frames} must be divisible by the number "
                             f"of temporal cells, cells = {self.cells!r}")
        cell_w, cell_h = region_size // n_x, region_size // n_y
        if self.stride is None:
            stride_x, stride_y = cell_w, cell_h
        else:
            stride_x = stride_y = check_int(self.stride, "stride")
            if stride_x % cell_w or stride_y % cell_h:
                raise ValueError(f"stride = {self.stride} must be a multiple of the cell size "
                                 f"{cell_w}x{cell_h} (region_size / cells)")
        min_motion = check_real(self.min_motion, "min_motion", 0.0, strict=False)
        if not isinstance(self.flow, str) or self.flow not in FLOW_METHODS:
            raise ValueError(f"flow must be one of {', '.join(map(repr, FLOW_METHODS))}, "
                             f"got {self.flow!r}")
        if self.flow_params is not None and not isinstance(self.flow_params, Mapping):
            raise TypeError(f"flow_params must be a dict or None, "
                            f"got {type(self.flow_params).__name__}")
        flow_params = dict(self.flow_params or {})
        _flow_settings(self.flow, flow_params)
        self._check_own_params()
        return _Config(region_size, region_frames, n_x, n_y, n_t, stride_x, stride_y,
                       min_motion, self.flow, flow_params)

    @property
    def n_dims_(self) -> int:
        """Columns of the descriptor arrays."""
        return self._dims(self._config())

    @property
    def descriptor_bytes_(self) -> int:
        """Memory of one region's descriptor, bytes."""
        return self.n_dims_ * np.dtype(self._dtype).itemsize

    # -- scikit-learn API -----------------------------------------------------------------------
    @staticmethod
    def _check_videos(videos: Any) -> None:
        if isinstance(videos, str | os.PathLike) or not isinstance(videos, Iterable):
            raise TypeError(f"videos must be a list of videos (arrays, paths or iterables of "
                            f"frames), got {type(videos).__name__}; wrap one video in a list")
        if isinstance(videos, np.ndarray) and videos.ndim < 4:
            raise ValueError(f"videos must be a list of videos (or an array (n_videos, T, H, W"
                             f"[, C])), got one array of shape {videos.shape}; wrap one video "
                             f"(T, H, W) in a list")

    def fit(self, videos: Any, y: Any = None) -> _MotionDescriptor:
        """Check the parameters; nothing is learned (the descriptor is stateless).

        Parameters
        ----------
        videos : list of videos, ignored (not read)
        y : ignored

        Returns
        -------
        self
        """
        self._check_videos(videos)
        self._config()
        return self

    def transform(self, videos: Any) -> list[np.ndarray]:
        """Descriptors of each video (see :meth:`extract`).

        Parameters
        ----------
        videos : iterable of videos
            Each anything :func:`~lightvision.features.video.iter_frames` reads.

        Returns
        -------
        list of ndarray, shape (n_regions_i, n_dims_)
        """
        self._check_videos(videos)
        return [self._extract(video, f"videos[{i}]", False) for i, video in enumerate(videos)]

    def extract(self, video: Any, *,
                return_positions: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Descriptors of the regions of one video: its optical flow (``flow``,
        ``flow_params``), then :meth:`describe_flow`.

        Parameters
        ----------
        video : ndarray (T, H, W) or (T, H, W, C), path or iterable of frames
            At least 2 frames, larger than a region.
        return_positions : bool, default=False
            Also return the regions' (x, y, t).

        Returns
        -------
        descriptors : ndarray, shape (n_regions, n_dims_)
        positions : ndarray of int64, shape (n_regions, 3), if ``return_positions``
        """
        return self._extract(video, "video", return_positions)

    def _extract(self, video: Any, name: str, return_positions: bool
                 ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """:meth:`extract`, with ``name`` naming ``video`` in the messages."""
        config = self._config()
        flows = _optical_flow(video, name, config.flow, config.flow_params)
        return self._describe(flows, return_positions, name)

    def describe_flow(self, flows: Iterable[Any], *, return_positions: bool = False
                      ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Descriptors of the regions of a sequence of flow fields, consumed one at a time.

        One flow computation can feed several descriptors: ``extract(video)`` equals
        ``describe_flow(optical_flow(video, method=flow, **flow_params))``.

        Parameters
        ----------
        flows : iterable of ndarray, shape (H, W, 2)
            Flow fields (dx, dy) in pixels/frame, real dtype, all of one size; finite, with
            components of magnitude at most 1e15 (``ValueError`` otherwise).
        return_positions : bool, default=False
            Also return the regions' (x, y, t).

        Returns
        -------
        descriptors : ndarray, shape (n_regions, n_dims_)
        positions : ndarray of int64, shape (n_regions, 3), if ``return_positions``
        """
        if isinstance(flows, str | bytes) or not isinstance(flows, Iterable):
            raise TypeError(f"flows must be an iterable of flow fields (H, W, 2) (a list, an "
                            f"array (T, H, W, 2) or optical_flow(video)), "
                            f"got {type(flows).__name__}")
        return self._describe(flows, return_positions, "flows")

    def _describe(self, flows: Iterable[Any], return_positions: bool, source: str
                  ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """:meth:`describe_flow` of checked ``flows``; ``source`` names where they come from
        ("flows", or the video of :meth:`extract`) in the frame-size message."""
        config = self._config()
        per_cell = config.cell_fields
        grid: _Grid | None = None
        ring = motion = None  # the last n_t temporal cells, oldest first; ring[-1] is filling
        chunks: list[np.ndarray] = []
        places: list[np.ndarray] = []
        for index, field in enumerate(flows):
            field = _check_field(field, index)
            if grid is None:
                grid = _Grid(config, *field.shape[:2], source)
                first = self._cell_sums(field, grid)
                ring = np.zeros((config.n_t, *first.shape))
                ring[-1] = first
                if config.min_motion > 0:
                    motion = np.zeros((config.n_t, grid.rows, grid.cols, 1))
            else:
                if field.shape[:2] != grid.shape:
                    raise ValueError(f"flows[{index}] is {field.shape[0]}x{field.shape[1]} "
                                     f"but the fields before it are {grid.shape[0]}x"
                                     f"{grid.shape[1]}")
                ring[-1] += self._cell_sums(field, grid)
            if motion is not None:
                motion[-1] += grid.cell_sum(_magnitude(field))
            if (index + 1) % per_cell:
                continue
            completed = (index + 1) // per_cell
            if completed >= config.n_t:
                cells, corners = grid.regions(ring), grid.corners
                if motion is not None:
                    keep = grid.mean_motion(motion[..., 0]) >= config.min_motion
                    cells, corners = cells[keep], corners[keep]
                if len(cells):
                    chunks.append(self._encode(cells, config))
                    t = np.full((len(corners), 1), (completed - config.n_t) * per_cell)
                    places.append(np.hstack([corners, t]))
            for buffer in (ring, motion):
                if buffer is not None:
                    buffer[:-1] = buffer[1:]
                    buffer[-1] = 0
        if chunks:
            descriptors = np.concatenate(chunks)
            positions = np.concatenate(places).astype(np.int64, copy=False)
        else:
            descriptors = np.empty((0, self._dims(config)), dtype=self._dtype)
            positions = np.empty((0, 3), dtype=np.int64)
        return (descriptors, positions) if return_positions else descriptors

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.requires_fit = False  # stateless: fit only checks the parameters
        tags.input_tags.two_d_array = False  # a list of videos (T, H, W) or (T, H, W, C)
        tags.transformer_tags.preserves_dtype = []
        return tags


def _magnitude(field: np.ndarray) -> np.ndarray:
    """|flow| per pixel, (H, W, 1) float32."""
    import cv2

    return cv2.magnitude(*cv2.split(field))[..., None]


@FEATURES.register(name="binary_motion", deprecated_names=("BinaryMotionDescriptor",),
                   tags={"video", "binary"}, test_params=_TEST_PARAMS, bench_params={},
                   **_META)
class BinaryMotionDescriptor(_MotionDescriptor):
    __doc__ = f"""Compact binary motion descriptor of spatio-temporal regions (Leyva et al. 2019).

    **[INTERP]** Only the paper's abstract is known: the descriptor "encodes the motion of a
    spatio-temporal support region into a low-dimensional binary string, via a binning
    strategy and a construction that binarises the horizontal and vertical motion components
    separately". Interpreted here as: the binning is the region's n_x x n_y x n_t cells; each
    cell's mean horizontal flow u and mean vertical flow v (pixels/frame, y downwards),
    relative to the region's mean flow (``reference="region"``, the default) or absolute
    (``"zero"``), are binarised separately by thermometer coding against symmetric thresholds
    t_1 < ... < t_m: bits [u > -t_m, ..., u > -t_1, u > t_1, ..., u > t_m], so the Hamming
    distance between two codes counts the quantisation levels crossed, an L1 distance on
    quantised motion. The region reference makes the code invariant to a constant flow added
    to the region (camera pan, jitter), as MBH is; on the generated actions it halved the
    error of the absolute code (README).

    Layout: all u bits (cells in (t, y, x) order, thresholds ascending within a cell), then
    all v bits; n_bits_ = 2 x n_cells x 2m (96 with the defaults), packed by
    ``numpy.packbits(axis=1)`` (first bit = most significant bit of byte 0; pad bits 0) into
    uint8 arrays (n_regions, ceil(n_bits_ / 8)): 12 bytes per region with the defaults, 36x
    less than the float32 HOF of the same region. Each field costs one per-cell sum of the
    flow (and one of its magnitude when ``min_motion`` > 0).

    Because only cell means are kept, the code inherits the invariances of the optical flow:
    with Farneback it barely changes under a global brightness offset (the polynomial
    expansion ignores the constant term) or a uniform gain of the frames (tested).

{_OUTPUT_DOC}
    Parameters
    ----------
{_PARAMS_DOC}    thresholds : sequence of float, default=(0.25, 1.0)
        Increasing positive thresholds t_1 < ... < t_m, pixels/frame. **[INTERP]** 0.25
        separates still from slow motion, 1.0 slow from fast, at the frame rates and sizes of
        action data sets.
    reference : {"region", "zero"}, default="region"
        What the cell means are compared with: the region's mean flow (relative motion), or
        zero (absolute motion). **[INTERP]**: the notes allow either.

    Attributes
    ----------
    n_bits_ : int
        Bits per region.
    n_dims_ : int
        Bytes per region (= columns of the uint8 descriptor arrays; = descriptor_bytes_).
    descriptor_bytes_ : int

    References
    ----------
    .. [1] C. Leyva, V. Sanchez, C.-T. Li, "Compact and Low-Complexity Binary Feature
       Descriptor and Fisher Vectors for Video Analytics", IEEE Trans. Image Processing
       28(12):6169-6184, 2019.
    .. [2] G. Farneback, "Two-Frame Motion Estimation Based on Polynomial Expansion", SCIA
       2003.

    Examples
    --------
    >>> import numpy as np
    >>> y, x = np.mgrid[:48, :64]
    >>> video = np.stack([128 + 60 * np.sin(0.3 * (x - 2 * t)) * np.cos(0.25 * y)
    ...                   for t in range(16)])  # 2 px/frame to the right
    >>> binary = BinaryMotionDescriptor()
    >>> codes, positions = binary.extract(video, return_positions=True)
    >>> codes.shape, codes.dtype, binary.n_bits_  # 2x3 regions of 32x32 px, 15 fields
    ((6, 12), dtype('uint8'), 96)
    >>> positions[:3].tolist()  # (x, y, t), stride one cell (16 px)
    [[0, 0, 0], [16, 0, 0], [32, 0, 0]]
    >>> bits = np.unpackbits(codes[0])  # first cell, u and v relative to the region's mean
    >>> bits[:4].tolist(), bits[48:52].tolist()  # uniform motion: both ~ 0
    ([1, 1, 0, 0], [1, 1, 0, 0])
    >>> absolute = BinaryMotionDescriptor(reference="zero").extract(video)
    >>> np.unpackbits(absolute[0])[:4].tolist()  # u > -1, -0.25, 0.25, 1: u ~ 2
    [1, 1, 1, 1]
    """

    _dtype = np.uint8

    def __init__(self, region_size: int = 32, region_frames: int = 15,
                 cells: Sequence[int] = (2, 2, 3), stride: int | None = None,
                 min_motion: float = 0.3, flow: str = "farneback",
                 flow_params: Mapping[str, Any] | None = None,
                 thresholds: Sequence[float] = (0.25, 1.0), reference: str = "region") -> None:
        super().__init__(region_size=region_size, region_frames=region_frames, cells=cells,
                         stride=stride, min_motion=min_motion, flow=flow,
                         flow_params=flow_params)
        self.thresholds = thresholds
        self.reference = reference

    def _levels(self) -> np.ndarray:
        """[-t_m, ..., -t_1, t_1, ..., t_m]."""
        t = np.asarray(self.thresholds, dtype=np.float64)
        return np.concatenate([-t[::-1], t])

    def _check_own_params(self) -> None:
        t = self.thresholds
        if isinstance(t, str) or not isinstance(t, Sequence) or not t:
            raise TypeError(f"thresholds must be a non-empty sequence of numbers, got {t!r}")
        values = [check_real(v, f"thresholds[{i}]") for i, v in enumerate(t)]
        if any(b <= a for a, b in zip(values, values[1:], strict=False)):
            raise ValueError(f"thresholds must be strictly increasing, got {t!r}")
        if self.reference not in _REFERENCES:
            raise ValueError(f"reference must be one of {_REFERENCES}, got {self.reference!r}")

    @property
    def n_bits_(self) -> int:
        """Bits per region: 2 components x n_cells x 2 len(thresholds)."""
        return 4 * self._config().n_cells * len(self.thresholds)

    def _dims(self, config: _Config) -> int:
        return math.ceil(4 * config.n_cells * len(self.thresholds) / 8)

    def _cell_sums(self, field: np.ndarray, grid: _Grid) -> np.ndarray:
        return grid.cell_sum(field)

    def _encode(self, cells: np.ndarray, config: _Config) -> np.ndarray:
        means = cells / (config.cell_w * config.cell_h * config.cell_fields)
        components = np.moveaxis(means, -1, 1).reshape(len(cells), 2, config.n_cells)
        if self.reference == "region":
            components = components - components.mean(axis=2, keepdims=True)
        bits = components[..., None] > self._levels()
        return np.packbits(bits.reshape(len(cells), -1), axis=1)


@FEATURES.register(name="hof", deprecated_names=("HOFDescriptor",), tags={"video"},
                   test_params=_TEST_PARAMS, bench_params={}, **_META)
class HOFDescriptor(_MotionDescriptor):
    __doc__ = f"""Histograms of optical flow (HOF; Laptev et al. 2008, as in Wang et al. 2013).

    Per pixel, the flow orientation atan2(dy, dx) (image axes: 0 = rightwards, pi / 2 =
    downwards) is binned into ``n_bins`` orientations k 2 pi / n_bins, weighted by the flow
    magnitude (pixels/frame) and split linearly between the two nearest orientations (Wang's
    code); pixels whose magnitude is at most ``zero_flow`` go to one extra no-motion bin with
    weight 1 each (Wang's code uses 1 per pixel, a count, whatever the flow scale). Per cell,
    the histograms are summed over the cell's pixels and flow fields; a region's descriptor
    concatenates its cells' histograms (cells in (t, y, x) order, the n_bins orientations then
    the no-motion bin) and is L2-normalised (Wang et al. 2013; all-zero stays zero):
    n_cells x (n_bins + 1) float32 (108 with the defaults, 432 bytes).

{_OUTPUT_DOC}
    Parameters
    ----------
{_PARAMS_DOC}    n_bins : int, default=8
        Orientation bins (plus the no-motion bin).
    zero_flow : float, default=0.4
        Flow magnitude (pixels/frame) up to which a pixel counts as not moving; 0.4 is
        ``min_flow`` of Wang's dense-trajectory code.

    Attributes
    ----------
    n_dims_ : int
        Floats per region.
    descriptor_bytes_ : int
        Bytes per region (float32).

    References
    ----------
    .. [1] I. Laptev, M. Marszalek, C. Schmid, B. Rozenfeld, "Learning realistic human actions
       from movies", CVPR 2008.
    .. [2] H. Wang, A. Klaser, C. Schmid, C.-L. Liu, "Dense Trajectories and Motion Boundary
       Descriptors for Action Recognition", IJCV 103(1):60-79, 2013.

    Examples
    --------
    >>> import numpy as np
    >>> rightwards = np.zeros((4, 32, 32, 2), dtype=np.float32)
    >>> rightwards[..., 0] = 1.5  # uniform flow of 1.5 px/frame to the right
    >>> hof = HOFDescriptor(region_size=16, region_frames=4, cells=(2, 2, 2))
    >>> h = hof.describe_flow(rightwards)
    >>> h.shape, hof.n_dims_  # 3x3 regions (stride 8 px), 8 cells x 9 bins
    ((9, 72), 72)
    >>> h[0, :9].astype(float).round(3).tolist()  # all the mass in the 0-rad bin
    [0.354, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    """

    _dtype = np.float32

    def __init__(self, region_size: int = 32, region_frames: int = 15,
                 cells: Sequence[int] = (2, 2, 3), stride: int | None = None,
                 min_motion: float = 0.3, flow: str = "farneback",
                 flow_params: Mapping[str, Any] | None = None, n_bins: int = 8,
                 zero_flow: float = 0.4) -> None:
        super().__init__(region_size=region_size, region_frames=region_frames, cells=cells,
                         stride=stride, min_motion=min_motion, flow=flow,
                         flow_params=flow_params)
        self.n_bins = n_bins
        self.zero_flow = zero_flow

    def _check_own_params(self) -> None:
        check_int(self.n_bins, "n_bins")
        check_real(self.zero_flow, "zero_flow", 0.0, strict=False)

    def _dims(self, config: _Config) -> int:
        return config.n_cells * (self.n_bins + 1)

    def _cell_sums(self, field: np.ndarray, grid: _Grid) -> np.ndarray:
        import cv2

        work = grid.workspace.get("hof")
        if work is None:  # per-stream buffers: the flow components and the histograms
            u, v = (np.empty(grid.crop, np.float32) for _ in range(2))
            histograms = _OrientationHistograms(grid.cell_index, grid.n_grid_cells,
                                                self.n_bins, self.zero_flow)
            work = grid.workspace["hof"] = (u, v, histograms)
        u, v, histograms = work
        cv2.split(field[: grid.crop[0], : grid.crop[1]], [u, v])
        return histograms(u, v).reshape(grid.rows, grid.cols, self.n_bins + 1)

    def _encode(self, cells: np.ndarray, config: _Config) -> np.ndarray:
        return _l2_normalise(cells.reshape(len(cells), -1)).astype(np.float32)


@FEATURES.register(name="mbh", deprecated_names=("MBHDescriptor",), tags={"video"},
                   test_params=_TEST_PARAMS, bench_params={}, **_META)
class MBHDescriptor(_MotionDescriptor):
    __doc__ = f"""Motion boundary histograms (MBH; Dalal et al. 2006, as in Wang et al. 2013).

    The flow components u and v are differentiated separately with the central difference
    [-1, 0, 1] (``cv2.Sobel`` with ksize=1, as Wang's code; borders reflected), so constant
    motion (camera translation) cancels. Per pixel, the orientation of the gradient of u
    (MBHx) and of v (MBHy) is binned into ``n_bins`` orientations, weighted by the gradient
    magnitude and split linearly between the two nearest orientations (as HOF, without a
    no-motion bin); histograms are summed per cell. A region's MBHx (cells in (t, y, x) order,
    bins) and MBHy are each L2-normalised and concatenated: 2 x n_cells x n_bins float32 (192
    with the defaults). Uniform flow has no motion boundaries and gives zeros.

{_OUTPUT_DOC}
    Parameters
    ----------
{_PARAMS_DOC}    n_bins : int, default=8
        Orientation bins of each of MBHx and MBHy.

    Attributes
    ----------
    n_dims_ : int
        Floats per region.
    descriptor_bytes_ : int
        Bytes per region (float32).

    References
    ----------
    .. [1] N. Dalal, B. Triggs, C. Schmid, "Human Detection Using Oriented Histograms of Flow
       and Appearance", ECCV 2006.
    .. [2] H. Wang, A. Klaser, C. Schmid, C.-L. Liu, "Dense Trajectories and Motion Boundary
       Descriptors for Action Recognition", IJCV 103(1):60-79, 2013.

    Examples
    --------
    >>> import numpy as np
    >>> flows = np.zeros((4, 32, 32, 2), dtype=np.float32)
    >>> flows[:, :, 16:, 0] = 2.0  # the right half moves right: a vertical motion boundary
    >>> mbh = MBHDescriptor(region_size=16, region_frames=4, cells=(2, 2, 2), min_motion=0)
    >>> d = mbh.describe_flow(flows)
    >>> d.shape, mbh.n_dims_  # 3x3 regions, MBHx + MBHy of 8 cells x 8 bins
    ((9, 128), 128)
    >>> float(np.abs(d[:, 64:]).max())  # v is constant: no MBHy
    0.0
    """

    _dtype = np.float32

    def __init__(self, region_size: int = 32, region_frames: int = 15,
                 cells: Sequence[int] = (2, 2, 3), stride: int | None = None,
                 min_motion: float = 0.3, flow: str = "farneback",
                 flow_params: Mapping[str, Any] | None = None, n_bins: int = 8) -> None:
        super().__init__(region_size=region_size, region_frames=region_frames, cells=cells,
                         stride=stride, min_motion=min_motion, flow=flow,
                         flow_params=flow_params)
        self.n_bins = n_bins

    def _check_own_params(self) -> None:
        check_int(self.n_bins, "n_bins")

    def _dims(self, config: _Config) -> int:
        return 2 * config.n_cells * self.n_bins

    def _cell_sums(self, field: np.ndarray, grid: _Grid) -> np.ndarray:
        import cv2

        height, width = grid.crop
        work = grid.workspace.get("mbh")
        if work is None:  # per-stream buffers: the flow gradients and the histograms
            d_dx, d_dy = (np.empty_like(field) for _ in range(2))
            # histogram of each (pixel, component): (cell, u or v), layout (h, 2 w)
            groups = (grid.cell_index * 2)[..., None] + np.arange(2)
            histograms = _OrientationHistograms(groups.reshape(height, -1),
                                                2 * grid.n_grid_cells, self.n_bins)
            work = grid.workspace["mbh"] = (d_dx, d_dy, histograms)
        d_dx, d_dy, histograms = work
        cv2.Sobel(field, cv2.CV_32F, 1, 0, dst=d_dx, ksize=1)  # (du/dx, dv/dx)
        cv2.Sobel(field, cv2.CV_32F, 0, 1, dst=d_dy, ksize=1)  # (du/dy, dv/dy)
        sums = histograms(d_dx[:height, :width].reshape(height, -1),
                          d_dy[:height, :width].reshape(height, -1))
        return sums.reshape(grid.rows, grid.cols, 2 * self.n_bins)

    def _encode(self, cells: np.ndarray, config: _Config) -> np.ndarray:
        n = len(cells)
        parts = cells.reshape(n, config.n_cells, 2, self.n_bins).transpose(0, 2, 1, 3)
        return _l2_normalise(parts.reshape(n, 2, -1)).reshape(n, -1).astype(np.float32)
