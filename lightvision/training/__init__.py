"""The training loop used by tests, benchmarks and methods: :func:`fit` and :func:`evaluate`.

A *task* turns a batch into a loss: ``task(model, x, y) -> {"loss": ..., "output": ...}``.
The default task is supervised learning with ``loss`` (cross-entropy for integer labels);
distillation, domain adaptation and regularised training pass their own task, which may add
entries such as ``task_loss`` and ``kd_loss`` that :func:`fit` averages into the history.
Data come as ``(X, y)`` tensors or in any form of :func:`as_batches` (a ``DataLoader``, an
iterable of batches).

>>> import torch
>>> from lightvision.training import fit, evaluate
>>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
>>> X, y = torch.randn(32, 1, 2, 2), torch.randint(0, 2, (32,))
>>> history = fit(model, X, y, epochs=2, progress=False)
>>> len(history.epochs), sorted(evaluate(model, X, y))
(2, ['accuracy', 'error', 'loss'])

This package holds the loop only: the losses live in :mod:`lightvision.losses`, domain
adaptation and the sEMG experiments of seed #13 in :mod:`lightvision.adaptation`.
"""

from __future__ import annotations

from .._deprecation import moved_names
from .data import Batches, as_batches, check_data, images_to_tensor
from .loop import History, Task, evaluate, fit, supervised_task

__all__ = [
    "Batches",
    "History",
    "Task",
    "as_batches",
    "check_data",
    "evaluate",
    "fit",
    "images_to_tensor",
    "supervised_task",
]

__getattr__ = moved_names(__name__, {
    "DomainAdaptationTask": "lightvision.adaptation",
    "fit_domain_adaptation": "lightvision.adaptation",
    "run_semg_method": "lightvision.adaptation.semg",
    "mmd_loss": "lightvision.losses",
    "coral_loss": "lightvision.losses",
})
