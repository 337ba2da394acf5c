"""One-call cost profile of a model: parameters, operations, memory, timing and energy.

References
----------
.. [1] C. Fabre et al., "Metrics for embedded AI vision systems", Sensors 24(16):5446, 2024.
.. [2] M. Horowitz, "Computing's energy problem (and what we can do about it)", IEEE ISSCC
   2014, pp. 10-14.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from .._checks import check_bool, check_int
from .._deprecation import renamed_kwargs
from ._validation import check_inputs, check_model
from .counting import count_ops, count_params
from .energy import EnergyTable, estimate_energy
from .memory import _activation_stats, model_size_bytes
from .timing import measure_latency, measure_throughput

__all__ = ["CostProfile", "profile"]


@dataclass(frozen=True)
class CostProfile:
    """Embedded cost figures of a model for one input (counts are for the given batch).

    Attributes
    ----------
    trainable_params, fixed_params : int
        See :func:`~lightvision.metrics.count_params`.
    macs, binary_ops, ternary_ops, other_ops : int
        See :func:`~lightvision.metrics.count_ops` (``binary_ops`` and ``ternary_ops`` skip
        zero weights; the energy estimate uses them).
    dense_binary_ops, dense_ternary_ops : int
        The binary and ternary operations counted with zero weights included.
    model_bytes : int
        Storage of parameters and buffers, see :func:`~lightvision.metrics.model_size_bytes`.
    peak_activation_bytes : int
        Estimated peak live activation memory.
    activation_traffic_bytes : int
        Estimated bytes of all activations produced (used for the energy estimate).
    latency_ms, latency_p90_ms : float or None
        Batch-1 median and 90th-percentile latency in ms (None without timing).
    throughput : float or None
        Samples per second at batch ``throughput_batch`` (None without timing).
    throughput_batch : int or None
        Batch size of the throughput measurement (None without timing).
    threads : int or None
        ``torch.get_num_threads()`` during timing (None without timing).
    energy_uj : float
        **Estimated** energy of one forward pass in microjoules, from an energy table.
    """

    trainable_params: int
    fixed_params: int
    macs: int
    binary_ops: int
    ternary_ops: int
    other_ops: int
    dense_binary_ops: int
    dense_ternary_ops: int
    model_bytes: int
    peak_activation_bytes: int
    activation_traffic_bytes: int
    latency_ms: float | None
    latency_p90_ms: float | None
    throughput: float | None
    throughput_batch: int | None
    threads: int | None
    energy_uj: float

    @property
    def flops(self) -> int:
        """Real floating-point operations, ``2 * macs``."""
        return 2 * self.macs

    def as_dict(self) -> dict[str, Any]:
        """All fields plus ``flops``, as a plain dict."""
        return {**asdict(self), "flops": self.flops}

    def summary(self) -> str:
        """A two-column text table of the figures."""
        rows = [
            ("trainable params", f"{self.trainable_params:,}"),
            ("fixed params", f"{self.fixed_params:,}"),
            ("MACs", f"{self.macs:,}"),
            ("FLOPs (2 x MACs)", f"{self.flops:,}"),
            ("binary ops", f"{self.binary_ops:,}"),
            ("ternary ops", f"{self.ternary_ops:,}"),
            ("other ops", f"{self.other_ops:,}"),
            ("binary ops, dense", f"{self.dense_binary_ops:,}"),
            ("ternary ops, dense", f"{self.dense_ternary_ops:,}"),
            ("model size (B)", f"{self.model_bytes:,}"),
            ("peak activations (B)", f"{self.peak_activation_bytes:,}"),
            ("activation traffic (B)", f"{self.activation_traffic_bytes:,}"),
            ("latency median (ms)", _fmt(self.latency_ms, ".3f")),
            ("latency p90 (ms)", _fmt(self.latency_p90_ms, ".3f")),
            (f"throughput (1/s, batch {self.throughput_batch})", _fmt(self.throughput, ".1f")),
            ("threads", _fmt(self.threads, "d")),
            ("energy, estimate (uJ)", f"{self.energy_uj:.3f}"),
        ]
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name:<{width}}  {value:>16}" for name, value in rows)

    def __str__(self) -> str:
        return self.summary()


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


@renamed_kwargs(example_input="example_inputs")
def profile(
    model: nn.Module,
    example_inputs: torch.Tensor | tuple[torch.Tensor, ...],
    *,
    timing: bool = True,
    repeats: int = 50,
    warmup: int = 5,
    throughput_batch: int = 32,
    activation_bits: int | None = None,
    energy_table: EnergyTable | None = None,
) -> CostProfile:
    """Profile the embedded cost of ``model`` on ``example_inputs``.

    The model is left unchanged: training flags are restored, no hook stays registered, and
    forward passes run without gradients.

    Parameters
    ----------
    model : nn.Module
    example_inputs : Tensor or tuple of Tensor
        Input of shape ``(N, ...)``; counts and memory are for the batch ``N``, latency for its
        first sample.
    timing : bool
        Measure latency and throughput; False leaves those fields None and is fast.
    repeats, warmup : int
        Timed and untimed passes for the latency (throughput uses ``max(1, repeats // 5)``
        timed passes and ``min(warmup, 2)`` warm-up passes).
    throughput_batch : int
        Batch size of the throughput measurement.
    activation_bits : int, optional
        Bits per activation element for the memory figures; default the dtype width.
    energy_table : EnergyTable, optional
        Per-operation energies for the estimate; default ``EnergyTable()``.

    Returns
    -------
    CostProfile
    """
    check_model(model)
    check_inputs(example_inputs)
    timing = check_bool(timing, "timing")
    check_int(repeats, "repeats")
    check_int(warmup, "warmup", 0)
    check_int(throughput_batch, "throughput_batch")
    params = count_params(model)
    ops = count_ops(model, example_inputs)
    model_bytes = model_size_bytes(model)
    stats = _activation_stats(model, example_inputs, activation_bits)
    peak_bytes = -(-stats.peak_bits // 8)
    traffic_bytes = -(-stats.total_bits // 8)
    energy = estimate_energy(ops, model_bytes, traffic_bytes, energy_table)
    latency = throughput = None
    if timing:
        latency = measure_latency(model, example_inputs, repeats=repeats, warmup=warmup)
        throughput = measure_throughput(
            model,
            example_inputs,
            batch_size=throughput_batch,
            repeats=max(1, repeats // 5),
            warmup=min(warmup, 2),
        )
    return CostProfile(
        trainable_params=params.trainable,
        fixed_params=params.fixed,
        macs=ops.macs,
        binary_ops=ops.binary_ops,
        ternary_ops=ops.ternary_ops,
        other_ops=ops.other_ops,
        dense_binary_ops=ops.dense_binary_ops,
        dense_ternary_ops=ops.dense_ternary_ops,
        model_bytes=model_bytes,
        peak_activation_bytes=peak_bytes,
        activation_traffic_bytes=traffic_bytes,
        latency_ms=None if latency is None else latency.median_ms,
        latency_p90_ms=None if latency is None else latency.p90_ms,
        throughput=throughput,
        throughput_batch=throughput_batch if timing else None,
        threads=None if latency is None else latency.threads,
        energy_uj=energy.total_uj,
    )
