"""Bao et al. (seed #13) at small scale: inter-subject supervised domain adaptation (SDA) of a
CNN that regresses the wrist angle from sEMG, against a source-only model and fine-tuning.

Paper [ABSTRACT]: a shared-weight two-stream CNN trained with regression losses on a source
and a (few-label) target subject plus a feature-discrepancy loss beats fine-tuning on the
target subject and keeps its accuracy on the source subject(s) (no catastrophic forgetting),
for single-source and multiple-source -> single-target scenarios. No numbers are known.

Setup: :func:`lightvision.datasets.make_semg` with 5 subjects x 8 channels x 60 s at 2 kHz
(``random_state`` = seed), 200 ms windows every 50 ms, angle / 60 as target;
:func:`lightvision.adaptation.semg.run_semg_method` with the spectrogram :class:`SEMGNet`
(defaults), AdamW, batch 64, lr 2e-3, weight decay 1e-4, cosine schedule, 20 epochs over the
source windows. Target subject 1; sources 0 (single) or 0, 2, 3 (multiple). Labelled target
data: the first 10 s (197 windows); test: the last 15 s of the target and of every source
(a gap of at least one window separates training and test windows). Fine-tuning: the
source-only model, all layers, 10 epochs on the target windows at lr 3e-4. SDA: from scratch,
MMD, lam 0.1, ``streams="joint"``. Seeds (data and training) 0, 1, 2 for the single source,
0, 1 for the multiple sources.

Attempts, on seeds 0-2 (targets NRMSE single / multi, means):

- ``streams="separate"`` (the literal two-stream reading: each stream normalised with its own
  batch statistics), lam 1: SDA target 0.156 / 0.080, source 0.16 / 0.085: the BN running
  statistics used at test time mix the two subjects, which fits neither. ``streams="joint"``
  (one pass on the concatenated batch): lam 1: 0.081 / 0.076, lam 0.3: 0.10 (seeds 0-1 single:
  0.134, 0.054), lam 0.1: 0.089 / 0.064, lam 0 (joint training without the discrepancy):
  0.063, 0.045 (seeds 0-1 single), i.e. the MMD term does not help on this data.
- fine-tuning at lr 2e-3 x 30 epochs: target 0.22 / 0.29 (seed 0: it overfits the 10 s);
  lr 1e-3 x 10: 0.110 / 0.080; lr 3e-4 x 10 (kept): 0.081 / 0.069.
- 20 s of labelled target data (seeds 0-1): fine-tuning 0.063 / 0.045, SDA (lam 0.1, joint)
  0.050 / 0.044; source NRMSE after fine-tuning 0.39 / 0.19, after SDA 0.047 / 0.045.

Measured with these settings (2-core VM, torch CPU, 1 thread; target / source NRMSE on the
test windows):

=========  ====  ===============  ===============  ===============
scenario   seed  source-only      fine-tuning      SDA
=========  ====  ===============  ===============  ===============
single     0     0.204 / 0.038    0.089 / 0.252    0.178 / 0.044
single     1     0.340 / 0.044    0.076 / 0.519    0.044 / 0.057
single     2     0.237 / 0.046    0.080 / 0.198    0.048 / 0.060
multiple   0     0.070 / 0.042    0.064 / 0.252    0.082 / 0.045
multiple   1     0.236 / 0.039    0.047 / 0.243    0.041 / 0.046
=========  ====  ===============  ===============  ===============

Means of the target NRMSE, SDA against fine-tuning: 0.090 vs 0.082 (single), 0.062 vs 0.056
(multiple). Wall time of this file: about 100 s on the 2-core VM (with another process
running).

What holds: (a) a source-only model is clearly worse on the new subject than on its sources'
held-out data (the Pearson r stays high: it is mostly a gain/offset error); (c) fine-tuning
forgets the sources while SDA keeps them close to the source-only level. What does NOT hold:
(b) SDA beating fine-tuning on the target: with 10 s of target data the two are on par (SDA
worse for seed 0 single source, which one bad run dominates), and with 20 s SDA is only
slightly better; removing the MMD term (lam 0) does as well, so the gain over fine-tuning
comes from joint training on both subjects, not from the discrepancy loss. The test asserts
only (a), (c) and a regression guard on (b): SDA's mean target NRMSE at most 1.5x
fine-tuning's and below the source-only model's.

Tolerances: (a) target NRMSE > 1.4x source NRMSE for every run (measured 1.7-7.7x: seed 0
with multiple sources, 0.070 vs 0.042, transfers well) and > 3x on average (measured 5.2x);
(c) source NRMSE after fine-tuning > 2x after SDA for every run (measured 3.3-9.1x) and SDA's
source NRMSE < 0.1 (measured <= 0.06); (b) guard at 1.5x (measured ratios 1.10 and 1.11):
seeds change the weights, so single runs vary by about +-0.05 NRMSE (seed 0 single: 0.178).
"""

from __future__ import annotations

import numpy as np
import pytest

from lightvision.adaptation.semg import run_semg_method
from lightvision.datasets import make_semg

pytestmark = pytest.mark.repro

SCENARIOS = {"single": ([0], 1, (0, 1, 2)), "multiple": ([0, 2, 3], 1, (0, 1))}
COMMON = {"target_s": 10.0, "test_s": 15.0, "step_ms": 50.0, "epochs": 20, "lr": 2e-3}
FINE_TUNE = {"fine_tune_lr": 3e-4, "target_epochs": 10}
SDA = {"lam": 0.1, "streams": "joint"}


@pytest.fixture(scope="module")
def results():
    out = {}
    for seed in (0, 1, 2):
        rec = make_semg(5, duration_s=60.0, random_state=seed)
        for name, (sources, target, seeds) in SCENARIOS.items():
            if seed not in seeds:
                continue
            ft = run_semg_method("fine_tune", rec, sources, target, random_state=seed,
                                 **COMMON, **FINE_TUNE)
            sda = run_semg_method("sda", rec, sources, target, random_state=seed, **COMMON, **SDA)
            out[name, seed] = {"source_only": ft["pretrained"], "fine_tune": ft, "sda": sda}
            print(name, seed, {m: (round(r["target"]["nrmse"], 3), round(r["source"]["nrmse"], 3))
                               for m, r in out[name, seed].items()})
    return out


def test_source_only_degrades_on_a_new_subject(results):
    ratios = []
    for key, r in results.items():
        s = r["source_only"]
        ratios.append(s["target"]["nrmse"] / s["source"]["nrmse"])
        assert ratios[-1] > 1.4, key
        assert s["source"]["r2"] > 0.9, key
    assert np.mean(ratios) > 3.0, ratios


def test_sda_keeps_source_accuracy_where_fine_tuning_forgets(results):
    for key, r in results.items():
        assert r["fine_tune"]["source"]["nrmse"] > 2.0 * r["sda"]["source"]["nrmse"], key
        assert r["sda"]["source"]["nrmse"] < 0.1, key
        assert r["fine_tune"]["target"]["nrmse"] < r["source_only"]["target"]["nrmse"], key


def test_sda_against_fine_tuning_on_the_target(results):
    # the paper's "SDA beats fine-tuning" does not hold here (see the module docstring):
    # a regression guard only
    for name in SCENARIOS:
        runs = [r for (n, _), r in results.items() if n == name]
        sda = np.mean([r["sda"]["target"]["nrmse"] for r in runs])
        ft = np.mean([r["fine_tune"]["target"]["nrmse"] for r in runs])
        src = np.mean([r["source_only"]["target"]["nrmse"] for r in runs])
        assert sda < 1.5 * ft, (name, sda, ft)
        assert sda < src, (name, sda, src)
