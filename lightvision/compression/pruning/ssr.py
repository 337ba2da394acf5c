"""SSR (Lin et al., seed #22): structured-sparsity regularisation solved with AULM, then the
zeroed filters are removed for real."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..._checks import check_int, check_random_state, check_real, floating_dtype
from ...registry import PRUNERS
from .base import (
    Pruner,
    Selection,
    check_finite_weights,
    keep_per_division,
    non_finite_tensor,
    per_group,
)
from .surgery import ChannelGroup, channel_groups

__all__ = ["AULM_TRAINING", "SSR", "group_prox"]

_NORMS = ("l21", "l20")


def group_prox(u: torch.Tensor, threshold: float, norm: str = "l21") -> torch.Tensor:
    """Proximal operator of ``threshold * R`` on the rows of ``u`` (one row per group).

    ``"l21"`` (R = sum of row norms): group soft-thresholding,
    ``u_i * max(||u_i|| - threshold, 0) / ||u_i||``. ``"l20"`` (R = number of non-zero rows):
    group hard-thresholding, ``u_i * [||u_i||^2 > 2 threshold]``. Rows that end at zero are
    exactly zero. ``u``: a finite (groups, m) float tensor (numpy arrays are refused with a
    ``TypeError``); ``threshold`` >= 0.

    >>> u = torch.tensor([[3.0, 4.0], [0.3, 0.4]])
    >>> group_prox(u, 1.0)
    tensor([[2.4000, 3.2000],
            [0.0000, 0.0000]])
    >>> group_prox(u, 1.0, "l20")
    tensor([[3., 4.],
            [0., 0.]])
    """
    if not isinstance(u, torch.Tensor):
        raise TypeError(f"u must be a torch.Tensor (groups, m), got {type(u).__name__}")
    if u.ndim != 2 or not u.is_floating_point():
        raise ValueError(f"u must be a 2-d floating-point tensor (groups, m), got shape "
                         f"{tuple(u.shape)} of {u.dtype}")
    if not bool(torch.isfinite(u).all()):
        raise ValueError("u has NaN or infinite values")
    threshold = check_real(threshold, "threshold", strict=False)
    if norm not in _NORMS:
        raise ValueError(f"norm must be one of {_NORMS}, got {norm!r}")
    tiny = torch.finfo(u.dtype).tiny
    # row norms scaled by the row's largest |value|: finite for any finite u (u.norm squares
    # first, so rows of 1e20 in float32 would give inf); a norm beyond the dtype's range is inf
    scale = u.abs().amax(dim=1, keepdim=True).clamp_min(tiny)
    norms = scale * (u / scale).norm(dim=1, keepdim=True)
    if norm == "l21":  # u_i * max(1 - threshold / ||u_i||, 0): no product that can overflow
        return u * (1 - threshold / norms.clamp_min(tiny)).clamp_min(0)
    return u * (norms.square() > 2 * threshold)


class _Group:
    """The parameters of one channel group, one row per channel.

    ``members``: every producer's filter and bias and the affine parameters of the batch norms
    that follow (all zeroed when the group is removed). ``penalised``: what the regulariser
    sees. [INTERP] When every producer is followed by an affine batch norm, only the norms'
    affine parameters: a filter before a batch norm is scale-invariant, so a penalty on it
    shrinks it without ever changing the function (and its channel never reaches zero) while
    the batch norm's running statistics fall behind; a channel whose norm has weight and bias
    zero outputs exactly zero. Otherwise (the paper's LeNet) the members.
    """

    def __init__(self, model: nn.Module, group: ChannelGroup) -> None:
        self.name, self.size = group.name, group.size
        filters, norms = [], []
        for layer, role in group.users:
            module = model.get_submodule(layer)
            if role in ("out", "group_out"):  # a grouped convolution's filters: rows too
                filters += [module.weight] + ([module.bias] if module.bias is not None else [])
            elif role == "norm" and module.affine:
                norms += [module.weight, module.bias]
        self.members = filters + norms
        if not filters or any(t.shape[0] != self.size for t in self.members):
            raise ValueError(f"SSR needs whole filters per channel in group {group.name!r}")
        self.penalised = norms if len(norms) >= 2 * len(group.producers) else self.members

    def matrix(self, members: bool = False) -> torch.Tensor:
        """(size, m): the penalised tensors (or all members) flattened per channel."""
        tensors = self.members if members else self.penalised
        return torch.cat([t.reshape(self.size, -1) for t in tensors], dim=1)

    def zero(self, channels: torch.Tensor) -> None:
        """Set every member of ``channels`` (a boolean mask) to exactly zero."""
        for t in self.members:
            t[channels] = 0


#: The AULM phase's training settings by default (the authors' LeNet-5 runs: SGD, momentum
#: 0.9, fixed lr 0.01, batch 256, weight decay 4e-5), over 10 epochs.
AULM_TRAINING = {"optimizer": "sgd", "lr": 0.01, "schedule": "constant", "epochs": 10,
                 "batch_size": 256, "weight_decay": 4e-5}
_TRAIN_KEYS = ("epochs", "batch_size", "lr", "weight_decay", "optimizer", "schedule", "loss",
               "device")


@PRUNERS.register(
    name="ssr", tags={"structured"},
    test_params={"lam": 0.3, "update_every": 2, "train": {"epochs": 3, "batch_size": 16}},
    bench_params={
        "mild": {"lam": 0.08, "update_every": 40,
                 "train": {"epochs": 3, "batch_size": 64, "lr": 1e-2}},
        "strong": {"lam": 0.1, "update_every": 40,
                   "train": {"epochs": 3, "batch_size": 64, "lr": 1e-2}},
    },
)
class SSR(Pruner):
    """SSR: group-sparsity regularisation of whole filters with AULM, then real removal.

    The objective is ``loss(W) + sum_g lam_g R(W_g)`` with one group per output channel (its
    filter and bias as in the paper; [INTERP] the affine parameters of its batch norm instead
    when one follows, as the paper's LeNet has none and a filter before a batch norm is
    scale-invariant) and ``R`` the l2,1 norm (sum of group norms) or the l2,0 "norm" (number
    of non-zero groups). AULM, a scaled ADMM, splits ``W = F``: every ``update_every`` steps
    ``F <- prox_{(lam/rho) R}(W + Y / rho)`` (:func:`group_prox`) and ``Y <- Y + rho (W - F)``,
    and in between SGD minimises ``loss(W) + (rho / 2) ||W - F + Y / rho||^2``. At the end the
    groups whose ``F`` is zero are set to exactly zero, filter, bias and batch norm (the
    authors' masks), batch-norm statistics are re-estimated on the training inputs, and every
    channel whose group is zero is removed (with real surgery; the authors only masked).

    SSR needs labelled training data: ``SSR(...)(model, x, data=(X, y))`` runs the AULM phase
    on a copy of ``model`` and then removes the channels (fine-tune the result afterwards).
    The data are checked before the model is traced or trained: floating-point inputs, a
    source that can be read more than once, and, with the default cross-entropy loss, class
    indices within the model's outputs (a ``ValueError`` then, with the model untouched).
    [INTERP]: all layers are regularised together; the authors' code trains one layer at a
    time. The report's ``details`` hold ``kept``, ``zeroed`` (``{group: [zeroed, size]}``),
    ``aulm_updates`` (F/Y updates made) and ``aulm_loss`` (mean loss per epoch).

    Parameters
    ----------
    lam : regularisation weight, > 0, or ``{group name: lam}`` (groups not named use
        ``default_lam``). The authors' LeNet-5 used 0.4 / 0.15 / 0.02 for conv1 / conv2 / fc1.
    default_lam : weight of the groups not named in a ``lam`` mapping.
    rho : ADMM penalty (1.0 as the authors).
    norm : ``"l21"`` or ``"l20"``.
    update_every : SGD steps between F/Y updates (200 as the authors, who made 40 updates per
        layer; fewer than 10 during training gives a warning: ADMM has not converged).
    train : settings of the AULM training (:func:`lightvision.training.fit` keywords among
        ``epochs``, ``batch_size``, ``lr``, ``weight_decay``, ``optimizer``, ``schedule``,
        ``loss`` (default cross-entropy) and ``device``), over :data:`AULM_TRAINING`.
    layers : which groups to regularise and prune (default ``"all"``: every prunable group,
        hidden linear layers included, as the authors prune fc1).
    random_state : seed of the batch order (and any other randomness) of the AULM training.

    References
    ----------
    S. Lin, R. Ji, Y. Li, C. Deng, X. Li, "Toward Compact ConvNets via Structure-Sparsity
    Regularized Filter Pruning", IEEE TNNLS 31:574-588, 2020 (seed #22).
    """

    needs_data = "labelled"

    def __init__(
        self,
        lam: float | Mapping[str, float] = 0.05,
        *,
        default_lam: float = 0.05,
        rho: float = 1.0,
        norm: str = "l21",
        update_every: int = 200,
        train: Mapping[str, Any] | None = None,
        layers="all",
        random_state: Any = 0,
    ) -> None:
        super().__init__(layers=layers)
        if isinstance(lam, Mapping):
            wrong = [k for k in lam if not isinstance(k, str)]
            if wrong:
                raise TypeError(f"lam's keys must be group names (str), got {wrong}")
            self.lam = {k: check_real(v, f"lam[{k!r}]") for k, v in lam.items()}
        else:
            self.lam = check_real(lam, "lam")
        self.default_lam = check_real(default_lam, "default_lam")
        self.rho = check_real(rho, "rho")
        if norm not in _NORMS:
            raise ValueError(f"norm must be one of {_NORMS}, got {norm!r}")
        self.norm = norm
        self.update_every = check_int(update_every, "update_every")
        if train is not None and not isinstance(train, Mapping):
            raise TypeError(f"train must be a mapping of fit settings, got {type(train).__name__}")
        unknown = sorted(set(train or {}) - set(_TRAIN_KEYS))
        if unknown:
            raise ValueError(f"train has unknown settings {unknown}; known: {list(_TRAIN_KEYS)}")
        self.train = dict(train or {})
        self.random_state = check_random_state(random_state)

    def unsupported(self, model: nn.Module, group: ChannelGroup) -> str | None:
        with torch.no_grad():
            try:
                _Group(model, group)
            except ValueError as error:
                return str(error)
        return None

    def _compress(self, model: nn.Module, example_inputs: tuple[torch.Tensor, ...],
                  data: Any) -> tuple[nn.Module, dict[str, Any]]:
        check_finite_weights(model)
        self._check_data(model, example_inputs, data)
        groups = self.target_groups(model, channel_groups(model, example_inputs))
        _, aulm = self._aulm(model, groups, data)
        pruned, details = super()._compress(model, example_inputs, None)
        return pruned, {**details, **aulm}

    def _check_data(self, model: nn.Module, example_inputs: tuple[torch.Tensor, ...],
                    data: Any) -> None:
        """Check ``data`` (:class:`~lightvision.training.Batches`) before the model is traced
        or trained: re-readable, floating-point inputs (every batch is checked as it is read)
        with the number of dimensions and channels of ``example_inputs`` and, for the default
        cross-entropy loss, targets the model's outputs can score: class indices in [0, C) or
        probabilities shaped like the outputs, C read from an eval-mode forward pass on
        ``example_inputs`` (the model is left as it was)."""
        if data.one_shot:
            raise TypeError("data is a one-shot iterator, but SSR reads it more than once (the "
                            "AULM epochs, then the batch-norm re-estimation): pass a list of "
                            "batches or a DataLoader")
        example = example_inputs[0] if len(example_inputs) == 1 else None

        def check_inputs(x: torch.Tensor, where: str) -> None:
            if example is not None and (x.ndim != example.ndim or (
                    x.ndim > 1 and x.shape[1] != example.shape[1])):
                raise ValueError(
                    f"{where} inputs have shape {tuple(x.shape)} but example_inputs "
                    f"{tuple(example.shape)}: data must match example_inputs in the number of "
                    "dimensions and channels (axis 1)")

        def where(i: int) -> str:
            return "data's" if data.tensors is not None else f"data batch {i}"

        if self.train.get("loss") is not None:  # the caller's loss judges its own targets
            first = next(iter(data), None)  # the first batch is checked (inputs floating, finite)
            if first is not None:
                check_inputs(first[0], where(0))
            return
        targets = []
        for i, (x, y) in enumerate([data.tensors] if data.tensors is not None else data):
            check_inputs(x, where(i))
            targets.append(y)
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                output = model(*example_inputs)
        finally:
            model.train(was_training)
        if not isinstance(output, torch.Tensor) or output.ndim < 2:
            return
        classes = output.shape[1]
        for i, y in enumerate(targets):
            if y.is_floating_point():
                if tuple(y.shape[1:]) != tuple(output.shape[1:]):
                    raise ValueError(
                        f"{where(i)} targets are real numbers of shape {tuple(y.shape)}: "
                        f"cross-entropy needs class indices, or probabilities of shape "
                        f"(n, {classes})")
            elif y.numel() and (int(y.min()) < 0 or int(y.max()) >= classes):
                raise ValueError(
                    f"{where(i)} targets range over [{int(y.min())}, {int(y.max())}], but the "
                    f"model has {classes} outputs: cross-entropy needs class indices in "
                    f"[0, {classes})")

    def regularize(self, model: nn.Module, X: Any, y: Any, example_inputs: Any = None,
                   **fit_kwargs: Any) -> Any:
        """Deprecated: the AULM phase runs inside the call, ``ssr(model, x, data=(X, y))``,
        on a copy. This trains ``model`` in place as before (``fit_kwargs`` over ``train``,
        ``random_state`` included), sets ``self.zero_groups_`` and returns the
        :class:`~lightvision.training.History`; the deprecated :meth:`prune` then removes the
        zeroed channels."""
        from ...metrics._validation import check_inputs
        from ...training import as_batches

        warnings.warn("SSR.regularize is deprecated: call ssr(model, x, data=(X, y)), which "
                      "trains a copy and prunes it", DeprecationWarning, stacklevel=2)
        example = example_inputs if example_inputs is not None else torch.as_tensor(X[:2])
        fit_kwargs.pop("progress", None)
        config = {**self.get_config(), "train": {**self.train, **fit_kwargs}}
        config["random_state"] = config["train"].pop("random_state", self.random_state)
        method = SSR(**config)
        data = as_batches((X, y), labelled=True)
        method._check_data(model, check_inputs(example), data)
        groups = method.target_groups(model, channel_groups(model, example))
        history, details = method._aulm(model, groups, data)
        self.zero_groups_ = {k: tuple(v) for k, v in details["zeroed"].items()}
        return history

    def prune(self, model: nn.Module, example_inputs: Any, *,
              inplace: bool = False) -> tuple[nn.Module, Any]:
        """Deprecated: removes, without training, the channels whose groups are already zero
        (after :meth:`regularize`); call ``ssr(model, x, data=(X, y))`` instead."""
        warnings.warn("SSR.prune is deprecated: call ssr(model, x, data=(X, y))",
                      DeprecationWarning, stacklevel=2)
        return _ZeroGroupRemoval(**self.get_config())(model, example_inputs, inplace=inplace)

    def _aulm(self, model: nn.Module, groups: list[ChannelGroup],
              data: Any) -> tuple[Any, dict[str, Any]]:
        """Train ``model`` in place with the AULM-regularised loss, zero the groups whose
        ``F`` is zero and re-estimate the batch-norm statistics; return the training history
        and the report details."""
        from torch.optim.swa_utils import update_bn

        from ...training import as_batches, fit
        from ...training.loop import _to

        with torch.no_grad():
            params = [_Group(model, g) for g in groups]
        lams = (per_group(self.lam, self.default_lam, groups, "lam")
                if isinstance(self.lam, dict) else [self.lam] * len(groups))
        thresholds = [lam / self.rho for lam in lams]
        state = {"step": 0, "F": [None] * len(params), "Y": [None] * len(params)}
        settings = {**AULM_TRAINING, **self.train}
        loss_fn = settings.pop("loss", None) or F.cross_entropy

        def update() -> None:
            with torch.no_grad():
                for i, group in enumerate(params):
                    w = group.matrix()
                    y_i = state["Y"][i] if state["Y"][i] is not None else torch.zeros_like(w)
                    state["F"][i] = group_prox(w + y_i / self.rho, thresholds[i], self.norm)
                    state["Y"][i] = y_i + self.rho * (w - state["F"][i])

        def task(net: nn.Module, x: torch.Tensor, target: torch.Tensor) -> dict:
            if net.training:
                state["step"] += 1
                if state["step"] % self.update_every == 0:
                    update()
            output = net(x)
            task_loss = loss_fn(output, target)
            penalty = sum(
                (group.matrix() - state["F"][i] + state["Y"][i] / self.rho).square().sum()
                for i, group in enumerate(params)) * (self.rho / 2)
            return {"loss": task_loss + penalty, "output": output, "task_loss": task_loss,
                    "admm_penalty": penalty}

        update()  # F and Y from the trained weights (Y starts at 0)
        try:
            history = fit(model, data, task=task, progress=False,
                          random_state=self.random_state, **settings)
        except FloatingPointError as error:
            raise FloatingPointError(f"SSR's AULM training: {error}; for SSR, lower train['lr'], "
                                     "rho or lam, or check data") from None
        updates = state["step"] // self.update_every
        if updates < 10:
            warnings.warn(f"AULM made {updates} F/Y updates during {state['step']} training "
                          f"steps (update_every={self.update_every}); ADMM needs more to "
                          "converge: train longer or lower update_every", RuntimeWarning,
                          stacklevel=4)
        update()
        zeroed = {}
        with torch.no_grad():
            for group, f in zip(params, state["F"], strict=True):
                zero = f.norm(dim=1) == 0
                group.zero(zero)
                zeroed[group.name] = (int(zero.sum()), group.size)
        # the statistics lag behind the shrinking parameters; re-estimate them, on inputs cast
        # to the model's device and floating dtype as fit casts them
        device, dtype = next(model.parameters()).device, floating_dtype(model)
        update_bn((_to(x, device, dtype) for x, _ in as_batches(
            data, labelled=False, batch_size=settings["batch_size"])), model)
        bad = non_finite_tensor(model)
        if bad is not None:
            raise ValueError(f"SSR's AULM training diverged: the trained model has NaN or "
                             f"infinite values in {bad!r}; lower train['lr'], rho or lam, or "
                             "check data for huge values")
        return history, {"zeroed": zeroed, "aulm_updates": updates,
                         "aulm_loss": [epoch["loss"] for epoch in history.epochs]}

    def select(self, model: nn.Module, groups: list[ChannelGroup]) -> dict[str, Selection]:
        selections = {}
        for group in groups:
            with torch.no_grad():
                norms = _Group(model, group).matrix(members=True).norm(dim=1)
            divisions = group.divisions
            # the most non-zero channels of any division, in every division: no non-zero
            # channel is removed, so the removal still changes nothing
            per = int((norms > 0).reshape(divisions, -1).sum(1).max())
            if per == 0:
                warnings.warn(f"SSR zeroed every channel of {group.name!r}; keeping its "
                              "strongest one (lower lam for this layer)", RuntimeWarning,
                              stacklevel=5)
            selections[group.name] = Selection(keep_per_division(norms, per, divisions))
        return selections


class _ZeroGroupRemoval(SSR):
    """SSR's removal step alone, for the deprecated two-step API (``regularize``, ``prune``)."""

    needs_data = None

    @property
    def name(self) -> str:
        return "ssr"

    def _compress(self, model: nn.Module, example_inputs: tuple[torch.Tensor, ...],
                  data: Any) -> tuple[nn.Module, dict[str, Any]]:
        return Pruner._compress(self, model, example_inputs, None)
