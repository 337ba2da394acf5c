"""Deprecated names keep working for one release, with a ``DeprecationWarning`` (torch-free).

- :func:`renamed_kwargs`: a keyword argument that was renamed (``in_chans`` -> ``in_channels``).
- :func:`moved_names`: a module-level ``__getattr__`` for names that moved to another module.
"""

from __future__ import annotations

import functools
import importlib
import warnings
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def renamed_kwargs(**renames: str) -> Callable[[F], F]:
    """Accept the old keyword names ``renames`` (``old=new``) of a function, with a warning.

    >>> @renamed_kwargs(n_iter_max="max_iter")
    ... def solve(*, max_iter=10):
    ...     return max_iter
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     solve(n_iter_max=3), caught[0].category.__name__
    (3, 'DeprecationWarning')
    """

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in renames.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"{function.__qualname__}() got both {old}= (deprecated)"
                                        f" and {new}=; pass {new}= only")
                    warnings.warn(f"{function.__qualname__}(): {old}= is deprecated, use "
                                  f"{new}=", DeprecationWarning, stacklevel=2)
                    kwargs[new] = kwargs.pop(old)
            return function(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def moved_names(module: str, moves: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` resolving each name in ``moves`` (``name -> new module``) from
    its new module, with a warning; other names raise ``AttributeError`` as usual. The new
    module is imported only when a moved name is used."""

    def __getattr__(name: str) -> Any:
        if name not in moves:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        warnings.warn(f"{module}.{name} moved to {moves[name]}.{name}; the old path is "
                      "deprecated", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(moves[name]), name)

    return __getattr__
