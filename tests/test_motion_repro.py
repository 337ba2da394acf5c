"""Reproduction at small scale of the claims of seed #23 (Leyva, Sanchez, Li 2019): the binary
motion descriptor takes less memory and time than HOF on the same regions, and its binary
Fisher-vector pipeline classifies actions competitively with HOF + Gaussian Fisher vector.

Data: generated KTH-like actions (:func:`lightvision.datasets.make_actions`, 10 actors x 4
scenarios x 6 actions, 40 frames per clip), split by actor (4 test actors, 96 test clips).
Pipelines as :func:`lightvision.features.make_action_pipeline` builds them (32 components,
LinearSVC C = 1), descriptors computed from one shared Farneback flow per clip. Numbers quoted
were measured with these seeds on a 2-core AMD EPYC VM, one OpenCV thread.
"""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from lightvision.datasets import make_actions, train_test_split_by_actor
from lightvision.features import (
    BinaryMotionDescriptor,
    HOFDescriptor,
    make_action_pipeline,
    optical_flow,
)

pytestmark = pytest.mark.repro

SEEDS = (0, 1, 2)


def _describe(videos, descriptors):
    """{name: one descriptor array per video}, all descriptors from one flow per video."""
    out = {name: [] for name in descriptors}
    for video in videos:
        flows = list(optical_flow(video))
        for name, descriptor in descriptors.items():
            out[name].append(descriptor.describe_flow(flows))
    return out


@pytest.fixture(scope="module")
def errors():
    """Test error of the binary and HOF pipelines for each seed."""
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        result = {}
        for seed in SEEDS:
            data = make_actions(10, n_frames=40, random_state=seed)
            train, test = train_test_split_by_actor(data, test_size=9 / 25, random_state=seed)
            pipelines = {name: make_action_pipeline(name, random_state=0)
                         for name in ("binary", "hof")}
            descriptors = {name: p["descriptor"] for name, p in pipelines.items()}
            train_sets = _describe(train.videos, descriptors)
            test_sets = _describe(test.videos, descriptors)
            for name, pipeline in pipelines.items():
                classifier = pipeline[1:].fit(train_sets[name], train.labels)
                result[name, seed] = float(np.mean(classifier.predict(test_sets[name])
                                                   != test.labels))
        return result
    finally:
        cv2.setNumThreads(threads)


def test_binary_pipeline_competitive_with_hof(errors):
    """Measured test error (binary / HOF): seed 0: 13.5 / 18.8 %; seed 1: 14.6 / 13.5 %;
    seed 2: 12.5 / 17.7 % (seed 3: 13.5 / 13.5 %). For reference, not asserted: the absolute
    binary code (``reference="zero"``) 15.6 / 16.7 / 15.6 %, MBH 5.2 / 3.1 / 2.1 %.
    Asserted: the binary pipeline's mean error over the seeds is at most the HOF pipeline's
    plus 3 points (3 of 96 test clips per seed), and no seed is worse by more than 8 points."""
    binary = np.array([errors["binary", s] for s in SEEDS])
    hof = np.array([errors["hof", s] for s in SEEDS])
    assert binary.mean() <= hof.mean() + 0.03, errors
    assert (binary <= hof + 0.08).all(), errors


def test_binary_needs_36_times_less_memory_per_region():
    """12 bytes per region (96 bits) against 432 for the float32 HOF with the defaults: 36x.
    Checked on the arrays actually returned for one generated clip."""
    video = make_actions(1, scenarios=(1,), n_frames=40, random_state=0).videos[0]
    flows = list(optical_flow(video))
    binary = BinaryMotionDescriptor().describe_flow(flows)
    hof = HOFDescriptor().describe_flow(flows)
    assert len(binary) == len(hof) > 0  # the same regions
    assert binary.dtype == np.uint8 and binary.shape[1] == 12 and hof.shape[1] * 4 == 432
    assert binary.nbytes * 36 == hof.nbytes, (binary.nbytes, hof.nbytes)


def test_binary_extracts_faster_than_hof():
    """Descriptor work on the same precomputed flows (40 clips' worth of fields, one thread):
    measured binary 0.07 ms/field against HOF 0.16 ms/field. Asserted: binary takes at most
    0.8x HOF's time (best of 3)."""
    data = make_actions(1, scenarios=(1,), n_frames=40, random_state=1)
    flows = [f for video in data.videos for f in optical_flow(video)]

    def best(descriptor):
        times = []
        for _ in range(3):
            start = time.perf_counter()
            descriptor.describe_flow(flows)
            times.append(time.perf_counter() - start)
        return min(times)

    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        binary, hof = best(BinaryMotionDescriptor()), best(HOFDescriptor())
    finally:
        cv2.setNumThreads(threads)
    assert binary <= 0.8 * hof, (binary, hof)
