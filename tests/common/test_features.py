"""Checks run over every registered feature extractor (scikit-learn estimators).

A feature joins these checks by being registered in :data:`lightvision.registry.FEATURES`
with tiny ``test_params``. Its ``input`` metadata says what it takes (default ``"images"``):

- ``"images"``: (n, H, W) or (n, H, W, C) images of ``test_input_shape``/``input_shape``;
- ``"videos"``: a list of videos (T, H, W) of ``test_input_shape``; ``transform`` returns one
  descriptor array per video;
- ``"descriptor_sets"``: a list of (n_i, ``descriptor_dim``) arrays, packed uint8 bytes when
  ``packed`` is set, floats otherwise;
- ``"binary"``: an (n, ``n_features``) 0/1 matrix (a density model: no ``transform``);
- ``"views"``: a list of feature matrices (only the data-free checks).

The tag ``supervised`` means ``fit`` needs labels. scikit-learn's ``check_estimator`` assumes
tabular input, so its data-free checks run here and the data checks are written per input.
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
#: Entries whose input these checks can generate ("views" get the data-free checks only).
DATA_ENTRIES = [e for e in ALL_ENTRIES if e.meta.get("input", "images") != "views"]
DATA_IDS = [e.name for e in DATA_ENTRIES]
ENTRIES = [e for e in DATA_ENTRIES if e.meta.get("input", "images") == "images"]
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


# --- checks for every input kind ----------------------------------------------------------

def _videos(entry, n=4, seed=0):
    """Smooth random textures moving a few pixels per frame, uint8, with labels 0, 1, 0, 1."""
    rng = np.random.default_rng(seed)
    frames, height, width = entry.meta["test_input_shape"]
    videos = []
    for i in range(n):
        texture = rng.random((height + 2 * frames, width + 2 * frames))
        texture = np.cumsum(np.cumsum(texture, axis=0), axis=1)  # low-pass: smooth, textured
        texture = np.sin(texture / texture.std() * 40) * 100 + 128
        step = 1 + i % 2
        videos.append(np.stack([texture[frames: frames + height, t * step: t * step + width]
                                for t in range(frames)]).astype(np.uint8))
    return videos, np.arange(n) % 2


def _descriptor_sets(entry, n=6, seed=0):
    """Sets of 0-40 random descriptors (packed bytes or floats), one set empty."""
    rng = np.random.default_rng(seed)
    dim = entry.meta["descriptor_dim"]
    sizes = [40, 0, *rng.integers(10, 40, size=n - 2)]
    if entry.meta.get("packed"):
        sets = [rng.integers(0, 256, size=(k, dim), dtype=np.uint8) for k in sizes]
    else:
        sets = [rng.normal(size=(k, dim)) + i % 2 for i, k in enumerate(sizes)]
    return sets, np.arange(n) % 2


def _binary(entry, n=60, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((n, entry.meta["n_features"])) < 0.3).astype(np.uint8), np.arange(n) % 2


_DATA = {"images": _images, "videos": _videos, "descriptor_sets": _descriptor_sets,
         "binary": _binary}


def _data(entry):
    return _DATA[entry.meta.get("input", "images")](entry)


def _outputs(est, data, entry):
    """What the fitted estimator computes, as a list of dense arrays."""
    if entry.meta.get("input") == "binary":
        return [est.score_samples(data), est.predict_proba(data)]
    out = est.transform(data)
    return [_dense(o) for o in out] if isinstance(out, list) else [_dense(out)]


def _snapshot(data):
    return [np.array(d, copy=True) for d in data] if isinstance(data, list) else data.copy()


@pytest.mark.parametrize("entry", DATA_ENTRIES, ids=DATA_IDS)
def test_outputs_finite_and_input_untouched(entry):
    data, y = _data(entry)
    before = _snapshot(data)
    outputs = _outputs(_fit(entry, data, y), data, entry)
    assert outputs and all(np.isfinite(o).all() for o in outputs)
    for original, now in zip(before, data, strict=True):
        assert np.array_equal(original, now), "fit/transform modified its input"


@pytest.mark.parametrize("entry", DATA_ENTRIES, ids=DATA_IDS)
def test_deterministic_clone_and_pickle(entry):
    data, y = _data(entry)
    est = _fit(entry, data, y, **({"random_state": 0}
                                  if "random_state" in entry.create().get_params() else {}))
    expected = _outputs(est, data, entry)
    again = _fit(entry, data, y, **est.get_params())
    for a, b in zip(expected, _outputs(again, data, entry), strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(expected, _outputs(pickle.loads(pickle.dumps(est)), data, entry),
                    strict=True):
        np.testing.assert_array_equal(a, b)
    assert clone(est).get_params() == est.get_params()


def _as_numpy_scalars(value):
    """``value`` with every int and float (not bool) made a numpy scalar, in nested tuples,
    lists and dicts."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return np.int64(value)
    if isinstance(value, float):
        return np.float64(value)
    if isinstance(value, tuple | list):
        return type(value)(_as_numpy_scalars(v) for v in value)
    if isinstance(value, dict):
        return {k: _as_numpy_scalars(v) for k, v in value.items()}
    return value


@pytest.mark.parametrize("entry", DATA_ENTRIES, ids=DATA_IDS)
def test_numpy_scalar_parameters_give_the_same_outputs(entry):
    """Issue 14, item 5: numpy ints and floats (a GridSearchCV over numpy grids) are accepted
    wherever Python numbers are, with the same result."""
    data, y = _data(entry)
    params = {**entry.test_params, **({"random_state": 0}
                                      if "random_state" in entry.create().get_params() else {})}
    expected = _outputs(_fit(entry, data, y, **params), data, entry)
    numpy_params = {k: _as_numpy_scalars(v) for k, v in params.items()}
    est = clone(entry.create()).set_params(**numpy_params)
    est = est.fit(data, y) if "supervised" in entry.tags else est.fit(data)
    for a, b in zip(expected, _outputs(est, data, entry), strict=True):
        np.testing.assert_array_equal(a, b)
