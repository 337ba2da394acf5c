"""Save and load any compressed model: its architecture description plus its weights.

A file written by :func:`save_compressed` holds plain values and tensors only, so
:func:`load_compressed` reads it with ``torch.load(weights_only=True)`` (no code is unpickled):

- ``model``: the registered name and keyword arguments of a model built with
  :func:`lightvision.create_model` (``model.model_spec``), from which the base architecture is
  rebuilt; for any other model the caller passes a fresh instance of its base architecture;
- ``layers``: the type and configuration of every layer of a known type (convolutions, linear
  layers, batch norms, identities, and every class added with :func:`register_layer`, such as
  the quantized and factorized layers to come), so that layers a compression replaced or
  reshaped are rebuilt as they were (a saved layer must exist, in some form, in the base
  architecture or inside a rebuilt layer; layers of other types are rebuilt by the base);
- ``modules``: the type of every submodule, checked after the rebuild (a layer of a type that
  is neither the base's nor registered is refused, never silently lost);
- ``state_dict``: the weights and buffers; ``report``: the compression report, if given.

>>> import io, torch, lightvision
>>> small, report = lightvision.prune(lightvision.create_model("small_cnn"),
...                                   torch.randn(1, 1, 28, 28), ratio=0.5)
>>> buffer = io.BytesIO()
>>> save_compressed(small, buffer, report=report)
>>> _ = buffer.seek(0)
>>> loaded = load_compressed(buffer)
>>> loaded.features[0][0].out_channels
16
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._checks import check_model
from .._rng import seeded
from .base import CompressionReport, replace_module

__all__ = ["load_compressed", "load_report", "register_layer", "save_compressed"]

FORMAT = "lightvision.compressed"
VERSION = 1

_CONV = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
         "groups", "padding_mode")
_NORM = ("num_features", "eps", "momentum", "affine", "track_running_stats")


def _attributes(*names: str, bias: bool = False) -> Callable[[nn.Module], dict[str, Any]]:
    def config(module: nn.Module) -> dict[str, Any]:
        values = {name: getattr(module, name) for name in names}
        if bias:
            values["bias"] = module.bias is not None
        return values

    return config


#: qualified class name -> (class, module -> config, config -> module)
_LAYERS: dict[str, tuple[type, Callable[[nn.Module], dict], Callable[..., nn.Module]]] = {}


def _key(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def register_layer(cls: type, *, get_config: Callable[[nn.Module], dict] | None = None,
                   from_config: Callable[..., nn.Module] | None = None) -> type:
    """Make the layer class ``cls`` describable in a saved file (usable as a decorator).

    ``get_config(module)`` returns plain values (numbers, strings, tuples, lists, dicts) and
    ``from_config(**config)`` builds an equal layer with fresh weights; by default
    ``module.get_config()`` and ``cls(**config)``. The layer's tensors must all be in its
    ``state_dict``.
    """
    if not isinstance(cls, type) or not issubclass(cls, nn.Module):
        raise TypeError(f"cls must be an nn.Module class, got {cls!r}")
    _LAYERS[_key(cls)] = (cls, get_config or (lambda m: m.get_config()), from_config or cls)
    return cls


for _cls in (nn.Conv1d, nn.Conv2d):
    register_layer(_cls, get_config=_attributes(*_CONV, bias=True))
register_layer(nn.Linear, get_config=_attributes("in_features", "out_features", bias=True))
for _cls in (nn.BatchNorm1d, nn.BatchNorm2d):
    register_layer(_cls, get_config=_attributes(*_NORM))
register_layer(nn.Identity, get_config=lambda m: {})


def _describe(module: nn.Module) -> dict[str, Any] | None:
    known = _LAYERS.get(_key(type(module)))
    if known is None or known[0] is not type(module):
        return None
    return {"type": _key(type(module)), "config": known[1](module)}


def _plain_spec(value: Any) -> bool:
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and _plain_spec(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return all(_plain_spec(v) for v in value)
    return value is None or isinstance(value, bool | int | float | str)


def save_compressed(model: nn.Module, path: str | os.PathLike[str] | io.IOBase, *,
                    report: CompressionReport | None = None) -> None:
    """Write ``model`` (any model, compressed or not) to ``path`` (a file name or a binary
    file object); see the module docstring.

    ``report`` (a :class:`~lightvision.compression.CompressionReport`) is stored beside it
    and read back by :func:`load_report`.

    Raises
    ------
    TypeError for a ``path`` that is neither a file name nor a writable file object;
    FileNotFoundError when the file's directory does not exist; IsADirectoryError when
    ``path`` is a directory.
    """
    check_model(model)
    if report is not None and not isinstance(report, CompressionReport):
        raise TypeError(f"report must be a CompressionReport, got {type(report).__name__}")
    where = _check_path(path, "write")
    if where is not None:
        if where.is_dir():
            raise IsADirectoryError(f"path {str(where)!r} is a directory: give a file name")
        if not where.parent.is_dir():
            raise FileNotFoundError(f"cannot save to {str(where)!r}: its directory "
                                    f"{str(where.parent)!r} does not exist")
    spec = getattr(model, "model_spec", None)
    if spec is not None and not _plain_spec(spec):
        spec = None
    layers = []
    for name, module in model.named_modules():
        description = _describe(module) if name else None
        if description is not None:
            layers.append({"name": name, **description})
    modules = {name: _key(type(module)) for name, module in model.named_modules()}
    torch.save({"format": FORMAT, "version": VERSION, "model": spec, "layers": layers,
                "modules": modules, "state_dict": model.state_dict(),
                "report": None if report is None else report.to_dict()}, path)


def _check_path(path: Any, mode: str) -> Path | None:
    """``path`` as a ``Path``, or None for a binary file object (one with ``read`` or
    ``write``, as ``mode`` needs); ``TypeError`` naming ``path`` otherwise."""
    if isinstance(path, str | os.PathLike):
        return Path(path)
    if callable(getattr(path, mode, None)):
        return None
    raise TypeError(f"path must be a file name (str or os.PathLike) or a binary file object "
                    f"with a {mode} method, got {type(path).__name__}")


def _read(path: str | os.PathLike[str] | io.IOBase) -> dict[str, Any]:
    where = _check_path(path, "read")
    if where is not None:
        if not where.is_file():
            raise FileNotFoundError(f"no compressed model at {str(where)!r}")
        if where.stat().st_size == 0:
            raise ValueError(f"{str(where)!r} is empty: not a file written by save_compressed")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, KeyError, ValueError) as error:
        raise ValueError(f"{path!r} is not a complete file written by save_compressed (it is "
                         f"truncated, corrupted or of another kind): {error}") from error
    except pickle.UnpicklingError:  # torch's message suggests weights_only=False: not here
        raise ValueError(f"{path!r} was not written by save_compressed: it is not a torch "
                         "archive of plain values and tensors (other objects are refused, "
                         "never unpickled)") from None
    except Exception as error:  # noqa: BLE001 - any other failure of the reader
        raise ValueError(f"{path!r} was not written by save_compressed: {error}") from error
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise ValueError(f"{path!r} was not written by save_compressed")
    if saved.get("version") != VERSION:
        raise ValueError(f"{path!r} has format version {saved.get('version')!r}; this "
                         f"lightvision reads version {VERSION}")
    return saved


def _rebuild(path: Any, saved: dict[str, Any], model: nn.Module | None) -> nn.Module:
    """The saved architecture: ``model`` (or a fresh ``create_model``) with the saved layers
    put in place (their weights not loaded yet)."""
    if model is None:
        if saved["model"] is None:
            raise ValueError(f"{path!r} holds a model not built by lightvision.create_model: "
                             "pass model= (a fresh instance of its base architecture)")
        from ..models import create_model

        model = create_model(saved["model"]["name"], **saved["model"]["kwargs"])
    check_model(model)
    for layer in saved["layers"]:
        known = _LAYERS.get(layer["type"])
        if known is None:
            raise ValueError(f"{path!r} has a layer {layer['name']!r} of type "
                             f"{layer['type']!r}, which is not registered with register_layer")
        try:
            current = model.get_submodule(layer["name"])
        except AttributeError:
            raise ValueError(f"the model has no layer {layer['name']!r} of the one saved in "
                             f"{path!r}: is model= the right base architecture?") from None
        if _describe(current) != {"type": layer["type"], "config": layer["config"]}:
            replace_module(model, layer["name"], known[2](**layer["config"]))
    return model


def load_compressed(path: str | os.PathLike[str] | io.IOBase,
                    model: nn.Module | None = None) -> nn.Module:
    """The model saved by :func:`save_compressed`, rebuilt and with its weights.

    Parameters
    ----------
    path : the file (or a binary file object).
    model : a fresh instance of the model's base (uncompressed) architecture, changed in place
        and returned; needed when the model was not built with
        :func:`lightvision.create_model` (otherwise it is rebuilt from the file).

    Raises
    ------
    TypeError for a ``path`` that is neither a file name nor a readable file object;
    FileNotFoundError for a missing file; ValueError for an empty, truncated or foreign file,
    or one whose layers or weights do not fit ``model``.
    """
    saved = _read(path)
    # the weights that rebuilding draws are overwritten by the state dict: drawn on a fork of
    # torch's generators, so that loading leaves the caller's random state as it was
    with seeded(None):
        model = _rebuild(path, saved, model)
    rebuilt = {name: _key(type(module)) for name, module in model.named_modules()}
    if rebuilt != saved["modules"]:
        wrong = sorted(set(rebuilt.items()) ^ set(saved["modules"].items()))[:4]
        raise ValueError(f"the rebuilt model differs from the one saved in {path!r} at "
                         f"{wrong}: pass the right base architecture as model=, or register "
                         "the saved layer types with register_layer before saving")
    try:
        model.load_state_dict(saved["state_dict"])
    except RuntimeError as error:
        raise ValueError(f"the weights in {path!r} do not fit the rebuilt model (is model= the "
                         f"right base architecture?): {error}") from error
    return model


def load_report(path: str | os.PathLike[str] | io.IOBase) -> CompressionReport | None:
    """The :class:`~lightvision.compression.CompressionReport` saved with the model (None if
    none was)."""
    report = _read(path)["report"]
    return None if report is None else CompressionReport.from_dict(report)
