"""Cloud-cover CNNs for prioritising a nanosatellite's image downlink (Park et al., seed #18).

Park et al. [1]_ rank the RGB images a nanosatellite captures by the cloud cover a small CNN
estimates, so that clear images are downlinked first. Their network is a lightened version of
an unnamed "original" CNN: reduced input size, **patch decomposition**, **replication padding
in the first block** (against ambiguity at patch borders), reduced depth, fewer kernels and a
**multi-stream** architecture "to suppress the network from optimizing on color features". It
keeps about 70 % precision with 0.4 % of the parameters and 4.3 % of the inference time of the
original network, and is expected to raise the downlink of clear images by 112 %. Only the
abstract is available; the rest is [INTERP] (notes/methods-architectures.md, section 7):

- :class:`CloudNet`: per-patch multi-stream CNN, one 1-channel stream per colour channel (R, G,
  B), fused late; one logit per patch whose sigmoid is the patch's cloud fraction.
- :class:`CloudBaselineNet`: the heavy comparison network, a VGG-style 3-channel CNN.
- :func:`image_to_patches`, :func:`image_priority`: patch decomposition and image ranking.
- :func:`precision_at_k`, :func:`downlink_gain`: how well a ranking downlinks clear images.

>>> import numpy as np, torch
>>> from lightvision.models.cloud import CloudNet, image_priority
>>> model = CloudNet()
>>> images = np.zeros((2, 64, 64, 3), dtype=np.uint8)
>>> image_priority(model, images).shape
(2,)

References
----------
.. [1] J. Park, T. Inamori, R. Hamaguchi, K. Otsuki, J. E. Kim, K. Yamaoka, "RGB image
   prioritization using convolutional neural network on a microprocessor for nanosatellites",
   Remote Sensing 12(23):3941, 2020 (seed #18).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from .._checks import check_bool, check_int, check_int_sequence, check_model, floating_dtype
from .._deprecation import renamed_kwargs
from ..registry import MODELS
from .base import Classifier, as_array, as_tensor, check_dropout, check_finite
from .small_cnn import _conv_bn_relu

__all__ = [
    "CloudBaselineNet",
    "CloudNet",
    "cloud_baseline",
    "cloud_loss",
    "cloud_net",
    "downlink_gain",
    "image_priority",
    "image_to_patches",
    "precision_at_k",
]

# fit() keyword arguments; the targets are per-patch cloud fractions, so pass loss=cloud_loss.
_TRAIN = {"epochs": 15, "batch_size": 64, "lr": 3e-3, "weight_decay": 1e-4}


def _cloud_min_size(n_blocks: int) -> int:
    """Smallest patch side for which every block of :class:`CloudNet` gets >= 1 pixel."""

    def out(size: int) -> int:
        for i in range(n_blocks):  # block 1 keeps the size; later ones: 3x3 valid, stride 2
            if i:
                size = (size - 3) // 2 + 1
            if size < 1:
                return 0
        return size

    size = 1
    while out(size) < 1:
        size += 1
    return size


class CloudNet(Classifier):
    """[INTERP] Park et al.'s lightweight multi-stream patch CNN for cloud cover.

    Input: patches (N, 3, P, P), RGB in [0, 1]. Each colour channel goes through its own
    1-channel stream of ``len(widths)`` blocks of 3x3 conv (no bias) - BN - ReLU:

    - block 1: ``ReplicationPad2d(1)`` then the conv, so the patch keeps its size without the
      artificial dark border that zero padding adds at patch edges;
    - blocks 2..: an unpadded ("valid") conv of stride 2, which halves the size. [INTERP]
      Strided convs rather than 2x2 max pooling: same parameters, fewer MACs, and max pooling
      of these small tensors took 60 % of the CPU inference time.

    Global average pooling of each stream gives ``widths[-1]`` features; the three are
    concatenated (late fusion, ``num_features = 3 * widths[-1]``) so that the network cannot
    form colour ratios before the last layer, and a linear head gives ``num_classes`` logits
    (1: the logit of the patch's cloud fraction). Unshared streams are implemented as grouped
    convolutions (``groups=3``), which is exactly three independent streams in one call; with
    ``shared_streams=True`` one stream's weights (and BN) serve all three channels.

    With the default ``widths=(8, 16, 32)`` on 32x32 patches: 32 -> 32 -> 15 -> 7 -> GAP;
    17,929 parameters (5,944 per stream, 97 in the head) and 1.68 M MACs per patch. Patches
    need at least ``min_size`` = 7 pixels (3 with two blocks, 15 with four).

    Parameters
    ----------
    num_classes : output logits (1 for a cloud-fraction regressor).
    in_channels : must be 3 (one stream per RGB channel).
    widths : output channels of each block of a stream.
    shared_streams : one set of stream weights for R, G and B.
    dropout : dropout probability before the head.

    References
    ----------
    J. Park et al., Remote Sensing 12(23):3941, 2020 (seed #18): replication padding in the
    first block, reduced depth and width, multi-stream architecture [ABSTRACT]; stream layout,
    widths and fusion [INTERP].

    >>> import torch
    >>> model = CloudNet()
    >>> model(torch.rand(5, 3, 32, 32)).shape
    torch.Size([5, 1])
    >>> sum(p.numel() for p in model.parameters())
    17929
    """

    @renamed_kwargs(in_chans="in_channels")
    def __init__(
        self,
        num_classes: int = 1,
        in_channels: int = 3,
        *,
        widths: Sequence[int] = (8, 16, 32),
        shared_streams: bool = False,
        dropout: float = 0.0,
    ) -> None:
        widths = check_int_sequence(widths, "widths")
        check_bool(shared_streams, "shared_streams")
        if check_int(in_channels, "in_channels") != 3:
            raise ValueError(f"CloudNet has one stream per RGB channel: in_channels must be 3, "
                             f"got {in_channels!r}")
        dropout = check_dropout(dropout)
        super().__init__(num_classes, in_channels, min_size=_cloud_min_size(len(widths)))
        self.shared_streams = bool(shared_streams)
        self.widths = widths
        g = 1 if shared_streams else 3
        layers: list[nn.Module] = []
        c_in = 1
        for i, width in enumerate(widths):
            if i == 0:
                layers.append(nn.ReplicationPad2d(1))
            layers += [nn.Conv2d(c_in * g, width * g, 3, stride=1 if i == 0 else 2, groups=g,
                                 bias=False),
                       nn.BatchNorm2d(width * g), nn.ReLU(inplace=True)]
            c_in = width
        self.streams = nn.Sequential(*layers)
        self.feature_stages = tuple(f"streams.{i}" for i, m in enumerate(layers)
                                    if isinstance(m, nn.ReLU))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = 3 * widths[-1]
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.num_features, num_classes))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Patches (N, 3, P, P) -> features (N, 3 * widths[-1]), ordered R, G, B streams."""
        n = x.shape[0]
        if self.shared_streams:
            x = x.reshape(n * 3, 1, *x.shape[-2:])
        return self.pool(self.streams(x)).reshape(n, self.num_features)


class CloudBaselineNet(Classifier):
    """[INTERP] The heavy "original" network CloudNet is compared with: a VGG-style CNN.

    Park et al. do not name their original network; this stands in for it: a 3-channel VGG
    body (stages of ``convs_per_stage`` 3x3 conv (zero padding, no bias) - BN - ReLU, 2x2 max
    pooling between stages), global average pooling, dropout and a linear head, on the same
    patches (N, 3, P, P). With the default ``widths=(64, 128, 256, 512)`` and two convs per
    stage (VGG-13's body without its fifth stage): 4,687,809 parameters and 0.21 G MACs per
    32x32 patch, i.e. CloudNet has 0.38 % of its parameters (Park et al.: 0.4 %).

    Parameters
    ----------
    num_classes : output logits (1 for a cloud-fraction regressor).
    in_channels : input channels.
    widths : output channels of each stage.
    convs_per_stage : 3x3 convs per stage.
    dropout : dropout probability before the head.

    References
    ----------
    J. Park et al., Remote Sensing 12(23):3941, 2020 (seed #18); K. Simonyan, A. Zisserman,
    "Very deep convolutional networks for large-scale image recognition", ICLR 2015 (VGG).

    >>> import torch
    >>> CloudBaselineNet(widths=(8, 16))(torch.rand(2, 3, 32, 32)).shape
    torch.Size([2, 1])
    """

    @renamed_kwargs(in_chans="in_channels")
    def __init__(
        self,
        num_classes: int = 1,
        in_channels: int = 3,
        *,
        widths: Sequence[int] = (64, 128, 256, 512),
        convs_per_stage: int = 2,
        dropout: float = 0.2,
    ) -> None:
        widths = check_int_sequence(widths, "widths")
        convs_per_stage = check_int(convs_per_stage, "convs_per_stage")
        dropout = check_dropout(dropout)
        super().__init__(num_classes, in_channels, min_size=2 ** (len(widths) - 1))
        layers: list[nn.Module] = []
        c_in = self.in_channels
        for i, width in enumerate(widths):
            if i:
                layers.append(nn.MaxPool2d(2))
            for _ in range(convs_per_stage):
                layers.append(_conv_bn_relu(c_in, width))
                c_in = width
        self.features = nn.Sequential(*layers)
        self.feature_stages = tuple(  # the last conv-BN-ReLU of each stage
            f"features.{i}" for i, m in enumerate(layers)
            if i + 1 == len(layers) or isinstance(layers[i + 1], nn.MaxPool2d))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = c_in
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(c_in, num_classes))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.features(x)).flatten(1)


@MODELS.register(
    tags={"regression", "clouds"},
    test_params={"widths": (4, 8)},
    bench_params={},
    input_shape=(3, 32, 32),
    dataset="clouds",
    train=_TRAIN,
)
@renamed_kwargs(in_chans="in_channels")
def cloud_net(num_classes: int = 1, in_channels: int = 3, **kwargs) -> CloudNet:
    """Park et al.'s multi-stream patch CNN for cloud cover (see :class:`CloudNet`)."""
    return CloudNet(num_classes, in_channels, **kwargs)


@MODELS.register(
    tags={"regression", "clouds"},
    test_params={"widths": (4, 8), "convs_per_stage": 1},
    bench_params={},
    input_shape=(3, 32, 32),
    dataset="clouds",
    train=_TRAIN,
)
@renamed_kwargs(in_chans="in_channels")
def cloud_baseline(num_classes: int = 1, in_channels: int = 3, **kwargs) -> CloudBaselineNet:
    """The heavy VGG-style comparison network for cloud cover (see :class:`CloudBaselineNet`)."""
    return CloudBaselineNet(num_classes, in_channels, **kwargs)


def image_to_patches(images: np.ndarray | torch.Tensor, patch_size: int = 32) -> torch.Tensor:
    """Non-overlapping patches of RGB images, in row-major order per image.

    Parameters
    ----------
    images : (n, H, W, 3) RGB, n >= 1, uint8 (scaled to [0, 1]) or finite float (taken as
        is); an array, a tensor or nested lists. The bottom ``H % patch_size`` rows and right
        ``W % patch_size`` columns are dropped.
    patch_size : side P in pixels.

    Returns
    -------
    float32 tensor (n * (H // P) * (W // P), 3, P, P): patch ``i * (H // P) * (W // P) + r *
    (W // P) + c`` is the one in row r, column c of image i.

    >>> import numpy as np
    >>> image_to_patches(np.zeros((2, 64, 96, 3), dtype=np.uint8), 32).shape
    torch.Size([12, 3, 32, 32])
    """
    check_int(patch_size, "patch_size")
    x = as_tensor(images, "images")
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"images must have shape (n, H, W, 3), got {tuple(x.shape)}")
    n, h, w, _ = x.shape
    if n == 0:
        raise ValueError("images is empty: it must hold at least one image")
    if min(h, w) < patch_size:
        raise ValueError(f"images are {h}x{w} pixels, smaller than patch_size={patch_size}")
    if x.dtype == torch.uint8:
        x = x.to(torch.float32) / 255.0
    elif x.is_floating_point():
        x = check_finite(x, "images").to(torch.float32)
    else:
        raise TypeError(f"images must be uint8 or floating point, got {x.dtype}")
    gh, gw, p = h // patch_size, w // patch_size, patch_size
    x = x[:, :gh * p, :gw * p].reshape(n, gh, p, gw, p, 3)
    return x.permute(0, 1, 3, 5, 2, 4).reshape(n * gh * gw, 3, p, p).contiguous()


@torch.no_grad()
def image_priority(
    model: torch.nn.Module,
    images: np.ndarray | torch.Tensor,
    *,
    patch_size: int = 32,
    batch_size: int = 1024,
) -> np.ndarray:
    """Predicted cloud fraction per image: the mean of sigmoid(logit) over its patches.

    Lower values are downlinked first. The model (one logit per patch) runs in eval mode on
    :func:`image_to_patches` batches of ``batch_size`` patches; its mode is restored.

    Parameters
    ----------
    model : patches (m, 3, P, P) -> logits (m, 1).
    images : (n, H, W, 3) RGB, uint8 or finite float in [0, 1] (see :func:`image_to_patches`).
    patch_size, batch_size : P, and patches per forward pass.

    Returns
    -------
    float64 array (n,) in [0, 1].
    """
    check_model(model)
    check_int(batch_size, "batch_size")
    images = as_tensor(images, "images")
    patches = image_to_patches(images, patch_size)
    n = len(images)
    dtype = floating_dtype(model)
    if dtype is not None:
        patches = patches.to(dtype)
    was_training = model.training
    model.eval()
    try:
        out = [model(patches[i:i + batch_size]) for i in range(0, len(patches), batch_size)]
    finally:
        model.train(was_training)
    logits = torch.cat(out)
    if logits.ndim != 2 or logits.shape[1] != 1:
        raise ValueError(f"model must give one logit per patch, got shape {tuple(logits.shape)}")
    check_finite(logits, "the model's logits")
    return torch.sigmoid(logits[:, 0].double()).reshape(n, -1).mean(dim=1).numpy()


def _check_ranking(priority: np.ndarray, is_clear: np.ndarray,
                   k: int) -> tuple[np.ndarray, np.ndarray]:
    priority = as_array(priority, "priority").astype(float, copy=False)
    is_clear = as_array(is_clear, "is_clear")
    if priority.ndim != 1 or is_clear.shape != priority.shape:
        raise ValueError(f"priority and is_clear must be 1-D of the same length, got shapes "
                         f"{priority.shape} and {is_clear.shape}")
    if is_clear.dtype != bool:
        raise TypeError(f"is_clear must be a bool array, got {is_clear.dtype}")
    if not np.isfinite(priority).all():
        raise ValueError("priority contains NaN or infinite values")
    check_int(k, "k")
    if k > len(priority):
        raise ValueError(f"k={k} exceeds the number of images ({len(priority)})")
    return priority, is_clear


def precision_at_k(priority: np.ndarray, is_clear: np.ndarray, k: int) -> float:
    """Share of truly clear images among the ``k`` downlinked first (lowest ``priority``).

    Ties keep the input (capture) order. A random order scores ``is_clear.mean()`` on average.

    >>> precision_at_k([0.9, 0.1, 0.2, 0.5], np.array([False, True, False, True]), 2)
    0.5
    """
    priority, is_clear = _check_ranking(priority, is_clear, k)
    return float(is_clear[np.argsort(priority, kind="stable")[:k]].mean())


def downlink_gain(
    priority: np.ndarray,
    is_clear: np.ndarray,
    k: int,
    chronological_order: np.ndarray | None = None,
) -> float:
    """Clear images among the first ``k`` downlinked by ``priority``, divided by the clear
    images among the first ``k`` downlinked in chronological (capture) order.

    A ratio: 1 means no gain, 2.12 means Park et al.'s "+112 %" (percentage gain = 100 x
    (ratio - 1)). Returns ``inf`` when the chronological count is 0 and the prioritised count
    is not, and ``nan`` when both are 0.

    Parameters
    ----------
    priority : (n,), lower = downlinked first (ties keep the capture order).
    is_clear : bool (n,), the truly clear images.
    k : images downlinked (the link budget), 1 <= k <= n.
    chronological_order : (n,) capture times or ranks (smaller = captured earlier); default:
        the images are given in capture order.

    >>> clear = np.array([False, False, True, True])
    >>> downlink_gain([0.9, 0.8, 0.1, 0.2], clear, 2)  # 2 clear against 0 chronologically
    inf
    >>> downlink_gain([0.9, 0.8, 0.1, 0.2], clear, 3)  # 2 against 1
    2.0
    """
    priority, is_clear = _check_ranking(priority, is_clear, k)
    if chronological_order is None:
        chrono = np.arange(len(priority))
    else:
        chrono = as_array(chronological_order, "chronological_order").astype(float, copy=False)
        if chrono.shape != priority.shape or not np.isfinite(chrono).all():
            raise ValueError("chronological_order must be finite with the shape of priority")
    ranked = int(is_clear[np.argsort(priority, kind="stable")[:k]].sum())
    baseline = int(is_clear[np.argsort(chrono, kind="stable")[:k]].sum())
    if baseline == 0:
        return float("nan") if ranked == 0 else float("inf")
    return ranked / baseline


def cloud_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy between ``logits`` (m, 1) and cloud fractions ``target`` (m,) or
    (m, 1) in [0, 1]: the regression loss used to train the cloud CNNs with
    :func:`lightvision.training.fit` (``loss=cloud_loss``)."""
    for name, value in (("logits", logits), ("target", target)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if logits.numel() != target.numel():
        raise ValueError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)} must "
                         "hold one value per patch each")
    return nn.functional.binary_cross_entropy_with_logits(
        logits.reshape(-1), target.reshape(-1).to(logits.dtype))

