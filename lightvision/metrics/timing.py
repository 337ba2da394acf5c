"""Latency and throughput on the current device.

Latency is the median (and 90th percentile) over ``repeats`` timed forward passes at batch 1,
after ``warmup`` untimed passes, under ``torch.inference_mode`` in eval mode, timed with
``time.perf_counter``; the intra-op thread count (``torch.get_num_threads()``) is recorded
because the figure depends on it.

References
----------
.. [1] C. Fabre et al., "Metrics for embedded AI vision systems", Sensors 24(16):5446, 2024.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .._checks import check_int
from .._deprecation import renamed_kwargs
from ._validation import check_inputs, check_model, eval_mode, first_sample

__all__ = ["Latency", "measure_latency", "measure_throughput"]


@dataclass(frozen=True)
class Latency:
    """Batch-1 inference latency.

    Attributes
    ----------
    median_ms : float
        Median over the timed repeats, in milliseconds.
    p90_ms : float
        90th percentile, in milliseconds.
    repeats : int
        Number of timed forward passes.
    threads : int
        ``torch.get_num_threads()`` during the measurement.
    """

    median_ms: float
    p90_ms: float
    repeats: int
    threads: int


def _time_forward(
    model: nn.Module, inputs: tuple[torch.Tensor, ...], repeats: int, warmup: int
) -> np.ndarray:
    """Seconds of ``repeats`` timed passes after ``warmup`` untimed ones, shape ``(repeats,)``."""
    seconds = np.empty(repeats)
    with eval_mode(model), torch.inference_mode():
        for _ in range(warmup):
            model(*inputs)
        for i in range(repeats):
            start = time.perf_counter()
            model(*inputs)
            seconds[i] = time.perf_counter() - start
    return seconds


@renamed_kwargs(example_input="example_inputs")
def measure_latency(
    model: nn.Module,
    example_inputs: torch.Tensor | tuple[torch.Tensor, ...],
    *,
    repeats: int = 50,
    warmup: int = 5,
) -> Latency:
    """Measure batch-1 inference latency.

    Parameters
    ----------
    model : nn.Module
        Run in eval mode; its training flags are restored.
    example_inputs : Tensor or tuple of Tensor
        Shape ``(N, ...)``; only the first sample, ``example_inputs[:1]``, is used.
    repeats : int
        Timed forward passes, >= 1.
    warmup : int
        Untimed forward passes before timing, >= 0.

    Returns
    -------
    Latency
    """
    check_model(model)
    inputs = first_sample(check_inputs(example_inputs))
    check_int(repeats, "repeats")
    check_int(warmup, "warmup", 0)
    ms = 1e3 * _time_forward(model, inputs, repeats, warmup)
    return Latency(
        median_ms=float(np.median(ms)),
        p90_ms=float(np.percentile(ms, 90)),
        repeats=repeats,
        threads=torch.get_num_threads(),
    )


@renamed_kwargs(example_input="example_inputs")
def measure_throughput(
    model: nn.Module,
    example_inputs: torch.Tensor | tuple[torch.Tensor, ...],
    *,
    batch_size: int = 32,
    repeats: int = 10,
    warmup: int = 2,
) -> float:
    """Measure inference throughput.

    Parameters
    ----------
    model : nn.Module
        Run in eval mode; its training flags are restored.
    example_inputs : Tensor or tuple of Tensor
        Shape ``(N, ...)``; the first sample is repeated to ``(batch_size, ...)``.
    batch_size : int
        Samples per forward pass, >= 1.
    repeats : int
        Timed forward passes, >= 1.
    warmup : int
        Untimed forward passes before timing, >= 0.

    Returns
    -------
    float
        Samples per second, ``batch_size / median seconds per pass``.
    """
    check_model(model)
    check_int(batch_size, "batch_size")
    inputs = first_sample(check_inputs(example_inputs), batch_size)
    check_int(repeats, "repeats")
    check_int(warmup, "warmup", 0)
    return float(batch_size / np.median(_time_forward(model, inputs, repeats, warmup)))
