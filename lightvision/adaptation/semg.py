"""Inter-subject wrist-kinematics experiments of Bao et al. (seed #13) on sEMG recordings.

:func:`semg_split` cuts every subject's recording into time-ordered parts without overlap, and
:func:`run_semg_method` trains one method for one scenario (one or several source subjects ->
one target subject) and scores it on held-out later parts of the target and of the sources:

- ``"source_only"``: trained on the sources only;
- ``"target_only"``: trained on the few labelled target windows only;
- ``"fine_tune"``: the source-only model, then every layer fine-tuned on the target windows;
- ``"sda"`` / ``"sda_coral"``: supervised two-stream domain adaptation from scratch on the
  sources and the few target windows (:func:`lightvision.adaptation.fit_domain_adaptation`,
  MMD or CORAL).

Every method trains on ``angle / ANGLE_SCALE`` (MSE) and is scored in degrees
(:func:`lightvision.models.semg.predict_angles`, :func:`lightvision.models.kinematics_scores`).

>>> from lightvision.datasets import make_semg
>>> from lightvision.adaptation.semg import run_semg_method
>>> rec = make_semg(2, duration_s=8.0, random_state=0)
>>> result = run_semg_method("sda", rec, [0], 1, target_s=2.0, test_s=3.0, epochs=1,
...                          model_kwargs={"widths": (4, 8), "feature_dim": 8})
>>> sorted(result["target"]), sorted(result)
(['nrmse', 'pearson_r', 'r2'], ['history', 'model', 'seconds', 'source', 'target'])
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from .._checks import check_int, check_real, is_integer, resolve_seed
from .._rng import seeded
from ..datasets import SEMGRecordings
from ..models.semg import ANGLE_SCALE, SEMGNet, kinematics_scores, predict_angles
from ..training import fit
from . import fit_domain_adaptation

__all__ = ["METHODS", "run_semg_method", "semg_split"]

METHODS = ("source_only", "target_only", "fine_tune", "sda", "sda_coral")


def semg_split(
    recordings: Any,
    subject: int,
    *,
    window_ms: float = 200.0,
    step_ms: float = 100.0,
    train_s: float | None = None,
    test_s: float = 15.0,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Time-ordered, non-overlapping train and test windows of one subject.

    - ``"test"``: the windows that start in the last ``test_s`` seconds;
    - ``"train"``: the windows that end before ``train_s`` seconds (None: before the test part
      minus one window length, so that a gap of one window separates train and test).

    Returns ``{"train": (X, y), "test": (X, y)}`` with X float32 (n, C, L) and y the angle in
    degrees at each window's last sample (:meth:`SEMGRecordings.windows`).
    """
    _check_recordings(recordings)
    subject = _check_subject(recordings, subject, "subject")
    fs = recordings.fs
    n = recordings.emg.shape[-1]
    X, y, _ = recordings.windows(subject, window_ms=window_ms, step_ms=step_ms)
    length = round(window_ms * fs / 1000.0)
    step = round(step_ms * fs / 1000.0)
    start = np.arange(len(X)) * step
    test_begin = n - round(check_real(test_s, "test_s") * fs)
    train_end = test_begin - length if train_s is None \
        else round(check_real(train_s, "train_s") * fs)
    if train_end > test_begin - length:
        raise ValueError(f"train_s={train_s} s leaves no gap of one window ({window_ms} ms) "
                         f"before the last test_s={test_s} s of the {n / fs:g} s recording")
    train = start + length <= train_end
    test = start >= test_begin
    if not train.any() or not test.any():
        raise ValueError(f"the split of the {n / fs:g} s recording leaves no "
                         f"{'training' if not train.any() else 'test'} window (train_s="
                         f"{train_s}, test_s={test_s}, window_ms={window_ms})")
    return {"train": (X[train], y[train]), "test": (X[test], y[test])}


def _check_recordings(recordings: Any) -> None:
    if not isinstance(recordings, SEMGRecordings):
        raise TypeError(f"recordings must be a lightvision.datasets.SEMGRecordings (e.g. from "
                        f"make_semg), got {type(recordings).__name__}")


def _check_subject(recordings: SEMGRecordings, subject: Any, name: str) -> int:
    subject = check_int(subject, name, minimum=0)
    if subject >= len(recordings.emg):
        raise ValueError(f"{name} must be a subject index in [0, {len(recordings.emg)}), got "
                         f"{subject}")
    return subject


def _targets(y: np.ndarray) -> torch.Tensor:
    """Angles in degrees (n,) -> training targets (n, 1) = angle / ANGLE_SCALE."""
    return torch.from_numpy(np.asarray(y, dtype=np.float32) / ANGLE_SCALE)[:, None]


def run_semg_method(
    method: str,
    recordings: Any,
    sources: int | Sequence[int],
    target: int,
    *,
    target_s: float = 10.0,
    test_s: float = 15.0,
    window_ms: float = 200.0,
    step_ms: float = 100.0,
    epochs: int = 6,
    target_epochs: int = 30,
    batch_size: int = 64,
    lr: float = 2e-3,
    fine_tune_lr: float | None = None,
    weight_decay: float = 1e-4,
    lam: float = 1.0,
    streams: str = "joint",
    model_kwargs: Mapping[str, Any] | None = None,
    random_state: Any = 0,
) -> dict[str, Any]:
    """Train ``method`` for sources -> target and score it on both (Bao et al., seed #13).

    Data (:func:`semg_split`): the labelled target data are the windows of the first
    ``target_s`` seconds of the target recording; the source training data are every source
    subject's windows before its last ``test_s`` seconds (less one window); the test sets are
    the windows in the last ``test_s`` seconds of the target and of each source (pooled), so a
    gap of at least one window separates training and test windows.

    Training (AdamW, cosine schedule, MSE on ``angle / ANGLE_SCALE``, seed ``random_state``
    for the initialisation and the batches):

    - ``"source_only"``: ``epochs`` over the source windows;
    - ``"target_only"``: ``target_epochs`` over the target windows;
    - ``"fine_tune"``: ``"source_only"``, then ``target_epochs`` over the target windows with
      every layer trainable (lr ``fine_tune_lr``, default ``lr``);
    - ``"sda"``, ``"sda_coral"``: from scratch, ``epochs`` over the source windows, each
      source batch paired with a target batch of the same size (drawn with replacement when
      the target set is smaller), loss MSE + MSE + ``lam`` x MMD (or CORAL) of the features.

    Parameters
    ----------
    method : one of :data:`METHODS`.
    recordings : :class:`lightvision.datasets.SEMGRecordings`.
    sources : source subject(s); target : target subject (not among the sources).
    target_s, test_s : seconds of labelled target data at the start, and of test data at the
        end, of every recording.
    window_ms, step_ms : window length and hop.
    model_kwargs : extra arguments of :class:`SEMGNet` (``in_channels``, ``window`` and ``fs``
        come from the recordings).
    random_state : seed of the initialisation and of the batches (an int, None for fresh
        entropy, or a numpy ``RandomState`` / ``Generator`` an int seed is drawn from); the caller's
        random streams (torch's CPU and CUDA generators) are left as they were.

    Returns
    -------
    dict with ``"target"`` and ``"source"`` (:func:`kinematics_scores` on the test windows, in
    degrees), ``"model"`` (the trained :class:`SEMGNet`), ``"history"`` (the last ``fit``
    history) and ``"seconds"`` (training wall time).
    """
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    _check_recordings(recordings)
    if is_integer(sources):
        sources = [sources]
    elif isinstance(sources, Sequence | np.ndarray) and not isinstance(sources, str):
        sources = list(sources)
    else:
        raise TypeError(f"sources must be a subject index or a sequence of them, got "
                        f"{type(sources).__name__}")
    if not sources or not all(is_integer(s) for s in sources):
        raise ValueError(f"sources must be a subject index or a non-empty sequence of them, "
                         f"got {sources!r}")
    sources = [_check_subject(recordings, s, f"sources[{i}]") for i, s in enumerate(sources)]
    target = _check_subject(recordings, target, "target")
    if target in sources:
        raise ValueError(f"the target subject {target} is also a source ({sources})")
    check_int(epochs, "epochs")
    check_int(target_epochs, "target_epochs")
    check_real(target_s, "target_s")
    if fine_tune_lr is not None:
        check_real(fine_tune_lr, "fine_tune_lr")
    check_real(lam, "lam", strict=False)
    if not isinstance(streams, str) or streams not in ("separate", "joint"):
        raise ValueError(f"streams must be 'separate' or 'joint', got {streams!r}")
    if model_kwargs is not None and not isinstance(model_kwargs, Mapping):
        raise TypeError(f"model_kwargs must be a mapping or None, got "
                        f"{type(model_kwargs).__name__}")
    split = {"window_ms": window_ms, "step_ms": step_ms, "test_s": test_s}
    parts = [semg_split(recordings, s, **split) for s in sources]
    Xs = np.concatenate([p["train"][0] for p in parts])
    ys = np.concatenate([p["train"][1] for p in parts])
    Xs_test = np.concatenate([p["test"][0] for p in parts])
    ys_test = np.concatenate([p["test"][1] for p in parts])
    tgt = semg_split(recordings, target, train_s=target_s, **split)
    Xt, yt = tgt["train"]
    Xt_test, yt_test = tgt["test"]

    kwargs = {"in_channels": recordings.emg.shape[1], "window": Xs.shape[-1],
              "fs": float(recordings.fs), **dict(model_kwargs or {})}
    seed = resolve_seed(random_state)
    with seeded(seed):
        model = SEMGNet(**kwargs)
    common = {"batch_size": batch_size, "weight_decay": weight_decay,
              "random_state": seed, "progress": False}
    mse = torch.nn.functional.mse_loss
    Xs_t, ys_t = torch.from_numpy(Xs), _targets(ys)
    Xt_t, yt_t = torch.from_numpy(Xt), _targets(yt)
    start = time.perf_counter()
    result: dict[str, Any] = {}
    if method in ("source_only", "fine_tune"):
        history = fit(model, Xs_t, ys_t, epochs=epochs, lr=lr, loss=mse, **common)
        if method == "fine_tune":
            result["pretrained"] = {
                "target": kinematics_scores(yt_test, predict_angles(model, Xt_test)),
                "source": kinematics_scores(ys_test, predict_angles(model, Xs_test))}
            history = fit(model, Xt_t, yt_t, epochs=target_epochs,
                          lr=lr if fine_tune_lr is None else fine_tune_lr, loss=mse, **common)
    elif method == "target_only":
        history = fit(model, Xt_t, yt_t, epochs=target_epochs, lr=lr, loss=mse, **common)
    else:
        history = fit_domain_adaptation(
            model, Xs_t, ys_t, Xt_t, yt_t, lam=lam, streams=streams,
            discrepancy="coral" if method == "sda_coral" else "mmd", epochs=epochs, lr=lr,
            **common)
    seconds = time.perf_counter() - start
    return {
        "target": kinematics_scores(yt_test, predict_angles(model, Xt_test)),
        "source": kinematics_scores(ys_test, predict_angles(model, Xs_test)),
        "model": model,
        "history": history,
        "seconds": seconds,
        **result,
    }
