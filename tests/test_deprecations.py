"""Names a user could rely on before the vocabulary was unified keep working for one release,
each with a DeprecationWarning that names the replacement."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch

import lightvision
from lightvision.registry import BLOCKS, FEATURES, LOSSES


def test_in_chans_keyword_and_attribute():
    with pytest.warns(DeprecationWarning, match="in_chans= is deprecated, use in_channels="):
        model = lightvision.create_model("small_cnn", in_chans=3)
    assert model.in_channels == 3
    with pytest.warns(DeprecationWarning, match="in_chans is deprecated"):
        assert model.in_chans == 3
    from lightvision.models import SEMGNet

    with pytest.warns(DeprecationWarning, match="in_chans="):
        assert SEMGNet(in_chans=4).in_channels == 4
    with pytest.raises(TypeError, match="got both in_chans="):
        lightvision.create_model("small_cnn", in_chans=3, in_channels=3)


def test_seed_keyword_of_the_local_binary_layers():
    from lightvision.nn import LocalBinaryConv2d
    from lightvision.nn.local_binary import sparse_ternary_weight as weight

    with pytest.warns(DeprecationWarning, match="seed= is deprecated, use random_state="):
        old = LocalBinaryConv2d(3, 4, seed=5)
    assert torch.equal(old.weight, LocalBinaryConv2d(3, 4, random_state=5).weight)
    with pytest.warns(DeprecationWarning, match="seed="):
        assert torch.equal(weight((2, 3), 0.5, seed=1), weight((2, 3), 0.5, 1))


def test_example_input_keyword_of_the_metrics():
    from lightvision.metrics import count_ops

    conv = torch.nn.Conv2d(1, 2, 3)
    with pytest.warns(DeprecationWarning, match="example_input= is deprecated"):
        assert count_ops(conv, example_input=torch.zeros(1, 1, 5, 5)).macs == 162


def test_n_iter_max_of_the_tensor_features():
    from lightvision.datasets import load_digits
    from lightvision.features import TFNet

    X = load_digits()[0][:40]
    params = {"patch_size": 3, "rank": 2, "block_size": 4, "random_state": 0}
    with pytest.warns(DeprecationWarning, match="n_iter_max=\\) is deprecated; use max_iter="):
        old = TFNet(**params, n_iter_max=3).fit(X)
    new = TFNet(**params, max_iter=3).fit(X)
    np.testing.assert_array_equal(old.transform(X[:4]).toarray(), new.transform(X[:4]).toarray())


@pytest.mark.parametrize(("registry", "old", "new"), [
    (FEATURES, "PCANet", "pcanet"), (FEATURES, "BinaryMotionDescriptor", "binary_motion"),
    (BLOCKS, "BoFPooling", "bof_pooling"), (LOSSES, "mmd_loss", "mmd"),
])
def test_former_registry_names(registry, old, new):
    with pytest.warns(DeprecationWarning, match=f"{old!r} is deprecated; use {new!r}"):
        assert registry.get(old) is registry.get(new)
    assert old not in registry.list()


@pytest.mark.parametrize(("module", "name", "home"), [
    ("lightvision.training", "DomainAdaptationTask", "lightvision.adaptation"),
    ("lightvision.training", "mmd_loss", "lightvision.losses"),
    ("lightvision.training", "run_semg_method", "lightvision.adaptation.semg"),
    ("lightvision.training.semg", "semg_split", "lightvision.adaptation.semg"),
    ("lightvision.training.domain", "coral_loss", "lightvision.losses"),
])
def test_moved_names(module, name, home):
    with pytest.warns(DeprecationWarning, match=f"moved to {home}.{name}"):
        obj = getattr(importlib.import_module(module), name)
    assert obj is getattr(importlib.import_module(home), name)
    with pytest.raises(AttributeError):
        importlib.import_module(module).no_such_name  # noqa: B018


def test_pruning_save_load_and_report_kept(tmp_path):
    from lightvision.compression.pruning import load_pruned, save_pruned

    model, x = lightvision.create_model("small_cnn", widths=(8, 16)), torch.randn(2, 1, 28, 28)
    small, report = lightvision.prune(model, x, ratio=0.5)
    with pytest.warns(DeprecationWarning, match="save_compressed"):
        save_pruned(small, tmp_path / "small.pt")
    with pytest.warns(DeprecationWarning, match="load_compressed"):
        loaded = load_pruned(tmp_path / "small.pt",
                             lightvision.create_model("small_cnn", widths=(8, 16)))
    with torch.no_grad():
        assert torch.equal(loaded.eval()(x), small.eval()(x))
    with pytest.warns(DeprecationWarning, match="details"):
        assert report.kept == {"features.0.0": (4, 8), "features.2.0": (8, 16)}
    # a file in the format save_pruned wrote in version 0.1
    layers = {name: ({"num_features": m.num_features} if isinstance(m, torch.nn.BatchNorm2d)
                     else {"in_channels": m.in_features, "out_channels": m.out_features}
                     if isinstance(m, torch.nn.Linear)
                     else {"in_channels": m.in_channels, "out_channels": m.out_channels,
                           "groups": m.groups})
              for name, m in small.named_modules()
              if isinstance(m, torch.nn.Conv2d | torch.nn.Linear | torch.nn.BatchNorm2d)}
    torch.save({"format": "lightvision.pruned/1", "layers": layers,
                "state_dict": small.state_dict()}, tmp_path / "legacy.pt")
    with pytest.warns(DeprecationWarning, match="load_compressed"):
        legacy = load_pruned(tmp_path / "legacy.pt",
                             lightvision.create_model("small_cnn", widths=(8, 16)))
    with torch.no_grad():
        assert torch.equal(legacy.eval()(x), small.eval()(x))


def test_ssr_two_step_api():
    from lightvision.compression.pruning import SSR

    X, y = torch.rand(128, 1, 16, 16), torch.randint(0, 10, (128,))
    model = lightvision.create_model("small_cnn", widths=(8, 16))
    ssr = SSR(lam=0.3, update_every=1, train={"epochs": 2, "batch_size": 16})
    expected, report = ssr(model, X[:2], data=(X, y))
    with pytest.warns(DeprecationWarning, match="SSR.regularize is deprecated"):
        ssr.regularize(model, X, y)  # in place, as it always did
    with pytest.warns(DeprecationWarning, match="SSR.prune is deprecated"):
        small, old_report = ssr.prune(model, X[:2])
    assert old_report.details["kept"] == report.details["kept"]
    assert ssr.zero_groups_ == {k: tuple(v) for k, v in report.details["zeroed"].items()}
    with torch.no_grad():
        torch.testing.assert_close(small.eval()(X[:4]), expected.eval()(X[:4]))
