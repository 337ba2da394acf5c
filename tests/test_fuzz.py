"""Property-based fuzzing of the public API (issue 14, "Bad input").

Registry-driven: every entry of :data:`lightvision.registry.REGISTRIES` (models, blocks,
features, pruners, losses, and any kind added later: a registry of compression methods goes
through the pruner path) becomes a :class:`~fuzz_strategies.Spec` built from its ``test_params``
and metadata, next to hand-listed specs for the public functions of ``lightvision.metrics``,
``lightvision.training``, ``lightvision.datasets``, pruning and serialization.

Each spec is fuzzed twice, one argument at a time: the fixed table of
:func:`~fuzz_strategies.edge_variants` (complete, so the failure list is reproducible), then
values drawn by hypothesis (``derandomize=True``). The properties, per call (see
:func:`~fuzz_strategies.probe`):

- a bad input raises a ``ValueError``/``TypeError`` (file errors for paths) from lightvision
  whose message names the argument, or the call succeeds with finite outputs;
- a valid input (numpy scalars included) works;
- no input changes, nor torch's, numpy's or Python's global random state.

Every test prints its counts (``pytest -s``), the module prints the total at the end, and a
failing test lists every failing case with the input and the exception. Scale with
``LIGHTVISION_FUZZ_EXAMPLES`` (hypothesis examples per spec, default 6) and cap the table with
``LIGHTVISION_FUZZ_CASES`` / ``LIGHTVISION_FUZZ_PER_ARG``.
"""

from __future__ import annotations

import copy
import functools
import inspect
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest
import torch
from fuzz_strategies import (
    Ledger,
    Spec,
    Variant,
    argument_variants,
    edge_variants,
    probe,
    source_file,
    substitute,
    variant_strategy,
)
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import lightvision
from lightvision.registry import BLOCKS, FEATURES, LOSSES, MODELS, REGISTRIES

#: Hypothesis examples per spec; edge-table cases per spec and per argument (0: no cap, the
#: default: the whole table runs). The table is interleaved across arguments (each argument's
#: most telling variants first), so caps, for a quick local run, keep every argument covered.
EXAMPLES = int(os.environ.get("LIGHTVISION_FUZZ_EXAMPLES", "6"))
CASES = int(os.environ.get("LIGHTVISION_FUZZ_CASES", "0"))
PER_ARG = int(os.environ.get("LIGHTVISION_FUZZ_PER_ARG", "0"))
TOTAL = Ledger()


# -- small shared inputs ------------------------------------------------------------------------

def _randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _tiny_cnn() -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return lightvision.create_model("small_cnn", widths=(4, 8)).eval()


def _images_labels(n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.rand(n, 1, 12, 12, generator=g), torch.randint(0, 10, (n,), generator=g)


def _simple(value: Any) -> bool:
    """A default the variant table knows how to break."""
    return value is None or isinstance(value, bool | int | float | str) or (
        isinstance(value, tuple) and value and all(isinstance(v, int | float) for v in value))


def _defaults(obj: Callable[..., Any]) -> dict[str, Any]:
    """Keyword parameters of ``obj`` with simple defaults."""
    try:
        params = inspect.signature(obj).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {p.name: p.default for p in params
            if p.default is not inspect.Parameter.empty and _simple(p.default)
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def _first_param(func: Callable[..., Any]) -> str:
    params = [p for p in inspect.signature(func).parameters if p != "self"]
    return params[0]


def _build(ctor: Callable[..., Any], kwargs: Mapping[str, Any]) -> Any:
    """Build a module without touching torch's global generator (PyTorch modules draw their
    initial weights from it)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return ctor(**kwargs)


# -- specs from the registries ------------------------------------------------------------------

def _model_spec(entry) -> Spec:
    shape = tuple(entry.meta["input_shape"])
    core = {**_defaults(entry.obj), **entry.test_params}

    def run(a):
        kw = {k: v for k, v in a.items() if k != "x"}
        model = _build(lambda **k: lightvision.create_model(entry.name, **k), kw).eval()
        x = a["x"]
        if isinstance(x, torch.Tensor) and tuple(x.shape[1:]) == shape and hasattr(
                model, "in_channels") and model.in_channels != shape[0]:  # in_channels fuzzed
            x = _randn(2, model.in_channels, *shape[1:])
        with torch.no_grad():
            return model(x)

    extras = {}
    model = _build(lambda **k: lightvision.create_model(entry.name, **k), core)
    for name, default in _defaults(type(model).__init__).items():
        if name in core or default is None:
            continue
        try:  # a builder that fixes the argument itself rejects it twice
            _build(lambda **k: lightvision.create_model(entry.name, **k),
                   {**core, name: default})
        except (TypeError, ValueError):
            continue
        extras[name] = default
    return Spec(f"model:{entry.name}", source_file(type(model)),
                make=lambda: {**core, **extras, "x": _randn(2, *shape)}, run=run,
                core=(*core, "x"), extra=tuple(extras), names={"x": ("input",)})


def _block_spec(entry) -> Spec:
    shape = tuple(entry.meta.get("test_input_shape", entry.meta.get("input_shape")))
    core = {**_defaults(entry.obj), **entry.test_params}
    forward_arg = _first_param(entry.obj.forward)

    def run(a):
        block = _build(entry.obj, {k: v for k, v in a.items() if k != forward_arg}).eval()
        with torch.no_grad():
            return block(a[forward_arg])

    return Spec(f"block:{entry.name}", source_file(entry.obj),
                make=lambda: {**core, forward_arg: _randn(2, *shape)}, run=run,
                names={forward_arg: ("input",)})


def _feature_data(entry) -> tuple[Any, np.ndarray]:
    kind = entry.meta.get("input", "images")
    rng = np.random.default_rng(0)
    if kind == "images":
        shape = entry.meta.get("test_input_shape", entry.meta["input_shape"])
        return rng.integers(0, 256, size=(12, *shape), dtype=np.uint8), np.arange(12) % 3
    if kind == "videos":
        frames, height, width = entry.meta["test_input_shape"]
        texture = np.cumsum(np.cumsum(rng.random((height + 2 * frames, width + 2 * frames)),
                                      axis=0), axis=1)
        texture = np.sin(texture / texture.std() * 40) * 100 + 128
        video = np.stack([texture[frames: frames + height, t: t + width]
                          for t in range(frames)]).astype(np.uint8)
        return [video, video[:, ::-1].copy()], np.array([0, 1])
    if kind == "descriptor_sets":
        dim = entry.meta["descriptor_dim"]
        sizes = [30, 0, 12, 20]
        if entry.meta.get("packed"):
            return ([rng.integers(0, 256, size=(k, dim), dtype=np.uint8) for k in sizes],
                    np.arange(4) % 2)
        return [rng.normal(size=(k, dim)) + i % 2 for i, k in enumerate(sizes)], np.arange(4) % 2
    if kind == "binary":
        return ((rng.random((40, entry.meta["n_features"])) < 0.3).astype(np.uint8),
                np.arange(40) % 2)
    if kind == "views":
        return [rng.normal(size=(16, d)) for d in entry.meta["view_dims"]], np.arange(16) % 3
    raise AssertionError(f"feature {entry.name}: unknown input kind {kind!r}: teach "
                         "tests/test_fuzz.py::_feature_data to make it")


def _feature_outputs(est, data, entry) -> list[Any]:
    if entry.meta.get("input") == "binary":
        return [est.score_samples(data), est.predict_proba(data)]
    return est.transform(data)


def _feature_specs(entry) -> list[Spec]:
    supervised = "supervised" in entry.tags
    core = dict(entry.test_params)
    extras = {k: v for k, v in _defaults(entry.obj).items() if k not in core and v is not None}
    fit_arg = _first_param(entry.obj.fit)
    data, y = _feature_data(entry)

    def fit(a):
        est = entry.create(**{k: a[k] for k in (*core, *extras)})
        return est.fit(a[fit_arg], a["y"]) if supervised else est.fit(a[fit_arg])

    def fit_run(a):  # fit, then transform what was fitted
        return _feature_outputs(fit(a), a[fit_arg], entry)

    def copy(d):
        return [np.array(v) for v in d] if isinstance(d, list) else d.copy()

    def make():
        return {**core, **extras, fit_arg: copy(data), **({"y": y.copy()} if supervised else {})}

    fitted: dict[str, Any] = {}

    def transform_run(a):
        if "est" not in fitted:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fitted["est"] = fit(make())
        return _feature_outputs(fitted["est"], a[fit_arg], entry)

    file = source_file(entry.obj)
    specs = [Spec(f"feature:{entry.name}.fit", file, make=make, run=fit_run,
                  core=(*core, fit_arg, *(("y",) if supervised else ())), extra=tuple(extras))]
    specs.append(Spec(f"feature:{entry.name}.transform", file,
                      make=lambda: {fit_arg: copy(data)}, run=transform_run))
    if hasattr(entry.obj, "describe_flow"):  # flow-based descriptors take flow fields too
        flow_arg = _first_param(entry.obj.describe_flow)
        frames, height, width = entry.meta["test_input_shape"]
        flows = [np.random.default_rng(t).normal(size=(height, width, 2))
                 for t in range(frames - 1)]
        specs.append(Spec(f"feature:{entry.name}.describe_flow", file,
                          make=lambda: {flow_arg: [f.copy() for f in flows]},
                          run=lambda a: entry.create(**core).describe_flow(a[flow_arg])))
    return specs


def _loss_spec(entry) -> Spec:
    first, second = [p for p in inspect.signature(entry.obj).parameters][:2]
    shape = entry.meta["test_input_shape"]
    kwargs = {**_defaults(entry.obj), **entry.test_params}
    kwargs.pop(first, None)
    kwargs.pop(second, None)
    return Spec(f"loss:{entry.name}", source_file(entry.obj),
                make=lambda: {first: _randn(*shape, seed=0).double(),
                              second: 1.5 * _randn(*shape, seed=1).double() + 0.5, **kwargs},
                run=lambda a: entry.obj(**a))


def _compression_spec(entry) -> Spec:
    ctor = {**_defaults(entry.obj), **entry.test_params}
    X, y = _images_labels()

    def run(a):
        method = entry.create(**{k: a[k] for k in ctor})
        # inplace=True changes the model by contract: it gets a copy, so that the check that
        # inputs are never modified still holds for every other argument and value
        model = copy.deepcopy(a["model"]) if a["inplace"] is True else a["model"]
        return method(model, a["example_inputs"], data=a["data"], inplace=a["inplace"],
                      latency=a["latency"])

    needs_data = entry.create(**entry.test_params).needs_data is not None
    fuzzed = (*ctor, "model", "example_inputs", *(("data",) if needs_data else ()), "inplace",
              "latency")
    return Spec(f"compression:{entry.name}", source_file(entry.obj), core=fuzzed,
                make=lambda: {**ctor, "model": _tiny_cnn(), "example_inputs": X[:2].clone(),
                              "data": (X.clone(), y.clone()), "inplace": False,
                              "latency": False},
                run=run, names={"example_inputs": ("x",)})


def _registry_specs() -> list[tuple[str, Callable[[], Spec]]]:
    """``(id, factory)`` per registered component; the specs build lazily, in the test."""
    out: list[tuple[str, Callable[[], Spec]]] = []
    builders = {"model": _model_spec, "block": _block_spec, "loss": _loss_spec}
    for kind, registry in REGISTRIES.items():
        for entry in registry.entries():
            if kind == "feature":
                steps = ("fit", "transform", *(("describe_flow",) if hasattr(
                    entry.obj, "describe_flow") else ()))
                for step in steps:
                    out.append((f"feature:{entry.name}.{step}",
                                lambda e=entry, step=step: next(
                                    s for s in _feature_specs(e) if s.name.endswith(step))))
            elif kind in builders:
                out.append((f"{kind}:{entry.name}", lambda e=entry, b=builders[kind]: b(e)))
            else:  # pruners, quantizers, any compression family: the CompressionMethod call
                out.append((f"{kind}:{entry.name}", lambda e=entry: _compression_spec(e)))
    return out


# -- specs for public functions -----------------------------------------------------------------

def _fn(func: Callable[..., Any], make: Callable[[], dict[str, Any]], **kw: Any) -> Spec:
    name = f"{func.__module__.replace('lightvision.', '')}.{func.__qualname__}"
    return Spec(name, source_file(func), make=make, run=lambda a: func(**a), **kw)


_IO_DIR = os.path.join(tempfile.gettempdir(), f"lightvision_fuzz_{os.getpid()}")


@functools.cache
def _shared() -> dict[str, Any]:
    """Objects several function specs read (built once, on first use)."""
    from lightvision import datasets
    from lightvision.compression import save_compressed
    from lightvision.compression.pruning import channel_groups

    os.makedirs(_IO_DIR, exist_ok=True)
    paths = {k: os.path.join(_IO_DIR, f"{k}.pt") for k in ("saved", "empty", "garbage")}
    save_compressed(_tiny_cnn(), paths["saved"])
    open(paths["empty"], "wb").close()
    with open(paths["garbage"], "wb") as f:
        f.write(b"not a model file \x00\x01")
    return {
        "group": channel_groups(_tiny_cnn(), _images_labels()[0][:2])[0].name,
        "scenes": datasets.make_cloud_scenes(2, image_size=32, patch_size=16, random_state=0),
        "videos": datasets.make_actions(3, scenarios=(1,), n_frames=4, frame_size=(48, 64),
                                        random_state=0),
        "semg": datasets.make_semg(1, n_channels=2, duration_s=0.5, fs=1000.0,
                                   random_state=0),
        "cloud": _build(lambda: lightvision.create_model("cloud_net", widths=(4, 8)),
                        {}).eval(),
        **paths,
    }


def _function_specs() -> list[Spec]:
    from lightvision import datasets, metrics, models, training
    from lightvision.adaptation import fit_domain_adaptation
    from lightvision.compression import compress, load_compressed, load_report, save_compressed
    from lightvision.compression.pruning import (
        channel_groups,
        exemplar_filters,
        frequent_directions,
        group_prox,
        load_pruned,
        prune,
        prune_channels,
        save_pruned,
    )
    from lightvision.features import optical_flow
    from lightvision.registry import Registry

    X, y = _images_labels()
    x = X[:2]
    inputs = {"example_inputs": ("x",)}

    def with_model(**extra):
        return lambda: {"model": _tiny_cnn(), "example_inputs": x.clone(), **extra}

    specs = [
        _fn(metrics.count_params, lambda: {"model": _tiny_cnn()}),
        _fn(metrics.count_ops, with_model(), names=inputs),
        _fn(metrics.model_size_bits, lambda: {"model": _tiny_cnn()}),
        _fn(metrics.peak_activation_bytes, with_model(activation_bits=8), names=inputs),
        _fn(metrics.activation_traffic_bytes, with_model(activation_bits=8), names=inputs),
        _fn(metrics.profile, with_model(timing=False, activation_bits=8), names=inputs),
        _fn(metrics.measure_latency, with_model(repeats=2, warmup=1), names=inputs),
        _fn(metrics.measure_throughput, with_model(batch_size=2, repeats=2, warmup=1),
            names=inputs),
        _fn(metrics.estimate_energy,
            lambda: {"ops": metrics.OpCount(1000, 10, 10, 10), "model_bytes": 100,
                     "activation_bytes": 100, "table": metrics.EnergyTable()}),
        _fn(metrics.EnergyTable, lambda: dict(_defaults(metrics.EnergyTable))),
        _fn(metrics.raw_bandwidth, lambda: {"width": 64, "height": 48, "channels": 1,
                                            "bit_depth": 8, "fps": 30.0}),
        _fn(metrics.link_bandwidth, lambda: {"bits_per_frame": 1000, "fps": 30.0,
                                             "overhead": 1.0}),
        _fn(metrics.image_bits, lambda: {"width": 64, "height": 48, "channels": 1,
                                         "bit_depth": 8}),
        _fn(metrics.feature_bits, lambda: {"n_features": 16, "bits": 32}),
        _fn(metrics.label_bits, lambda: {"n_classes": 10}),
        _fn(metrics.data_reduction_ratio, lambda: {"raw_bps": 1e6, "link_bps": 1e3}),
        _fn(training.images_to_tensor,
            lambda: {"images": np.random.default_rng(0).integers(0, 256, (4, 8, 8),
                                                                 dtype=np.uint8)}),
        _fn(training.check_data, lambda: {"X": X.clone(), "y": y.clone()}),
        _fn(training.fit,
            lambda: {"model": _tiny_cnn(), "X": X.clone(), "y": y.clone(), "epochs": 1,
                     "batch_size": 8, "lr": 0.01, "weight_decay": 0.0, "optimizer": "adamw",
                     "schedule": "cosine", "random_state": 0, "device": "cpu",
                     "progress": False},
            mutable=("model",)),
        _fn(training.evaluate, lambda: {"model": _tiny_cnn(), "X": X.clone(), "y": y.clone(),
                                        "batch_size": 8, "device": "cpu"}),
        _fn(fit_domain_adaptation,
            lambda: {"model": _build(lambda: lightvision.create_model(
                         "semg_cnn", widths=(4, 8), feature_dim=8), {}),
                     "source_X": _randn(8, 8, 400), "source_y": _randn(8, 1, seed=1),
                     "target_X": _randn(8, 8, 400, seed=2), "target_y": _randn(8, 1, seed=3),
                     "discrepancy": "mmd",
                     "lam": 1.0, "streams": "joint", "epochs": 1, "batch_size": 4,
                     "progress": False},
            mutable=("model",)),
        _fn(datasets.make_actions,
            lambda: {"n_actors": 1, "scenarios": (1,), "clips_per_actor": 1, "n_frames": 4,
                     "frame_size": (48, 64), "random_state": 0}),
        _fn(datasets.make_cloud_scenes,
            lambda: {"n_images": 2, "image_size": 32, "patch_size": 16, "clear_share": 0.3,
                     "clear_threshold": 0.1, "bright_share": 0.4, "shadow_share": 0.5,
                     "random_state": 0}),
        _fn(datasets.make_semg,
            lambda: {"n_subjects": 1, "n_channels": 2, "duration_s": 0.5, "fs": 1000.0,
                     "trajectory": "mixed", "random_state": 0}),
        Spec("datasets.CloudScenes.is_clear", source_file(datasets.CloudScenes),
             make=lambda: {"self": _shared()["scenes"], "threshold": 0.1}, core=("threshold",),
             run=lambda a: a["self"].is_clear(a["threshold"])),
        Spec("datasets.ActionVideos.subset", source_file(datasets.ActionVideos),
             make=lambda: {"self": _shared()["videos"], "mask_or_indices": [0, 2]},
             core=("mask_or_indices",), run=lambda a: a["self"].subset(a["mask_or_indices"])),
        _fn(datasets.train_test_split_by_actor,
            lambda: {"data": _shared()["videos"], "test_size": 0.34, "random_state": 0}),
        Spec("datasets.SEMGRecordings.windows", source_file(datasets.SEMGRecordings),
             make=lambda: {"self": _shared()["semg"], "subjects": 0, "window_ms": 200.0,
                           "step_ms": 50.0},
             core=("subjects", "window_ms", "step_ms"),
             run=lambda a: a["self"].windows(
                 a["subjects"], window_ms=a["window_ms"], step_ms=a["step_ms"])),
        _fn(models.image_priority,
            lambda: {"model": _shared()["cloud"], "images": _shared()["scenes"].images.copy(),
                     "patch_size": 32, "batch_size": 8}),
        _fn(models.precision_at_k,
            lambda: {"priority": np.array([0.9, 0.1, 0.2, 0.5]),
                     "is_clear": np.array([False, True, False, True]), "k": 2}),
        _fn(models.kinematics_scores,
            lambda: {"y_true": np.array([0.0, 10.0, 20.0, 30.0]),
                     "y_pred": np.array([1.0, 9.0, 21.0, 29.0])}),
        _fn(prune, lambda: {"model": _tiny_cnn(), "example_inputs": x.clone(), "method": "l1",
                            "ratio": 0.5, "layers": "auto"}, names=inputs),
        _fn(channel_groups, with_model(), names=inputs),
        _fn(prune_channels,
            lambda: {"model": _tiny_cnn(), "keep": {_shared()["group"]: [0, 1]},
                     "example_inputs": x.clone()},
            names={**inputs, "keep": lambda: (_shared()["group"],)}),
        _fn(group_prox, lambda: {"u": _randn(4, 3), "threshold": 0.1, "norm": "l21"}),
        _fn(frequent_directions, lambda: {"a": _randn(6, 4), "rows": 2}),
        _fn(exemplar_filters,
            lambda: {"filters": np.random.default_rng(0).normal(size=(6, 4)), "beta": 0.8,
                     "damping": 0.5, "max_iter": 50, "convergence_iter": 5, "random_state": 0}),
    ]

    def register(a):
        registry = Registry("widget")
        registry.register(lambda n=2: n * n, name=a["name"], tags=a["tags"],
                          test_params={"n": 1})
        return registry.create(a["name"] if isinstance(a["name"], str) else "widget", n=3)

    def video():
        return np.random.default_rng(0).integers(0, 256, (4, 48, 64), dtype=np.uint8)

    specs += [
        Spec("registry.Registry.register", source_file(Registry), run=register,
             make=lambda: {"name": "widget", "tags": ("tiny",)}),
        _fn(compress, lambda: {"model": _tiny_cnn(), "example_inputs": x.clone(),
                               "method": "l1", "ratio": 0.5}, names=inputs),
        _fn(training.as_batches, lambda: {"data": (X.clone(), y.clone()), "batch_size": 8}),
        Spec("features.video.optical_flow", source_file(optical_flow),
             make=lambda: {"video": video(), "method": "farneback"},
             run=lambda a: list(optical_flow(a["video"], method=a["method"]))),
        _fn(models.predict_angles,
            lambda: {"model": _build(lambda: lightvision.create_model(
                "semg_cnn", widths=(4, 8), feature_dim=8), {}).eval(),
                "X": _randn(4, 8, 400), "batch_size": 2}),
    ]

    # I/O: paths that are missing, directories, empty or garbage files
    def path(key):
        return os.path.join(_IO_DIR, f"{key}.pt")

    bad_paths = [Variant("empty file", path("empty")), Variant("garbage file", path("garbage")),
                 Variant("missing file", path("missing")), Variant("directory", _IO_DIR),
                 Variant("None", None), Variant("3", 3)]
    out_paths = [Variant("missing directory", os.path.join(_IO_DIR, "no_such_dir", "m.pt")),
                 Variant("directory", _IO_DIR), Variant("None", None), Variant("3", 3)]
    path_names = {"path": (path("empty"), path("garbage"), path("missing"), _IO_DIR,
                           os.path.join(_IO_DIR, "no_such_dir"))}
    for func, make, variants in (
            (load_pruned, lambda: {"path": _shared()["saved"], "model": _tiny_cnn()},
             bad_paths),
            (save_pruned, lambda: {"model": _tiny_cnn(), "path": path("out")}, out_paths),
            (load_compressed, lambda: {"path": _shared()["saved"]}, bad_paths),
            (load_report, lambda: {"path": _shared()["saved"]}, bad_paths),
            (save_compressed, lambda: {"model": _tiny_cnn(), "path": path("out2")},
             out_paths)):
        specs.append(_fn(func, make, file_errors=True, variants={"path": variants},
                         names=path_names))
    return specs


FUNCTION_SPECS = _function_specs()


# -- the fuzzing --------------------------------------------------------------------------------

def _edge_cases(spec: Spec, args: dict[str, Any]) -> list[tuple[str, Variant]]:
    """The table, interleaved: every argument's first variant, then every second, ...,
    cut at :data:`PER_ARG` per argument and :data:`CASES` in all."""
    core = spec.core if spec.core is not None else tuple(args)
    per_arg = []
    for name in core:
        if name in spec.variants:
            per_arg.append([(name, v) for v in spec.variants[name]])
        else:
            per_arg.append(list(argument_variants(args, name)))
    per_arg += [list(argument_variants(args, name, short=True)) for name in spec.extra]
    if PER_ARG > 0:
        per_arg = [column[:PER_ARG] for column in per_arg]
    cases = [column[i] for i in range(max(map(len, per_arg), default=0))
             for column in per_arg if i < len(column)]
    return cases[:CASES] if CASES > 0 else cases


def _fuzz(spec: Spec) -> Ledger:
    ledger = Ledger()
    if probe(ledger, spec, spec.make(), baseline=True) is None and ledger.failures:
        return ledger  # the valid call itself fails: nothing else is meaningful
    template = spec.make()
    for arg, variant in _edge_cases(spec, template):
        probe(ledger, spec, substitute(spec.make(), arg, variant.value), arg=arg,
              variant=variant)

    fuzzable = [n for n in (*(spec.core or tuple(template)), *spec.extra)
                if n not in spec.variants]
    if not fuzzable or EXAMPLES <= 0:
        return ledger

    def draw(data):
        name = data.draw(st.sampled_from(fuzzable), label="argument")
        value = template[name]
        if isinstance(value, Mapping) and value:
            key = data.draw(st.sampled_from(sorted(value)), label="key")
            return f"{name}.{key}", data.draw(variant_strategy(value[key]), label="value")
        return name, data.draw(variant_strategy(value), label="value")

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              phases=(Phase.generate,), suppress_health_check=list(HealthCheck))
    @given(st.data())
    def fuzz(data):
        arg, variant = draw(data)
        probe(ledger, spec, substitute(spec.make(), arg, variant.value), arg=arg,
              variant=variant)

    fuzz()
    return ledger


@pytest.fixture(scope="module", autouse=True)
def _summary(request):
    """One torch thread (tiny tensors: threads only add overhead), and the total at the end."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    shutil.rmtree(_IO_DIR, ignore_errors=True)
    line = f"test_fuzz total: {TOTAL.summary()}"
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        print(line)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(f"\n{line}")


def _check(specs: list[Spec]) -> None:
    ledger = Ledger()
    for spec in specs:
        ledger.merge(_fuzz(spec))
    TOTAL.merge(ledger)
    print(ledger.report())
    assert not ledger.failures, ledger.report()


REGISTRY_SPECS = _registry_specs()


@pytest.mark.parametrize("factory", [f for _, f in REGISTRY_SPECS],
                         ids=[name for name, _ in REGISTRY_SPECS])
def test_registered_components(factory):
    """Every registered component: constructor, then forward / fit / transform / call."""
    _check([factory()])


def test_every_registry_is_fuzzed():
    fuzzed = {name.split(":", 1)[1].split(".", 1)[0] for name, _ in REGISTRY_SPECS}
    for registry in REGISTRIES.values():
        assert set(registry.list()) <= fuzzed, f"{registry.kind}: not all entries fuzzed"
    assert len(MODELS) and len(BLOCKS) and len(FEATURES) and len(LOSSES)


@pytest.mark.parametrize("spec", FUNCTION_SPECS, ids=[s.name for s in FUNCTION_SPECS])
def test_public_functions(spec):
    """metrics, training, datasets, models' helpers, pruning functions and serialization."""
    _shared()  # built outside the probes, whose random-state check it would trip
    _check([spec])


def test_probe_classifies_each_outcome(monkeypatch):
    """The machinery itself: each outcome is recognised as what it is."""
    import time

    import fuzz_strategies

    from lightvision._checks import check_int

    def mutate(a):
        a["x"].add_(1)
        return a["x"]

    def strict(a):
        if not isinstance(a["x"], int):
            raise TypeError(f"x must be an int, got {type(a['x']).__name__}")
        return float(a["x"])

    runs = {
        "ok": lambda a: torch.ones(2),
        "clean_error": lambda a: check_int(a["x"], "x"),
        "unnamed_argument": lambda a: check_int(a["x"], "other"),
        "foreign_error": lambda a: np.asarray("abc", dtype=float),  # numpy's ValueError
        "unexpected_type": lambda a: torch.zeros(2) @ torch.zeros(3),  # torch's RuntimeError
        "non_finite": lambda a: {"out": [torch.full((2,), float("nan"))]},
        "mutated": mutate,
        "rng_changed": lambda a: np.random.random(),  # noqa: NPY002 (the global state)
        "timeout": lambda a: time.sleep(2),
        "valid_rejected": strict,
    }
    monkeypatch.setattr(fuzz_strategies, "CALL_SECONDS", 0.2)
    for expected, run in runs.items():
        ledger = Ledger()
        variant = edge_variants(3)[0] if expected == "valid_rejected" else Variant("-1", -1)
        x = torch.zeros(2) if expected == "mutated" else variant.value
        probe(ledger, Spec("t", "t", make=dict, run=run), {"x": x}, arg="x", variant=variant)
        assert ledger.counts["tried"] == 1
        got = [k for k in ("ok", "clean_error", *fuzz_strategies.FAILURES) if ledger.counts[k]]
        assert expected in got, (expected, got)
        assert (not ledger.failures) == (expected in ("ok", "clean_error")), ledger.report()


def test_variant_table_covers_the_bad_inputs_of_the_issue():
    """None, wrong types, strings, NaN/inf, 1e30, negative/zero/float/bool scalars, numpy
    scalars (valid), wrong ndim and channel count, empty arrays, int64/bool tensors."""
    ints = {v.label: v for v in edge_variants(4)}
    assert {"None", "'4'", "-1", "0", "4.5", "True", "1e30"} <= set(ints)
    assert ints["np.int64(4)"].valid and type(ints["np.int64(4)"].value) is np.int64
    floats = {v.label for v in edge_variants(0.5) if not v.valid}
    assert {"nan", "inf", "1e30", "-1.0", "0.0", "None", "'0.5'", "True"} <= floats
    assert any(v.valid and type(v.value) is np.float32 for v in edge_variants(0.5))
    tensor = {v.label: v.value for v in edge_variants(_randn(2, 3, 4, 4))}
    assert {"None", "str", "ndim-1", "ndim+1", "channels+1", "empty batch", "NaN", "inf",
            "1e30"} <= set(tensor)
    assert tensor["int64"].dtype == torch.int64 and tensor["bool"].dtype == torch.bool
    assert tensor["channels+1"].shape == (2, 4, 4, 4) and tensor["empty batch"].shape[0] == 0
