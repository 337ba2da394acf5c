"""The compression contract's shared parts: the facade, the report, the module swap, fine-tuning
and the save format (its errors in particular). What every method must do is checked over the
registry in ``tests/common/test_compression.py``."""

from __future__ import annotations

import io
import json
import re

import pytest
import torch
from torch import nn

import lightvision
from lightvision.compression import (
    CompressionMethod,
    CompressionReport,
    compress,
    fine_tune,
    load_compressed,
    load_report,
    register_layer,
    replace_module,
    save_compressed,
)
from lightvision.metrics import count_params


def _vgg_like():
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                         nn.Flatten(), nn.Linear(8 * 14 * 14, 10))


def test_compress_finds_a_method_in_any_family_and_names_the_known_ones():
    model, x = lightvision.create_model("small_cnn", widths=(8, 16)), torch.randn(2, 1, 28, 28)
    small, report = compress(model, x, method="epruner", beta=0.8, latency=True)
    assert report.family == "pruning" and report.config["beta"] == 0.8
    assert report.latency_ms is not None and all(ms > 0 for ms in report.latency_ms)
    assert "latency" in str(report)
    assert lightvision.compress is compress
    with pytest.raises(ValueError, match=r"unknown compression method 'sr'.*'ssr'"):
        compress(model, x, method="sr")
    with pytest.raises(TypeError, match="method must be a str"):
        compress(model, x, method=None)


def test_report_dict_is_plain_json_and_reads_back():
    report = CompressionReport(method="m", family="f", config={"lam": {"a": 0.1}},
                               params=(10, 5), macs=(100, 40), storage_bits=(320, 161),
                               seconds=0.5, details={"kept": {"a": [1, 2]}})
    assert report.model_bytes == (40, 21) and report.macs_ratio == 0.4
    plain = report.to_dict()
    assert json.loads(json.dumps(plain)) == plain and plain["params"] == [10, 5]
    assert CompressionReport.from_dict(plain) == report
    with pytest.raises(ValueError, match="needs"):
        CompressionReport.from_dict({"method": "m"})


def test_a_method_of_ones_own_meets_the_contract():
    class HalveLinear(CompressionMethod):
        """Keeps the first half of the hidden units (a toy method, not registered)."""

        family = "toy"

        def __init__(self, *, keep: float = 0.5) -> None:
            self.keep = keep

        def _compress(self, model, example_inputs, data):
            n = int(model[0].out_features * self.keep)
            replace_module(model, "0", nn.Linear(model[0].in_features, n))
            replace_module(model, "2", nn.Linear(n, model[2].out_features))
            return model, {"hidden": n}

    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    small, report = HalveLinear()(model, torch.randn(3, 4))
    assert report.method == "HalveLinear" and report.details == {"hidden": 4}
    assert report.params == (count_params(model).total, count_params(small).total)
    assert model[0].out_features == 8, "the input model was changed"
    assert repr(HalveLinear(keep=0.25)) == "HalveLinear(keep=0.25)"


def test_replace_module():
    net = _vgg_like()
    old = replace_module(net, "4", nn.Identity())
    assert isinstance(old, nn.Conv2d) and isinstance(net[4], nn.Identity)
    with pytest.raises(KeyError, match="no submodule '9.conv'"):
        replace_module(net, "9.conv", nn.Identity())
    with pytest.raises(TypeError, match="new must be a torch.nn.Module"):
        replace_module(net, "4", "conv")
    with pytest.raises(TypeError, match="name"):
        replace_module(net, "", nn.Identity())


def test_fine_tune_takes_tensors_or_a_loader():
    from torch.utils.data import DataLoader, TensorDataset

    X, y = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
    model = lightvision.create_model("small_cnn", widths=(4, 8))
    history = fine_tune(model, X, y, epochs=1, batch_size=16)
    assert len(history.epochs) == 1
    loader = DataLoader(TensorDataset(X, y), batch_size=16)
    assert fine_tune(model, loader, epochs=2).last("epoch") == 2


def test_save_and_load_rebuild_registered_and_user_models(tmp_path):
    torch.manual_seed(0)
    model, x = lightvision.create_model("resnet20", depth=8, width=0.5), torch.randn(2, 1, 28, 28)
    small, report = lightvision.prune(model, x, ratio=0.5)
    path = tmp_path / "resnet.pt"
    save_compressed(small.eval(), path, report=report)
    loaded = load_compressed(path).eval()  # rebuilt from model_spec: no base needed
    with torch.no_grad():
        assert torch.equal(loaded(x), small(x))
    assert load_report(path) == report
    # a model that create_model did not build: the caller gives the base architecture
    user = _vgg_like()
    small, _ = lightvision.prune(user, x, ratio=0.5)
    buffer = io.BytesIO()
    save_compressed(small.eval(), buffer)
    buffer.seek(0)
    with pytest.raises(ValueError, match="pass model="):
        load_compressed(buffer)
    buffer.seek(0)
    loaded = load_compressed(buffer, _vgg_like()).eval()
    with torch.no_grad():
        assert torch.equal(loaded(x), small(x))
    buffer.seek(0)
    assert load_report(buffer) is None
    buffer.seek(0)
    with pytest.raises(ValueError, match="has no layer '4'"):
        load_compressed(buffer, nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU()))
    buffer.seek(0)
    other = _vgg_like()
    other.add_module("8", nn.Linear(10, 10))  # the base with one more layer
    with pytest.raises(ValueError, match=r"differs from the one saved.*'8'"):
        load_compressed(buffer, other)


def test_load_errors_name_the_file_and_the_problem(tmp_path):
    small, _ = lightvision.prune(lightvision.create_model("small_cnn", widths=(4, 8)),
                                 torch.randn(1, 1, 28, 28), ratio=0.5)
    good = tmp_path / "good.pt"
    save_compressed(small, good)
    with pytest.raises(FileNotFoundError, match="no compressed model at"):
        load_compressed(tmp_path / "missing.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="is empty"):
        load_compressed(tmp_path / "empty.pt")
    (tmp_path / "truncated.pt").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ValueError, match="truncated, corrupted"):
        load_compressed(tmp_path / "truncated.pt")
    (tmp_path / "text.pt").write_text("not a model")
    with pytest.raises(ValueError, match="save_compressed"):
        load_compressed(tmp_path / "text.pt")
    torch.save(small.state_dict(), tmp_path / "state.pt")  # a torch file, but not ours
    with pytest.raises(ValueError, match="was not written by save_compressed"):
        load_compressed(tmp_path / "state.pt")
    torch.save(small, tmp_path / "pickled.pt")  # pickled code is refused, not executed
    with pytest.raises(ValueError, match="save_compressed"):
        load_compressed(tmp_path / "pickled.pt")
    saved = torch.load(good, weights_only=True)
    torch.save({**saved, "version": 99}, tmp_path / "future.pt")
    with pytest.raises(ValueError, match="format version 99"):
        load_compressed(tmp_path / "future.pt")
    with pytest.raises(TypeError, match="report must be a CompressionReport"):
        save_compressed(small, tmp_path / "x.pt", report={"method": "l1"})


def test_layers_of_new_types_plug_into_the_format(tmp_path):
    class Scale(nn.Module):
        def __init__(self, channels: int) -> None:
            super().__init__()
            self.channels = channels
            self.weight = nn.Parameter(torch.ones(channels, 1, 1))

        def get_config(self):
            return {"channels": self.channels}

        def forward(self, x):
            return x * self.weight

    model = lightvision.create_model("small_cnn", widths=(4, 8))
    replace_module(model, "features.2.2", Scale(8))  # a layer of a type the format lacks
    with torch.no_grad():
        model.features[2][2].weight.fill_(0.5)
    path = tmp_path / "scaled.pt"
    save_compressed(model, path)
    with pytest.raises(ValueError, match="register the saved layer types"):  # never lost
        load_compressed(path)
    register_layer(Scale)
    save_compressed(model, path)
    loaded = load_compressed(path).eval()
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(loaded(x), model.eval()(x))
    with pytest.raises(TypeError, match="nn.Module class"):
        register_layer(int)


def test_save_and_load_name_a_bad_path_and_the_deprecated_wrappers_too(tmp_path):
    import warnings

    from lightvision.compression.pruning import load_pruned, save_pruned

    small = lightvision.create_model("small_cnn", widths=(4, 8))
    missing = tmp_path / "no" / "such" / "model.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for save in (save_compressed, save_pruned):
            with pytest.raises(FileNotFoundError,
                               match=f"cannot save to '{re.escape(str(missing))}'.*does not"):
                save(small, missing)
            with pytest.raises(IsADirectoryError, match="is a directory"):
                save(small, tmp_path)
            with pytest.raises(TypeError, match="path must be a file name"):
                save(small, None)
        (tmp_path / "empty.pt").write_bytes(b"")
        (tmp_path / "garbage.pt").write_bytes(b"\x00\x01 not a model at all")
        for load in (load_compressed, lambda p: load_pruned(p, small)):
            with pytest.raises(ValueError, match="empty.pt' is empty"):
                load(tmp_path / "empty.pt")
            with pytest.raises(ValueError, match="not written by save_compressed") as info:
                load(tmp_path / "garbage.pt")
            assert "weights_only" not in str(info.value)  # no advice to unpickle code
            with pytest.raises(TypeError, match="path must be a file name"):
                load(None)
            with pytest.raises(ValueError, match="truncated, corrupted"):
                load(io.BytesIO())
        buffer = io.BytesIO()  # a file object: the legacy probe must not consume it
        save_compressed(small, buffer)
        buffer.seek(0)
        loaded = load_pruned(buffer, lightvision.create_model("small_cnn", widths=(4, 8)))
    assert all(torch.equal(v, small.state_dict()[k]) for k, v in loaded.state_dict().items())


def test_load_compressed_leaves_torch_global_random_state_alone():
    model = lightvision.create_model("small_cnn", widths=(4, 8))
    small, _ = compress(model, torch.randn(2, 1, 28, 28), method="l1", ratio=0.5)
    buffer = io.BytesIO()
    save_compressed(small, buffer)
    state = torch.get_rng_state()
    buffer.seek(0)
    loaded = load_compressed(buffer)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(loaded.state_dict().values(),
                                                 small.state_dict().values(), strict=True))
