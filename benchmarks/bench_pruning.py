"""Structured pruning of the reference CNN trained on the Fashion-MNIST subset, with every
registered pruner (:data:`lightvision.registry.PRUNERS`) at each strength of its
``bench_params`` (``{label: config}``): cost ratios, accuracy drop after the same short
fine-tuning, pruning and fine-tuning time, pruned inference latency; Torch-Pruning's magnitude
pruner at equal MACs when it is installed.

Every pruner is called through the compression contract with the same training data (data-free
pruners ignore it; SSR trains on it), so no pruner is special-cased here."""

import copy
import inspect
import time

import torch

import lightvision
from lightvision.compression import fine_tune
from lightvision.registry import PRUNERS
from lightvision.training import evaluate, fit

from .common import SEED, image_data, train_config

#: The pruning papers' protocol, shortened: 2 epochs of fine-tuning after pruning.
FINE_TUNE = {"epochs": 2, "lr": 1e-2, "optimizer": "adamw", "weight_decay": 0.05}
#: Strength labels across the registered pruners (a pruner lacking one is skipped there).
LEVELS = sorted({label for entry in PRUNERS.entries() for label in entry.bench_params})


def _base():
    entry = lightvision.registry.MODELS.get("small_cnn")
    torch.manual_seed(SEED)
    model = lightvision.create_model("small_cnn")
    fit(model, *image_data("fashion_mnist", "train"), random_state=SEED, progress=False,
        **train_config(entry))
    return model


def _method(entry, config):
    """The registered pruner with ``config``, seeded with ``SEED`` where it takes a seed."""
    seeded = "random_state" in inspect.signature(entry.obj).parameters
    return entry.create(**({"random_state": SEED} if seeded else {}), **config)


def _prune_all(self):
    X, y = image_data("fashion_mnist", "train")
    X_test, y_test = image_data("fashion_mnist", "test")
    base = _base()
    results = {"base_error": evaluate(base, X_test, y_test)["error"]}
    for entry in PRUNERS.entries():
        for level, config in entry.bench_params.items():
            small, report = _method(entry, config)(base, X[:2], data=(X, y))
            history = fine_tune(small, X, y, random_state=SEED, **FINE_TUNE)
            results[entry.name, level] = {
                "state": small, "error": evaluate(small, X_test, y_test)["error"],
                "report": report.to_dict(), "fine_tune_seconds": history.train_seconds}
    return results


_prune_all.timeout = 3600


class PruningSuite:
    params = (PRUNERS.list(), LEVELS)
    param_names = ["pruner", "level"]
    timeout = 3600
    setup_cache = _prune_all

    def setup(self, results, pruner, level):
        if (pruner, level) not in results:
            raise NotImplementedError(f"{pruner} has no bench config {level!r}")
        self.result = results[pruner, level]
        self.model = self.result["state"].eval()
        self.batch = torch.randn(32, 1, 28, 28)

    def _ratio(self, cost):
        before, after = self.result["report"][cost]
        return after / before

    def track_error_increase(self, results, pruner, level):
        """Test error after pruning and 2 epochs of fine-tuning minus the unpruned error."""
        return self.result["error"] - results["base_error"]

    track_error_increase.unit = "fraction"

    def track_params_ratio(self, results, pruner, level):
        return self._ratio("params")

    track_params_ratio.unit = "ratio"

    def track_macs_ratio(self, results, pruner, level):
        return self._ratio("macs")

    track_macs_ratio.unit = "ratio"

    def track_storage_ratio(self, results, pruner, level):
        """Stored bits after / before."""
        return self._ratio("storage_bits")

    track_storage_ratio.unit = "ratio"

    def track_prune_seconds(self, results, pruner, level):
        """The whole call: selection and surgery, and any training the method does (SSR)."""
        return self.result["report"]["seconds"]

    track_prune_seconds.unit = "seconds"

    def track_fine_tune_seconds(self, results, pruner, level):
        return self.result["fine_tune_seconds"]

    track_fine_tune_seconds.unit = "seconds"

    def time_pruned_inference_batch_32(self, results, pruner, level):
        with torch.inference_mode():
            self.model(self.batch)


class TorchPruningSuite:
    """Torch-Pruning's L1 magnitude pruner (an optional benchmark dependency) on the same
    trained network, half of every width removed (the MACs of lightvision's strong L1
    config), with the same fine-tuning, for a side-by-side of accuracy and speed."""

    timeout = 3600

    def setup_cache(self):
        try:
            import torch_pruning as tp
        except ImportError:  # optional: the suite is skipped
            return None
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
