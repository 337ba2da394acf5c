"""Registered model builders and the uniform classifier surface.

Every model is built by a builder function registered in :data:`lightvision.registry.MODELS`,
and every classifier derives from :class:`Classifier`, so that training, distillation and
compression code can treat all architectures alike (``forward_features``, ``forward_head``,
``num_classes``, ``in_channels``).

- Cloud cover for downlink prioritisation (Park et al., seed #18): :class:`CloudNet` (multi-stream
  patch CNN, ``cloud_net``), :class:`CloudBaselineNet` (``cloud_baseline``),
  :func:`image_priority`, :func:`precision_at_k`, :func:`downlink_gain`.
- Wrist kinematics from sEMG with inter-subject domain adaptation (Bao et al., seed #13):
  :class:`SEMGNet` (``semg_cnn``, ``semg_cnn_raw``), :func:`kinematics_scores`,
  :func:`predict_angles`.

>>> import lightvision
>>> model = lightvision.create_model("small_cnn", num_classes=10)
>>> model.num_classes
10
"""

from __future__ import annotations

from typing import Any

from ..registry import MODELS
from .base import Classifier
from .bof_cnn import PoolingHeadCNN, bof_cnn, gmp_cnn, spp_cnn
from .cloud import (
    CloudBaselineNet,
    CloudNet,
    cloud_baseline,
    cloud_net,
    downlink_gain,
    image_priority,
    precision_at_k,
)
from .resnet import (
    CifarResNet,
    resnet20,
    resnet20_bof,
    resnet20_ed,
    resnet20_ini,
    resnet20_lbb,
    resnet29_bottleneck,
    resnet29_lbb,
)
from .semg import SEMGNet, kinematics_scores, predict_angles, semg_cnn, semg_cnn_raw
from .small_cnn import SmallCNN, small_cnn
from .vgg import CifarVGG, vgg16

__all__ = [
    "Classifier",
    "CifarResNet",
    "CifarVGG",
    "CloudBaselineNet",
    "CloudNet",
    "PoolingHeadCNN",
    "SEMGNet",
    "SmallCNN",
    "bof_cnn",
    "cloud_baseline",
    "cloud_net",
    "create_model",
    "downlink_gain",
    "gmp_cnn",
    "image_priority",
    "kinematics_scores",
    "list_models",
    "precision_at_k",
    "predict_angles",
    "resnet20",
    "resnet20_bof",
    "resnet20_ed",
    "resnet20_ini",
    "resnet20_lbb",
    "resnet29_bottleneck",
    "resnet29_lbb",
    "semg_cnn",
    "semg_cnn_raw",
    "small_cnn",
    "spp_cnn",
    "vgg16",
]


def list_models(pattern: str = "*", *, tags: tuple[str, ...] = ()) -> list[str]:
    """Names of the registered models matching the shell-style ``pattern`` (and ``tags``)."""
    return MODELS.list(pattern, tags=tags)


def create_model(name: str, **kwargs: Any) -> Classifier:
    """Build the registered model ``name`` with keyword arguments ``kwargs``.

    Unknown names raise :class:`lightvision.registry.UnknownComponentError` (a ``KeyError``)
    listing the closest registered names. The model records how it was built in
    ``model.model_spec`` (``{"name", "kwargs"}``), which saved compressed models are rebuilt
    from.
    """
    model = MODELS.create(name, **kwargs)
    model.model_spec = {"name": name, "kwargs": dict(kwargs)}
    return model
