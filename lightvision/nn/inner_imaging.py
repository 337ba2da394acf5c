"""Inner-Imaging (InI) channel recalibration (seed #8) and a residual block that uses it.

Inner-Imaging treats the channel descriptors of a block as a *pseudo-image*: the global
averages of the channels are folded into a small 2-D map, a convolutional "lens" looks at
neighbouring channels (intra-group relations along a row, inter-group relations and, in the
pair view, the other stream across rows), and a squeeze-and-excitation style bottleneck turns
the result into one weight in (0, 1) per channel, applied to the residual branch.
"""

from __future__ import annotations

import torch
from torch import nn

from .._checks import check_int, floating_dtype
from ..registry import BLOCKS
from ._input import check_maps

__all__ = ["InnerImaging", "InnerImagingBlock"]

_VIEWS = ("pair", "single")


def _pair(value: int | tuple[int, int], name: str) -> tuple[int, int]:
    if isinstance(value, tuple | list):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
        return check_int(value[0], name), check_int(value[1], name)
    value = check_int(value, name)
    return value, value


@BLOCKS.register(
    name="inner_imaging", deprecated_names=("InnerImaging",),
    tags={"attention"},
    test_params={"channels": 16, "group": 4, "view": "single"},
    bench_params={"channels": 64, "group": 16, "view": "single"},
    input_shape=(64, 32, 32),
    test_input_shape=(16, 7, 9),
)
class InnerImaging(nn.Module):
    """Inner-Imaging channel recalibration of a residual branch (Hu et al., seed #8).

    Steps, for C channels and fold group k (the notes' reading of the authors' code):

    1. Squeeze by global average pooling: ``z_r`` (residual) and, in the pair view, ``z_x``
       (shortcut), each of length C.
    2. Fold into a one-channel pseudo-image. Pair view: stack to C x 2, reshape to
       (C/k) x k x 2, transpose to (C/k) x 2 x k, reshape to **(2C/k) x k**, so that rows
       alternate residual / shortcut groups of k consecutive channels. Single view: the
       residual's descriptor alone as a **(C/k) x k** image.
    3. Lens: a ``kernel_size`` convolution *without padding* and without bias to ``lens_maps``
       maps, BatchNorm, then the mean over the maps -> one (R - kh + 1) x (k - kw + 1) map
       (R = 2C/k or C/k rows).
    4. Excitation: flatten -> Linear(C / reduction) -> ReLU -> Linear(C) -> sigmoid, both
       linear layers without bias (as in the authors' code).
    5. ``forward`` returns ``residual * s`` (s broadcast over H, W); the caller adds the
       shortcut (competitive SE: the shortcut influences the recalibration).

    Parameter count (exact): ``M*kh*kw + 2*M + L*h + h*C`` with M = ``lens_maps``,
    h = ``C // reduction``, L = (R - kh + 1)(k - kw + 1). Reference configuration of the
    authors' ResNet-164 (C = 256, k = 16, pair view, 3x3 lens, M = 4, h = 16): 32 x 16
    pseudo-image, L = 30 * 14 = 420, **10,860 parameters**, against 8,192 for a bias-free SE
    module of the same reduction: InI adds 2,668 parameters (about +33 %) per block over SE,
    about 0.16 % of ResNet-164's ~1.7 M parameters per block. (The published
    parameter figure, 2.04 M for CMPE-SE-ResNet-164, is for the lighter 1x1 pair-view variant;
    no figure for the folded 3x3 variant was found.)

    Parameters
    ----------
    channels : C, the channels of the residual branch (and of the shortcut in the pair view);
        must be divisible by ``group``.
    group : k, the number of consecutive channels per row of the pseudo-image (16 in the
        authors' ResNets, 10 in their WRNs).
    view : ``"pair"`` (residual and shortcut descriptors folded together; the paper's main
        form) or ``"single"`` (residual only, for backbones without an identity path;
        [INTERP] from the notes: same lens and excitation on the (C/k) x k image).
    kernel_size : lens kernel (int or (kh, kw)), applied without padding; 3 in the paper. The
        pseudo-image must be at least this large.
    lens_maps : M, the lens' output maps. ``None``: ``max(1, C // 64)``. The authors use
        w / 16 with w = C / 4 the bottleneck width, i.e. C / 64; the floor at 1 for C < 64 is
        [INTERP].
    reduction : excitation bottleneck ratio (16); hidden width ``max(1, C // reduction)``
        (the floor at 1 is [INTERP]).

    Shapes
    ------
    residual : (N, C, H, W); shortcut : (N, C, H', W') (pair view only; any spatial size,
    only its channel means are used). Output: (N, C, H, W).

    References
    ----------
    Hu Y, Wen G, Luo M, Dai D, Cao W, Yu Z, Hall W. Inner-Imaging Networks: Put Lenses Into
    Convolutional Structure. IEEE Transactions on Cybernetics 2022; 52:8547-8560.
    doi:10.1109/tcyb.2020.3034605

    Examples
    --------
    >>> import torch
    >>> ini = InnerImaging(64, group=16)
    >>> r, s = torch.randn(2, 64, 8, 8), torch.randn(2, 64, 8, 8)
    >>> ini(r, s).shape
    torch.Size([2, 64, 8, 8])
    >>> ini.weights(r, s).shape  # one weight in (0, 1) per channel
    torch.Size([2, 64])
    >>> ini.image_shape, ini.lens_shape
    ((8, 16), (6, 14))
    """

    def __init__(
        self,
        channels: int,
        *,
        group: int = 16,
        view: str = "pair",
        kernel_size: int | tuple[int, int] = 3,
        lens_maps: int | None = None,
        reduction: int = 16,
    ) -> None:
        super().__init__()
        self.channels = check_int(channels, "channels")
        self.group = check_int(group, "group")
        if view not in _VIEWS:
            raise ValueError(f"view must be one of {_VIEWS}, got {view!r}")
        self.view = view
        if self.channels % self.group:
            raise ValueError(
                f"channels ({self.channels}) must be divisible by group ({self.group})"
            )
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.lens_maps = (
            max(1, self.channels // 64) if lens_maps is None else check_int(lens_maps, "lens_maps")
        )
        self.reduction = check_int(reduction, "reduction")
        rows = (2 if view == "pair" else 1) * self.channels // self.group
        self.image_shape = (rows, self.group)
        kh, kw = self.kernel_size
        if rows < kh or self.group < kw:
            raise ValueError(
                f"the {view}-view pseudo-image is {rows} x {self.group} (channels={channels}, "
                f"group={group}), smaller than the lens kernel {kh} x {kw}; use fewer or more "
                "channels per row (group) or a smaller kernel_size"
            )
        self.lens_shape = (rows - kh + 1, self.group - kw + 1)
        hidden = max(1, self.channels // self.reduction)
        self.lens = nn.Conv2d(1, self.lens_maps, self.kernel_size, bias=False)
        self.lens_bn = nn.BatchNorm2d(self.lens_maps)
        self.excite = nn.Sequential(
            nn.Linear(self.lens_shape[0] * self.lens_shape[1], hidden, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, self.channels, bias=False),
            nn.Sigmoid(),
        )

    def fold(self, z_r: torch.Tensor, z_x: torch.Tensor | None = None) -> torch.Tensor:
        """Pseudo-image (N, 1, R, k) from descriptors (N, C) (``z_x`` in the pair view)."""
        n, c, k = z_r.shape[0], self.channels, self.group
        if z_x is None:
            return z_r.reshape(n, 1, c // k, k)
        pair = torch.stack((z_r, z_x), dim=-1)  # (N, C, 2)
        return pair.reshape(n, c // k, k, 2).transpose(2, 3).reshape(n, 1, 2 * c // k, k)

    def weights(
        self, residual: torch.Tensor, shortcut: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Channel weights s in (0, 1), shape (N, C)."""
        check_maps(residual, self.channels, "residual", dtype=floating_dtype(self))
        if self.view == "pair":
            if shortcut is None:
                raise ValueError("the pair view needs the shortcut: call ini(residual, shortcut)")
            check_maps(shortcut, self.channels, "shortcut", dtype=floating_dtype(self))
            if not isinstance(residual, torch.fx.Proxy) and shortcut.shape[0] != residual.shape[0]:
                raise ValueError(
                    f"shortcut batch size {shortcut.shape[0]} != residual's {residual.shape[0]}"
                )
            image = self.fold(residual.mean((2, 3)), shortcut.mean((2, 3)))
        else:
            if shortcut is not None:
                raise ValueError("the single view takes no shortcut; use view='pair'")
            image = self.fold(residual.mean((2, 3)))
        one_map = self.lens_bn(self.lens(image)).mean(1)  # (N, R', k')
        return self.excite(one_map.flatten(1))

    def forward(self, residual: torch.Tensor, shortcut: torch.Tensor | None = None) -> torch.Tensor:
        return residual * self.weights(residual, shortcut)[:, :, None, None]

    def extra_repr(self) -> str:
        return (
            f"{self.channels}, group={self.group}, view={self.view!r}, "
            f"image={self.image_shape[0]}x{self.image_shape[1]}"
        )


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
    )


@BLOCKS.register(
    name="inner_imaging_block", deprecated_names=("InnerImagingBlock",),
    tags={"attention", "residual"},
    test_params={"in_channels": 8, "out_channels": 16, "stride": 2, "group": 4},
    bench_params={"in_channels": 16, "out_channels": 64, "group": 16},
    input_shape=(16, 32, 32),
    test_input_shape=(8, 7, 9),
)
class InnerImagingBlock(nn.Module):
    """CIFAR-style basic residual block with Inner-Imaging recalibration (seed #8).

    ``y = ReLU(InI(F(x), S(x)) + S(x))`` with F = conv3x3(stride)-BN-ReLU-conv3x3-BN,
    S = identity, or conv1x1(stride)-BN when the stride or the channels change. S(x) is computed
    once and used both by the pair-view recalibration and in the sum. The authors apply InI in
    pre-activation bottlenecks; its use in this post-activation basic block (the ResNet-20/56
    family) is [INTERP].

    Parameters
    ----------
    in_channels, out_channels : channels of x and y.
    stride : stride of the first 3x3 convolution (and of the projection shortcut).
    view : ``"pair"`` or ``"single"``, see :class:`InnerImaging`.
    group, kernel_size, lens_maps, reduction : passed to :class:`InnerImaging`;
        ``out_channels`` must be divisible by ``group`` and the pseudo-image must be at
        least ``kernel_size`` (e.g. out_channels=64 with group=16; 16 with group=4).

    Shapes
    ------
    (N, in_channels, H, W) -> (N, out_channels, ceil(H / stride), ceil(W / stride)).

    References
    ----------
    Hu Y, Wen G, Luo M, Dai D, Cao W, Yu Z, Hall W. Inner-Imaging Networks: Put Lenses Into
    Convolutional Structure. IEEE Transactions on Cybernetics 2022; 52:8547-8560.
    doi:10.1109/tcyb.2020.3034605

    Examples
    --------
    >>> import torch
    >>> block = InnerImagingBlock(16, 32, stride=2, group=8)
    >>> block(torch.randn(2, 16, 9, 9)).shape
    torch.Size([2, 32, 5, 5])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        stride: int = 1,
        view: str = "pair",
        group: int = 16,
        kernel_size: int | tuple[int, int] = 3,
        lens_maps: int | None = None,
        reduction: int = 16,
    ) -> None:
        super().__init__()
        self.in_channels = check_int(in_channels, "in_channels")
        self.out_channels = check_int(out_channels, "out_channels")
        self.stride = check_int(stride, "stride")
        self.conv1 = _conv_bn(in_channels, out_channels, 3, stride)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv_bn(out_channels, out_channels, 3, 1)
        self.ini = InnerImaging(
            out_channels, group=group, view=view, kernel_size=kernel_size,
            lens_maps=lens_maps, reduction=reduction,
        )
        if stride != 1 or in_channels != out_channels:
            self.shortcut: nn.Module = _conv_bn(in_channels, out_channels, 1, stride)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_maps(x, self.in_channels, "InnerImagingBlock input", dtype=floating_dtype(self))
        shortcut = self.shortcut(x)
        residual = self.conv2(self.relu(self.conv1(x)))
        if self.ini.view == "pair":
            residual = self.ini(residual, shortcut)
        else:
            residual = self.ini(residual)
        return torch.relu(residual + shortcut)
