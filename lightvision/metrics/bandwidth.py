"""Data sizes and bandwidths of an embedded vision pipeline (Fabre et al. 2024, section 2.3).

Pure Python: importing this module does not import torch. All sizes are in bits, all rates in
bit/s. The analog-to-digital (raw) bandwidth of a sensor is ``W * H * channels * bit_depth *
fps``; the interconnect bandwidth is the bits actually sent per frame (raw image, pre-processed
image, feature vector or label) times ``fps`` times a protocol overhead factor (e.g. 1.2 for
MIPI CSI-2 blanking); the data-reduction ratio ``raw / link`` measures what near- or in-sensor
processing saves.

References
----------
.. [1] C. Fabre et al., "Metrics for embedded AI vision systems", Sensors 24(16):5446, 2024.
"""

from __future__ import annotations

import math

__all__ = [
    "data_reduction_ratio",
    "feature_bits",
    "image_bits",
    "label_bits",
    "link_bandwidth",
    "raw_bandwidth",
]


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


def _positive_real(value: object, name: str, minimum: float = 0.0, strict: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    too_small = value <= minimum if strict else value < minimum
    if not math.isfinite(value) or too_small:
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        raise ValueError(f"{name} must be a finite number {bound}, got {value}")
    return float(value)


def image_bits(width: int, height: int, *, channels: int = 1, bit_depth: int = 8) -> int:
    """Bits of one image: ``width * height * channels * bit_depth``."""
    return (
        _positive_int(width, "width")
        * _positive_int(height, "height")
        * _positive_int(channels, "channels")
        * _positive_int(bit_depth, "bit_depth")
    )


def feature_bits(n_features: int, *, bits: int = 32) -> int:
    """Bits of a feature vector: ``n_features * bits``."""
    return _positive_int(n_features, "n_features") * _positive_int(bits, "bits")


def label_bits(n_classes: int) -> int:
    """Bits of a class label: ``ceil(log2(n_classes))``, at least 1."""
    n = _positive_int(n_classes, "n_classes")
    return max(1, (n - 1).bit_length())


def raw_bandwidth(
    width: int, height: int, *, channels: int = 1, bit_depth: int = 8, fps: float = 30.0
) -> float:
    """Analog-to-digital (raw sensor) bandwidth in bit/s: ``image_bits * fps``."""
    bits = image_bits(width, height, channels=channels, bit_depth=bit_depth)
    return bits * _positive_real(fps, "fps")


def link_bandwidth(bits_per_frame: int, *, fps: float = 30.0, overhead: float = 1.0) -> float:
    """Interconnect bandwidth in bit/s: ``bits_per_frame * fps * overhead`` (``overhead >= 1``)."""
    bits = _positive_int(bits_per_frame, "bits_per_frame")
    return bits * _positive_real(fps, "fps") * _positive_real(overhead, "overhead", 1.0, False)


def data_reduction_ratio(raw_bps: float, link_bps: float) -> float:
    """Data-reduction ratio ``raw_bps / link_bps`` (dimensionless, > 1 when data is reduced)."""
    return _positive_real(raw_bps, "raw_bps") / _positive_real(link_bps, "link_bps")
