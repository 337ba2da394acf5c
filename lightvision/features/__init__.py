"""Classical feature extractors as scikit-learn transformers.

- :class:`PCANet` (Chan et al. 2015): cascaded PCA filters, binary hashing, block histograms.
- :class:`TFNet`: the same network with Tucker tensor-factorisation filters (Verma et al.).
- :class:`HybridNet`: both views learned together, features concatenated (Verma et al.).
- :class:`AttnHybridNet`: HybridNet's two views PCA-reduced and fused by a small attention
  network trained with the labels (:class:`AttentionFusion`; a lightvision interpretation).
- :class:`BinaryMotionDescriptor` (Leyva et al. 2019, interpreted), :class:`HOFDescriptor` and
  :class:`MBHDescriptor`: local motion descriptors of video regions from OpenCV optical flow
  (:func:`optical_flow`, :func:`iter_frames` in :mod:`lightvision.features.video`).
- :class:`BinaryFisherVector` (Leyva et al. 2019, [INTERP] after Uchida et al. 2016) with its
  :class:`BernoulliMixture`, and the float baseline :class:`GaussianFisherVector`: one Fisher
  vector per *descriptor set* (a list of (n_i, dims) local-descriptor arrays, not images).
- :func:`make_action_pipeline`: videos -> motion descriptors -> Fisher vector -> linear SVM.

The image features take grey (n, H, W) or colour (n, H, W, C) images and return one (sparse)
feature vector per image (shared machinery in :mod:`lightvision.features.filterbank`); the
motion descriptors take a list of videos and return one descriptor array per video.
"""

from .action_pipeline import make_action_pipeline
from .attention import AttentionFusion, AttnHybridNet
from .fisher import BernoulliMixture, BinaryFisherVector, GaussianFisherVector
from .motion import BinaryMotionDescriptor, HOFDescriptor, MBHDescriptor
from .pcanet import HybridNet, PCANet, TFNet
from .video import iter_frames, optical_flow

__all__ = [
    "AttentionFusion",
    "AttnHybridNet",
    "BernoulliMixture",
    "BinaryFisherVector",
    "BinaryMotionDescriptor",
    "GaussianFisherVector",
    "HOFDescriptor",
    "HybridNet",
    "MBHDescriptor",
    "PCANet",
    "TFNet",
    "iter_frames",
    "make_action_pipeline",
    "optical_flow",
]
