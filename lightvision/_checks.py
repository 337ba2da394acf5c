"""Argument checks shared by the whole package (torch-free, so cheap to import).

Each returns the value it checked and raises ``TypeError``/``ValueError`` naming the argument.
"""

from __future__ import annotations

import math
from typing import Any


def check_int(value: object, name: str, minimum: int = 1) -> int:
    """``value`` if it is an ``int`` (not ``bool``) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_real(value: object, name: str, minimum: float = 0.0, *, strict: bool = True) -> float:
    """``value`` as a float if it is a finite real number > ``minimum`` (>= when not strict)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    if not math.isfinite(value) or (value <= minimum if strict else value < minimum):
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        raise ValueError(f"{name} must be a finite number {bound}, got {value}")
    return float(value)


def check_bool(value: object, name: str) -> bool:
    """``value`` as a ``bool`` if it is a Python or numpy bool."""
    import numpy as np

    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return bool(value)


def check_model(model: Any, name: str = "model") -> Any:
    """``model`` if it is a ``torch.nn.Module``, else ``TypeError`` naming ``name``."""
    from torch import nn

    if not isinstance(model, nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {type(model).__name__}")
    return model
