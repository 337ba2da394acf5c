"""Lightweight torch blocks (``nn.Module``), registered in :data:`lightvision.registry.BLOCKS`.

- :class:`BoFPooling` (Passalis & Tefas 2019): bag-of-features pooling with RBF codewords.
- :class:`InnerImaging`, :class:`InnerImagingBlock` (Hu et al.): channel recalibration from a
  folded pseudo-image of channel descriptors.
- :class:`EDPath`, :class:`EDBlock`, :class:`EDBottleneck` (Jin et al. 2022): an encoder-
  decoder path from the shortcut added to a residual block.
- :class:`LocalBinaryConv2d`, :class:`LocalBinaryResidualBlock`, :class:`LocalBinaryBasicBlock`
  (Liu et al.; Juefei-Xu et al. 2017): fixed sparse ternary 3x3 convolutions combined by
  learnable 1x1 convolutions.
- :func:`capture_outputs`: the outputs of named submodules of any model during a forward pass
  (intermediate feature maps, for distillation and quantization).

Importing ``lightvision.nn`` imports torch.
"""

from .bof import BoFPooling
from .capture import capture_outputs
from .ed_path import EDBlock, EDBottleneck, EDPath
from .inner_imaging import InnerImaging, InnerImagingBlock
from .local_binary import LocalBinaryBasicBlock, LocalBinaryConv2d, LocalBinaryResidualBlock

__all__ = [
    "BoFPooling",
    "EDBlock",
    "EDBottleneck",
    "EDPath",
    "InnerImaging",
    "InnerImagingBlock",
    "LocalBinaryBasicBlock",
    "LocalBinaryConv2d",
    "LocalBinaryResidualBlock",
    "capture_outputs",
]
