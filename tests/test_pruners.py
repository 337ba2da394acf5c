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


def test_epruner_selection_over_vgg16_layers_costs_what_affinity_propagation_costs():
    """All 13 VGG-16 convolutions (CIFAR shapes, structured weights): exemplar_filters costs at
    most 1.5x scikit-learn's Affinity Propagation run directly on the same similarities,
    measured side by side (1-1.6 s in all on a quiet 2-core machine; the paper: seconds on a
    CPU)."""
    from sklearn.cluster import AffinityPropagation
    from sklearn.metrics.pairwise import euclidean_distances

    widths = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    fan_in = [3] + widths[:-1]
    layers = [_structured(w, c * 9, rank=min(w // 4, 32), seed=i).numpy()
              for i, (w, c) in enumerate(zip(widths, fan_in, strict=True))]
    exemplar_filters(layers[0][:4], 0.73)  # scikit-learn's import is not part of the work

    def direct(a):
        s = -euclidean_distances(a.astype(np.float64), squared=True)
        return AffinityPropagation(affinity="precomputed", preference=0.73 * np.median(s, 0),
                                   random_state=0).fit(s).cluster_centers_indices_

    start = time.perf_counter()
    reference = [len(direct(a)) for a in layers]
    middle = time.perf_counter()
    kept = [len(exemplar_filters(a, 0.73)) for a in layers]
    seconds = time.perf_counter() - middle
    ratio = seconds / (middle - start)
    print(f"\nEPruner selection on VGG-16 shapes: {seconds:.2f} s, x{ratio:.2f} the direct "
          f"AP run, kept {kept}")
    assert kept == reference
    assert ratio <= 1.5
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


# --- live sketches, skipped groups, divisions (issue 14) -----------------------------------


def _sketch_net():
    """A first layer of 32 one-channel 3x3 filters: their rank is at most 9."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32),
                         nn.ReLU(), nn.Conv2d(32, 16, 3, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(16 * 8 * 8, 10))


def test_filtersketch_keeps_only_live_filters_and_counts_only_them():
    from lightvision.metrics import count_ops, count_params

    model, x = _sketch_net(), torch.randn(2, 1, 8, 8)
    small, report = FilterSketch(ratio=0.3, layers=["0"])(model, x)
    assert report.details["kept"] == {"0": [9, 32]}  # round(32 * 0.7) = 22 > rank 9
    assert small[0].weight.flatten(1).norm(dim=1).min() > 0  # no dead filter
    a = model[0].weight.detach().flatten(1).double()
    b = small[0].weight.detach().flatten(1).double()
    torch.testing.assert_close(b.T @ b, a.T @ a, rtol=1e-5, atol=1e-5)  # l >= rank: exact
    assert small[3].in_channels == 9
    assert report.macs[1] == count_ops(small, x).macs and report.params[1] == count_params(
        small).total
    # numerically rank-4 filters (float32 products of rank-4 factors) keep 4
    with torch.no_grad():
        model[0].weight.copy_((torch.randn(32, 4) @ torch.randn(4, 9)).reshape(32, 1, 3, 3))
    assert FilterSketch(ratio=0.3, layers=["0"])(model, x)[1].details["kept"] == {"0": [4, 32]}
    with torch.no_grad():  # nothing to sketch: one (zero) filter stays, the layer is not empty
        model[0].weight.zero_()
    assert FilterSketch(ratio=0.3, layers=["0"])(model, x)[1].details["kept"] == {"0": [1, 32]}


def _mobilenet_like():
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, bias=False), nn.BatchNorm2d(16), nn.ReLU6(),
        nn.Conv2d(16, 16, 3, groups=16, bias=False), nn.BatchNorm2d(16), nn.ReLU6(),  # dw
        nn.Conv2d(16, 24, 1, bias=False), nn.BatchNorm2d(24), nn.ReLU6(),
        nn.Conv2d(24, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 5))


def test_groups_a_pruner_cannot_handle_are_skipped_and_reported_unless_named():
    model, x = _mobilenet_like(), torch.randn(2, 3, 10, 10)
    small, report = FilterSketch(ratio=0.5)(model, x)
    assert report.details["kept"] == {"6": [12, 24], "9": [4, 8]}
    assert report.details["skipped"] == {
        "0": "FilterSketch cannot sketch the input channels of '3' (Conv2d, depthwise)"}
    assert small[0].out_channels == 16 and small(x).shape == (2, 5)
    with pytest.raises(ValueError, match=r"cannot be pruned by FilterSketch: 0: .*depthwise"):
        FilterSketch(ratio=0.5, layers=["0", "6"])(model, x)
    # the other pruners handle the depthwise reader: nothing skipped
    assert L1Pruner(ratio=0.5)(model, x)[1].details["skipped"] == {}
    only_dw = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3, groups=8),
                            nn.Flatten(), nn.Linear(8 * 6 * 6, 2))
    with pytest.raises(ValueError, match=r"no prunable layer.*skipped: \{'0'"):
        FilterSketch(ratio=0.5)(only_dw, x)


def test_keep_per_division():
    from lightvision.compression.pruning.base import keep_per_division

    scores = torch.tensor([0.1, 0.9, 0.5, 0.3, 0.8, 0.2, 0.7, 0.4])
    assert keep_per_division(scores, 3).tolist() == [1, 4, 6]
    assert keep_per_division(scores, 2, 2).tolist() == [1, 2, 4, 6]
    assert keep_per_division(scores, 1, 4).tolist() == [1, 2, 4, 6]
    assert keep_per_division(scores, 0, 2).tolist() == [1, 4]  # at least one per division
    assert keep_per_division(scores, 9, 2).tolist() == list(range(8))


def _grouped_net():
    """Group '0' (8 channels) is read by a convolution of 2 groups: 2 divisions of 4."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.Conv2d(8, 8, 3, padding=1, groups=2), nn.ReLU(), nn.Flatten(),
                          nn.Linear(8 * 6 * 6, 3))
    with torch.no_grad():
        model[0].weight.copy_(_structured(8, 9, rank=2, seed=5).reshape(8, 1, 3, 3))
    x = torch.randn(2, 1, 6, 6)
    group = next(g for g in channel_groups(model, x) if g.name == "0")
    return model, x, group


@pytest.mark.parametrize("make", [
    lambda: L1Pruner(ratio=0.6, layers="all"), lambda: EPruner(beta=0.8, layers="all"),
    lambda: SSR(update_every=1, train={"epochs": 2, "batch_size": 16})])
def test_every_pruner_keeps_the_same_number_per_division(make):
    from lightvision.compression.pruning import prune_channels

    model, x, group = _grouped_net()
    assert group.divisions == 2
    pruner = make()
    if isinstance(pruner, SSR):  # channels 0-2 and 5 zeroed (filter, bias, batch norm)
        with torch.no_grad():
            for t in (model[0].weight, model[0].bias, model[1].weight, model[1].bias):
                t[[0, 1, 2, 5]] = 0
    keep = pruner.select(model, [group])["0"].keep
    per = [int(((keep >= 4 * d) & (keep < 4 * (d + 1))).sum()) for d in (0, 1)]
    assert per[0] == per[1] >= 1, keep
    if isinstance(pruner, L1Pruner):  # round(4 * 0.4) = 2 largest L1 norms per division
        scores = model[0].weight.abs().flatten(1).sum(1)
        expected = [int(i) + 4 * d for d in (0, 1)
                    for i in torch.topk(scores[4 * d: 4 * d + 4], 2).indices]
        assert keep.tolist() == sorted(expected)
    if isinstance(pruner, SSR):  # every non-zero channel stays: 3 per division
        assert set(keep.tolist()) >= {3, 4, 6, 7} and per == [3, 3]
    small = prune_channels(model, {"0": keep}, x)  # the engine accepts the balanced choice
    assert small[3].in_channels == len(keep) and small(x).shape == (2, 3)
    # end to end, the grouped convolution's own filters (group '3') included
    X, y = torch.randn(32, 1, 6, 6), torch.randint(0, 3, (32,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        small, report = pruner(model, x, data=(X, y))
    assert set(report.details["kept"]) == {"0", "3"} and small(x).shape == (2, 3)
    assert small[3].in_channels % 2 == small[3].out_channels % 2 == 0
    reason = FilterSketch().unsupported(model, group)
    assert "grouped convolution" in reason


# --- bad inputs (issue 14) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: L1Pruner(layers=5), TypeError, "layers must be .* got int"),
        (lambda: L1Pruner(layers=["0", 3]), TypeError, r"layers must be .*\['int'\]"),
        (lambda: L1Pruner(layers=[]), ValueError, "layers must name at least one"),
        (lambda: EPruner(layer_beta=[0.5]), TypeError, "layer_beta must be a mapping"),
        (lambda: EPruner(layer_beta={0: 0.5}), TypeError, "layer_beta's keys"),
        (lambda: SSR(lam={3: 0.1}), TypeError, "lam's keys"),
    ],
)
def test_bad_configurations_name_the_argument(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_prune_with_bad_layers_names_layers():
    with pytest.raises(TypeError, match="layers must be 'auto', 'all' or a sequence"):
        lightvision.prune(_vgg_like(), torch.randn(1, 1, 28, 28), layers=123)


def test_group_prox_and_frequent_directions_refuse_bad_inputs():
    u = torch.tensor([[3.0, 4.0], [0.3, 0.4]])
    with pytest.raises(TypeError, match="u must be a torch.Tensor"):
        group_prox(u.numpy(), 1.0)
    with pytest.raises(ValueError, match="threshold must be a finite number >= 0"):
        group_prox(u, -1.0)
    with pytest.raises(ValueError, match="threshold"):
        group_prox(u, float("nan"))
    with pytest.raises(ValueError, match="u must be a 2-d floating-point"):
        group_prox(u[0], 1.0)
    with pytest.raises(ValueError, match="NaN"):
        group_prox(torch.tensor([[float("nan"), 1.0]]), 1.0)
    with pytest.raises(ValueError, match="norm must be one of"):
        group_prox(u, 1.0, "l1")
    assert torch.equal(group_prox(u, 0.0), u)
    with pytest.raises(TypeError, match="a must be a torch.Tensor"):
        frequent_directions([[1.0, 2.0]], 1)
    with pytest.raises(TypeError, match="a must be a floating-point"):
        frequent_directions(torch.ones(3, 2, dtype=torch.long), 1)
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="a has NaN or infinite values"):
            frequent_directions(torch.tensor([[1.0, bad], [0.0, 1.0]]), 1)


@pytest.mark.parametrize("make", [lambda: L1Pruner(ratio=0.5), lambda: EPruner(beta=0.8),
                                  lambda: FilterSketch(ratio=0.5),
                                  lambda: SSR(train={"epochs": 1})])
@pytest.mark.parametrize(("where", "value"), [("3.weight", float("nan")),
                                              ("1.running_var", float("inf"))])
def test_non_finite_weights_are_refused_by_every_pruner(make, where, value):
    model, x = _vgg_like(), torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        dict((*model.named_parameters(), *model.named_buffers()))[where].view(-1)[2] = value
    with pytest.raises(ValueError, match=f"model has non-finite values.*'{where}'"):
        make()(model, x[:2], data=(x, torch.arange(4)))


def _never_traced(monkeypatch):
    import lightvision.compression.pruning.ssr as ssr_module

    def traced(*args, **kwargs):
        raise AssertionError("the model was traced before the data were checked")

    monkeypatch.setattr(ssr_module, "channel_groups", traced)


def test_ssr_checks_the_data_before_tracing_or_training(monkeypatch):
    X, y = _digits()
    X, y = X[:64], y[:64]
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                          nn.Linear(144, 10)).train()
    state = copy.deepcopy(model.state_dict())
    ssr = SSR(train={"epochs": 1, "batch_size": 16})
    _never_traced(monkeypatch)
    with pytest.raises(TypeError, match="data X must be floating point"):
        ssr(model, X[:2], data=(X.long(), y), inplace=True)
    int_loader = DataLoader(TensorDataset(X.long(), y), batch_size=16)
    for method in (ssr, SSR(train={"epochs": 1, "loss": nn.functional.cross_entropy})):
        with pytest.raises(TypeError, match="data batch 0 x must be floating point"):
            method(model, X[:2], data=int_loader)
    loader = DataLoader(TensorDataset(X, y + 1), batch_size=16)  # labels 1..10, 10 outputs
    for data in ((X, y + 1), loader, [(X[:32], y[:32]), (X[32:], y[32:] - 1)]):
        with pytest.raises(ValueError, match=r"targets range over .*10 outputs.*\[0, 10\)"):
            ssr(model, X[:2], data=data, inplace=True)
    with pytest.raises(ValueError, match=r"cross-entropy needs class indices, or prob"):
        ssr(model, X[:2], data=(X, y.float()), inplace=True)
    with pytest.raises(TypeError, match="one-shot iterator"):
        ssr(model, X[:2], data=iter(loader))
    after = model.state_dict()  # the caller's model, with inplace=True, is untouched
    assert all(torch.equal(after[k], v) for k, v in state.items()) and model.training
    with pytest.raises(ValueError, match=r"\[0, 10\)"), pytest.warns(DeprecationWarning):
        ssr.regularize(model, X, y + 1)  # the deprecated in-place path checks first too
    assert all(torch.equal(after[k], v) for k, v in state.items())


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"damping": 0.3}, ValueError, r"damping must be in \[0.5, 1\), got 0.3"),
    ({"damping": 1.0}, ValueError, "damping must be in"),
    ({"damping": "0.5"}, TypeError, "damping"),
    ({"damping": True}, TypeError, "damping"),
    ({"max_iter": 0}, ValueError, "max_iter"),
    ({"max_iter": 50.5}, TypeError, "max_iter"),
    ({"max_iter": None}, TypeError, "max_iter"),
    ({"convergence_iter": -1}, ValueError, "convergence_iter"),
    ({"convergence_iter": True}, TypeError, "convergence_iter"),
    ({"random_state": -1}, ValueError, "random_state"),
    ({"random_state": 0.5}, TypeError, "random_state"),
    ({"filters": [["abc", "d"]]}, TypeError, "filters must hold real numbers"),
    ({"filters": np.zeros(4)}, ValueError, r"filters must be a non-empty \(n, d\) array"),
    ({"filters": np.array([[0.0, np.nan], [1.0, 2.0]])}, ValueError, "filters contain NaN"),
    ({"filters": np.array([[0.0, np.inf], [1.0, 2.0]])}, ValueError, "filters contain NaN"),
    ({"filters": np.array([[1e200, 0.0], [-1e200, 0.0]])}, ValueError,
     "filters are too large"),
])
def test_exemplar_filters_checks_its_arguments_before_scikit_learn(kwargs, error, match):
    args = {"filters": np.random.default_rng(0).normal(size=(6, 4)), "beta": 0.8, **kwargs}
    with pytest.raises(error, match=match):
        exemplar_filters(**args)


def test_exemplar_filters_and_epruner_leave_numpy_global_state_alone():
    filters = _structured(24, 8, 3, seed=0)
    ints = exemplar_filters(filters, 0.8, random_state=7)
    assert np.array_equal(ints, exemplar_filters(filters, 0.8, random_state=np.int64(7)))
    assert np.array_equal(ints, exemplar_filters(filters, 0.8,
                                                 random_state=np.random.RandomState(7)))
    state = np.random.get_state()[1].copy()  # noqa: NPY002 (the global state under test)
    exemplar_filters(filters, 0.8, random_state=None)
    EPruner(beta=0.8, random_state=None)(_vgg_like((4, 4, 4, 4)), torch.randn(2, 1, 28, 28))
    exemplar_filters(filters, 0.8, random_state=2**40)  # beyond scikit-learn's int range
    assert np.array_equal(np.random.get_state()[1], state)  # noqa: NPY002


def test_group_prox_is_finite_for_huge_rows():
    u = torch.tensor([[1e30, 1e30], [3e38, -3e38], [3.0, 4.0], [0.0, 0.0]])
    soft = group_prox(u, 5.0)
    assert torch.isfinite(soft).all()
    # ||(1e30, 1e30)|| = 1.414e30 >> 5: kept to float32 precision; 3e38 rows' norm overflows
    # float32 itself and the row is kept as it is; (3, 4) has norm 5: exactly zero
    torch.testing.assert_close(soft[0], u[0])
    assert torch.equal(soft[1], u[1]) and torch.equal(soft[2:], torch.zeros(2, 2))
    assert torch.equal(group_prox(u, 1e60 ** 0.5 / 2, "l20")[:2], u[:2])


def _tiny_ssr_setup():
    """32 digits, a conv-BN-linear net and a one-epoch SSR that updates F/Y every step."""
    X, y = _digits()
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                          nn.Linear(144, 10))
    return X[:32], y[:32], model, SSR(train={"epochs": 1, "batch_size": 16}, update_every=1)


def test_ssr_checks_the_data_against_the_example_inputs_and_casts_float64():
    X, y, model, ssr = _tiny_ssr_setup()
    for data in ((torch.cat([X, X], 1), y), [(torch.cat([X, X], 1), y)], (X[:, 0], y)):
        with pytest.raises(ValueError, match=r"data.* inputs have shape .* but example_inputs"):
            ssr(model, X[:2], data=data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # too few ADMM updates
        small, _ = ssr(model, X[:2], data=(X.double(), y))
        reference, _ = ssr(model, X[:2], data=(X, y))
    assert small(X[:2]).dtype == torch.float32
    torch.testing.assert_close(small(X[:4]), reference(X[:4]))


def test_ssr_blames_its_training_for_weights_that_end_non_finite():
    X, y, model, ssr = _tiny_ssr_setup()
    with pytest.raises(ValueError, match=r"SSR's AULM training diverged: .* in "
                                         r"'1\.running_mean'; lower train\['lr'\], rho or "
                                         r"lam, or check data"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # too few ADMM updates
        ssr(model, X[:2], data=(torch.full_like(X, 1e30), y))
    with pytest.raises(FloatingPointError, match=r"SSR's AULM training: training diverged at "
                                                 r"epoch 1, step \d.*lower train\['lr'\]"):
        SSR(train={"epochs": 1, "batch_size": 16, "lr": 1e30})(model, X[:2], data=(X, y))
