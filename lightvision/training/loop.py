"""The training loop: :func:`fit`, :func:`evaluate`, the supervised task and the history."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .._checks import (
    check_bool,
    check_int,
    check_model,
    check_real,
    floating_dtype,
    resolve_seed,
)
from .._rng import seeded
from .data import Batches, as_batches, check_data

__all__ = ["History", "Task", "evaluate", "fit", "supervised_task"]

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
        if not self.epochs:
            raise ValueError("the history is empty: fit has not completed an epoch")
        if key not in self.epochs[-1]:
            raise KeyError(f"no {key!r} in the history; known: {sorted(self.epochs[-1])}")
        return self.epochs[-1][key]


def supervised_task(loss: LossFn) -> Task:
    """The plain supervised task: ``output = model(x)``, ``loss = loss(output, y)``."""
    if not callable(loss):
        raise TypeError(f"loss must be callable, got {type(loss).__name__}")

    def task(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        output = model(x)
        return {"loss": loss(output, y), "output": output}

    return task


def _check_callable(value: Any, name: str) -> None:
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be callable or None, got {type(value).__name__}")


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


def _default_task(model: nn.Module, loss: LossFn | None, batches: Batches, name: str) -> Task:
    """The supervised task with ``loss`` (default: cross-entropy for integer labels). Whole
    tensors are checked at once; batches from a loader as they come."""
    whole = batches.tensors
    if whole is not None:
        if whole[1] is None:
            raise ValueError(f"{name} has no targets: the supervised task needs (X, y); pass "
                             "task= to train on unlabelled data")
        task = supervised_task(loss if loss is not None else _default_loss(whole[1]))
        _check_labels(model, whole[1], name)
        return task

    def checked(net: nn.Module, x: torch.Tensor, y: torch.Tensor | None) -> Mapping[str, Any]:
        if y is None:
            raise ValueError(f"{name} batches have no targets: the supervised task needs "
                             "(x, y) batches; pass task= to train on unlabelled data")
        _check_labels(net, y, f"{name} y")
        return supervised_task(loss if loss is not None else _default_loss(y))(net, x, y)

    return checked


def _batches(X: Any, y: Any, name: str, batch_size: int, **kwargs: Any) -> Batches:
    """``(X, y)`` or ``X`` in any accepted form (``y`` None) as :class:`Batches`."""
    if y is None:
        return as_batches(X, name=name, batch_size=batch_size, **kwargs)
    X, y = check_data(X, y, prefix="" if name == "data" else f"{name} ")
    return Batches(None, name=name, labelled=True, X=X, y=y, batch_size=batch_size, **kwargs)


def _check_device(device: Any) -> torch.device:
    """``device`` as a ``torch.device`` if it names one that this torch can use."""
    if not isinstance(device, str | torch.device):
        raise TypeError(f"device must be a str or a torch.device, got {type(device).__name__}")
    try:
        device = torch.device(device)
    except RuntimeError:
        raise ValueError(f"device must name a torch device ('cpu', 'cuda', 'cuda:1', ...), "
                         f"got {device!r}") from None
    if device.type == "cpu":
        return device
    module = getattr(torch, device.type, None)  # torch.cuda, torch.mps, torch.xpu, a plugin's
    if not callable(getattr(module, "is_available", None)) or not module.is_available():
        raise ValueError(f"device={str(device)!r}: {device.type} is not available in this "
                         f"torch ({torch.__version__})")
    if device.index is not None and device.index >= module.device_count():
        raise ValueError(f"device={str(device)!r}: there are {module.device_count()} "
                         f"{device.type} device(s)")
    return device


def _to(x: torch.Tensor, device: torch.device, dtype: torch.dtype | None) -> torch.Tensor:
    """``x`` on ``device``, floating-point values cast to ``dtype`` (integer labels kept)."""
    if dtype is not None and x.is_floating_point():
        return x.to(device, dtype)
    return x.to(device)


def _check_output(out: Any) -> Mapping[str, Any]:
    """``out`` if it is what a task returns: a mapping with a one-element tensor ``"loss"``."""
    if not isinstance(out, Mapping) or not isinstance(out.get("loss"), torch.Tensor) \
            or out["loss"].numel() != 1:
        got = (f"a mapping with keys {sorted(map(str, out))}" if isinstance(out, Mapping)
               else type(out).__name__)
        raise TypeError(f"task must return a mapping with a scalar tensor 'loss' (and "
                        f"'output'), got {got}")
    return out


def _is_pair(data: Any) -> bool:
    return isinstance(data, tuple | list) and len(data) == 2 and all(
        hasattr(part, "shape") and hasattr(part, "dtype") for part in data)


def fit(
    model: nn.Module,
    X: Any,
    y: Any = None,
    *,
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    optimizer: str = "adamw",
    schedule: str = "cosine",
    loss: LossFn | None = None,
    task: Task | None = None,
    validation_data: Any = None,
    random_state: Any = 0,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> History:
    """Train ``model`` in place with mini-batches; return the :class:`History`.

    Deterministic on CPU for a given ``random_state`` (batch order, dropout and any other
    torch randomness inside the loop), without disturbing the caller's random streams (torch's
    CPU and CUDA generators: :func:`lightvision._rng.seeded`). The model's train/eval mode is
    restored afterwards.

    Parameters
    ----------
    model : the network; its parameters with ``requires_grad`` are optimised.
    X : inputs (n, ...), floating point, e.g. images (n, C, H, W) from
        :func:`~lightvision.training.images_to_tensor`; or, with ``y`` None, data in any form
        of :func:`~lightvision.training.as_batches` (a tuple ``(X, y)``, a ``DataLoader``, an
        iterable of ``(x, y)`` batches; a loader keeps its own batch size and order).
    y : integer class labels (n,) or real targets (n, ...).
    epochs, batch_size : passes over the data and samples per step (the last batch may be
        smaller).
    lr, weight_decay : learning rate and decoupled weight decay.
    optimizer : "adamw" or "sgd" (momentum 0.9, Nesterov).
    schedule : "cosine" (per-step cosine decay to 0) or "constant".
    loss : ``loss(output, y)``; default cross-entropy for integer labels.
    task : ``task(model, x, y) -> {"loss": ..., ...}``; replaces ``loss`` when given.
    validation_data : optional data (a tuple ``(X_val, y_val)`` or a loader) evaluated after
        every epoch.
    random_state : seed of everything random inside the loop: an int, None (fresh entropy),
        or a numpy ``RandomState`` / ``Generator`` an int seed is drawn from.
    device : where to train ("cpu", "cuda", a ``torch.device``); the model is moved there and
        the batches one at a time. Floating-point inputs and targets are cast to the model's
        floating dtype on the way (float64 data train a float32 model); integer labels are
        kept.
    progress : show a tqdm progress bar over epochs.

    Raises
    ------
    FloatingPointError when a step's loss is NaN or infinite (training diverged: lower
    ``lr``, or look for huge values in the data), before that step changes the weights.
    """
    check_model(model)
    device = _check_device(device)
    check_bool(progress, "progress")
    epochs = check_int(epochs, "epochs")
    batch_size = check_int(batch_size, "batch_size")  # plain ints (torch's split needs one)
    lr = check_real(lr, "lr")
    weight_decay = check_real(weight_decay, "weight_decay", strict=False)
    if schedule not in ("cosine", "constant"):
        raise ValueError(f"schedule must be 'cosine' or 'constant', got {schedule!r}")
    seed = resolve_seed(random_state)
    if task is not None and loss is not None:
        raise ValueError("pass either loss or task, not both")
    _check_callable(loss, "loss")
    _check_callable(task, "task")
    generator = torch.Generator().manual_seed(seed)
    batches = _batches(X, y, "data", batch_size, shuffle=True, generator=generator)
    if validation_data is not None:
        if _is_pair(validation_data):
            validation_data = _batches(*validation_data, "validation_data", 256)
        elif isinstance(validation_data, tuple):
            raise TypeError("validation_data must be a pair (X_val, y_val) or a loader")
        else:
            validation_data = _batches(validation_data, None, "validation_data", 256)
    if task is None:
        task = _default_task(model, loss, batches, "y" if y is not None else "data")
        val_task = (None if validation_data is None else
                    _default_task(model, loss, validation_data, "validation_data y"))
    else:
        val_task = task
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
    if epochs > 1 and batches.one_shot:
        raise TypeError("data is a one-shot iterator: fit goes over it once per epoch; pass a "
                        "list of batches or a DataLoader")
    sched = None
    if schedule == "cosine":
        try:
            steps = len(batches)
        except TypeError:
            raise TypeError("data is a one-shot iterator of unknown length, and the cosine "
                            "schedule needs the number of steps: pass a list of batches or a "
                            "DataLoader, or schedule='constant'") from None
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps)

    from tqdm.auto import tqdm

    history = History()
    data_names = "X / y" if y is not None else "data"
    was_training = model.training
    model.to(device)
    dtype = floating_dtype(model)
    start = time.perf_counter()
    with seeded(seed):
        bar = tqdm(range(epochs), desc="fit", unit="epoch", disable=not progress, leave=False)
        try:
            for epoch in bar:
                epoch_start = time.perf_counter()
                model.train()
                sums: dict[str, float] = {}
                seen = 0
                for step, (xb, yb) in enumerate(batches, 1):
                    xb = _to(xb, device, dtype)
                    yb = yb if yb is None else _to(yb, device, dtype)
                    out = _check_output(task(model, xb, yb))
                    loss_value = float(out["loss"].detach())
                    if not math.isfinite(loss_value):  # before the step: the weights stay finite
                        raise FloatingPointError(
                            f"training diverged at epoch {epoch + 1}, step {step} (loss "
                            f"{loss_value}): lower lr, or check {data_names} for huge values")
                    opt.zero_grad(set_to_none=True)
                    out["loss"].backward()
                    opt.step()
                    if sched is not None:
                        sched.step()
                    seen += len(xb)
                    for key, value in out.items():  # running means of the scalar losses
                        if key == "output" or not isinstance(value, torch.Tensor):
                            continue
                        if value.numel() == 1:
                            sums[key] = sums.get(key, 0.0) + float(value.detach()) * len(xb)
                if not seen:
                    raise ValueError(f"{batches.name} holds no batches")
                record = {"epoch": epoch + 1, "lr": opt.param_groups[0]["lr"]}
                record.update({k: v / seen for k, v in sums.items()})
                if validation_data is not None:
                    metrics = evaluate(model, validation_data, task=val_task, device=device)
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
    X: Any,
    y: Any = None,
    *,
    batch_size: int = 256,
    loss: LossFn | None = None,
    task: Task | None = None,
    device: str | torch.device = "cpu",
) -> dict[str, float]:
    """Mean loss over the data in eval mode, plus ``accuracy`` and ``error`` (= 1 -
    accuracy) for integer labels. ``X, y`` as for :func:`fit` (``y`` None: ``X`` is data in
    any accepted form), cast to the model's floating dtype as in :func:`fit`. The model's
    train/eval mode is restored afterwards."""
    check_model(model)
    device = _check_device(device)
    batch_size = check_int(batch_size, "batch_size")
    if task is not None and loss is not None:
        raise ValueError("pass either loss or task, not both")
    _check_callable(loss, "loss")
    _check_callable(task, "task")
    batches = _batches(X, y, "data", batch_size)
    if task is None:
        task = _default_task(model, loss, batches, "y" if y is not None else "data")
    was_training = model.training
    model.eval()
    dtype = floating_dtype(model)
    total_loss, correct, seen, classify = 0.0, 0, 0, True
    try:
        for xb, yb in batches:
            xb = _to(xb, device, dtype)
            yb = yb if yb is None else _to(yb, device, dtype)
            out = _check_output(task(model, xb, yb))
            total_loss += float(out["loss"]) * len(xb)
            seen += len(xb)
            output = out.get("output")
            classify = (classify and yb is not None and not yb.is_floating_point()
                        and isinstance(output, torch.Tensor) and output.ndim >= 2)
            if classify:
                correct += int((out["output"].argmax(dim=1) == yb).sum())
    finally:
        model.train(was_training)
    if not seen:
        raise ValueError(f"{batches.name} holds no batches")
    result = {"loss": total_loss / seen}
    if classify:
        result["accuracy"] = correct / seen
        result["error"] = 1.0 - result["accuracy"]
    return result
