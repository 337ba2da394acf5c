"""The pruners (L1, EPruner, FilterSketch, SSR) against independent computations.

The contract every registered pruner meets (input untouched, report, save/load, data) is
checked in ``tests/common/test_compression.py``."""

from __future__ import annotations

import copy
import time
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.optim.swa_utils import update_bn
from torch.utils.data import DataLoader, TensorDataset

import lightvision
from lightvision.compression.pruning import (
    SSR,
    EPruner,
    FilterSketch,
    L1Pruner,
    channel_groups,
    exemplar_filters,
    frequent_directions,
    group_prox,
)
from lightvision.training import as_batches


def _structured(n, d, rank, seed):
    """Filters like trained ones: low rank, heterogeneous norms (AP keeps nearly every i.i.d.
    Gaussian filter, so tests use structure)."""
    g = torch.Generator().manual_seed(seed)
    basis = torch.randn(rank, d, generator=g)
    mix = torch.randn(n, rank, generator=g) * torch.rand(n, 1, generator=g).pow(2) * 3
    return mix @ basis + 0.01 * torch.randn(n, d, generator=g)


def _vgg_like(widths=(16, 16, 32, 32), in_channels=1, classes=10):
    layers, c = [], in_channels
    for i, w in enumerate(widths):
        layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU()]
        if i % 2:
            layers.append(nn.MaxPool2d(2))
        c = w
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * 7 * 7, classes))


# --- Frequent Directions -------------------------------------------------------------------


@pytest.mark.parametrize(("n", "d", "rows"), [(50, 20, 8), (64, 576, 38), (512, 288, 300),
                                              (37, 9, 4), (10, 30, 16), (1, 5, 3)])
def test_frequent_directions_guarantees(n, d, rows):
    a = _structured(n, d, rank=min(n, d, 12), seed=n) + torch.randn(n, d) * 0.1
    b = frequent_directions(a, rows)
    assert b.shape == (rows, d)
    gap = (a.T @ a - b.T @ b).double()
    assert torch.linalg.eigvalsh(gap).min() >= -1e-6 * a.square().sum()  # A^T A - B^T B >= 0
    error = torch.linalg.matrix_norm(gap, ord=2)
    bound = a.double().square().sum() / rows
    assert error <= bound * (1 + 1e-6)  # fast FD: ||A||_F^2 / l (the paper's bound is 2x)


def test_frequent_directions_is_exact_above_the_rank():
    a = _structured(40, 30, rank=5, seed=0)
    b = frequent_directions(a, 12)
    torch.testing.assert_close(b.T @ b, a.T @ a, rtol=1e-4, atol=1e-3)


def test_frequent_directions_uses_the_trailing_rows():
    """The FilterSketch code stops before the last l/2 rows; ours must not: a matrix whose
    only large row is the last one keeps it."""
    a = torch.zeros(64, 16)
    a[:, 0] = 0.01
    a[-1, 3] = 10.0
    b = frequent_directions(a, 8)
    assert (b.T @ b)[3, 3] > 99.0


# --- Affinity Propagation (EPruner) --------------------------------------------------------


def test_exemplar_count_falls_as_beta_rises_on_trained_weights():
    torch.manual_seed(0)
    model = _vgg_like()
    x = torch.randn(256, 1, 28, 28)
    y = (x.mean((1, 2, 3)) > 0).long() + 2 * (x[:, :, :14].mean((1, 2, 3)) > 0).long()
    lightvision.training.fit(model, x, y, epochs=5, lr=1e-2, progress=False)
    for conv in (model[3], model[7]):
        counts = [len(exemplar_filters(conv.weight.flatten(1), beta))
                  for beta in (0.2, 0.5, 0.8, 1.2, 2.0)]
        assert all(a >= b for a, b in zip(counts, counts[1:], strict=False)), counts
        assert counts[0] > counts[-1] >= 1, counts


def test_exemplar_preference_is_beta_times_column_median():
    a = _structured(30, 12, rank=3, seed=1).numpy()
    from sklearn.cluster import AffinityPropagation
    from sklearn.metrics.pairwise import euclidean_distances

    s = -euclidean_distances(a, squared=True)
    ap = AffinityPropagation(affinity="precomputed", preference=0.7 * np.median(s, axis=0),
                             random_state=0).fit(s)
    np.testing.assert_array_equal(exemplar_filters(a, 0.7), np.sort(ap.cluster_centers_indices_))


def test_exemplars_fall_back_to_keeping_all_when_ap_never_converges(monkeypatch):
    import sklearn.cluster

    class NeverConverges:
        def __init__(self, **kwargs):
            pass

        def fit(self, s):
            self.cluster_centers_indices_ = np.array([], dtype=int)
            return self

    monkeypatch.setattr(sklearn.cluster, "AffinityPropagation", NeverConverges)
    with pytest.warns(RuntimeWarning, match="did not converge"):
        keep = exemplar_filters(np.random.default_rng(0).normal(size=(6, 4)), 0.5)
    np.testing.assert_array_equal(keep, np.arange(6))


def test_epruner_keeps_the_exemplar_weights_and_resets_norms():
    torch.manual_seed(0)
    model, x = _vgg_like(), torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        model[0].weight.copy_(_structured(16, 9, rank=2, seed=3).reshape(16, 1, 3, 3))
    small, report = EPruner(beta=0.8, layers=["0"])(model, x)
    keep = exemplar_filters(model[0].weight.flatten(1), 0.8)
    assert report.details["kept"] == {"0": [len(keep), 16]} and len(keep) < 16
    assert torch.equal(small[0].weight, model[0].weight[keep])
    assert torch.equal(small[3].weight, model[3].weight[:, keep])
    assert torch.equal(small[1].running_var, torch.ones(len(keep)))  # re-initialised BN
    kept_bn = EPruner(beta=0.8, layers=["0"], reset_norms=False)(model, x)[0][1]
    assert torch.equal(kept_bn.running_mean, model[1].running_mean[keep])


def test_epruner_selection_over_vgg16_layers_is_fast():
    """All 13 VGG-16 convolutions (CIFAR shapes, structured weights): at most 2 s here
    (the paper: seconds on a CPU)."""
    widths = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    fan_in = [3] + widths[:-1]
    layers = [_structured(w, c * 9, rank=min(w // 4, 32), seed=i).numpy()
              for i, (w, c) in enumerate(zip(widths, fan_in, strict=True))]
    exemplar_filters(layers[0][:4], 0.73)  # scikit-learn's import is not part of the work
    start = time.perf_counter()
    kept = [len(exemplar_filters(a, 0.73)) for a in layers]
    seconds = time.perf_counter() - start
    print(f"\nEPruner selection on VGG-16 shapes: {seconds:.2f} s, kept {kept}")
    assert seconds <= 2.0
    assert all(1 <= k < w for k, w in zip(kept, widths, strict=True))


# --- L1 and FilterSketch -------------------------------------------------------------------


def test_l1_keeps_the_largest_filters():
    model, x = _vgg_like(), torch.randn(2, 1, 28, 28)
    small, report = L1Pruner(ratio=0.75)(model, x)

    def top(conv, k):
        return torch.topk(conv.weight.abs().flatten(1).sum(1), k).indices.sort().values

    keep0, keep3 = top(model[0], 4), top(model[3], 4)
    assert torch.equal(small[0].weight, model[0].weight[keep0])
    assert torch.equal(small[3].weight, model[3].weight[keep3][:, keep0])
    assert report.details["kept"]["0"] == report.details["kept"]["3"] == [4, 16]


def test_filtersketch_filters_are_the_sketch_and_channels_are_sketched():
    torch.manual_seed(0)
    model, x = _vgg_like(), torch.randn(2, 1, 28, 28)
    small, report = FilterSketch(ratio=0.5, layers=["3"])(model, x)
    sketch = frequent_directions(model[3].weight.flatten(1), 8)
    torch.testing.assert_close(small[3].weight.flatten(1), sketch)
    w = model[7].weight  # (32, 16, 3, 3): input channels sketched 16 -> 8, as channel slices
    slices = frequent_directions(w.transpose(0, 1).reshape(16, -1), 8)
    torch.testing.assert_close(small[7].weight, slices.reshape(8, 32, 3, 3).transpose(0, 1))
    legacy = FilterSketch(ratio=0.5, layers=["3"], channel_mode="legacy")(model, x)[0]
    torch.testing.assert_close(legacy[7].weight,
                               frequent_directions(w.reshape(16, -1), 8).reshape(32, 8, 3, 3))
    assert not torch.allclose(legacy[7].weight, small[7].weight)
    assert report.details["kept"] == {"3": [8, 16]}


def test_filtersketch_sketches_the_linear_layer_after_a_flatten():
    model, x = _vgg_like(), torch.randn(2, 1, 28, 28)
    small, _ = FilterSketch(ratio=0.5, layers=["10"])(model, x)  # last conv -> flatten -> fc
    w = model[-1].weight.reshape(10, 32, 49)
    slices = frequent_directions(w.transpose(0, 1).reshape(32, -1), 16)
    expected = slices.reshape(16, 10, 49).transpose(0, 1).reshape(10, 16 * 49)
    torch.testing.assert_close(small[-1].weight, expected)


# --- SSR -----------------------------------------------------------------------------------


def test_group_prox():
    u = torch.tensor([[3.0, 4.0], [0.6, 0.8], [0.0, 0.0]])
    torch.testing.assert_close(group_prox(u, 2.0), torch.tensor([[1.8, 2.4], [0, 0], [0, 0]]))
    torch.testing.assert_close(group_prox(u, 0.5, "l20"),
                               torch.tensor([[3.0, 4.0], [0.0, 0.0], [0.0, 0.0]]))


def _digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return torch.tensor(X, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16, torch.tensor(y)


@pytest.mark.parametrize(("with_bn", "norm", "lam"), [(False, "l21", 0.05), (False, "l20", 0.2),
                                                   (True, "l21", 0.15), (True, "l20", 0.3)])
def test_ssr_zeroes_whole_filters_and_removing_them_changes_nothing(with_bn, norm, lam):
    X, y = _digits()
    torch.manual_seed(0)
    bn = [nn.BatchNorm2d(12)] if with_bn else []
    model = nn.Sequential(nn.Conv2d(1, 12, 3, padding=1), *bn, nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(12 * 16, 32), nn.ReLU(), nn.Linear(32, 10))
    ssr = SSR(lam=lam, norm=norm, update_every=5,
              train={"epochs": 10, "batch_size": 64, "lr": 0.05})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a layer may lose every filter
        small, report = ssr(model, X[:4], data=(X[:512], y[:512]))
    zeroed = report.details["zeroed"]
    assert any(0 < z < n for z, n in zeroed.values()), zeroed  # selective, not all or none
    assert report.details["kept"] == {k: [max(n - z, 1), n] for k, (z, n) in zeroed.items()}
    assert report.params[1] < report.params[0]
    # the same AULM phase (deterministic under random_state) on a copy, before the removal
    regularized = copy.deepcopy(model)
    groups = ssr.target_groups(regularized, channel_groups(regularized, X[:4]))
    ssr._aulm(regularized, groups, as_batches((X[:512], y[:512]), labelled=True))
    for index in (0, len(model) - 3):  # whole filters are exactly zero: weights and bias
        layer = regularized[index]
        dead = torch.cat([layer.weight.flatten(1), layer.bias[:, None]], 1).abs().sum(1) == 0
        assert int(dead.sum()) == zeroed[str(index)][0]
    if with_bn:  # and the batch norm that follows (the penalised part there) ...
        norm_layer = regularized[1]
        assert int(((norm_layer.weight == 0) & (norm_layer.bias == 0)).sum()) == zeroed["0"][0]
        fresh = copy.deepcopy(regularized)  # ... whose statistics were re-estimated at the end
        update_bn(DataLoader(TensorDataset(X[:512]), batch_size=64), fresh)
        torch.testing.assert_close(fresh[1].running_var, norm_layer.running_var)
    with torch.no_grad():
        torch.testing.assert_close(small.eval()(X[:64]), regularized.eval()(X[:64]),
                                   rtol=1e-5, atol=1e-5)


def test_ssr_takes_loaders_and_batches_and_warns_when_admm_makes_too_few_updates():
    X, y = _digits()
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 10))
    ssr = SSR(update_every=10, train={"epochs": 4, "batch_size": 32})
    with pytest.warns(RuntimeWarning, match="3 F/Y updates"):
        _, by_tensors = ssr(model, X[:2], data=(X[:256], y[:256]))
    loader = DataLoader(TensorDataset(X[:256], y[:256]), batch_size=32)
    with pytest.warns(RuntimeWarning, match="3 F/Y updates"):
        _, by_loader = ssr(model, X[:2], data=loader)
    with pytest.warns(RuntimeWarning, match="3 F/Y updates"):
        _, by_list = ssr(model, X[:2], data=list(loader))
    assert by_loader.details == by_list.details  # the same batches in the same order
    assert by_tensors.details["aulm_updates"] == by_loader.details["aulm_updates"] == 3
    with pytest.raises(TypeError, match="one-shot iterator"):
        ssr(model, X[:2], data=iter(loader))
    with pytest.raises(ValueError, match="data batch 0 has no targets"):
        ssr(model, X[:2], data=[X[:32]])
    with pytest.raises(KeyError, match=r"lam names \['conv1'\]"):
        SSR(lam={"conv1": 0.1}, train={"epochs": 1})(model, X[:2], data=(X[:256], y[:256]))


def test_pruned_model_has_only_ordinary_layers_and_input_is_untouched():
    model, x = _vgg_like(), torch.randn(2, 1, 28, 28)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    small, _ = L1Pruner(ratio=0.5, layers="all")(model, x)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert {type(m) for m in small.modules()} == {type(m) for m in model.modules()}


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: L1Pruner(ratio=1.0), ValueError, r"ratio must be in \[0, 1\)"),
        (lambda: L1Pruner(ratio=-0.1), ValueError, "ratio"),
        (lambda: L1Pruner(layers="some"), ValueError, "layers"),
        (lambda: EPruner(beta=0.0), ValueError, "beta"),
        (lambda: EPruner(damping=0.2), ValueError, "damping"),
        (lambda: EPruner(layer_beta={"0": -1}), ValueError, "layer_beta"),
        (lambda: FilterSketch(channel_mode="transpose"), ValueError, "channel_mode"),
        (lambda: SSR(lam=0), ValueError, "lam"),
        (lambda: SSR(norm="l1"), ValueError, "norm"),
        (lambda: SSR(train={"random_state": 1}), ValueError, "train has unknown"),
        (lambda: SSR(train=[("epochs", 1)]), TypeError, "train"),
        (lambda: SSR(random_state="seed"), TypeError, "random_state"),
    ],
)
def test_construction_errors(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_call_errors():
    x = torch.randn(2, 4)
    with pytest.raises(ValueError, match="no prunable layer"):
        L1Pruner()(nn.Sequential(nn.Linear(4, 3)), x)
    with pytest.raises(ValueError, match="no prunable layer"):  # only a hidden linear layer
        L1Pruner()(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)), x)
    assert L1Pruner(layers="all")(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)),
                                  x)[0][0].out_features == 4
    model, img = _vgg_like(), torch.randn(1, 1, 28, 28)
    with pytest.raises(KeyError, match="produce no channel group"):
        L1Pruner(layers=["conv9"])(model, img)
    with pytest.raises(ValueError, match="the model's output"):
        L1Pruner(layers=["15"])(model, img)
    with pytest.raises(KeyError, match="layer_beta"):
        EPruner(layer_beta={"nope": 0.5})(model, img)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        L1Pruner(ratio=0.99)(model, img)  # rounds to 0 kept: at least one channel stays
    assert L1Pruner(ratio=0.99)(model, img)[0][0].out_channels == 1
