"""Streamed video input and dense optical flow (OpenCV).

- :func:`iter_frames`: the grey uint8 frames of an array, a video file or any iterable of
  frames, one at a time (memory independent of the video length).
- :func:`optical_flow`: dense flow fields between consecutive frames, Farneback (2003) or
  DIS (Kroeger et al. 2016), with only two frames in memory at a time.

OpenCV is imported on first use.

References
----------
.. [1] G. Farneback, "Two-Frame Motion Estimation Based on Polynomial Expansion", Scandinavian
   Conference on Image Analysis (SCIA), LNCS 2749:363-370, 2003.
.. [2] T. Kroeger, R. Timofte, D. Dai, L. Van Gool, "Fast Optical Flow using Dense Inverse
   Search", ECCV 2016.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from .._checks import check_int, check_real

__all__ = ["FLOW_METHODS", "iter_frames", "optical_flow"]

#: Default parameters of each optical-flow method: OpenCV's documented typical values for
#: ``cv2.calcOpticalFlowFarneback``, and the "medium" preset of ``cv2.DISOpticalFlow``.
FLOW_METHODS: Mapping[str, Mapping[str, Any]] = {
    "farneback": {"pyr_scale": 0.5, "levels": 3, "winsize": 15, "iterations": 3,
                  "poly_n": 5, "poly_sigma": 1.2, "flags": 0},
    "dis": {"preset": "medium"},
}
_DIS_PRESETS = ("ultrafast", "fast", "medium")
_FARNEBACK_FLAGS = (0, 256)  # 0 or cv2.OPTFLOW_FARNEBACK_GAUSSIAN

Flow = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _check_dtype(dtype: np.dtype, what: str) -> None:
    if dtype != np.uint8 and dtype.kind not in "iuf":
        raise TypeError(f"{what} has dtype {dtype}; expected uint8, or another integer or "
                        f"float dtype with values in [0, 255]")


def _check_values(a: np.ndarray, what: str) -> None:
    """Finite values in [0, 255] (uint8 needs no check)."""
    if a.dtype == np.uint8 or a.size == 0:
        return
    low, high = a.min(), a.max()  # NaN propagates through min and max
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError(f"{what} holds NaN or infinite values")
    if low < 0 or high > 255:
        raise ValueError(f"{what} holds values in [{low}, {high}], outside [0, 255]")


def _check_layout(shape: tuple[int, ...], what: str, colour_axis: int) -> None:
    """A frame shape (H, W) or (H, W, C) (``colour_axis`` = 2), or a video's (T, ...) one."""
    if len(shape) not in (colour_axis, colour_axis + 1):
        raise ValueError(f"{what} must have {colour_axis} (grey) or {colour_axis + 1} (colour) "
                         f"dimensions, got shape {shape}")
    if len(shape) > colour_axis and shape[colour_axis] not in (1, 3, 4):
        raise ValueError(f"{what} has {shape[colour_axis]} channels; expected 1, 3 or 4")
    if min(shape[colour_axis - 2:colour_axis]) < 1:
        raise ValueError(f"{what} has empty frames, shape {shape}")


def _grey(frame: np.ndarray, bgr: bool) -> np.ndarray:
    """A checked frame (H, W) or (H, W, C) as contiguous grey uint8 (H, W)."""
    import cv2

    if frame.dtype != np.uint8:  # checked: finite, in [0, 255]
        frame = (np.rint(frame) if frame.dtype.kind == "f" else frame).astype(np.uint8)
    if frame.ndim == 2 or frame.shape[2] == 1:
        return np.ascontiguousarray(frame.reshape(frame.shape[:2]))
    codes = {3: (cv2.COLOR_RGB2GRAY, cv2.COLOR_BGR2GRAY),
             4: (cv2.COLOR_RGBA2GRAY, cv2.COLOR_BGRA2GRAY)}
    return cv2.cvtColor(np.ascontiguousarray(frame), codes[frame.shape[2]][bgr])


def _grey_frames(frames: Iterable[Any], name: str, *, bgr: bool = False,
                 checked: bool = False) -> Iterator[np.ndarray]:
    """Check (unless ``checked``) and convert frames one by one; the size must not change."""
    size = None
    for index, frame in enumerate(frames):
        frame = np.asarray(frame)
        if not checked:
            what = f"{name} frame {index}"
            _check_layout(frame.shape, what, 2)
            _check_dtype(frame.dtype, what)
            _check_values(frame, what)
        grey = _grey(frame, bgr)
        if size is None:
            size = grey.shape
        elif grey.shape != size:
            raise ValueError(f"{name} frame {index} is {grey.shape[0]}x{grey.shape[1]} but the "
                             f"frames before it are {size[0]}x{size[1]}; the frame size must "
                             f"not change within a video")
        yield grey
    if size is None:
        raise ValueError(f"{name} has no frames")


def _file_frames(capture: Any) -> Iterator[np.ndarray]:
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield frame
    finally:
        capture.release()


def iter_frames(video: Any) -> Iterator[np.ndarray]:
    """The frames of ``video`` as grey uint8 arrays (H, W), one at a time.

    Parameters
    ----------
    video : ndarray, path or iterable of frames
        - an array (T, H, W) (grey) or (T, H, W, C), C in {1, 3, 4}, colour in **RGB(A)**
          order (converted with ``cv2.cvtColor``);
        - a ``str`` or ``os.PathLike`` path of any file ``cv2.VideoCapture`` reads (BGR frames,
          decoded one at a time);
        - any other iterable of frames (H, W) or (H, W, C), RGB(A) order, consumed lazily.

        dtype: uint8 as is; other integer and float dtypes when all values are finite and in
        [0, 255] (rounded to the nearest integer).

    Returns
    -------
    iterator of ndarray of uint8, shape (H, W)
        Memory does not grow with the video length (a file or a generator is never held
        whole).

    Raises
    ------
    FileNotFoundError
        A path that is not a file.
    TypeError
        Bool, complex, object or string data; an object that is neither an array, a path nor
        an iterable.
    ValueError
        A file OpenCV cannot open, a wrong number of dimensions or channels, NaN, infinite or
        out-of-range values, no frames, or frames whose size changes (this and the per-frame
        checks of a file or an iterable are raised while iterating, at the offending frame).

    Examples
    --------
    >>> import numpy as np
    >>> video = np.zeros((5, 4, 6, 3), dtype=np.float32)  # RGB
    >>> [frame.shape for frame in iter_frames(video)][:2]
    [(4, 6), (4, 6)]
    """
    return _frames(video, "video")


def _frames(video: Any, name: str) -> Iterator[np.ndarray]:
    """:func:`iter_frames`, with ``name`` naming ``video`` in the messages (e.g.
    ``"videos[2]"``, one video of a caller's list)."""
    if isinstance(video, str | os.PathLike):
        import cv2

        path = os.fspath(video)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{name} file {path!r} does not exist")
        capture = cv2.VideoCapture(path)
        if not capture.isOpened():
            raise ValueError(f"{name} file {path!r} cannot be read by OpenCV "
                             f"(cv2.VideoCapture failed to open it)")
        return _grey_frames(_file_frames(capture), f"{name} file {path!r}", bgr=True)
    if isinstance(video, np.ndarray):
        _check_layout(video.shape, name, 3)
        _check_dtype(video.dtype, name)
        if len(video) == 0:
            raise ValueError(f"{name} has no frames")
        _check_values(video, name)
        return _grey_frames(video, name, checked=True)
    if isinstance(video, Iterable) and not isinstance(video, bytes):
        return _grey_frames(video, name)
    raise TypeError(f"{name} must be an array, a path or an iterable of frames, "
                    f"got {type(video).__name__}")


def _flow_settings(method: Any, params: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``method`` and its ``params``; return the full parameter set."""
    if not isinstance(method, str) or method not in FLOW_METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, FLOW_METHODS))}, "
                         f"got {method!r}")
    unknown = sorted(set(params) - set(FLOW_METHODS[method]))
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(map(repr, unknown))} for method "
                         f"{method!r}; valid: {', '.join(FLOW_METHODS[method])}")
    settings = {**FLOW_METHODS[method], **params}
    if method == "dis":
        if settings["preset"] not in _DIS_PRESETS:
            raise ValueError(f"preset must be one of {', '.join(map(repr, _DIS_PRESETS))}, "
                             f"got {settings['preset']!r}")
        return settings
    pyr_scale = check_real(settings["pyr_scale"], "pyr_scale")
    if pyr_scale >= 1:
        raise ValueError(f"pyr_scale must be in (0, 1), got {pyr_scale}")
    for name in ("levels", "winsize", "iterations", "poly_n"):
        check_int(settings[name], name)
    check_real(settings["poly_sigma"], "poly_sigma")
    if check_int(settings["flags"], "flags", minimum=0) not in _FARNEBACK_FLAGS:
        raise ValueError(f"flags must be 0 or cv2.OPTFLOW_FARNEBACK_GAUSSIAN (256), "
                         f"got {settings['flags']!r}")
    return settings


def _flow_function(method: str, settings: Mapping[str, Any]) -> Flow:
    """(previous, next) grey frames -> float32 flow (H, W, 2), for checked settings."""
    import cv2

    if method == "dis":
        dis = cv2.DISOpticalFlow.create(
            getattr(cv2, f"DISOPTICAL_FLOW_PRESET_{settings['preset'].upper()}"))
        return lambda previous, following: dis.calc(previous, following, None)
    args = tuple(settings[name] for name in FLOW_METHODS["farneback"])
    return lambda previous, following: cv2.calcOpticalFlowFarneback(previous, following,
                                                                     None, *args)


def _flow_fields(frames: Iterator[np.ndarray], flow: Flow,
                 name: str) -> Iterator[np.ndarray]:
    previous = next(frames)
    count = 0
    for frame in frames:
        yield flow(previous, frame)
        previous = frame
        count += 1
    if count == 0:
        raise ValueError(f"{name} has 1 frame; optical flow needs at least 2")


def optical_flow(video: Any, *, method: str = "farneback", **params: Any) -> Iterator[np.ndarray]:
    """Dense optical flow between consecutive frames of ``video``, one field at a time.

    Parameters
    ----------
    video : ndarray, path or iterable of frames
        Anything :func:`iter_frames` reads; at least 2 frames.
    method : {"farneback", "dis"}, default="farneback"
        ``cv2.calcOpticalFlowFarneback`` (Farneback 2003) or ``cv2.DISOpticalFlow`` (dense
        inverse search, Kroeger et al. 2016).
    **params
        Farneback: ``pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5,
        poly_sigma=1.2, flags=0`` (OpenCV's documented typical values; flags 0 or
        ``cv2.OPTFLOW_FARNEBACK_GAUSSIAN``). DIS: ``preset="medium"`` (or "fast",
        "ultrafast").

    Returns
    -------
    iterator of ndarray of float32, shape (H, W, 2)
        T - 1 fields (dx, dy) in pixels per frame, x to the right and y downwards: frame t+1
        at (x + dx, y + dy) shows what frame t shows at (x, y). Only two frames are held at a
        time.

    Raises
    ------
    ValueError
        An unknown method or parameter (listing the valid ones), a bad parameter value
        (at once), or a video with fewer than 2 frames (while iterating); see
        :func:`iter_frames` for the checks of ``video``.

    Examples
    --------
    >>> import numpy as np
    >>> y, x = np.mgrid[:40, :60]
    >>> video = np.stack([128 + 60 * np.sin(0.3 * (x - 2 * t)) * np.cos(0.25 * y)
    ...                   for t in range(3)])  # moves 2 px/frame to the right
    >>> fields = list(optical_flow(video))
    >>> len(fields), fields[0].shape, fields[0].dtype
    (2, (40, 60, 2), dtype('float32'))
    >>> np.round(np.median(fields[0][10:30, 10:50], axis=(0, 1)), 1).tolist()
    [2.0, 0.0]
    """
    return _optical_flow(video, "video", method, params)


def _optical_flow(video: Any, name: str, method: str,
                  params: Mapping[str, Any]) -> Iterator[np.ndarray]:
    """:func:`optical_flow`, with ``name`` naming ``video`` in the messages."""
    flow = _flow_function(method, _flow_settings(method, params))
    return _flow_fields(_frames(video, name), flow, name)
