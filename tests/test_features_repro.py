"""Reproduction at small scale of the claims of seed #9 (Chan et al. 2015; Verma et al. 2021).

Protocol: features -> scikit-learn ``LinearSVC`` (C=1, liblinear, as in the papers' code),
against the same SVM on raw pixels scaled to [0, 1]. Numbers quoted in the docstrings were
measured with these seeds on a 2-core AMD EPYC VM (torch 2.13.0, scikit-learn 1.9).
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from sklearn.model_selection import train_test_split
from sklearn.svm import LinearSVC

from lightvision.datasets import load_digits, load_fashion_mnist
from lightvision.features import AttnHybridNet, HybridNet, PCANet, TFNet

pytestmark = pytest.mark.repro

NETS = (PCANet, TFNet, HybridNet)


def _svm_error(train, y_train, test, y_test):
    svm = LinearSVC(C=1.0, max_iter=5000, random_state=0)
    return 1.0 - svm.fit(train, y_train).score(test, y_test)


def _raw_error(X, y, Xt, yt):
    scale = float(X.max())
    return _svm_error(X.reshape(len(X), -1) / scale, y, Xt.reshape(len(Xt), -1) / scale, yt)


def _errors(X, y, Xt, yt, **params):
    """Raw-pixel error and, per network, its error and (for HybridNet) its views' errors."""
    errors = {"raw": _raw_error(X, y, Xt, yt)}
    for cls in NETS:
        net = cls(random_state=0, **params).fit(X)
        errors[cls.__name__] = _svm_error(net.transform(X), y, net.transform(Xt), yt)
        if cls is HybridNet:
            views, test_views = net.transform_views(X), net.transform_views(Xt)
            for name, train, test in zip(("tensor", "pca"), views, test_views, strict=True):
                errors[f"HybridNet[{name}]"] = _svm_error(train, y, test, yt)
    return errors


@pytest.fixture(scope="module")
def fashion():
    """Stratified 2,000 train / 1,000 test images of the committed Fashion-MNIST subset."""
    X, y = load_fashion_mnist("train", source="bundled")
    Xt, yt = load_fashion_mnist("test", source="bundled")
    X, _, y, _ = train_test_split(X, y, train_size=2000, stratify=y, random_state=0)
    Xt, _, yt, _ = train_test_split(Xt, yt, train_size=1000, stratify=yt, random_state=0)
    return X, y, Xt, yt


@pytest.fixture(scope="module")
def fashion_errors(fashion):
    return _errors(*fashion)


def test_fashion_mnist_features_far_below_raw_pixels(fashion_errors):
    """Measured: raw 24.0 %, PCANet 12.4 %, TFNet 13.1 %, HybridNet 11.5 % (paper config:
    7x7 patches, 8-8 filters, 7x7 blocks, overlap 0.5). Each network must at least cut the
    raw-pixel error by a third (ratio <= 0.67; measured 0.48-0.55)."""
    for name in ("PCANet", "TFNet", "HybridNet"):
        assert fashion_errors[name] <= 0.67 * fashion_errors["raw"], fashion_errors


def test_hybridnet_no_worse_than_its_better_view(fashion_errors):
    """Verma et al.: the hybrid of both views beats either view. Measured: tensor view 12.5 %,
    PCA view 12.9 %, HybridNet 11.5 %. Tolerance 0.5 point (5 test images of 1,000)."""
    best_view = min(fashion_errors["HybridNet[tensor]"], fashion_errors["HybridNet[pca]"])
    assert fashion_errors["HybridNet"] <= best_view + 0.005, fashion_errors


def test_attn_hybridnet_attention_helps(fashion, fashion_errors):
    """Attn-HybridNet ([INTERP] fusion: 256 whitened PCA components per view, feature-wise
    sigmoid attention trained with the labels). Measured on this sample with 2 threads:
    12.8 % (12.2 % with 1 thread; 11.9 % against HybridNet's 12.2 % on a second sample drawn
    with seed 1); the same reduced, whitened concatenation without attention: 14.3 %;
    HybridNet: 11.5 %.

    Asserted: the attention beats the reduced concatenation by >= 1 point. The paper's claim
    that Attn-HybridNet is no worse than HybridNet is NOT reproduced by this interpretation
    (0.7-1.3 points worse on this sample; 1.6 on split seed 2; 0.55 with 5,000 training
    images; variants tried are listed in ``AttentionFusion``'s Notes); the second assertion
    only guards against a regression beyond 2 points."""
    X, y, Xt, yt = fashion
    attn = AttnHybridNet(random_state=0).fit(X, y)
    error = _svm_error(attn.transform(X), y, attn.transform(Xt), yt)
    views = attn.hybrid_.transform_views(X), attn.hybrid_.transform_views(Xt)
    plain = _svm_error(attn.fusion_.project(views[0]), y, attn.fusion_.project(views[1]), yt)
    assert error <= plain - 0.01, (error, plain)
    assert error <= fashion_errors["HybridNet"] + 0.02, (error, fashion_errors)


def test_digits_features_far_below_raw_pixels():
    """8x8 digits, stratified 75/25 split (seed 0), 3x3 patches and 4x4 blocks. Measured:
    raw 3.1 %, PCANet 1.1 %, TFNet 0.4 %, HybridNet 0.4 % (450 test images). Each network
    must at least halve the raw-pixel error."""
    images, labels = load_digits()
    X, Xt, y, yt = train_test_split(images, labels, test_size=0.25, stratify=labels,
                                    random_state=0)
    errors = _errors(X, y, Xt, yt, patch_size=3, block_size=4)
    for name in ("PCANet", "TFNet", "HybridNet"):
        assert errors[name] <= 0.5 * errors["raw"], errors


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tiny_data_protocol(fashion, seed):
    """Verma's tiny-data protocol: 10 training images per class (100 in all), filters and SVM
    learned from them alone, tested on 1,000 images. Measured error (raw / PCANet / TFNet /
    HybridNet): seed 0: 28.5 / 22.1 / 21.4 / 21.6 %; seed 1: 28.5 / 22.4 / 22.9 / 21.9 %;
    seed 2: 32.8 / 26.8 / 26.1 / 26.0 %. Each network must beat raw pixels by >= 3 points."""
    X, y = load_fashion_mnist("train", source="bundled")
    rng = np.random.default_rng(seed)
    idx = np.concatenate([rng.choice(np.flatnonzero(y == c), 10, replace=False)
                          for c in range(10)])
    _, _, Xt, yt = fashion
    raw = _raw_error(X[idx], y[idx], Xt, yt)
    for cls in NETS:
        net = cls(random_state=0).fit(X[idx])
        error = _svm_error(net.transform(X[idx]), y[idx], net.transform(Xt), yt)
        assert error <= raw - 0.03, (cls.__name__, error, raw)


def test_pcanet_mnist_config_transform_throughput(fashion):
    """The MNIST configuration's whole transform (convolutions, hashing, block histograms,
    sparse output) against its two conv2d stages alone (``F.conv2d`` with the fitted filters
    on the same 64-image batches), timed interleaved in this test, best of several passes over
    2,000 images. A ratio, so the machine's speed and load cancel out; absolute figures are
    left to asv (``PCANetThroughputSuite``).

    Measured (2-core AMD EPYC, this timing as a script, best of 9 interleaved passes), idle
    machine: before issue 14, 0.30 with torch's 2 threads (4,933 against 16,504 images/s) and
    0.37 with one; after (word-packed hash, sorted-block sparse histograms), 0.33 with 2
    threads (6,744 against 20,256 images/s) and 0.50 with one; under load 5-10 the two-thread
    ratio was 0.48-0.55. The post-convolution work runs on one core, so the ratio falls as
    torch's threads speed the convolutions up. Asserted: >= 0.25, a guard against the hashing
    and histograms regressing to a Python-level loop, not the issue's 0.75 target (not
    reached: see the issue-14 note).
    """
    import torch
    import torch.nn.functional as F

    X, _, _, _ = fashion
    net = PCANet(random_state=0).fit(X[:500])
    weights = [torch.from_numpy(f).float() for f in net.filters_]

    def conv2d_only():
        for start in range(0, len(X), net.batch_size):
            x = torch.from_numpy(X[start:start + net.batch_size]).float()[:, None]
            for stage, weight in enumerate(weights):
                x = x if stage == 0 else x.reshape(-1, 1, *x.shape[-2:])
                x = F.conv2d(x, weight, padding=weight.shape[-1] // 2)

    net.transform(X[:64])
    conv2d_only()
    transform = reference = math.inf
    for _ in range(4):  # interleaved, so a burst of load hits both
        transform = min(transform, _seconds(net.transform, X))
        reference = min(reference, _seconds(conv2d_only))
    ratio = reference / transform
    assert ratio >= 0.25, (f"transform reaches {ratio:.2f} of the conv2d-only throughput "
                           f"({len(X) / transform:.0f} against {len(X) / reference:.0f} "
                           "images/s)")


def _seconds(function, *args):
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start
