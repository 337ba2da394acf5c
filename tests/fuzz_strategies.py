"""The machinery of ``tests/test_fuzz.py``: argument variants, hypothesis strategies and the
probe that runs one call and classifies what happened.

A :class:`Spec` describes one public call: a factory of fresh valid arguments (``make``) and the
call itself (``run``). Every argument is then replaced, one at a time, by the variants of
:func:`edge_variants` (a fixed table: None, wrong types, strings, wrong ndim and channel count,
empty arrays, NaN/inf, 1e30, negative/zero/float/bool scalars, int64/bool tensors, and numpy
scalars in place of valid ints and floats) and by values that hypothesis draws
(:func:`variant_strategy`). :func:`probe` runs each call and sorts the outcome:

- ``ok``: it returned, with finite outputs;
- ``clean_error``: a ``ValueError``/``TypeError`` (or a ``FloatingPointError``, training's
  documented "diverged" error, or an ``OSError``, for paths: a spec with
  ``file_errors``, or any string taken as a path and named in the message) raised inside
  lightvision whose message names the argument (the parameter name, or one of its listed
  aliases, appears as a word in the message);
- failures: ``unexpected_type`` (any other exception), ``foreign_error`` (a ValueError/TypeError
  raised outside lightvision, e.g. by torch), ``unnamed_argument``, ``valid_rejected`` (a valid
  input, e.g. a numpy scalar, raised), ``non_finite`` (a NaN/inf output), ``mutated`` (an input
  changed), ``rng_changed`` (torch's, numpy's or Python's global random state changed),
  ``timeout`` and ``baseline_failed`` (the valid arguments themselves failed).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import random
import re
import signal
import traceback
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from hypothesis import strategies as st

import lightvision

LIB_DIR = os.path.dirname(os.path.abspath(lightvision.__file__))
REPO_DIR = os.path.dirname(LIB_DIR)
#: Seconds one call may take before it counts as a ``timeout`` (e.g. ``epochs=1e30`` accepted).
CALL_SECONDS = float(os.environ.get("LIGHTVISION_FUZZ_CALL_SECONDS", "30"))
FAILURES = ("unexpected_type", "foreign_error", "unnamed_argument", "valid_rejected",
            "non_finite", "mutated", "rng_changed", "timeout", "baseline_failed")
COUNTED = ("tried", "ok", "clean_error", *FAILURES)
ALL_RNGS = ("torch", "numpy", "python")


# -- what one call is ------------------------------------------------------------------------

@dataclasses.dataclass
class Spec:
    """One public call to fuzz.

    name : shown in ids and reports, e.g. ``"model:small_cnn"``.
    file : the library file that owns the call (for routing failures).
    make : returns fresh valid arguments ``{name: value}`` (new objects on every call).
    run : ``run(args) -> output``.
    core : arguments fuzzed with the full edge table (default: all of ``make()``).
    extra : further arguments fuzzed with the short table (numpy scalar, wrong type, NaN).
    names : ``{argument: aliases}``: words that also count as naming the argument (or a
        function returning them, evaluated when used).
    mutable : arguments the call may change by contract (``fit``'s model).
    rngs : global random states that must stay unchanged.
    file_errors : whether ``OSError``s count as clean (I/O functions).
    variants : ``{argument: [Variant, ...]}`` added to (or, for paths, replacing) the table.
    """

    name: str
    file: str
    make: Callable[[], dict[str, Any]]
    run: Callable[[dict[str, Any]], Any]
    core: tuple[str, ...] | None = None
    extra: tuple[str, ...] = ()
    names: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    mutable: tuple[str, ...] = ()
    rngs: tuple[str, ...] = ALL_RNGS
    file_errors: bool = False
    variants: Mapping[str, list[Variant]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Variant:
    """A replacement value for one argument; ``valid`` ones must work."""

    label: str
    value: Any
    valid: bool = False


def source_file(obj: Any) -> str:
    """The repository-relative file that defines ``obj``."""
    import inspect

    try:
        path = inspect.getsourcefile(inspect.unwrap(obj))
    except TypeError:
        path = None
    return os.path.relpath(path, REPO_DIR) if path else "?"


# -- the fixed table of variants ---------------------------------------------------------------

def _is_int(v: Any) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_)


def _is_float(v: Any) -> bool:
    return isinstance(v, float | np.floating)


_DATA_ORDER = ("NaN", "channels+1", "ndim-1", "empty batch", "empty", "int64", "None",
               "1e30", "inf", "bool", "float64", "float32", "axis 1 + 1", "ndarray", "tensor",
               "ndim+1", "trailing axis of 3", "float", "+1000", "-1000", "negative",
               "str array", "str", "nested list")


def _ordered(variants: list[Variant]) -> list[Variant]:
    """Most telling first, so that a capped table still covers the main kinds of bad data."""
    rank = {label: i for i, label in enumerate(_DATA_ORDER)}
    return sorted(variants, key=lambda v: rank.get(v.label, len(rank)))


def _tensor_variants(t: torch.Tensor) -> list[Variant]:
    out = [Variant("None", None), Variant("str", "abc"), Variant("ndarray", t.numpy().copy())]
    if t.numel() <= 64:
        out.append(Variant("nested list", t.tolist()))
    if t.ndim >= 1:
        out += [Variant("ndim-1", t[0].clone()), Variant("empty batch", t[:0].clone())]
    out.append(Variant("ndim+1", t[None].clone()))
    if t.ndim >= 2:
        out.append(Variant("channels+1", torch.cat([t, t[:, :1]], dim=1)))
    if t.is_floating_point():
        nan, inf = t.clone(), t.clone()
        nan.view(-1)[0], inf.view(-1)[-1] = float("nan"), float("inf")
        huge = torch.where(t >= 0, 1e30, -1e30).to(t.dtype)
        out += [Variant("NaN", nan), Variant("inf", inf), Variant("1e30", huge),
                Variant("int64", (t * 3).long()), Variant("bool", t > 0),
                Variant("float64" if t.dtype != torch.float64 else "float32",
                        t.double() if t.dtype != torch.float64 else t.float())]
    else:
        out += [Variant("float", t.float()), Variant("+1000", t + 1000),
                Variant("-1000", t - 1000), Variant("bool", t > 0)]
    return _ordered(out)


def _array_variants(a: np.ndarray) -> list[Variant]:
    out = [Variant("None", None), Variant("str", "abc"),
           Variant("tensor", torch.from_numpy(a.copy()))]
    if a.size <= 64:
        out.append(Variant("nested list", a.tolist()))
    if a.ndim >= 1:
        out += [Variant("ndim-1", a[0].copy()), Variant("empty", a[:0].copy())]
    out += [Variant("ndim+1", a[None].copy()),
            Variant("trailing axis of 3", np.repeat(a[..., None], 3, axis=-1))]
    if a.ndim >= 2:
        out.append(Variant("axis 1 + 1", np.concatenate([a, a[:, :1]], axis=1)))
    if a.dtype.kind in "fiu":
        nan, inf = a.astype(np.float64), a.astype(np.float64)
        nan.flat[0], inf.flat[-1] = np.nan, np.inf
        out += [Variant("NaN", nan), Variant("inf", inf),
                Variant("1e30", np.where(a >= np.mean(a), 1e30, -1e30)),
                Variant("bool", a > np.mean(a)), Variant("str array", a.astype(str))]
        out.append(Variant("int64", a.astype(np.int64)) if a.dtype.kind == "f"
                   else Variant("float32", a.astype(np.float32)))
        if a.dtype.kind in "iu":
            out += [Variant("+1000", a.astype(np.int64) + 1000),
                    Variant("negative", a.astype(np.int64) - 1000)]
    return _ordered(out)


def _sequence_variants(seq: list | tuple) -> list[Variant]:
    """A list/tuple of arrays or tensors: container-level changes, then each table entry of
    its first and last element."""
    out = [Variant("None", None), Variant("str", "abc"), Variant("empty", type(seq)())]
    out.append(Variant("first element alone", seq[0]))
    for i in sorted({0, len(seq) - 1}):
        for v in edge_variants(seq[i]):
            if v.valid:
                continue
            changed = list(seq)
            changed[i] = v.value
            out.append(Variant(f"[{i}] {v.label}", type(seq)(changed)))
    if len(seq) > 1:
        out.append(Variant("one element fewer", type(seq)(seq[:-1])))
    return out


def edge_variants(value: Any, *, short: bool = False) -> list[Variant]:
    """The fixed table of replacements for an argument whose valid value is ``value``.

    ``short`` keeps the numpy-scalar (valid) entries and a wrong type / NaN only.
    """
    if isinstance(value, bool | np.bool_):
        out = [Variant("np.bool_", np.bool_(value), True), Variant("'yes'", "yes"),
               Variant("1", 1), Variant("None", None)]
    elif _is_int(value):
        v = int(value)
        out = [Variant(f"np.int64({v})", np.int64(v), True), Variant("-1", -1),
               Variant(f"{v}.5", v + 0.5), Variant("None", None), Variant(f"'{v}'", str(v)),
               Variant("0", 0), Variant("True", True), Variant("1e30", 1e30),
               Variant("np.float32(nan)", np.float32("nan"))]
    elif _is_float(value):
        v = float(value)
        out = [Variant(f"np.float32({v:g})", np.float32(v), True), Variant("nan", math.nan),
               Variant("-1.0", -1.0), Variant(f"'{v:g}'", str(v)), Variant("None", None),
               Variant("inf", math.inf), Variant("1e30", 1e30), Variant("0.0", 0.0),
               Variant("True", True), Variant(f"np.float64({v:g})", np.float64(v), True)]
    elif isinstance(value, str):
        out = [Variant("'bogus'", "bogus"), Variant("None", None), Variant("3", 3),
               Variant("''", "")]
    elif value is None:
        out = [Variant("'bogus'", "bogus"), Variant("-1", -1), Variant("[0.5]", [0.5])]
    elif isinstance(value, torch.nn.Module):
        out = [Variant("None", None), Variant("'net'", "net")]
    elif isinstance(value, torch.Tensor):
        out = _tensor_variants(value)
    elif isinstance(value, np.ndarray):
        out = _array_variants(value)
    elif isinstance(value, list | tuple) and value and all(_is_int(v) for v in value):
        vals = [int(v) for v in value]
        out = [Variant("numpy ints", type(value)(np.int64(v) for v in vals), True),
               Variant("as list" if isinstance(value, tuple) else "as tuple",
                       list(vals) if isinstance(value, tuple) else tuple(vals), True),
               Variant("None", None), Variant("'str'", "4"), Variant("empty", type(value)()),
               Variant("last -1", type(value)([*vals[:-1], -1])),
               Variant("first 0", type(value)([0, *vals[1:]])),
               Variant("first +0.5", type(value)([vals[0] + 0.5, *vals[1:]])),
               Variant("bare int", vals[0]), Variant("bools", type(value)([True] * len(vals)))]
    elif isinstance(value, list | tuple) and value and all(_is_float(v) for v in value):
        out = [Variant("numpy floats", type(value)(np.float32(v) for v in value), True),
               Variant("None", None), Variant("'str'", "0.5"), Variant("empty", type(value)()),
               Variant("nan", type(value)([math.nan, *value[1:]])),
               Variant("-1", type(value)([-1.0, *value[1:]]))]
    elif isinstance(value, list | tuple) and value and all(
            isinstance(v, np.ndarray | torch.Tensor) for v in value):
        out = _sequence_variants(value)
    elif isinstance(value, list | tuple):
        out = [Variant("None", None), Variant("'str'", "abc"), Variant("empty", type(value)())]
    else:
        out = [Variant("None", None), Variant("'str'", "abc")]
    if short:
        keep = [v for v in out if v.valid]
        keep += [v for v in out if not v.valid][:2]
        keep += [v for v in out if v.label in ("nan", "np.float32(nan)", "NaN")]
        return keep
    return out


def argument_variants(args: Mapping[str, Any], name: str, *, short: bool = False
                      ) -> Iterator[tuple[str, Variant]]:
    """``(path, variant)`` for argument ``name``; a mapping argument (a nested configuration,
    e.g. SSR's ``train``) is fuzzed whole, then key by key (path ``"train.epochs"``) with the
    short table: its keys are usually another component's arguments, fuzzed in full there."""
    value = args[name]
    if isinstance(value, Mapping):
        yield name, Variant("str", "abc")
        yield name, Variant("list", [1, 2])
        for key, inner in value.items():
            for v in edge_variants(inner, short=True):
                yield f"{name}.{key}", v
        return
    for v in edge_variants(value, short=short):
        yield name, v


def substitute(args: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """``args`` with the argument at ``path`` (``"name"`` or ``"name.key"``) replaced."""
    out = dict(args)
    if "." in path:
        outer, key = path.split(".", 1)
        out[outer] = {**out[outer], key: value}
    else:
        out[path] = value
    return out


# -- hypothesis strategies ---------------------------------------------------------------------

_SPECIAL = [math.nan, math.inf, -math.inf, 1e30, -1e30, 1e-30, 0.0, -0.0]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 8), st.floats(-3, 8),
    st.sampled_from(_SPECIAL), st.text(max_size=3),
    st.integers(-3, 8).map(np.int64), st.floats(-3, 8, width=32).map(np.float32),
    st.lists(st.integers(-2, 6), max_size=3), st.tuples(st.integers(-2, 6), st.floats(-2, 6)),
    st.just(np.bool_(True)),
)


def _scalar_strategy(value: Any) -> st.SearchStrategy[Variant]:
    """Arbitrary scalars, or (valid) the numpy-scalar form of the valid value."""
    anything = SCALARS.map(lambda v: Variant(f"{type(v).__name__} {v!r}", v))
    if _is_int(value):
        valid = st.sampled_from([np.int64, np.int32, np.uint8 if 0 <= value < 256 else np.int16])
        return st.one_of(anything, valid.map(
            lambda f: Variant(f"{f.__name__}({int(value)})", f(int(value)), True)))
    if _is_float(value):
        valid = st.sampled_from([np.float32, np.float64])
        return st.one_of(anything, valid.map(
            lambda f: Variant(f"{f.__name__}({float(value):g})", f(float(value)), True)))
    return anything


def _reshape(a: np.ndarray, op: str) -> np.ndarray:
    if op == "same" or a.ndim == 0:
        return a
    if op == "drop axis":
        return a[0]
    if op == "add axis":
        return a[None]
    if op == "axis 1 + 1" and a.ndim >= 2:
        return np.concatenate([a, a[:, :1]], axis=1)
    if op == "batch 1":
        return a[:1]
    return a


def _array_from(base: np.ndarray, op: str, dtype: str, scale: float, special: float | None,
                seed: int) -> np.ndarray:
    """A random array shaped like ``base`` (changed by ``op``), of ``dtype``, times ``scale``,
    with ``special`` at one random position."""
    rng = np.random.default_rng(seed)
    shape = _reshape(np.empty(base.shape), op).shape
    if base.dtype.kind in "iu" and base.size:  # labels / grey levels: stay near the range
        values = rng.integers(int(base.min()), int(base.max()) + 1, size=shape) * scale
    else:
        values = rng.normal(size=shape) * scale
    if special is not None and values.size:
        values = values.astype(np.float64)
        values.flat[int(rng.integers(values.size))] = special
    with np.errstate(invalid="ignore", over="ignore"):
        return values.astype(dtype) if dtype != "same" else values.astype(base.dtype)


def _data_strategy(value: np.ndarray | torch.Tensor) -> st.SearchStrategy[Variant]:
    base = value.detach().numpy() if isinstance(value, torch.Tensor) else value

    def build(op, dtype, scale, special, seed):
        a = _array_from(base, op, dtype, scale, special, seed)
        label = f"{op}, {dtype}, x{scale:g}, special={special}, seed={seed}"
        if isinstance(value, torch.Tensor):
            with contextlib.suppress(TypeError):  # uint16 etc. have no torch dtype
                return Variant(label, torch.from_numpy(np.ascontiguousarray(a)))
        return Variant(label, a)

    return st.builds(
        build,
        st.sampled_from(["same", "same", "drop axis", "add axis", "axis 1 + 1", "batch 1"]),
        st.sampled_from(["same", "same", "float32", "float64", "int64", "uint8", "bool"]),
        st.sampled_from([1.0, 1.0, 0.0, 1e-30, 1e3, 1e30, -1.0]),
        st.one_of(st.none(), st.none(), st.sampled_from([math.nan, math.inf, -math.inf])),
        st.integers(0, 2**16),
    )


def variant_strategy(value: Any) -> st.SearchStrategy[Variant]:
    """Hypothesis values for an argument whose valid value is ``value``."""
    if isinstance(value, np.ndarray | torch.Tensor) and value.ndim >= 1:
        return st.one_of(_data_strategy(value), st.sampled_from(edge_variants(value)))
    if isinstance(value, list | tuple) and value and all(
            isinstance(v, np.ndarray | torch.Tensor) for v in value):
        def put(i, v):
            changed = list(value)
            changed[i % len(value)] = v.value
            return Variant(f"[{i % len(value)}] {v.label}", type(value)(changed))
        return st.builds(put, st.integers(0, len(value) - 1),
                         st.one_of(*(_data_strategy(v) for v in value[:1])))
    if isinstance(value, torch.nn.Module):
        return st.sampled_from(edge_variants(value))
    return _scalar_strategy(value)


# -- snapshots ----------------------------------------------------------------------------------

def freeze(obj: Any, depth: int = 0) -> Any:
    """A comparable, exact (NaN-safe) snapshot of ``obj``'s contents."""
    if depth > 6:
        return None
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        return ("T", str(t.dtype), tuple(t.shape), t.view(-1).view(torch.uint8).numpy().tobytes()
                if t.numel() else b"")
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            return ("A", tuple(freeze(v, depth + 1) for v in obj.ravel()))
        return ("A", str(obj.dtype), obj.shape, np.ascontiguousarray(obj).tobytes())
    if isinstance(obj, torch.nn.Module):
        return ("M", tuple(m.training for m in obj.modules()),
                tuple((k, freeze(v, depth + 1)) for k, v in obj.state_dict().items()))
    if sp.issparse(obj):
        return ("S", freeze(obj.toarray(), depth + 1))
    if isinstance(obj, Mapping):
        return ("D", tuple((repr(k), freeze(v, depth + 1)) for k, v in obj.items()))
    if isinstance(obj, list | tuple):
        return (type(obj).__name__, tuple(freeze(v, depth + 1) for v in obj))
    if isinstance(obj, float) and math.isnan(obj):
        return ("nan",)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return ("DC", tuple((f.name, freeze(getattr(obj, f.name), depth + 1))
                            for f in dataclasses.fields(obj)))
    if isinstance(obj, str | bytes | int | float | complex | bool | np.generic) or obj is None:
        return repr(obj)
    return ("obj", type(obj).__name__, id(obj))


def rng_state(which: tuple[str, ...]) -> dict[str, Any]:
    state = {}
    if "torch" in which:
        state["torch"] = freeze(torch.random.get_rng_state())
    if "numpy" in which:
        state["numpy"] = freeze(np.random.get_state())  # noqa: NPY002 (the legacy global state)
    if "python" in which:
        state["python"] = repr(random.getstate())
    return state


def non_finite(obj: Any, path: str = "output", depth: int = 0) -> str | None:
    """Where ``obj`` holds a NaN or inf (``None`` if nowhere)."""
    if depth > 5:
        return None
    if isinstance(obj, torch.Tensor):
        if (obj.is_floating_point() or obj.is_complex()) and not bool(torch.isfinite(obj).all()):
            return path
        return None
    if sp.issparse(obj):
        return non_finite(obj.data, path, depth + 1)
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind in "fc" and not np.isfinite(obj).all():
            return path
        return None
    if isinstance(obj, float | np.floating) and not math.isfinite(obj):
        return path
    if isinstance(obj, torch.nn.Module):
        for k, v in obj.state_dict().items():
            if (where := non_finite(v, f"{path}.{k}", depth + 1)) is not None:
                return where
        return None
    if isinstance(obj, Mapping):
        items = obj.items()
    elif isinstance(obj, list | tuple):
        items = enumerate(obj)
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        items = ((f.name, getattr(obj, f.name)) for f in dataclasses.fields(obj))
    else:
        return None
    for k, v in items:
        if (where := non_finite(v, f"{path}[{k!r}]", depth + 1)) is not None:
            return where
    return None


# -- running one call ---------------------------------------------------------------------------

class FuzzTimeout(BaseException):  # noqa: N818 (BaseException: library `except Exception` misses it)
    """The call ran past :data:`CALL_SECONDS`."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`FuzzTimeout` in the block after ``seconds`` (POSIX main thread only;
    elsewhere the block runs unlimited)."""
    import threading

    if not hasattr(signal, "setitimer") or threading.current_thread() is not \
            threading.main_thread():
        yield
        return

    def alarm(signum, frame):
        raise FuzzTimeout(f"ran past {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _origin(exc: BaseException) -> tuple[bool, str]:
    """(raised inside lightvision, "file:line" of the deepest lightvision frame)."""
    frames = traceback.extract_tb(exc.__traceback__)
    inside = bool(frames) and os.path.abspath(frames[-1].filename).startswith(LIB_DIR + os.sep)
    lib = [f for f in frames if os.path.abspath(f.filename).startswith(LIB_DIR + os.sep)]
    where = (f"{os.path.relpath(lib[-1].filename, REPO_DIR)}:{lib[-1].lineno}" if lib
             else "(no lightvision frame)")
    return inside, where


def names_argument(message: str, names: tuple[str, ...]) -> bool:
    """Whether one of ``names`` appears as a word (not inside a longer identifier; case aside:
    a model's own check names its input ``x`` where ``fit`` calls it ``X``)."""
    return any(re.search(rf"(?<![A-Za-z0-9_]){re.escape(n)}(?![A-Za-z0-9_])", message,
                         flags=re.IGNORECASE) for n in names if n)


def _strings(value: Any, depth: int = 0) -> list[str]:
    """The strings in ``value`` (a path, or a list holding one)."""
    if isinstance(value, str | os.PathLike):
        return [os.fspath(value)]
    if isinstance(value, list | tuple) and depth < 2:
        return [s for v in value for s in _strings(v, depth + 1)]
    return []


def short_repr(value: Any, limit: int = 70) -> str:
    if isinstance(value, torch.Tensor | np.ndarray):
        kind = "tensor" if isinstance(value, torch.Tensor) else "array"
        return f"{kind}{tuple(value.shape)} {value.dtype}"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclasses.dataclass
class Ledger:
    """Counts and failure records of one or more fuzzed specs."""

    counts: Counter = dataclasses.field(default_factory=Counter)
    failures: list[dict[str, str]] = dataclasses.field(default_factory=list)

    def merge(self, other: Ledger) -> None:
        self.counts.update(other.counts)
        self.failures.extend(other.failures)

    def summary(self) -> str:
        c = self.counts
        failed = ", ".join(f"{k}={c[k]}" for k in FAILURES if c[k])
        return (f"fuzz: {c['tried']} inputs tried, {c['ok']} ok, {c['clean_error']} clean "
                f"errors, {c['unexpected_type']} unexpected exception types, "
                f"{c['non_finite']} silent non-finite results, {c['mutated']} mutated inputs"
                + (f" [failures: {failed}]" if failed else ""))

    def report(self, limit: int | None = None) -> str:
        rows = self.failures if limit is None else self.failures[:limit]
        lines = [self.summary()]
        lines += [f"  {f['kind']}: {f['spec']} {f['arg']}={f['variant']} -> {f['detail']} "
                  f"[{f['where']}]" for f in rows]
        if limit is not None and len(self.failures) > limit:
            lines.append(f"  ... and {len(self.failures) - limit} more")
        return "\n".join(lines)


def probe(ledger: Ledger, spec: Spec, args: dict[str, Any], *, arg: str = "(valid)",
          variant: Variant | None = None, baseline: bool = False) -> Any:
    """Run ``spec.run(args)`` once and record the outcome in ``ledger``; returns the output
    (``None`` when it raised)."""
    valid = baseline or (variant is not None and variant.valid)
    label = "(valid)" if variant is None else variant.label
    top = arg.split(".", 1)[0]
    aliases = spec.names.get(top, ())
    names = (top, *arg.split(".")[1:], *(aliases() if callable(aliases) else aliases))
    checked = {k: v for k, v in args.items() if k not in spec.mutable}
    before, rngs = freeze(checked), rng_state(spec.rngs)
    ledger.counts["tried"] += 1

    def fail(kind: str, detail: str, where: str = "") -> None:
        ledger.counts[kind] += 1
        ledger.failures.append({"kind": kind, "spec": spec.name, "file": spec.file, "arg": arg,
                                "variant": label, "detail": detail[:300], "where": where})

    out = None
    try:
        with warnings.catch_warnings(), time_limit(CALL_SECONDS):
            warnings.simplefilter("ignore")
            out = spec.run(args)
    except FuzzTimeout as exc:
        fail("timeout", str(exc))
    except Exception as exc:  # noqa: BLE001 (classifying every exception is the point)
        inside, where = _origin(exc)
        detail = f"{type(exc).__name__}: {exc}"
        paths = _strings(variant.value) if variant is not None else []
        if isinstance(exc, OSError) and any(p in str(exc) for p in paths):
            names = (*names, *paths)  # a string taken as a path: the file error names it
        errors = (ValueError, TypeError, FloatingPointError) + (
            (OSError,) if spec.file_errors or any(p in str(exc) for p in paths) else ())
        if baseline:
            fail("baseline_failed", detail, where)
        elif valid:
            fail("valid_rejected", detail, where)
        elif not isinstance(exc, errors):
            fail("unexpected_type", detail, where)
        elif not inside:
            fail("foreign_error", detail, where)
        elif not names_argument(str(exc), names):
            fail("unnamed_argument", detail, where)
        else:
            ledger.counts["clean_error"] += 1
    else:
        where = non_finite(out)
        if where is not None:
            fail("non_finite", f"returned non-finite values at {where}")
        else:
            ledger.counts["ok"] += 1
    after = freeze(checked)
    if after != before:
        changed = [k for k in checked if freeze(args[k]) != before[1][list(checked).index(k)][1]]
        fail("mutated", f"changed input(s) {changed or '?'}")
    now = rng_state(spec.rngs)
    if now != rngs:
        fail("rng_changed", f"changed the global random state of "
                            f"{[k for k in now if now[k] != rngs[k]]}")
    return out
