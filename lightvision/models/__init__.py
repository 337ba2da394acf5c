"""Registered model builders and the uniform classifier surface.

Every model is built by a builder function registered in :data:`lightvision.registry.MODELS`,
and every classifier derives from :class:`Classifier`, so that training, distillation and
compression code can treat all architectures alike (``forward_features``, ``forward_head``,
``num_classes``, ``in_chans``).

>>> import lightvision
>>> model = lightvision.create_model("small_cnn", num_classes=10)
>>> model.num_classes
10
"""

from __future__ import annotations

from typing import Any

from ..registry import MODELS
from .base import Classifier
from .small_cnn import SmallCNN, small_cnn

__all__ = ["Classifier", "SmallCNN", "small_cnn", "create_model", "list_models"]


def list_models(pattern: str = "*", *, tags: tuple[str, ...] = ()) -> list[str]:
    """Names of the registered models matching the shell-style ``pattern`` (and ``tags``)."""
    return MODELS.list(pattern, tags=tags)


def create_model(name: str, **kwargs: Any) -> Classifier:
    """Build the registered model ``name`` with keyword arguments ``kwargs``.

    Unknown names raise :class:`lightvision.registry.UnknownComponentError` (a ``KeyError``)
    listing the closest registered names.
    """
    return MODELS.create(name, **kwargs)
