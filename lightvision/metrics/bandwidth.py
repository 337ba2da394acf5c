"""Data sizes and bandwidths of an embedded vision pipeline (Fabre et al. 2024, section 2.3).

Pure Python: importing this module does not import torch. All sizes are in bits, exact Python
ints of any size; all rates are in bit/s, floats (a rate beyond the float range, about 1.8e308
bit/s, raises ``ValueError``). The analog-to-digital (raw) bandwidth of a sensor is
``W * H * channels * bit_depth * fps``; the interconnect bandwidth is the bits actually sent per
frame (raw image, pre-processed image, feature vector or label) times ``fps`` times a protocol
overhead factor (e.g. 1.2 for MIPI CSI-2 blanking); the data-reduction ratio ``raw / link``
measures what near- or in-sensor processing saves.

References
----------
.. [1] C. Fabre et al., "Metrics for embedded AI vision systems", Sensors 24(16):5446, 2024.
"""

from __future__ import annotations

import math

from .._checks import check_int, check_real

__all__ = [
    "data_reduction_ratio",
    "feature_bits",
    "image_bits",
    "label_bits",
    "link_bandwidth",
    "raw_bandwidth",
]


def image_bits(width: int, height: int, *, channels: int = 1, bit_depth: int = 8) -> int:
    """Bits of one image: ``width * height * channels * bit_depth``."""
    return (
        check_int(width, "width")
        * check_int(height, "height")
        * check_int(channels, "channels")
        * check_int(bit_depth, "bit_depth")
    )


def feature_bits(n_features: int, *, bits: int = 32) -> int:
    """Bits of a feature vector: ``n_features * bits``."""
    return check_int(n_features, "n_features") * check_int(bits, "bits")


def label_bits(n_classes: int) -> int:
    """Bits of a class label: ``ceil(log2(n_classes))``, at least 1."""
    n = check_int(n_classes, "n_classes")
    return max(1, (n - 1).bit_length())


def _rate(bits: int, factor: float, what: str) -> float:
    """``bits * factor`` as a finite float, else ``ValueError`` naming ``what``."""
    try:
        rate = bits * factor
    except OverflowError:  # bits beyond the float range
        rate = math.inf
    if not math.isfinite(rate):
        raise ValueError(f"{what} overflows a float bandwidth (> 1.8e308 bit/s): a "
                         f"{bits.bit_length()}-bit number of bits x {factor:g}")
    return rate


def raw_bandwidth(
    width: int, height: int, *, channels: int = 1, bit_depth: int = 8, fps: float = 30.0
) -> float:
    """Analog-to-digital (raw sensor) bandwidth in bit/s: ``image_bits * fps``."""
    bits = image_bits(width, height, channels=channels, bit_depth=bit_depth)
    return _rate(bits, check_real(fps, "fps"), "raw_bandwidth: image_bits * fps")


def link_bandwidth(bits_per_frame: int, *, fps: float = 30.0, overhead: float = 1.0) -> float:
    """Interconnect bandwidth in bit/s: ``bits_per_frame * fps * overhead`` (``overhead >= 1``)."""
    bits = check_int(bits_per_frame, "bits_per_frame")
    factor = check_real(fps, "fps") * check_real(overhead, "overhead", 1.0, strict=False)
    return _rate(bits, factor, "link_bandwidth: bits_per_frame * fps * overhead")


def data_reduction_ratio(raw_bps: float, link_bps: float) -> float:
    """Data-reduction ratio ``raw_bps / link_bps`` (dimensionless, > 1 when data is reduced)."""
    ratio = check_real(raw_bps, "raw_bps") / check_real(link_bps, "link_bps")
    if not math.isfinite(ratio):
        raise ValueError(f"raw_bps / link_bps = {raw_bps:g} / {link_bps:g} overflows a float")
    return ratio
