"""A seeded, deterministic generator of multi-subject forearm sEMG with wrist flexion angle.

It is the data generator for seed #13 (Bao et al. [1]_: inter-subject supervised domain
adaptation of a CNN that regresses the wrist flexion-extension angle from multichannel surface
EMG), whose recordings are not available offline. Every subject gets a wrist angle trajectory,
the activations of four forearm muscles that the movement implies and the EMG that an
electrode ring around the forearm picks up from them.

What is modelled
----------------
- Wrist angle (degrees, flexion > 0), per subject, in about [-60, 60]:

  - ``"random"``: ``60 tanh(0.8 s(t))`` with ``s`` a standardised sum of 6 sinusoids of random
    frequency (0.1..1 Hz, amplitude ~ 1/f) and phase;
  - ``"ramp_hold"``: holds of 0.5..2 s at targets ``U(-60, 60)`` joined by minimum-jerk ramps of
    0.4..1.2 s;
  - ``"mixed"``: blocks of 8..12 s alternating between the two (1 s minimum-jerk cross-fades).

- Four muscles, in this order in ``mixing``: flexor 1, flexor 2 (volar side), extensor 1,
  extensor 2 (dorsal side). [INTERP] The activation law is shared by all subjects: a drive
  ``tau = a theta / 60 + b omega / (100 deg/s)`` (``omega`` the angular velocity; ``(a, b)`` =
  (1, 0.2) and (0.8, 0.5) for muscles 1 and 2 of each group, so the two differ) activates the
  flexors for ``tau > 0`` and the extensors for ``tau < 0``:
  ``act = 0.05 + 0.95 tanh(max(+-tau, 0))`` (0.05 is the co-contraction level), low-passed at
  4 Hz (2nd-order Butterworth, zero phase), in [0, 1].
- Electromechanical delay: EMG precedes movement. The activation at time ``t`` is computed from
  the kinematics at ``t + delay``, with a per-subject ``delay`` of 30..100 ms (``delay_ms``,
  rounded to whole samples).
- EMG sources: each muscle's activation multiplies its own unit-variance Gaussian noise
  band-limited to 20..450 Hz (4th-order Butterworth band-pass, zero phase) at ``fs``.
- Electrodes: ``n_channels`` electrodes evenly around the forearm at angles
  ``2 pi c / n_channels + shift`` with a per-subject rotation ``shift ~ U(-pi, pi) / n_channels``
  (up to half the spacing). Muscle ``m`` sits at a circumferential position (nominally
  ``pi/2 -+ 0.4`` for the flexors and ``3 pi/2 -+ 0.4`` for the extensors, +-0.2 rad per
  subject) with a spread ``w ~ U(0.35, 0.65)`` rad; the mixing weight is
  ``gain_c strength_m exp(-d**2 / (2 w**2))`` with ``d`` the angular distance (crosstalk from
  neighbouring muscles), per-channel gains and per-muscle strengths lognormal (sigma 0.3).
- Interference: 50 Hz mains hum of amplitude ``U(0.005, 0.05)`` and random phase per channel,
  white sensor noise of standard deviation ``U(0.005, 0.02)`` per subject.

[INTERP] Domain shift between subjects comes from the electrode shift, the muscle positions and
spreads, the gains, strengths and the delay; the angle -> activation law is shared, so a model
can transfer between subjects once it has adapted to the mixing.

What is not modelled
--------------------
Motor-unit action potentials and recruitment (the EMG is amplitude-modulated noise), the
dependence of the EMG spectrum on force, fatigue and muscle length, volume-conductor filtering,
wrist dynamics (inertia, gravity, torque), other degrees of freedom (radial/ulnar deviation,
pronation, grip), mains harmonics, DC offsets, electrode-skin impedance changes, motion
artefacts and sweat, and any session-to-session shift within a subject. Units of the EMG are
arbitrary (about mV: a fully active muscle right under an electrode gives an RMS near 1).

Randomness: ``random_state`` seeds a root :class:`numpy.random.SeedSequence`; subject ``k``
draws its anatomy and electrode placement, its trajectory and its noise from children keyed by
``(k, 0)``, ``(k, 1)`` and ``(k, 2)``, so subject ``k`` does not depend on ``n_subjects``.

>>> from lightvision.datasets import make_semg
>>> rec = make_semg(2, duration_s=2.0, random_state=0)
>>> rec.emg.shape, rec.emg.dtype, rec.angle.shape, rec.fs
((2, 8, 4000), dtype('float32'), (2, 4000), 2000.0)
>>> X, y, subject = rec.windows(window_ms=200.0, step_ms=50.0)
>>> X.shape, y.shape, subject[[0, -1]].tolist()
((74, 8, 400), (74,), [0, 1])

References
----------
.. [1] T. Bao, S. A. R. Zaidi, S. Xie, P. Yang, Z.-Q. Zhang, "Inter-Subject Domain Adaptation
   for CNN-Based Wrist Kinematics Estimation Using sEMG", IEEE Transactions on Neural Systems
   and Rehabilitation Engineering 29:1068-1078, 2021 (seed #13).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._checks import check_int, check_memory, check_real
from .._rng import default_rng

__all__ = ["SEMGRecordings", "make_semg"]

_TRAJECTORIES = ("random", "ramp_hold", "mixed")
_MAX_ANGLE = 60.0  # degrees
_DRIVE = np.array([[1.0, 0.2], [0.8, 0.5]])  # (angle, velocity) weights of muscles 1 and 2
_CO = 0.05  # co-contraction level
_MUSCLE_POS = np.array([0.5 * np.pi - 0.4, 0.5 * np.pi + 0.4,
                        1.5 * np.pi - 0.4, 1.5 * np.pi + 0.4])  # rad around the forearm
_MIN_WINDOW_S = 0.2
_WORK_BYTES_PER_SIGNAL_SAMPLE = 64  # [INTERP] estimate: float64 arrays of one subject


@dataclass(frozen=True, eq=False)
class SEMGRecordings:
    """Synthetic sEMG recordings from :func:`make_semg` (row ``k`` of each array: subject ``k``).

    Attributes
    ----------
    emg : float32 (n_subjects, n_channels, n_samples), arbitrary units (about mV).
    angle : float32 (n_subjects, n_samples), wrist angle in degrees (flexion > 0).
    fs : sampling rate in Hz.
    delay_ms : float64 (n_subjects,), electromechanical delay (EMG leads the angle) in ms.
    mixing : float64 (n_subjects, n_channels, 4), muscle -> channel weights (flexor 1,
        flexor 2, extensor 1, extensor 2).

    Not comparable with ``==`` (the arrays would make it ambiguous).
    """

    emg: np.ndarray
    angle: np.ndarray
    fs: float
    delay_ms: np.ndarray
    mixing: np.ndarray

    def __post_init__(self) -> None:
        if self.emg.ndim != 3:
            raise ValueError(f"emg must be 3-d (n_subjects, n_channels, n_samples), "
                             f"got {self.emg.ndim}-d")
        s, c, n = self.emg.shape
        for name, shape in (("angle", (s, n)), ("delay_ms", (s,)), ("mixing", (s, c, 4))):
            if getattr(self, name).shape != shape:
                raise ValueError(f"{name} must have shape {shape}, got {getattr(self, name).shape}")

    def windows(
        self,
        subjects: int | Sequence[int] | None = None,
        *,
        window_ms: float = 200.0,
        step_ms: float = 50.0,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sliding windows of the EMG with the angle at each window's last sample.

        Parameters
        ----------
        subjects : a subject index, a sequence of them (in the order wanted), or None (all).
        window_ms, step_ms : window length and hop in ms, rounded to whole samples
            ``L = round(window_ms * fs / 1000)`` and ``S = round(step_ms * fs / 1000)``.

        Returns
        -------
        X : float32 (n_windows, n_channels, L), the raw EMG of each window (a copy).
        y : float32 (n_windows,), the angle in degrees at the window's last sample (a causal,
            real-time target).
        subject : int64 (n_windows,), the subject of each window.

        Each subject gives ``(n_samples - L) // S + 1`` windows starting at samples 0, S, 2S,
        ... in time order; subjects follow one another in the order of ``subjects``.
        """
        n_subjects, _, n = self.emg.shape
        if subjects is None:
            index = np.arange(n_subjects)
        else:
            items = [subjects] if isinstance(subjects, int | np.integer) else subjects
            if isinstance(items, str) or not isinstance(items, Sequence | np.ndarray):
                raise TypeError(f"subjects must be an int, a sequence of ints or None, "
                                f"got {type(subjects).__name__}")
            index = np.asarray(items)
            if index.ndim != 1 or index.size == 0:
                raise ValueError(f"subjects must be a non-empty 1-d sequence, got {subjects!r}")
            if index.dtype == bool or not np.issubdtype(index.dtype, np.integer):
                raise TypeError(f"subjects must hold ints, got {index.dtype}")
            bad = index[(index < 0) | (index >= n_subjects)]
            if bad.size:
                raise ValueError(f"subjects: unknown subject index {int(bad[0])} "
                                 f"(there are {n_subjects} subjects, 0..{n_subjects - 1})")
        length = round(check_real(window_ms, "window_ms") * self.fs / 1000.0)
        step = round(check_real(step_ms, "step_ms") * self.fs / 1000.0)
        if length < 1:
            raise ValueError(f"window_ms={window_ms} is shorter than one sample")
        if step < 1:
            raise ValueError(f"step_ms={step_ms} rounds to a non-positive step of {step} samples")
        if length > n:
            raise ValueError(f"window_ms={window_ms} ({length} samples) is longer than the "
                             f"recording ({n} samples)")
        count = (n - length) // step + 1
        check_memory(4 * len(index) * count * self.emg.shape[1] * length,
                     f"{len(index) * count:,} windows of {length} samples (window_ms, step_ms)")
        view = np.lib.stride_tricks.sliding_window_view(self.emg[index], length, axis=-1)
        X = view[:, :, : count * step : step].transpose(0, 2, 1, 3)  # (s, count, C, L)
        X = np.ascontiguousarray(X.reshape(-1, *X.shape[2:]), dtype=np.float32)
        last = length - 1
        y = self.angle[index][:, last : last + count * step : step].reshape(-1)
        subject = np.repeat(index.astype(np.int64), count)
        return X, y.astype(np.float32), subject


def _child(root: np.random.SeedSequence, *key: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, *key))


def _min_jerk(u: np.ndarray) -> np.ndarray:
    """Minimum-jerk profile 0 -> 1 for ``u`` in [0, 1] (clipped outside)."""
    u = np.clip(u, 0.0, 1.0)
    return u**3 * (10.0 - 15.0 * u + 6.0 * u**2)


def _sines(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    freq = rng.uniform(0.1, 1.0, 6)
    amp = 1.0 / freq
    phase = rng.uniform(0.0, 2 * np.pi, 6)
    s = amp @ np.sin(2 * np.pi * freq[:, None] * t[None, :] + phase[:, None])
    return _MAX_ANGLE * np.tanh(0.8 * s / np.sqrt(0.5 * np.sum(amp**2)))


def _ramp_hold(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    n_seg = int(np.ceil(t[-1] / 0.9)) + 2  # holds + ramps last >= 0.9 s
    hold, ramp = rng.uniform(0.5, 2.0, n_seg), rng.uniform(0.4, 1.2, n_seg)
    target = rng.uniform(-_MAX_ANGLE, _MAX_ANGLE, n_seg + 1)
    start = -rng.uniform(0.0, hold[0])
    knots = start + np.concatenate([[0.0], np.cumsum(np.column_stack([hold, ramp]).ravel())])
    values = np.repeat(target, 2)[: len(knots)]  # hold at target i, then ramp to target i + 1
    i = np.searchsorted(knots, t, side="right") - 1
    u = (t - knots[i]) / (knots[i + 1] - knots[i])
    return values[i] + (values[i + 1] - values[i]) * _min_jerk(u)


def _trajectory(rng: np.random.Generator, kind: str, t: np.ndarray) -> np.ndarray:
    if kind == "random":
        return _sines(rng, t)
    if kind == "ramp_hold":
        return _ramp_hold(rng, t)
    smooth, steps = _sines(rng, t), _ramp_hold(rng, t)
    n_blocks = int(np.ceil(t[-1] / 8.0)) + 1
    bounds = np.cumsum(rng.uniform(8.0, 12.0, n_blocks))  # block b ends at bounds[b]
    first = int(rng.integers(2))  # 1: start with ramp-and-hold
    b = np.searchsorted(bounds, t, side="right")
    state = (b + first) % 2
    since = t - np.concatenate([[0.0], bounds])[b]
    weight = (1 - state) + (2 * state - 1) * _min_jerk(since / 1.0)  # cross-fade from 1 - state
    weight = np.where(b == 0, first, weight)
    return (1.0 - weight) * smooth + weight * steps


def _subject(
    root: np.random.SeedSequence, k: int, n: int, n_channels: int, fs: float, kind: str,
    filters: tuple[np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    from scipy.signal import sosfiltfilt

    band, smooth = filters
    # ---- anatomy and electrode placement
    rng = np.random.default_rng(_child(root, k, 0))
    delay = int(round(rng.uniform(0.030, 0.100) * fs))
    shift = rng.uniform(-np.pi, np.pi) / n_channels
    position = _MUSCLE_POS + rng.uniform(-0.2, 0.2, 4)
    spread = rng.uniform(0.35, 0.65, 4)
    gain = rng.lognormal(0.0, 0.3, n_channels)
    strength = rng.lognormal(0.0, 0.3, 4)
    hum_amp = rng.uniform(0.005, 0.05, n_channels)
    hum_phase = rng.uniform(0.0, 2 * np.pi, n_channels)
    noise_sd = rng.uniform(0.005, 0.02)
    electrode = 2 * np.pi * np.arange(n_channels) / n_channels + shift
    d = np.angle(np.exp(1j * (electrode[:, None] - position[None, :])))  # wrapped, (C, 4)
    mixing = gain[:, None] * strength[None, :] * np.exp(-(d**2) / (2 * spread**2))
    # ---- kinematics (with the delay's worth of future) and activations
    pad = int(np.ceil(0.1 * fs)) + 1
    t = np.arange(n + pad) / fs
    theta = _trajectory(np.random.default_rng(_child(root, k, 1)), kind, t)
    omega = np.gradient(theta, 1.0 / fs)
    drive = _DRIVE @ np.stack([theta / _MAX_ANGLE, omega / 100.0])  # (2, n + pad)
    drive = np.concatenate([drive, -drive])[:, delay : delay + n]  # EMG leads by `delay`
    act = _CO + (1.0 - _CO) * np.tanh(np.maximum(drive, 0.0))
    act = np.clip(sosfiltfilt(smooth, act, axis=-1), 0.0, 1.0)
    # ---- EMG
    rng = np.random.default_rng(_child(root, k, 2))
    source = sosfiltfilt(band, rng.standard_normal((4, n)), axis=-1)
    source *= act / source.std(axis=-1, keepdims=True)
    emg = mixing @ source
    emg += hum_amp[:, None] * np.sin(2 * np.pi * 50.0 * t[None, :n] + hum_phase[:, None])
    emg += rng.normal(0.0, noise_sd, emg.shape)
    return emg.astype(np.float32), theta[:n].astype(np.float32), 1000.0 * delay / fs, mixing


def make_semg(
    n_subjects: int = 8,
    *,
    n_channels: int = 8,
    duration_s: float = 60.0,
    fs: float = 2000.0,
    trajectory: str = "mixed",
    random_state: Any = None,
) -> SEMGRecordings:
    """Generate forearm sEMG and wrist flexion-extension angle for ``n_subjects`` subjects.

    See the module docstring for what is modelled and what is not.

    Parameters
    ----------
    n_subjects : number of subjects (>= 1).
    n_channels : electrodes around the forearm (>= 2).
    duration_s : recording length in s per subject, at least 0.2 s (one 200 ms window).
    fs : sampling rate in Hz, > 900 so that the 450 Hz band fits below Nyquist.
    trajectory : ``"random"`` (smooth sums of sinusoids), ``"ramp_hold"`` or ``"mixed"``.
    random_state : None, int, SeedSequence or Generator: ``numpy.random.default_rng``
        draws the root seed from it (the same int gives identical data; None, fresh entropy).

    Returns
    -------
    SEMGRecordings
        ``n_samples = round(duration_s * fs)`` samples per subject.
    """
    from scipy.signal import butter

    check_int(n_subjects, "n_subjects")
    check_int(n_channels, "n_channels", minimum=2)
    fs = check_real(fs, "fs")
    if fs <= 900.0:
        raise ValueError(f"fs must be > 900 Hz (the 20-450 Hz band must fit below Nyquist), "
                         f"got {fs}")
    duration_s = check_real(duration_s, "duration_s")
    if not math.isfinite(duration_s * fs):
        raise ValueError(f"duration_s * fs must be a finite number of samples, got {duration_s} "
                         f"s x {fs} Hz")
    n = round(duration_s * fs)
    if n < round(_MIN_WINDOW_S * fs):
        raise ValueError(f"duration_s must be >= {_MIN_WINDOW_S} s (one 200 ms window), "
                         f"got {duration_s}")
    if not isinstance(trajectory, str) or trajectory not in _TRAJECTORIES:
        raise ValueError(f"trajectory must be one of {_TRAJECTORIES}, got {trajectory!r}")
    outputs = 4 * n_subjects * (n_channels + 1) * n  # float32 EMG and angle
    work = _WORK_BYTES_PER_SIGNAL_SAMPLE * (n_channels + 5) * n  # channels, 4 muscles, angle
    check_memory(outputs + work,
                 f"{n_subjects} subjects x {n_channels} channels x {n:,} samples "
                 "(n_subjects, n_channels, duration_s, fs)")
    rng = default_rng(random_state)
    root = np.random.SeedSequence(int(rng.integers(2**63)))
    filters = (butter(4, [20.0, 450.0], btype="bandpass", fs=fs, output="sos"),
               butter(2, 4.0, fs=fs, output="sos"))
    parts = [_subject(root, k, n, n_channels, fs, trajectory, filters)
             for k in range(n_subjects)]
    emg, angle, delay, mixing = (np.stack(p) for p in zip(*parts, strict=True))
    return SEMGRecordings(emg=emg, angle=angle, fs=fs, delay_ms=delay.astype(np.float64),
                          mixing=mixing)
