"""Classical feature extractors as scikit-learn transformers.

- :class:`PCANet` (Chan et al. 2015): cascaded PCA filters, binary hashing, block histograms.
- :class:`TFNet`: the same network with Tucker tensor-factorisation filters (Verma et al.).
- :class:`HybridNet`: both views learned together, features concatenated (Verma et al.).
- :class:`AttnHybridNet`: HybridNet's two views PCA-reduced and fused by a small attention
  network trained with the labels (:class:`AttentionFusion`; a lightvision interpretation).

All take grey (n, H, W) or colour (n, H, W, C) images and return one (sparse) feature vector
per image; the shared machinery is in :mod:`lightvision.features.filterbank`.
"""

from .attention import AttentionFusion, AttnHybridNet
from .pcanet import HybridNet, PCANet, TFNet

__all__ = ["AttentionFusion", "AttnHybridNet", "HybridNet", "PCANet", "TFNet"]
