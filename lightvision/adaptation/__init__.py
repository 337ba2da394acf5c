"""Supervised inter-subject domain adaptation (seed #13, Bao et al. [1]_).

A shared-weight two-stream CNN is trained on a source and a target subject with a regression
loss on both streams plus a domain discrepancy between their features (a registered loss of
:mod:`lightvision.losses` tagged ``"discrepancy"``: ``"mmd"`` or ``"coral"``):
:class:`DomainAdaptationTask` (a task for :func:`lightvision.training.fit`) and
:func:`fit_domain_adaptation`. The sEMG experiments of the paper are in
:mod:`lightvision.adaptation.semg` (:func:`~lightvision.adaptation.semg.run_semg_method`).

References
----------
.. [1] T. Bao, S. A. R. Zaidi, S. Xie, P. Yang, Z.-Q. Zhang, "Inter-Subject Domain Adaptation
   for CNN-Based Wrist Kinematics Estimation Using sEMG", IEEE Transactions on Neural Systems
   and Rehabilitation Engineering 29:1068-1078, 2021 (seed #13).
"""

from __future__ import annotations

from typing import Any

import torch

from .._checks import check_int, check_model, check_real, floating_dtype, torch_seed
from ..registry import LOSSES
from ..training import check_data, fit

__all__ = ["DomainAdaptationTask", "fit_domain_adaptation"]


def _regression_loss(output: torch.Tensor, y: torch.Tensor, name: str) -> torch.Tensor:
    """MSE of ``output`` (n, k) against ``y`` of the same shape (or (n,) when k == 1); errors
    name ``name``, the argument the targets came from."""
    if y.shape != output.shape:
        if y.ndim == 1 and output.shape == (len(y), 1):
            y = y[:, None]
        else:
            raise ValueError(f"{name} has targets of shape {tuple(y.shape[1:])} per sample, "
                             f"but the model outputs {tuple(output.shape[1:])} per sample: "
                             "expected (n, k) like the output, or (n,) for one output")
    return torch.nn.functional.mse_loss(output, y.to(output.dtype))


def _check_square(y: torch.Tensor, dtype: torch.dtype | None, name: str) -> None:
    """``ValueError`` naming ``name`` when ``y`` holds values whose square overflows ``dtype``
    (the model's floating dtype): the MSE of such targets is infinite from the first step."""
    if dtype is None or not y.numel():
        return
    limit = torch.finfo(dtype).max ** 0.5
    largest = float(y.abs().max())
    if largest > limit:
        raise ValueError(f"{name} holds values up to {largest:g}, whose squared errors overflow "
                         f"the model's {dtype} (|{name}| must stay below {limit:.4g}): rescale "
                         "the targets")


class DomainAdaptationTask:
    """Supervised two-stream domain adaptation as a task for :func:`lightvision.training.fit`.

    Bao et al. [1]_ [ABSTRACT]: a two-stream CNN with shared weights processes a source batch
    and a target batch; the loss is the regression loss of both streams (a few target windows
    are labelled) plus a domain-discrepancy loss between the streams' features. [INTERP] For
    each source batch ``(x_s, y_s)`` that ``fit`` draws, this task draws a target batch
    ``(x_t, y_t)`` of the same size from ``(target_X, target_y)`` (without replacement when the
    target set is large enough, else with replacement) with its own ``torch.Generator``, and
    computes::

        h_s = model.forward_features(x_s);  h_t = model.forward_features(x_t)
        loss = MSE(model.forward_head(h_s), y_s) + MSE(model.forward_head(h_t), y_t)
               + lam * D(h_s, h_t)

    with ``D`` = :func:`~lightvision.losses.mmd_loss` (multi-kernel Gaussian MMD^2, default
    bandwidth), :func:`~lightvision.losses.coral_loss` or any loss registered in
    :data:`~lightvision.registry.LOSSES` with the tag ``"discrepancy"``. [INTERP] By default
    (``streams="joint"``) the shared network runs once on the concatenated source and target
    batches, so batch normalisation uses the pooled batch's statistics, the same at training
    and at test time; the features and losses are then split by stream.
    ``streams="separate"`` runs the two streams as two forward passes, each batch normalised
    with its own statistics as two weight-sharing networks would; the running statistics used
    at evaluation then end up between the source and the target statistics, which fits neither
    subject. Measured on synthetic sEMG
    (``tests/test_semg_repro.py``, seeds 0-2, lam 1): mean target NRMSE 0.156 (separate) vs
    0.081 (joint) with one source subject, 0.080 vs 0.076 with three.

    Parameters
    ----------
    target_X : labelled target inputs (n_t, ...), floating point, finite; the source batches
        must have the same shape after the first axis (checked at the first call).
    target_y : their targets (n_t,) or (n_t, k), real, finite; in the same units as the
        source targets (e.g. both ``angle / ANGLE_SCALE``).
    discrepancy : name of a loss registered with the tag ``"discrepancy"``: ``"mmd"`` or
        ``"coral"``.
    lam : weight of the discrepancy (>= 0; 0 gives plain joint training on both streams).
    streams : ``"joint"`` (one pass on the concatenation, default) or ``"separate"`` (two
        forward passes), see above.
    random_state : seed of the target-batch generator: None (fresh entropy), an int, or a
        numpy ``RandomState`` / ``Generator`` an int seed is drawn from.

    The returned dict holds ``loss``, ``output`` (the source predictions), ``task_loss`` (the
    source MSE), ``target_loss`` (the target MSE) and ``discrepancy`` (before ``lam``); ``fit``
    averages the scalars into its history.

    Examples
    --------
    >>> import torch
    >>> from lightvision.models import SEMGNet
    >>> from lightvision.adaptation import DomainAdaptationTask
    >>> task = DomainAdaptationTask(torch.randn(20, 8, 400), torch.randn(20), random_state=0)
    >>> out = task(SEMGNet(), torch.randn(16, 8, 400), torch.randn(16))
    >>> sorted(out)
    ['discrepancy', 'loss', 'output', 'target_loss', 'task_loss']

    References
    ----------
    .. [1] T. Bao et al., "Inter-Subject Domain Adaptation for CNN-Based Wrist Kinematics
       Estimation Using sEMG", IEEE TNSRE 29:1068-1078, 2021 (seed #13).
    """

    def __init__(
        self,
        target_X: Any,
        target_y: Any,
        *,
        discrepancy: str = "mmd",
        lam: float = 1.0,
        streams: str = "joint",
        random_state: Any = None,
    ) -> None:
        self.target_X, self.target_y = check_data(target_X, target_y, prefix="target_")
        if not self.target_y.is_floating_point():
            raise TypeError(f"target_y must hold real targets, got {self.target_y.dtype}")
        known = LOSSES.list(tags={"discrepancy"})
        if not isinstance(discrepancy, str) or discrepancy not in known:
            raise ValueError(f"discrepancy must be one of {known}, got {discrepancy!r}")
        min_rows = LOSSES.get(discrepancy).meta.get("min_rows", 1)
        if len(self.target_X) < min_rows:
            raise ValueError(f"discrepancy={discrepancy!r} needs at least {min_rows} target "
                             f"samples, got {len(self.target_X)}")
        if not isinstance(streams, str) or streams not in ("separate", "joint"):
            raise ValueError(f"streams must be 'separate' or 'joint', got {streams!r}")
        self.streams = streams
        self.discrepancy = discrepancy
        self.lam = check_real(lam, "lam", strict=False)
        self.random_state = random_state
        seed = torch_seed(random_state)
        self.generator = torch.Generator()
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(seed)
        self._checked = False
        self._source_names = ("X", "y")  # fit's arguments; fit_domain_adaptation's own

    def _check_batch(self, model: Any, x: torch.Tensor) -> None:
        check_model(model)
        for method in ("forward_features", "forward_head"):
            if not callable(getattr(model, method, None)):
                raise TypeError(f"the model must have {method}() (e.g. a "
                                f"lightvision.models.Classifier), got {type(model).__name__}")
        if tuple(x.shape[1:]) != tuple(self.target_X.shape[1:]):
            raise ValueError(
                f"{self._source_names[0]} of shape {tuple(x.shape)} and target_X of shape "
                f"{tuple(self.target_X.shape)} differ after the first axis (channels and "
                "window length must match)")
        self._checked = True

    def sample(self, n: int) -> torch.Tensor:
        """Indices of a target batch of ``n`` samples (drawn with this task's generator)."""
        n = check_int(n, "n")
        n_t = len(self.target_X)
        if n <= n_t:
            return torch.randperm(n_t, generator=self.generator)[:n]
        return torch.randint(n_t, (n,), generator=self.generator)

    def __call__(self, model: torch.nn.Module, x: torch.Tensor,
                 y: torch.Tensor) -> dict[str, torch.Tensor]:
        if y is None:
            raise ValueError("domain adaptation needs labelled source batches (x, y); got a "
                             "batch without targets")
        if not self._checked:
            self._check_batch(model, x)
        idx = self.sample(len(x))
        x_t = self.target_X[idx].to(x.device, x.dtype)  # fit casts x to the model's dtype
        y_t = self.target_y[idx].to(x.device)
        if self.streams == "separate":  # two streams, shared weights, own BN statistics
            h_s, h_t = model.forward_features(x), model.forward_features(x_t)
        else:  # one pass on the concatenation: BN statistics of the pooled batch
            h = model.forward_features(torch.cat([x, x_t]))
            h_s, h_t = h[: len(x)], h[len(x):]
        output = model.forward_head(h_s)
        task_loss = _regression_loss(output, y, self._source_names[1])
        target_loss = _regression_loss(model.forward_head(h_t), y_t, "target_y")
        disc = LOSSES.get(self.discrepancy).obj(h_s, h_t)
        return {"loss": task_loss + target_loss + self.lam * disc, "output": output,
                "task_loss": task_loss, "target_loss": target_loss, "discrepancy": disc}


def fit_domain_adaptation(
    model: torch.nn.Module,
    source_X: Any,
    source_y: Any,
    target_X: Any,
    target_y: Any,
    *,
    discrepancy: str = "mmd",
    lam: float = 1.0,
    streams: str = "joint",
    **fit_kwargs: Any,
) -> Any:
    """Train ``model`` in place with :class:`DomainAdaptationTask`; return fit's ``History``.

    A thin wrapper over :func:`lightvision.training.fit` on ``(source_X, source_y)`` (an epoch
    is one pass over the source data, each source batch paired with a target batch of the same
    size). ``fit_kwargs`` go to ``fit`` (``epochs``, ``batch_size``, ``lr``, ``random_state``,
    ...); the target-batch generator is seeded with ``fit``'s ``random_state`` (default 0).
    ``loss`` and ``task`` are not accepted. Before training, ``source_X`` must match
    ``target_X`` after the first axis, and ``source_y`` / ``target_y`` must stay below the
    square root of the model's largest float (about 1.8e19 for float32): a ``ValueError``
    naming the argument otherwise.
    """
    for key in ("loss", "task"):
        if key in fit_kwargs:
            raise TypeError(f"fit_domain_adaptation() sets the task itself; got {key}=")
    source_X, source_y = check_data(source_X, source_y, prefix="source_")
    if not source_y.is_floating_point():
        raise TypeError(f"source_y must hold real targets, got {source_y.dtype}")
    task = DomainAdaptationTask(target_X, target_y, discrepancy=discrepancy, lam=lam,
                                streams=streams, random_state=fit_kwargs.get("random_state", 0))
    task._source_names = ("source_X", "source_y")
    task._check_batch(model, source_X)  # the source and target shapes, before training
    dtype = floating_dtype(model)
    _check_square(source_y, dtype, "source_y")
    _check_square(task.target_y, dtype, "target_y")
    return fit(model, source_X, source_y, task=task, **fit_kwargs)
