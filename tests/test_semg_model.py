"""SEMGNet, kinematics_scores, the two-stream domain adaptation task and the sEMG experiments
(Bao et al., seed #13)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.signal import get_window
from sklearn.metrics import r2_score

from lightvision.adaptation import DomainAdaptationTask, fit_domain_adaptation
from lightvision.adaptation.semg import run_semg_method, semg_split
from lightvision.datasets import make_semg
from lightvision.losses import mmd_loss
from lightvision.models import SEMGNet, kinematics_scores
from lightvision.models.semg import ANGLE_SCALE, predict_angles

TINY = {"widths": (4, 8), "feature_dim": 8}


@pytest.mark.parametrize("representation", ["spectrogram", "raw"])
@pytest.mark.parametrize(("chans", "length"), [(8, 400), (4, 500), (2, 160), (12, 256)])
def test_shapes(representation, chans, length):
    model = SEMGNet(in_channels=chans, window=length, representation=representation).eval()
    x = torch.randn(3, chans, length)
    assert model(x).shape == (3, 1)
    assert model.forward_features(x).shape == (3, 64)
    two = SEMGNet(2, chans, window=length, representation=representation, feature_dim=16)
    assert two.eval()(x).shape == (3, 2) and two.num_classes == two.num_outputs == 2


def test_spectrogram_shape_and_bins():
    model = SEMGNet()  # fs 2 kHz, n_fft 64 -> 31.25 Hz bins; 0..500 Hz = 17 bins
    assert model.n_bins == 17
    assert model.spectrogram(torch.randn(2, 8, 400)).shape == (2, 8, 17, 1 + (400 - 64) // 32)
    assert SEMGNet(fs=1000.0, f_max=250.0).n_bins == 17


@pytest.mark.parametrize("representation", ["spectrogram", "raw"])
def test_gradients_reach_every_parameter(representation):
    model = SEMGNet(representation=representation).train()
    model(torch.randn(6, 8, 400)).square().sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert not missing


def test_spectrogram_matches_numpy():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 200)).astype(np.float64)
    n_fft, hop = 32, 16
    model = SEMGNet(in_channels=3, window=200, n_fft=n_fft, hop=hop, fs=1000.0, f_max=250.0,
                    widths=(4, 8)).double()
    got = model.spectrogram(torch.from_numpy(x)).numpy()
    w = get_window("hann", n_fft)  # periodic Hann, as torch.hann_window
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft, axis=-1)[..., ::hop, :]
    power = np.abs(np.fft.rfft(frames * w, axis=-1)) ** 2 / np.sum(w**2)
    n_bins = int(250.0 * n_fft / 1000.0) + 1  # bins k * 1000 / 32 Hz <= 250 Hz: 0..8
    expected = np.log(power[..., :n_bins] + 1e-6).transpose(0, 1, 3, 2)
    assert got.shape == expected.shape == (2, 3, 9, 1 + (200 - n_fft) // hop)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)


def test_min_window_and_input_errors():
    model = SEMGNet().eval()
    assert model.min_window == 64 + 32 * 3 == model.min_size
    model(torch.randn(1, 8, 160))
    with pytest.raises(ValueError, match="159 samples.*at least 160"):
        model(torch.randn(1, 8, 159))
    with pytest.raises(ValueError, match="window=100 samples is shorter than the 160"):
        SEMGNet(window=100)
    raw = SEMGNet(representation="raw").eval()
    raw(torch.randn(1, 8, raw.min_window))
    with pytest.raises(ValueError, match="at least"):
        raw(torch.randn(1, 8, raw.min_window - 1))
    with pytest.raises(ValueError, match="7 channels.*in_channels=8"):
        model(torch.randn(1, 7, 400))
    with pytest.raises(ValueError, match=r"\(N, C, L\)"):
        model(torch.randn(8, 400))
    x = torch.randn(2, 8, 400)
    x[1, 3, 17] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        model(x)
    with pytest.raises(TypeError, match="floating"):
        model(torch.zeros(1, 8, 400, dtype=torch.int64))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="representation"):
        SEMGNet(representation="wavelet")
    with pytest.raises(ValueError, match="frequency bin"):
        SEMGNet(n_fft=8)  # 0..500 Hz at 250 Hz bins: 3 bins < 4 for three blocks
    with pytest.raises(ValueError, match="dropout"):
        SEMGNet(dropout=1.0)
    with pytest.raises(ValueError, match="widths"):
        SEMGNet(widths=())


def test_kinematics_scores_by_hand():
    rng = np.random.default_rng(1)
    t = rng.uniform(-60, 60, 50)
    p = t + rng.normal(0, 5, 50)
    s = kinematics_scores(t, p)
    assert s["r2"] == pytest.approx(r2_score(t, p))
    assert s["r2"] == pytest.approx(1 - np.sum((t - p) ** 2) / np.sum((t - t.mean()) ** 2))
    assert s["nrmse"] == pytest.approx(np.sqrt(np.mean((t - p) ** 2)) / (t.max() - t.min()))
    assert s["pearson_r"] == pytest.approx(np.corrcoef(t, p)[0, 1])
    assert kinematics_scores(t[:, None], p[:, None]) == s
    perfect = kinematics_scores(t, t)
    assert perfect["r2"] == 1.0 and perfect["nrmse"] == 0.0
    assert perfect["pearson_r"] == pytest.approx(1.0)


def test_kinematics_scores_errors():
    with pytest.raises(ValueError, match="constant"):
        kinematics_scores([1.0, 1.0, 1.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="y_pred is constant"):
        kinematics_scores([1.0, 2.0, 3.0], [2.0, 2.0, 2.0])
    with pytest.raises(ValueError, match="same length"):
        kinematics_scores([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="NaN"):
        kinematics_scores([1.0, np.nan, 3.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="1-d"):
        kinematics_scores(np.ones((3, 2)), np.ones((3, 2)))


def test_predict_angles_scales_back():
    model = SEMGNet(**TINY)
    x = torch.randn(5, 8, 400)
    expected = ANGLE_SCALE * model.eval()(x)[:, 0].detach().double().numpy()
    model.train()
    np.testing.assert_allclose(predict_angles(model, x, batch_size=2), expected, atol=1e-5)
    assert model.training


def _model(seed=0, **kwargs):
    torch.manual_seed(seed)
    return SEMGNet(**{**TINY, "dropout": 0.0, **kwargs})


@pytest.mark.parametrize("lam", [0.0, 0.7])
@pytest.mark.parametrize("streams", ["separate", "joint"])
def test_task_loss_is_mse_plus_mse_plus_lam_mmd(lam, streams):
    g = torch.Generator().manual_seed(0)
    xt, yt = torch.randn(30, 8, 400, generator=g), torch.randn(30, generator=g)
    xs, ys = torch.randn(12, 8, 400, generator=g), torch.randn(12, generator=g)
    task = DomainAdaptationTask(xt, yt, lam=lam, streams=streams, random_state=3)
    twin = DomainAdaptationTask(xt, yt, lam=lam, random_state=3)
    model = _model().train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    out = task(model, xs, ys)
    model.load_state_dict(state)  # BN running statistics as before the call
    idx = twin.sample(12)
    assert len(set(idx.tolist())) == 12  # enough target samples: no replacement
    if streams == "separate":
        h_s, h_t = model.forward_features(xs), model.forward_features(xt[idx])
    else:
        h = model.forward_features(torch.cat([xs, xt[idx]]))
        h_s, h_t = h[:12], h[12:]
    mse_s = torch.mean((model.forward_head(h_s)[:, 0] - ys) ** 2)
    mse_t = torch.mean((model.forward_head(h_t)[:, 0] - yt[idx]) ** 2)
    mmd = mmd_loss(h_s, h_t)
    torch.testing.assert_close(out["task_loss"], mse_s)
    torch.testing.assert_close(out["target_loss"], mse_t)
    torch.testing.assert_close(out["discrepancy"], mmd)
    torch.testing.assert_close(out["loss"], mse_s + mse_t + lam * mmd)
    assert out["output"].shape == (12, 1)
    assert float(mmd.detach()) > 0


def test_task_samples_with_replacement_when_target_is_small():
    task = DomainAdaptationTask(torch.randn(5, 8, 400), torch.randn(5), random_state=0)
    idx = task.sample(64)
    assert idx.shape == (64,) and set(idx.tolist()) <= set(range(5))
    out = task(_model(), torch.randn(64, 8, 400), torch.randn(64, 1))
    assert torch.isfinite(out["loss"])


def test_task_coral_option():
    task = DomainAdaptationTask(torch.randn(20, 8, 400), torch.randn(20), discrepancy="coral",
                                lam=2.0, random_state=0)
    out = task(_model().eval(), torch.randn(8, 8, 400), torch.randn(8))
    torch.testing.assert_close(out["loss"], out["task_loss"] + out["target_loss"]
                               + 2.0 * out["discrepancy"])


def test_task_errors():
    xt, yt = torch.randn(10, 8, 400), torch.randn(10)
    task = DomainAdaptationTask(xt, yt, random_state=0)
    with pytest.raises(ValueError, match=r"\(4, 6, 400\).*\(10, 8, 400\)"):
        task(SEMGNet(in_channels=6, **TINY), torch.randn(4, 6, 400), torch.randn(4))
    with pytest.raises(ValueError, match=r"\(4, 8, 300\).*\(10, 8, 400\)"):
        DomainAdaptationTask(xt, yt)(_model(), torch.randn(4, 8, 300), torch.randn(4))
    with pytest.raises(ValueError, match="target_y has targets"):
        DomainAdaptationTask(xt, torch.randn(10, 2))(_model(), torch.randn(4, 8, 400),
                                                     torch.randn(4))
    bad = xt.clone()
    bad[2, 1, 5] = float("nan")
    with pytest.raises(ValueError, match="target_X contains NaN"):
        DomainAdaptationTask(bad, yt)
    with pytest.raises(ValueError, match="target_y contains NaN"):
        DomainAdaptationTask(xt, torch.full((10,), float("nan")))
    with pytest.raises(ValueError, match="discrepancy"):
        DomainAdaptationTask(xt, yt, discrepancy="wasserstein")
    with pytest.raises(ValueError, match="lam"):
        DomainAdaptationTask(xt, yt, lam=-0.1)
    with pytest.raises(ValueError, match="streams"):
        DomainAdaptationTask(xt, yt, streams="both")
    with pytest.raises(ValueError, match="same length"):
        DomainAdaptationTask(xt, yt[:5])
    with pytest.raises(TypeError, match="forward_features"):
        task(torch.nn.Linear(400, 1), torch.randn(4, 8, 400), torch.randn(4))
    with pytest.raises(TypeError, match="sets the task"):
        fit_domain_adaptation(_model(), xt, yt, xt, yt, loss=torch.nn.functional.mse_loss)


def test_fit_domain_adaptation_is_deterministic_and_records_losses():
    g = torch.Generator().manual_seed(0)
    xs, ys = torch.randn(40, 8, 400, generator=g), torch.randn(40, 1, generator=g)
    xt, yt = torch.randn(10, 8, 400, generator=g), torch.randn(10, 1, generator=g)
    runs = []
    for _ in range(2):
        model = _model(seed=1)
        history = fit_domain_adaptation(model, xs, ys, xt, yt, lam=0.5, epochs=2,
                                        batch_size=16, random_state=4, progress=False)
        runs.append((model, history))
    (a, ha), (b, hb) = runs
    for key in ("loss", "task_loss", "target_loss", "discrepancy"):
        assert ha.last(key) == hb.last(key)
    x = torch.randn(3, 8, 400)
    torch.testing.assert_close(a.eval()(x), b.eval()(x), rtol=0, atol=0)


@pytest.fixture(scope="module")
def recordings():
    return make_semg(3, duration_s=12.0, random_state=5)


def test_semg_split_is_time_ordered_without_overlap(recordings):
    parts = semg_split(recordings, 1, window_ms=200.0, step_ms=50.0, test_s=4.0)
    X, y, _ = recordings.windows(1, window_ms=200.0, step_ms=50.0)
    n_train, n_test = len(parts["train"][0]), len(parts["test"][0])
    # train windows end by 12 - 4 - 0.2 s; test windows start at >= 8 s
    assert n_train == (int((8.0 - 0.2) * 2000) - 400) // 100 + 1
    np.testing.assert_array_equal(parts["train"][0], X[:n_train])
    np.testing.assert_array_equal(parts["test"][1], y[-n_test:])
    assert (len(X) - n_test) * 100 >= 8.0 * 2000  # first test window starts at >= 8 s
    labelled = semg_split(recordings, 1, train_s=2.0, window_ms=200.0, step_ms=50.0, test_s=4.0)
    assert len(labelled["train"][0]) == (4000 - 400) // 100 + 1
    with pytest.raises(ValueError, match="gap"):
        semg_split(recordings, 1, train_s=7.9, test_s=4.0)


@pytest.mark.parametrize("method", ["source_only", "target_only", "fine_tune", "sda",
                                    "sda_coral"])
def test_run_semg_method_runs_and_is_deterministic(recordings, method):
    kwargs = {"target_s": 3.0, "test_s": 3.0, "epochs": 1, "target_epochs": 2,
              "model_kwargs": TINY, "random_state": 2}
    a = run_semg_method(method, recordings, [0, 2], 1, **kwargs)
    b = run_semg_method(method, recordings, [0, 2], 1, **kwargs)
    assert a["target"] == b["target"] and a["source"] == b["source"]
    assert set(a["target"]) == {"r2", "nrmse", "pearson_r"}
    assert isinstance(a["model"], SEMGNet) and a["seconds"] > 0
    assert ("pretrained" in a) == (method == "fine_tune")


def test_run_semg_method_errors(recordings):
    with pytest.raises(ValueError, match="method"):
        run_semg_method("adabn", recordings, 0, 1)
    with pytest.raises(ValueError, match="also a source"):
        run_semg_method("sda", recordings, [0, 1], 1)
    with pytest.raises(ValueError, match="sources"):
        run_semg_method("sda", recordings, [], 1)


def test_empty_batch_and_bad_windows():
    model = SEMGNet(**TINY).eval()
    with torch.no_grad():
        assert model(torch.randn(0, 8, 400)).shape == (0, 1)  # was an MKL FFT error
        assert model.spectrogram(torch.randn(0, 8, 400)).shape == (0, 8, 17, 11)
    for bad, error, match in (
        (np.zeros((0, 8, 400)), ValueError, "X must hold at least one window"),
        (None, TypeError, "X must be an array or tensor of numbers, got NoneType"),
        (np.array([None]), TypeError, "X must hold real numbers"),
        (np.full((1, 8, 400), np.nan), ValueError, "NaN"),
    ):
        with pytest.raises(error, match=match):
            predict_angles(model, bad)
    np.testing.assert_allclose(predict_angles(model, np.zeros((2, 8, 400), np.float32).tolist()),
                               predict_angles(model, torch.zeros(2, 8, 400)))


def test_kinematics_scores_refuse_non_numbers():
    with pytest.raises(TypeError, match="y_true must be an array or tensor of numbers"):
        kinematics_scores(None, [1.0, 2.0])
    with pytest.raises(TypeError, match="y_pred must hold real numbers"):
        kinematics_scores([1.0, 2.0], ["a", "b"])
