"""The input check shared by the blocks of :mod:`lightvision.nn`."""

from __future__ import annotations

from typing import Any

import torch


def check_maps(x: Any, channels: int, name: str, *, min_size: int = 1) -> None:
    """Raise a clear error unless ``x`` is an (N, ``channels``, H, W) tensor with H and W at
    least ``min_size``; ``name`` names the input in the message. ``torch.fx`` proxies (a graph
    being traced) pass unchecked."""
    if isinstance(x, torch.fx.Proxy):
        return
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{name} must be a 4-D input (N, C, H, W), got shape {tuple(x.shape)}")
    if x.shape[1] != channels:
        raise ValueError(f"{name} has {x.shape[1]} channels, expected {channels} "
                         f"(input shape {tuple(x.shape)})")
    if min(x.shape[-2:]) < min_size:
        raise ValueError(f"{name} is {x.shape[-2]}x{x.shape[-1]} pixels, too small: at least "
                         f"{min_size}x{min_size} needed")
