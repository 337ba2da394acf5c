"""A small CNN for 28x28 grey images: the reference end-to-end model of the benchmarks."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .._checks import check_int_sequence
from .._deprecation import renamed_kwargs
from ..registry import MODELS
from .base import Classifier, check_dropout

__all__ = ["SmallCNN", "small_cnn"]


def _conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class SmallCNN(Classifier):
    """Plain VGG-style CNN: stages of 3x3 conv-BN-ReLU, 2x2 max pooling between stages,
    global average pooling and a linear classifier.

    With the default ``widths=(32, 64, 128)`` on 28x28 input: 28x28x32 -> pool -> 14x14x64
    -> pool -> 7x7x128 -> GAP -> linear; 94,186 parameters and 7.45 M MACs per image. Global
    pooling makes it accept any input size of at least 2 ** (len(widths) - 1) pixels.

    Parameters
    ----------
    num_classes : number of classes.
    in_channels : input channels (1 for grey images).
    widths : output channels of each stage (a non-empty sequence of ints >= 1); a 2x2 max
        pooling follows every stage but the last.
    dropout : dropout probability before the classifier, in [0, 1).
    """

    @renamed_kwargs(in_chans="in_channels")
    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        *,
        widths: Sequence[int] = (32, 64, 128),
        dropout: float = 0.2,
    ) -> None:
        widths = check_int_sequence(widths, "widths")
        dropout = check_dropout(dropout)
        super().__init__(num_classes, in_channels, min_size=2 ** (len(widths) - 1))
        layers: list[nn.Module] = []
        c_in = self.in_channels
        for i, width in enumerate(widths):
            if i:
                layers.append(nn.MaxPool2d(2))
            layers.append(_conv_bn_relu(c_in, width))
            c_in = width
        self.features = nn.Sequential(*layers)
        self.feature_stages = tuple(f"features.{2 * i}" for i in range(len(widths)))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = c_in
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(c_in, num_classes))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.features(x)).flatten(1)


@MODELS.register(
    tags={"classifier", "reference"},
    test_params={"widths": (4, 8)},
    bench_params={},
    input_shape=(1, 28, 28),
    dataset="fashion_mnist",
    train={"epochs": 15, "batch_size": 64, "lr": 1e-2, "weight_decay": 0.05},
)
@renamed_kwargs(in_chans="in_channels")
def small_cnn(num_classes: int = 10, in_channels: int = 1, **kwargs) -> SmallCNN:
    """The reference small CNN (see :class:`SmallCNN`) for 28x28 grey images."""
    return SmallCNN(num_classes, in_channels, **kwargs)
