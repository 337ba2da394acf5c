"""Structured pruning (EPruner #4, FilterSketch #6, SSR #22, and the L1-norm baseline) of the
reference CNN trained on the Fashion-MNIST subset: cost ratios, accuracy drop after the same
short fine-tuning, pruning and fine-tuning time, pruned inference latency; Torch-Pruning's
magnitude pruner at equal MACs when it is installed."""

import copy
import time

import torch

import lightvision
from lightvision.training import evaluate, fit

from .common import SEED, image_data, train_config

#: Two strengths per pruner, each about halving (mild) or quartering (strong) the MACs of
#: small_cnn (EPruner's exemplar count is chosen by beta, SSR's by lam: not by a ratio; SSR
#: zeroes more channels the more F/Y updates it makes, see SSR_TRAINING).
CONFIGS = {
    ("l1", "mild"): {"ratio": 0.3}, ("l1", "strong"): {"ratio": 0.5},
    ("epruner", "mild"): {"beta": 0.4}, ("epruner", "strong"): {"beta": 0.55},
    ("filtersketch", "mild"): {"ratio": 0.3}, ("filtersketch", "strong"): {"ratio": 0.5},
    ("ssr", "mild"): {"lam": 0.08}, ("ssr", "strong"): {"lam": 0.1},
}
#: SSR's AULM training of the trained network before removal: 3 epochs of SGD, F/Y updated
#: every 40 steps (11 updates; the authors: 40 updates of 200 steps per layer).
SSR_TRAINING = {"epochs": 3, "batch_size": 64, "lr": 1e-2, "random_state": SEED}
FINE_TUNE = {"epochs": 2, "lr": 1e-2, "optimizer": "adamw", "weight_decay": 0.05}


def _base():
    entry = lightvision.registry.MODELS.get("small_cnn")
    torch.manual_seed(SEED)
    model = lightvision.create_model("small_cnn")
    fit(model, *image_data("fashion_mnist", "train"), random_state=SEED, progress=False,
        **train_config(entry))
    return model


def _prune_all(self):
    from lightvision.compression.pruning import SSR, fine_tune
    from lightvision.registry import PRUNERS

    X, y = image_data("fashion_mnist", "train")
    X_test, y_test = image_data("fashion_mnist", "test")
    base = _base()
    base_error = evaluate(base, X_test, y_test)["error"]
    results = {"base_error": base_error}
    for (method, level), config in CONFIGS.items():
        start = time.perf_counter()
        if method == "ssr":  # regularise a copy with AULM first (data needed), then remove
            model, pruner = copy.deepcopy(base), SSR(**config, update_every=40)
            pruner.regularize(model, X, y, **SSR_TRAINING)
        else:
            model, pruner = base, PRUNERS.create(method, **config)
        small, report = pruner(model, X[:2])
        prune_seconds = time.perf_counter() - start
        history = fine_tune(small, X, y, random_state=SEED, **FINE_TUNE)
        results[method, level] = {
            "state": small, "error": evaluate(small, X_test, y_test)["error"],
            "params_ratio": report.params_ratio, "macs_ratio": report.macs_ratio,
            "prune_seconds": prune_seconds, "fine_tune_seconds": history.train_seconds}
    return results


_prune_all.timeout = 3600


class PruningSuite:
    params = (["l1", "epruner", "filtersketch", "ssr"], ["mild", "strong"])
    param_names = ["pruner", "level"]
    timeout = 3600
    setup_cache = _prune_all

    def setup(self, results, pruner, level):
        self.model = results[pruner, level]["state"].eval()
        self.batch = torch.randn(32, 1, 28, 28)

    def track_error_increase(self, results, pruner, level):
        """Test error after pruning and 2 epochs of fine-tuning minus the unpruned error."""
        return results[pruner, level]["error"] - results["base_error"]

    track_error_increase.unit = "fraction"

    def track_params_ratio(self, results, pruner, level):
        return results[pruner, level]["params_ratio"]

    track_params_ratio.unit = "ratio"

    def track_macs_ratio(self, results, pruner, level):
        return results[pruner, level]["macs_ratio"]

    track_macs_ratio.unit = "ratio"

    def track_prune_seconds(self, results, pruner, level):
        """Selection + surgery (SSR: its AULM training too)."""
        return results[pruner, level]["prune_seconds"]

    track_prune_seconds.unit = "seconds"

    def track_fine_tune_seconds(self, results, pruner, level):
        return results[pruner, level]["fine_tune_seconds"]

    track_fine_tune_seconds.unit = "seconds"

    def time_pruned_inference_batch_32(self, results, pruner, level):
        with torch.inference_mode():
            self.model(self.batch)


class TorchPruningSuite:
    """Torch-Pruning's L1 magnitude pruner (an optional benchmark dependency) on the same
    trained network at the MACs of lightvision's L1 pruner (ratio 0.5), with the same
    fine-tuning, for a side-by-side of accuracy and speed."""

    timeout = 3600

    def setup_cache(self):
        try:
            import torch_pruning as tp
        except ImportError:  # optional: the suite is skipped
            return None
        from lightvision.compression.pruning import fine_tune

        X, y = image_data("fashion_mnist", "train")
        X_test, y_test = image_data("fashion_mnist", "test")
        base = _base()
        model = copy.deepcopy(base).eval()
        example = X[:2]
        pruner = tp.pruner.MagnitudePruner(
            model, example, importance=tp.importance.MagnitudeImportance(p=1),
            pruning_ratio=0.5, ignored_layers=[model.head])
        start = time.perf_counter()
        pruner.step()
        seconds = time.perf_counter() - start
        fine_tune(model, X, y, random_state=SEED, **FINE_TUNE)
        macs = tp.utils.count_ops_and_params(model, example)[0]
        base_macs = tp.utils.count_ops_and_params(base, example)[0]
        return {"model": model, "seconds": seconds, "macs_ratio": macs / base_macs,
                "error": evaluate(model, X_test, y_test)["error"]}

    def setup(self, results):
        if results is None:
            raise NotImplementedError("torch-pruning is not installed")
        self.model = results["model"].eval()
        self.batch = torch.randn(32, 1, 28, 28)

    def track_error(self, results):
        return results["error"]

    track_error.unit = "fraction"

    def track_macs_ratio(self, results):
        return results["macs_ratio"]

    track_macs_ratio.unit = "ratio"

    def track_prune_seconds(self, results):
        return results["seconds"]

    track_prune_seconds.unit = "seconds"

    def time_pruned_inference_batch_32(self, results):
        with torch.inference_mode():
            self.model(self.batch)
