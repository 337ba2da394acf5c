"""lightvision: the reference toolkit for lightweight and embedded computer vision.

Importing this package is cheap: it loads neither torch, OpenCV nor tensorly. Subpackages and
the helpers below are imported on first use.

>>> import lightvision
>>> "small_cnn" in lightvision.list_models()
True
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_SUBMODULES = ("adaptation", "compression", "datasets", "features", "losses", "metrics",
               "models", "nn", "registry", "training")
_HELPERS = {  # public name -> module that defines it
    "list_models": "lightvision.models",
    "create_model": "lightvision.models",
    "profile": "lightvision.metrics",
    "compress": "lightvision.compression.base",
    "prune": "lightvision.compression.pruning",
}

__all__ = [
    "__version__",
    "adaptation",
    "compress",
    "compression",
    "create_model",
    "datasets",
    "features",
    "list_models",
    "losses",
    "metrics",
    "models",
    "nn",
    "profile",
    "prune",
    "registry",
    "training",
]

if TYPE_CHECKING:  # pragma: no cover
    from . import (
        adaptation,
        compression,
        datasets,
        features,
        losses,
        metrics,
        models,
        nn,
        registry,
        training,
    )
    from .compression.base import compress
    from .compression.pruning import prune
    from .metrics import profile
    from .models import create_model, list_models


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _HELPERS:
        return getattr(importlib.import_module(_HELPERS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
