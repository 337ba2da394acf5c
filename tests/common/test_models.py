"""Checks run over every registered model (timm's test-all-models pattern).

A model joins these checks by being registered with ``test_params`` (tiny constructor
arguments) and ``input_shape`` (C, H, W) in :data:`lightvision.registry.MODELS`; a model on
multichannel 1-d signals (e.g. sEMG windows) registers ``input="signals"`` and
``input_shape=(C, L)`` instead.
"""

from __future__ import annotations

import io
import pickle

import pytest
import torch

import lightvision
from lightvision.metrics import count_params, profile
from lightvision.models import Classifier
from lightvision.registry import MODELS

ENTRIES = MODELS.entries()
IDS = [e.name for e in ENTRIES]


def _build(entry, seed=0):
    torch.manual_seed(seed)
    return lightvision.create_model(entry.name, **entry.test_params)


def _batch(entry, n=2, seed=1):
    return torch.randn(n, *entry.meta["input_shape"], generator=torch.Generator().manual_seed(seed))


def _signals(entry):
    return entry.meta.get("input") == "signals"


def test_registry_is_not_empty():
    assert IDS, "no model registered"


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_metadata(entry):
    shape = entry.meta.get("input_shape")
    if _signals(entry):
        assert isinstance(shape, tuple) and len(shape) == 2, "register input_shape=(C, L)"
    else:
        assert isinstance(shape, tuple) and len(shape) == 3, "register input_shape=(C, H, W)"
    model = _build(entry)
    assert isinstance(model, Classifier)
    assert model.in_channels == shape[0]


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_forward_shapes(entry):
    model = _build(entry).eval()
    x = _batch(entry)
    logits = model(x)
    features = model.forward_features(x)
    assert logits.shape == (2, model.num_classes)
    assert features.shape == (2, model.num_features)
    assert torch.isfinite(logits).all()
    torch.testing.assert_close(model.forward_head(features), logits)


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_gradients_reach_every_trainable_parameter(entry):
    model = _build(entry).train()
    model(_batch(entry, n=4)).logsumexp(dim=1).sum().backward()
    missing = [n for n, p in model.named_parameters()
               if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)]
    assert not missing, f"no gradient reaches {missing}"


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_deterministic_under_seed(entry):
    a, b, c = _build(entry, seed=0), _build(entry, seed=0), _build(entry, seed=1)
    x = _batch(entry)
    torch.testing.assert_close(a.eval()(x), b.eval()(x), rtol=0, atol=0)
    assert not torch.equal(a(x), c.eval()(x)), "the seed has no effect on initialisation"


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_state_dict_and_pickle_round_trip(entry):
    model = _build(entry, seed=0).eval()
    x = _batch(entry)
    expected = model(x)
    fresh = _build(entry, seed=1).eval()
    fresh.load_state_dict(model.state_dict())
    torch.testing.assert_close(fresh(x), expected, rtol=0, atol=0)
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    torch.testing.assert_close(torch.load(buffer, weights_only=False)(x), expected, rtol=0, atol=0)
    torch.testing.assert_close(pickle.loads(pickle.dumps(model))(x), expected, rtol=0, atol=0)


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_bad_input_raises_clear_errors(entry):
    model = _build(entry).eval()
    if _signals(entry):
        c, length = entry.meta["input_shape"]
        with pytest.raises(ValueError, match="channels"):
            model(torch.randn(1, c + 1, length))
        with pytest.raises(ValueError, match="shape"):
            model(torch.randn(c, length))
        with pytest.raises(ValueError, match="window"):
            model(torch.randn(1, c, model.min_size - 1))
        with pytest.raises(TypeError, match="floating"):
            model(torch.zeros(1, c, length, dtype=torch.uint8))
        return
    c, h, w = entry.meta["input_shape"]
    with pytest.raises(ValueError, match="channels"):
        model(torch.randn(1, c + 1, h, w))
    with pytest.raises(ValueError, match="shape"):
        model(torch.randn(c, h, w))
    with pytest.raises(ValueError, match="pixels"):
        model(torch.randn(1, c, model.min_size - 1 or 0, w))
    with pytest.raises(TypeError, match="floating"):
        model(torch.zeros(1, c, h, w, dtype=torch.uint8))


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_profile_runs_and_leaves_model_untouched(entry):
    model = _build(entry).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = profile(model, _batch(entry, n=1), timing=False)
    counts = count_params(model)
    assert report.trainable_params == counts.trainable > 0
    assert report.macs > 0 and report.model_bytes > 0
    assert model.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), f"profile changed {key}"


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_bench_params_build(entry):
    model = lightvision.create_model(entry.name, **entry.bench_params)
    assert isinstance(model, Classifier)


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_intermediate_feature_maps_of_the_named_stages(entry):
    model = _build(entry).eval()
    stages = model.feature_stages
    assert isinstance(stages, tuple) and stages, "register the stages in feature_stages"
    modules = dict(model.named_modules())
    assert all(name in modules for name in stages), stages
    x = _batch(entry)
    logits, maps = model.forward_intermediates(x)
    torch.testing.assert_close(logits, model(x), rtol=0, atol=0)
    assert list(maps) == list(stages)
    order = [name for name, _ in model.named_modules() if name in maps]
    assert order == list(stages), "feature_stages must run from the input to the output"
    for name, value in maps.items():
        assert value.ndim >= 3 and torch.isfinite(value).all(), name
    assert not any(m._forward_hooks for m in model.modules()), "hooks left behind"
    one = model.forward_intermediates(x, stages=stages[-1:])[1]
    assert list(one) == [stages[-1]] and torch.equal(one[stages[-1]], maps[stages[-1]])
    model.train()
    _, maps = model.forward_intermediates(_batch(entry, n=4))
    maps[stages[0]].square().mean().backward()
    first = next(p for p in model.parameters() if p.requires_grad)
    assert first.grad is not None and first.grad.abs().sum() > 0, "no gradient from the maps"
    with pytest.raises(KeyError, match="no submodules"):
        model.forward_intermediates(x, stages=["no_such_stage"])


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_empty_batch_gives_an_empty_output(entry):
    """N = 0 in eval mode: (0, num_classes) logits and (0, num_features) features, as torch's
    layers give, not a backend error (semg_cnn's STFT raised an MKL error)."""
    model = _build(entry).eval()
    x = _batch(entry, n=0)
    with torch.no_grad():
        assert model(x).shape == (0, model.num_classes)
        assert model.forward_features(x).shape == (0, model.num_features)


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_input_of_another_float_dtype_raises_a_clear_type_error(entry):
    model = _build(entry).eval()
    x = _batch(entry).double()
    with pytest.raises(TypeError, match="x is torch.float64 but the model's weights are "
                                        "torch.float32"):
        model(x)
    with torch.no_grad():
        assert model.double()(x).dtype == torch.float64


@pytest.mark.parametrize("value", [float("nan"), float("inf")], ids=["nan", "inf"])
@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_non_finite_or_missing_input_raises_a_clear_error(entry, value):
    model = _build(entry).eval()
    x = _batch(entry)
    x.view(-1)[0] = value
    with pytest.raises(ValueError, match="x contains NaN or infinite"):
        model(x)
    with pytest.raises(TypeError, match="x must be a torch.Tensor, got NoneType"):
        model(None)
