"""Checks run over every registered loss (:data:`lightvision.registry.LOSSES`).

A loss joins these checks by being registered with ``test_input_shape`` (the shape of both
inputs), ``min_rows`` (the smallest batch it takes) and ``zero_on_equal`` (whether
``loss(a, a) == 0``); ``test_params`` are its keyword arguments here.
"""

from __future__ import annotations

import inspect

import pytest
import torch

from lightvision.registry import LOSSES

ENTRIES = LOSSES.entries()
IDS = [entry.name for entry in ENTRIES]


def _pair(entry, seed=0, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    shape = entry.meta["test_input_shape"]
    a = torch.randn(*shape, generator=generator, dtype=dtype)
    b = 1.5 * torch.randn(*shape, generator=generator, dtype=dtype) + 0.5
    return a, b


def _loss(entry, a, b):
    return entry.obj(a, b, **entry.test_params)


def test_registry_is_not_empty():
    assert IDS, "no loss registered"


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_metadata(entry):
    assert isinstance(entry.meta.get("test_input_shape"), tuple)
    assert isinstance(entry.meta.get("min_rows"), int) and entry.meta["min_rows"] >= 1
    assert isinstance(entry.meta.get("zero_on_equal"), bool)


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_scalar_finite_and_inputs_untouched(entry):
    a, b = _pair(entry)
    a_copy, b_copy = a.clone(), b.clone()
    value = _loss(entry, a, b)
    assert isinstance(value, torch.Tensor) and value.shape == () and value.dtype == a.dtype
    assert torch.isfinite(value) and float(value) > 0
    assert torch.equal(a, a_copy) and torch.equal(b, b_copy)


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_zero_where_the_inputs_are_equal(entry):
    if not entry.meta["zero_on_equal"]:
        pytest.skip(f"{entry.name} is not zero on equal inputs (registered zero_on_equal=False)")
    a, _ = _pair(entry)
    assert abs(float(_loss(entry, a, a.clone()))) < 1e-10


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_gradients_reach_both_inputs(entry):
    a, b = (t.float().requires_grad_() for t in _pair(entry))
    _loss(entry, a, b).backward()
    for name, t in (("first", a), ("second", b)):
        assert t.grad is not None and torch.isfinite(t.grad).all(), name
        assert t.grad.abs().sum() > 0, f"no gradient reaches the {name} input"


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_shapes_and_values_checked(entry):
    a, b = _pair(entry)
    with pytest.raises(ValueError):  # a different feature size
        _loss(entry, a, torch.cat([b, b[:, :1]], dim=1))
    with pytest.raises(ValueError):  # no batch axis
        _loss(entry, a[0], b[0])
    with pytest.raises(ValueError, match="NaN"):
        _loss(entry, torch.full_like(a, float("nan")), b)
    with pytest.raises(TypeError):
        _loss(entry, a.numpy(), b)
    with pytest.raises(TypeError):
        _loss(entry, a.long(), b.long())
    with pytest.raises(ValueError):
        _loss(entry, a[: entry.meta["min_rows"] - 1], b)


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_huge_features_give_a_finite_value_or_a_named_error(entry):
    """float32 features of about 1e30 (their squares overflow): a finite loss, or a
    ``ValueError`` saying that the loss itself overflows; never a silent NaN or inf."""
    a, b = (t.float() * 1e30 for t in _pair(entry))
    try:
        value = _loss(entry, a, b)
    except ValueError as error:
        assert "overflows" in str(error), error
    else:
        assert torch.isfinite(value), value


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
@pytest.mark.parametrize("bad", [float("inf"), -float("inf"), float("nan")])
def test_one_non_finite_value_is_named(entry, bad):
    """A single NaN or inf in either input raises a ``ValueError`` naming that argument."""
    first, second = list(inspect.signature(entry.obj).parameters)[:2]
    a, b = _pair(entry)
    for name, (x, y) in ((first, (a.clone(), b)), (second, (a, b.clone()))):
        (x if name == first else y)[-1, -1] = bad
        with pytest.raises(ValueError, match=f"{name} contains NaN or infinite"):
            _loss(entry, x, y)
