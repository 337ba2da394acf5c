"""CIFAR-style VGG with batch norm, the main CIFAR model of the filter-pruning papers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from .._checks import check_int, check_memory, check_real, is_integer
from .._deprecation import renamed_kwargs
from ..registry import MODELS
from .base import Classifier, _stage_ends

__all__ = ["CifarVGG", "VGG16_LAYERS", "vgg16"]

#: Convolution widths of VGG-16 ("M": 2x2 max pooling), as in the CIFAR VGG of the pruning
#: papers (EPruner, FilterSketch, HRank): 13 convolutions, 5 poolings.
VGG16_LAYERS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
                512, 512, 512, "M")


def _check_layers(layers: object) -> tuple[int | str, ...]:
    """``layers`` as a tuple of ints >= 1 (numpy ints too) and ``"M"`` poolings, with at
    least one width."""
    if isinstance(layers, str | bytes) or not isinstance(layers, Sequence):
        raise TypeError(f"layers must be a sequence of widths and 'M' poolings, got "
                        f"{type(layers).__name__}")
    checked: list[int | str] = []
    for i, item in enumerate(layers):
        if isinstance(item, str) and item == "M":
            checked.append("M")
        elif is_integer(item):
            checked.append(check_int(item, f"layers[{i}]"))
        else:
            raise TypeError(f"layers[{i}] must be a width (int) or 'M', got {item!r}")
    if not any(item != "M" for item in checked):
        raise ValueError(f"layers must hold at least one width, got {layers!r}")
    return tuple(checked)


class CifarVGG(Classifier):
    """VGG with 3x3 conv-BN-ReLU layers, 2x2 max pooling, global average pooling and a linear
    classifier, for small images.

    Layout: ``layers`` (widths, ``"M"`` for a pooling; scaled by ``width`` and rounded, at
    least 1), max pooling with ``ceil_mode=True`` so that 28x28 inputs pass five poolings
    (28 -> 14 -> 7 -> 4 -> 2 -> 1) as 32x32 ones do, then global average pooling and
    ``Linear(last width, num_classes)``. VGG-16 at width 1 on 3x32x32: 14,724,042 parameters
    and 313.2 M MACs (the pruning papers' CIFAR VGG-16: 313.73 M "FLOPs", i.e. MACs, and
    14.98 M parameters with a two-layer classifier).

    Parameters
    ----------
    num_classes, in_channels : classes and input channels.
    layers : the widths and poolings (default :data:`VGG16_LAYERS`).
    width : multiplier of every width, > 0.

    References
    ----------
    K. Simonyan, A. Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
    Recognition", ICLR 2015.
    """

    @renamed_kwargs(in_chans="in_channels")
    def __init__(self, num_classes: int = 10, in_channels: int = 3, *,
                 layers: tuple[int | str, ...] = VGG16_LAYERS, width: float = 1.0) -> None:
        width = check_real(width, "width")
        layers = _check_layers(layers)
        super().__init__(num_classes, in_channels, min_size=1)
        scaled = [item if item == "M" else max(1, round(item * width)) for item in layers]
        convs = [c for c in scaled if c != "M"]
        weights = 9 * sum(a * b for a, b in zip([self.in_channels, *convs[:-1]], convs,
                                                strict=True))
        check_memory(4 * weights, f"convolutions of up to {max(convs)} channels (layers, width)")
        modules: list[nn.Module] = []
        c_in = self.in_channels
        for item in scaled:
            if item == "M":
                modules.append(nn.MaxPool2d(2, ceil_mode=True))
                continue
            c_out = item
            modules += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                        nn.ReLU(inplace=True)]
            c_in = c_out
        self.features = nn.Sequential(*modules)
        self.feature_stages = _stage_ends(self.features, "features")
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = c_in
        self.head = nn.Linear(c_in, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.features(x)).flatten(1)


@MODELS.register(
    tags={"classifier", "vgg"},
    test_params={"width": 0.0625},
    bench_params={"width": 0.25},
    input_shape=(1, 28, 28),
    dataset="fashion_mnist",
    train={"epochs": 15, "batch_size": 64, "lr": 1e-2, "weight_decay": 0.05},
)
@renamed_kwargs(in_chans="in_channels")
def vgg16(num_classes: int = 10, in_channels: int = 1, **kwargs: Any) -> CifarVGG:
    """CIFAR-style VGG-16 with batch norm (see :class:`CifarVGG`); ``width`` scales it."""
    return CifarVGG(num_classes, in_channels, **kwargs)
