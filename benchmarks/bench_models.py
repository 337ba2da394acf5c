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

from .common import SEED, image_data, train_config

NAMES = MODELS.list()


def _build(name):
    entry = MODELS.get(name)
    torch.manual_seed(SEED)
    return entry, lightvision.create_model(name, **entry.bench_params)


class ModelSuite:
    params = NAMES
    param_names = ["model"]
    timeout = 1800

    def setup_cache(self):
        """Train every registered model once; keep weights and test error."""
        results = {}
        for name in NAMES:
            entry, model = _build(name)
            dataset = entry.meta.get("dataset", "fashion_mnist")
            X, y = image_data(dataset, "train")
            history = fit(model, X, y, random_state=SEED, progress=False, **train_config(entry))
            results[name] = {
                "state": model.state_dict(),
                "error": evaluate(model, *image_data(dataset, "test"))["error"],
                "train_seconds": history.train_seconds,
            }
        return results

    setup_cache.timeout = 3600

    def setup(self, results, name):
        self.entry, self.model = _build(name)
        self.model.load_state_dict(results[name]["state"])
        self.model.eval()
        self.x = torch.randn(1, *self.entry.meta["input_shape"])

    def track_test_error(self, results, name):
        """Test error rate (1 - accuracy) after the profile's training schedule."""
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
        y = torch.randint(0, self.model.num_classes, (64,))
        fit(self.model, X, y, epochs=1, batch_size=64, progress=False)
