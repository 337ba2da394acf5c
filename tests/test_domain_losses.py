"""Domain-discrepancy losses (MMD, Deep CORAL) for seed #13: unit tests."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from lightvision.losses import coral_loss, mmd_loss
from lightvision.registry import LOSSES


def _randn(*shape: int, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def test_registered():
    assert LOSSES.get("mmd").obj is mmd_loss
    assert LOSSES.get("coral").obj is coral_loss
    assert {"domain_adaptation", "discrepancy"} <= LOSSES.get("mmd").tags


# ---------------------------------------------------------------- MMD


def test_mmd_is_zero_for_identical_and_permuted_sets():
    x = _randn(50, 6)
    assert float(mmd_loss(x, x)) < 1e-12
    assert float(mmd_loss(x, x[torch.randperm(50)])) < 1e-12
    x32 = x.float()
    assert float(mmd_loss(x32, x32.flip(0))) < 1e-5
    assert mmd_loss(x32, x32).dtype == torch.float32 and mmd_loss(x32, x32).ndim == 0


@pytest.mark.parametrize("bandwidth", [None, 4.0])
def test_mmd_grows_with_a_mean_shift(bandwidth):
    x, y = _randn(80, 4, seed=1), _randn(60, 4, seed=2)
    shifts = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0)
    values = [float(mmd_loss(x, x + s, bandwidth=bandwidth)) for s in shifts]
    assert values[0] > 0
    assert all(a < b for a, b in itertools.pairwise(values)), values
    # two samples of one distribution differ far less than after a shift of one sd
    same = float(mmd_loss(x, y, bandwidth=bandwidth))
    assert 0 < same < 0.5 * float(mmd_loss(x, y + 1.0, bandwidth=bandwidth))


def _brute_force(s: np.ndarray, t: np.ndarray, mul: float, num: int, bandwidth) -> float:
    z = np.concatenate([s, t])
    n, n_s = len(z), len(s)
    d2 = [[float(np.sum((z[i] - z[j]) ** 2)) for j in range(n)] for i in range(n)]
    if bandwidth is None:
        bandwidth = sum(d2[i][j] for i in range(n) for j in range(n) if i != j) / (n * n - n)
    widths = [bandwidth * mul ** (i - num // 2) for i in range(num)]

    def k(i, j):
        return sum(math.exp(-d2[i][j] / w) for w in widths)

    ss = sum(k(i, j) for i in range(n_s) for j in range(n_s)) / n_s**2
    tt = sum(k(i, j) for i in range(n_s, n) for j in range(n_s, n)) / (n - n_s) ** 2
    st = sum(k(i, j) for i in range(n_s) for j in range(n_s, n)) / (n_s * (n - n_s))
    return ss + tt - 2 * st


@pytest.mark.parametrize(("mul", "num", "bandwidth"),
                         [(2.0, 5, None), (1.5, 3, 0.7), (2.0, 1, None), (3.0, 4, 2.0)])
def test_mmd_matches_a_brute_force_double_loop(mul, num, bandwidth):
    s, t = _randn(3, 2, seed=3), _randn(4, 2, seed=4) + 0.5
    expected = _brute_force(s.numpy(), t.numpy(), mul, num, bandwidth)
    got = float(mmd_loss(s, t, kernel_mul=mul, kernel_num=num, bandwidth=bandwidth))
    assert got == pytest.approx(expected, rel=1e-10)


def test_mmd_single_rows_and_constant_sets():
    assert float(mmd_loss(torch.zeros(1, 3), torch.ones(1, 3))) > 0
    assert float(mmd_loss(torch.zeros(4, 3), torch.zeros(2, 3))) == 0.0  # zero bandwidth guard


@pytest.mark.parametrize("loss", [mmd_loss, coral_loss])
def test_gradient_reaches_both_inputs(loss):
    s = _randn(16, 5, seed=5, dtype=torch.float32).requires_grad_()
    t = (_randn(12, 5, seed=6, dtype=torch.float32) * 1.5 + 0.5).requires_grad_()
    loss(s, t).backward()
    for x in (s, t):
        assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_mmd_as_a_training_signal_aligns_the_sets():
    s = _randn(64, 3, seed=7, dtype=torch.float32)
    t = (_randn(64, 3, seed=8, dtype=torch.float32) + 2.0).requires_grad_()
    opt = torch.optim.SGD([t], lr=5.0)
    start = float(mmd_loss(s, t.detach()))
    for _ in range(50):
        opt.zero_grad()
        mmd_loss(s, t).backward()
        opt.step()
    assert float(mmd_loss(s, t.detach())) < 0.1 * start
    assert float(t.detach().mean(0).abs().max()) < 1.0


# ---------------------------------------------------------------- CORAL


def test_coral_is_zero_for_equal_covariances():
    x = _randn(40, 5, seed=9)
    assert float(coral_loss(x, x + 3.0)) < 1e-20
    assert float(coral_loss(x, x.flip(0))) < 1e-20
    assert float(coral_loss(x, -x)) < 1e-20


def test_coral_matches_numpy():
    s, t = _randn(30, 4, seed=10), _randn(20, 4, seed=11) * torch.tensor([1.0, 2.0, 0.5, 1.0])
    cs, ct = np.cov(s.numpy(), rowvar=False), np.cov(t.numpy(), rowvar=False)
    expected = np.sum((cs - ct) ** 2) / (4 * 4**2)
    assert float(coral_loss(s, t)) == pytest.approx(expected, rel=1e-10)
    assert float(coral_loss(s[:2], t[:2])) > 0  # n = 2 is enough


# ---------------------------------------------------------------- input checks


@pytest.mark.parametrize("loss", [mmd_loss, coral_loss])
def test_bad_inputs(loss):
    x = torch.randn(5, 3)
    with pytest.raises(TypeError, match="source"):
        loss(x.numpy(), x)
    with pytest.raises(TypeError, match="target"):
        loss(x, torch.ones(5, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="source must be 2-d"):
        loss(torch.randn(5), x)
    with pytest.raises(ValueError, match="target must be 2-d"):
        loss(x, torch.randn(5, 3, 1))
    with pytest.raises(ValueError, match="same number of features"):
        loss(x, torch.randn(5, 4))
    with pytest.raises(ValueError, match="source contains NaN"):
        loss(torch.full((5, 3), float("nan")), x)
    with pytest.raises(ValueError, match="target contains NaN or infinite"):
        loss(x, torch.full((5, 3), float("inf")))
    with pytest.raises(ValueError, match="target must have at least"):
        loss(x, torch.randn(0, 3))
    with pytest.raises(ValueError, match="source must have at least"):
        loss(torch.randn(5, 0), torch.randn(5, 0))


def test_coral_needs_two_rows():
    with pytest.raises(ValueError, match="source must have at least 2 row"):
        coral_loss(torch.randn(1, 3), torch.randn(4, 3))


def test_mmd_bad_options():
    x = torch.randn(4, 2)
    with pytest.raises(ValueError, match="kernel_num"):
        mmd_loss(x, x, kernel_num=0)
    with pytest.raises(TypeError, match="kernel_num"):
        mmd_loss(x, x, kernel_num=2.0)
    with pytest.raises(ValueError, match="kernel_mul"):
        mmd_loss(x, x, kernel_mul=0.0)
    with pytest.raises(ValueError, match="bandwidth"):
        mmd_loss(x, x, bandwidth=-1.0)
