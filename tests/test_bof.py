"""Bag-of-Features pooling (seed #24): shapes, stability, a brute-force histogram, k-means init."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from lightvision.nn.bof import BoFPooling
from lightvision.registry import BLOCKS

SIZES = [(1, 1), (1, 4), (2, 2), (3, 5), (7, 4), (8, 8), (9, 13)]


@pytest.mark.parametrize("kind", ["rbf", "linear"])
@pytest.mark.parametrize(
    ("level", "size"),
    [(0, size) for size in SIZES] + [(1, size) for size in SIZES if min(size) >= 2],
)
def test_output_shapes(kind, level, size):
    pool = BoFPooling(6, n_codewords=5, spatial_level=level, kind=kind)
    out = pool(torch.randn(3, 6, *size))
    assert out.shape == (3, pool.out_features) == (3, 5 * (5 if level else 1))
    # every block of n_codewords values is a histogram
    torch.testing.assert_close(out.view(3, -1, 5).sum(-1), torch.ones(3, out.shape[1] // 5))


@pytest.mark.parametrize("kind", ["rbf", "linear"])
@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_memberships_normalised_finite_and_never_all_zero(kind, scale):
    torch.manual_seed(0)
    pool = BoFPooling(8, n_codewords=16, spatial_level=1, kind=kind)
    x = (torch.randn(2, 8, 5, 6) * scale + scale).requires_grad_(True)
    u = pool.memberships(x)
    assert u.shape == (2, 16, 5, 6) and torch.isfinite(u).all()
    torch.testing.assert_close(u.sum(1), torch.ones(2, 5, 6))
    assert (u.amax(1) > 0.0).all()
    out = pool(x)
    assert torch.isfinite(out).all()
    out.square().sum().backward()
    grads = [p.grad for p in pool.parameters()] + [x.grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_far_away_inputs_go_to_the_nearest_codeword():
    pool = BoFPooling(2, n_codewords=3)
    with torch.no_grad():
        pool.codewords.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
        pool.widths.fill_(0.01)
    x = torch.tensor([1e4, 0.0]).view(1, 2, 1, 1)  # exp(-1e6) would underflow without softmax
    torch.testing.assert_close(pool(x), torch.tensor([[0.0, 1.0, 0.0]]))


def _brute_force(pool, x):
    """Histograms by explicit loops over positions and codewords (float64, direct distances)."""
    v = pool.codewords.detach().double().numpy()
    s = np.abs(pool.widths.detach().double().numpy())
    x = x.double().numpy()
    n, _, h, w = x.shape
    k = pool.n_codewords
    u = np.zeros((n, k, h, w))
    for i, r, c in itertools.product(range(n), range(h), range(w)):
        sim = [math.exp(-np.sqrt(np.sum((x[i, :, r, c] - v[m]) ** 2)) / s[m]) for m in range(k)]
        u[i, :, r, c] = np.array(sim) / sum(sim)
    regions = [(slice(None), slice(None))]
    if pool.spatial_level == 1:
        hh, hw = h // 2, w // 2  # integer midpoints: the bottom/right quadrants get the rest
        regions += [(slice(0, hh), slice(0, hw)), (slice(0, hh), slice(hw, w)),
                    (slice(hh, h), slice(0, hw)), (slice(hh, h), slice(hw, w))]
    out = []
    for i in range(n):
        row = []
        for rows, cols in regions:
            block = u[i, :, rows, cols]
            row.extend(block.sum(axis=(1, 2)) / (block.shape[1] * block.shape[2]))
        out.append(row)
    return np.array(out)


@pytest.mark.parametrize("level", [0, 1])
def test_histogram_matches_brute_force(level):
    torch.manual_seed(1)
    pool = BoFPooling(3, n_codewords=4, spatial_level=level)
    with torch.no_grad():
        pool.widths.copy_(torch.tensor([0.7, -1.3, 2.0, 0.4]))  # |width| is used
    x = torch.randn(2, 3, 3, 5)
    expected = _brute_force(pool, x)
    torch.testing.assert_close(pool(x).double(), torch.from_numpy(expected), rtol=1e-5,
                               atol=1e-6)
    torch.testing.assert_close(pool.double()(x.double()), torch.from_numpy(expected),
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["rbf", "linear"])
def test_gradients_reach_codewords_widths_and_input(kind):
    torch.manual_seed(0)
    pool = BoFPooling(4, n_codewords=5, spatial_level=1, kind=kind)
    x = torch.randn(3, 4, 6, 7, requires_grad=True)
    target = torch.rand(3, pool.out_features)
    torch.nn.functional.mse_loss(pool(x), target).backward()
    names = ["codewords", "widths"] if kind == "rbf" else ["codewords", "bias"]
    assert sorted(n for n, _ in pool.named_parameters()) == sorted(names)
    for name, p in pool.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def _clustered(seed=0, n=12, size=(4, 5)):
    """Feature maps whose vectors lie in 4 tight clusters in R^6 (one per position pattern)."""
    rng = np.random.default_rng(seed)
    centres = np.zeros((4, 6))
    centres[np.arange(4), np.arange(4)] = 10.0
    centres[:, 5] = [-3.0, 3.0, 1.0, -1.0]
    labels = rng.integers(0, 4, size=(n, *size))
    x = centres[labels] + 0.05 * rng.standard_normal((n, *size, 6))
    return torch.from_numpy(x.transpose(0, 3, 1, 2)).float(), centres


def _matched_error(found, centres):
    """Largest distance between each true centre and its nearest found codeword, and check
    the matching is one-to-one."""
    dist = np.linalg.norm(found[:, None, :] - centres[None, :, :], axis=-1)
    nearest = dist.argmin(0)
    assert len(set(nearest.tolist())) == len(centres)
    return dist.min(0).max()


def test_kmeans_initialisation_finds_the_cluster_centres():
    x, centres = _clustered()
    pool = BoFPooling(6, n_codewords=4)
    assert pool.initialize_codewords(x, n_samples=200, random_state=0) is pool
    found = pool.codewords.detach().double().numpy()
    assert _matched_error(found, centres) < 0.05
    diff = found[:, None] - found[None]
    mean_dist = np.linalg.norm(diff, axis=-1).sum() / (4 * 3)
    torch.testing.assert_close(pool.widths.detach(), torch.full((4,), 0.1 * mean_dist),
                               rtol=1e-5, atol=0)
    # well-separated clusters: the histogram is (almost) the share of each cluster
    vectors = x.permute(0, 2, 3, 1).reshape(12, 20, 6)
    nearest = torch.cdist(vectors, pool.codewords.detach()).argmin(-1)
    shares = torch.nn.functional.one_hot(nearest, 4).float().mean(1)
    torch.testing.assert_close(pool(x), shares, rtol=0, atol=1e-3)


def test_kmeans_initialisation_is_seeded_and_accepts_dataloaders_and_arrays():
    x, centres = _clustered(seed=1)
    a = BoFPooling(6, n_codewords=4).initialize_codewords(x, n_samples=100, random_state=3)
    b = BoFPooling(6, n_codewords=4).initialize_codewords(x.numpy(), n_samples=100,
                                                          random_state=3)
    torch.testing.assert_close(a.state_dict(), b.state_dict())
    loader = DataLoader(TensorDataset(x, torch.zeros(len(x))), batch_size=5)
    c = BoFPooling(6, n_codewords=4).initialize_codewords(loader, n_samples=150, random_state=0)
    assert _matched_error(c.codewords.detach().double().numpy(), centres) < 0.05


def test_codebook_sample_is_uniform_over_batches_seeded_and_isolated(monkeypatch):
    import sklearn.cluster
    from threadpoolctl import threadpool_limits

    samples = []

    class RecordingKMeans(sklearn.cluster.KMeans):
        def fit(self, X, y=None, sample_weight=None):
            samples.append(np.array(X[:, 0]))
            return super().fit(X, y, sample_weight)

    monkeypatch.setattr(sklearn.cluster, "KMeans", RecordingKMeans)
    # one channel whose values label the positions: batches of 400 and 100 vectors
    labels = np.arange(500.0)
    batches = [torch.from_numpy(labels[:400].reshape(4, 1, 10, 10)),
               (labels[400:].reshape(1, 1, 10, 10), "targets")]
    pool = BoFPooling(1, n_codewords=2)
    state = np.random.get_state()  # noqa: NPY002 (numpy's global state must not move)
    with threadpool_limits(1):
        for random_state in [0, 0, np.random.RandomState(0), np.random.default_rng(0), None,
                             *range(1, 16)]:
            pool.initialize_codewords(batches, n_samples=100, random_state=random_state,
                                      n_init=1, max_iter=5)
    after = np.random.get_state()  # noqa: NPY002
    assert np.array_equal(after[1], state[1]) and after[2:] == state[2:]
    for sample in samples:  # subsets without repeats
        assert len(sample) == len(np.unique(sample)) == 100 and np.isin(sample, labels).all()
    np.testing.assert_array_equal(samples[0], samples[1])
    np.testing.assert_array_equal(samples[0], samples[2])  # RandomState(0) as the int 0
    assert len({tuple(np.sort(s)) for s in samples[3:]}) == len(samples) - 3
    # uniform over all vectors: the small batch gets 100 / 500 of the draws (s.d. 0.009 over
    # 1800 draws), not the half that subsampling each batch to n_samples first gave it
    share = np.mean(np.concatenate(samples[2:]) >= 400)
    assert abs(share - 0.2) < 0.045, share


def test_linear_variant_initialised_from_kmeans_assigns_to_nearest_centre():
    x, centres = _clustered(seed=2)
    pool = BoFPooling(6, n_codewords=4, kind="linear")
    pool.initialize_codewords(x, n_samples=200, random_state=0)
    rbf = BoFPooling(6, n_codewords=4).initialize_codewords(x, n_samples=200, random_state=0)
    with torch.no_grad():
        u_lin, u_rbf = pool.memberships(x), rbf.memberships(x)
    torch.testing.assert_close(u_lin.argmax(1), u_rbf.argmax(1), rtol=0, atol=0)
    # linear logits = RBF on the squared distance with one shared width sigma
    sigma = float(rbf.widths[0].detach())
    v = rbf.codewords.detach()
    vec = x.permute(0, 2, 3, 1).reshape(-1, 6)
    expected = torch.softmax(-torch.cdist(vec, v).square() / (2 * sigma**2), dim=1)
    got = u_lin.permute(0, 2, 3, 1).reshape(-1, 4)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_single_codeword_initialisation():
    x, _ = _clustered()
    pool = BoFPooling(6, n_codewords=1).initialize_codewords(x, n_samples=50, random_state=0)
    assert torch.isfinite(pool.widths).all() and (pool.widths > 0).all()
    torch.testing.assert_close(pool(x), torch.ones(len(x), 1))


@pytest.mark.parametrize("kind", ["rbf", "linear"])
def test_state_dict_round_trip(kind):
    torch.manual_seed(0)
    a = BoFPooling(5, n_codewords=3, spatial_level=1, kind=kind)
    torch.manual_seed(1)
    b = BoFPooling(5, n_codewords=3, spatial_level=1, kind=kind)
    x = torch.randn(2, 5, 4, 4)
    assert not torch.equal(a(x), b(x))
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(b(x), a(x), rtol=0, atol=0)


def test_registered_block():
    entry = BLOCKS.get("bof_pooling")
    assert entry.obj is BoFPooling and "pooling" in entry.tags
    block = entry.create(**entry.test_params)
    assert block(torch.randn(2, *entry.meta["test_input_shape"])).shape == (2, 4)
    bench = entry.create(**entry.bench_params)
    assert bench(torch.randn(1, *entry.meta["input_shape"])).shape == (1, bench.out_features)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"in_channels": 0}, ValueError, "in_channels"),
        ({"in_channels": 2.0}, TypeError, "in_channels"),
        ({"in_channels": 4, "n_codewords": 0}, ValueError, "n_codewords"),
        ({"in_channels": 4, "spatial_level": 2}, ValueError, "spatial_level"),
        ({"in_channels": 4, "spatial_level": -1}, ValueError, "spatial_level"),
        ({"in_channels": 4, "kind": "cosine"}, ValueError, "kind"),
    ],
)
def test_constructor_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        BoFPooling(**kwargs)


def test_call_errors():
    pool = BoFPooling(4, n_codewords=3, spatial_level=1)
    with pytest.raises(ValueError, match="has 5 channels, expected 4"):
        pool(torch.randn(2, 5, 4, 4))
    with pytest.raises(ValueError, match="4-D"):
        pool(torch.randn(4, 4, 4))
    with pytest.raises(ValueError, match="too small.*2x2"):
        pool(torch.randn(2, 4, 1, 6))
    with pytest.raises(TypeError, match="floating-point"):
        pool(torch.ones(2, 4, 3, 3, dtype=torch.long))
    assert BoFPooling(4, n_codewords=3)(torch.randn(2, 4, 1, 1)).shape == (2, 3)


def test_input_of_another_float_dtype_raises_a_clear_type_error():
    """As the other blocks (check_maps' dtype check): a TypeError naming the input and both
    dtypes, never torch's "expected scalar type Double"; converting either side works."""
    pool = BoFPooling(4, n_codewords=3)
    x = torch.randn(2, 4, 3, 3, dtype=torch.float64)
    with pytest.raises(TypeError, match="BoFPooling input is torch.float64 but the block's "
                                        "weights are torch.float32"):
        pool(x)
    with pytest.raises(TypeError, match="BoFPooling input is torch.float64"):
        pool.memberships(x)
    torch.testing.assert_close(pool.double()(x), pool.float()(x.float()).double())


def test_overflowing_inputs_raise_instead_of_returning_nan():
    """Finite inputs whose squared distances overflow float32 gave NaN histograms; now a
    ValueError naming the input and its magnitude. The check reads only the output unless it
    fails; float64 handles the same input, and so does the linear kind (no squares)."""
    pool = BoFPooling(4, n_codewords=3, spatial_level=1)
    x = torch.randn(2, 4, 3, 3, generator=torch.Generator().manual_seed(0)) * 1e30
    assert torch.isfinite(BoFPooling(4, n_codewords=3, kind="linear")(x)).all()
    for call in (pool, pool.memberships):
        with pytest.raises(ValueError, match=r"BoFPooling input holds values up to [\d.]+e\+30 "
                                             r"in magnitude: .* overflow torch.float32"):
            call(x)
    assert torch.isfinite(pool.double()(x.double())).all()
    pool = BoFPooling(4, n_codewords=3)
    with torch.no_grad():
        pool.codewords[0, 0] = float("nan")
    with pytest.raises(ValueError, match="BoFPooling parameters .* are not finite"):
        pool(torch.randn(1, 4, 2, 2))


def test_initialisation_errors():
    pool = BoFPooling(4, n_codewords=8)
    with pytest.raises(ValueError, match="in_channels = 4"):
        pool.initialize_codewords(torch.randn(2, 3, 4, 4))
    with pytest.raises(ValueError, match="at least n_codewords=8"):
        pool.initialize_codewords(torch.randn(1, 4, 2, 2))
    with pytest.raises(ValueError, match="empty"):
        pool.initialize_codewords([])
    with pytest.raises(ValueError, match="n_samples"):
        pool.initialize_codewords(torch.randn(2, 4, 4, 4), n_samples=0)
    for features in (None, 3):
        with pytest.raises(TypeError, match="features must be feature maps"):
            pool.initialize_codewords(features)
    with pytest.raises(TypeError, match=r"features must be feature maps \(N, C, H, W\), got None"):
        pool.initialize_codewords([None])
    with pytest.raises(ValueError, match=r"features must be feature maps .* got shape \(0,\)"):
        pool.initialize_codewords([[]])
    with pytest.raises(TypeError, match="features must be real numbers.*complex"):
        pool.initialize_codewords(torch.randn(2, 4, 4, 4, dtype=torch.complex64))
    with pytest.raises(TypeError, match="features must be real numbers.*<U"):
        pool.initialize_codewords(np.full((2, 4, 4, 4), "a"))
    for bad in (np.nan, np.inf, 1e200):
        features = np.ones((2, 4, 4, 4))
        features[1, 2, 3, 0] = bad
        with pytest.raises(ValueError, match="features must be finite and at most 1e\\+100"):
            pool.initialize_codewords(features)
    with pytest.raises(TypeError, match="random_state must be"):
        pool.initialize_codewords(torch.randn(2, 4, 4, 4), random_state="0")
