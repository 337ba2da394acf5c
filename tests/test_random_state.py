"""No public function changes the caller's random streams (issue 14, item 4).

Every function that draws from torch's global generators (dropout, weight initialisation, a
``DataLoader``'s order) runs them inside :func:`lightvision._rng.seeded`; these checks call
each such entry point, registry-driven where a registry exists (every compression method of
:data:`~lightvision.registry.COMPRESSION_REGISTRIES`, every loss), and compare torch's CPU
generator, every CUDA generator (when CUDA is available), numpy's and Python's global
generators before and after.
"""

from __future__ import annotations

import random
import warnings

import numpy as np
import pytest
import torch

import lightvision
from lightvision._rng import seeded
from lightvision.adaptation import fit_domain_adaptation
from lightvision.adaptation.semg import run_semg_method
from lightvision.datasets import make_semg
from lightvision.models import SEMGNet
from lightvision.registry import COMPRESSION_REGISTRIES, LOSSES
from lightvision.training import fit

CUDA = torch.cuda.is_available()
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not CUDA, reason="no CUDA"))]
COMPRESSION = [entry for registry in COMPRESSION_REGISTRIES for entry in registry.entries()]
TINY_SEMG = {"widths": (4, 8), "feature_dim": 8}


def _pending_cuda() -> tuple[object, ...]:
    """The seedings torch queues for a CUDA not started yet (``torch.manual_seed`` queues one
    even without CUDA; it runs when CUDA starts and sets the caller's CUDA streams then).
    Private torch API, read only; () where this torch has none."""
    tracker = getattr(torch.cuda, "_lazy_seed_tracker", None)
    if tracker is None or torch.cuda.is_initialized():
        return ()
    return tuple(None if call is None else call[0] for call in tracker.get_calls())


def _states() -> dict[str, object]:
    states = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),  # noqa: NPY002
              "python": random.getstate(), "pending_cuda": _pending_cuda()}
    if CUDA:
        states["cuda"] = torch.cuda.get_rng_state_all()  # starts CUDA: its states are forked
    return states


def _assert_unchanged(before: dict[str, object], what: str) -> None:
    after = _states()
    assert torch.equal(after["torch"], before["torch"]), f"{what} changed torch's CPU RNG"
    kind, keys, pos, *rest = after["numpy"]
    assert (kind, pos, *rest) == (before["numpy"][0], *before["numpy"][2:]) and \
        np.array_equal(keys, before["numpy"][1]), f"{what} changed numpy's global RNG"
    assert after["python"] == before["python"], f"{what} changed Python's random"
    assert after["pending_cuda"] == before["pending_cuda"], \
        f"{what} queued a seeding of CUDA (as torch.manual_seed does)"
    if CUDA:
        assert all(torch.equal(a, b) for a, b in zip(after["cuda"], before["cuda"], strict=True)), \
            f"{what} changed a CUDA RNG"


def _classifier() -> torch.nn.Module:
    with seeded(0):  # dropout > 0: fit draws from torch's global generator
        return lightvision.create_model("small_cnn", widths=(4, 8), dropout=0.5)


@pytest.fixture(scope="module")
def recordings():
    return make_semg(2, duration_s=4.0, random_state=0)


def test_seeded_restores_and_reproduces():
    before = _states()
    with seeded(5):
        a = torch.rand(4)
    with seeded(5):
        b = torch.rand(4)
    with seeded(None):  # not seeded: draws on from the caller's state, which is restored
        c = torch.rand(4)
    _assert_unchanged(before, "seeded")
    assert torch.equal(a, b) and torch.equal(c, torch.rand(4))


@pytest.mark.parametrize("device", DEVICES)
def test_fit(device):
    g = torch.Generator().manual_seed(0)
    X, y = torch.rand(48, 1, 12, 12, generator=g), torch.randint(0, 10, (48,), generator=g)
    models = [_classifier(), _classifier()]
    before = _states()
    for model in models:
        fit(model, X, y, epochs=1, batch_size=16, progress=False, device=device, random_state=3)
    _assert_unchanged(before, "fit")
    for a, b in zip(models[0].state_dict().values(), models[1].state_dict().values(),
                    strict=True):  # the same dropout masks, drawn from the seeded generators
        if device == "cpu":
            assert torch.equal(a, b)
        else:  # cuDNN's backward may sum in any order; other dropout masks differ by far more
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("discrepancy", LOSSES.list(tags={"discrepancy"}))
def test_domain_adaptation_task(discrepancy, device):
    g = torch.Generator().manual_seed(0)
    with seeded(0):
        model = SEMGNet(in_channels=2, window=160, **TINY_SEMG)
    Xs, Xt = torch.randn(24, 2, 160, generator=g), torch.randn(6, 2, 160, generator=g)
    before = _states()
    fit_domain_adaptation(model, Xs, torch.randn(24, 1, generator=g), Xt,
                          torch.randn(6, 1, generator=g), discrepancy=discrepancy, epochs=1,
                          batch_size=8, progress=False, device=device)
    _assert_unchanged(before, f"fit_domain_adaptation(discrepancy={discrepancy!r})")


def test_run_semg_method(recordings):
    before = _states()
    run_semg_method("sda", recordings, 0, 1, target_s=1.5, test_s=2.0, epochs=1,
                    model_kwargs=TINY_SEMG, random_state=1)
    _assert_unchanged(before, "run_semg_method")


@pytest.mark.parametrize("entry", COMPRESSION, ids=[entry.name for entry in COMPRESSION])
def test_compression_methods(entry):
    model = _classifier().eval()
    g = torch.Generator().manual_seed(1)
    X, y = torch.rand(32, 1, 16, 16, generator=g), torch.randint(0, 10, (32,), generator=g)
    before = _states()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # tiny configs: short training
        entry.create(**entry.test_params)(model, X[:2], data=(X, y))
    _assert_unchanged(before, entry.name)


def test_prune_l1():
    model = lightvision.create_model("small_cnn")
    before = _states()
    lightvision.prune(model, torch.randn(1, 1, 28, 28, generator=torch.Generator()), method="l1",
                      ratio=0.3)
    _assert_unchanged(before, "prune(method='l1')")


@pytest.mark.parametrize("entry", LOSSES.entries(), ids=LOSSES.list())
def test_losses(entry):
    g = torch.Generator().manual_seed(0)
    a, b = (torch.randn(*entry.meta["test_input_shape"], generator=g) for _ in range(2))
    before = _states()
    entry.obj(a, b, **entry.test_params)
    _assert_unchanged(before, entry.name)
