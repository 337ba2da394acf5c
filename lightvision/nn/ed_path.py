"""Lightweight encoder-decoder (ED) path for residual blocks (seed #10).

The ED path is a plug-in third path of a residual block: a grouped strided convolution encodes
the shortcut's output at half resolution and a grouped transposed convolution decodes it back;
the result is added to the residual and the shortcut, ``y = ReLU(F(x) + S(x) + D(E(S(x))))``.
Lightweight "-A"/"-B" variants remove part of the residual branch's channels to pay for it.

Two defects of the original code are fixed here: the decoder's ``output_padding`` was chosen
from the stage index for 224-pixel ImageNet input (any other size failed), and the shortcut was
computed twice per forward pass (double cost, and BatchNorm statistics of a projection shortcut
updated twice per step). Here the decoder output is sized to its input at call time, for any
size, and the shortcut is computed once and shared.
"""

from __future__ import annotations

import torch
from torch import nn

from .._checks import check_int, check_real, floating_dtype
from ..registry import BLOCKS
from ._input import check_maps

__all__ = ["EDPath", "EDBlock", "EDBottleneck"]


def _check_ratio(value: object) -> float:
    ratio = check_real(value, "width_ratio", 0.0, strict=False)
    if ratio >= 1.0:
        raise ValueError(f"width_ratio is the fraction of channels removed, in [0, 1), got {value}")
    return ratio


def _kept(width: int, ratio: float) -> int:
    """Channels kept when the fraction ``ratio`` of ``width`` is removed (rounded, >= 1)."""
    return max(1, round(width * (1.0 - ratio)))


@BLOCKS.register(
    name="ed_path", deprecated_names=("EDPath",),
    tags={"residual"},
    test_params={"channels": 16, "groups": 4},
    bench_params={"channels": 64, "groups": 16},
    input_shape=(64, 32, 32),
    test_input_shape=(16, 7, 9),
)
class EDPath(nn.Module):
    """The encoder-decoder path of Jin et al. (seed #10), applied to a shortcut's output.

    ``ED(p) = BN(ConvT3x3_s2,g(ReLU(BN(Conv3x3_s2,g(p)))))``: the encoder is a 3x3 grouped
    convolution, stride 2, padding 1, ``channels -> mid_channels``, BN, ReLU; the decoder a
    3x3 grouped transposed convolution, stride 2, padding 1, ``mid_channels -> channels``, BN,
    no activation. Convolutions have no bias (BN follows).

    Any input size works, odd ones included: the encoder gives ceil(H/2) x ceil(W/2) and the
    decoder is called with ``output_size`` equal to the input's size, so PyTorch chooses
    ``output_padding`` (1 for an even side, 0 for an odd one) at call time; no interpolation
    or cropping is involved. (The original code fixed it per ImageNet stage.)

    Parameter count (exact): ``18 * channels * mid_channels / groups + 2 * mid_channels +
    2 * channels``. Reference configuration, the first stage of ED-ResNet-50 (channels 256,
    mid 64, groups 32): **9,856 parameters** and 7.2 M MACs at 56x56 (a ResNet-50 bottleneck
    there has 70 k parameters, 218 M MACs). Over all 16 bottlenecks of ResNet-50 the ED paths
    add 2.87 M parameters (+11 % of 25.6 M) and 0.12 G MACs (+3 % of 4.1 G, consistent with
    the paper's small FLOP overhead; its -A/-B variants then trade branch channels for it).

    Parameters
    ----------
    channels : C, channels of the shortcut output the path reads and of its output.
    mid_channels : encoder width; ``None``: ``channels // 4`` (in a bottleneck of width w with
        output 4w the encoder maps 4w -> w).
    groups : groups of both convolutions (32 in the paper); must divide ``channels`` and
        ``mid_channels``.

    Shapes
    ------
    (N, C, H, W) -> (N, C, H, W) for every H, W >= 1.

    References
    ----------
    Jin X, Xie Y, Wei XS, Zhao BR, Zhang Y, Tan X, Yu Y. A Lightweight Encoder-Decoder Path
    for Deep Residual Networks. IEEE Transactions on Neural Networks and Learning Systems 2022;
    33:866-878. doi:10.1109/tnnls.2020.3029613

    Examples
    --------
    >>> import torch
    >>> ed = EDPath(64, groups=16)
    >>> ed(torch.randn(2, 64, 7, 10)).shape
    torch.Size([2, 64, 7, 10])
    >>> sum(p.numel() for p in ed.parameters()) == 18 * 64 * 16 // 16 + 2 * 16 + 2 * 64
    True
    """

    def __init__(self, channels: int, *, mid_channels: int | None = None, groups: int = 32) -> None:
        super().__init__()
        self.channels = check_int(channels, "channels")
        self.mid_channels = (
            max(1, channels // 4) if mid_channels is None
            else check_int(mid_channels, "mid_channels")
        )
        self.groups = check_int(groups, "groups")
        if self.channels % self.groups or self.mid_channels % self.groups:
            raise ValueError(
                f"groups ({self.groups}) must divide channels ({self.channels}) and "
                f"mid_channels ({self.mid_channels})"
            )
        c, m, g = self.channels, self.mid_channels, self.groups
        self.encoder = nn.Sequential(
            nn.Conv2d(c, m, 3, stride=2, padding=1, groups=g, bias=False),
            nn.BatchNorm2d(m),
            nn.ReLU(inplace=True),
        )
        self.decoder = nn.ConvTranspose2d(m, c, 3, stride=2, padding=1, groups=g, bias=False)
        self.decoder_bn = nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_maps(x, self.channels, "EDPath input", dtype=floating_dtype(self))
        code = self.encoder(x)
        return self.decoder_bn(self.decoder(code, output_size=x.shape[-2:]))

    def extra_repr(self) -> str:
        return f"{self.channels}, mid_channels={self.mid_channels}, groups={self.groups}"


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
    )


class _EDResidual(nn.Module):
    """Shared forward: ``ReLU(F(x) + s + ED(s))`` with ``s = shortcut(x)`` computed once."""

    in_channels: int
    residual: nn.Module
    shortcut: nn.Module
    ed: EDPath

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_maps(x, self.in_channels, f"{type(self).__name__} input",
                   dtype=floating_dtype(self))
        shortcut = self.shortcut(x)  # once: feeds both the sum and the ED path
        return torch.relu(self.residual(x) + shortcut + self.ed(shortcut))


@BLOCKS.register(
    name="ed_block", deprecated_names=("EDBlock",),
    tags={"residual"},
    test_params={"in_channels": 8, "out_channels": 16, "stride": 2, "groups": 4,
                 "width_ratio": 0.5},
    bench_params={"in_channels": 16, "out_channels": 64, "groups": 16},
    input_shape=(16, 32, 32),
    test_input_shape=(8, 7, 9),
)
class EDBlock(_EDResidual):
    """Basic residual block (two 3x3 convolutions) with the ED path (seed #10).

    ``y = ReLU(F(x) + S(x) + ED(S(x)))``: F = conv3x3(stride)-BN-ReLU-conv3x3-BN with inner
    width ``round(out_channels * (1 - width_ratio))``; S = identity, or conv1x1(stride)-BN when
    the stride or the channels change; S(x) is computed once. The paper adds the path to
    bottlenecks; this basic-block form (and its ED width ``out_channels // 4``) is [INTERP].

    Lightweight variants: ``width_ratio`` is the fraction of the branch's inner channels
    *removed* ([INTERP]: the released code has no such option). "-B" halves the 3x3 filters,
    ``width_ratio=0.5`` (halves the branch's MACs); "-A" removes just enough to match the
    plain block's MACs, for this block ``ed_channels / (4 * groups * out_channels)`` (about
    0.2 % with the defaults: the ED path is almost free at quarter resolution).

    Parameters
    ----------
    in_channels, out_channels : channels of x and y.
    stride : stride of the first convolution and of the projection shortcut.
    width_ratio : fraction of the inner channels removed, in [0, 1).
    ed_channels : encoder width of the ED path; ``None``: ``out_channels // 4``.
    groups : groups of the ED convolutions (32 in the paper); must divide ``out_channels`` and
        ``ed_channels``.

    Shapes
    ------
    (N, in_channels, H, W) -> (N, out_channels, ceil(H / stride), ceil(W / stride)).

    References
    ----------
    Jin X, Xie Y, Wei XS, Zhao BR, Zhang Y, Tan X, Yu Y. A Lightweight Encoder-Decoder Path
    for Deep Residual Networks. IEEE Transactions on Neural Networks and Learning Systems 2022;
    33:866-878. doi:10.1109/tnnls.2020.3029613

    Examples
    --------
    >>> import torch
    >>> block = EDBlock(16, 64, stride=2, groups=16, width_ratio=0.5)
    >>> block(torch.randn(2, 16, 15, 15)).shape
    torch.Size([2, 64, 8, 8])
    >>> block.width
    32
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        stride: int = 1,
        width_ratio: float = 0.0,
        ed_channels: int | None = None,
        groups: int = 32,
    ) -> None:
        super().__init__()
        self.in_channels = check_int(in_channels, "in_channels")
        self.out_channels = check_int(out_channels, "out_channels")
        self.stride = check_int(stride, "stride")
        self.width_ratio = _check_ratio(width_ratio)
        if ed_channels is not None:
            ed_channels = check_int(ed_channels, "ed_channels")
        self.width = _kept(out_channels, self.width_ratio)
        self.residual = nn.Sequential(
            _conv_bn(in_channels, self.width, 3, stride),
            nn.ReLU(inplace=True),
            _conv_bn(self.width, out_channels, 3),
        )
        if stride != 1 or in_channels != out_channels:
            self.shortcut = _conv_bn(in_channels, out_channels, 1, stride)
        else:
            self.shortcut = nn.Identity()
        self.ed = EDPath(out_channels, mid_channels=ed_channels, groups=groups)


@BLOCKS.register(
    name="ed_bottleneck", deprecated_names=("EDBottleneck",),
    tags={"residual"},
    test_params={"in_channels": 8, "width": 4, "stride": 2, "groups": 4},
    bench_params={"in_channels": 64, "width": 16, "groups": 16},
    input_shape=(64, 32, 32),
    test_input_shape=(8, 7, 9),
)
class EDBottleneck(_EDResidual):
    """ResNet bottleneck (1x1, 3x3, 1x1; output ``expansion * width``) with the ED path (#10).

    The form of the official ``ed_resnet.py``: ``y = ReLU(F(x) + S(x) + ED(S(x)))`` with
    F = conv1x1-BN-ReLU-conv3x3(stride)-BN-ReLU-conv1x1-BN, S = identity or conv1x1(stride)-BN,
    computed once, and the ED path ``4w -> w -> 4w`` with 32 groups (output_padding now
    follows the input size). ``width_ratio`` removes that fraction of the inner width w from
    all three convolutions (they keep ``round(w * (1 - width_ratio))`` channels, [INTERP]);
    the ED path keeps the nominal w. ``width_ratio=0.5`` is the "-B" setting.

    Parameters
    ----------
    in_channels : channels of x.
    width : w, the nominal inner width; the output has ``expansion * width`` channels.
    stride : stride of the 3x3 convolution and of the projection shortcut.
    expansion : output / width (4 for ResNet, 2 for the ResNeXt form).
    width_ratio : fraction of the inner channels removed, in [0, 1).
    groups : groups of the ED convolutions (32); must divide ``width`` and the output channels.

    Shapes
    ------
    (N, in_channels, H, W) -> (N, expansion * width, ceil(H / stride), ceil(W / stride)).

    References
    ----------
    Jin X, Xie Y, Wei XS, Zhao BR, Zhang Y, Tan X, Yu Y. A Lightweight Encoder-Decoder Path
    for Deep Residual Networks. IEEE Transactions on Neural Networks and Learning Systems 2022;
    33:866-878. doi:10.1109/tnnls.2020.3029613

    Examples
    --------
    >>> import torch
    >>> block = EDBottleneck(256, 64)  # ED-ResNet-50, stage 1
    >>> block(torch.randn(1, 256, 9, 9)).shape
    torch.Size([1, 256, 9, 9])
    >>> sum(p.numel() for p in block.ed.parameters())
    9856
    """

    def __init__(
        self,
        in_channels: int,
        width: int,
        *,
        stride: int = 1,
        expansion: int = 4,
        width_ratio: float = 0.0,
        groups: int = 32,
    ) -> None:
        super().__init__()
        self.in_channels = check_int(in_channels, "in_channels")
        self.width = check_int(width, "width")
        self.stride = check_int(stride, "stride")
        self.expansion = check_int(expansion, "expansion")
        self.width_ratio = _check_ratio(width_ratio)
        self.out_channels = self.expansion * self.width
        kept = _kept(self.width, self.width_ratio)
        self.residual = nn.Sequential(
            _conv_bn(in_channels, kept, 1),
            nn.ReLU(inplace=True),
            _conv_bn(kept, kept, 3, stride),
            nn.ReLU(inplace=True),
            _conv_bn(kept, self.out_channels, 1),
        )
        if stride != 1 or in_channels != self.out_channels:
            self.shortcut = _conv_bn(in_channels, self.out_channels, 1, stride)
        else:
            self.shortcut = nn.Identity()
        self.ed = EDPath(self.out_channels, mid_channels=self.width, groups=groups)
