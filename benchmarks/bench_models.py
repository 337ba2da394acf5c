"""Every registered model, trained once per run on its dataset: error, size, cost and speed.

Parametrised over :data:`lightvision.registry.MODELS`, so a newly registered model is
benchmarked without touching this file. Training settings come from the entry's ``train``
metadata (capped in the quick profile, see ``common.py``).
"""

import torch

import lightvision
from lightvision.metrics import count_ops, count_params, model_size_bytes
from lightvision.registry import MODELS
from lightvision.training import evaluate, fit

from .common import (
    CLOUD_SCENES,
    SEED,
    cloud_patches,
    cloud_scenes,
    image_data,
    semg_windows,
    train_config,
)

NAMES = MODELS.list()


def _build(name):
    entry = MODELS.get(name)
    torch.manual_seed(SEED)
    return entry, lightvision.create_model(name, **entry.bench_params)


def _train_all(self):
    """Train every registered model once; keep weights and test error. Shared by the suites
    below (asv runs a ``setup_cache`` function once per key: module and line)."""
    results = {}
    for name in NAMES:
        entry, model = _build(name)
        dataset = entry.meta.get("dataset", "fashion_mnist")
        if dataset == "clouds":  # regression of the cloud fraction of each patch
            from lightvision.models.cloud import cloud_loss

            history = fit(model, *cloud_patches("train"), loss=cloud_loss,
                          random_state=SEED, progress=False, **train_config(entry))
            error = _cloud_fraction_mae(model)
        elif dataset == "semg":  # wrist angle / 60 from sEMG windows of the source subjects
            history = fit(model, *semg_windows("train"), loss=_mse,
                          random_state=SEED, progress=False, **train_config(entry))
            error = _semg_nrmse(model)
        else:
            X, y = image_data(dataset, "train")
            if "bof" in entry.tags:  # k-means codebook on 200 training images, as the paper
                subset = torch.randperm(len(X), generator=torch.Generator().manual_seed(SEED))
                model.initialize_bof(X[subset[:200]], n_samples=5000, random_state=SEED)
            history = fit(model, X, y, random_state=SEED, progress=False,
                          **train_config(entry))
            error = evaluate(model, *image_data(dataset, "test"))["error"]
        results[name] = {"state": model.state_dict(), "error": error,
                         "train_seconds": history.train_seconds}
    return results


_train_all.timeout = 3600


def _trained(results, name):
    entry, model = _build(name)
    model.load_state_dict(results[name]["state"])
    return entry, model.eval()


class ModelSuite:
    params = NAMES
    param_names = ["model"]
    timeout = 1800
    setup_cache = _train_all

    def setup(self, results, name):
        self.entry, self.model = _trained(results, name)
        self.x = torch.randn(1, *self.entry.meta["input_shape"])
        self.targets = (torch.rand(64) if "regression" in self.entry.tags
                        else torch.randint(0, self.model.num_classes, (64,)))

    def track_test_error(self, results, name):
        """Test error rate (1 - accuracy) after the profile's training schedule; for the cloud
        models, the mean absolute error of the predicted cloud fraction per test patch; for
        the sEMG models, the NRMSE of the wrist angle on held-out windows."""
        return results[name]["error"]

    track_test_error.unit = "fraction"

    def track_train_seconds(self, results, name):
        """Wall time of the whole training run in setup_cache."""
        return results[name]["train_seconds"]

    track_train_seconds.unit = "seconds"

    def track_trainable_params(self, results, name):
        return count_params(self.model).trainable

    track_trainable_params.unit = "parameters"

    def track_macs(self, results, name):
        """Real multiply-accumulates per image (FLOPs = 2 x MACs)."""
        return count_ops(self.model, self.x).macs

    track_macs.unit = "MACs"

    def track_model_bytes(self, results, name):
        return model_size_bytes(self.model)

    track_model_bytes.unit = "bytes"

    def time_predict_one(self, results, name):
        """Batch-1 inference (the median over asv's samples is the latency)."""
        with torch.inference_mode():
            self.model(self.x)

    def peakmem_train_step(self, results, name):
        """Peak resident memory of one training step at batch 64 (random input; the process
        baseline, torch included, is part of the figure)."""
        X = torch.randn(64, *self.entry.meta["input_shape"])
        loss = None
        if "clouds" in self.entry.tags:
            from lightvision.models.cloud import cloud_loss as loss
        elif "regression" in self.entry.tags:
            loss = _mse
        fit(self.model, X, self.targets, epochs=1, batch_size=64, loss=loss, progress=False)


def _cloud_fraction_mae(model):
    X, y = cloud_patches("test")
    model.eval()
    with torch.inference_mode():
        return float((torch.sigmoid(model(X)).squeeze(1) - y).abs().mean())


def _mse(output, target):
    """MSE of a one-output regressor's (n, 1) predictions against (n,) targets."""
    return torch.nn.functional.mse_loss(output.reshape(target.shape), target)


def _semg_nrmse(model):
    from lightvision.models.semg import kinematics_scores

    X, y = semg_windows("test")
    model.eval()
    with torch.inference_mode():
        predicted = model(X).squeeze(1)
    return kinematics_scores(y.numpy(), predicted.numpy())["nrmse"]


class CloudDownlinkSuite:
    """The cloud-prioritisation models (Park et al., seed #18) ranking the generated test
    scenes for downlink, trained in the shared ``setup_cache``."""

    params = MODELS.list(tags=("clouds",))
    param_names = ["model"]
    timeout = 1800
    setup_cache = _train_all

    def setup(self, results, name):
        from lightvision.models.cloud import image_priority

        _, model = _trained(results, name)
        scenes = cloud_scenes("test")
        priority = image_priority(model, scenes.images, patch_size=CLOUD_SCENES["patch_size"])
        self.order = priority, scenes.is_clear(0.1), len(scenes.images) // 5

    def track_downlink_missed_clear(self, results, name):
        """Cloud models (Park et al.): 1 - precision@k of clear images (cloud fraction < 0.1)
        among the first k = 20 % of test scenes downlinked by predicted cloud cover."""
        from lightvision.models.cloud import precision_at_k

        return 1.0 - precision_at_k(*self.order)

    track_downlink_missed_clear.unit = "fraction"

    def track_chronological_over_priority_clear(self, results, name):
        """Cloud models: clear images in the first k chronologically over those in the first k
        by priority (1 / downlink gain; below 1 = the model beats chronological order)."""
        from lightvision.models.cloud import downlink_gain

        return 1.0 / downlink_gain(*self.order)

    track_chronological_over_priority_clear.unit = "ratio"


class InputScaleSuite:
    """The pooling-head models (Passalis & Tefas, seed #24) trained on 28x28 images and tested
    on the test images shrunk to 0.8x (22x22, bilinear with antialiasing), the paper's
    robustness test."""

    params = MODELS.list(tags=("pooling",))
    param_names = ["model"]
    timeout = 1800
    setup_cache = _train_all

    def track_test_error_at_0_8x(self, results, name):
        """Test error on 22x22 test images of a model trained on 28x28 (lower is better)."""
        entry, model = _trained(results, name)
        X, y = image_data(entry.meta.get("dataset", "fashion_mnist"), "test")
        small = torch.nn.functional.interpolate(X, size=(22, 22), mode="bilinear",
                                                antialias=True, align_corners=False)
        return evaluate(model, small, y)["error"]

    track_test_error_at_0_8x.unit = "fraction"
