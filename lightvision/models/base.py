"""The uniform surface shared by every classifier in lightvision."""

from __future__ import annotations

import abc

import torch
from torch import nn

__all__ = ["Classifier"]


class Classifier(nn.Module, abc.ABC):
    """Base class: ``forward(x) = forward_head(forward_features(x))``.

    Subclasses implement :meth:`forward_features` (images -> pooled feature vectors of size
    ``num_features``) and set ``self.head``; distillation and compression code rely on this
    split.

    Parameters
    ----------
    num_classes : number of output logits (>= 1).
    in_chans : number of input channels C of images shaped (N, C, H, W).
    min_size : smallest spatial size (H and W) the architecture accepts.
    """

    num_features: int
    head: nn.Module

    def __init__(self, num_classes: int, in_chans: int, *, min_size: int = 1) -> None:
        super().__init__()
        for arg, value in (("num_classes", num_classes), ("in_chans", in_chans)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{arg} must be a positive int, got {value!r}")
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.min_size = min_size

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a clear error for input that the network cannot take.

        Skipped for non-tensors (e.g. ``torch.fx`` proxies while a graph is traced).
        """
        if not isinstance(x, torch.Tensor):
            return
        if x.ndim != 4:
            raise ValueError(f"x must have shape (N, C, H, W), got shape {tuple(x.shape)}")
        if x.shape[1] != self.in_chans:
            raise ValueError(
                f"x has {x.shape[1]} channels but the model expects in_chans={self.in_chans}"
            )
        if min(x.shape[-2:]) < self.min_size:
            raise ValueError(
                f"x is {x.shape[-2]}x{x.shape[-1]} pixels; the model needs at least "
                f"{self.min_size}x{self.min_size}"
            )
        if not x.is_floating_point():
            raise TypeError(f"x must be a floating-point tensor, got {x.dtype}")

    @abc.abstractmethod
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Images (N, C, H, W) -> feature vectors (N, num_features)."""

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Feature vectors (N, num_features) -> logits (N, num_classes)."""
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images (N, C, H, W), float -> logits (N, num_classes)."""
        self.check_input(x)
        return self.forward_head(self.forward_features(x))
