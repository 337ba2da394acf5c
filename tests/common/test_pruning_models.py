"""Every registered model against every registered pruner: pruning (with the pruner's tiny
``test_params``) works and keeps the output shape, or the model declares up front which of its
channel groups are blocked and why, and the pruner refuses with a ``ValueError`` naming them.
Every registered model must be traceable by ``torch.fx``."""

from __future__ import annotations

import functools
import warnings

import pytest
import torch

import lightvision
from lightvision.compression.pruning import channel_groups
from lightvision.registry import MODELS, PRUNERS

MODEL_ENTRIES = MODELS.entries()
PRUNER_ENTRIES = PRUNERS.entries()


def _pruner(entry):
    params = dict(entry.test_params)
    if "train" in params:  # SSR: one short epoch is enough to exercise the surgery
        params["train"] = {**params["train"], "epochs": 1}
    return entry.create(**params)


@functools.cache
def _setup(name):
    """(model, example inputs, labelled data, its channel groups), built once per model: the
    pruners do not change their input."""
    entry = MODELS.get(name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = lightvision.create_model(name, **entry.test_params).eval()
    generator = torch.Generator().manual_seed(1)
    shape = entry.meta["input_shape"]
    X = torch.randn(8, *shape, generator=generator)
    y = torch.randint(0, max(2, model.num_classes), (8,), generator=generator)
    data = (X, y % model.num_classes if model.num_classes > 1 else y * 0)
    return model, X[:2], data, channel_groups(model, X[:2])


@pytest.mark.parametrize("pruner", PRUNER_ENTRIES, ids=[e.name for e in PRUNER_ENTRIES])
@pytest.mark.parametrize("entry", MODEL_ENTRIES, ids=[e.name for e in MODEL_ENTRIES])
def test_every_model_prunes_or_declares_its_blockers(entry, pruner):
    model, x, data, groups = _setup(entry.name)
    method = _pruner(pruner)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # one epoch of SSR: short training
        try:
            method.target_groups(model, groups)
        except ValueError as error:  # refused up front: every group is named with its reason
            message = str(error)
            assert all(g.name in message for g in groups), message
            assert all(b in message for g in groups for b in g.blockers), message
            with pytest.raises(ValueError, match="no prunable layer"):
                method(model, x, data=data)
            return
        small, report = method(model, x, data=data)
    with torch.no_grad():
        assert small.eval()(x).shape == model(x).shape
    if method.needs_data is None:  # data-free pruners remove their ratio of channels
        assert report.params[1] < report.params[0]
    else:  # SSR removes the channels its (here one-epoch) training drove to zero
        assert report.params[1] <= report.params[0]
