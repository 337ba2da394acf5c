"""Capture the outputs of named submodules during a forward pass (forward hooks).

The intermediate-feature interface for any ``nn.Module``: distillation and quantization read
the feature maps of a teacher's or student's stages through it, and
:meth:`lightvision.models.Classifier.forward_intermediates` is built on it.

>>> import torch
>>> from torch import nn
>>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(2))
>>> with capture_outputs(net, ["0", "2"]) as maps:
...     logits = net(torch.randn(3, 1, 6, 6))
>>> [tuple(m.shape) for m in maps.values()]
[(3, 4, 4, 4), (3, 64)]
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from .._checks import check_model

__all__ = ["capture_outputs"]


@contextlib.contextmanager
def capture_outputs(model: nn.Module, names: Sequence[str]) -> Iterator[dict[str, torch.Tensor]]:
    """Within the ``with`` block, ``{name: output}`` of the submodules ``names`` (dotted paths,
    as in ``named_modules``), in the order given, filled by every forward pass (the last one
    wins). The outputs keep their autograd history; the hooks are removed on exit.

    A name that is no submodule raises a ``KeyError`` naming it.
    """
    check_model(model)
    if isinstance(names, str):
        raise TypeError(f"names must be a sequence of module names, got the str {names!r}")
    modules = dict(model.named_modules())
    missing = [name for name in names if name not in modules or not name]
    if missing:
        raise KeyError(f"the model has no submodules {missing}")
    outputs: dict[str, torch.Tensor] = dict.fromkeys(names)  # keeps the order given

    def hook(name: str):
        def record(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
            outputs[name] = output

        return record

    handles = [modules[name].register_forward_hook(hook(name)) for name in names]
    try:
        yield outputs
    finally:
        for handle in handles:
            handle.remove()
