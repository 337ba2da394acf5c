"""One registry class for every kind of component (feature, block, model, pruner, ...).

Each kind has one :class:`Registry`. Components register themselves where they are defined,
together with tags and two tiny configurations: ``test_params`` (for the common checks in
``tests/common``) and ``bench_params`` (for the asv suites), so adding a method is a one-file
change that tests and benchmarks pick up at once.

Names follow one rule: lower_snake_case (``small_cnn``, ``pcanet``, ``bof_pooling``, ``ssr``,
``mmd_loss``), enforced at registration; a class registers under an explicit ``name``. A renamed
component keeps its old name as a deprecated alias for one release (``deprecated_names``): the
old name still works, with a ``DeprecationWarning``.

This module imports nothing heavy: a registry imports the packages that fill it only when it
is first queried.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = [
    "Entry",
    "Registry",
    "UnknownComponentError",
    "MODELS",
    "BLOCKS",
    "FEATURES",
    "PRUNERS",
    "QUANTIZERS",
    "LOSSES",
    "REGISTRIES",
    "COMPRESSION_REGISTRIES",
]

_NAME = re.compile(r"[a-z][a-z0-9_]*")


class UnknownComponentError(KeyError, ValueError):
    """Raised for a name that no component of the kind was registered under (a ``KeyError``
    for mapping-style lookups and a ``ValueError`` for a bad argument value)."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0])


@dataclass(frozen=True)
class Entry:
    """A registered component.

    Attributes
    ----------
    name : registry key.
    obj : the class or builder function; ``obj(**params)`` creates the component.
    tags : free-form labels, e.g. ``{"classifier", "requires_data"}``.
    test_params : tiny keyword arguments for the common checks (fast, few parameters).
    bench_params : keyword arguments for the asv suites.
    meta : kind-specific facts, e.g. ``input_shape=(1, 28, 28)`` and ``dataset`` for models.
    """

    name: str
    obj: Callable[..., Any]
    tags: frozenset[str] = frozenset()
    test_params: Mapping[str, Any] = field(default_factory=dict)
    bench_params: Mapping[str, Any] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict)

    def create(self, **kwargs: Any) -> Any:
        """Build the component with ``kwargs``."""
        return self.obj(**kwargs)


class Registry:
    """Name -> component mapping for one kind of component.

    Parameters
    ----------
    kind : what the registry holds ("model", "feature", ...), used in messages.
    modules : dotted names of the modules that register the components; they are imported
        on the first query, so that building the registry costs nothing at import time.

    Examples
    --------
    >>> reg = Registry("widget")
    >>> @reg.register(tags={"tiny"}, test_params={"n": 1})
    ... def square(n=2):
    ...     return n * n
    >>> reg.create("square", n=3)
    9
    >>> reg.list("sq*")
    ['square']
    """

    def __init__(self, kind: str, modules: Iterable[str] = ()) -> None:
        if not isinstance(kind, str) or not kind:
            raise TypeError(f"kind must be a non-empty str, got {kind!r}")
        if isinstance(modules, str) or not isinstance(modules, Iterable):
            raise TypeError(f"modules must be an iterable of module names, got {modules!r}")
        self.kind = kind
        self._modules = tuple(modules)
        if not all(isinstance(module, str) for module in self._modules):
            raise TypeError(f"modules must hold dotted module names (str), got {self._modules}")
        self._loaded = not self._modules
        self._entries: dict[str, Entry] = {}
        self._aliases: dict[str, str] = {}  # deprecated name -> name

    # -- registration ------------------------------------------------------------------
    def register(
        self,
        obj: Callable[..., Any] | None = None,
        *,
        name: str | None = None,
        tags: Iterable[str] = (),
        test_params: Mapping[str, Any] | None = None,
        bench_params: Mapping[str, Any] | None = None,
        deprecated_names: Iterable[str] = (),
        **meta: Any,
    ) -> Any:
        """Register ``obj`` (usable bare, ``@reg.register``, or with arguments).

        ``name`` defaults to ``obj.__name__`` and must be lower_snake_case. ``deprecated_names``
        are former names that keep resolving to this entry, with a ``DeprecationWarning``.
        Raises ``ValueError`` if a name is already taken: two components never share a name.
        """
        if name is not None:
            self._check_name(name)
        if isinstance(tags, str) or not isinstance(tags, Iterable):
            raise TypeError(f"tags must be an iterable of str, got {type(tags).__name__} "
                            f"{tags!r}")
        tags = frozenset(tags)
        if not all(isinstance(tag, str) for tag in tags):
            raise TypeError(f"tags must be strs, got {sorted(map(repr, tags))}")
        if isinstance(deprecated_names, str) or not isinstance(deprecated_names, Iterable):
            raise TypeError(f"deprecated_names must be an iterable of str, got "
                            f"{type(deprecated_names).__name__} {deprecated_names!r}")
        deprecated_names = tuple(deprecated_names)
        for former in deprecated_names:
            if not isinstance(former, str) or not former:
                raise TypeError(f"deprecated_names must hold non-empty strs, got {former!r}")
        if len(set(deprecated_names)) != len(deprecated_names):
            raise ValueError(f"deprecated_names repeats a name: {deprecated_names}")
        for label, params in (("test_params", test_params), ("bench_params", bench_params)):
            if params is not None and not isinstance(params, Mapping):
                raise TypeError(f"{label} must be a mapping or None, got "
                                f"{type(params).__name__}")

        def add(target: Callable[..., Any]) -> Callable[..., Any]:
            if not callable(target):
                raise TypeError(f"a {self.kind} must be a class or a function, got "
                                f"{type(target).__name__}")
            key = self._check_name(getattr(target, "__name__", None) if name is None else name)
            if key in deprecated_names:
                raise ValueError(f"{key!r} is both the name and a deprecated name")
            for taken in (key, *deprecated_names):
                if taken in self._entries or taken in self._aliases:
                    owner = self._entries.get(taken) or self._entries[self._aliases[taken]]
                    raise ValueError(
                        f"duplicate {self.kind} name {taken!r}: already registered by "
                        f"{owner.obj.__module__}.{owner.obj.__qualname__}"
                    )
            self._entries[key] = Entry(
                name=key,
                obj=target,
                tags=tags,
                test_params=MappingProxyType(dict(test_params or {})),
                bench_params=MappingProxyType(dict(bench_params or {})),
                meta=MappingProxyType(dict(meta)),
            )
            self._aliases.update(dict.fromkeys(deprecated_names, key))
            return target

        return add if obj is None else add(obj)

    def _check_name(self, name: object) -> str:
        """``name`` if it is a non-empty lower_snake_case str."""
        if not isinstance(name, str):
            raise TypeError(f"name must be a non-empty str, got {type(name).__name__}")
        if not name:
            raise ValueError(f"name must be a non-empty str, got {name!r}")
        if not _NAME.fullmatch(name):
            raise ValueError(f"{self.kind} names are lower_snake_case, got {name!r}: pass "
                             "name='...' to register")
        return name

    # -- queries -----------------------------------------------------------------------
    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            for module in self._modules:
                importlib.import_module(module)

    def get(self, name: str, *, argument: str = "name") -> Entry:
        """The entry registered as ``name``; unknown names raise with the closest matches.

        ``argument``: the parameter ``name`` came from, named by the errors (a facade such
        as :func:`~lightvision.compression.pruning.prune` passes ``"method"``)."""
        return self._lookup(name, argument)

    def _lookup(self, name: str, argument: str = "name") -> Entry:
        """:meth:`get`, warning at the caller of the public method for a deprecated name."""
        self._load()
        if not isinstance(name, str):
            raise TypeError(f"{argument} must be a str naming a {self.kind}, got "
                            f"{type(name).__name__}")
        if name in self._aliases:
            warnings.warn(f"{self.kind} name {name!r} is deprecated; use "
                          f"{self._aliases[name]!r}", DeprecationWarning, stacklevel=3)
            name = self._aliases[name]
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._entries, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise UnknownComponentError(
                f"{argument}: unknown {self.kind} {name!r}{hint} "
                f"(known: {', '.join(sorted(self._entries)) or 'none'})"
            ) from None

    def create(self, name: str, **kwargs: Any) -> Any:
        """Build the component registered as ``name`` with ``kwargs``."""
        return self._lookup(name).create(**kwargs)

    def list(self, pattern: str = "*", *, tags: Iterable[str] = ()) -> list[str]:
        """Sorted names matching the shell-style ``pattern`` that carry all ``tags``."""
        self._load()
        if not isinstance(pattern, str):
            raise TypeError(f"pattern must be a str, got {type(pattern).__name__}")
        if not isinstance(tags, str | Iterable):
            raise TypeError(f"tags must be a str or an iterable of str, got {type(tags).__name__}")
        wanted = frozenset([tags] if isinstance(tags, str) else tags)
        return sorted(
            name
            for name, entry in self._entries.items()
            if fnmatch.fnmatchcase(name, pattern) and wanted <= entry.tags
        )

    def entries(self) -> list[Entry]:
        """All entries, sorted by name."""
        self._load()
        return [self._entries[name] for name in sorted(self._entries)]

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.list())

    def __len__(self) -> int:
        self._load()
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._entries)} entries)"


#: One registry per kind. ``modules`` lists where each kind's components are defined; a new
#: module of components is added here once.
MODELS = Registry("model", modules=("lightvision.models",))
BLOCKS = Registry("block", modules=("lightvision.nn",))
FEATURES = Registry("feature", modules=("lightvision.features",))
PRUNERS = Registry("pruner", modules=("lightvision.compression.pruning",))
QUANTIZERS = Registry("quantizer", modules=())
LOSSES = Registry("loss", modules=("lightvision.losses",))

REGISTRIES: dict[str, Registry] = {
    r.kind: r for r in (MODELS, BLOCKS, FEATURES, PRUNERS, QUANTIZERS, LOSSES)
}
#: The registries of compression methods (one per family); every entry is a
#: :class:`lightvision.compression.CompressionMethod` and goes through the common compression
#: checks and the compression benchmarks. A new family adds its registry here once.
COMPRESSION_REGISTRIES: tuple[Registry, ...] = (PRUNERS, QUANTIZERS)
