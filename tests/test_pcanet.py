"""PCANet, TFNet and HybridNet checked against values computed independently: brute-force
patch projections, covariance eigenvectors, histograms and pyramids written with plain numpy
loops, and the formulas of Chan et al. and Verma et al."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from numpy.lib.stride_tricks import sliding_window_view
from sklearn.base import clone
from sklearn.svm import LinearSVC

from lightvision.datasets import load_digits
from lightvision.features import HybridNet, PCANet, TFNet
from lightvision.features.filterbank import (
    block_starts,
    block_stride,
    cascade,
    hash_codes,
    matlab_round,
    pca_conv_bank,
    tensor_conv_bank,
)
from lightvision.registry import FEATURES

SMALL = {"patch_size": 3, "n_filters": (2, 2), "block_size": 4, "random_state": 0}


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def _images(n, size=8, channels=None, seed=0):
    shape = (n, size, size) if channels is None else (n, size, size, channels)
    return np.random.default_rng(seed).integers(0, 256, size=shape).astype(np.uint8)


def _dense(matrix):
    return matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix)


# -- formulas ----------------------------------------------------------------------------------
def test_matlab_round_and_block_stride():
    assert [matlab_round(v) for v in (2.5, 3.5, -2.5, 0.49, 2.4999)] == [3, 4, -3, 0, 2]
    assert block_stride(7, 0.5) == 4  # 3.5 -> 4 (Python's round would give 4 by luck)
    assert block_stride(8, 0.5) == 4
    assert block_stride(5, 0.5) == 3  # 2.5 -> 3 (Python's round gives 2)
    assert block_stride(7, 0.0) == 7
    assert block_starts(28, 7, 4).tolist() == [0, 4, 8, 12, 16, 20]
    assert block_starts(32, 8, 4).tolist() == [0, 4, 8, 12, 16, 20, 24]


def test_mnist_configuration_has_73728_features():
    net = PCANet(random_state=0).fit(_images(6, size=28))
    assert net.n_features_out_ == 8 * 256 * 36 == 73_728
    features = net.transform(_images(3, size=28, seed=1))
    assert features.shape == (3, 73_728)
    assert isinstance(features, sp.csr_matrix) and features.dtype == np.float32
    assert len(net.get_feature_names_out()) == 73_728


def test_pyramid_and_one_stage_dimensions():
    X = _images(4, size=28)
    pyramid = PCANet(pyramid=(4, 2, 1), random_state=0).fit(X)
    assert pyramid.transform(X).shape == (4, 8 * 256 * (16 + 4 + 1))
    one = PCANet(n_filters=(6,), random_state=0).fit(X)
    assert one.transform(X).shape == (4, 1 * 2 ** 6 * 36)
    per_stage = PCANet(patch_size=(5, 3), n_filters=(4, 3), block_size=8, random_state=0).fit(X)
    assert per_stage.transform(X).shape == (4, 4 * 2 ** 3 * 6 * 6)  # stride 4: 6 blocks
    assert [f.shape for f in per_stage.filters_] == [(4, 1, 5, 5), (3, 1, 3, 3)]


def test_verma_colour_configuration_dimensions():
    X = _images(3, size=32, channels=3)
    tf = TFNet(patch_size=5, block_size=8, pyramid=(4, 2, 1), random_state=0).fit(X)
    assert [f.shape for f in tf.filters_] == [(27, 3, 5, 5), (8, 1, 5, 5)]
    assert tf.n_features_out_ == 27 * 256 * 21 == 145_152
    hybrid = HybridNet(patch_size=5, n_filters=(27, 8), block_size=8, pyramid=(4, 2, 1),
                       random_state=0).fit(X)
    f_tensor, f_pca = hybrid.transform_views(X[:2])
    assert f_tensor.shape == f_pca.shape == (2, 145_152)


# -- hashing and histograms --------------------------------------------------------------------
def test_hash_bit_order_first_filter_is_msb():
    # two groups of three maps on a 1x2 image; H(x) = 1 only for x > 0 (0 and -0 give 0)
    maps = torch.tensor([
        [[1.0, 0.0]], [[-2.0, 3.0]], [[0.5, -0.0]],  # group 0: bits (1,0,1)=5, (0,1,0)=2
        [[0.0, 9.0]], [[7.0, 9.0]], [[-1.0, 9.0]],   # group 1: bits (0,1,0)=2, (1,1,1)=7
    ]).reshape(1, 6, 1, 2)
    assert hash_codes(maps, 3).tolist() == [[[[5, 2]], [[2, 7]]]]
    wide = torch.zeros(1, 12, 1, 1)
    wide[0, 0] = 1.0  # first of 12 filters -> 2^11
    assert hash_codes(wide, 12).item() == 2 ** 11


def _naive_features(codes, n_bits, block, stride, pyramid):
    """Chan's HashingHist.m output layer with plain loops: codes (G, H, W) -> feature."""
    n_groups, height, width = codes.shape
    tops, lefts = range(0, height - block + 1, stride), range(0, width - block + 1, stride)
    feature = []
    for g in range(n_groups):
        hists, centres = [], []
        for top in tops:
            for left in lefts:
                window = codes[g, top:top + block, left:left + block].ravel()
                hists.append(np.bincount(window, minlength=2 ** n_bits).astype(float))
                centres.append((left + math.ceil(block / 2), top + math.ceil(block / 2)))
        if pyramid is None:
            feature += [h * 2 ** n_bits / h.sum() for h in hists]
            continue
        for p in pyramid:
            for cell in range(p * p):
                members = [h for h, (cx, cy) in zip(hists, centres, strict=True)
                           if (math.ceil(cy / (height / p)) - 1) * p
                           + math.ceil(cx / (width / p)) - 1 == cell]
                feature.append(np.max(members, axis=0) if members else np.zeros(2 ** n_bits))
    feature = np.concatenate(feature)
    return feature / np.linalg.norm(feature) if pyramid is not None else feature


@pytest.mark.parametrize("pyramid", [None, (4, 2, 1)])  # level 4 has an empty cell
def test_output_layer_matches_naive_histograms(pyramid):
    X = _images(3, size=12)
    net = PCANet(patch_size=3, n_filters=(3, 4), block_size=5, overlap=0.5, pyramid=pyramid,
                 sparse=False, random_state=0).fit(X)
    banks = [pca_conv_bank(f) for f in net.filters_]
    codes = hash_codes(cascade(torch.from_numpy(X[:, None].astype(np.float32)), banks), 4)
    expected = np.stack([_naive_features(c.numpy().astype(np.int64), 4, 5, 3, pyramid)
                         for c in codes])
    np.testing.assert_allclose(net.transform(X), expected, rtol=1e-6, atol=1e-7)


def test_block_histograms_sum_to_two_to_the_l():
    net = PCANet(patch_size=3, n_filters=(3, 5), block_size=4, sparse=False,
                 random_state=0).fit(_images(5))
    features = net.transform(_images(4, seed=2)).reshape(4, 3, 9, 2 ** 5)
    np.testing.assert_allclose(features.sum(axis=-1), 2 ** 5, rtol=1e-6)


def test_pyramid_output_is_l2_normalised():
    net = PCANet(patch_size=3, n_filters=(2, 3), block_size=4, pyramid=(2, 1),
                 random_state=0).fit(_images(5))
    features = net.transform(_images(4, seed=3))
    np.testing.assert_allclose(sp.linalg.norm(features, axis=1), 1.0, rtol=1e-6)


# -- filters -----------------------------------------------------------------------------------
def _explicit_projection(image, weight, mean_removal, mean_patch=None):
    """Project every zero-padded patch of a (C, H, W) image on each filter, with plain loops."""
    n_filters, channels, k, _ = weight.shape
    pad = (k - 1) // 2
    padded = np.pad(image, ((0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((n_filters, *image.shape[1:]))
    for y in range(image.shape[1]):
        for x in range(image.shape[2]):
            patch = padded[:, y:y + k, x:x + k].astype(np.float64)
            patch = patch - patch.mean() if mean_removal else patch - mean_patch
            out[:, y, x] = np.tensordot(weight, patch, axes=3)
    return out


def test_pca_filtering_equals_explicit_mean_removed_patch_projection():
    rng = np.random.default_rng(4)
    image = rng.normal(size=(3, 7, 6))
    weight = rng.normal(size=(4, 3, 5, 5))  # not zero-mean: the mean removal matters
    got = cascade(torch.from_numpy(image[None].astype(np.float32)), [pca_conv_bank(weight)])
    np.testing.assert_allclose(got[0].numpy(), _explicit_projection(image, weight, True),
                               rtol=1e-4, atol=1e-4)


def test_tensor_filtering_equals_explicit_mean_patch_projection():
    rng = np.random.default_rng(5)
    image = rng.normal(size=(1, 6, 7))
    weight, mean_patch = rng.normal(size=(3, 1, 3, 3)), rng.normal(size=(1, 3, 3))
    got = cascade(torch.from_numpy(image[None].astype(np.float32)),
                  [tensor_conv_bank(weight, mean_patch)])
    expected = _explicit_projection(image, weight, False, mean_patch)
    np.testing.assert_allclose(got[0].numpy(), expected, rtol=1e-4, atol=1e-4)


def _pca_reference(maps, k, n_filters):
    """Leading eigenvectors of R = mean of x x^T over all valid patches of (N, C, H, W) maps,
    each patch (channels stacked) minus its own mean."""
    windows = sliding_window_view(maps.astype(np.float64), (k, k), axis=(2, 3))
    patches = windows.transpose(0, 2, 3, 1, 4, 5).reshape(-1, maps.shape[1] * k * k)
    patches = patches - patches.mean(axis=1, keepdims=True)
    _, vectors = np.linalg.eigh(patches.T @ patches / len(patches))
    return vectors[:, ::-1][:, :n_filters].T


def _same_up_to_sign(a, b):
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    signs = np.sign(np.sum(a * b, axis=1, keepdims=True))
    np.testing.assert_allclose(a, signs * b, atol=1e-5)


def test_pca_filters_are_chans_orthonormal_eigenvectors(digits):
    X = digits[0][:30]
    net = PCANet(patch_size=3, n_filters=(4, 3), block_size=4, n_patches=None).fit(X)
    for filters in net.filters_:
        flat = filters.reshape(len(filters), -1)
        np.testing.assert_allclose(flat @ flat.T, np.eye(len(filters)), atol=1e-10)
        largest = flat[np.arange(len(flat)), np.abs(flat).argmax(axis=1)]
        assert (largest > 0).all()  # the sign convention
    _same_up_to_sign(net.filters_[0], _pca_reference(X[:, None], 3, 4))
    stage1 = torch.nn.functional.conv2d(
        torch.from_numpy(X[:, None].astype(np.float32)),
        torch.from_numpy((net.filters_[0] - net.filters_[0].mean()).astype(np.float32)),
        padding=1).numpy()
    _same_up_to_sign(net.filters_[1], _pca_reference(stage1.reshape(-1, 1, 8, 8), 3, 3))


def test_colour_pca_stacks_channels(digits):
    X = _images(6, channels=3)
    net = PCANet(patch_size=3, n_filters=(5, 2), block_size=4, n_patches=None).fit(X)
    assert net.filters_[0].shape == (5, 3, 3, 3)
    _same_up_to_sign(net.filters_[0], _pca_reference(X.transpose(0, 3, 1, 2), 3, 5))


def test_grey_tucker_filters_are_outer_products_with_second_to_last_dropped(digits):
    net = TFNet(patch_size=5, block_size=4, random_state=0).fit(digits[0][:50])
    for filters, (rows, cols) in zip(net.filters_, net.factors_, strict=True):
        assert filters.shape == (8, 1, 5, 5)
        products = [np.outer(rows[:, i], cols[:, j]) for i in range(3) for j in range(3)]
        expected = [products[m] for m in (0, 1, 2, 3, 4, 5, 6, 8)]  # index 7 dropped
        np.testing.assert_allclose(filters[:, 0], expected, atol=1e-12)
        for factor in (rows, cols):
            np.testing.assert_allclose(factor.T @ factor, np.eye(3), atol=1e-8)
            assert (factor[np.abs(factor).argmax(axis=0), [0, 1, 2]] > 0).all()


def test_colour_tucker_filters_are_triple_outer_products():
    net = TFNet(patch_size=3, n_stages=1, rank=2, block_size=4, random_state=0)
    net.fit(_images(8, channels=3))
    rows, cols, chans = net.factors_[0]
    filters = net.filters_[0]
    assert filters.shape == (8, 3, 3, 3)  # rank 2: 2 x 2 x 2, nothing dropped in colour
    expected = [np.einsum("a,b,c->cab", rows[:, i], cols[:, j], chans[:, m])
                for i in range(2) for j in range(2) for m in range(2)]
    np.testing.assert_allclose(filters, expected, atol=1e-12)


def test_tucker_fit_beats_independent_hosvd(digits):
    """HOOI (tensorly) starts from the HOSVD and may only improve the fit; the factors span the
    leading subspaces, checked against numpy's eigh of the mode Gram matrices."""
    X = digits[0][:40]
    net = TFNet(patch_size=5, n_stages=1, block_size=4, n_patches=None).fit(X)
    patches = sliding_window_view(X.astype(np.float64), (5, 5), axis=(1, 2)).reshape(-1, 5, 5)
    centred = patches - patches.mean(axis=0)
    np.testing.assert_allclose(net.patch_means_[0][0], patches.mean(axis=0), atol=1e-10)

    def residual(u, v):
        core = np.einsum("nab,ai,bj->nij", centred, u, v)
        return np.linalg.norm(centred) ** 2 - np.linalg.norm(core) ** 2

    hosvd = [np.linalg.eigh(np.einsum("nab,ncb->ac", centred, centred))[1][:, ::-1][:, :3],
             np.linalg.eigh(np.einsum("nab,nac->bc", centred, centred))[1][:, ::-1][:, :3]]
    assert residual(*net.factors_[0]) <= residual(*hosvd) * (1 + 1e-9)


def test_hybrid_stage_two_learns_from_both_views_pooled(digits):
    X = digits[0][:20]
    net = HybridNet(patch_size=3, n_filters=(3, 2), rank=2, block_size=4,
                    n_patches=None).fit(X)
    x = torch.from_numpy(X[:, None].astype(np.float32))
    tensor_maps = cascade(x, [tensor_conv_bank(net.tensor_filters_[0], net.patch_means_[0])])
    pca_maps = cascade(x, [pca_conv_bank(net.pca_filters_[0])])
    pooled = torch.cat([tensor_maps, pca_maps], dim=1).reshape(-1, 1, 8, 8).numpy()
    _same_up_to_sign(net.pca_filters_[1], _pca_reference(pooled, 3, 2))
    pca_only = _pca_reference(pca_maps.reshape(-1, 1, 8, 8).numpy(), 3, 2)
    assert not np.allclose(np.abs(net.pca_filters_[1].reshape(2, -1)), np.abs(pca_only))
    windows = sliding_window_view(pooled[:, 0].astype(np.float64), (3, 3), axis=(1, 2))
    np.testing.assert_allclose(net.patch_means_[1][0], windows.reshape(-1, 3, 3).mean(axis=0),
                               rtol=1e-5, atol=1e-4)


def test_hybrid_views_are_the_two_separate_chains(digits):
    X = digits[0][:60]
    net = HybridNet(**SMALL, rank=2).fit(X)
    f_tensor, f_pca = net.transform_views(X[:7])
    np.testing.assert_array_equal(_dense(net.transform(X[:7])),
                                  np.hstack([_dense(f_tensor), _dense(f_pca)]))
    pca = PCANet(**SMALL).fit(X)
    pca.filters_ = net.pca_filters_  # the PCA chain alone, with the hybrid's filters
    np.testing.assert_array_equal(_dense(pca.transform(X[:7])), _dense(f_pca))


# -- estimator behaviour -----------------------------------------------------------------------
@pytest.mark.parametrize("cls", [PCANet, TFNet, HybridNet])
def test_sparse_dense_batch_size_and_determinism(cls, digits):
    X = digits[0][:80]
    params = dict(FEATURES.get(cls.__name__.lower()).test_params, n_patches=500)
    reference = cls(**params).fit(X)
    expected = reference.transform(X[:25])
    assert isinstance(expected, sp.csr_matrix) and expected.dtype == np.float32
    dense = clone(reference).set_params(sparse=False).fit(X).transform(X[:25])
    assert isinstance(dense, np.ndarray) and dense.dtype == np.float32
    np.testing.assert_array_equal(expected.toarray(), dense)
    batched = clone(reference).set_params(batch_size=7).fit(X).transform(X[:25])
    np.testing.assert_array_equal(batched.toarray(), dense)
    other_seed = cls(**dict(params, random_state=1)).fit(X)
    assert not np.allclose(_dense(other_seed.transform(X[:25])), dense)


@pytest.mark.parametrize("cls", [PCANet, TFNet, HybridNet])
def test_clone_and_pickle_round_trip(cls, digits):
    X = digits[0][:60]
    net = cls(**FEATURES.get(cls.__name__.lower()).test_params).fit(X)
    restored = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(_dense(restored.transform(X[:9])),
                                  _dense(net.transform(X[:9])))
    np.testing.assert_array_equal(_dense(clone(net).fit(X).transform(X[:9])),
                                  _dense(net.transform(X[:9])))
    assert clone(net).get_params() == net.get_params()


def test_any_real_dtype_gives_the_same_features(digits):
    X = digits[0][:40]
    net = PCANet(**SMALL).fit(X)
    expected = net.transform(X).toarray()
    for dtype in (np.int64, np.float32, np.float64):
        np.testing.assert_array_equal(net.transform(X.astype(dtype)).toarray(), expected)
    np.testing.assert_array_equal(net.transform(X[..., None]).toarray(), expected)


def test_registry_entries_run_quickly(digits):
    assert {"pcanet", "tfnet", "hybridnet"} <= set(FEATURES.list())
    for entry in FEATURES.entries():
        if entry.name in {"pcanet", "tfnet", "hybridnet"}:
            assert {"images", "unsupervised"} <= entry.tags
            assert entry.meta["test_input_shape"] == (8, 8)
            features = entry.create(**entry.test_params).fit_transform(digits[0][:100])
            assert features.shape[0] == 100


def test_pcanet_beats_raw_pixels_on_digits(digits):
    X, y = digits
    net = PCANet(patch_size=3, n_filters=(4, 4), block_size=4, random_state=0).fit(X[:1000])
    features = net.transform(X)
    pcanet = LinearSVC(C=0.1).fit(features[:1000], y[:1000]).score(features[1000:], y[1000:])
    raw = max(LinearSVC(C=c, max_iter=20_000).fit(X[:1000].reshape(1000, -1) / 16, y[:1000])
              .score(X[1000:].reshape(-1, 64) / 16, y[1000:]) for c in (0.01, 0.1, 1.0))
    assert pcanet > raw + 0.02, (pcanet, raw)  # measured: 0.962 vs 0.928


# -- errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("X", "error", "match"), [
    (np.zeros((4, 8)), ValueError, "X must be grey images"),
    (np.zeros((2, 8, 8, 1, 1)), ValueError, "X must be grey images"),
    (np.zeros((0, 8, 8)), ValueError, "X is empty"),
    (np.full((2, 8, 8), np.nan), ValueError, "X contains NaN"),
    (np.full((2, 8, 8), np.inf), ValueError, "X contains NaN"),
    (np.zeros((2, 8, 8), dtype=bool), TypeError, "X must hold real numbers"),
    (np.zeros((2, 8, 8), dtype=complex), TypeError, "X must hold real numbers"),
    (np.zeros((2, 2, 2)), ValueError, "X holds 2x2 images, smaller than the patch size"),
])
def test_bad_images_raise(X, error, match):
    with pytest.raises(error, match=match):
        PCANet(**SMALL).fit(X)


def test_transform_checks_channels_and_size(digits):
    net = PCANet(**SMALL).fit(digits[0][:20])
    with pytest.raises(ValueError, match="X has 3 channel"):
        net.transform(_images(2, channels=3))
    with pytest.raises(ValueError, match="X holds 9x9 images"):
        net.transform(_images(2, size=9))
    with pytest.raises(ValueError, match="X contains NaN"):
        net.transform(np.full((1, 8, 8), np.nan))
    with pytest.raises(Exception, match="not fitted"):
        PCANet().transform(digits[0][:2])


@pytest.mark.parametrize(("params", "error", "match"), [
    ({"patch_size": 4}, ValueError, "patch_size"),
    ({"patch_size": (3, 3, 3)}, ValueError, "patch_size"),
    ({"patch_size": 0}, ValueError, "patch_size"),
    ({"patch_size": -1}, ValueError, "patch_size"),
    ({"patch_size": "3"}, TypeError, "patch_size"),
    ({"overlap": 1.0}, ValueError, "overlap"),
    ({"overlap": -0.1}, ValueError, "overlap"),
    ({"overlap": 0.95}, ValueError, "overlap"),  # stride round(0.05 * 4) = 0
    ({"n_filters": (0, 2)}, ValueError, "n_filters"),
    ({"n_filters": (2.5, 2)}, TypeError, "n_filters"),
    ({"n_filters": 4}, TypeError, "n_filters"),
    ({"n_filters": ()}, ValueError, "n_filters"),
    ({"n_filters": (10, 2)}, ValueError, "n_filters"),  # 10 > 3 x 3
    ({"n_filters": (9, 2)}, ValueError, r"n_filters\[0\] = 9 exceeds 8"),  # null direction
    ({"n_filters": (2, 9)}, ValueError, r"n_filters\[1\] = 9 exceeds 8"),
    ({"n_filters": (2, 17)}, ValueError, "n_filters"),  # 2^17 bins
    ({"block_size": 0}, ValueError, "block_size"),
    ({"block_size": 9}, ValueError, "block size 9"),
    ({"pyramid": (2, 0)}, ValueError, "pyramid"),
    ({"n_patches": 0}, ValueError, "n_patches"),
    ({"batch_size": 1.5}, TypeError, "batch_size"),
    ({"sparse": "yes"}, TypeError, "sparse"),
])
def test_bad_hyperparameters_raise(params, error, match, digits):
    with pytest.raises(error, match=match):
        PCANet(**dict(SMALL, **params)).fit(digits[0][:10])


@pytest.mark.parametrize(("params", "match"), [
    ({"rank": 1}, "rank"), ({"rank": 5}, "rank"), ({"max_iter": 0}, "max_iter"),
    ({"tol": -1.0}, "tol"), ({"n_stages": 0}, "n_stages"),
])
def test_bad_tucker_hyperparameters_raise(params, match, digits):
    with pytest.raises(ValueError, match=match):
        TFNet(**dict(dict(patch_size=3, rank=2, block_size=4), **params)).fit(digits[0][:10])


# -- hardening (issue 14) ----------------------------------------------------------------------
def test_filter_count_capped_below_the_null_constant_direction(digits):
    """Mean-removed 3x3 patches span at most 8 of 9 dimensions: 8 filters are all live
    (eigenvalue > 0), a 9th would be the constant direction (issue 14, item 8)."""
    net = PCANet(patch_size=3, n_filters=(8, 2), block_size=4, random_state=0).fit(
        digits[0][:50])
    constant = np.full(9, 1 / 3)
    assert np.abs(net.filters_[0].reshape(8, 9) @ constant).max() < 1e-4  # the 9th: 1
    with pytest.raises(ValueError, match="exceeds 8"):
        HybridNet(patch_size=3, n_filters=(9, 2), rank=2, block_size=4).fit(digits[0][:20])


def test_exponential_stage_counts_refused_up_front_with_the_estimate():
    """4 images of 28x28: 2^20 maps each are 12 GiB of float32 per batch (limit 8 GiB)."""
    X = _images(4, size=28)
    with pytest.raises(ValueError, match=r"TFNet with 17 stages of 8 filters .* GiB"):
        TFNet(n_stages=17, patch_size=3, block_size=4).fit(X)
    with pytest.raises(ValueError, match=r"1,048,576 maps of 28x28 per image: about 12\.2 GiB"):
        PCANet(patch_size=3, n_filters=(2,) * 20, block_size=4).fit(X)
    with pytest.raises(ValueError, match=r"HybridNet with 12 stages"):
        HybridNet(patch_size=3, n_filters=(8,) * 12, rank=2, block_size=4).fit(X)


@pytest.mark.parametrize("cls", [PCANet, TFNet, HybridNet])
@pytest.mark.parametrize("scale", [1e30, 1e-30])
def test_huge_and_tiny_images_give_the_features_of_ordinary_ones(cls, scale, digits):
    """The networks are scale-invariant; 1e30 images overflowed the float32 patch Gram matrix
    (LinAlgError) and are now rescaled exactly by a power of two."""
    X = digits[0][:40].astype(np.float64)
    params = FEATURES.get(cls.__name__.lower()).test_params
    expected = cls(**params).fit(X).transform(X).toarray()
    net = cls(**params).fit(X * scale)
    np.testing.assert_array_equal(net.transform(X * scale).toarray(), expected)
    assert net.input_scale_ != 1.0


def test_transform_refuses_values_beyond_float32_filtering(digits):
    net = PCANet(**SMALL).fit(digits[0][:20])
    assert net.input_scale_ == 1.0
    with pytest.raises(ValueError, match="X holds values up to 1e"):
        net.transform(np.full((2, 8, 8), 1e200))


def test_numpy_scalar_parameters_and_grid_search(digits):
    """Every parameter accepts numpy scalars; GridSearchCV over numpy grids works (item 5)."""
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline

    X, y = digits[0][:60], digits[1][:60]
    plain = PCANet(**SMALL).fit(X).transform(X).toarray()
    numpy_params = dict(patch_size=np.int64(3), n_filters=np.array([2, 2]),
                        block_size=np.int32(4), overlap=np.float32(0.5),
                        n_patches=np.int64(100_000), batch_size=np.int16(64),
                        sparse=np.bool_(True), random_state=np.int64(0))
    np.testing.assert_array_equal(PCANet(**numpy_params).fit(X).transform(X).toarray(), plain)
    tucker = dict(patch_size=np.int64(3), rank=np.int64(2), max_iter=np.int64(10),
                  tol=np.float64(1e-6), block_size=np.int64(4), pyramid=np.array([2, 1]),
                  random_state=0)
    TFNet(n_stages=np.int64(2), **tucker).fit(X).transform(X)
    HybridNet(n_filters=(np.int64(2), np.int64(2)), **tucker).fit(X).transform(X)
    search = GridSearchCV(make_pipeline(PCANet(**SMALL), LinearSVC(C=0.1)),
                          {"pcanet__block_size": np.array([4, 8]),
                           "pcanet__overlap": np.array([0.0, 0.5])}, cv=2)
    search.fit(X, y)
    assert isinstance(search.best_params_["pcanet__block_size"], np.integer)


def test_random_state_none_leaves_global_generators_alone(digits):
    np.random.seed(0)  # noqa: NPY002 (the global state is what is checked)
    state = np.random.get_state()[1].copy()  # noqa: NPY002
    torch_state = torch.random.get_rng_state()
    PCANet(patch_size=3, n_filters=(2, 2), block_size=4, n_patches=100).fit(digits[0][:10])
    assert np.array_equal(np.random.get_state()[1], state)  # noqa: NPY002
    assert torch.equal(torch.random.get_rng_state(), torch_state)


@pytest.mark.parametrize(("n_bits", "shape"), [(5, (3, 5)), (8, (4, 4)), (11, (2, 7))])
def test_word_packed_hash_equals_the_bit_formula(n_bits, shape):
    maps = torch.from_numpy(np.random.default_rng(n_bits).normal(size=(3, 2 * n_bits, *shape))
                            .astype(np.float32))
    maps[0, 0, 0, 0] = 0.0  # H(0) = 0
    bits = (maps.numpy() > 0).reshape(3, 2, n_bits, *shape).astype(np.int64)
    expected = np.einsum("bgjhw,j->bghw", bits, 2 ** np.arange(n_bits - 1, -1, -1))
    codes = hash_codes(maps, n_bits)
    assert codes.dtype == (torch.uint8 if n_bits <= 8 else torch.int32)
    np.testing.assert_array_equal(codes.numpy(), expected)
