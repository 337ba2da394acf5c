"""Embedded-vision cost metrics (Fabre et al. 2024, review #3).

Parameters and operations (:func:`count_params`, :func:`count_ops`, with binary and ternary
operations counted apart from real MACs via :func:`register_cost`; FLOPs = 2 x MACs), storage
(:func:`model_size_bits`, :func:`model_size_bytes`: the bits actually stored), activation memory
(:func:`peak_activation_bytes`), latency and throughput (:func:`measure_latency`,
:func:`measure_throughput`), an energy **estimate** (:func:`estimate_energy`), sensor and link
bandwidths (:mod:`lightvision.metrics.bandwidth`), and everything at once with :func:`profile`.

>>> import torch
>>> from lightvision.metrics import profile
>>> p = profile(torch.nn.Conv2d(1, 2, 3), torch.zeros(1, 1, 5, 5), timing=False)
>>> p.macs  # 2 output channels * 3 * 3 positions * 1 input channel * 3 * 3 kernel
162

References
----------
.. [1] C. Fabre et al., "Metrics for embedded AI vision systems", Sensors 24(16):5446, 2024.
.. [2] M. Horowitz, "Computing's energy problem (and what we can do about it)", IEEE ISSCC
   2014, pp. 10-14.
"""

from .bandwidth import (
    data_reduction_ratio,
    feature_bits,
    image_bits,
    label_bits,
    link_bandwidth,
    raw_bandwidth,
)
from .costprofile import CostProfile, profile
from .counting import CostSpec, OpCount, ParamCount, count_ops, count_params, register_cost
from .energy import EnergyEstimate, EnergyTable, estimate_energy
from .memory import (
    activation_traffic_bytes,
    model_size_bits,
    model_size_bytes,
    peak_activation_bytes,
)
from .timing import Latency, measure_latency, measure_throughput

__all__ = [
    "CostProfile",
    "CostSpec",
    "EnergyEstimate",
    "EnergyTable",
    "Latency",
    "OpCount",
    "ParamCount",
    "activation_traffic_bytes",
    "count_ops",
    "count_params",
    "data_reduction_ratio",
    "estimate_energy",
    "feature_bits",
    "image_bits",
    "label_bits",
    "link_bandwidth",
    "measure_latency",
    "measure_throughput",
    "model_size_bits",
    "model_size_bytes",
    "peak_activation_bytes",
    "profile",
    "raw_bandwidth",
    "register_cost",
]
