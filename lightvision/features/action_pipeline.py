"""End-to-end action recognition: videos -> local motion descriptors -> Fisher vector -> SVM.

The pipelines compared by Leyva et al. (seed #23): the binary motion descriptor encoded by the
Bernoulli-mixture Fisher vector, against the float HOF or MBH descriptors of the same regions
encoded by the Gaussian-mixture Fisher vector, both classified by a linear SVM.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC

from .._checks import check_int, check_real
from .fisher import BinaryFisherVector, GaussianFisherVector
from .motion import BinaryMotionDescriptor, HOFDescriptor, MBHDescriptor

__all__ = ["make_action_pipeline"]

_DESCRIPTORS = {"binary": BinaryMotionDescriptor, "hof": HOFDescriptor, "mbh": MBHDescriptor}


def make_action_pipeline(
    descriptor: str = "binary",
    *,
    n_components: int = 32,
    C: float = 1.0,
    max_descriptors: int = 100_000,
    descriptor_params: Mapping[str, Any] | None = None,
    random_state: Any = None,
) -> Pipeline:
    """A scikit-learn ``Pipeline`` classifying videos by their motion.

    Steps ``"descriptor"`` (:class:`BinaryMotionDescriptor`, :class:`HOFDescriptor` or
    :class:`MBHDescriptor`: one descriptor array per video), ``"encoder"``
    (:class:`BinaryFisherVector` for the binary descriptor, :class:`GaussianFisherVector` for
    the float ones: one vector per video) and ``"svm"`` (``LinearSVC``). ``fit(videos, y)``
    and ``predict(videos)`` take a list of videos (arrays (T, H, W) or (T, H, W, C), paths,
    or iterables of frames); the pipeline clones, pickles and grid-searches like any other
    (e.g. ``encoder__n_components``).

    Parameters
    ----------
    descriptor : {"binary", "hof", "mbh"}, default "binary"
    n_components : int, default 32
        Mixture components of the Fisher-vector encoder.
    C : float, default 1.0
        Inverse regularisation of the linear SVM. **[INTERP]**: the paper's value is not
        known; with power- and L2-normalised Fisher vectors C = 1 is the usual choice.
    max_descriptors : int, default 100,000
        Descriptors sampled (seeded) from the training videos to fit the mixture.
    descriptor_params : dict or None
        Keyword arguments of the descriptor (region size, cells, flow method, ...).
    random_state : int, RandomState instance or None
        Seeds the mixture's sampling and initialisation and the SVM (as scikit-learn takes
        it; one RandomState instance is shared, and advanced, by both steps).

    References
    ----------
    C. Leyva, V. Sanchez, C.-T. Li, "Compact and Low-Complexity Binary Feature Descriptor and
    Fisher Vectors for Video Analytics", IEEE Transactions on Image Processing 28(12),
    6169-6184, 2019.

    Examples
    --------
    >>> pipeline = make_action_pipeline("hof", n_components=8, random_state=0)
    >>> [name for name, _ in pipeline.steps]
    ['descriptor', 'encoder', 'svm']
    """
    if descriptor not in _DESCRIPTORS:
        raise ValueError(f"descriptor must be one of {sorted(_DESCRIPTORS)}, got {descriptor!r}")
    check_int(n_components, "n_components")
    check_real(C, "C")
    check_int(max_descriptors, "max_descriptors")
    if descriptor_params is not None and not isinstance(descriptor_params, Mapping):
        raise TypeError("descriptor_params must be a dict of descriptor arguments or None, "
                        f"got {type(descriptor_params).__name__}")
    encoder = BinaryFisherVector if descriptor == "binary" else GaussianFisherVector
    return Pipeline([
        ("descriptor", _DESCRIPTORS[descriptor](**dict(descriptor_params or {}))),
        ("encoder", encoder(n_components, max_descriptors=max_descriptors,
                            random_state=random_state)),
        ("svm", LinearSVC(C=C, max_iter=10_000, random_state=random_state)),
    ])
