"""Passalis & Tefas (seed #24) at small scale: bag-of-features pooling against global max
pooling at equal parameters, at the training scale and on a smaller input.

Paper: the CBoF(64, 1) MNIST network (64 codewords, spatial level 1) has 0.47 % error against
0.78 % for global max pooling (GMP), and 0.99 % against 3.31 % on 20x20 test images (paper
code README); the journal paper states the claim for seven data sets without per-set numbers
reachable offline.

Setup: the bundled Fashion-MNIST subset (10,000 training / 2,000 test images), ``bof_cnn``
(CBoF(64, 1), 54,762 parameters, k-means codebook on 200 training images) against
``gmp_cnn`` (last convolution widened to 127 channels: 54,856 parameters), both trained on
28x28 images for 15 epochs with :func:`lightvision.training.fit` (AdamW lr 1e-2, weight decay
0.01, batch 64), then tested at 28x28 and on the test images shrunk to 0.8x (22x22, bilinear
with antialiasing).

Measured (2-core AMD EPYC VM, torch 2.13), test error at 28x28 / 22x22:

- one thread, seeds 0-5: BoF 12.2 / 11.9 / 11.9 / 11.65 / 11.75 / 11.5 % at 28x28 and 17.3 /
  18.9 / 16.55 / 22.55 / 17.95 / 16.5 % at 22x22; GMP 13.05 / 12.1 / 13.2 / 12.15 / 13.25 /
  12.55 % and 18.65 / 20.7 / 20.3 / 21.4 / 19.9 / 20.35 % (SPP at the same size, seeds 0-2:
  11.0-13.05 / 19.6-20.35 %);
- two threads (this test), seed 0: BoF 12.4 / 22.15 %, GMP 11.25 / 19.25 %; seed 1: BoF
  11.85 / 17.85 %, GMP 12.6 / 20.75 %.

Over these eight runs BoF averages 11.89 % (GMP 12.52 %) at 28x28 and is ahead in 7 of 8: no
worse, as claimed. At 22x22 it averages 18.72 % (GMP 20.16 %), 1.44 points better and ahead in
6 of 8 runs, but its spread between runs is large (16.5-22.55 %, GMP 18.65-21.4 %): more
robust on average, not by a margin that two runs can show. With one global histogram (spatial
level 0, 21,482 parameters) BoF was no better than
a matched GMP and less robust (seeds 0-2: 15.1 / 13.25 / 13.25 % and 22.35 / 22.85 / 22.6 %
against 14.0 / 13.8 / 13.95 % and 20.05 / 19.9 / 20.65 %), also with the paper code's
multi-scale training, which made GMP the most robust of all (13.55-14.7 % at 22x22).

Assertions, over seeds 0 and 1 (the number of threads changes the training trajectory as
another seed would, and run-to-run spread is about 1 point at 28x28 and 2 points at 22x22):
mean BoF error at 28x28 at most 1 point above GMP's ("no worse"), and at 22x22 at most 1 point
above GMP's (a regression guard for the robustness, which is not asserted to be better).
Wall time about 3 minutes on 2 cores (four 15-epoch runs).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import lightvision
from lightvision.datasets import load_fashion_mnist
from lightvision.training import evaluate, fit, images_to_tensor

pytestmark = [pytest.mark.repro, pytest.mark.slow]

SEEDS = (0, 1)
FIT = {"epochs": 15, "batch_size": 64, "lr": 1e-2, "weight_decay": 0.01, "progress": False}


@pytest.fixture(scope="module")
def errors():
    """{(head, seed): (error at 28x28, error at 22x22)} in percent."""
    train, test = (load_fashion_mnist(split, source="bundled") for split in ("train", "test"))
    Xtr, ytr = images_to_tensor(train[0]), torch.as_tensor(train[1])
    Xte, yte = images_to_tensor(test[0]), torch.as_tensor(test[1])
    small = F.interpolate(Xte, size=(22, 22), mode="bilinear", antialias=True,
                          align_corners=False)
    result = {}
    for seed in SEEDS:
        for head in ("bof", "gmp"):
            torch.manual_seed(seed)
            model = lightvision.create_model(f"{head}_cnn")
            if head == "bof":
                subset = torch.randperm(len(Xtr), generator=torch.Generator().manual_seed(seed))
                model.initialize_bof(Xtr[subset[:200]], n_samples=5000, random_state=seed)
            fit(model, Xtr, ytr, random_state=seed, **FIT)
            result[head, seed] = tuple(100 * evaluate(model, x, yte)["error"]
                                       for x in (Xte, small))
    print("\n" + ", ".join(f"{h} seed {s}: {e[0]:.2f} / {e[1]:.2f} %"
                            for (h, s), e in result.items()))
    return result


def _mean(errors, head, scale):
    return sum(errors[head, seed][scale] for seed in SEEDS) / len(SEEDS)


def test_bof_is_no_worse_than_max_pooling_at_equal_parameters(errors):
    bof, gmp = (lightvision.create_model(f"{h}_cnn").param_counts()["total"]
                for h in ("bof", "gmp"))
    assert abs(bof - gmp) <= 0.01 * bof
    assert _mean(errors, "bof", 0) <= _mean(errors, "gmp", 0) + 1.0, errors


def test_bof_is_as_robust_at_0_8x_scale(errors):
    assert _mean(errors, "bof", 1) <= _mean(errors, "gmp", 1) + 1.0, errors
