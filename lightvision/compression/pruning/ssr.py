"""SSR (Lin et al., seed #22): structured-sparsity regularisation solved with AULM, then the
zeroed filters are removed for real."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..._checks import check_int, check_real
from ...registry import PRUNERS
from .base import Pruner, Selection, per_group
from .surgery import ChannelGroup, channel_groups

__all__ = ["SSR", "group_prox"]

_NORMS = ("l21", "l20")


def group_prox(u: torch.Tensor, threshold: float, norm: str = "l21") -> torch.Tensor:
    """Proximal operator of ``threshold * R`` on the rows of ``u`` (one row per group).

    ``"l21"`` (R = sum of row norms): group soft-thresholding,
    ``u_i * max(||u_i|| - threshold, 0) / ||u_i||``. ``"l20"`` (R = number of non-zero rows):
    group hard-thresholding, ``u_i * [||u_i||^2 > 2 threshold]``. Rows that end at zero are
    exactly zero.

    >>> u = torch.tensor([[3.0, 4.0], [0.3, 0.4]])
    >>> group_prox(u, 1.0)
    tensor([[2.4000, 3.2000],
            [0.0000, 0.0000]])
    >>> group_prox(u, 1.0, "l20")
    tensor([[3., 4.],
            [0., 0.]])
    """
    norms = u.norm(dim=1, keepdim=True)
    if norm == "l21":
        return u * (norms - threshold).clamp_min(0) / norms.clamp_min(torch.finfo(u.dtype).tiny)
    if norm == "l20":
        return u * (norms.square() > 2 * threshold)
    raise ValueError(f"norm must be one of {_NORMS}, got {norm!r}")


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
            if role == "out":
                filters += [module.weight] + ([module.bias] if module.bias is not None else [])
            elif role == "norm" and module.affine:
                norms += [module.weight, module.bias]
        self.members = filters + norms
        if any(t.shape[0] != self.size for t in self.members):
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


@PRUNERS.register(name="ssr", tags={"requires_data", "structured"}, test_params={"lam": 0.1},
                  bench_params={"lam": 0.05})
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
    authors' masks), batch-norm statistics are re-estimated on the training data, and
    :meth:`prune` removes every channel whose group is zero (with real surgery; the authors
    only masked).

    Use :meth:`regularize` on training data, then :meth:`prune` (and fine-tune). [INTERP]: all
    layers are regularised together; the authors' code trains one layer at a time.

    Parameters
    ----------
    lam : regularisation weight, > 0, or ``{group name: lam}`` (groups not named use
        ``default_lam``). The authors' LeNet-5 used 0.4 / 0.15 / 0.02 for conv1 / conv2 / fc1.
    default_lam : weight of the groups not named in a ``lam`` mapping.
    rho : ADMM penalty (1.0 as the authors).
    norm : ``"l21"`` or ``"l20"``.
    update_every : SGD steps between F/Y updates (200 as the authors, who made 40 updates per
        layer; fewer than 10 during training gives a warning: ADMM has not converged).
    layers : which groups to regularise and prune (default ``"all"``: every prunable group,
        hidden linear layers included, as the authors prune fc1).

    References
    ----------
    S. Lin, R. Ji, Y. Li, C. Deng, X. Li, "Toward Compact ConvNets via Structure-Sparsity
    Regularized Filter Pruning", IEEE TNNLS 31:574-588, 2020 (seed #22).
    """

    method = "ssr"

    def __init__(
        self,
        lam: float | Mapping[str, float] = 0.05,
        *,
        default_lam: float = 0.05,
        rho: float = 1.0,
        norm: str = "l21",
        update_every: int = 200,
        layers="all",
    ) -> None:
        super().__init__(layers=layers)
        if isinstance(lam, Mapping):
            self.lam = {k: check_real(v, f"lam[{k!r}]") for k, v in lam.items()}
        else:
            self.lam = check_real(lam, "lam")
        self.default_lam = check_real(default_lam, "default_lam")
        self.rho = check_real(rho, "rho")
        if norm not in _NORMS:
            raise ValueError(f"norm must be one of {_NORMS}, got {norm!r}")
        self.norm = norm
        self.update_every = check_int(update_every, "update_every")

    def regularize(self, model: nn.Module, X: Any, y: Any, example_inputs: Any = None,
                   **fit_kwargs: Any) -> Any:
        """Train ``model`` in place with the AULM-regularised loss, then zero the groups whose
        ``F`` is zero. ``fit_kwargs`` go to :func:`lightvision.training.fit` (default: SGD,
        lr 0.01, constant schedule, 10 epochs, batch 256, weight decay 4e-5, as the authors);
        ``example_inputs`` default to the first two training inputs. Returns the
        :class:`~lightvision.training.History`; ``self.zero_groups_`` lists
        ``{group name: (zeroed, size)}``."""
        from torch.optim.swa_utils import update_bn
        from torch.utils.data import DataLoader, TensorDataset

        from ...training import fit

        example = example_inputs if example_inputs is not None else torch.as_tensor(X[:2])
        groups = self.target_groups(model, channel_groups(model, example))
        with torch.no_grad():
            params = [_Group(model, g) for g in groups]
        lams = (per_group(self.lam, self.default_lam, groups, "lam")
                if isinstance(self.lam, dict) else [self.lam] * len(groups))
        thresholds = [lam / self.rho for lam in lams]
        state = {"step": 0, "F": [None] * len(params), "Y": [None] * len(params)}
        loss_fn = fit_kwargs.pop("loss", None) or F.cross_entropy

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
        settings = {"optimizer": "sgd", "lr": 0.01, "schedule": "constant", "epochs": 10,
                    "batch_size": 256, "weight_decay": 4e-5, "progress": False, **fit_kwargs}
        history = fit(model, X, y, task=task, **settings)
        if state["step"] // self.update_every < 10:
            warnings.warn(f"AULM made {state['step'] // self.update_every} F/Y updates during "
                          f"{state['step']} training steps (update_every={self.update_every}); "
                          "ADMM needs more to converge: train longer or lower update_every",
                          RuntimeWarning, stacklevel=2)
        update()
        self.zero_groups_ = {}
        with torch.no_grad():
            for group, f in zip(params, state["F"], strict=True):
                zero = f.norm(dim=1) == 0
                group.zero(zero)
                self.zero_groups_[group.name] = (int(zero.sum()), group.size)
        # the statistics lag behind the shrinking parameters; re-estimate them
        inputs = TensorDataset(torch.as_tensor(X))
        update_bn(DataLoader(inputs, batch_size=settings["batch_size"]), model)
        return history

    def select(self, model: nn.Module, groups: list[ChannelGroup]) -> dict[str, Selection]:
        selections = {}
        for group in groups:
            with torch.no_grad():
                norms = _Group(model, group).matrix(members=True).norm(dim=1)
            keep = torch.nonzero(norms > 0).flatten()
            if keep.numel() == 0:
                warnings.warn(f"SSR zeroed every channel of {group.name!r}; keeping its "
                              "strongest one (lower lam for this layer)", RuntimeWarning,
                              stacklevel=3)
                keep = norms.argmax().reshape(1)
            selections[group.name] = Selection(keep)
        return selections
