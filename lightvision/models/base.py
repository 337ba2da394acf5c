"""The uniform surface shared by every classifier in lightvision."""

from __future__ import annotations

import abc
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .._checks import check_array, check_int, check_real, floating_dtype
from ..nn import capture_outputs
from ..nn._input import check_finite, input_checked

__all__ = ["Classifier"]


def check_dropout(dropout: object) -> float:
    """``dropout`` as a float if it is a real number (numpy scalars too) in [0, 1)."""
    p = check_real(dropout, "dropout", 0.0, strict=False)
    if p >= 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    return p


def _stage_ends(layers: nn.Sequential, prefix: str) -> tuple[str, ...]:
    """Names of the activations of ``layers`` that end a stage: each one followed by a
    pooling, or by nothing (the last)."""
    ends = []
    for i, module in enumerate(layers):
        following = layers[i + 1] if i + 1 < len(layers) else None
        if isinstance(module, nn.ReLU) and (following is None or isinstance(
                following, nn.MaxPool1d | nn.MaxPool2d)):
            ends.append(f"{prefix}.{i}")
    return tuple(ends)


def as_array(value: Any, name: str) -> np.ndarray:
    """``value`` (a numpy array, a tensor or nested sequences of numbers) as a numpy array of
    bools or numbers, without a copy where possible; ``TypeError`` naming ``name`` for anything
    else (None, strings, object arrays), ``ValueError`` for ragged sequences."""
    return check_array(value, name, "biuf")


def as_tensor(value: Any, name: str) -> torch.Tensor:
    """``value`` as a tensor (a tensor unchanged, else :func:`as_array`)."""
    return value if isinstance(value, torch.Tensor) else torch.from_numpy(as_array(value, name))


def check_dtype(model: nn.Module, x: torch.Tensor) -> None:
    """``TypeError`` naming ``x`` unless it is a floating-point tensor of ``model``'s weights'
    dtype."""
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got {x.dtype}")
    dtype = floating_dtype(model)
    if dtype is not None and x.dtype != dtype:
        raise TypeError(f"x is {x.dtype} but the model's weights are {dtype}: convert the input "
                        f"(x.to({dtype})) or the model (model.to({x.dtype}))")


class Classifier(nn.Module, abc.ABC):
    """Base class: ``forward(x) = forward_head(forward_features(x))``.

    Subclasses implement :meth:`forward_features` (images -> pooled feature vectors of size
    ``num_features``), set ``self.head`` and name their stages in ``self.feature_stages``;
    distillation and compression code rely on this split.

    Attributes
    ----------
    feature_stages : names of the submodules whose outputs are the feature maps of the
        network's stages, from the input to the output (read them with
        :meth:`forward_intermediates`).
    model_spec : ``{"name", "kwargs"}`` of a model built by :func:`lightvision.create_model`
        (what :func:`lightvision.compression.load_compressed` rebuilds it from).

    Parameters
    ----------
    num_classes : number of output logits (>= 1).
    in_channels : number of input channels C of images shaped (N, C, H, W).
    min_size : smallest spatial size (H and W) the architecture accepts.
    """

    num_features: int
    head: nn.Module
    feature_stages: tuple[str, ...]

    def __init__(self, num_classes: int, in_channels: int, *, min_size: int = 1) -> None:
        super().__init__()
        self.num_classes = check_int(num_classes, "num_classes")
        self.in_channels = check_int(in_channels, "in_channels")
        self.min_size = min_size

    @property
    def in_chans(self) -> int:
        """Deprecated: ``in_channels``."""
        warnings.warn("Classifier.in_chans is deprecated; use in_channels", DeprecationWarning,
                      stacklevel=2)
        return self.in_channels

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a clear error for input that the network cannot take.

        Skipped for ``torch.fx`` proxies (a graph being traced).
        """
        if isinstance(x, torch.fx.Proxy):
            return
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim != 4:
            raise ValueError(f"x must have shape (N, C, H, W), got shape {tuple(x.shape)}")
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"x has {x.shape[1]} channels but the model expects in_channels={self.in_channels}"
            )
        if min(x.shape[-2:]) < self.min_size:
            raise ValueError(
                f"x is {x.shape[-2]}x{x.shape[-1]} pixels; the model needs at least "
                f"{self.min_size}x{self.min_size}"
            )
        check_dtype(self, x)
        check_finite(x, "x")

    @abc.abstractmethod
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Images (N, C, H, W) -> feature vectors (N, num_features)."""

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Feature vectors (N, num_features) -> logits (N, num_classes)."""
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images (N, C, H, W), float -> logits (N, num_classes)."""
        self.check_input(x)
        with input_checked():  # checked once here, not again by every block
            return self.forward_head(self.forward_features(x))

    def forward_intermediates(
        self, x: torch.Tensor, stages: Sequence[str] | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Logits and the feature maps of named stages, from one forward pass.

        Parameters
        ----------
        x : the input of :meth:`forward`.
        stages : submodule names (default ``feature_stages``: every stage, e.g. the stem and
            the three stages of a ResNet); any submodule of the model may be named.

        Returns
        -------
        ``(logits, {name: output of that submodule})``, in the order of ``stages``; the maps
        keep their autograd history, so losses on them train the network.

        >>> import torch, lightvision
        >>> net = lightvision.create_model("small_cnn")
        >>> logits, maps = net.forward_intermediates(torch.randn(2, 1, 28, 28))
        >>> list(maps), [tuple(m.shape[1:]) for m in maps.values()]
        (['features.0', 'features.2', 'features.4'], [(32, 28, 28), (64, 14, 14), (128, 7, 7)])
        """
        with capture_outputs(self, self.feature_stages if stages is None else stages) as maps:
            logits = self(x)
        return logits, maps
