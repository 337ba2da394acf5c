"""Shared test setup: every test starts from the same seeds."""

from __future__ import annotations

import random

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _fixed_seeds():
    """Seed Python, NumPy and (when it is loaded) torch before each test."""
    random.seed(0)
    np.random.seed(0)  # noqa: NPY002 (seeds code under test that uses the legacy global RNG)
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(0)
    yield
