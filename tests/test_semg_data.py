"""Synthetic multi-subject sEMG with wrist angle (seed #13 data): unit tests."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy.signal import welch

from lightvision.datasets import SEMGRecordings, make_semg


@pytest.fixture(scope="module")
def rec() -> SEMGRecordings:
    return make_semg(4, duration_s=30.0, random_state=1)


def _log_rms(X: np.ndarray) -> np.ndarray:
    return np.log(np.sqrt((X.astype(np.float64) ** 2).mean(axis=-1)))


def _dominant_channels(mixing: np.ndarray) -> tuple[int, int]:
    """The most flexor-dominated and the most extensor-dominated channel of one subject."""
    score = (mixing[:, :2].sum(1) - mixing[:, 2:].sum(1)) / mixing.sum(1)
    return int(np.argmax(score)), int(np.argmin(score))


# ---------------------------------------------------------------- generator


def test_shapes_dtypes_and_ranges(rec):
    assert rec.emg.shape == (4, 8, 60000) and rec.emg.dtype == np.float32
    assert rec.angle.shape == (4, 60000) and rec.angle.dtype == np.float32
    assert rec.fs == 2000.0 and isinstance(rec.fs, float)
    assert rec.delay_ms.shape == (4,) and rec.mixing.shape == (4, 8, 4)
    assert np.isfinite(rec.emg).all() and np.isfinite(rec.angle).all()
    assert np.abs(rec.angle).max() <= 60.0 and (rec.angle.max(1) > 30).all()
    assert (rec.angle.min(1) < -30).all()
    assert ((rec.delay_ms >= 30) & (rec.delay_ms <= 100)).all()
    assert (rec.mixing >= 0).all()
    other = make_semg(2, n_channels=12, duration_s=1.0, fs=1000.0, random_state=0)
    assert other.emg.shape == (2, 12, 1000) and other.mixing.shape == (2, 12, 4)


def test_deterministic_and_subjects_independent_of_n_subjects():
    a = make_semg(2, duration_s=2.0, random_state=5)
    b = make_semg(2, duration_s=2.0, random_state=5)
    c = make_semg(3, duration_s=2.0, random_state=5)
    d = make_semg(2, duration_s=2.0, random_state=6)
    np.testing.assert_array_equal(a.emg, b.emg)
    np.testing.assert_array_equal(a.angle, b.angle)
    np.testing.assert_array_equal(a.emg, c.emg[:2])
    np.testing.assert_array_equal(a.angle, c.angle[:2])
    np.testing.assert_array_equal(a.mixing, c.mixing[:2])
    np.testing.assert_array_equal(a.delay_ms, c.delay_ms[:2])
    assert not np.array_equal(a.emg, d.emg) and not np.array_equal(a.angle, d.angle)


def test_trajectory_kinds_are_smooth_and_differ():
    hold = {}
    for kind in ("random", "ramp_hold", "mixed"):
        r = make_semg(2, duration_s=40.0, trajectory=kind, random_state=2)
        speed = np.abs(np.diff(r.angle.astype(np.float64), axis=1)) * r.fs  # deg/s
        assert speed.max() < 1000.0, kind
        hold[kind] = (speed < 1.0).mean()
    assert hold["random"] < 0.05 < hold["mixed"] < hold["ramp_hold"]
    assert hold["ramp_hold"] > 0.3


def test_spectrum_is_in_the_emg_band_with_a_mains_line(rec):
    f, p = welch(rec.emg, fs=rec.fs, nperseg=2000, axis=-1)  # 1 Hz bins
    band = (f >= 20) & (f <= 450)
    pooled = p.sum(axis=1)  # (subjects, freq)
    assert (pooled[:, band].sum(-1) / pooled.sum(-1) > 0.9).all()
    assert np.median(p[..., band].sum(-1) / p.sum(-1)) > 0.9
    i50 = int(np.flatnonzero(f == 50.0)[0])
    near = ((f >= 40) & (f <= 47)) | ((f >= 53) & (f <= 60))
    line = p[..., i50] / np.median(p[..., near], axis=-1)  # (subjects, channels)
    assert (line.max(axis=1) > 3).all()


def test_envelope_follows_the_muscles_the_angle_implies(rec):
    X, y, subject = rec.windows(window_ms=200.0, step_ms=50.0)
    rms = np.exp(_log_rms(X))
    for k in range(4):
        flex, ext = _dominant_channels(rec.mixing[k])
        sel = subject == k
        assert np.corrcoef(rms[sel, flex], y[sel])[0, 1] > 0.5  # flexors fire in flexion
        assert np.corrcoef(rms[sel, ext], y[sel])[0, 1] < -0.5  # extensors in extension


def test_emg_leads_the_angle(rec):
    # the envelope of the flexor channel matches the angle `delay` later better than before
    X, y, subject = rec.windows(window_ms=50.0, step_ms=10.0)
    rms = np.exp(_log_rms(X))
    for k in range(4):
        flex, _ = _dominant_channels(rec.mixing[k])
        env, ang = rms[subject == k, flex], y[subject == k]
        lag = int(round(rec.delay_ms[k] / 10.0))
        lead = np.corrcoef(env[:-lag], ang[lag:])[0, 1]
        trail = np.corrcoef(env[lag:], ang[:-lag])[0, 1]
        assert lead > trail


def test_subjects_really_differ():
    r = make_semg(2, duration_s=40.0, random_state=0)
    assert not np.allclose(r.mixing[0], r.mixing[1], rtol=0.1)
    from sklearn.linear_model import Ridge
    from sklearn.metrics import r2_score

    X0, y0, _ = r.windows(0)
    X1, y1, _ = r.windows(1)
    f0, f1 = _log_rms(X0), _log_rms(X1)
    cut = int(0.7 * len(y0))
    model = Ridge(alpha=1.0).fit(f0[:cut], y0[:cut])
    within = r2_score(y0[cut:], model.predict(f0[cut:]))
    across = r2_score(y1, model.predict(f1))
    assert within > 0.7
    assert across < within - 0.3
    # the law is shared: a model fitted on subject 1 itself does as well as on subject 0
    own = Ridge(alpha=1.0).fit(f1[:cut], y1[:cut])
    assert r2_score(y1[cut:], own.predict(f1[cut:])) > 0.7


def test_import_stays_light():
    code = ("import sys, lightvision.datasets; "
            "print([m for m in ('scipy', 'torch') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


# ---------------------------------------------------------------- windows


@pytest.mark.parametrize(("window_ms", "step_ms"), [(200.0, 50.0), (250.0, 30.0), (0.5, 0.5)])
def test_windows_count_targets_and_slices(window_ms, step_ms):
    r = make_semg(3, n_channels=4, duration_s=1.03, random_state=4)
    X, y, subject = r.windows(window_ms=window_ms, step_ms=step_ms)
    n = r.emg.shape[-1]
    length, step = round(window_ms * r.fs / 1000), round(step_ms * r.fs / 1000)
    count = (n - length) // step + 1
    assert X.shape == (3 * count, 4, length) and X.dtype == np.float32
    assert y.shape == subject.shape == (3 * count,)
    assert y.dtype == np.float32 and subject.dtype == np.int64
    np.testing.assert_array_equal(subject, np.repeat([0, 1, 2], count))
    for i in (0, count - 1, count, 3 * count - 1):
        k, j = divmod(i, count)
        start = j * step
        np.testing.assert_array_equal(X[i], r.emg[k, :, start:start + length])
        assert y[i] == r.angle[k, start + length - 1]
    assert (count - 1) * step + length <= n < count * step + length


def test_windows_subject_selection():
    r = make_semg(3, duration_s=1.0, random_state=4)
    X_all, y_all, _ = r.windows()
    X, y, subject = r.windows([2, 0])
    count = len(y_all) // 3
    assert subject.tolist() == [2] * count + [0] * count
    np.testing.assert_array_equal(X[:count], X_all[2 * count:])
    np.testing.assert_array_equal(y[count:], y_all[:count])
    for one in (1, np.int64(1), (1,), np.array([1])):
        X1, y1, s1 = r.windows(one)
        np.testing.assert_array_equal(y1, y_all[count:2 * count])
        assert (s1 == 1).all()


def test_windows_bad_arguments():
    r = make_semg(2, duration_s=0.5, random_state=0)
    with pytest.raises(ValueError, match="unknown subject index 2"):
        r.windows(2)
    with pytest.raises(ValueError, match="unknown subject index -1"):
        r.windows([0, -1])
    with pytest.raises(TypeError, match="subjects"):
        r.windows("0")
    with pytest.raises(TypeError, match="subjects"):
        r.windows([0.5])
    with pytest.raises(ValueError, match="subjects"):
        r.windows([])
    with pytest.raises(ValueError, match="longer than the recording"):
        r.windows(window_ms=600.0)
    with pytest.raises(ValueError, match="step_ms"):
        r.windows(step_ms=0.0)
    with pytest.raises(ValueError, match="step_ms"):
        r.windows(step_ms=-5.0)
    with pytest.raises(ValueError, match="step_ms"):
        r.windows(step_ms=0.1)  # rounds to 0 samples
    with pytest.raises(ValueError, match="window_ms"):
        r.windows(window_ms=0.0)


# ---------------------------------------------------------------- input checks


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"n_subjects": 0}, ValueError, "n_subjects"),
    ({"n_subjects": 2.0}, TypeError, "n_subjects"),
    ({"n_channels": 1}, ValueError, "n_channels"),
    ({"duration_s": 0.0}, ValueError, "duration_s"),
    ({"duration_s": 0.1}, ValueError, "duration_s"),
    ({"duration_s": float("nan")}, ValueError, "duration_s"),
    ({"fs": 900.0}, ValueError, "fs"),
    ({"fs": "2000"}, TypeError, "fs"),
    ({"trajectory": "sine"}, ValueError, "trajectory"),
    ({"trajectory": None}, ValueError, "trajectory"),
])
def test_make_semg_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_semg(**{"n_subjects": 1, "duration_s": 1.0, **kwargs})


def test_huge_recordings_and_windows_are_refused_up_front():
    with pytest.raises(ValueError, match=r"duration_s, fs\) need about .* GiB, more than"):
        make_semg(2, duration_s=1e9)
    with pytest.raises(ValueError, match="duration_s \\* fs must be a finite number"):
        make_semg(1, duration_s=1e307)
    n = 10**7  # a zero-strided recording: no memory, but its windows would need 8e14 bytes
    rec = SEMGRecordings(emg=np.broadcast_to(np.float32(0), (1, 8, n)),
                         angle=np.broadcast_to(np.float32(0), (1, n)), fs=2000.0,
                         delay_ms=np.zeros(1), mixing=np.zeros((1, 8, 4)))
    with pytest.raises(ValueError, match=r"5000000 samples \(window_ms, step_ms\) need about"):
        rec.windows(window_ms=2.5e6, step_ms=0.5)
