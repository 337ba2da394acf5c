"""Local binary convolution (LBCNN) and the local binary residual block (LBB).

:class:`LocalBinaryConv2d` convolves with fixed, sparse, random ternary weights in
{-1, 0, +1} that are drawn once and never trained (Juefei-Xu et al., CVPR 2017).
:class:`LocalBinaryResidualBlock` is the local binary residual block (LBB) of Liu et al.
(Neurocomputing 2021): a ResNet bottleneck whose 3x3 spatial convolution is replaced by such
a fixed ternary convolution, a ReLU and a learnable 1x1 convolution; every other layer stays
real-valued. :class:`LocalBinaryBasicBlock` applies the same replacement to both 3x3
convolutions of a basic (two-layer) ResNet block.

Cost accounting: :class:`LocalBinaryConv2d` is registered with
:func:`lightvision.metrics.register_cost` (``op_kind="ternary"``, 2 storage bits per weight),
so :func:`lightvision.metrics.count_ops` counts its multiply-accumulates as ternary operations
(additions/subtractions, no multiplications) and not as real MACs, those of its non-zero
weights only (``ternary_ops``: density d costs d times the dense ``dense_ternary_ops``; the
energy estimate uses the non-zero count), and
:func:`lightvision.metrics.model_size_bytes` stores its weight packed into 2 bits. Its weight is
a buffer: :func:`lightvision.metrics.count_params` counts it as ``fixed``, optimisers never see
it, and it is saved in the ``state_dict``.

>>> import torch
>>> block = LocalBinaryResidualBlock(8, 16, random_state=0)
>>> block(torch.randn(2, 8, 10, 10)).shape
torch.Size([2, 16, 10, 10])

References
----------
.. [1] X. Liu, L. Li, S. Wang, Z.-J. Zha, Q. Huang, "Local-binarized very deep residual
   network for visual categorization", Neurocomputing 430:82-93, 2021.
   doi:10.1016/j.neucom.2020.11.041
.. [2] F. Juefei-Xu, V. N. Boddeti, M. Savvides, "Local Binary Convolutional Neural Networks",
   IEEE CVPR 2017.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_int, check_real, floating_dtype, torch_seed
from .._deprecation import renamed_kwargs
from ..metrics import register_cost
from ..registry import BLOCKS
from ._input import check_maps

__all__ = [
    "LocalBinaryBasicBlock",
    "LocalBinaryConv2d",
    "LocalBinaryResidualBlock",
    "sparse_ternary_weight",
]

_MAX_SEED = 2**63 - 1
_EXPANSION = 2  # default out_channels / width of LocalBinaryResidualBlock (see its docstring)


def _check_kernel_size(kernel_size: object) -> int:
    kernel_size = check_int(kernel_size, "kernel_size")
    if kernel_size % 2 == 0:
        raise ValueError(
            f"kernel_size must be odd ('same' padding needs a centre), got {kernel_size}"
        )
    return kernel_size


def _check_density(density: object) -> float:
    density = check_real(density, "density", 0.0)
    if density > 1.0:
        raise ValueError(f"density must be in (0, 1], got {density}")
    return density


@renamed_kwargs(seed="random_state")
def sparse_ternary_weight(
    shape: tuple[int, ...], density: float, random_state: Any,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """A random tensor in {-1, 0, +1} with exactly ``round(density * numel)`` non-zeros.

    The non-zero positions are drawn uniformly *without* replacement (a random permutation) and
    their signs from a fair Bernoulli(0.5), both from a ``torch.Generator`` seeded from
    ``random_state``, so the same ``(shape, density, random_state)`` always gives the same
    tensor, on any machine. This
    fixes two bugs of the original LBCNN code: sampling positions with replacement (density 0.9
    gave about 59 % non-zeros) and an ignored seed. ``round`` is Python's (half to even).

    Parameters
    ----------
    shape : shape of the tensor.
    density : fraction of non-zero elements, in (0, 1].
    random_state : seed of the generator: an int >= 0, or a numpy ``RandomState`` /
        ``Generator`` an int seed is drawn from.
    dtype : floating dtype of the result.

    Returns
    -------
    Tensor of ``shape``.

    Examples
    --------
    >>> w = sparse_ternary_weight((2, 3, 3, 3), density=0.5, random_state=0)
    >>> int(w.count_nonzero()), sorted(w.unique().tolist())
    (27, [-1.0, 0.0, 1.0])
    """
    density = _check_density(density)
    seed = torch_seed(random_state)
    if seed is None:
        raise TypeError("random_state must be an int or a numpy RandomState / Generator: the "
                        "weights must be reproducible")
    numel = 1
    for size in shape:
        numel *= check_int(size, "shape entries")
    nonzeros = round(density * numel)
    if nonzeros == 0:
        raise ValueError(
            f"density {density} of {numel} weights gives no non-zero weight; raise density"
        )
    generator = torch.Generator().manual_seed(seed)
    positions = torch.randperm(numel, generator=generator)[:nonzeros]
    signs = torch.randint(0, 2, (nonzeros,), generator=generator) * 2 - 1
    flat = torch.zeros(numel, dtype=dtype)
    flat[positions] = signs.to(dtype)
    return flat.reshape(shape)


def _shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """Identity, or a projection (1x1 conv with the stride + BN, ResNet's option B) where the
    shape changes."""
    if in_channels == out_channels and stride == 1:
        return nn.Identity()
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
        nn.BatchNorm2d(out_channels),
    )


@register_cost(op_kind="ternary", storage_bits={"weight": 2})
@BLOCKS.register(
    name="local_binary_conv2d", deprecated_names=("LocalBinaryConv2d",),
    tags={"binary", "conv"},
    test_params={"in_channels": 4, "out_channels": 6, "random_state": 0},
    bench_params={"in_channels": 16, "out_channels": 32, "random_state": 0},
    input_shape=(16, 32, 32),
    test_input_shape=(4, 7, 9),
)
class LocalBinaryConv2d(nn.Module):
    """Convolution with fixed, sparse, random ternary weights (the LBCNN "anchor weights").

    The weight, of shape ``(out_channels, in_channels, kernel_size, kernel_size)``, holds
    exactly ``round(density * numel)`` non-zeros of random sign, drawn once at construction (see
    :func:`sparse_ternary_weight`), and is kept as a buffer: it is never trained, not returned by
    ``parameters()``, and saved in the ``state_dict``. The layer has no bias. Padding is "same"
    (``kernel_size // 2``), so the output has ``ceil(H / stride) x ceil(W / stride)`` pixels.
    :func:`lightvision.metrics.count_ops` counts its work as ternary operations (additions), one
    per non-zero weight and output position, and the weight is stored packed into 2 bits per
    element.

    Parameters
    ----------
    in_channels, out_channels : numbers of input and output channels.
    kernel_size : odd side of the square kernel (default 3).
    stride : stride of the convolution.
    density : fraction of non-zero weights, in (0, 1] (the LBCNN "sparsity level"). Default 0.5
        [INTERP]: the LBB paper's value was not found; 0.5 is the middle of the LBCNN levels
        0.1/0.5/0.9 (the LBCNN code defaults to 0.9).
    random_state : seed of the weights (an int, or a numpy ``RandomState`` / ``Generator`` an
        int is drawn from); the same seed gives the same weights. ``None`` (default) draws the
        seed from torch's global generator, so that ``torch.manual_seed`` makes a whole network
        reproducible while its layers get different weights. The integer seed used is kept in
        ``self.seed``.

    Shapes
    ------
    input ``(N, in_channels, H, W)`` -> output ``(N, out_channels, ceil(H / stride),
    ceil(W / stride))``.

    Examples
    --------
    >>> import torch
    >>> conv = LocalBinaryConv2d(3, 8, density=0.5, random_state=1)
    >>> int(conv.weight.count_nonzero())  # round(0.5 * 8 * 3 * 3 * 3) = 108
    108
    >>> conv(torch.randn(2, 3, 7, 9)).shape
    torch.Size([2, 8, 7, 9])
    >>> [name for name, _ in conv.named_parameters()]
    []

    References
    ----------
    .. [1] F. Juefei-Xu, V. N. Boddeti, M. Savvides, "Local Binary Convolutional Neural
       Networks", IEEE CVPR 2017.
    .. [2] X. Liu, L. Li, S. Wang, Z.-J. Zha, Q. Huang, "Local-binarized very deep residual
       network for visual categorization", Neurocomputing 430:82-93, 2021.
    """

    weight: torch.Tensor

    @renamed_kwargs(seed="random_state")
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        *,
        stride: int = 1,
        density: float = 0.5,
        random_state: Any = None,
    ) -> None:
        super().__init__()
        self.in_channels = check_int(in_channels, "in_channels")
        self.out_channels = check_int(out_channels, "out_channels")
        self.kernel_size = _check_kernel_size(kernel_size)
        self.stride = check_int(stride, "stride")
        self.density = _check_density(density)
        seed = torch_seed(random_state)
        if seed is None:
            seed = int(torch.randint(0, _MAX_SEED, (), dtype=torch.int64))
        self.seed = seed
        self.padding = self.kernel_size // 2
        shape = (self.out_channels, self.in_channels, self.kernel_size, self.kernel_size)
        self.register_buffer("weight", sparse_ternary_weight(shape, self.density, self.seed))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Any floating-point ``x`` (the fixed weight is cast to its dtype)."""
        check_maps(x, self.in_channels, f"{type(self).__name__} input")
        return F.conv2d(x, self.weight.to(x.dtype), stride=self.stride, padding=self.padding)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, density={self.density:g}, seed={self.seed}"
        )


@BLOCKS.register(
    name="local_binary_residual_block", deprecated_names=("LocalBinaryResidualBlock",),
    tags={"binary", "residual"},
    test_params={"in_channels": 4, "out_channels": 8, "random_state": 0},
    bench_params={"in_channels": 16, "out_channels": 64, "random_state": 0},
    input_shape=(16, 32, 32),
    test_input_shape=(4, 7, 9),
)
class LocalBinaryResidualBlock(nn.Module):
    """Local binary residual block (LBB): a bottleneck whose 3x3 convolution is local binary.

    As in Liu et al. (notes of the seed paper), for a bottleneck ``in -> w -> out``::

        1x1 conv (in -> w) + BN + ReLU
        -> LocalBinaryConv2d k x k (w -> m, fixed ternary, density, stride) -> ReLU
        -> 1x1 conv (m -> out) + BN     (learnable: combines the binary responses)
        -> + shortcut(x) -> ReLU

    Only the spatial k x k convolution is binarised; the 1x1 convolutions, batch norms and
    activations stay real-valued. **[INTERP]**: the learnable 1x1 of the local binary
    convolution (LBC) *is* the bottleneck's output 1x1 (m -> out), not a second 1x1 before it.
    Two 1x1 layers in a row would only add parameters (with no activation between them they
    are one linear map). The learnable 1x1 convolutions have no bias (a batch norm follows
    each). The stride is applied by the binary convolution (where a ResNet bottleneck applies
    it to its 3x3 convolution). The shortcut is the identity when ``in_channels ==
    out_channels`` and ``stride == 1``; otherwise a projection, a real-valued 1x1 convolution
    with the block's stride followed by a batch norm (ResNet's option B, as in torchvision),
    so that the residual addition sees matching shapes.

    Default width, expansion 2 (``width = out_channels // 2``) **[INTERP]**: for an identity
    bottleneck of expansion ``e = out / w`` with m = w, the binarised 3x3 removes ``9 w^2`` of
    the ``(2e + 9) w^2`` convolution weights, a per-block cut of ``9 / (2e + 9)``: 9/13 =
    69.2 % at e = 2, 9/17 = 52.9 % at e = 4. The paper's headline is a lower bound over all
    its networks ("at least 69.2 % fewer trainable parameters") and equals the e = 2 figure
    exactly, while e = 4 blocks could never reach it; e = 2 is also the residual module of the
    stacked hourglass and pyramid residual networks the paper binarises first (pose on MPII
    and LSP). He et al.'s expansion-4 bottleneck is ``width=out_channels // 4``
    (:class:`~lightvision.models.CifarResNet` passes its ``expansion``).

    Parameters
    ----------
    in_channels, out_channels : input and output channels of the block.
    width : bottleneck width ``w``; default ``out_channels // 2`` (expansion 2, see above),
        which then must divide exactly.
    num_maps : number ``m`` of binary feature maps; default ``width`` [INTERP] (the paper's value
        was not found).
    kernel_size : odd side of the binary kernel (default 3).
    stride : stride of the block.
    density : fraction of non-zero binary weights, in (0, 1]; default 0.5 [INTERP] (see
        :class:`LocalBinaryConv2d`).
    random_state : seed of the binary weights (see :class:`LocalBinaryConv2d`); ``None``
        draws it from torch's global generator.

    Shapes
    ------
    input ``(N, in_channels, H, W)`` -> output ``(N, out_channels, ceil(H / stride),
    ceil(W / stride))``.

    Trainable parameters: ``in*w + m*out`` convolution weights, ``2*(w + out)`` batch norm
    affine parameters, plus ``in*out + 2*out`` for a projection shortcut. The binary weights
    (``m*w*k*k`` elements, 2 bits each) are fixed.

    Examples
    --------
    >>> import torch
    >>> block = LocalBinaryResidualBlock(4, 8, stride=2, random_state=0)
    >>> block(torch.randn(2, 4, 7, 9)).shape
    torch.Size([2, 8, 4, 5])
    >>> sum(p.numel() for p in block.parameters())  # 48 conv + 24 BN + 48 shortcut
    120

    References
    ----------
    .. [1] X. Liu, L. Li, S. Wang, Z.-J. Zha, Q. Huang, "Local-binarized very deep residual
       network for visual categorization", Neurocomputing 430:82-93, 2021.
       doi:10.1016/j.neucom.2020.11.041
    .. [2] F. Juefei-Xu, V. N. Boddeti, M. Savvides, "Local Binary Convolutional Neural
       Networks", IEEE CVPR 2017.
    .. [3] K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image Recognition",
       IEEE CVPR 2016.
    """

    @renamed_kwargs(seed="random_state")
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        width: int | None = None,
        num_maps: int | None = None,
        kernel_size: int = 3,
        stride: int = 1,
        density: float = 0.5,
        random_state: Any = None,
    ) -> None:
        super().__init__()
        self.in_channels = check_int(in_channels, "in_channels")
        self.out_channels = check_int(out_channels, "out_channels")
        if width is None:
            if self.out_channels % _EXPANSION:
                raise ValueError(
                    f"out_channels ({self.out_channels}) must be a multiple of {_EXPANSION} for "
                    f"the default width out_channels // {_EXPANSION}; pass width explicitly"
                )
            width = self.out_channels // _EXPANSION
        self.width = check_int(width, "width")
        self.num_maps = self.width if num_maps is None else check_int(num_maps, "num_maps")
        self.stride = check_int(stride, "stride")

        self.conv1 = nn.Conv2d(self.in_channels, self.width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(self.width)
        self.binary = LocalBinaryConv2d(
            self.width, self.num_maps, kernel_size, stride=self.stride, density=density,
            random_state=random_state,
        )
        self.conv2 = nn.Conv2d(self.num_maps, self.out_channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(self.out_channels)
        self.shortcut = _shortcut(self.in_channels, self.out_channels, self.stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_maps(x, self.in_channels, f"{type(self).__name__} input", dtype=floating_dtype(self))
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.binary(out))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, width={self.width}, "
            f"num_maps={self.num_maps}, stride={self.stride}"
        )


@BLOCKS.register(
    name="local_binary_basic_block", deprecated_names=("LocalBinaryBasicBlock",),
    tags={"binary", "residual"},
    test_params={"in_channels": 4, "out_channels": 6, "random_state": 0},
    bench_params={"in_channels": 16, "out_channels": 16, "random_state": 0},
    input_shape=(16, 32, 32),
    test_input_shape=(4, 7, 9),
)
class LocalBinaryBasicBlock(nn.Module):
    """Local binary form of a basic ResNet block: both 3x3 convolutions become LBC layers.

    He et al.'s basic block has two 3x3 convolutions; the LBB replaces each spatial convolution
    by the local binary convolution (LBC) of Juefei-Xu et al.: a fixed ternary k x k
    convolution, a ReLU and a learnable 1x1 convolution that combines the binary maps::

        LocalBinaryConv2d (in -> m, stride) -> ReLU -> 1x1 conv (m -> out) + BN -> ReLU
        -> LocalBinaryConv2d (out -> m) -> ReLU -> 1x1 conv (m -> out) + BN
        -> + shortcut(x) -> ReLU

    With m = out the trainable convolution weights of a block fall from ``9*in*out + 9*out^2``
    to ``2*out^2`` (88.9 % fewer for in = out), which is why networks of basic blocks lose more
    than the 69.2 % of an expansion-2 bottleneck (:class:`LocalBinaryResidualBlock`'s default),
    the paper's lower bound ("at least 69.2 %"). **[INTERP]**: the paper's block diagrams were not
    available; this is the LBB rule (only k x k convolutions binarised, 1x1 convolutions
    learnable) applied to the basic block, which is also the LBCNN layer stacked as in
    Juefei-Xu et al.'s ResNet-like LBCNN. The shortcut is the identity or, where the shape
    changes, a real 1x1 projection + BN, as in :class:`LocalBinaryResidualBlock`.

    Parameters
    ----------
    in_channels, out_channels : input and output channels of the block.
    num_maps : number ``m`` of binary maps of each LBC layer; default ``out_channels``
        [INTERP] (the paper's value was not found).
    kernel_size : odd side of the binary kernels (default 3).
    stride : stride of the block (applied by the first binary convolution).
    density : fraction of non-zero binary weights, in (0, 1]; default 0.5 [INTERP].
    random_state : seed of the binary weights: the two layers' seeds are drawn from a
        generator seeded from it (so they differ); ``None`` draws them from torch's global
        generator.

    Shapes
    ------
    input ``(N, in_channels, H, W)`` -> output ``(N, out_channels, ceil(H / stride),
    ceil(W / stride))``.

    Trainable parameters: ``2*m*out`` convolution weights, ``4*out`` batch norm affine
    parameters, plus ``in*out + 2*out`` for a projection shortcut. The binary weights
    (``m*(in + out)*k*k`` elements, 2 bits each) are fixed.

    Examples
    --------
    >>> import torch
    >>> block = LocalBinaryBasicBlock(4, 8, stride=2, random_state=0)
    >>> block(torch.randn(2, 4, 7, 9)).shape
    torch.Size([2, 8, 4, 5])
    >>> sum(p.numel() for p in block.parameters())  # 128 conv + 32 BN + 48 shortcut
    208

    References
    ----------
    .. [1] X. Liu, L. Li, S. Wang, Z.-J. Zha, Q. Huang, "Local-binarized very deep residual
       network for visual categorization", Neurocomputing 430:82-93, 2021.
       doi:10.1016/j.neucom.2020.11.041
    .. [2] F. Juefei-Xu, V. N. Boddeti, M. Savvides, "Local Binary Convolutional Neural
       Networks", IEEE CVPR 2017.
    """

    @renamed_kwargs(seed="random_state")
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        num_maps: int | None = None,
        kernel_size: int = 3,
        stride: int = 1,
        density: float = 0.5,
        random_state: Any = None,
    ) -> None:
        super().__init__()
        self.in_channels = check_int(in_channels, "in_channels")
        self.out_channels = check_int(out_channels, "out_channels")
        self.num_maps = (self.out_channels if num_maps is None
                         else check_int(num_maps, "num_maps"))
        self.stride = check_int(stride, "stride")
        seed = torch_seed(random_state)
        generator = None if seed is None else torch.Generator().manual_seed(seed)
        seeds = torch.randint(0, _MAX_SEED, (2,), dtype=torch.int64, generator=generator).tolist()

        m, out = self.num_maps, self.out_channels
        self.binary1 = LocalBinaryConv2d(self.in_channels, m, kernel_size, stride=self.stride,
                                         density=density, random_state=seeds[0])
        self.conv1 = nn.Conv2d(m, out, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out)
        self.binary2 = LocalBinaryConv2d(out, m, kernel_size, density=density,
                                         random_state=seeds[1])
        self.conv2 = nn.Conv2d(m, out, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out)
        self.shortcut = _shortcut(self.in_channels, out, self.stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_maps(x, self.in_channels, f"{type(self).__name__} input", dtype=floating_dtype(self))
        out = F.relu(self.bn1(self.conv1(F.relu(self.binary1(x)))))
        out = self.bn2(self.conv2(F.relu(self.binary2(out))))
        return F.relu(out + self.shortcut(x))

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, num_maps={self.num_maps}, "
            f"stride={self.stride}"
        )
