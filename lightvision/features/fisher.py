"""Bernoulli mixtures and Fisher vectors of sets of binary (or float) local descriptors.

A video (or image) is a *descriptor set*: a 2-D array (n_i, dims) of local descriptors, n_i
possibly 0. A mixture model is fitted on descriptors pooled from training sets, and every set
is then encoded as one fixed-length Fisher vector: the gradient of the set's mean
log-likelihood with respect to the mixture parameters, normalised by the (closed-form,
diagonal) Fisher information, then power- and L2-normalised.

- :class:`BernoulliMixture`: EM for a mixture of multivariate Bernoulli distributions over bit
  vectors (log space, MAP with a symmetric Beta prior).
- :class:`BinaryFisherVector`: the Fisher vector of binary descriptors (ORB, BRIEF, the
  binary descriptors of Leyva et al.) under a Bernoulli mixture; descriptors arrive packed by
  ``numpy.packbits`` by default.
- :class:`GaussianFisherVector`: the float baseline, the improved Fisher vector of Perronnin
  et al. (2010) under a diagonal Gaussian mixture.

**[INTERP]** Leyva et al. (2019), the seed of this module, propose "a novel Fisher Vector for
binary data" whose equations are not available here; the binary Fisher vector implemented is
the Bernoulli-mixture one with the closed-form Fisher-information normalisation of Uchida et
al. (2016). Leyva's exact variant may differ.

Fisher vectors are computed in chunks of descriptors (bounded memory for any n_i); each chunk
costs one matrix product for the log-likelihoods and one for the statistics ``g^T x``, and
the statistics are sums over descriptors, so a long set is encoded in one streaming pass.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from scipy.special import betaln
from sklearn.base import BaseEstimator, DensityMixin, TransformerMixin
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.mixture import GaussianMixture
from sklearn.utils.validation import check_is_fitted

from .._checks import check_bool, check_int, check_real
from .._rng import legacy_random_state, random_streams
from ..registry import FEATURES

__all__ = ["BernoulliMixture", "BinaryFisherVector", "GaussianFisherVector"]

#: Floor of the mixture weights: a component that loses all its samples keeps a tiny weight
#: (finite log-weight, finite Fisher-vector scaling) instead of dying with weight 0.
_WEIGHT_FLOOR = 1e-10
#: Bernoulli means are kept in [_EPS, 1 - _EPS] so that log(mu) and log(1 - mu) are finite.
_EPS = float(np.finfo(np.float64).eps)
#: Float64 elements per chunk of expanded descriptors in the Fisher-vector encoders (8 MiB).
_CHUNK_ELEMENTS = 1 << 20
#: Largest magnitude of a float descriptor: its square, summed over up to 1e100 descriptors
#: and dimensions, stays finite in float64 (the Gaussian statistics and mixture need x^2).
_MAX_MAGNITUDE = 1e100

_REFERENCES = """\
    .. [1] C. Leyva, V. Sanchez, C.-T. Li, "Compact and Low-Complexity Binary Feature
       Descriptor and Fisher Vectors for Video Analytics", IEEE Trans. Image Processing
       28(12):6169-6184, 2019 (seed paper; its binary Fisher vector is interpreted here).
    .. [2] Y. Uchida, S. Sakazawa, S. Satoh, "Image retrieval with Fisher vectors of binary
       features", ITE Trans. Media Technology and Applications 4(4):326-336, 2016."""


def _bernoulli_terms(weights: np.ndarray, means: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(A, c) with log w_k + log p(x | k) = x @ A[:, k] + c[k] for bit vectors x.

    A = (log mu - log(1 - mu))^T, shape (D, K); c = log w + sum_d log(1 - mu), shape (K,).
    """
    log_mu, log_not_mu = np.log(means), np.log1p(-means)
    return np.ascontiguousarray((log_mu - log_not_mu).T), np.log(weights) + log_not_mu.sum(1)


def _to_posteriors(log_joint: np.ndarray, axis: int = 1) -> np.ndarray:
    """Turn log p(x_t, k) into the posteriors p(k | x_t) **in place**, k along ``axis`` ((n, K)
    for axis 1, (K, n) for axis 0); return log p(x_t) (n,). Each x_t is shifted by its
    maximum over k first, so its posteriors sum to 1 whatever the scale of the log-joint."""
    top = log_joint.max(axis=axis, keepdims=True)
    log_joint -= top
    np.exp(log_joint, out=log_joint)
    total = log_joint.sum(axis=axis, keepdims=True)
    log_joint *= 1.0 / total
    return (np.log(total) + top).ravel()


# ------------------------------------------------------------------------------------------
# Bernoulli mixture
# ------------------------------------------------------------------------------------------


@FEATURES.register(
    name="bernoulli_mixture", deprecated_names=("BernoulliMixture",),
    tags={"density"},
    test_params={"n_components": 2, "max_iter": 20, "random_state": 0},
    bench_params={},
    input="binary",
    n_features=16,
    input_shape=None,
    dataset=None,
)
class BernoulliMixture(DensityMixin, BaseEstimator):
    __doc__ = f"""Mixture of multivariate Bernoulli distributions fitted by EM (MAP, Beta prior).

    p(x) = sum_k w_k prod_d mu_kd^x_d (1 - mu_kd)^(1 - x_d) for bit vectors x in {{0, 1}}^D.
    EM runs in log space with matrix products: log w_k + log p(x | k) =
    x @ (log mu_k - log(1 - mu_k)) + sum_d log(1 - mu_kd) + log w_k, posteriors by a
    max-shifted log-sum-exp. The M-step is the MAP estimate under a symmetric
    Beta(1 + a, 1 + a) prior on every mu_kd (a = ``smoothing``, a pseudo-count of a ones and
    a zeros): mu_kd = (sum_t g_tk x_td + a) / (N_k + 2a), w_k = N_k / n (floored at 1e-10 and
    renormalised, so no component dies). Means therefore stay strictly inside (0, 1).

    The objective EM increases monotonically is the per-sample log posterior
    (1/n) sum_t log p(x_t) + log p(mu) / n, with the Beta prior's normalising constant
    included; EM stops when it changes by less than ``tol``.

    Parameters
    ----------
    n_components : int, default=16
        Number of components K.
    max_iter : int, default=100
        EM iterations per initialisation; reaching it without convergence warns with
        ``sklearn.exceptions.ConvergenceWarning`` (as ``GaussianMixture`` does).
    tol : float, default=1e-4
        Convergence threshold on the change of the per-sample objective.
    n_init : int, default=1
        Initialisations; the one with the highest final objective is kept.
    smoothing : float > 0, default=1e-2
        Beta pseudo-count a. Small enough that it biases a mean by at most a / N_k (1e-4 for
        a component of 100 samples) and large enough that a bit never seen in a component
        keeps a finite log-probability (log(a / N_k) ~ -18 for a million samples), which also
        bounds the Fisher-vector scaling 1 / sqrt(mu (1 - mu)) (by sqrt(N_k / a)).
    init : {{"kmeans", "random"}}, default="kmeans"
        "kmeans": hard assignments of one ``sklearn.cluster.KMeans`` run on X followed by an
        M-step (as ``GaussianMixture`` does; well-separated starts, fewer EM iterations and
        fewer poor local optima than random starts). "random": means halfway between K
        distinct random samples and the smoothed mean of X, equal weights.
    random_state : int, RandomState, Generator or None, default=None
        Seeds the initialisations (None: fresh entropy; numpy's global generator is never
        used).

    Attributes
    ----------
    weights_ : ndarray of float64, shape (K,)
    means_ : ndarray of float64, shape (K, D)
        Bernoulli parameters mu_kd = p(x_d = 1 | k), strictly inside (0, 1).
    converged_ : bool
    n_iter_ : int
        EM iterations of the kept initialisation.
    lower_bound_ : float
        Final objective (mean log-likelihood per sample + log prior / n) at the fitted
        parameters.
    lower_bounds_ : list of float
        Objective after each EM iteration of the kept initialisation (non-decreasing).
    n_features_in_ : int
        Number of bits D.

    References
    ----------
{_REFERENCES}
    .. [3] C. M. Bishop, "Pattern Recognition and Machine Learning", Springer, 2006,
       section 9.3.3 (EM for mixtures of Bernoulli distributions).

    Examples
    --------
    >>> import numpy as np
    >>> from lightvision.features import BernoulliMixture
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.random((100, 8)) < 0.1, rng.random((100, 8)) < 0.9])
    >>> bmm = BernoulliMixture(n_components=2, random_state=0).fit(X)
    >>> np.sort(bmm.weights_).round(2).tolist()
    [0.5, 0.5]
    >>> np.sort(bmm.means_.mean(axis=1)).round(1).tolist()  # bit rates of the two groups
    [0.1, 0.9]
    >>> bmm.predict_proba(X[:3]).sum(axis=1).round(6).tolist()
    [1.0, 1.0, 1.0]
    """

    def __init__(
        self,
        n_components: int = 16,
        *,
        max_iter: int = 100,
        tol: float = 1e-4,
        n_init: int = 1,
        smoothing: float = 1e-2,
        init: str = "kmeans",
        random_state: int | np.random.RandomState | np.random.Generator | None = None,
    ) -> None:
        self.n_components = n_components
        self.max_iter = max_iter
        self.tol = tol
        self.n_init = n_init
        self.smoothing = smoothing
        self.init = init
        self.random_state = random_state

    # -- validation --------------------------------------------------------------------
    def _check_params(self) -> None:
        check_int(self.n_components, "n_components")
        check_int(self.max_iter, "max_iter")
        check_real(self.tol, "tol", strict=False)
        check_int(self.n_init, "n_init")
        check_real(self.smoothing, "smoothing")
        if self.init not in ("kmeans", "random"):
            raise ValueError(f"init must be 'kmeans' or 'random', got {self.init!r}")

    def _check_X(self, X: Any, *, reset: bool) -> np.ndarray:
        """X as float64 (n, D) after checking that it is binary (and its width if fitted)."""
        if X is None:
            raise TypeError("X must be a 2D array of bits (n_samples, n_features), got None")
        try:
            shape = np.shape(X)
        except ValueError as error:  # ragged nested lists
            raise ValueError(f"X must be a 2D array of bits (n_samples, n_features): "
                             f"{error}") from None
        if len(shape) != 2:
            raise ValueError(f"X must be a 2D array of bits (n_samples, n_features), got "
                             f"shape {shape}")
        X = np.asarray(X)
        if X.dtype.kind not in "biuf":
            raise TypeError(f"X must be an array of bits (bool, int or float 0/1 values), got "
                            f"dtype {X.dtype}")
        if X.shape[0] == 0 or X.shape[1] == 0:
            raise ValueError(f"X must have at least one sample and one feature, got shape "
                             f"{X.shape}")
        X = X.astype(np.float64)
        bad = (X != 0) & (X != 1)  # NaN and infinities too
        if bad.any():
            found = X[bad]
            kind = ("NaN or infinity" if not np.isfinite(found).all()
                    else f"{float(found[0])}")
            raise ValueError(f"X must be binary (values 0 or 1, as bool, int or float), "
                             f"found {kind}")
        if reset:
            self.n_features_in_ = X.shape[1]
        elif X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is "
                             f"expecting {self.n_features_in_} features as input")
        return X

    # -- EM ----------------------------------------------------------------------------
    def _log_prior(self, means: np.ndarray) -> float:
        """log of prod_kd Beta(mu_kd; 1 + a, 1 + a)."""
        a = float(self.smoothing)
        return float(a * (np.log(means).sum() + np.log1p(-means).sum())
                     - means.size * betaln(1.0 + a, 1.0 + a))

    def _e_step(self, X: np.ndarray, weights: np.ndarray,
                means: np.ndarray) -> tuple[np.ndarray, float]:
        """Posteriors (n, K) and the objective at (weights, means)."""
        A, c = _bernoulli_terms(weights, means)
        posteriors = X @ A
        posteriors += c
        log_px = _to_posteriors(posteriors)
        return posteriors, float(log_px.mean() + self._log_prior(means) / len(X))

    def _m_step(self, X: np.ndarray,
                posteriors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """MAP (weights, means) given the posteriors (n, K)."""
        a = float(self.smoothing)
        counts = posteriors.sum(axis=0)
        means = (posteriors.T @ X + a) / (counts[:, None] + 2.0 * a)
        np.clip(means, _EPS, 1.0 - _EPS, out=means)  # guards rounding when N_k >> a
        weights = np.maximum(counts / len(X), _WEIGHT_FLOOR)
        return weights / weights.sum(), means

    def _initial_params(
        self, X: np.ndarray, rng: np.random.RandomState
    ) -> tuple[np.ndarray, np.ndarray]:
        """Starting (weights, means)."""
        K = self.n_components
        if self.init == "kmeans":
            labels = KMeans(n_clusters=K, n_init=1, random_state=rng).fit(X).labels_
            return self._m_step(X, np.eye(K)[labels])
        a = float(self.smoothing)
        overall = (X.sum(axis=0) + a) / (len(X) + 2.0 * a)
        means = 0.5 * X[rng.choice(len(X), K, replace=False)] + 0.5 * overall
        return np.full(K, 1.0 / K), means

    def _em(self, X: np.ndarray,
            rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray, list[float], bool]:
        """One initialisation: (weights, means, objective history, converged)."""
        weights, means = self._initial_params(X, rng)
        posteriors, objective = self._e_step(X, weights, means)
        history: list[float] = []
        for _ in range(self.max_iter):
            weights, means = self._m_step(X, posteriors)
            posteriors, new = self._e_step(X, weights, means)
            history.append(new)
            if abs(new - objective) < self.tol:
                return weights, means, history, True
            objective = new
        return weights, means, history, False

    def fit(self, X: Any, y: Any = None) -> BernoulliMixture:
        """Fit the mixture by EM.

        Parameters
        ----------
        X : array-like, shape (n, D), values in {0, 1} (bool, int or float)
            n >= n_components.
        y : ignored

        Returns
        -------
        self
        """
        self._check_params()
        X = self._check_X(X, reset=True)
        if len(X) < self.n_components:
            raise ValueError(f"X has {len(X)} samples but n_components={self.n_components}; "
                             f"need at least one sample per component")
        rng = legacy_random_state(self.random_state)
        runs = [self._em(X, rng) for _ in range(self.n_init)]
        weights, means, history, converged = max(runs, key=lambda run: run[2][-1])
        self.weights_, self.means_ = weights, means
        self.lower_bounds_, self.lower_bound_ = history, history[-1]
        self.converged_, self.n_iter_ = converged, len(history)
        if not converged:
            warnings.warn(
                "Best performing initialization did not converge. Try different init "
                "parameters, or increase max_iter, tol, or check for degenerate data.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    # -- inference ---------------------------------------------------------------------
    def _fitted_log_joint(self, X: Any) -> np.ndarray:
        """log w_k + log p(x_t | k), shape (n, K)."""
        check_is_fitted(self)
        X = self._check_X(X, reset=False)
        A, c = _bernoulli_terms(self.weights_, self.means_)
        log_joint = X @ A
        log_joint += c
        return log_joint

    def score_samples(self, X: Any) -> np.ndarray:
        """Log-likelihood log p(x_t) of each sample, shape (n,)."""
        return _to_posteriors(self._fitted_log_joint(X))

    def score(self, X: Any, y: Any = None) -> float:
        """Mean log-likelihood of the samples X (n, D)."""
        return float(self.score_samples(X).mean())

    def predict_proba(self, X: Any) -> np.ndarray:
        """Posteriors p(k | x_t), shape (n, K); every row is finite and sums to 1."""
        posteriors = self._fitted_log_joint(X)
        _to_posteriors(posteriors)
        return posteriors

    def predict(self, X: Any) -> np.ndarray:
        """Most probable component of each sample, shape (n,)."""
        return self._fitted_log_joint(X).argmax(axis=1)

    def _n_parameters(self) -> int:
        return self.means_.size + self.n_components - 1

    def bic(self, X: Any) -> float:
        """Bayesian information criterion on X (lower is better)."""
        n = len(X)
        return -2.0 * self.score(X) * n + self._n_parameters() * np.log(n)

    def aic(self, X: Any) -> float:
        """Akaike information criterion on X (lower is better)."""
        return -2.0 * self.score(X) * len(X) + 2.0 * self._n_parameters()


# ------------------------------------------------------------------------------------------
# Fisher vectors
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Encoding:
    """Constants of a fitted encoder, computed once per fit (and per ``dtype``).

    E-step: log w_k + log p(x | k) = (AT @ z(x))[k] + c[k] + (a term that does not depend
    on k), where z(x) (p,) is the expanded descriptor (``_expand``, computed after
    subtracting ``shift``); AT is (K, p) and c (K, 1), both in the compute dtype.
    ``gradient`` holds the float64 constants of the subclass's ``_gradients``; ``lookup``
    those of its ``_expand``, if any.
    """

    AT: np.ndarray
    c: np.ndarray
    shift: np.ndarray
    gradient: tuple[np.ndarray, ...]
    lookup: np.ndarray | None = None


class _FisherVector(TransformerMixin, BaseEstimator, ABC):
    """Set validation, descriptor sampling, chunked encoding and normalisation shared by the
    Fisher-vector encoders. Subclasses define the model and its gradients."""

    #: Name of the model's dimensions in messages ("bits", "dimensions").
    _unit: ClassVar[str]
    #: Gradient blocks of D values per component after the K alpha values.
    _blocks: ClassVar[tuple[str, ...]]

    # -- subclass hooks ----------------------------------------------------------------
    @abstractmethod
    def _check_values(self, a: np.ndarray, where: str) -> np.ndarray:
        """``a`` (2-D) after its dtype and values are checked; ``where`` names it."""

    @abstractmethod
    def _dims(self, a: np.ndarray) -> int:
        """Model dimensions of the descriptors in ``a`` (e.g. 8 bits per packed byte)."""

    @abstractmethod
    def _fit_model(self, sample: np.ndarray, seed: int) -> None:
        """Fit the mixture on ``sample`` (checked descriptors, (n, dims)) seeded by ``seed``."""

    @abstractmethod
    def _fitted_shape(self) -> tuple[int, int]:
        """(K, D) of the fitted mixture."""

    @abstractmethod
    def _encoding(self, dtype: np.dtype) -> _Encoding:
        """Constants of the fitted mixture, E-step ones in ``dtype``."""

    @abstractmethod
    def _expand(self, chunk: np.ndarray, encoding: _Encoding) -> np.ndarray:
        """Statistics z(x) of a chunk of m checked descriptors, (m, p) in the dtype of
        ``encoding.AT``."""

    @abstractmethod
    def _gradients(self, mean_posteriors: np.ndarray, mean_stats: np.ndarray,
                   encoding: _Encoding) -> np.ndarray:
        """Fisher vector before normalisation, from (1/N) sum_t g_t (K,) and
        (1/N) sum_t g_t z_t^T (K, p), both float64."""

    def _compute_dtype(self) -> np.dtype:
        """dtype of the E-step and the statistics (float64 unless a subclass offers more)."""
        return np.dtype(np.float64)

    # -- validation --------------------------------------------------------------------
    def _check_params(self) -> None:
        n_components = check_int(self.n_components, "n_components")
        if check_int(self.max_descriptors, "max_descriptors") < n_components:
            raise ValueError(f"max_descriptors must be >= n_components={n_components}, got "
                             f"{self.max_descriptors}")
        if self.power is not None:
            check_real(self.power, "power")
        check_bool(self.normalize, "normalize")
        check_int(self.max_iter, "max_iter")
        check_real(self.tol, "tol", strict=False)

    def _check_set(self, descriptors: Any, where: str, dims: int | None) -> np.ndarray:
        if descriptors is None:
            raise TypeError(f"{where} must be a 2-D array (n_descriptors, dims), got None")
        try:
            a = np.asarray(descriptors)
        except ValueError as error:  # ragged nested lists
            raise ValueError(f"{where} must be a 2-D array (n_descriptors, dims): "
                             f"{error}") from None
        if a.ndim != 2 or a.shape[1] == 0:
            raise ValueError(f"{where} must be a 2-D array (n_descriptors, dims) with "
                             f"dims >= 1, got shape {a.shape}")
        a = self._check_values(a, where)
        if dims is not None and self._dims(a) != dims:
            raise ValueError(f"{where} has {self._dims(a)} {self._unit} per descriptor but "
                             f"the encoder was fitted on {dims} {self._unit}")
        return a

    def _check_sets(self, descriptor_sets: Any, dims: int | None) -> list[np.ndarray]:
        """Checked arrays, all with ``dims`` model dimensions (None: those of set 0)."""
        if not isinstance(descriptor_sets, list | tuple):
            raise TypeError(f"descriptor_sets must be a list or tuple of 2-D arrays "
                            f"(n_i, dims), one per video, got {type(descriptor_sets).__name__}")
        sets = [self._check_set(descriptors, f"descriptor_sets[{i}]", dims)
                for i, descriptors in enumerate(descriptor_sets)]
        if dims is None and sets:
            first = self._dims(sets[0])
            for i, a in enumerate(sets[1:], start=1):
                if self._dims(a) != first:
                    raise ValueError(f"descriptor_sets[{i}] has {self._dims(a)} {self._unit} "
                                     f"per descriptor but descriptor_sets[0] has {first} "
                                     f"{self._unit}")
        return sets

    def _fitted_encoding(self) -> _Encoding:
        """The constants of the fit in the current compute dtype (recomputed only when
        ``set_params`` changed the dtype since)."""
        encoding = self.__dict__.get("_encoding_")
        if encoding is None:
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet. Call "
                                 f"'fit' with appropriate arguments before using this "
                                 f"estimator.")
        dtype = self._compute_dtype()
        if encoding.AT.dtype != dtype:
            encoding = self._encoding_ = self._encoding(dtype)
        return encoding

    # -- fit ---------------------------------------------------------------------------
    def fit(self, descriptor_sets: Sequence[Any], y: Any = None) -> _FisherVector:
        """Fit the mixture on (a sample of) the pooled descriptors.

        Parameters
        ----------
        descriptor_sets : list or tuple of 2-D arrays (n_i, dims)
            One array of local descriptors per video (n_i may be 0). At most
            ``max_descriptors`` of all descriptors, drawn uniformly without replacement
            (``random_state``; O(max_descriptors) time and memory), train the mixture.
        y : ignored

        Returns
        -------
        self
        """
        self._check_params()
        dtype = self._compute_dtype()
        sets = self._check_sets(descriptor_sets, None)
        counts = np.array([len(a) for a in sets], dtype=np.int64)
        total = int(counts.sum())
        if total < self.n_components:
            raise ValueError(f"descriptor_sets hold {total} descriptors in {len(sets)} sets; "
                             f"fitting needs at least n_components={self.n_components}")
        seed, rng = random_streams(self.random_state)
        if total > self.max_descriptors:
            chosen = np.sort(rng.choice(total, self.max_descriptors, replace=False,
                                        shuffle=False))
            offsets = np.concatenate([[0], np.cumsum(counts)])
            bounds = np.searchsorted(chosen, offsets)
            sample = np.concatenate([a[chosen[lo:hi] - start] for a, lo, hi, start
                                     in zip(sets, bounds[:-1], bounds[1:], offsets[:-1],
                                            strict=True)])
        else:
            sample = np.concatenate(sets)
        self._fit_model(sample, seed)
        K, D = self._fitted_shape()
        self.n_features_out_ = K * (1 + len(self._blocks) * D)
        self._encoding_ = self._encoding(dtype)
        return self

    # -- encoding ----------------------------------------------------------------------
    def _encode(self, descriptors: np.ndarray, encoding: _Encoding, where: str) -> np.ndarray:
        """Normalised Fisher vector of one checked set (zeros for an empty one).

        Per chunk of m descriptors: z (m, p), log-joint AT @ z^T (K, m) with the posteriors
        taken along axis 0 (vectorised over descriptors), statistics g @ z (K, p); the sums
        over chunks are accumulated in float64."""
        n = len(descriptors)
        if n == 0:
            return np.zeros(self.n_features_out_)
        AT, c = encoding.AT, encoding.c
        step = max(1, _CHUNK_ELEMENTS // max(AT.shape))
        posterior_sums = stats = 0.0
        for start in range(0, n, step):
            z = self._expand(descriptors[start:start + step], encoding)
            posteriors = AT @ z.T
            posteriors += c
            _to_posteriors(posteriors, axis=0)
            posterior_sums = np.add(posterior_sums, posteriors.sum(axis=1), dtype=np.float64)
            stats = np.add(stats, posteriors @ z, dtype=np.float64)
        vector = self._gradients(posterior_sums / n, stats / n, encoding)
        magnitude = np.abs(vector)
        if self.power is not None:
            if self.power == 0.5:
                np.sqrt(magnitude, out=magnitude)
            else:
                np.power(magnitude, self.power, out=magnitude)
            np.copysign(magnitude, vector, out=vector)
        top = magnitude.max()  # NaN propagates
        if not np.isfinite(top):
            raise ValueError(f"{where}: the Fisher vector is not finite (float64 overflow); "
                             f"rescale the descriptors")
        if self.normalize and top > 0:
            vector *= 1.0 / top  # scaled by the largest entry first: no overflow, no underflow
            vector *= 1.0 / np.linalg.norm(vector)
        return vector

    def encode(self, descriptors: Any) -> np.ndarray:
        """Fisher vector of one descriptor set.

        Parameters
        ----------
        descriptors : array, shape (n, dims)
            One set as in ``transform``; n may be 0 (the zero vector is returned).

        Returns
        -------
        ndarray of float64, shape (n_features_out_,)
        """
        encoding = self._fitted_encoding()
        descriptors = self._check_set(descriptors, "descriptors", self._fitted_shape()[1])
        return self._encode(descriptors, encoding, "descriptors")

    def transform(self, descriptor_sets: Sequence[Any]) -> np.ndarray:
        """Fisher vectors of descriptor sets.

        Parameters
        ----------
        descriptor_sets : list or tuple of 2-D arrays (n_i, dims)
            One array of local descriptors per video, as in ``fit``; n_i may be 0.

        Returns
        -------
        ndarray of float64, shape (n_sets, n_features_out_)
            One Fisher vector per set; an empty set gives a zero row.
        """
        encoding = self._fitted_encoding()
        sets = self._check_sets(descriptor_sets, self._fitted_shape()[1])
        out = np.zeros((len(sets), self.n_features_out_))
        for i, descriptors in enumerate(sets):
            out[i] = self._encode(descriptors, encoding, f"descriptor_sets[{i}]")
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names of the output features in layout order: ``alpha{k}``, then ``mu{k}_{d}``
        (and ``sigma{k}_{d}``), k-major. ``input_features`` is ignored."""
        check_is_fitted(self)
        K, D = self._fitted_shape()
        names = [f"alpha{k}" for k in range(K)]
        names += [f"{block}{k}_{d}" for block in self._blocks for k in range(K)
                  for d in range(D)]
        return np.asarray(names, dtype=object)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False  # a list of 2-D arrays, one per set
        return tags


_FV_PARAMS_DOC = """    n_components : int, default=16
        Mixture components K.
    max_descriptors : int, default=100_000
        At most this many descriptors, drawn uniformly without replacement from all training
        sets (``random_state``), fit the mixture (all of them when there are fewer).
    power : float > 0 or None, default=0.5
        Power normalisation sign(z) |z|^power of every coordinate (None: skipped).
    normalize : bool, default=True
        L2-normalise each vector after the power normalisation (a zero vector stays zero).
"""

_FV_OUTPUT_DOC = """\
    ``transform`` returns one vector per set, ``encode`` one vector for one set; an empty set
    (n_i = 0) gives the zero vector (no gradient information). Encoding is chunked (memory
    bounded whatever n_i), one matrix product for the log-likelihoods and one for the
    statistics per chunk."""


@FEATURES.register(
    name="binary_fisher_vector", deprecated_names=("BinaryFisherVector",),
    tags={"descriptor_sets"},
    test_params={"n_components": 2, "max_iter": 20, "random_state": 0},
    bench_params={},
    input="descriptor_sets",
    descriptor_dim=12,
    packed=True,
    input_shape=None,
    dataset=None,
)
class BinaryFisherVector(_FisherVector):
    __doc__ = f"""Fisher vectors of sets of binary descriptors under a Bernoulli mixture.

    **[INTERP]** Leyva et al. (2019) propose "a novel Fisher Vector for binary data" whose
    equations are not available here; this is the Bernoulli-mixture Fisher vector with the
    closed-form Fisher-information normalisation of Uchida et al. (2016). Leyva's exact
    variant may differ.

    A :class:`BernoulliMixture` (``mixture_``: weights w, means mu) is fitted on a sample of
    the training descriptors. For a set X = {{x_t}}, t = 1..N, with posteriors
    g_tk = p(k | x_t):

    - G_alpha_k = (1 / (N sqrt(w_k))) sum_t (g_tk - w_k): gradient of the mean log-likelihood
      with respect to alpha, w = softmax(alpha), scaled by the Fisher information ~ w_k;
    - G_mu_kd = (1 / (N sqrt(w_k))) sum_t g_tk (x_td - mu_kd) / sqrt(mu_kd (1 - mu_kd)):
      gradient with respect to mu scaled by the closed-form Fisher information
      N w_k / (mu_kd (1 - mu_kd)) to the power -1/2.

    Layout: [G_alpha (K); G_mu (K * D, row-major: component k, then bit d)], length
    K (1 + D); then power and L2 normalisation.
{_FV_OUTPUT_DOC}

    Parameters
    ----------
{_FV_PARAMS_DOC}    packed : bool, default=True
        True: descriptors are uint8 bytes from ``numpy.packbits``, D = 8 * n_bytes bits,
        bit d = bit 7 - d % 8 of byte d // 8 (big-endian, ``numpy.unpackbits``). Bytes packed
        in another bit order (OpenCV's ORB/BRIEF set bits LSB first) give the same vectors up
        to a permutation of the bits within each byte. False: arrays of 0/1 values (bool,
        int or float), D = number of columns.
    smoothing, max_iter, tol :
        Of the :class:`BernoulliMixture`, initialised by k-means (defaults 1e-2, 100, 1e-3).
        tol is 1e-3 as in ``GaussianMixture`` rather than the mixture's 1e-4: a vocabulary
        for encoding need not be tightly converged, and on nearly independent bits EM creeps
        by ~1e-4 per iteration for over a hundred iterations.
    dtype : {{numpy.float32, numpy.float64}}, default=numpy.float32
        Precision of the encoding's two matrix products (log-likelihoods and statistics);
        the sums over descriptors, the gradients and the output are float64 either way.
        float32 encodes about twice as fast as float64 (README); its normalised vectors are
        within ~1e-4 to 1e-3 (L2) of the float64 ones, more for sharper mixtures (the power
        normalisation amplifies the error of entries near 0). float64 gives the vectors to
        ~1e-12.
    random_state : int, RandomState, Generator or None, default=None
        Seeds the descriptor sample and the mixture (None: fresh entropy; numpy's global
        generator is never used).

    Attributes
    ----------
    mixture_ : BernoulliMixture
    n_bits_ : int
        Bits D per descriptor.
    n_features_out_ : int
        K (1 + D).

    References
    ----------
{_REFERENCES}

    Examples
    --------
    >>> import numpy as np
    >>> from lightvision.features import BinaryFisherVector
    >>> rng = np.random.default_rng(0)
    >>> videos = [np.packbits(rng.random((50, 32)) < 0.3, axis=1) for _ in range(3)]
    >>> videos[0].shape, videos[0].dtype  # 50 descriptors of 4 bytes
    ((50, 4), dtype('uint8'))
    >>> fv = BinaryFisherVector(n_components=2, random_state=0).fit(videos)
    >>> fv.n_bits_, fv.transform(videos).shape  # 2 x (1 + 32)
    (32, (3, 66))
    >>> round(float(np.linalg.norm(fv.encode(videos[0]))), 12)  # L2-normalised
    1.0
    """

    _unit = "bits"
    _blocks = ("mu",)

    def __init__(
        self,
        n_components: int = 16,
        *,
        packed: bool = True,
        max_descriptors: int = 100_000,
        power: float | None = 0.5,
        normalize: bool = True,
        smoothing: float = 1e-2,
        max_iter: int = 100,
        tol: float = 1e-3,
        dtype: Any = np.float32,
        random_state: int | np.random.RandomState | np.random.Generator | None = None,
    ) -> None:
        self.n_components = n_components
        self.packed = packed
        self.max_descriptors = max_descriptors
        self.power = power
        self.normalize = normalize
        self.smoothing = smoothing
        self.max_iter = max_iter
        self.tol = tol
        self.dtype = dtype
        self.random_state = random_state

    def _check_params(self) -> None:
        super()._check_params()
        check_bool(self.packed, "packed")
        check_real(self.smoothing, "smoothing")
        self._compute_dtype()

    def _compute_dtype(self) -> np.dtype:
        try:
            dtype = np.dtype(self.dtype)
        except TypeError:
            dtype = None
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be numpy.float32 or numpy.float64, "
                            f"got {self.dtype!r:.60}")
        return dtype

    def _check_values(self, a: np.ndarray, where: str) -> np.ndarray:
        if self.packed:
            if a.dtype != np.uint8:
                raise TypeError(f"{where}: packed binary descriptors must be uint8 bytes from "
                                f"numpy.packbits, got dtype {a.dtype} (packed=False takes "
                                f"arrays of 0/1 values)")
        elif a.dtype.kind not in "biuf" or ((a != 0) & (a != 1)).any():
            raise ValueError(f"{where}: descriptors are not binary (packed=False takes arrays "
                             f"of 0/1 values; packed=True uint8 bytes from numpy.packbits)")
        return a

    def _dims(self, a: np.ndarray) -> int:
        return a.shape[1] * 8 if self.packed else a.shape[1]

    def _bits(self, descriptors: np.ndarray) -> np.ndarray:
        """Checked descriptors as float64 bits (n, D)."""
        bits = np.unpackbits(descriptors, axis=1) if self.packed else descriptors
        return bits.astype(np.float64)

    def _expand(self, chunk: np.ndarray, encoding: _Encoding) -> np.ndarray:
        """Bits minus the mixture's mean bit rates m, (m, D) in the compute dtype; packed
        bytes are looked up (the 8 values of byte v at byte position b: row 256 b + v)."""
        if not self.packed:
            return np.subtract(chunk, encoding.shift, dtype=encoding.AT.dtype)
        rows = chunk + np.arange(0, 256 * chunk.shape[1], 256)  # intp (m, n_bytes)
        return encoding.lookup.take(rows, axis=0).reshape(len(chunk), -1)

    def _fit_model(self, sample: np.ndarray, seed: int) -> None:
        self.mixture_ = BernoulliMixture(
            self.n_components, max_iter=self.max_iter, tol=self.tol, smoothing=self.smoothing,
            random_state=seed,
        ).fit(self._bits(sample))
        self.n_bits_ = self.mixture_.n_features_in_

    def _fitted_shape(self) -> tuple[int, int]:
        return self.mixture_.means_.shape

    def _encoding(self, dtype: np.dtype) -> _Encoding:
        """Descriptors centred on the mixture's mean bit rates m = w @ mu: log w_k +
        log p(x | k) = sum_d (x_d - m_d) A_dk + c_k with c_k = log w_k + sum_d [m_d log mu_kd
        + (1 - m_d) log(1 - mu_kd)], shifted so that max_k c_k = 0 (small magnitudes, which
        float32 rounds finely), and statistics of x - m (less cancellation in G_mu)."""
        w, mu = self.mixture_.weights_, self.mixture_.means_
        m = (w @ mu).astype(dtype).astype(np.float64)  # the shift exactly as applied
        A, c = _bernoulli_terms(w, mu)
        c = c + m @ A
        c -= c.max()
        root_w = np.sqrt(w)
        lookup = None
        if self.packed:
            byte_bits = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1)
            lookup = (byte_bits - m.reshape(-1, 1, 8)).reshape(-1, 8).astype(dtype)
        return _Encoding(A.T.astype(dtype, order="C"), c.astype(dtype)[:, None], m,
                         (w, 1.0 / root_w, mu - m,
                          1.0 / (root_w[:, None] * np.sqrt(mu * (1.0 - mu)))), lookup)

    def _gradients(self, mean_posteriors: np.ndarray, mean_stats: np.ndarray,
                   encoding: _Encoding) -> np.ndarray:
        w, inv_root_w, centred_mu, scale = encoding.gradient
        K = len(w)
        vector = np.empty(self.n_features_out_)
        np.multiply(mean_posteriors - w, inv_root_w, out=vector[:K])
        np.multiply(mean_stats - mean_posteriors[:, None] * centred_mu, scale,
                    out=vector[K:].reshape(centred_mu.shape))
        return vector


@FEATURES.register(
    name="gaussian_fisher_vector", deprecated_names=("GaussianFisherVector",),
    tags={"descriptor_sets"},
    test_params={"n_components": 2, "max_iter": 20, "random_state": 0},
    bench_params={},
    input="descriptor_sets",
    descriptor_dim=12,
    input_shape=None,
    dataset=None,
)
class GaussianFisherVector(_FisherVector):
    __doc__ = f"""Improved Fisher vectors of sets of float descriptors under a diagonal GMM
    (Perronnin et al. 2010; Sanchez et al. 2013): the float baseline of
    :class:`BinaryFisherVector`.

    A ``sklearn.mixture.GaussianMixture(covariance_type="diag")`` (``gmm_``: weights w,
    means mu, variances sigma^2) is fitted on a sample of the training descriptors. For a set
    X = {{x_t}}, t = 1..N, with posteriors g_tk:

    - G_alpha_k = (1 / (N sqrt(w_k))) sum_t (g_tk - w_k);
    - G_mu_kd = (1 / (N sqrt(w_k))) sum_t g_tk (x_td - mu_kd) / sigma_kd;
    - G_sigma_kd = (1 / (N sqrt(2 w_k))) sum_t g_tk [((x_td - mu_kd) / sigma_kd)^2 - 1]:

    the gradients of the mean log-likelihood with respect to alpha (w = softmax(alpha)), mu
    and sigma, scaled by the closed-form diagonal Fisher information. (scikit-image's
    ``fisher_vector`` returns the same alpha and mu blocks and the sigma block negated.)
    Layout: [G_alpha (K); G_mu (K * D); G_sigma (K * D)], k-major, length K (1 + 2D); then
    power and L2 normalisation. Descriptors are centred on the mixture mean before the
    expansion (x - mu)^2 = x^2 - 2 x mu + mu^2, which limits cancellation.
{_FV_OUTPUT_DOC}

    Parameters
    ----------
{_FV_PARAMS_DOC}    max_iter, tol, reg_covar :
        Of the ``GaussianMixture`` (defaults 100, 1e-3, 1e-6, scikit-learn's): an int >= 1
        and finite floats >= 0, checked by ``fit`` before any descriptor is read.
    random_state : int, RandomState, Generator or None, default=None
        Seeds the descriptor sample and the mixture (None: fresh entropy; numpy's global
        generator is never used).

    Descriptors may have any real dtype (integers included); NaN, infinity or a magnitude
    above 1e100 (whose squares would overflow the float64 statistics) raise ``ValueError``.

    Attributes
    ----------
    gmm_ : sklearn.mixture.GaussianMixture
    n_dims_ : int
        Dimensions D per descriptor.
    n_features_out_ : int
        K (1 + 2D).

    References
    ----------
    .. [1] F. Perronnin, J. Sanchez, T. Mensink, "Improving the Fisher Kernel for Large-Scale
       Image Classification", ECCV 2010.
    .. [2] J. Sanchez, F. Perronnin, T. Mensink, J. Verbeek, "Image Classification with the
       Fisher Vector: Theory and Practice", IJCV 105(3):222-245, 2013.
    .. [3] C. Leyva, V. Sanchez, C.-T. Li, "Compact and Low-Complexity Binary Feature
       Descriptor and Fisher Vectors for Video Analytics", IEEE Trans. Image Processing
       28(12):6169-6184, 2019 (seed paper, for which this is the float baseline).

    Examples
    --------
    >>> import numpy as np
    >>> from lightvision.features import GaussianFisherVector
    >>> rng = np.random.default_rng(0)
    >>> videos = [rng.normal(size=(40, 6)) for _ in range(3)] + [np.empty((0, 6))]
    >>> fv = GaussianFisherVector(n_components=2, random_state=0).fit(videos)
    >>> features = fv.transform(videos)
    >>> features.shape  # 2 x (1 + 2 x 6)
    (4, 26)
    >>> np.linalg.norm(features, axis=1).round(6).tolist()  # the empty set gives zeros
    [1.0, 1.0, 1.0, 0.0]
    """

    _unit = "dimensions"
    _blocks = ("mu", "sigma")

    def __init__(
        self,
        n_components: int = 16,
        *,
        max_descriptors: int = 100_000,
        power: float | None = 0.5,
        normalize: bool = True,
        max_iter: int = 100,
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        random_state: int | np.random.RandomState | np.random.Generator | None = None,
    ) -> None:
        self.n_components = n_components
        self.max_descriptors = max_descriptors
        self.power = power
        self.normalize = normalize
        self.max_iter = max_iter
        self.tol = tol
        self.reg_covar = reg_covar
        self.random_state = random_state

    def _check_params(self) -> None:
        super()._check_params()
        check_real(self.reg_covar, "reg_covar", strict=False)

    def _check_values(self, a: np.ndarray, where: str) -> np.ndarray:
        if a.dtype.kind not in "iuf":
            raise TypeError(f"{where}: float descriptors must have a real numeric dtype, got "
                            f"{a.dtype}")
        if a.dtype.kind == "f" and a.size:
            top = float(np.abs(a).max())  # NaN propagates
            if not np.isfinite(top):
                raise ValueError(f"{where} contains NaN or infinity")
            if top > _MAX_MAGNITUDE:
                raise ValueError(f"{where} holds values of magnitude up to {top:.3g}; float "
                                 f"descriptors must be at most {_MAX_MAGNITUDE:g} in magnitude "
                                 f"(their squares enter the float64 statistics): rescale them")
        return a

    def _dims(self, a: np.ndarray) -> int:
        return a.shape[1]

    def _fit_model(self, sample: np.ndarray, seed: int) -> None:
        self.gmm_ = GaussianMixture(
            self.n_components, covariance_type="diag", max_iter=self.max_iter, tol=self.tol,
            reg_covar=self.reg_covar, random_state=seed,
        ).fit(sample.astype(np.float64))
        self.n_dims_ = self.gmm_.n_features_in_

    def _fitted_shape(self) -> tuple[int, int]:
        return self.gmm_.means_.shape

    def _encoding(self, dtype: np.dtype) -> _Encoding:
        w, variances = self.gmm_.weights_, self.gmm_.covariances_
        shift = w @ self.gmm_.means_
        mu, precisions = self.gmm_.means_ - shift, 1.0 / variances
        AT = np.hstack([mu * precisions, -0.5 * precisions])
        c = np.log(w) - 0.5 * ((mu**2 * precisions).sum(1)
                               + np.log(2.0 * np.pi * variances).sum(1))
        return _Encoding(AT.astype(dtype), c.astype(dtype)[:, None], shift,
                         (w, mu, variances))

    def _expand(self, chunk: np.ndarray, encoding: _Encoding) -> np.ndarray:
        x = chunk - encoding.shift
        return np.hstack([x, x * x])

    def _gradients(self, mean_posteriors: np.ndarray, mean_stats: np.ndarray,
                   encoding: _Encoding) -> np.ndarray:
        w, mu, variances = encoding.gradient
        D = mu.shape[1]
        s0, s1, s2 = mean_posteriors[:, None], mean_stats[:, :D], mean_stats[:, D:]
        root_w = np.sqrt(w)
        g_alpha = (mean_posteriors - w) / root_w
        g_mu = (s1 - s0 * mu) / (np.sqrt(variances) * root_w[:, None])
        g_sigma = ((s2 - 2.0 * mu * s1 + s0 * mu**2) / variances - s0) / (
            np.sqrt(2.0) * root_w[:, None])
        return np.concatenate([g_alpha, g_mu.ravel(), g_sigma.ravel()])
