"""Bernoulli mixture (EM) and the binary / Gaussian Fisher-vector encoders."""

from __future__ import annotations

import pickle
import time
import warnings

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from scipy.special import betaln, logsumexp
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from lightvision.features import (
    BernoulliMixture,
    BinaryFisherVector,
    GaussianFisherVector,
    fisher,
)
from lightvision.registry import FEATURES


def _sample_bmm(rng, n, weights, means):
    """n bit vectors (n, D) of the Bernoulli mixture (weights, means) and their components."""
    labels = rng.choice(len(weights), size=n, p=weights)
    return (rng.random((n, means.shape[1])) < means[labels]).astype(np.uint8), labels


def _bit_sets(rng, n_sets=4, n=60, n_bits=16):
    """Unpacked bit sets (n, n_bits) with per-bit rates in (0.2, 0.8)."""
    p = rng.uniform(0.2, 0.8, n_bits)
    return [(rng.random((n, n_bits)) < p).astype(np.uint8) for _ in range(n_sets)]


def _packed(sets):
    return [np.packbits(s, axis=1) for s in sets]


# -- Bernoulli mixture -------------------------------------------------------------------


@pytest.mark.parametrize("init", ["kmeans", "random"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_em_objective_increases_monotonically(seed, init):
    rng = np.random.default_rng(seed)
    means = rng.uniform(0.05, 0.95, (4, 24))
    X, _ = _sample_bmm(rng, 800, np.array([0.4, 0.3, 0.2, 0.1]), means)
    bmm = BernoulliMixture(4, init=init, tol=1e-8, max_iter=300, random_state=seed).fit(X)
    bounds = np.array(bmm.lower_bounds_)
    assert len(bounds) == bmm.n_iter_ and bmm.lower_bound_ == bounds[-1]
    assert np.all(np.diff(bounds) >= -1e-12 * np.abs(bounds[1:])), np.diff(bounds).min()
    # lower_bound_ is the MAP objective at the fitted parameters: mean log-likelihood + the
    # log Beta(1 + a, 1 + a) prior / n
    a, mu = bmm.smoothing, bmm.means_
    log_prior = a * np.log(mu * (1 - mu)).sum() - mu.size * betaln(1 + a, 1 + a)
    assert bmm.lower_bound_ == pytest.approx(bmm.score(X) + log_prior / len(X), abs=1e-10)
    assert bmm.converged_


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_em_recovers_generating_parameters(seed):
    rng = np.random.default_rng(seed)
    weights = np.array([0.5, 0.3, 0.2])
    means = rng.uniform(0.05, 0.95, (3, 40))
    X, _ = _sample_bmm(rng, 6000, weights, means)
    # n_init=3 guards against the local optima that EM (any init) can fall in
    bmm = BernoulliMixture(3, n_init=3, random_state=seed).fit(X)
    assert bmm.converged_ and bmm.n_iter_ < 20
    rows, cols = linear_sum_assignment(np.abs(means[:, None] - bmm.means_[None]).sum(-1))
    # tolerances ~4 s.d.: smallest component ~1200 samples, s.d. of a mean <= 0.015; s.d. of
    # a weight <= sqrt(0.25 / 6000) = 0.0065
    np.testing.assert_allclose(bmm.means_[cols], means[rows], atol=0.06)
    np.testing.assert_allclose(bmm.weights_[cols], weights[rows], atol=0.025)
    n_params = 3 * 40 + 2
    assert bmm.bic(X) == pytest.approx(-2 * bmm.score(X) * len(X) + n_params * np.log(len(X)))
    assert bmm.aic(X) == pytest.approx(-2 * bmm.score(X) * len(X) + 2 * n_params)
    assert bmm.bic(X) < BernoulliMixture(1, random_state=0).fit(X).bic(X)


def test_em_accepts_bool_int_and_float_input_alike():
    rng = np.random.default_rng(0)
    X = rng.random((200, 10)) < 0.3
    fits = [BernoulliMixture(2, random_state=0).fit(X.astype(t)).means_
            for t in (bool, np.int64, np.float32)]
    np.testing.assert_array_equal(fits[0], fits[1])
    np.testing.assert_array_equal(fits[0], fits[2])


def test_n_init_keeps_the_best_run():
    rng = np.random.default_rng(3)
    X, _ = _sample_bmm(rng, 300, np.full(3, 1 / 3), rng.uniform(0.1, 0.9, (3, 12)))
    single = [BernoulliMixture(3, init="random", random_state=s).fit(X).lower_bound_
              for s in range(3)]
    best = BernoulliMixture(3, init="random", n_init=3, random_state=0).fit(X)
    assert best.lower_bound_ >= min(single) - 1e-12


def test_max_iter_without_convergence_warns():
    X = (np.random.default_rng(0).random((100, 8)) < 0.5)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        bmm = BernoulliMixture(2, max_iter=1, tol=0.0, random_state=0).fit(X)
    assert not bmm.converged_ and bmm.n_iter_ == 1


def test_posteriors_are_finite_for_extreme_inputs():
    rng = np.random.default_rng(0)
    means = np.where(rng.random((4, 2000)) < 0.5, 0.02, 0.98)
    X, _ = _sample_bmm(rng, 200, np.full(4, 0.25), means)
    # smoothing 1e-8: means ~1e-10 from 0 or 1, log-likelihood gaps of ~10^4 between components
    bmm = BernoulliMixture(4, smoothing=1e-8, random_state=0).fit(X)
    extreme = np.vstack([X[:5], np.zeros(2000), np.ones(2000), rng.random((3, 2000)) < 0.5])
    proba = bmm.predict_proba(extreme)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    assert np.isfinite(bmm.score_samples(extreme)).all()
    assert (proba[:5].max(axis=1) == 1.0).all()  # the gaps underflow exp: hard posteriors
    encoded = BinaryFisherVector(4, packed=False, smoothing=1e-8, random_state=0).fit(
        [X]).transform([extreme, extreme[:0]])
    assert np.isfinite(encoded).all()


def test_mixture_errors_are_clear():
    X = (np.random.default_rng(0).random((20, 6)) < 0.5).astype(float)
    with pytest.raises(ValueError, match="X must be binary"):
        BernoulliMixture(2).fit(X + 0.5)
    with pytest.raises(ValueError, match="X must be binary"):
        BernoulliMixture(2).fit(2 * X)
    nan = X.copy()
    nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        BernoulliMixture(2).fit(nan)
    nan[0, 0] = np.inf
    with pytest.raises(ValueError, match="X must be binary .*found NaN or infinity"):
        BernoulliMixture(2).fit(nan)
    for empty in (X[:0], X[:, :0]):  # our own check, not scikit-learn's check_array
        with pytest.raises(ValueError, match=r"X must have at least one sample and one "
                                             r"feature, got shape \((0, 6|20, 0)\)"):
            BernoulliMixture(2).fit(empty)
    with pytest.raises(TypeError, match="X must be an array of bits .*dtype <U1"):
        BernoulliMixture(2).fit(np.array([["a", "b"]] * 4))
    with pytest.raises(ValueError, match="2D array"):
        BernoulliMixture(2).fit(X[0])
    with pytest.raises(ValueError, match="n_components=5"):
        BernoulliMixture(5).fit(X[:4])
    with pytest.raises(ValueError, match="init"):
        BernoulliMixture(2, init="kmeans++").fit(X)
    with pytest.raises(ValueError, match="smoothing"):
        BernoulliMixture(2, smoothing=0.0).fit(X)
    with pytest.raises(ValueError, match="n_components"):
        BernoulliMixture(0).fit(X)
    with pytest.raises(TypeError, match="max_iter"):
        BernoulliMixture(2, max_iter=1.5).fit(X)
    bmm = BernoulliMixture(2, random_state=0)
    with pytest.raises(NotFittedError):
        bmm.predict(X)
    bmm.fit(X)
    with pytest.raises(ValueError, match="expecting 6 features"):
        bmm.predict_proba(X[:, :5])
    with pytest.raises(ValueError, match="X must be binary"):
        bmm.score_samples(X - 1)


# -- Fisher vectors: gradients against finite differences --------------------------------


def _central_differences(f, params, h):
    """Gradient of f at params (1-D) by central differences of step h."""
    grad = np.empty_like(params)
    for i in range(params.size):
        up, down = params.copy(), params.copy()
        up[i] += h
        down[i] -= h
        grad[i] = (f(up) - f(down)) / (2 * h)
    return grad


def _bmm_mean_loglik(X, alpha, mu):
    log_w = alpha - logsumexp(alpha)
    return logsumexp(X @ np.log(mu).T + (1 - X) @ np.log1p(-mu).T + log_w, axis=1).mean()


def test_binary_fisher_vector_matches_numerical_gradients():
    rng = np.random.default_rng(0)
    train = _bit_sets(rng, n_bits=6)
    fv = BinaryFisherVector(3, packed=False, power=None, normalize=False, dtype=np.float64,
                            random_state=0).fit(train)
    X = train[0].astype(float)
    w, mu = fv.mixture_.weights_, fv.mixture_.means_
    K, D = mu.shape
    params = np.concatenate([np.log(w), mu.ravel()])
    grad = _central_differences(
        lambda p: _bmm_mean_loglik(X, p[:K], p[K:].reshape(K, D)), params, 1e-6)
    expected = np.concatenate([
        grad[:K] / np.sqrt(w),  # Fisher information of alpha ~ w_k
        (grad[K:].reshape(K, D) * np.sqrt(mu * (1 - mu)) / np.sqrt(w)[:, None]).ravel(),
    ])
    np.testing.assert_allclose(fv.encode(train[0]), expected, rtol=1e-6, atol=1e-8)
    assert fv.n_features_out_ == K * (1 + D) == len(expected)


def _gmm_mean_loglik(X, alpha, mu, sigma):
    log_w = alpha - logsumexp(alpha)
    z = (X[:, None, :] - mu[None]) / sigma[None]
    log_p = -0.5 * (z**2 + np.log(2 * np.pi * sigma[None] ** 2)).sum(-1)
    return logsumexp(log_p + log_w, axis=1).mean()


def test_gaussian_fisher_vector_matches_numerical_gradients():
    rng = np.random.default_rng(0)
    train = [rng.normal(size=(50, 4)) * [1, 2, 0.5, 1] + [0, 5, -3, 100] for _ in range(4)]
    fv = GaussianFisherVector(3, power=None, normalize=False, random_state=0).fit(train)
    X = train[1]
    gmm = fv.gmm_
    w, mu, sigma = gmm.weights_, gmm.means_, np.sqrt(gmm.covariances_)
    K, D = mu.shape
    params = np.concatenate([np.log(w), mu.ravel(), sigma.ravel()])

    def f(p):
        return _gmm_mean_loglik(X, p[:K], p[K:K + K * D].reshape(K, D),
                                p[K + K * D:].reshape(K, D))

    grad = _central_differences(f, params, 1e-6)
    root_w = np.sqrt(w)[:, None]
    expected = np.concatenate([
        grad[:K] / np.sqrt(w),
        (grad[K:K + K * D].reshape(K, D) * sigma / root_w).ravel(),  # F_mu = w / sigma^2
        (grad[K + K * D:].reshape(K, D) * sigma / (np.sqrt(2) * root_w)).ravel(),  # 2w/s^2
    ])
    np.testing.assert_allclose(fv.encode(X), expected, rtol=1e-5, atol=1e-7)
    assert fv.n_features_out_ == K * (1 + 2 * D)
    np.testing.assert_array_equal(fv.transform([X, X[:0]])[0], fv.encode(X))


def test_gaussian_fisher_vector_agrees_with_scikit_image():
    skimage_feature = pytest.importorskip("skimage.feature")
    rng = np.random.default_rng(1)
    train = [rng.normal(size=(80, 5)) for _ in range(3)]
    fv = GaussianFisherVector(4, power=None, normalize=False, random_state=0).fit(train)
    ours = fv.encode(train[0])
    theirs = skimage_feature.fisher_vector(train[0], fv.gmm_)
    K, D = 4, 5
    np.testing.assert_allclose(ours[:K + K * D], theirs[:K + K * D], rtol=1e-7, atol=1e-10)
    # scikit-image's sigma block is the negated gradient
    np.testing.assert_allclose(ours[K + K * D:], -theirs[K + K * D:], rtol=1e-7, atol=1e-10)


def test_chunked_encoding_equals_one_pass(monkeypatch):
    rng = np.random.default_rng(0)
    sets = _packed(_bit_sets(rng, n=500, n_bits=24))
    fv = BinaryFisherVector(3, dtype=np.float64, random_state=0).fit(sets)
    gfv = GaussianFisherVector(3, random_state=0).fit([s.astype(float) for s in sets])
    one_pass = fv.encode(sets[0]), gfv.encode(sets[0].astype(float))
    monkeypatch.setattr(fisher, "_CHUNK_ELEMENTS", 100)  # chunks of 4 and 2 descriptors
    np.testing.assert_allclose(fv.encode(sets[0]), one_pass[0], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(gfv.encode(sets[0].astype(float)), one_pass[1], rtol=1e-8,
                               atol=1e-10)


# -- Fisher vectors: input layout and normalisation --------------------------------------


def test_packed_and_unpacked_inputs_give_identical_vectors():
    rng = np.random.default_rng(0)
    bits = _bit_sets(rng, n_bits=24) + [np.zeros((0, 24), np.uint8)]
    unpacked = BinaryFisherVector(3, packed=False, max_descriptors=150, random_state=0)
    packed = BinaryFisherVector(3, max_descriptors=150, random_state=0)
    a = unpacked.fit(bits).transform(bits)
    b = packed.fit(_packed(bits)).transform(_packed(bits))
    np.testing.assert_array_equal(a, b)
    assert packed.n_bits_ == unpacked.n_bits_ == 24
    assert a.shape == (5, 3 * 25)


def test_packbits_bit_order_on_a_hand_made_byte():
    rng = np.random.default_rng(0)
    train = [rng.integers(0, 256, (200, 1), dtype=np.uint8) & 0b1111_0000]  # bits 4-7 are 0
    fv = BinaryFisherVector(2, power=None, normalize=False, dtype=np.float64,
                            random_state=0).fit(train)
    w, mu = fv.mixture_.weights_, fv.mixture_.means_
    assert (mu[:, 4:] < 0.01).all()  # numpy.packbits is big-endian: bit 0 = 0b1000_0000

    def by_hand(x):  # the documented formulas for one descriptor
        log_joint = np.log(w) + (x * np.log(mu) + (1 - x) * np.log1p(-mu)).sum(1)
        g = np.exp(log_joint - logsumexp(log_joint))
        return np.concatenate([(g - w) / np.sqrt(w),
                               (g[:, None] * (x - mu) / np.sqrt(mu * (1 - mu))
                                / np.sqrt(w)[:, None]).ravel()])

    byte = np.array([[0b1000_0010]], dtype=np.uint8)
    x = np.array([1, 0, 0, 0, 0, 0, 1, 0])
    np.testing.assert_allclose(fv.encode(byte), by_hand(x), rtol=1e-10)
    assert not np.allclose(fv.encode(byte), by_hand(x[::-1]))  # little-endian would differ


def test_normalisations_and_empty_sets():
    rng = np.random.default_rng(0)
    sets = _packed(_bit_sets(rng, n_bits=32))
    fv = BinaryFisherVector(4, random_state=0).fit(sets)
    empty = np.zeros((0, 4), np.uint8)
    out = fv.transform([*sets, empty])
    np.testing.assert_allclose(np.linalg.norm(out[:-1], axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(out[-1], 0.0)
    np.testing.assert_array_equal(fv.encode(empty), np.zeros(fv.n_features_out_))
    raw = fv.set_params(power=None, normalize=False).encode(sets[0])
    powered = fv.set_params(power=0.5).encode(sets[0])
    np.testing.assert_allclose(powered, np.sign(raw) * np.sqrt(np.abs(raw)), rtol=1e-12)
    assert (np.sign(powered) == np.sign(raw)).all() and (raw < 0).any() and (raw > 0).any()
    np.testing.assert_allclose(out[0], powered / np.linalg.norm(powered), rtol=1e-12)
    np.testing.assert_allclose(fv.set_params(power=None, normalize=True).encode(sets[0]),
                               raw / np.linalg.norm(raw), rtol=1e-12)
    names = fv.get_feature_names_out()
    assert len(names) == fv.n_features_out_ == 4 * 33
    assert list(names[[0, 3, 4, 5, 4 + 32]]) == ["alpha0", "alpha3", "mu0_0", "mu0_1", "mu1_0"]


def test_max_descriptors_draws_an_exact_uniform_sample():
    sets = [np.zeros((900, 1), np.uint8), np.full((100, 1), 255, np.uint8)]
    fv = BinaryFisherVector(1, max_descriptors=200, random_state=0).fit(sets)
    a = fv.smoothing
    ones = fv.mixture_.means_[0, 0] * (200 + 2 * a) - a  # MAP mean of the 200 drawn bits
    assert ones == pytest.approx(round(ones), abs=1e-6) and 5 <= round(ones) <= 40
    other = BinaryFisherVector(1, max_descriptors=200, random_state=1).fit(sets)
    assert other.mixture_.means_[0, 0] != fv.mixture_.means_[0, 0]


# -- Fisher vectors: estimator plumbing --------------------------------------------------


@pytest.mark.parametrize("cls", [BinaryFisherVector, GaussianFisherVector])
def test_determinism_pickle_and_clone(cls):
    rng = np.random.default_rng(0)
    sets = _packed(_bit_sets(rng, n_bits=32))
    if cls is GaussianFisherVector:
        sets = [s.astype(np.float32) for s in sets]
    fv = cls(3, max_descriptors=100, random_state=0).fit(sets)
    expected = fv.transform(sets)
    np.testing.assert_array_equal(cls(3, max_descriptors=100, random_state=0).fit(sets)
                                  .transform(sets), expected)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(fv)).transform(sets), expected)
    np.testing.assert_array_equal(np.vstack([fv.encode(s) for s in sets]), expected)
    fresh = clone(fv)
    assert fresh.get_params() == fv.get_params()
    with pytest.raises(NotFittedError):
        fresh.transform(sets)
    with pytest.raises(NotFittedError):
        fresh.encode(sets[0])
    np.testing.assert_array_equal(fv.fit_transform(sets), expected)


def test_fisher_vector_errors_are_clear():
    rng = np.random.default_rng(0)
    sets = _packed(_bit_sets(rng, n_bits=16))
    fv = BinaryFisherVector(2, random_state=0)
    with pytest.raises(TypeError, match="list or tuple"):
        fv.fit(sets[0])
    with pytest.raises(ValueError, match=r"descriptor_sets\[1\] must be a 2-D array"):
        fv.fit([sets[0], sets[1][0]])
    with pytest.raises(TypeError, match="packed binary descriptors must be uint8 bytes from "
                                        "numpy.packbits"):
        fv.fit([s.astype(np.int64) for s in sets])
    with pytest.raises(ValueError, match="descriptors are not binary"):
        BinaryFisherVector(2, packed=False).fit([s * 2 for s in _bit_sets(rng)])
    with pytest.raises(ValueError, match="descriptors are not binary"):
        BinaryFisherVector(2, packed=False).fit([np.full((5, 3), np.nan)])
    with pytest.raises(ValueError, match=r"descriptor_sets\[1\] has 24 bits per descriptor but "
                                         r"descriptor_sets\[0\] has 16"):
        fv.fit([sets[0], np.zeros((3, 3), np.uint8)])
    with pytest.raises(ValueError, match="descriptor_sets hold 0 descriptors in 2 sets; fitting "
                                         "needs at least n_components=2"):
        fv.fit([np.zeros((0, 2), np.uint8), np.zeros((0, 2), np.uint8)])
    with pytest.raises(ValueError, match="descriptor_sets hold 0 descriptors in 0 sets"):
        fv.fit([])
    with pytest.raises(ValueError, match="max_descriptors must be >= n_components=2, got 1"):
        BinaryFisherVector(2, max_descriptors=1).fit(sets)
    with pytest.raises(ValueError, match="power"):
        BinaryFisherVector(2, power=0.0).fit(sets)
    with pytest.raises(TypeError, match="normalize"):
        BinaryFisherVector(2, normalize="yes").fit(sets)
    with pytest.raises(TypeError, match="packed"):
        BinaryFisherVector(2, packed=1).fit(sets)
    with pytest.raises(ValueError, match="max_descriptors"):
        BinaryFisherVector(2, max_descriptors=0).fit(sets)
    with pytest.raises(ValueError, match="smoothing"):
        BinaryFisherVector(2, smoothing=-1.0).fit(sets)
    fv.fit(sets)
    with pytest.raises(ValueError, match=r"descriptor_sets\[0\] has 8 bits per descriptor but "
                                         r"the encoder was fitted on 16"):
        fv.transform([sets[0][:, :1]])
    with pytest.raises(ValueError, match="descriptors has 24 bits"):
        fv.encode(np.zeros((2, 3), np.uint8))
    floats = [rng.normal(size=(20, 3)) for _ in range(2)]
    gfv = GaussianFisherVector(2, random_state=0)
    floats[1][3, 1] = np.nan
    with pytest.raises(ValueError, match=r"descriptor_sets\[1\] contains NaN"):
        gfv.fit(floats)
    floats[1][3, 1] = np.inf
    with pytest.raises(ValueError, match="NaN or infinity"):
        gfv.fit(floats)
    with pytest.raises(TypeError, match="real numeric dtype"):
        gfv.fit([np.array([["a", "b"]] * 3)])
    gfv.fit(floats[:1])
    with pytest.raises(ValueError, match="4 dimensions per descriptor but the encoder was"):
        gfv.transform([np.zeros((2, 4))])


_MIXTURE_PARAMETER_CASES = [
    ("max_iter", -1, ValueError), ("max_iter", 0, ValueError), ("max_iter", 20.5, TypeError),
    ("max_iter", None, TypeError), ("max_iter", "20", TypeError), ("max_iter", 1e30, TypeError),
    ("tol", -1.0, ValueError), ("tol", np.nan, ValueError), ("tol", None, TypeError),
    ("reg_covar", -1.0, ValueError), ("reg_covar", np.float32(np.nan), ValueError),
    ("reg_covar", "1e-6", TypeError)]


@pytest.mark.parametrize(("cls", "param", "value", "error"), [
    (cls, *case) for cls in (BinaryFisherVector, GaussianFisherVector)
    for case in _MIXTURE_PARAMETER_CASES if case[0] in cls().get_params()])
def test_mixture_parameters_are_checked_by_lightvision(cls, param, value, error):
    """max_iter, tol (both encoders) and reg_covar (Gaussian) get our own checks in fit, not
    scikit-learn's InvalidParameterError from inside the mixture, and before any sampling."""
    sets = [np.zeros((4, 3), np.uint8 if cls is BinaryFisherVector else float)]
    with pytest.raises(error, match=rf"^{param} must be") as info:
        cls(2, **{param: value}).fit(sets)
    assert info.traceback[-1].path.name == "_checks.py"


def test_bad_descriptors_and_parameters_get_clear_errors():
    rng = np.random.default_rng(0)
    sets = _packed(_bit_sets(rng, n_bits=16))
    fv = BinaryFisherVector(2, max_iter=5, random_state=0).fit(sets)
    with pytest.raises(TypeError, match="descriptors must be a 2-D array .* got None"):
        fv.encode(None)
    with pytest.raises(TypeError, match=r"descriptor_sets\[1\] must be a 2-D array .* got None"):
        fv.transform([sets[0], None])
    with pytest.raises(ValueError,
                       match=r"descriptor_sets\[0\] must be a 2-D array .*inhomogeneous"):
        fv.fit([[[1, 2], [3]]])
    with pytest.raises(ValueError, match=r"dims >= 1, got shape \(5, 0\)"):
        fv.fit([np.zeros((5, 0), np.uint8)])
    for dtype in ("float16", np.int32, complex):
        with pytest.raises(TypeError, match="dtype must be numpy.float32 or numpy.float64"):
            BinaryFisherVector(2, dtype=dtype).fit(sets)
    with pytest.raises(TypeError, match="random_state must be"):
        BinaryFisherVector(2, random_state="0").fit(sets)
    with pytest.raises(TypeError, match="X must be a 2D array of bits"):
        BernoulliMixture(2).fit(None)
    with pytest.raises(ValueError, match="X must be a 2D array of bits.*inhomogeneous"):
        BernoulliMixture(2).fit([[0, 1], [1]])
    # huge float descriptors: a clear error up front instead of NaN or inf
    floats = [rng.normal(size=(30, 3)) for _ in range(2)]
    gfv = GaussianFisherVector(2, power=None, max_iter=5, random_state=0).fit(floats)
    for where, call in ((r"descriptor_sets\[1\]", lambda x: gfv.fit([floats[0], x])),
                        ("descriptors", gfv.encode)):
        with pytest.raises(ValueError, match=f"{where} holds values of magnitude up to 1e\\+200"
                                             f".*at most 1e\\+100"):
            call(np.full((4, 3), 1e200))
    # far outliers (gradients ~1e180, squares overflow) still give a finite unit vector
    outliers = rng.normal(size=(4, 3)) * 1e90
    vector = gfv.encode(outliers)
    assert np.isfinite(vector).all() and np.linalg.norm(vector) == pytest.approx(1.0)
    assert np.isfinite(gfv.set_params(power=0.5).encode(outliers)).all()


def test_registry_entries():
    for name in ("binary_fisher_vector", "gaussian_fisher_vector"):
        entry = FEATURES.get(name)
        assert "descriptor_sets" in entry.tags and entry.meta["input"] == "descriptor_sets"
        rng = np.random.default_rng(0)
        dims = entry.meta["descriptor_dim"]
        if entry.meta.get("packed"):
            sets = [rng.integers(0, 256, (30, dims), dtype=np.uint8) for _ in range(3)]
        else:
            sets = [rng.normal(size=(30, dims)) for _ in range(3)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter=20 on noise
            out = entry.create(**entry.test_params).fit_transform(sets)
        assert out.shape[0] == 3 and np.isfinite(out).all()
    entry = FEATURES.get("bernoulli_mixture")
    assert "density" in entry.tags and entry.meta["input"] == "binary"
    X = np.random.default_rng(0).random((50, entry.meta["n_features"])) < 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        assert entry.create(**entry.test_params).fit(X).predict(X).shape == (50,)


# -- random state, sampling, precision ---------------------------------------------------


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_descriptor_sample_is_a_seeded_subset_without_repeats(monkeypatch):
    samples = []
    fit_model = GaussianFisherVector._fit_model
    monkeypatch.setattr(GaussianFisherVector, "_fit_model", lambda self, sample, seed: (
        samples.append(sample[:, 0].copy()), fit_model(self, sample, seed))[1])
    # every descriptor is its own label: set i holds 1000 i, 1000 i + 1, ...
    sets = [1000.0 * i + np.arange(n)[:, None] for i, n in enumerate((100, 0, 37, 63))]
    pool = np.concatenate(sets)[:, 0]
    for random_state in (0, 0, 1, np.random.RandomState(0), np.random.default_rng(0), 2**40):
        GaussianFisherVector(2, max_descriptors=50, max_iter=5,
                             random_state=random_state).fit(sets)
    for sample in samples:
        assert len(sample) == len(np.unique(sample)) == 50 and np.isin(sample, pool).all()
    np.testing.assert_array_equal(samples[0], samples[1])  # the same seed, the same sample
    np.testing.assert_array_equal(samples[0], samples[3])  # RandomState(0) as the int 0
    assert len({tuple(s) for s in samples[2:]}) == 4
    # random_state=None takes fresh entropy, never numpy's global state
    state = np.random.get_state()  # noqa: NPY002 (the global state under test)
    bits = _bit_sets(np.random.default_rng(0))
    BernoulliMixture(2, max_iter=5).fit(bits[0])
    BinaryFisherVector(2, max_descriptors=50, max_iter=5).fit(_packed(bits))
    GaussianFisherVector(2, max_descriptors=50, max_iter=5).fit(sets)
    after = np.random.get_state()  # noqa: NPY002
    assert np.array_equal(after[1], state[1]) and after[2:] == state[2:]


def test_descriptor_sample_memory_does_not_grow_with_the_pool():
    import tracemalloc

    pool = np.zeros((10_000_000, 1), np.uint8)
    pool[::4] = 255
    fv = BinaryFisherVector(2, max_descriptors=1000, max_iter=5, random_state=0)
    tracemalloc.start()
    try:
        fv.fit([pool[:3_000_000], pool[3_000_000:]])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # RandomState.choice(n, k, replace=False) would permute all n: 8 bytes per descriptor
    assert peak < 0.05 * 8 * len(pool), f"peak {peak / 2**20:.1f} MiB"
    # a uniform sample over both sets: a quarter of ones, within 5 s.d. (0.014)
    assert abs(fv.mixture_.weights_ @ fv.mixture_.means_[:, 0] - 0.25) < 0.07


@pytest.fixture(scope="module")
def action_descriptors():
    """Binary motion descriptors (96 bits in 12 bytes, ~600 per clip) of three generated
    KTH-like clips (75 frames of 160x120): real descriptors of real-sized videos."""
    from lightvision.datasets import make_actions
    from lightvision.features import BinaryMotionDescriptor

    videos = make_actions(1, scenarios=(1,), random_state=0).videos[:3]
    return [BinaryMotionDescriptor().extract(video) for video in videos]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_float32_encoding_is_close_to_float64(action_descriptors):
    from threadpoolctl import threadpool_limits

    video, train = action_descriptors[0], action_descriptors[1:]
    for K, tolerance in ((16, 5e-4), (64, 2e-3)):
        with threadpool_limits(1):  # small products: threads only add overhead
            fv = BinaryFisherVector(K, max_iter=10, random_state=0).fit(train)
        single = fv.encode(video)
        double = fv.set_params(dtype=np.float64).encode(video)  # constants recomputed
        assert single.dtype == double.dtype == np.float64
        np.testing.assert_allclose(np.linalg.norm(double), 1.0, rtol=1e-12)
        assert np.linalg.norm(single - double) <= tolerance, np.linalg.norm(single - double)
        np.testing.assert_array_equal(fv.set_params(dtype=np.float32).encode(video), single)


# -- speed -------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(("n_descriptors", "n_components", "threshold"),
                         [(None, 16, 5.0), (20_000, 64, 6.0)])
def test_binary_encode_is_five_times_as_fast_as_scikit_image(
        action_descriptors, n_descriptors, n_components, threshold):
    """One video's real descriptors (~600, K = 16), and 20,000 (K = 64): the binary Fisher
    vector against scikit-image's Gaussian ``fisher_vector`` of the same 96 bits as floats,
    one thread each, best of interleaved repeats."""
    skimage_feature = pytest.importorskip("skimage.feature")
    from sklearn.mixture import GaussianMixture
    from threadpoolctl import threadpool_limits

    video, train = action_descriptors[0], np.concatenate(action_descriptors[1:])
    if n_descriptors is not None:
        pool = np.concatenate(action_descriptors)
        video = pool[np.random.default_rng(0).integers(0, len(pool), n_descriptors)]
    floats = np.unpackbits(video, axis=1).astype(np.float64)
    train = train[np.random.default_rng(1).permutation(len(train))[:400]]
    repeats = 5 if n_descriptors else 100
    ours = theirs = float("inf")
    with threadpool_limits(1):  # one BLAS thread each: the comparison is per core
        # the fits only need to be representative, not converged
        fv = BinaryFisherVector(n_components, max_iter=3, random_state=0).fit([train])
        gmm = GaussianMixture(n_components, covariance_type="diag", max_iter=2,
                              init_params="random_from_data", random_state=0).fit(
                                  np.unpackbits(train, axis=1).astype(np.float64))
        for _ in range(repeats):  # interleaved, so that both see the same machine load
            start = time.perf_counter()
            fv.encode(video)
            ours = min(ours, time.perf_counter() - start)
            start = time.perf_counter()
            skimage_feature.fisher_vector(floats, gmm, improved=True)
            theirs = min(theirs, time.perf_counter() - start)
    ratio = theirs / ours
    print(f"encode {ours * 1e3:.3f} ms, scikit-image {theirs * 1e3:.3f} ms, ratio {ratio:.2f} "
          f"(N={len(video)}, K={n_components}, D=96, one thread)")
    assert ratio >= threshold, f"only {ratio:.2f}x faster than skimage.feature.fisher_vector"
