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


# ---------------------------------------------------------------- huge and mixed features


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bandwidth", [None, 3.0])
def test_mmd_is_scale_safe(dtype, bandwidth):
    """Features are divided by a power of two before the squared distances, which is exact:
    with the default bandwidth (scale-invariant) features times 2**100 (about 1e30, whose
    squares overflow float32) give exactly the MMD of the features; a fixed bandwidth scaled
    by 2**200 gives it too; tiny features the same."""
    s, t = _randn(20, 4, seed=12, dtype=dtype), _randn(15, 4, seed=13, dtype=dtype) + 0.3
    k = 2.0**100
    expected = mmd_loss(s, t, bandwidth=bandwidth)
    scaled_bandwidth = None if bandwidth is None else bandwidth * k * k
    for scale in (k, 1.0 / k):
        width = None if bandwidth is None else bandwidth * scale * scale
        got = mmd_loss(s * scale, t * scale, bandwidth=width)
        assert torch.isfinite(got) and torch.equal(got, expected), (scale, got, expected)
    assert torch.isfinite(mmd_loss(s * 1e30, t * 1e30, bandwidth=scaled_bandwidth))


def test_mmd_of_far_apart_huge_features_with_a_small_bandwidth():
    # every cross-kernel is exp(-1e60) = 0 and every self-kernel 1: MMD = 1/n_s + 1/n_t
    s, t = _randn(4, 3, seed=14, dtype=torch.float32), _randn(5, 3, seed=15, dtype=torch.float32)
    got = mmd_loss(s * 1e30, t * 1e30 + 1e31, bandwidth=1.0, kernel_num=1)
    assert float(got) == pytest.approx(1 / 4 + 1 / 5, rel=1e-6)


def test_coral_is_scale_safe_or_names_the_overflow():
    s, t = _randn(20, 4, seed=16), _randn(15, 4, seed=17) * 2.0
    k = 2.0**100
    expected = coral_loss(s, t)
    assert torch.equal(coral_loss(s * k, t * k), expected * k**4)  # exact: powers of two
    assert torch.equal(coral_loss(s.float() / k, t.float() / k), torch.tensor(0.0))  # 1e-121
    with pytest.raises(ValueError, match="coral_loss of these features overflows torch.float32"):
        coral_loss(s.float() * 1e30, t.float() * 1e30)  # the loss itself is about 1e120
    with pytest.raises(ValueError, match="overflows torch.float64 .*: scale them down$"):
        coral_loss(s * 1e200, t * 1e200)


def test_mixed_precision_is_promoted_and_devices_must_match():
    s, t = _randn(6, 3, seed=18), _randn(6, 3, seed=19)
    for loss in (mmd_loss, coral_loss):
        assert torch.equal(loss(s.float(), t), loss(s.float().double(), t))
        with pytest.raises(ValueError, match="same device"):
            loss(s, t.to("meta"))


def test_mmd_kernel_overflow_is_named():
    x = torch.zeros(3, 2)
    with pytest.raises(ValueError, match=r"kernel_mul \*\* \(kernel_num // 2\) overflows"):
        mmd_loss(x, x + 1, kernel_num=3000)
    assert torch.isfinite(mmd_loss(x, x + 1, kernel_mul=1e300, kernel_num=3))


# ---------------------------------------------------------------- adaptation: bad input


def test_adaptation_names_bad_arguments():
    from lightvision.adaptation import DomainAdaptationTask, fit_domain_adaptation
    from lightvision.adaptation.semg import run_semg_method, semg_split
    from lightvision.datasets import make_semg
    from lightvision.models import SEMGNet

    rec = make_semg(2, duration_s=4.0, random_state=0)
    for kwargs, error, match in [
        ({"recordings": None}, TypeError, "recordings must be a lightvision.datasets"),
        ({"recordings": rec.emg}, TypeError, "recordings must be .* got ndarray"),
        ({"sources": "0"}, TypeError, "sources must be a subject index or a sequence"),
        ({"sources": None}, TypeError, "sources"),
        ({"sources": [0.0]}, ValueError, "sources"),
        ({"sources": [-1]}, ValueError, r"sources\[0\] must be >= 0"),
        ({"target": 5}, ValueError, r"target must be a subject index in \[0, 2\)"),
        ({"sources": [0, 2]}, ValueError, r"sources\[1\] must be a subject index"),
        ({"target": None}, TypeError, "target must be an int"),
        ({"target_s": None}, TypeError, "target_s"),
        ({"fine_tune_lr": -1.0}, ValueError, "fine_tune_lr"),
        ({"model_kwargs": 3}, TypeError, "model_kwargs must be a mapping"),
        ({"streams": "both"}, ValueError, "streams must be"),
        ({"lam": -1.0}, ValueError, "lam"),
    ]:
        args = {"method": "sda", "recordings": rec, "sources": 0, "target": 1, "epochs": 1}
        with pytest.raises(error, match=match):
            run_semg_method(**{**args, **kwargs})
    with pytest.raises(TypeError, match="recordings"):
        semg_split(None, 0)
    with pytest.raises(TypeError, match="subject must be an int"):
        semg_split(rec, True)
    with pytest.raises(ValueError, match=r"subject must be a subject index in \[0, 2\), got 2"):
        semg_split(rec, 2)
    model = SEMGNet(in_channels=8, window=400)
    X, y = torch.randn(4, 8, 400), torch.randn(4)
    with pytest.raises(TypeError, match="source_X must be a numpy array"):
        fit_domain_adaptation(model, None, y, X, y)
    with pytest.raises(TypeError, match="source_y must hold real targets"):
        fit_domain_adaptation(model, X, torch.zeros(4, dtype=torch.long), X, y)
    with pytest.raises(ValueError, match="target_X contains NaN"):
        fit_domain_adaptation(model, X, y, torch.full_like(X, float("nan")), y)
    task = DomainAdaptationTask(X, y)
    with pytest.raises(TypeError, match="n must be an int"):
        task.sample(2.5)
    with pytest.raises(ValueError, match="labelled source batches"):
        task(model, X, None)


def test_domain_adaptation_names_the_argument_of_mismatched_or_huge_data():
    from lightvision.adaptation import fit_domain_adaptation
    from lightvision.models import SEMGNet

    def model():
        torch.manual_seed(0)
        return SEMGNet(in_channels=2, window=200, widths=(4, 8), feature_dim=8)

    X, y = torch.randn(8, 2, 200), torch.randn(8, 1)
    Xt, yt = torch.randn(8, 2, 200), torch.randn(8, 1)
    fit_args = {"epochs": 1, "batch_size": 4, "progress": False}
    for args, match in [
        ((torch.randn(8, 3, 200), y, Xt, yt),
         r"^source_X of shape \(8, 3, 200\) and target_X of shape \(8, 2, 200\) differ"),
        ((X[:, 0], y, Xt, yt), r"^source_X of shape \(8, 200\) and target_X"),
        ((X, torch.randn(8, 2), Xt, yt),
         r"^source_y has targets of shape \(2,\) per sample, but the model outputs \(1,\)"),
        ((X, y, Xt, torch.randn(8, 2)), r"^target_y has targets of shape \(2,\) per"),
        ((X, torch.full((8, 1), 1e30), Xt, yt),
         r"^source_y holds values up to 1e\+30, whose squared errors overflow the model's "
         r"torch.float32 \(\|source_y\| must stay below 1\.845e\+19\)"),
        ((X, y, Xt, torch.full((8, 1), -1e20)), r"^target_y holds values up to 1e\+20"),
    ]:
        with pytest.raises(ValueError, match=match):
            fit_domain_adaptation(model(), *args, **fit_args)
    a, b = model(), model()  # float64 target inputs are cast like fit casts the source ones
    fit_domain_adaptation(a, X, y, Xt.double(), yt.double(), **fit_args)
    fit_domain_adaptation(b, X, y, Xt, yt, **fit_args)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(),
                                                 b.state_dict().values(), strict=True))
