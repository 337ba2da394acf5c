"""Checks run over every registered block (:data:`lightvision.registry.BLOCKS`).

A block joins these checks by being registered with tiny ``test_params`` and a
``test_input_shape`` (C, H, W) (else ``input_shape``): it takes (N, C, H, W) tensors.
"""

from __future__ import annotations

import re

import pytest
import torch

from lightvision.registry import BLOCKS

ENTRIES = BLOCKS.entries()
IDS = [e.name for e in ENTRIES]


def _make(entry, seed=0):
    torch.manual_seed(seed)
    return entry.create(**entry.test_params)


def _input(entry, batch=2, seed=0):
    shape = entry.meta.get("test_input_shape", entry.meta.get("input_shape"))
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, *shape, generator=generator)


def _output(out):
    """The tensor a block returns (blocks return one tensor)."""
    assert isinstance(out, torch.Tensor), f"a block must return a tensor, got {type(out)}"
    return out


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_forward_finite_and_input_untouched(entry):
    block = _make(entry).eval()
    x = _input(entry)
    before = x.clone()
    with torch.no_grad():
        out = _output(block(x))
    assert out.shape[0] == x.shape[0] and torch.isfinite(out).all()
    assert torch.equal(x, before), "the block modified its input"


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_gradients_reach_every_trainable_parameter(entry):
    block = _make(entry).train()
    x = _input(entry, batch=4).requires_grad_(True)
    _output(block(x)).square().mean().backward()
    missing = [name for name, p in block.named_parameters()
               if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all())]
    assert not missing, f"no finite gradient for {missing}"
    assert x.grad is not None and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_deterministic_and_state_dict_round_trip(entry):
    x = _input(entry)
    a, b = _make(entry, seed=0).eval(), _make(entry, seed=0).eval()
    with torch.no_grad():
        expected = _output(a(x))
        torch.testing.assert_close(_output(b(x)), expected, rtol=0, atol=0)
        other = _make(entry, seed=1).eval()
        other.load_state_dict(a.state_dict())
        torch.testing.assert_close(_output(other(x)), expected, rtol=0, atol=0)


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_bad_input_raises_clear_errors(entry):
    block = _make(entry).eval()
    x = _input(entry)
    with pytest.raises((ValueError, TypeError), match="channel"):
        block(torch.cat([x, x[:, :1]], dim=1))
    with pytest.raises((ValueError, TypeError)):
        block(x[0])  # no batch axis


@pytest.mark.parametrize("dtype", [torch.int64, torch.uint8, torch.bool], ids=str)
@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_integer_input_computes_or_raises_a_clear_type_error(entry, dtype):
    """A block fed integer (or bool) maps either computes a finite floating-point output or
    raises a TypeError naming its input and the dtype, never a torch error."""
    block = _make(entry).eval()
    x = (_input(entry) > 0).to(dtype)
    try:
        with torch.no_grad():
            out = _output(block(x))
    except TypeError as error:
        assert re.search(rf"(input|residual)\b.*floating-point.*{dtype}", str(error)), error
    else:
        assert out.is_floating_point() and torch.isfinite(out).all()


@pytest.mark.parametrize("value", [float("nan"), float("inf")], ids=["nan", "inf"])
@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_non_finite_input_raises_a_clear_value_error(entry, value):
    block = _make(entry).eval()
    x = _input(entry)
    x[0, 0, 0, 0] = value
    with pytest.raises(ValueError, match=r"(input|residual)\b.* contains NaN or infinite"):
        block(x)
    with pytest.raises(TypeError, match="must be a torch.Tensor, got NoneType"):
        block(None)
