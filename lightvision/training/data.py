"""What users pass as data, turned into one re-iterable source of batches.

:func:`as_batches` accepts, everywhere the package takes data (:func:`~lightvision.training.fit`,
:func:`~lightvision.training.evaluate`, the ``data`` of every compression method):

- a **tuple** ``(X, y)`` of arrays or tensors (labelled), batched and optionally shuffled here;
- an array or tensor ``X`` alone (unlabelled, e.g. calibration images);
- a ``torch.utils.data.DataLoader``, or any **iterable of batches**: each batch a pair
  ``(x, y)`` or a tensor ``x``. A one-shot iterator (a generator) can be read once only.

A consumer states what it needs: ``labelled=True`` refuses data without targets (naming the
argument), ``labelled=False`` drops the targets of labelled data (calibration reads inputs
only).

>>> import torch
>>> batches = as_batches((torch.randn(10, 3), torch.arange(10)), batch_size=4)
>>> [len(x) for x, y in batches], len(batches)
([4, 4, 2], 3)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch

from .._checks import check_array, check_bool, check_int

__all__ = ["Batches", "as_batches", "check_data", "images_to_tensor"]


def images_to_tensor(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Images (n, H, W) or (n, H, W, C) -> float32 tensor (n, C, H, W).

    ``images``: a numpy array, a tensor or a nested sequence of real numbers, finite and within
    float32's range. uint8 images are scaled to [0, 1]; other dtypes are converted unchanged.
    The input is not modified.
    """
    if not isinstance(images, torch.Tensor):
        images = check_array(images, "images", "biuf")
    x = torch.as_tensor(images)
    if x.ndim not in (3, 4):
        raise ValueError(f"images must have shape (n, H, W) or (n, H, W, C), got {tuple(x.shape)}")
    if x.dtype == torch.bool or x.is_complex():
        raise TypeError(f"images must be real numbers, got {x.dtype}")
    if x.is_floating_point() and x.numel():
        if not torch.isfinite(x).all():
            raise ValueError("images contain NaN or infinite values")
        if x.dtype == torch.float64 and float(x.abs().max()) > torch.finfo(torch.float32).max:
            raise ValueError(f"images hold values up to {float(x.abs().max()):g}, beyond "
                             "float32's range")
    scale = 255.0 if x.dtype == torch.uint8 else 1.0
    x = x.to(torch.float32) / scale
    return x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2).contiguous()


def _as_tensor(value: Any, name: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    raise TypeError(f"{name} must be a numpy array or a torch tensor, got {type(value).__name__}")


def _check_inputs(X: torch.Tensor, name: str) -> torch.Tensor:
    if X.ndim == 0 or len(X) == 0:
        raise ValueError(f"{name} is empty")
    if not X.is_floating_point():
        raise TypeError(
            f"{name} must be floating point, got {X.dtype} "
            "(convert images with lightvision.training.images_to_tensor)"
        )
    if not torch.isfinite(X).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return X


def _check_targets(y: torch.Tensor, n: int, name: str, inputs: str) -> torch.Tensor:
    if y.ndim == 0 or len(y) != n:
        raise ValueError(
            f"{inputs} and {name} must have the same length, got {n} and "
            f"{'a scalar' if y.ndim == 0 else len(y)}"
        )
    if y.dtype == torch.bool or y.is_complex():
        raise TypeError(f"{name} must hold integer labels or real targets, got {y.dtype}")
    if y.is_floating_point() and not torch.isfinite(y).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return y


def check_data(X: Any, y: Any, prefix: str = "") -> tuple[torch.Tensor, torch.Tensor]:
    """``(X, y)`` as tensors after checking them: X floating point, finite, non-empty; y
    integer labels or finite real targets of the same length. Errors name ``{prefix}X`` and
    ``{prefix}y``."""
    X = _check_inputs(_as_tensor(X, f"{prefix}X"), f"{prefix}X")
    y = _check_targets(_as_tensor(y, f"{prefix}y"), len(X), f"{prefix}y", f"{prefix}X")
    return X, y


class Batches:
    """A re-iterable source of ``(x, y)`` batches (``y`` is None for unlabelled data).

    Build it with :func:`as_batches`. Iterating over tensors given as a whole draws a new
    order from ``generator`` on every pass when ``shuffle``; batches from a loader or an
    iterable come as they are, each checked as it arrives.

    Attributes
    ----------
    name : the argument name used in error messages.
    labelled : True when targets are required, False when they are dropped, None when
        batches come as they are.
    """

    def __init__(self, source: Any, *, name: str, labelled: bool | None,
                 X: torch.Tensor | None = None, y: torch.Tensor | None = None,
                 batch_size: int = 64, shuffle: bool = False,
                 generator: torch.Generator | None = None) -> None:
        self.name, self.labelled = name, labelled
        self._source = source
        self._X, self._y = X, (None if labelled is False else y)
        self._batch_size, self._shuffle, self._generator = batch_size, shuffle, generator
        self._one_shot = isinstance(source, Iterator)
        self._passes = [0]  # shared with the copies made by as_batches
        if labelled and X is not None and y is None:
            raise ValueError(f"{name} has no targets: labelled data (X, y) are needed")

    @property
    def one_shot(self) -> bool:
        """Whether the batches can be read only once (a generator or other iterator)."""
        return self._one_shot

    @property
    def tensors(self) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        """``(X, y)`` when the data were given as whole tensors, else None."""
        return None if self._X is None else (self._X, self._y)

    def __len__(self) -> int:
        """Batches per pass (a re-iterable source without ``len`` is counted by one pass;
        a one-shot iterator without ``len`` raises ``TypeError``)."""
        if self._X is not None:
            return math.ceil(len(self._X) / self._batch_size)
        try:
            return len(self._source)
        except TypeError:
            if self._one_shot:
                raise TypeError(f"{self.name} is a one-shot iterator of unknown length; pass "
                                "a list of batches or a DataLoader") from None
            return sum(1 for _ in self._source)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        if self._X is not None:
            n = len(self._X)
            order = (torch.randperm(n, generator=self._generator) if self._shuffle
                     else torch.arange(n))
            for idx in order.split(self._batch_size):
                yield self._X[idx], None if self._y is None else self._y[idx]
            return
        if self._one_shot and self._passes[0]:
            raise TypeError(f"{self.name} is a one-shot iterator and was already read; pass a "
                            "list of batches or a DataLoader to go over it more than once")
        self._passes[0] += 1
        for i, batch in enumerate(self._source):
            yield self._check_batch(batch, i)

    def _check_batch(self, batch: Any, i: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        where = f"{self.name} batch {i}"
        if isinstance(batch, tuple | list) and self.labelled is False and len(batch) == 2:
            batch = batch[0]
        if isinstance(batch, tuple | list):
            if len(batch) != 2:
                raise ValueError(f"{where} must be a pair (x, y) or a tensor x, got a "
                                 f"{type(batch).__name__} of length {len(batch)}")
            x = _check_inputs(_as_tensor(batch[0], f"{where} x"), f"{where} x")
            y = _check_targets(_as_tensor(batch[1], f"{where} y"), len(x), f"{where} y",
                               f"{where} x")
        else:
            x, y = _check_inputs(_as_tensor(batch, where), where), None
            if self.labelled:
                raise ValueError(f"{where} has no targets: labelled batches (x, y) are needed")
        return x, y


def as_batches(data: Any, *, name: str = "data", labelled: bool | None = None,
               batch_size: int = 64, shuffle: bool = False,
               generator: torch.Generator | None = None) -> Batches:
    """``data`` in any of the accepted forms (see the module docstring) as :class:`Batches`.

    Parameters
    ----------
    data : ``(X, y)`` tuple, ``X``, a DataLoader or an iterable of batches.
    name : the argument name for error messages.
    labelled : True: targets required; False: targets dropped; None: as given.
    batch_size, shuffle, generator : how whole tensors are batched (a loader keeps its own).
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    if labelled is not None:
        check_bool(labelled, "labelled")
    batch_size = check_int(batch_size, "batch_size")  # a plain int: torch's split needs one
    check_bool(shuffle, "shuffle")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got "
                        f"{type(generator).__name__}")
    if data is None:
        raise TypeError(f"{name} is missing: pass a tuple (X, y), an array or tensor X, a "
                        "DataLoader or an iterable of batches")
    settings = {"name": name, "labelled": labelled, "batch_size": batch_size,
                "shuffle": shuffle, "generator": generator}
    if isinstance(data, Batches):  # the same data, batched for this consumer
        settings["labelled"] = data.labelled if labelled is None else labelled
        settings["name"] = data.name
        if data.tensors is not None:
            X, y = data.tensors
            return Batches(None, X=X, y=y, **settings)
        same = Batches(data._source, name=data.name, labelled=settings["labelled"])
        same._passes = data._passes  # a one-shot source stays read once
        return same
    if isinstance(data, tuple):
        if len(data) != 2:
            raise ValueError(f"{name} as a tuple must be a pair (X, y), got {len(data)} items")
        X, y = check_data(*data, prefix=f"{name} ")
        return Batches(None, X=X, y=y, **settings)
    if isinstance(data, torch.Tensor | np.ndarray):
        return Batches(None, X=_check_inputs(_as_tensor(data, name), name), **settings)
    if isinstance(data, Iterable) and not isinstance(data, str | bytes | dict):
        return Batches(data, name=name, labelled=labelled)
    raise TypeError(f"{name} must be a tuple (X, y), an array or tensor X, a DataLoader or an "
                    f"iterable of batches, got {type(data).__name__}")
