"""The small CNN of the Bag-of-Features pooling paper with three pooling heads (seed #24).

The paper compares, at (about) equal parameter count, a CNN whose last feature maps are pooled
by bag-of-features pooling (BoF), by global max pooling (GMP) or by spatial pyramid pooling
(SPP), and tests robustness to a smaller input (0.8x scale). :class:`PoolingHeadCNN` builds the
three networks; the GMP and SPP networks widen their last convolution until their parameter
count matches the BoF network's, which is how the authors' comparison table matches them
(``passalis/keras_cbof`` README: BoF with 32 filters and 64 codewords, 50,090 parameters, vs
GMP with 64 filters, 57,226).

>>> import lightvision
>>> models = [lightvision.create_model(n) for n in ("bof_cnn", "gmp_cnn", "spp_cnn")]
>>> [m.last_width for m in models]
[32, 127, 57]
>>> [m.param_counts()["total"] for m in models]
[54762, 54856, 54780]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from .._checks import check_int, check_int_sequence
from .._deprecation import renamed_kwargs
from ..nn import BoFPooling
from ..registry import MODELS
from .base import Classifier, _stage_ends, check_dropout
from .resnet import _initialize_bof

__all__ = ["PoolingHeadCNN", "bof_cnn", "gmp_cnn", "head_param_counts", "spp_cnn"]

_HEADS = ("bof", "gmp", "spp")


def _check_levels(levels: Sequence[int]) -> tuple[int, ...]:
    return check_int_sequence(levels, "spp_levels")


def head_param_counts(
    head: str,
    *,
    in_channels: int = 1,
    widths: tuple[int, int] = (32, 32),
    n_codewords: int = 64,
    bof_spatial_level: int = 1,
    spp_levels: Sequence[int] = (1, 2),
    hidden: int = 128,
    num_classes: int = 10,
) -> dict[str, int]:
    """Trainable parameters of a :class:`PoolingHeadCNN` by part, from the layer formulas.

    ``widths`` are the actual conv widths (c1, c2). Returns ``{"features", "pooling",
    "classifier", "total"}``: convolutions without bias + BN (2 per channel), the pooling
    (BoF: ``n_codewords * (c2 + 1)`` codewords and widths, plus 2 per histogram value for the
    batch norm on the histogram; GMP, SPP: none), and the classifier
    (``D * hidden + hidden + hidden * classes + classes``, D the pooled size).

    The Keras README's GMP-64f network (widths (32, 64), 512 hidden units) has 57,226
    parameters with conv biases and no BN; here, with BN instead of biases:

    >>> head_param_counts("gmp", widths=(32, 64), hidden=512)["total"]
    57322
    """
    c1, c2 = widths
    features = in_channels * 9 * c1 + 2 * c1 + c1 * 9 * c2 + 2 * c2
    if head == "bof":
        pooled = n_codewords * (5 if bof_spatial_level == 1 else 1)
        pooling = n_codewords * (c2 + 1) + 2 * pooled
    elif head == "gmp":
        pooling, pooled = 0, c2
    elif head == "spp":
        pooling, pooled = 0, c2 * sum(level * level for level in _check_levels(spp_levels))
    else:
        raise ValueError(f"head must be one of {_HEADS}, got {head!r}")
    if hidden:
        classifier = pooled * hidden + hidden + hidden * num_classes + num_classes
    else:
        classifier = pooled * num_classes + num_classes
    total = features + pooling + classifier
    return {"features": features, "pooling": pooling, "classifier": classifier, "total": total}


class _SPP(nn.Module):
    """Spatial pyramid max pooling: an l x l grid of maxima per level, concatenated."""

    def __init__(self, levels: tuple[int, ...]) -> None:
        super().__init__()
        self.levels = levels
        self.pools = nn.ModuleList(nn.AdaptiveMaxPool2d(level) for level in levels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([pool(x).flatten(1) for pool in self.pools], dim=1)


class PoolingHeadCNN(Classifier):
    """Small CNN with a BoF, global-max or spatial-pyramid pooling head at equal size (#24).

    Layout (the paper's MNIST CNN, ``passalis/keras_cbof`` ``example.py``): conv3x3(c1)-BN-ReLU
    -> 2x2 max pooling -> conv3x3(c2)-BN-ReLU -> pooling head -> Linear(hidden)-ELU-Dropout ->
    Linear(classes). BN is added to the authors' plain convolutions to make short CPU runs
    stable ([INTERP]); ``hidden`` is 512 in their Keras example and 1000 in their paper code,
    128 here for CPU-sized Fashion-MNIST runs (``hidden=0``: one linear layer).

    Heads:

    * ``"bof"``: :class:`~lightvision.nn.BoFPooling` (``n_codewords``, ``bof_spatial_level``;
      default 64 codewords at spatial level 1, a global and four quadrant histograms, the
      paper's CBoF(64, 1) MNIST network) on the c2 = ``widths[1]`` maps, then a batch norm of
      the histogram (**[INTERP]**: the histogram's entries average 1 / n_codewords, which made
      the classifier learn slowly: 42 % Fashion-MNIST error after 6 epochs without it at
      spatial level 0; the author's Keras port multiplies the histogram by n_codewords for
      the same reason, which gave 16.4 % / 14.7 % after 15 epochs (seeds 0 / 1) against
      15.1 % / 13.25 % with the batch norm, and was less robust at 0.8x scale; README).
    * ``"gmp"``: global max pooling; pooled size c2.
    * ``"spp"``: spatial pyramid max pooling with ``spp_levels`` (default (1, 2): 5 c2
      values). Adding level 4 (21 c2 values) leaves only 7 channels at the default size, so it
      is not the default.

    Equal parameters: with ``match_params=True`` (default) the GMP and SPP networks get the
    last conv width c2' that brings their total trainable parameters closest to the BoF network
    with the same ``widths``, ``n_codewords`` and classifier (the paper's approach: a wider last
    convolution, see the module docstring). :meth:`param_counts` gives the parts;
    :func:`head_param_counts` the formulas. At the defaults: BoF 54,762 (c2 = 32), GMP 54,856
    (c2' = 127), SPP 54,780 (c2' = 57), all within 0.2 % of each other. The match is only as
    fine as one channel of c2', which costs about 9 c1 + (pooled values per channel) x hidden
    parameters: with ``spp_levels=(1, 2, 4)`` that is 21 x hidden per channel, too coarse for
    small networks (e.g. widths (16, 32) with 128 hidden units miss by 5 %).

    Any input of at least ``min_size`` pixels (2, or 4 with ``bof_spatial_level=1``) works,
    e.g. 22x22 images for the paper's 0.8x-scale test of a network trained on 28x28.
    Call :meth:`initialize_bof` on training images before training a BoF network (k-means
    codebook, as the paper).

    Parameters
    ----------
    num_classes, in_channels : number of classes; input channels.
    head : ``"bof"``, ``"gmp"`` or ``"spp"``.
    widths : (c1, c2), the conv widths of the BoF reference network.
    n_codewords, bof_spatial_level : BoF settings (also define the parameter target).
    spp_levels : pyramid levels of the SPP head.
    hidden : hidden units of the classifier (0: none).
    dropout : dropout before the last linear layer.
    match_params : choose the GMP/SPP last width to match the BoF network (else use c2).

    References
    ----------
    Passalis N, Tefas A. Training Lightweight Deep Convolutional Neural Networks Using
    Bag-of-Features Pooling. IEEE Transactions on Neural Networks and Learning Systems 2019;
    30:1705-1715 (seed #24). doi:10.1109/tnnls.2018.2872995
    K. He, X. Zhang, S. Ren, J. Sun, "Spatial Pyramid Pooling in Deep Convolutional Networks
    for Visual Recognition", ECCV 2014 (SPP).

    Examples
    --------
    >>> import torch
    >>> net = PoolingHeadCNN(10, 1, head="bof")
    >>> net(torch.randn(2, 1, 22, 22)).shape  # 0.8x of 28x28
    torch.Size([2, 10])
    """

    @renamed_kwargs(in_chans="in_channels")
    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        *,
        head: str = "bof",
        widths: Sequence[int] = (32, 32),
        n_codewords: int = 64,
        bof_spatial_level: int = 1,
        spp_levels: Sequence[int] = (1, 2),
        hidden: int = 128,
        dropout: float = 0.2,
        match_params: bool = True,
    ) -> None:
        if head not in _HEADS:
            raise ValueError(f"head must be one of {_HEADS}, got {head!r}")
        widths = check_int_sequence(widths, "widths")
        if len(widths) != 2:
            raise ValueError(f"widths must be (c1, c2), got {widths!r}")
        c1, c2 = widths
        n_codewords = check_int(n_codewords, "n_codewords")
        if check_int(bof_spatial_level, "bof_spatial_level", 0) not in (0, 1):
            raise ValueError(f"bof_spatial_level must be 0 or 1, got {bof_spatial_level!r}")
        levels = _check_levels(spp_levels)
        hidden = check_int(hidden, "hidden", 0)
        dropout = check_dropout(dropout)
        super().__init__(num_classes, in_channels, min_size=4 if bof_spatial_level else 2)
        self.head_kind = head
        counts = {"in_channels": in_channels, "n_codewords": n_codewords, "hidden": hidden,
                  "bof_spatial_level": bof_spatial_level, "spp_levels": levels,
                  "num_classes": num_classes}
        self.target_params = head_param_counts("bof", widths=(c1, c2), **counts)["total"]
        if head != "bof" and match_params:
            c2 = min(range(1, 16 * c2 + 16), key=lambda f: abs(
                head_param_counts(head, widths=(c1, f), **counts)["total"] - self.target_params))
        self.last_width = c2
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, padding=1, bias=False), nn.BatchNorm2d(c1),
            nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1, bias=False), nn.BatchNorm2d(c2),
            nn.ReLU(inplace=True),
        )
        self.feature_stages = _stage_ends(self.features, "features")
        if head == "bof":
            self.pool: nn.Module = BoFPooling(c2, n_codewords=n_codewords,
                                              spatial_level=bof_spatial_level)
            self.num_features = self.pool.out_features
            self.histogram_norm: nn.Module = nn.BatchNorm1d(self.num_features)
        elif head == "gmp":
            self.pool = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(1))
            self.num_features = c2
        else:
            self.pool = _SPP(levels)
            self.num_features = c2 * sum(level * level for level in levels)
        if head != "bof":
            self.histogram_norm = nn.Identity()
        if hidden:
            self.head = nn.Sequential(
                nn.Linear(self.num_features, hidden), nn.ELU(inplace=True), nn.Dropout(dropout),
                nn.Linear(hidden, num_classes),
            )
        else:
            self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.num_features,
                                                                     num_classes))

    def feature_maps(self, x: torch.Tensor) -> torch.Tensor:
        """Images (N, C, H, W) -> last conv maps (N, last_width, floor(H/2), floor(W/2))."""
        return self.features(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.histogram_norm(self.pool(self.features(x)))

    def param_counts(self) -> dict[str, int]:
        """Trainable parameters by part: ``{"features", "pooling", "classifier", "total"}``."""
        parts = {
            name: sum(p.numel() for p in module.parameters() if p.requires_grad)
            for name, module in (("features", self.features),
                                 ("pooling", nn.ModuleList([self.pool, self.histogram_norm])),
                                 ("classifier", self.head))
        }
        parts["total"] = sum(parts.values())
        return parts

    @torch.no_grad()
    def initialize_bof(self, images: torch.Tensor, **kwargs: Any) -> PoolingHeadCNN:
        """Initialise the BoF codebook by k-means on the conv maps of ``images`` (kwargs go to
        :meth:`lightvision.nn.BoFPooling.initialize_codewords`). Needs ``head="bof"``."""
        return _initialize_bof(self, images, **kwargs)


_TRAIN = {"epochs": 15, "batch_size": 64, "lr": 1e-2, "weight_decay": 0.01}
_TEST = {"widths": (4, 4), "n_codewords": 4, "hidden": 8}


def _register(tags: set[str]) -> Any:
    return MODELS.register(
        tags={"classifier", "pooling", *tags},
        test_params=_TEST,
        bench_params={},
        input_shape=(1, 28, 28),
        dataset="fashion_mnist",
        train=_TRAIN,
    )


@_register({"bof"})
@renamed_kwargs(in_chans="in_channels")
def bof_cnn(num_classes: int = 10, in_channels: int = 1, **kwargs: Any) -> PoolingHeadCNN:
    """The BoF paper's small CNN with bag-of-features pooling (see :class:`PoolingHeadCNN`)."""
    return PoolingHeadCNN(num_classes, in_channels, head="bof", **kwargs)


@_register(set())
@renamed_kwargs(in_chans="in_channels")
def gmp_cnn(num_classes: int = 10, in_channels: int = 1, **kwargs: Any) -> PoolingHeadCNN:
    """The same CNN with global max pooling, last conv widened to the BoF network's size."""
    return PoolingHeadCNN(num_classes, in_channels, head="gmp", **kwargs)


@_register(set())
@renamed_kwargs(in_chans="in_channels")
def spp_cnn(num_classes: int = 10, in_channels: int = 1, **kwargs: Any) -> PoolingHeadCNN:
    """The same CNN with spatial pyramid pooling (levels 1, 2), matched to the BoF size."""
    return PoolingHeadCNN(num_classes, in_channels, head="spp", **kwargs)
