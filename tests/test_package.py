"""Package-level guarantees: a light import, every public component registered, README
examples that run."""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import lightvision
from lightvision.registry import BLOCKS, FEATURES, MODELS, PRUNERS

HEAVY = ("torch", "cv2", "tensorly", "sklearn", "scipy")
README = Path(__file__).resolve().parents[1] / "README.md"


def test_import_is_light_and_fast():
    code = (
        "import sys, time; t = time.perf_counter(); import lightvision; "
        "t = time.perf_counter() - t; "
        f"print(t, [m for m in {HEAVY!r} if m in sys.modules])"
    )
    best_wall, inner = float("inf"), None
    for _ in range(3):  # best of three: the limit is on the import, not on a busy machine
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True).stdout.split(" ", 1)
        best_wall = min(best_wall, time.perf_counter() - start)
        inner = out
    assert inner[1].strip() == "[]", f"importing lightvision loaded {inner[1].strip()}"
    assert best_wall < 0.3, f"python -c 'import lightvision' took {best_wall:.3f} s"


def _public_classes():
    for module in _modules():
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and obj.__module__ == module.__name__ \
                    and not name.startswith("_") and not inspect.isabstract(obj):
                yield obj


def test_every_public_component_is_registered():
    from sklearn.base import BaseEstimator
    from torch import nn

    from lightvision.compression.pruning import Pruner
    from lightvision.models import Classifier

    made = {type(e.create(**e.test_params)) for e in MODELS.entries()}
    registered = made | {e.obj for r in (MODELS, BLOCKS, FEATURES, PRUNERS)
                         for e in r.entries()}
    missing = []
    for cls in _public_classes():
        is_component = (
            issubclass(cls, (Classifier, Pruner))
            or (issubclass(cls, nn.Module) and cls.__module__.startswith("lightvision.nn"))
            or (issubclass(cls, BaseEstimator)
                and cls.__module__.startswith("lightvision.features"))
        )
        if is_component and cls not in registered:
            missing.append(f"{cls.__module__}.{cls.__qualname__}")
    assert not missing, f"public components not registered: {missing}"


def _modules():
    for info in pkgutil.walk_packages(lightvision.__path__, "lightvision."):
        if not any(part.startswith("_") for part in info.name.split(".")[1:]):
            yield importlib.import_module(info.name)


@pytest.mark.parametrize("module", ["lightvision", *(m.__name__ for m in _modules())])
def test_docstring_examples_run(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {module}"


def _readme_examples():
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


@pytest.mark.parametrize("index", range(len(_readme_examples())))
def test_readme_example_runs(index):
    exec(compile(_readme_examples()[index], f"README.md example {index + 1}", "exec"), {})
