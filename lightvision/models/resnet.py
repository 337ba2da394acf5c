"""CIFAR-style ResNets (He et al. 2016) with the lightweight blocks of lightvision.nn.

One class, :class:`CifarResNet`, builds the 3-stage ResNets of He et al.'s CIFAR-10
experiments (ResNet-20/32/56 with basic blocks, depth 6n + 2; the bottleneck form of depth
9n + 2, e.g. ResNet-29/164) and swaps in, block for block, the Inner-Imaging block (seed #8),
the encoder-decoder path (seed #10) or the local binary residual block (seed #16), and, at the
top, bag-of-features pooling instead of global average pooling (seed #24). The variants thus
differ from the plain network only by the method under study.

>>> import torch
>>> import lightvision
>>> model = lightvision.create_model("resnet20", num_classes=10)
>>> model(torch.randn(2, 1, 28, 28)).shape
torch.Size([2, 10])
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .._checks import check_int, check_memory, check_real
from .._deprecation import renamed_kwargs
from ..nn import (
    BoFPooling,
    EDBlock,
    EDBottleneck,
    InnerImaging,
    InnerImagingBlock,
    LocalBinaryBasicBlock,
    LocalBinaryResidualBlock,
)
from ..registry import MODELS
from .base import Classifier

__all__ = [
    "CifarResNet",
    "ini_fold_group",
    "resnet20",
    "resnet20_bof",
    "resnet20_ed",
    "resnet20_ini",
    "resnet20_lbb",
    "resnet29_bottleneck",
    "resnet29_lbb",
]

_BLOCKS = ("basic", "bottleneck")
_VARIANTS = ("plain", "ini", "ed", "lbb")
_HEADS = ("gap", "bof")
_SHORTCUTS = ("projection", "pad")
_BASE_WIDTHS = (16, 32, 64)
_ED_PAPER_GROUPS = 32
_INI_PAPER_GROUP = 16


def ini_fold_group(channels: int, *, view: str = "pair", kernel_size: int = 3) -> int:
    """Automatic fold group k of the Inner-Imaging pseudo-image for ``channels`` channels.

    The largest divisor k of ``channels`` with k <= 16 (the authors' k for ResNets) such that
    the pseudo-image, (2C/k) x k in the pair view or (C/k) x k in the single view, is at least
    ``kernel_size`` in both directions ([INTERP]: the paper's k = 16 would leave a 2 x 16 image
    for the 16-channel first stage of a CIFAR ResNet, smaller than the 3x3 lens).

    >>> [ini_fold_group(c) for c in (8, 16, 32, 64, 256)]
    [4, 8, 16, 16, 16]
    """
    channels = check_int(channels, "channels")
    kernel_size = check_int(kernel_size, "kernel_size")
    if view not in ("pair", "single"):
        raise ValueError(f"view must be 'pair' or 'single', got {view!r}")
    rows_per_fold = 2 if view == "pair" else 1
    for k in range(min(_INI_PAPER_GROUP, channels), 0, -1):
        if channels % k == 0 and k >= kernel_size and rows_per_fold * channels // k >= kernel_size:
            return k
    raise ValueError(
        f"no fold group k gives a {view}-view pseudo-image of {channels} channels at least "
        f"{kernel_size} x {kernel_size}; use a larger width or a smaller ini_kernel_size"
    )


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
    )


class _PadShortcut(nn.Module):
    """He et al.'s CIFAR option A: subsample by the stride and zero-pad the new channels."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.extra = out_channels - in_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return nn.functional.pad(x, (0, 0, 0, 0, 0, self.extra))


def _shortcut(c_in: int, c_out: int, stride: int, kind: str) -> nn.Module:
    if stride == 1 and c_in == c_out:
        return nn.Identity()
    if kind == "pad":
        return _PadShortcut(c_in, c_out, stride)
    return _conv_bn(c_in, c_out, 1, stride)


class _BasicBlock(nn.Module):
    """He et al.'s basic block: conv3x3(stride)-BN-ReLU-conv3x3-BN, + shortcut, ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int, shortcut: str) -> None:
        super().__init__()
        self.residual = nn.Sequential(
            _conv_bn(c_in, c_out, 3, stride), nn.ReLU(inplace=True), _conv_bn(c_out, c_out, 3)
        )
        self.shortcut = _shortcut(c_in, c_out, stride, shortcut)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.residual(x) + self.shortcut(x))


class _Bottleneck(nn.Module):
    """He et al.'s bottleneck conv1x1-BN-ReLU-conv3x3(stride)-BN-ReLU-conv1x1-BN (width w,
    output ``expansion * w``) + projection shortcut, ReLU; optionally with Inner-Imaging
    recalibration of the residual (``ini``, the form of the authors' code)."""

    def __init__(
        self, c_in: int, width: int, stride: int, expansion: int, ini: dict[str, Any] | None
    ) -> None:
        super().__init__()
        c_out = expansion * width
        self.residual = nn.Sequential(
            _conv_bn(c_in, width, 1), nn.ReLU(inplace=True),
            _conv_bn(width, width, 3, stride), nn.ReLU(inplace=True),
            _conv_bn(width, c_out, 1),
        )
        self.shortcut = _shortcut(c_in, c_out, stride, "projection")
        self.ini = None if ini is None else InnerImaging(c_out, **ini)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.shortcut(x)
        residual = self.residual(x)
        if self.ini is not None:
            pair = self.ini.view == "pair"
            residual = self.ini(residual, shortcut) if pair else self.ini(residual)
        return torch.relu(residual + shortcut)


class CifarResNet(Classifier):
    """The CIFAR ResNet of He et al. (2016), with optional lightweight blocks and BoF pooling.

    Layout: a 3x3 convolution to ``round(16 * width)`` channels + BN + ReLU; three stages of
    n blocks each, inner widths ``round((16, 32, 64) * width)``, strides 1, 2, 2 (on the first
    block of a stage); global average pooling (or BoF pooling); one linear layer. Basic blocks
    (two 3x3 convolutions, output = width) give depth 6n + 2 (ResNet-20: n = 3); bottlenecks
    (1x1, 3x3, 1x1, output = ``expansion`` x width) give 9n + 2 (ResNet-29: n = 3).
    Post-activation blocks as in the 2016 paper; every 3x3 convolution has padding 1, so any
    input of at least 1 x 1 pixel works (the feature maps are ceil(H / 4) x ceil(W / 4) after
    the last stage; ``min_size = 1``). Convolutions are initialised with He (Kaiming) normal
    weights, fan-out mode, as torchvision.

    Shortcuts: identity, or where the shape changes a 1x1 convolution + BN (projection,
    "option B"), which is what the variant blocks of :mod:`lightvision.nn` use, so that the
    plain network and its variants differ only by the method. He et al.'s CIFAR networks used
    "option A" (subsample + zero-padded channels, no parameters); ``shortcut="pad"`` gives it
    for the plain basic-block network: ResNet-20 (3 input channels, 10 classes) then has the
    well-known 0.27 M parameters, 269,722 exactly (272,474 with projections).

    Variants (``variant``):

    * ``"plain"``: He et al.'s blocks.
    * ``"ini"`` (seed #8): basic blocks become :class:`~lightvision.nn.InnerImagingBlock`;
      bottlenecks get :class:`~lightvision.nn.InnerImaging` recalibration of the residual
      before the addition, as in the authors' code. The fold group is ``ini_group`` or, by
      default, :func:`ini_fold_group` per block ([INTERP], the paper's k = 16 does not fit 16
      channels).
    * ``"ed"`` (seed #10): :class:`~lightvision.nn.EDBlock` / :class:`~lightvision.nn.EDBottleneck`
      (``ed_width_ratio`` = fraction of the branch's inner channels removed, 0 = the paper's
      main ED-ResNets, 0.5 = "-B"). The ED convolutions' groups are ``ed_groups`` or, by
      default, the largest common divisor of the paper's 32 and the path's two widths
      ([INTERP]: 32 groups need 32 | width, false for CIFAR widths 16 and 8).
    * ``"lbb"`` (seed #16): every 3x3 convolution of the blocks becomes a fixed ternary
      convolution + ReLU + learnable 1x1: bottlenecks become
      :class:`~lightvision.nn.LocalBinaryResidualBlock`, basic blocks
      :class:`~lightvision.nn.LocalBinaryBasicBlock` (``lbb_density``: fraction of non-zero
      ternary weights, default 0.5 [INTERP]; ``lbb_maps_ratio``: binary maps m per unit of
      the block's inner width, default 1 [INTERP]). The stem stays a real 3x3 convolution.
      A bottleneck of expansion e loses at most 9 / (2e + 9) of its trainable weights: 52.9 %
      at He et al.'s e = 4 (the default here, shared with the plain network), 69.2 % (the
      paper's "at least 69.2 %") at ``expansion=2``, the LBB block's own default.

    Heads (``head``): ``"gap"`` (global average pooling, He et al.) or ``"bof"``
    (:class:`~lightvision.nn.BoFPooling` with ``n_codewords`` codewords and
    ``bof_spatial_level``, seed #24, then a batch norm of the histogram, **[INTERP]** as in
    :class:`~lightvision.models.PoolingHeadCNN`: without it ``resnet20_bof`` trained to 62 %
    Fashion-MNIST error in the quick benchmark), each followed by a linear classifier. Call
    :meth:`initialize_bof` on training images before training, as the BoF paper does.

    Parameters
    ----------
    num_classes, in_channels : number of classes; input channels (1: Fashion-MNIST, 3: CIFAR).
    depth : 6n + 2 (basic) or 9n + 2 (bottleneck), n >= 1.
    width : multiplier of the stage widths (16, 32, 64), > 0.
    block : ``"basic"`` or ``"bottleneck"``.
    variant : ``"plain"``, ``"ini"``, ``"ed"`` or ``"lbb"``.
    head : ``"gap"`` or ``"bof"``.
    expansion : bottleneck output / inner width (4 as He et al.; 2 is the hourglass form).
    shortcut : ``"projection"`` or ``"pad"`` (plain basic blocks only).
    n_codewords, bof_spatial_level : BoF head settings.
    ini_view, ini_group, ini_kernel_size, ini_reduction : Inner-Imaging settings
        (``ini_group=None``: automatic, see above).
    ed_width_ratio, ed_groups : ED settings (``ed_groups=None``: automatic).
    lbb_density, lbb_maps_ratio : LBB settings.

    Shapes
    ------
    (N, in_channels, H, W), H, W >= 1 -> (N, num_classes).

    References
    ----------
    K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image Recognition", IEEE CVPR
    2016 (CIFAR-10 networks, section 4.2).
    Hu Y, Wen G, Luo M, Dai D, Cao W, Yu Z, Hall W. Inner-Imaging Networks: Put Lenses Into
    Convolutional Structure. IEEE Transactions on Cybernetics 2022; 52:8547-8560 (seed #8).
    Jin X, Xie Y, Wei XS, Zhao BR, Zhang Y, Tan X, Yu Y. A Lightweight Encoder-Decoder Path for
    Deep Residual Networks. IEEE TNNLS 2022; 33:866-878 (seed #10).
    Liu X, Li L, Wang S, Zha ZJ, Huang Q. Local-binarized very deep residual network for visual
    categorization. Neurocomputing 2021; 430:82-93 (seed #16).
    Passalis N, Tefas A. Training Lightweight Deep Convolutional Neural Networks Using
    Bag-of-Features Pooling. IEEE TNNLS 2019; 30:1705-1715 (seed #24).

    Examples
    --------
    >>> import torch
    >>> net = CifarResNet(10, 3, depth=20, shortcut="pad")
    >>> sum(p.numel() for p in net.parameters())
    269722
    >>> lbb = CifarResNet(10, 1, depth=11, width=0.5, block="bottleneck", variant="lbb")
    >>> lbb(torch.randn(2, 1, 27, 22)).shape
    torch.Size([2, 10])
    """

    @renamed_kwargs(in_chans="in_channels")
    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        *,
        depth: int = 20,
        width: float = 1.0,
        block: str = "basic",
        variant: str = "plain",
        head: str = "gap",
        expansion: int = 4,
        shortcut: str = "projection",
        n_codewords: int = 64,
        bof_spatial_level: int = 0,
        ini_view: str = "pair",
        ini_group: int | None = None,
        ini_kernel_size: int = 3,
        ini_reduction: int = 16,
        ed_width_ratio: float = 0.0,
        ed_groups: int | None = None,
        lbb_density: float = 0.5,
        lbb_maps_ratio: float = 1.0,
    ) -> None:
        super().__init__(num_classes, in_channels, min_size=1)
        for name, value, allowed in (("block", block, _BLOCKS), ("variant", variant, _VARIANTS),
                                     ("head", head, _HEADS), ("shortcut", shortcut, _SHORTCUTS)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        if shortcut == "pad" and (block, variant) != ("basic", "plain"):
            raise ValueError(
                "shortcut='pad' (He et al.'s option A) is only offered for the plain basic-block "
                "network; the variant blocks and bottlenecks use projection shortcuts"
            )
        check_int(depth, "depth", 3)
        per_block = 2 if block == "basic" else 3
        if (depth - 2) % (3 * per_block):
            form = "6n + 2" if block == "basic" else "9n + 2"
            raise ValueError(f"depth of a {block}-block CIFAR ResNet must be {form}, got {depth}")
        width = check_real(width, "width")
        self.expansion = check_int(expansion, "expansion")
        self.depth, self.width, self.block = depth, width, block
        self.variant, self.head_kind = variant, head
        n = (depth - 2) // (3 * per_block)
        widths = [max(1, round(base * width)) for base in _BASE_WIDTHS]
        c_last = widths[-1] * (1 if block == "basic" else self.expansion)
        check_memory(4 * 9 * widths[-1] * c_last,  # the last stage's 3x3 weights, float32
                     f"last-stage convolutions of {widths[-1]} x {c_last} channels (width, "
                     "expansion)")
        self.stage_widths = tuple(widths)
        if ini_view not in ("pair", "single"):
            raise ValueError(f"ini_view must be 'pair' or 'single', got {ini_view!r}")
        ini_kernel_size = check_int(ini_kernel_size, "ini_kernel_size")
        ini_reduction = check_int(ini_reduction, "ini_reduction")
        ini_kw = {"view": ini_view, "kernel_size": ini_kernel_size, "reduction": ini_reduction}
        lbb_density = check_real(lbb_density, "lbb_density")
        lbb_maps_ratio = check_real(lbb_maps_ratio, "lbb_maps_ratio")
        ini_group = None if ini_group is None else check_int(ini_group, "ini_group")
        ed_groups = None if ed_groups is None else check_int(ed_groups, "ed_groups")
        if check_real(ed_width_ratio, "ed_width_ratio", 0.0, strict=False) >= 1.0:
            raise ValueError(f"ed_width_ratio must be in [0, 1), got {ed_width_ratio}")
        check_int(n_codewords, "n_codewords")
        if check_int(bof_spatial_level, "bof_spatial_level", 0) > 1:
            raise ValueError(f"bof_spatial_level must be 0 or 1, got {bof_spatial_level}")

        self.stem = nn.Sequential(_conv_bn(in_channels, widths[0], 3), nn.ReLU(inplace=True))
        stages: list[nn.Module] = []
        c_in = widths[0]
        for s, w in enumerate(widths):
            blocks: list[nn.Module] = []
            for i in range(n):
                stride = 2 if s > 0 and i == 0 else 1
                c_out = w if block == "basic" else self.expansion * w
                group = (ini_group or ini_fold_group(c_out, view=ini_view,
                                                     kernel_size=ini_kernel_size)
                         if variant == "ini" else 0)
                if block == "basic":
                    if variant == "plain":
                        m: nn.Module = _BasicBlock(c_in, w, stride, shortcut)
                    elif variant == "ini":
                        m = InnerImagingBlock(c_in, w, stride=stride, group=group, **ini_kw)
                    elif variant == "lbb":
                        m = LocalBinaryBasicBlock(
                            c_in, w, num_maps=max(1, round(lbb_maps_ratio * w)), stride=stride,
                            density=lbb_density,
                        )
                    else:  # ed
                        mid = max(1, w // 4)
                        m = EDBlock(c_in, w, stride=stride, width_ratio=ed_width_ratio,
                                    groups=ed_groups or math.gcd(_ED_PAPER_GROUPS, w, mid))
                elif variant in ("plain", "ini"):
                    ini = {"group": group, **ini_kw} if variant == "ini" else None
                    m = _Bottleneck(c_in, w, stride, self.expansion, ini)
                elif variant == "ed":
                    m = EDBottleneck(c_in, w, stride=stride, expansion=self.expansion,
                                     width_ratio=ed_width_ratio,
                                     groups=ed_groups or math.gcd(_ED_PAPER_GROUPS, w, c_out))
                else:  # lbb
                    m = LocalBinaryResidualBlock(
                        c_in, c_out, width=w, num_maps=max(1, round(lbb_maps_ratio * w)),
                        stride=stride, density=lbb_density,
                    )
                blocks.append(m)
                c_in = c_out
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.feature_stages = ("stem", "stages.0", "stages.1", "stages.2")
        if head == "gap":
            self.pool: nn.Module = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
            self.num_features = c_in
            self.histogram_norm: nn.Module = nn.Identity()
        else:
            self.pool = BoFPooling(c_in, n_codewords=n_codewords, spatial_level=bof_spatial_level)
            self.num_features = self.pool.out_features
            self.histogram_norm = nn.BatchNorm1d(self.num_features)  # as PoolingHeadCNN's
        self.head = nn.Linear(self.num_features, num_classes)
        for module in self.modules():
            if type(module) is nn.Conv2d:
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def feature_maps(self, x: torch.Tensor) -> torch.Tensor:
        """Images (N, C, H, W) -> last-stage feature maps (N, C', ceil(H/4), ceil(W/4))."""
        return self.stages(self.stem(x))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.histogram_norm(self.pool(self.feature_maps(x)))

    @torch.no_grad()
    def initialize_bof(self, images: torch.Tensor, **kwargs: Any) -> CifarResNet:
        """Initialise the BoF codebook by k-means on the feature maps of ``images`` (the
        paper's initialisation; ``kwargs`` go to
        :meth:`lightvision.nn.BoFPooling.initialize_codewords`). Needs ``head="bof"``."""
        return _initialize_bof(self, images, **kwargs)

    def extra_repr(self) -> str:
        return (
            f"depth={self.depth}, width={self.width:g}, block={self.block!r}, "
            f"variant={self.variant!r}, head={self.head_kind!r}"
        )


def _initialize_bof(model: Any, images: torch.Tensor, **kwargs: Any) -> Any:
    if not isinstance(model.pool, BoFPooling):
        raise ValueError("initialize_bof needs a model built with head='bof'")
    model.check_input(images)
    was_training = model.training
    model.eval()
    try:
        model.pool.initialize_codewords(model.feature_maps(images), **kwargs)
    finally:
        model.train(was_training)
    return model


_TRAIN = {"epochs": 15, "batch_size": 128, "lr": 2e-3, "weight_decay": 0.05}
_BASIC_TEST = {"depth": 8, "width": 0.5}
_BOTTLENECK_TEST = {"depth": 11, "width": 0.5}
_BENCH = {"width": 0.5}


def _register(test_params: dict[str, Any], tags: set[str]) -> Any:
    return MODELS.register(
        tags={"classifier", "resnet", *tags},
        test_params=test_params,
        bench_params=_BENCH,
        input_shape=(1, 28, 28),
        dataset="fashion_mnist",
        train=_TRAIN,
    )


@_register(_BASIC_TEST, set())
@renamed_kwargs(in_chans="in_channels")
def resnet20(num_classes: int = 10, in_channels: int = 1, **kwargs: Any) -> CifarResNet:
    """ResNet-20 (He et al. 2016), basic blocks, global average pooling."""
    kwargs.setdefault("depth", 20)
    return CifarResNet(num_classes, in_channels, **kwargs)


@_register({**_BASIC_TEST, "ini_reduction": 2}, {"attention"})
@renamed_kwargs(in_chans="in_channels")
def resnet20_ini(num_classes: int = 10, in_channels: int = 1, **kwargs: Any) -> CifarResNet:
    """ResNet-20 with Inner-Imaging basic blocks (seed #8)."""
    kwargs.setdefault("depth", 20)
    return CifarResNet(num_classes, in_channels, variant="ini", **kwargs)


@_register(_BASIC_TEST, set())
@renamed_kwargs(in_chans="in_channels")
def resnet20_ed(num_classes: int = 10, in_channels: int = 1, **kwargs: Any) -> CifarResNet:
    """ResNet-20 with the encoder-decoder path in every block (seed #10)."""
    kwargs.setdefault("depth", 20)
    return CifarResNet(num_classes, in_channels, variant="ed", **kwargs)


@_register(_BASIC_TEST, {"binary"})
@renamed_kwargs(in_chans="in_channels")
def resnet20_lbb(num_classes: int = 10, in_channels: int = 1, **kwargs: Any) -> CifarResNet:
    """ResNet-20 whose basic blocks are local binary basic blocks (seed #16)."""
    kwargs.setdefault("depth", 20)
    return CifarResNet(num_classes, in_channels, variant="lbb", **kwargs)


@_register(_BOTTLENECK_TEST, set())
@renamed_kwargs(in_chans="in_channels")
def resnet29_bottleneck(num_classes: int = 10, in_channels: int = 1, **kwargs: Any) -> CifarResNet:
    """ResNet-29 with bottlenecks (9n + 2, n = 3; outputs 64/128/256 at width 1)."""
    kwargs.setdefault("depth", 29)
    return CifarResNet(num_classes, in_channels, block="bottleneck", **kwargs)


@_register(_BOTTLENECK_TEST, {"binary"})
@renamed_kwargs(in_chans="in_channels")
def resnet29_lbb(num_classes: int = 10, in_channels: int = 1, **kwargs: Any) -> CifarResNet:
    """ResNet-29 whose bottlenecks are local binary residual blocks (seed #16)."""
    kwargs.setdefault("depth", 29)
    return CifarResNet(num_classes, in_channels, block="bottleneck", variant="lbb", **kwargs)


@_register({**_BASIC_TEST, "n_codewords": 8}, {"pooling", "bof"})
@renamed_kwargs(in_chans="in_channels")
def resnet20_bof(num_classes: int = 10, in_channels: int = 1, **kwargs: Any) -> CifarResNet:
    """ResNet-20 with bag-of-features pooling (64 codewords) instead of GAP (seed #24)."""
    kwargs.setdefault("depth", 20)
    return CifarResNet(num_classes, in_channels, head="bof", **kwargs)
