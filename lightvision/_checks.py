"""Argument checks shared by the whole package (torch-free, so cheap to import).

Each returns the value it checked and raises ``TypeError``/``ValueError`` naming the argument.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Sequence
from typing import Any


def is_integer(value: object) -> bool:
    """True for an integer scalar (``int``, ``numpy.int64``, any ``numbers.Integral``), not a
    bool (Python's or numpy's)."""
    return isinstance(value, numbers.Integral) and not _is_bool(value)


def is_real(value: object) -> bool:
    """True for a real scalar (``int``, ``float``, numpy ints and floats, any
    ``numbers.Real``), not a bool."""
    return isinstance(value, numbers.Real) and not _is_bool(value)


def _is_bool(value: object) -> bool:
    return isinstance(value, bool) or type(value).__name__ == "bool_"


def check_int(value: object, name: str, minimum: int = 1) -> int:
    """``value`` as an ``int`` if it is an integer scalar (numpy ints too, not bools)
    >= ``minimum``."""
    if not is_integer(value):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_int_sequence(value: object, name: str, minimum: int = 1) -> tuple[int, ...]:
    """``value`` as a tuple of ints if it is a non-empty sequence (list, tuple, 1-d array) of
    integer scalars >= ``minimum``."""
    if isinstance(value, str | bytes) or not isinstance(value, Sequence) and not (
            hasattr(value, "__len__") and getattr(value, "ndim", None) == 1):
        raise TypeError(f"{name} must be a sequence of ints, got {type(value).__name__}")
    if len(value) == 0:
        raise ValueError(f"{name} must not be empty")
    return tuple(check_int(v, f"{name}[{i}]", minimum) for i, v in enumerate(value))


def check_real(value: object, name: str, minimum: float = 0.0, *, strict: bool = True) -> float:
    """``value`` as a float if it is a finite real scalar (numpy floats too, not bools)
    > ``minimum`` (>= when not strict)."""
    if not is_real(value):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or (value <= minimum if strict else value < minimum):
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        raise ValueError(f"{name} must be a finite number {bound}, got {value}")
    return value


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


def floating_dtype(module: Any) -> Any:
    """The dtype of ``module``'s first floating-point parameter or buffer (None: it has
    none): the dtype its inputs must have."""
    for tensor in (*module.parameters(), *module.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype
    return None


def check_random_state(value: object, name: str = "random_state", *,
                       generator: bool = True) -> Any:
    """``value`` unchanged if it is what scikit-learn accepts as a random state: None, an int
    >= 0 (numpy ints too; below 2**64, what a torch generator takes; scikit-learn itself takes
    ints below 2**32), a ``numpy.random.RandomState`` and, when ``generator``, a
    ``numpy.random.Generator``. Nothing is drawn from it."""
    import numpy as np

    if value is None or isinstance(value, np.random.RandomState) or (
            generator and isinstance(value, np.random.Generator)):
        return value
    if is_integer(value):
        if not 0 <= int(value) < 2**64:
            raise ValueError(f"{name} must be an int in [0, 2**64), got {value}")
        return value
    kinds = "None, an int, a numpy RandomState" + (" or a numpy Generator" if generator else "")
    raise TypeError(f"{name} must be {kinds}, got {type(value).__name__}")


def torch_seed(random_state: object, name: str = "random_state") -> int | None:
    """An int seed for a ``torch.Generator`` from what scikit-learn accepts as a random state.

    ``None`` gives ``None`` (the caller decides: fresh entropy or torch's global generator); an
    int >= 0 (numpy ints too) gives itself; a ``numpy.random.RandomState`` or
    ``numpy.random.Generator`` gives an int drawn from it (advancing it, as scikit-learn does).
    """
    import numpy as np

    check_random_state(random_state, name)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**63 - 1))
    return None if random_state is None else int(random_state)


def resolve_seed(random_state: object, name: str = "random_state") -> int:
    """:func:`torch_seed`, with ``None`` replaced by a fresh 32-bit seed from the OS."""
    import secrets

    seed = torch_seed(random_state, name)
    return secrets.randbits(32) if seed is None else seed


def physical_memory_bytes() -> int | None:
    """Bytes of physical memory (``os.sysconf``; None where the platform does not tell)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def check_memory(nbytes: int, what: str) -> None:
    """``ValueError`` if ``nbytes`` (an estimate: e.g. a generator's outputs plus the working
    arrays of one item) exceed the physical memory; ``what`` names the arguments that set the
    size."""
    limit = physical_memory_bytes()
    if limit is not None and nbytes > limit:
        raise ValueError(f"{what} need about {nbytes / 2**30:,.3g} GiB, more than the "
                         f"{limit / 2**30:,.3g} GiB of memory of this machine: ask for less")


def check_array(value: object, name: str, kinds: str = "iuf") -> Any:
    """``value`` (a numpy array, a torch tensor or nested sequences of numbers) as a numpy array
    whose dtype kind is one of ``kinds`` (numpy's codes: ``b`` bool, ``i``/``u`` ints, ``f``
    floats, ``c`` complex), without a copy where possible. ``TypeError`` naming ``name`` for
    None, strings or another dtype; ``ValueError`` for ragged sequences."""
    import numpy as np

    if type(value).__module__.startswith("torch") and hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    if value is None or isinstance(value, str | bytes | dict):
        raise TypeError(f"{name} must be an array or tensor of numbers, got "
                        f"{type(value).__name__}")
    try:
        array = np.asarray(value)
    except ValueError as error:  # ragged nested sequences
        raise ValueError(f"{name} must be a rectangular array: {error}") from None
    if array.dtype.kind not in kinds:
        what = "real numbers" + (" or bools" if "b" in kinds else "") + (
            " or complex numbers" if "c" in kinds else "")
        raise TypeError(f"{name} must hold {what}, got dtype {array.dtype}")
    return array
