"""Checks run over every registered feature extractor (scikit-learn transformers on images).

A feature joins these checks by being registered in :data:`lightvision.registry.FEATURES`
with tiny ``test_params`` and ``input_shape`` ((H, W) grey or (H, W, C) colour); the tag
``supervised`` means its ``fit`` needs labels; ``multiview`` ones (fitted on a list of feature
matrices, not images) get only the data-free checks. scikit-learn's ``check_estimator`` assumes
tabular input, so its data-free checks run here and the data checks are written for images.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import estimator_checks

from lightvision.registry import FEATURES

ALL_ENTRIES = FEATURES.entries()
ALL_IDS = [e.name for e in ALL_ENTRIES]
#: Image checks skip estimators tagged "multiview": they take a list of feature matrices.
ENTRIES = [e for e in ALL_ENTRIES if "multiview" not in e.tags]
IDS = [e.name for e in ENTRIES]

DATA_FREE_CHECKS = [
    estimator_checks.check_parameters_default_constructible,
    estimator_checks.check_no_attributes_set_in_init,
    estimator_checks.check_get_params_invariance,
    estimator_checks.check_set_params,
    estimator_checks.check_estimator_repr,
    estimator_checks.check_do_not_raise_errors_in_init_or_set_params,
    estimator_checks.check_estimator_cloneable,
    estimator_checks.check_mixin_order,
]


def _images(entry, n=24, seed=0):
    """Random uint8 images of the entry's input shape, with labels 0..2."""
    rng = np.random.default_rng(seed)
    shape = entry.meta.get("test_input_shape", entry.meta["input_shape"])
    X = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
    return X, np.arange(n) % 3


def _fit(entry, X, y, **params):
    est = entry.create(**{**entry.test_params, **params})
    return est.fit(X, y) if "supervised" in entry.tags else est.fit(X)


def _dense(features):
    return features.toarray() if sp.issparse(features) else np.asarray(features)


def test_registry_is_not_empty():
    assert IDS, "no feature registered"


@pytest.mark.parametrize("check", DATA_FREE_CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("entry", ALL_ENTRIES, ids=ALL_IDS)
def test_scikit_learn_data_free_checks(entry, check):
    check(entry.name, entry.create(**entry.test_params))


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_fit_transform_shapes_and_values(entry):
    X, y = _images(entry)
    X_copy = X.copy()
    est = _fit(entry, X, y)
    features = est.transform(X[:5])
    assert features.shape[0] == 5 and features.shape[1] > 0
    assert np.isfinite(_dense(features)).all()
    assert np.array_equal(X, X_copy), "fit/transform modified the input images"
    for dtype in (np.float32, np.float64):  # any real dtype gives the same features
        np.testing.assert_allclose(_dense(est.transform(X[:5].astype(dtype))),
                                   _dense(features), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_deterministic_under_random_state(entry):
    X, y = _images(entry)
    a = _fit(entry, X, y, random_state=0).transform(X[:4])
    b = _fit(entry, X, y, random_state=0).transform(X[:4])
    np.testing.assert_array_equal(_dense(a), _dense(b))


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_clone_and_pickle(entry):
    X, y = _images(entry)
    est = _fit(entry, X, y, random_state=0)
    expected = _dense(est.transform(X[:4]))
    np.testing.assert_array_equal(_dense(pickle.loads(pickle.dumps(est)).transform(X[:4])),
                                  expected)
    fresh = clone(est)
    assert fresh.get_params() == est.get_params()
    with pytest.raises(NotFittedError):
        fresh.transform(X[:4])


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_bad_input_raises_clear_errors(entry):
    X, y = _images(entry)
    est = entry.create(**entry.test_params)
    fit = (lambda data: est.fit(data, y[: len(data)])) if "supervised" in entry.tags \
        else est.fit
    with pytest.raises(ValueError, match="X"):
        fit(X[0])  # one image, no batch axis
    with pytest.raises(ValueError, match="X"):
        fit(X[:0])
    nan = X.astype(np.float32)
    nan[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="X"):
        fit(nan)
    fitted = _fit(entry, X, y)
    other_channels = (np.repeat(X[..., None], 3, axis=-1) if X.ndim == 3 else X[..., 0])
    with pytest.raises(ValueError, match="channel"):
        fitted.transform(other_channels)
