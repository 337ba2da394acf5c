"""A pruned model is an ordinary smaller network: as fast as the same shapes built directly,
and faster than the unpruned one (the structured-pruning papers' "real speed-up").

Measured (2-core AMD EPYC VM, torch 2.13, one thread, batch 32, while other jobs ran):
``small_cnn`` pruned by L1 at ratio 0.5 (widths 32-64-128 -> 16-32-64, MACs x0.258) against
``SmallCNN(widths=(16, 32, 64))``: 11.22 ms against 11.18 ms per batch (x1.003; batch 1:
0.985-1.003 in three runs); speed-up over the unpruned network (34.7 ms) 3.09x for 3.9x fewer
MACs (batch 1: 2.1-2.3x). On a 2-core Intel Xeon VM (2026-12-02) the ratio read x0.97-x1.04
from run to run (x0.97 with the pruned weights loaded into the directly built network, which
this test does), speed-up 3.1-3.4x in a fresh process (1.7-2.1x after the rest of the suite
in the same process, hence the fresh process). Asserted: within 5 % of the dense network,
speed-up >= 2x.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time

import pytest
import torch

import lightvision
from lightvision.compression.pruning import L1Pruner
from lightvision.models import SmallCNN

pytestmark = pytest.mark.repro


def _median_ms(model, x, repeats):
    times = []
    with torch.inference_mode():
        for _ in range(3):
            model(x)
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            times.append(1e3 * (time.perf_counter() - start))
    return statistics.median(times)


def _best_medians(models, x, rounds=7, repeats=10):
    """Per model, the smallest median latency of a batch over ``rounds`` rounds run in turn
    (rounds interleave the models so that load changes hit them alike), one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        best = [float("inf")] * len(models)
        for _ in range(rounds):
            for i, model in enumerate(models):
                best[i] = min(best[i], _median_ms(model, x, repeats))
        return best
    finally:
        torch.set_num_threads(threads)


def _measure() -> dict[str, float]:
    """Latencies (ms per batch of 32, one thread) of the pruned, directly built and unpruned
    networks, and the MACs ratio."""
    torch.manual_seed(0)
    base = lightvision.create_model("small_cnn").eval()
    x = torch.randn(32, 1, 28, 28)
    pruned, report = L1Pruner(ratio=0.5)(base, x[:2])
    dense = SmallCNN(widths=(16, 32, 64)).eval()
    assert [m.out_channels for m in pruned.modules() if isinstance(m, torch.nn.Conv2d)] == \
        [16, 32, 64]
    # the same weights in both, so that only the structure differs (the values can change the
    # speed of a CPU kernel by a few per cent, e.g. through denormals)
    dense.load_state_dict(pruned.state_dict())
    t_pruned, t_dense, t_base = _best_medians([pruned, dense, base], x, rounds=9)
    return {"pruned": t_pruned, "dense": t_dense, "base": t_base, "macs": report.macs_ratio}


def test_pruned_model_runs_as_fast_as_the_same_shapes_built_directly():
    # timed in a fresh process: after other torch work in the same process (the rest of the
    # suite) the small networks ran up to 1.5x slower and the unpruned one faster, a state of
    # the process (allocator, kernel caches), not of the models
    run = subprocess.run([sys.executable, __file__], capture_output=True, text=True,
                         timeout=300, check=True)
    t = json.loads(run.stdout.strip().splitlines()[-1])
    ratio = t["pruned"] / t["dense"]
    print(f"\npruned {t['pruned']:.3f} ms, dense {t['dense']:.3f} ms (x{ratio:.3f}), unpruned "
          f"{t['base']:.3f} ms: speed-up {t['base'] / t['pruned']:.2f}x for MACs x{t['macs']:.3f}")
    assert abs(ratio - 1) <= 0.05
    assert t["base"] / t["pruned"] >= 2.0


if __name__ == "__main__":
    print(json.dumps(_measure()))
