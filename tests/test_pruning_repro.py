"""EPruner (seed #4) and FilterSketch (seed #6) at small scale: about half the MACs of a
trained CNN removed, then the same short fine-tuning.

Papers: EPruner keeps VGG-16 / ResNet-56 CIFAR-10 accuracy at -76 % / -61 % FLOPs and its
exemplar initialisation beats random initialisation of the same pruned network (93.08 against
92.61 %); FilterSketch keeps ResNet-56 within 0.3 % at -41.5 % FLOPs. Both fine-tune for 150
epochs.

Setup: ``small_cnn`` (94,186 parameters, 7.45 M MACs) trained 6 epochs on the bundled
Fashion-MNIST subset (10,000 / 2,000 images; AdamW lr 1e-2, weight decay 0.05), seeds 0 and 1;
EPruner beta 0.4 (MACs x0.51), L1 ratio 0.3 (MACs x0.49) and FilterSketch ratio 0.12 (MACs
x0.50) on all three convolutions, and FilterSketch at ratio 0.3 (MACs x0.34); every pruned
network fine-tuned 2 epochs (AdamW lr 1e-2). "Random init": EPruner's pruned shapes with every
layer re-initialised, fine-tuned the same way. FilterSketch keeps live filters only: a sketch
of the first layer's 32 filters of 1 x 3 x 3 has at most 9 non-zero rows (their rank), so
that layer keeps 9 at either ratio (before the fix, ratio 0.3 reported 22 of which 13 were
exactly zero, and MACs x0.49).

Measured (2-core AMD EPYC VM, torch 2.13, one thread), test error in %, seeds 0 / 1:

- unpruned 12.15 / 13.15;
- EPruner 13.75 / 13.9 (kept 17/32, 59/64, 72/128 and 19/32, 57/64, 71/128); random init of
  the same shapes 19.6 / 17.75;
- L1 12.4 / 13.4;
- FilterSketch ratio 0.12 (kept 9/32, 56/64, 113/128) 20.7 / 19.85; ratio 0.3 (9/32, 45/64,
  90/128) 22.2 / 19.5 (before the fix, with the 13 zero filters: 22.7 / 21.6).
- with 5 fine-tuning epochs (seed 0, before the FilterSketch fix): EPruner 12.25, random init
  14.35, L1 12.6, FilterSketch (ratio 0.3) 16.55.

FilterSketch recovers slowest, and not because of the zero filters: at the MACs of L1 it is
still 6.45-8.3 points behind it. Every pruned layer gets new filters (a new basis) and the next
layer's input channels are sketched from its own weights, independently of the new filters (as
in the authors' code), so the pair no longer computes anything related until fine-tuning
re-aligns them (the classifier, 10 outputs, leaves only 10 of the last layer's kept channels
any input weight); the paper fine-tunes 150 epochs.

Tolerances (seed-to-seed spread of the base is 1 point; the number of threads changes the
trajectories as a seed would): EPruner within 3 points of the unpruned error (measured +1.6 /
+0.75), L1 within 2 (+0.25 / +0.25), FilterSketch within 12 after 2 epochs (ratio 0.12:
+8.55 / +6.7; ratio 0.3: +10.05 / +6.35; a guard); exemplar initialisation at least 2 points
better than random initialisation on every seed (measured 5.85 / 3.85). Wall time 9.4 minutes
on the shared 2-core machine under load (one thread; about 3 minutes before the extra
FilterSketch run on a quiet machine).
"""

from __future__ import annotations

import copy

import pytest
import torch

import lightvision
from lightvision.compression.pruning import EPruner, FilterSketch, L1Pruner, fine_tune
from lightvision.datasets import load_fashion_mnist
from lightvision.training import evaluate, fit, images_to_tensor

pytestmark = [pytest.mark.repro, pytest.mark.slow]

SEEDS = (0, 1)
FINE_TUNE = {"epochs": 2, "lr": 1e-2, "optimizer": "adamw", "weight_decay": 0.05}
PRUNERS = {"epruner": EPruner(beta=0.4), "l1": L1Pruner(ratio=0.3),
           "filtersketch": FilterSketch(ratio=0.12), "filtersketch_0.3": FilterSketch(ratio=0.3)}


def _reinitialised(model):
    model = copy.deepcopy(model)
    for module in model.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
        if hasattr(module, "reset_running_stats"):
            module.reset_running_stats()
    return model


@pytest.fixture(scope="module")
def errors():
    """{(name, seed): test error in %}, the MACs ratios {(name, seed): ratio} and the kept
    channels {(name, seed): details["kept"]}."""
    train, test = (load_fashion_mnist(s, source="bundled") for s in ("train", "test"))
    X, y = images_to_tensor(train[0]), torch.as_tensor(train[1])
    X_test, y_test = images_to_tensor(test[0]), torch.as_tensor(test[1])
    result, macs, kept = {}, {}, {}
    for seed in SEEDS:
        torch.manual_seed(seed)
        base = lightvision.create_model("small_cnn")
        fit(base, X, y, epochs=6, lr=1e-2, weight_decay=0.05, random_state=seed, progress=False)
        result["base", seed] = 100 * evaluate(base, X_test, y_test)["error"]
        for name, pruner in PRUNERS.items():
            small, report = pruner(base, X[:2])
            macs[name, seed], kept[name, seed] = report.macs_ratio, report.details["kept"]
            runs = {name: small}
            if name == "epruner":
                torch.manual_seed(seed + 100)
                runs["random_init"] = _reinitialised(small)
            for key, model in runs.items():
                fine_tune(model, X, y, random_state=seed, **FINE_TUNE)
                result[key, seed] = 100 * evaluate(model, X_test, y_test)["error"]
    print("\n" + ", ".join(f"{k[0]} seed {k[1]}: {v:.2f} %" for k, v in result.items()))
    print("MACs " + ", ".join(f"{k[0]} seed {k[1]}: x{v:.3f}" for k, v in macs.items()))
    print("kept " + ", ".join(f"{k[0]} seed {k[1]}: {v}" for k, v in kept.items()))
    return result, macs, kept


def test_about_half_the_macs_are_removed(errors):
    _, macs, _ = errors
    assert all(0.4 <= ratio <= 0.6 for (name, _), ratio in macs.items()
               if name != "filtersketch_0.3"), macs


def test_filtersketch_keeps_live_filters_only(errors):
    """At ratio 0.3 the sketch of the first layer (32 filters of 1 x 3 x 3) would have 22
    rows, of which at most 9 (its rank) are non-zero: 9 are kept, MACs x0.344."""
    _, macs, kept = errors
    for seed in SEEDS:
        assert kept["filtersketch_0.3", seed] == {"features.0.0": [9, 32],
                                                  "features.2.0": [45, 64],
                                                  "features.4.0": [90, 128]}
        assert kept["filtersketch", seed]["features.0.0"] == [9, 32]
        assert 0.34 <= macs["filtersketch_0.3", seed] <= 0.35


@pytest.mark.parametrize(("name", "margin"), [("epruner", 3.0), ("l1", 2.0),
                                              ("filtersketch", 12.0),
                                              ("filtersketch_0.3", 12.0)])
def test_pruned_error_stays_within_the_stated_margin(errors, name, margin):
    result = errors[0]
    for seed in SEEDS:
        assert result[name, seed] <= result["base", seed] + margin, (name, seed, result)


def test_exemplar_initialisation_beats_random_initialisation(errors):
    result = errors[0]
    for seed in SEEDS:
        assert result["epruner", seed] <= result["random_init", seed] - 2.0, (seed, result)


def test_ssr_removes_most_lenet_filters_at_the_same_error():
    """SSR (seed #22) on a LeNet-5 (20-50-500, as the paper's MNIST net; 431,080 parameters)
    trained 10 epochs on the Fashion-MNIST subset (SGD lr 0.01, weight decay 5e-4), then 5
    epochs of AULM (l2,1, lam 0.1 / 0.07 / 0.005 for conv1 / conv2 / fc1, rho 1, F and Y
    every 50 steps), removal of the zeroed filters and 5 epochs of fine-tuning.

    Paper (MNIST): 20-50-500 -> 3-11-108 filters, +0.05 % error, 4x CPU speed-up. Measured
    (seed 0, one thread): 20-50-500 -> 3-18-500, MACs x0.12, parameters x0.35, error 15.0 %
    -> 14.9 %. The paper's lam (0.4 / 0.15 / 0.02) left 1 and 4 filters here and 21.8 % error
    (its MNIST runs train 8,000 steps per layer; these, 785 for all layers). Asserted: at
    least 60 % of the convolution filters removed, MACs at most x0.25, error change at most
    +1 point (the claim is < 0.5; the margin covers thread-dependent trajectories).
    """
    from torch import nn

    from lightvision.compression.pruning import SSR

    train, test = (load_fashion_mnist(s, source="bundled") for s in ("train", "test"))
    X, y = images_to_tensor(train[0]), torch.as_tensor(train[1])
    X_test, y_test = images_to_tensor(test[0]), torch.as_tensor(test[1])
    torch.manual_seed(0)
    lenet = nn.Sequential(
        nn.Conv2d(1, 20, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(20, 50, 5), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(800, 500), nn.ReLU(), nn.Linear(500, 10))
    sgd = {"lr": 0.01, "batch_size": 64, "random_state": 0}
    fit(lenet, X, y, epochs=10, optimizer="sgd", weight_decay=5e-4, progress=False, **sgd)
    base = 100 * evaluate(lenet, X_test, y_test)["error"]
    ssr = SSR(lam={"0": 0.1, "3": 0.07, "7": 0.005}, update_every=50,
              train={"epochs": 5, "lr": 0.01, "batch_size": 64})
    small, report = ssr(lenet, X[:2], data=(X, y))  # AULM on a copy, then removal
    fine_tune(small, X, y, epochs=5, weight_decay=4e-5, **sgd)
    error = 100 * evaluate(small, X_test, y_test)["error"]
    kept = report.details["kept"]
    conv_kept = kept["0"][0] + kept["3"][0]
    print(f"\nSSR: kept {kept}, MACs x{report.macs_ratio:.3f}, error {base:.2f} -> "
          f"{error:.2f} %")
    assert conv_kept <= 0.4 * 70
    assert report.macs_ratio <= 0.25
    assert error <= base + 1.0
