"""Random streams shared by the package: never the caller's global generators.

- :func:`seeded`: torch's global generators (dropout, a ``DataLoader``'s order, weight
  initialisation: draws that take no ``generator=``) forked, seeded and restored around a block,
  so that a public function is reproducible from its ``random_state`` and leaves the caller's
  streams as they were. Draws that take a generator use a local ``torch.Generator`` instead.
- :func:`legacy_random_state`: a ``numpy.random.RandomState`` for scikit-learn estimators.
- :func:`random_streams`: (an int seed for a sub-estimator, a ``numpy.random.Generator`` for
  the package's own draws). Samples without replacement are drawn with the Generator's
  ``choice(n, k, replace=False)``, O(k) time and memory; ``RandomState.choice`` permutes all
  n items (4.2 s and 229 MiB for n = 3e7).
- :func:`default_rng`: the numpy Generator of the data generators.

torch is imported only by :func:`seeded`, so the numpy helpers stay light.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ._checks import check_random_state, is_integer

__all__ = ["default_rng", "legacy_random_state", "random_streams", "seeded"]

#: Seeds handed to sub-estimators are drawn in [0, 2**31 - 1), scikit-learn's int range.
SEED_MAX = int(np.iinfo(np.int32).max)

@contextlib.contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """Run the block on torch's global generators seeded with ``seed``, then restore them.

    Forked and restored: the CPU generator and, when CUDA is initialised on entry, the
    generator of every CUDA device; each of them is seeded with ``seed`` (None: not seeded,
    the block draws on from the caller's states, which are restored all the same). Unlike
    ``torch.manual_seed``, nothing is queued for a CUDA that starts later. [INTERP] When the
    block itself starts CUDA, its CUDA draws follow the caller's CUDA seed (not ``seed``) and
    every CUDA generator is put back to that seed's start on exit, where it would have been
    without the block. numpy's and Python's global generators are not touched (the package
    never draws from them).
    """
    import torch

    cuda = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=cuda, device_type="cuda"):
        if seed is not None:
            torch.default_generator.manual_seed(seed)
            if cuda:  # initialised, so this seeds now rather than queueing a lazy call
                torch.cuda.manual_seed_all(seed)
        try:
            yield
        finally:
            if not cuda and torch.cuda.is_initialized():
                for generator in torch.cuda.default_generators:
                    generator.manual_seed(generator.initial_seed())


def legacy_random_state(random_state: Any, name: str = "random_state") -> np.random.RandomState:
    """A ``RandomState`` from what scikit-learn accepts as a random state, or a Generator.

    None: fresh OS entropy (not numpy's global ``RandomState``, which scikit-learn would
    use); an int < 2**32: ``RandomState(int)``, scikit-learn's stream; a larger int (< 2**64):
    ``RandomState(PCG64(int))``; a ``RandomState``: itself; a ``Generator``: a
    ``RandomState`` sharing its bit generator (draws advance the Generator).
    """
    check_random_state(random_state, name)
    if isinstance(random_state, np.random.RandomState):
        return random_state
    if isinstance(random_state, np.random.Generator):
        return np.random.RandomState(random_state.bit_generator)
    if is_integer(random_state) and random_state >= 2**32:
        return np.random.RandomState(np.random.PCG64(int(random_state)))
    return np.random.RandomState(None if random_state is None else int(random_state))


def random_streams(random_state: Any,
                   name: str = "random_state") -> tuple[int, np.random.Generator]:
    """(seed, generator): an int seed in [0, 2**31 - 1) for a sub-estimator (the first draw
    of :func:`legacy_random_state`, as ``check_random_state(s).randint(2**31 - 1)`` gives),
    and a ``numpy.random.Generator`` seeded by the second draw, whose ``choice(n, k,
    replace=False)`` costs O(k) (``RandomState.choice`` permutes all n items)."""
    legacy = legacy_random_state(random_state, name)
    seed = int(legacy.randint(SEED_MAX))
    return seed, np.random.default_rng(int(legacy.randint(SEED_MAX)))


def default_rng(random_state: Any, name: str = "random_state") -> np.random.Generator:
    """``numpy.random.default_rng(random_state)`` once ``random_state`` is checked: None, an
    int >= 0 (numpy ints too), a non-empty sequence of such ints, a ``SeedSequence``, a
    ``BitGenerator``, a ``Generator`` (returned as is, so it is advanced) or a ``RandomState``
    (its bit generator is used); anything else raises ``TypeError``/``ValueError`` naming
    ``name``."""
    if isinstance(random_state, np.random.SeedSequence | np.random.BitGenerator):
        return np.random.default_rng(random_state)
    if isinstance(random_state, Sequence | np.ndarray) and not isinstance(random_state,
                                                                         str | bytes):
        values = np.asarray(random_state)
        if values.ndim != 1 or values.size == 0 or values.dtype == bool \
                or not np.issubdtype(values.dtype, np.integer):
            raise TypeError(f"{name} as a sequence must be a non-empty 1-d sequence of ints, "
                            f"got {random_state!r}")
        if (values < 0).any():
            raise ValueError(f"{name} must hold ints >= 0, got {random_state!r}")
        return np.random.default_rng(values)
    check_random_state(random_state, name)
    return np.random.default_rng(random_state)
