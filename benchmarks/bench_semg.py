"""sEMG inter-subject domain adaptation (Bao et al., seed #13) on generated subjects.

Every method (source only, target only, fine-tuning, SDA with MMD or CORAL) in the single-
source (0 -> 1) and multiple-source (0, 2, 3 -> 1) scenarios, trained once in ``setup_cache``
with the settings of ``tests/test_semg_repro.py``: NRMSE of the wrist angle on the target and
on the sources, training time; inference latency per 200 ms window against the window length.
"""

import torch

from .common import SEED, SEMG, semg_recordings

METHODS = ("source_only", "target_only", "fine_tune", "sda", "sda_coral")
SCENARIOS = {"single": [0], "multiple": list(SEMG["sources"])}
SETTINGS = {"target_s": 10.0, "test_s": SEMG["test_s"], "window_ms": SEMG["window_ms"],
            "step_ms": SEMG["step_ms"], "epochs": 20, "lr": 2e-3, "lam": 0.1}
PER_METHOD = {"fine_tune": {"fine_tune_lr": 3e-4, "target_epochs": 10},
              "target_only": {"target_epochs": 30}}


def _train_all(self):
    from lightvision.adaptation.semg import run_semg_method

    results = {}
    for scenario, sources in SCENARIOS.items():
        for method in METHODS:
            run = run_semg_method(method, semg_recordings(), sources, SEMG["target"],
                                  random_state=SEED, **SETTINGS, **PER_METHOD.get(method, {}))
            results[scenario, method] = {"target": run["target"]["nrmse"],
                                         "source": run["source"]["nrmse"],
                                         "seconds": run["seconds"]}
    return results


_train_all.timeout = 1800


class DomainAdaptationSuite:
    params = (list(SCENARIOS), list(METHODS))
    param_names = ["scenario", "method"]
    timeout = 1800
    setup_cache = _train_all

    def track_target_nrmse(self, results, scenario, method):
        """NRMSE (RMSE / range) of the wrist angle on the target subject's last 15 s."""
        return results[scenario, method]["target"]

    track_target_nrmse.unit = "NRMSE"

    def track_source_nrmse(self, results, scenario, method):
        """NRMSE on the source subjects' last 15 s (forgetting shows here)."""
        return results[scenario, method]["source"]

    track_source_nrmse.unit = "NRMSE"

    def track_train_seconds(self, results, scenario, method):
        """Training wall time (fine-tuning: source training and fine-tuning together)."""
        return results[scenario, method]["seconds"]

    track_train_seconds.unit = "seconds"


class WindowLatencySuite:
    """One 200 ms window (8 channels x 400 samples) through the sEMG CNN, batch 1, one
    thread: the real-time budget is the window hop (50 ms) and the window itself (200 ms)."""

    params = ["spectrogram", "raw"]
    param_names = ["representation"]

    def setup(self, representation):
        from lightvision.models import SEMGNet

        torch.manual_seed(SEED)
        self.model = SEMGNet(representation=representation).eval()
        self.window = torch.randn(1, 8, 400)
        self.threads = torch.get_num_threads()
        torch.set_num_threads(1)

    def teardown(self, representation):
        torch.set_num_threads(self.threads)

    def time_predict_window(self, representation):
        with torch.inference_mode():
            self.model(self.window)

    def track_latency_over_window(self, representation):
        """Median latency of one window over the window's 200 ms (far below 1 = real time)."""
        from lightvision.metrics import measure_latency

        latency = measure_latency(self.model, self.window, repeats=50, warmup=5)
        return latency.median_ms / SEMG["window_ms"]

    track_latency_over_window.unit = "ratio"
