"""Shared benchmark settings: the quick/full profile switch, seeds and cached data loading.

``LIGHTVISION_BENCH_PROFILE=quick`` (default) keeps a whole ``asv run`` within minutes on 2
cores: the committed Fashion-MNIST subset and short training. ``full`` uses the full
Fashion-MNIST when it is installed (``apt-get install dataset-fashion-mnist`` or
``LIGHTVISION_FASHION_MNIST``) and each model's full training schedule.
"""

from __future__ import annotations

import os
from functools import cache

PROFILE = os.environ.get("LIGHTVISION_BENCH_PROFILE", "quick")
if PROFILE not in ("quick", "full"):
    raise ValueError(f"LIGHTVISION_BENCH_PROFILE must be 'quick' or 'full', got {PROFILE!r}")

SEED = 0

#: Per-profile settings: which Fashion-MNIST copy to read, the cap on training epochs, and
#: how many Fashion-MNIST images the feature extractors are fitted/tested on (a linear SVM on
#: their ~10^4-dimensional sparse features is what limits the size).
CONFIG = {
    "quick": {"fashion_source": "bundled", "max_epochs": 6,
              "feature_train": 2000, "feature_test": 1000},
    "full": {"fashion_source": "auto", "max_epochs": None,
             "feature_train": 10000, "feature_test": 2000},
}[PROFILE]


@cache
def image_data(name: str, split: str):
    """(X, y) as float tensors (n, C, H, W) in [0, 1] and int64 labels, for ``name`` in
    {"fashion_mnist", "digits"}. digits has no official split: a stratified 75/25 split with
    ``SEED`` stands in."""
    import numpy as np
    import torch

    from lightvision.datasets import load_fashion_mnist
    from lightvision.training import images_to_tensor

    if name == "fashion_mnist":
        images, labels = load_fashion_mnist(split, source=CONFIG["fashion_source"])
        return images_to_tensor(images), torch.as_tensor(labels)
    if name == "digits":
        images, labels = raw_images("digits")[0 if split == "train" else 1]
        return images_to_tensor(images.astype(np.float32) / 16), torch.as_tensor(labels)
    raise ValueError(f"unknown benchmark dataset {name!r}")


#: Generated cloud scenes (seed #18): 128x128 RGB, 32x32 patches; training and test scenes
#: come from different seeds; the downlink budget is 20 % of the test scenes.
CLOUD_SCENES = {"train": 120, "test": 150, "image_size": 128, "patch_size": 32}


@cache
def cloud_scenes(split: str):
    """:class:`lightvision.datasets.CloudScenes` for ``split`` ("train" seed ``SEED``, "test"
    seed ``SEED + 1``)."""
    from lightvision.datasets import make_cloud_scenes

    return make_cloud_scenes(CLOUD_SCENES[split], image_size=CLOUD_SCENES["image_size"],
                             patch_size=CLOUD_SCENES["patch_size"],
                             random_state=SEED + (split == "test"))


@cache
def cloud_patches(split: str):
    """(patches (n, 3, 32, 32) float in [0, 1], cloud fraction per patch (n,) float32)."""
    import torch

    from lightvision.models.cloud import image_to_patches

    scenes = cloud_scenes(split)
    return (image_to_patches(scenes.images, CLOUD_SCENES["patch_size"]),
            torch.as_tensor(scenes.patch_fraction.reshape(-1), dtype=torch.float32))


#: Generated sEMG (seed #13): 5 subjects x 8 channels x 60 s at 2 kHz, 200 ms windows every
#: 50 ms; models are trained on subjects 0, 2, 3 and tested on the last 15 s of each.
SEMG = {"subjects": 5, "duration_s": 60.0, "sources": (0, 2, 3), "target": 1, "test_s": 15.0,
        "window_ms": 200.0, "step_ms": 50.0}


@cache
def semg_recordings():
    """:class:`lightvision.datasets.SEMGRecordings` of the benchmark (seed ``SEED``)."""
    from lightvision.datasets import make_semg

    return make_semg(SEMG["subjects"], duration_s=SEMG["duration_s"], random_state=SEED)


@cache
def semg_windows(split: str):
    """(windows (n, 8, 400) float32, angle / 60 (n,) float32) of the source subjects: the
    "train" part, or the "test" part (their last 15 s)."""
    import numpy as np
    import torch

    from lightvision.adaptation.semg import semg_split

    parts = [semg_split(semg_recordings(), s, window_ms=SEMG["window_ms"],
                        step_ms=SEMG["step_ms"], test_s=SEMG["test_s"])[split]
             for s in SEMG["sources"]]
    X = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    return torch.from_numpy(X), torch.from_numpy(y / 60.0).float()


@cache
def raw_images(name: str):
    """((X_train, y_train), (X_test, y_test)) as raw images (uint8, (n, H, W)) for the feature
    benchmarks: digits with the same 75/25 split as :func:`image_data`; Fashion-MNIST as a
    stratified sample of ``CONFIG["feature_train"]`` / ``CONFIG["feature_test"]`` images."""
    from sklearn.model_selection import train_test_split

    from lightvision.datasets import load_digits, load_fashion_mnist

    if name == "digits":
        images, labels = load_digits()
        Xtr, Xte, ytr, yte = train_test_split(images, labels, test_size=0.25, stratify=labels,
                                              random_state=SEED)
        return (Xtr, ytr), (Xte, yte)
    if name == "fashion_mnist":
        parts = []
        for split, size in (("train", CONFIG["feature_train"]), ("test", CONFIG["feature_test"])):
            images, labels = load_fashion_mnist(split, source=CONFIG["fashion_source"])
            if size < len(labels):
                images, _, labels, _ = train_test_split(images, labels, train_size=size,
                                                        stratify=labels, random_state=SEED)
            parts.append((images, labels))
        return tuple(parts)
    raise ValueError(f"unknown benchmark dataset {name!r}")


def train_config(entry) -> dict:
    """The ``fit`` keyword arguments for a registered model in the current profile."""
    config = dict(entry.meta.get("train", {}))
    config.setdefault("epochs", 10)
    if CONFIG["max_epochs"] is not None:
        config["epochs"] = min(config["epochs"], CONFIG["max_epochs"])
    return config
