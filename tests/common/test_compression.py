"""Checks run over every registered compression method (every registry of
:data:`lightvision.registry.COMPRESSION_REGISTRIES`): the contract of
:class:`lightvision.compression.CompressionMethod`.

A method joins these checks by being registered with a tiny ``test_params`` (a configuration
that compresses the small network below in a fraction of a second) and a ``bench_params``
mapping of strength labels to configurations. The network is a ``small_cnn`` whose batch norms
have unequal scales, as after training, so that methods selecting by magnitude (and SSR's
group sparsity) have something to choose; methods that need data get 96 random images with
random labels.
"""

from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Mapping

import pytest
import torch

import lightvision
from lightvision.compression import (
    CompressionMethod,
    CompressionReport,
    load_compressed,
    load_report,
    save_compressed,
)
from lightvision.metrics import count_ops, count_params, model_size_bits
from lightvision.registry import COMPRESSION_REGISTRIES

ENTRIES = [entry for registry in COMPRESSION_REGISTRIES for entry in registry.entries()]
IDS = [entry.name for entry in ENTRIES]
INPUT = (1, 16, 16)


def _network() -> torch.nn.Module:
    generator = torch.Generator().manual_seed(0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = lightvision.create_model("small_cnn", widths=(8, 16, 16))
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.copy_(0.05 + 1.5 * torch.rand(module.num_features,
                                                            generator=generator))
        model.train()
        for _ in range(3):  # running statistics of the scaled network
            model(torch.rand(32, *INPUT, generator=generator))
    return model.eval()


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return (torch.rand(96, *INPUT, generator=generator),
            torch.randint(0, 10, (96,), generator=generator))


def _run(entry, model, **kwargs):
    method = entry.create(**entry.test_params)
    X, y = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # tiny configs: short training
        return method(model, X[:2], data=(X, y), **kwargs)


@pytest.fixture(scope="module")
def results():
    """{name: (input model, its state before, compressed model, report)}, computed once."""
    out = {}
    for entry in ENTRIES:
        model = _network()
        before = copy.deepcopy(model.state_dict())
        out[entry.name] = (model, before, *_run(entry, model))
    return out


def test_compression_registries_are_not_empty():
    assert IDS, "no compression method registered"
    assert len(set(IDS)) == len(IDS), "a name is registered in two compression families"


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_registration(entry):
    assert isinstance(entry.obj, type) and issubclass(entry.obj, CompressionMethod)
    method = entry.create(**entry.test_params)
    assert isinstance(method.family, str) and method.family
    assert method.needs_data in (None, "unlabelled", "labelled")
    assert method.name == entry.name
    config = method.get_config()
    assert type(method)(**config).get_config() == config, "the config does not rebuild it"
    assert repr(method).startswith(type(method).__name__)
    assert isinstance(entry.bench_params, Mapping) and entry.bench_params
    for label, bench in entry.bench_params.items():
        assert isinstance(label, str) and isinstance(bench, Mapping), label
        entry.create(**bench)


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_input_untouched_output_shape_kept_model_smaller(entry, results):
    model, before, small, report = results[entry.name]
    after = model.state_dict()
    assert after.keys() == before.keys()
    for key, value in before.items():
        assert torch.equal(after[key], value), f"{entry.name} changed the input's {key}"
    assert not model.training, "the input's train/eval mode changed"
    x = _data()[0][:4]
    with torch.no_grad():
        assert small.eval()(x).shape == model(x).shape
    assert report.storage_bits[1] < report.storage_bits[0], "the model is not smaller"


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_global_random_state_untouched(entry):
    model = _network()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    _run(entry, model)
    assert torch.equal(torch.rand(3), expected), "the call changed torch's global RNG stream"


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_report_equals_a_recount_and_round_trips(entry, results):
    model, _, small, report = results[entry.name]
    x = _data()[0][:2]
    assert isinstance(report, CompressionReport)
    assert (report.method, report.family) == (entry.name, entry.obj.family)
    assert report.params == (count_params(model).total, count_params(small).total)
    assert report.macs == (count_ops(model, x).macs, count_ops(small, x).macs)
    assert report.storage_bits == (model_size_bits(model), model_size_bits(small))
    assert report.seconds > 0 and report.latency_ms is None
    plain = json.loads(json.dumps(report.to_dict()))
    assert plain["config"] == json.loads(json.dumps(entry.create(**entry.test_params)
                                                    .get_config()))
    assert CompressionReport.from_dict(plain) == report
    assert str(report).startswith(entry.name)


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_deterministic_under_random_state(entry, results):
    _, _, small, report = results[entry.name]
    again, report_again = _run(entry, _network())
    for key, value in small.state_dict().items():
        assert torch.equal(again.state_dict()[key], value), key
    assert {**report.to_dict(), "seconds": 0} == {**report_again.to_dict(), "seconds": 0}


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_inplace_changes_the_input_into_the_same_result(entry, results):
    _, _, small, _ = results[entry.name]
    model = _network()
    changed, _ = _run(entry, model, inplace=True)
    x = _data()[0][:8]
    with torch.no_grad():
        torch.testing.assert_close(changed.eval()(x), small.eval()(x), rtol=0, atol=0)
    assert changed is model, "inplace=True must change and return the input model itself"


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_save_load_round_trip(entry, results, tmp_path):
    _, _, small, report = results[entry.name]
    path = tmp_path / f"{entry.name}.pt"
    save_compressed(small, path, report=report)
    loaded = load_compressed(path).eval()
    x = _data()[0][:8]
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), small.eval()(x), rtol=0, atol=0)
    assert count_params(loaded) == count_params(small)
    assert load_report(path) == report


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_missing_data_raises_a_clear_error(entry):
    method = entry.create(**entry.test_params)
    x = _data()[0][:2]
    if method.needs_data is None:  # data-free: runs without data, and ignores it
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            method(_network(), x)
        return
    with pytest.raises(TypeError, match=f"needs {method.needs_data} data: pass data="):
        method(_network(), x)
    with pytest.raises(TypeError, match="data must be"):
        method(_network(), x, data="images")


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_bad_call_arguments(entry):
    method = entry.create(**entry.test_params)
    with pytest.raises(TypeError, match="model"):
        method("net", _data()[0][:2])
    with pytest.raises(TypeError, match="example_inputs"):
        method(_network(), [1.0])
    with pytest.raises(TypeError, match="inplace must be a bool"):
        method(_network(), _data()[0][:2], inplace="yes")
