"""One small training loop used by tests, benchmarks and methods: :func:`fit` and :func:`evaluate`.

A *task* turns a batch into a loss: ``task(model, x, y) -> {"loss": ..., "output": ...}``.
The default task is supervised learning with ``loss`` (cross-entropy for integer labels);
distillation and regularised training (later methods) pass their own task, which may add
entries such as ``task_loss`` and ``kd_loss`` that :func:`fit` averages into the history.

>>> import torch
>>> from lightvision.training import fit, evaluate
>>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
>>> X, y = torch.randn(32, 1, 2, 2), torch.randint(0, 2, (32,))
>>> history = fit(model, X, y, epochs=2, progress=False)
>>> len(history.epochs), sorted(evaluate(model, X, y))
(2, ['accuracy', 'error', 'loss'])

Domain-discrepancy losses for domain adaptation, :func:`mmd_loss` (multi-kernel MMD, DAN-style)
and :func:`coral_loss` (Deep CORAL), live in :mod:`lightvision.training.domain` and are
registered in :data:`lightvision.registry.LOSSES`, with the two-stream supervised domain
adaptation that uses them (:class:`DomainAdaptationTask`, :func:`fit_domain_adaptation`), and
the sEMG inter-subject experiments of seed #13 in :mod:`lightvision.training.semg`
(:func:`run_semg_method`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from .._checks import check_int, check_model, check_real
from .domain import DomainAdaptationTask, coral_loss, fit_domain_adaptation, mmd_loss

__all__ = [
    "DomainAdaptationTask",
    "History",
    "Task",
    "coral_loss",
    "evaluate",
    "fit",
    "fit_domain_adaptation",
    "images_to_tensor",
    "mmd_loss",
    "supervised_task",
]

Task = Callable[[nn.Module, torch.Tensor, torch.Tensor], Mapping[str, torch.Tensor]]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class History:
    """What :func:`fit` did: one dict per epoch and the total wall time in seconds.

    Each epoch dict holds ``epoch``, ``seconds``, ``lr``, the mean of every scalar the task
    returned (``loss`` and e.g. ``kd_loss``) and, with validation data, ``val_loss`` and (for
    integer labels) ``val_accuracy`` and ``val_error``.
    """

    epochs: list[dict[str, float]] = field(default_factory=list)
    train_seconds: float = 0.0

    def last(self, key: str) -> float:
        """Value of ``key`` in the last epoch."""
        return self.epochs[-1][key]


def images_to_tensor(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Images (n, H, W) or (n, H, W, C) -> float32 tensor (n, C, H, W).

    uint8 images are scaled to [0, 1]; other dtypes are converted unchanged. The input is not
    modified.
    """
    x = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
    if x.ndim not in (3, 4):
        raise ValueError(f"images must have shape (n, H, W) or (n, H, W, C), got {tuple(x.shape)}")
    if x.dtype == torch.bool or x.is_complex():
        raise TypeError(f"images must be real numbers, got {x.dtype}")
    scale = 255.0 if x.dtype == torch.uint8 else 1.0
    x = x.to(torch.float32) / scale
    return x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2).contiguous()


def supervised_task(loss: LossFn) -> Task:
    """The plain supervised task: ``output = model(x)``, ``loss = loss(output, y)``."""

    def task(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        output = model(x)
        return {"loss": loss(output, y), "output": output}

    return task


def _as_tensor(value: Any, name: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    raise TypeError(f"{name} must be a numpy array or a torch tensor, got {type(value).__name__}")


def _check_data(X: Any, y: Any, prefix: str = "") -> tuple[torch.Tensor, torch.Tensor]:
    X, y = _as_tensor(X, f"{prefix}X"), _as_tensor(y, f"{prefix}y")
    if X.ndim == 0 or len(X) == 0:
        raise ValueError(f"{prefix}X is empty")
    if y.ndim == 0 or len(y) != len(X):
        raise ValueError(
            f"{prefix}X and {prefix}y must have the same length, got {len(X)} and "
            f"{'a scalar' if y.ndim == 0 else len(y)}"
        )
    if not X.is_floating_point():
        raise TypeError(
            f"{prefix}X must be floating point, got {X.dtype} "
            "(convert images with lightvision.training.images_to_tensor)"
        )
    if not torch.isfinite(X).all():
        raise ValueError(f"{prefix}X contains NaN or infinite values")
    if y.dtype == torch.bool or y.is_complex():
        raise TypeError(f"{prefix}y must hold integer labels or real targets, got {y.dtype}")
    if y.is_floating_point() and not torch.isfinite(y).all():
        raise ValueError(f"{prefix}y contains NaN or infinite values")
    return X, y


def _default_loss(y: torch.Tensor) -> LossFn:
    if y.is_floating_point():
        raise TypeError("y holds real values: pass loss= (e.g. torch.nn.functional.mse_loss)")
    return nn.functional.cross_entropy


def _check_labels(model: nn.Module, y: torch.Tensor, name: str) -> None:
    num_classes = getattr(model, "num_classes", None)
    if y.is_floating_point() or num_classes is None:
        return
    low, high = int(y.min()), int(y.max())
    if low < 0 or high >= num_classes:
        raise ValueError(
            f"{name} holds labels in [{low}, {high}] but the model has num_classes={num_classes}"
        )


def fit(
    model: nn.Module,
    X: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor,
    *,
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    optimizer: str = "adamw",
    schedule: str = "cosine",
    loss: LossFn | None = None,
    task: Task | None = None,
    validation_data: tuple[Any, Any] | None = None,
    random_state: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> History:
    """Train ``model`` in place on (X, y) with mini-batches; return the :class:`History`.

    Deterministic on CPU for a given ``random_state`` (batch order, dropout and any other
    torch randomness inside the loop), without disturbing the caller's global RNG state. The
    model's train/eval mode is restored afterwards.

    Parameters
    ----------
    model : the network; its parameters with ``requires_grad`` are optimised.
    X : inputs (n, ...), floating point, e.g. images (n, C, H, W) from :func:`images_to_tensor`.
    y : integer class labels (n,) or real targets (n, ...).
    epochs, batch_size : passes over the data and samples per step (the last batch may be
        smaller).
    lr, weight_decay : learning rate and decoupled weight decay.
    optimizer : "adamw" or "sgd" (momentum 0.9, Nesterov).
    schedule : "cosine" (per-step cosine decay to 0) or "constant".
    loss : ``loss(output, y)``; default cross-entropy for integer labels.
    task : ``task(model, x, y) -> {"loss": ..., ...}``; replaces ``loss`` when given.
    validation_data : optional (X_val, y_val) evaluated after every epoch.
    random_state : seed of everything random inside the loop.
    device : where to train; batches are moved there one at a time.
    progress : show a tqdm progress bar over epochs.
    """
    check_model(model)
    X, y = _check_data(X, y)
    check_int(epochs, "epochs")
    check_int(batch_size, "batch_size")
    check_real(lr, "lr")
    check_real(weight_decay, "weight_decay", strict=False)
    if schedule not in ("cosine", "constant"):
        raise ValueError(f"schedule must be 'cosine' or 'constant', got {schedule!r}")
    if not isinstance(random_state, int) or isinstance(random_state, bool):
        raise TypeError(f"random_state must be an int, got {type(random_state).__name__}")
    if task is not None and loss is not None:
        raise ValueError("pass either loss or task, not both")
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise TypeError("validation_data must be a pair (X_val, y_val)")
        validation_data = _check_data(*validation_data, prefix="validation_data ")
    if task is None:
        task = supervised_task(loss if loss is not None else _default_loss(y))
        _check_labels(model, y, "y")
        if validation_data is not None:
            _check_labels(model, validation_data[1], "validation_data y")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters")
    if optimizer == "adamw":
        opt: torch.optim.Optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    elif optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True,
                              weight_decay=weight_decay)
    else:
        raise ValueError(f"optimizer must be 'adamw' or 'sgd', got {optimizer!r}")
    steps_per_epoch = math.ceil(len(X) / batch_size)
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps_per_epoch)
             if schedule == "cosine" else None)

    from tqdm.auto import tqdm

    history = History()
    was_training = model.training
    model.to(device)
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(random_state)
        generator = torch.Generator().manual_seed(random_state)
        bar = tqdm(range(epochs), desc="fit", unit="epoch", disable=not progress, leave=False)
        try:
            for epoch in bar:
                epoch_start = time.perf_counter()
                model.train()
                sums: dict[str, float] = {}
                order = torch.randperm(len(X), generator=generator)
                for idx in order.split(batch_size):
                    xb, yb = X[idx].to(device), y[idx].to(device)
                    out = task(model, xb, yb)
                    opt.zero_grad(set_to_none=True)
                    out["loss"].backward()
                    opt.step()
                    if sched is not None:
                        sched.step()
                    for key, value in out.items():  # running means of the scalar losses
                        if key == "output" or not isinstance(value, torch.Tensor):
                            continue
                        if value.numel() == 1:
                            sums[key] = sums.get(key, 0.0) + float(value.detach()) * len(idx)
                record = {"epoch": epoch + 1, "lr": opt.param_groups[0]["lr"]}
                record.update({k: v / len(X) for k, v in sums.items()})
                if not math.isfinite(record["loss"]):
                    raise FloatingPointError(
                        f"training diverged at epoch {epoch + 1} (loss {record['loss']}); "
                        "lower lr or check the data"
                    )
                if validation_data is not None:
                    metrics = evaluate(model, *validation_data, task=task, device=device)
                    record.update({f"val_{k}": v for k, v in metrics.items()})
                record["seconds"] = time.perf_counter() - epoch_start
                history.epochs.append(record)
                bar.set_postfix({k: f"{v:.4g}" for k, v in record.items()
                                 if k in ("loss", "val_loss", "val_error")})
        finally:
            bar.close()
            model.train(was_training)
    history.train_seconds = time.perf_counter() - start
    return history


@torch.no_grad()
def evaluate(
    model: nn.Module,
    X: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor,
    *,
    batch_size: int = 256,
    loss: LossFn | None = None,
    task: Task | None = None,
    device: str | torch.device = "cpu",
) -> dict[str, float]:
    """Mean loss over (X, y) in eval mode, plus ``accuracy`` and ``error`` (= 1 - accuracy)
    when ``y`` holds integer labels. The model's train/eval mode is restored afterwards."""
    check_model(model)
    X, y = _check_data(X, y)
    check_int(batch_size, "batch_size")
    if task is None:
        task = supervised_task(loss if loss is not None else _default_loss(y))
        _check_labels(model, y, "y")
    classify = not y.is_floating_point()
    was_training = model.training
    model.eval()
    total_loss, correct = 0.0, 0
    try:
        for start in range(0, len(X), batch_size):
            xb = X[start:start + batch_size].to(device)
            yb = y[start:start + batch_size].to(device)
            out = task(model, xb, yb)
            total_loss += float(out["loss"]) * len(xb)
            if classify:
                correct += int((out["output"].argmax(dim=1) == yb).sum())
    finally:
        model.train(was_training)
    result = {"loss": total_loss / len(X)}
    if classify:
        result["accuracy"] = correct / len(X)
        result["error"] = 1.0 - result["accuracy"]
    return result


from .semg import run_semg_method  # noqa: E402 (needs fit above)

__all__ += ["run_semg_method"]
