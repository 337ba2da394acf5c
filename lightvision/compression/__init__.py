"""Model compression: one contract for every family.

- :mod:`lightvision.compression.base`: :class:`CompressionMethod` (a configuration, then
  ``method(model, example_inputs, *, data=None, inplace=False) -> (model, report)``), the
  generic :class:`CompressionReport`, :func:`compress` (any registered method by name),
  :func:`fine_tune` and :func:`replace_module`;
- :mod:`lightvision.compression.serialization`: :func:`save_compressed`,
  :func:`load_compressed`, :func:`load_report` for any compressed model;
- :mod:`lightvision.compression.pruning`: structured pruning that removes channels for real
  (a surgery engine, L1, EPruner, FilterSketch, SSR).

Importing this package alone loads nothing heavy; its names load torch on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CompressionMethod": "base",
    "CompressionReport": "base",
    "compress": "base",
    "fine_tune": "base",
    "replace_module": "base",
    "load_compressed": "serialization",
    "load_report": "serialization",
    "register_layer": "serialization",
    "save_compressed": "serialization",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
