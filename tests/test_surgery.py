"""The structural surgery engine: channel groups from the traced graph, real removal, rewiring."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import lightvision
from lightvision.compression.pruning import channel_groups, prune_channels
from lightvision.metrics import count_ops, count_params


class _Concat(nn.Module):
    """Two branches concatenated along the channels, a depthwise conv, a residual sum."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 6, 3, padding=1)
        self.b = nn.Conv2d(3, 4, 1)
        self.bn = nn.BatchNorm2d(10)
        self.dw = nn.Conv2d(10, 10, 3, padding=1, groups=10, bias=False)
        self.pw = nn.Conv2d(10, 8, 1)
        self.skip = nn.Conv2d(3, 8, 1)
        self.head = nn.Linear(8 * 4 * 4, 5)

    def forward(self, x):
        y = torch.relu(self.bn(torch.cat([self.a(x), self.b(x)], dim=1)))
        y = self.pw(self.dw(y)) + self.skip(x)
        y = nn.functional.adaptive_avg_pool2d(torch.relu(y), 4)
        return self.head(y.flatten(1))


class _Grouped(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(2, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.c2 = nn.Conv2d(8, 12, 3, padding=1, groups=4)
        self.c3 = nn.Conv2d(12, 3, 1)

    def forward(self, x):
        return self.c3(torch.relu(self.c2(torch.relu(self.bn1(self.c1(x)))))).mean((2, 3))


class _ViewHead(nn.Module):
    """Flatten written as ``x.view(x.shape[0], -1)``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 6, 3)
        self.fc = nn.Linear(6 * 4 * 4, 3)

    def forward(self, x):
        y = torch.relu(self.conv(x))
        return self.fc(y.view(y.shape[0], -1))


def _lenet():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 4 * 4, 32), nn.ReLU(), nn.Linear(32, 10))


def _models():
    torch.manual_seed(0)
    return {
        "small_cnn": (lightvision.create_model("small_cnn"), torch.randn(2, 1, 28, 28)),
        "resnet20": (lightvision.create_model("resnet20", depth=8, width=0.5),
                     torch.randn(2, 1, 17, 15)),
        "resnet29_bottleneck": (lightvision.create_model("resnet29_bottleneck", depth=11,
                                                         width=0.5), torch.randn(2, 1, 16, 16)),
        "concat": (_Concat(), torch.randn(2, 3, 8, 8)),
        "grouped": (_Grouped(), torch.randn(2, 2, 6, 6)),
        "lenet": (_lenet(), torch.randn(2, 1, 28, 28)),
        "view_head": (_ViewHead(), torch.randn(2, 1, 6, 6)),
    }


def _settle(model, x):
    """Give batch norms non-trivial statistics and affine parameters, then eval mode."""
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(x)
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return model.eval()


def _random_keep(groups, ratio, generator):
    keep = {}
    for g in groups:
        if g.prunable and g.size > 1:
            n = max(1, round(g.size * (1 - ratio)))
            keep[g.name] = torch.randperm(g.size, generator=generator)[:n].sort().values
    return keep


@pytest.mark.parametrize("name", list(_models()))
def test_keeping_every_channel_reproduces_the_model_exactly(name):
    model, x = _models()[name]
    _settle(model, x)
    groups = channel_groups(model, x)
    keep = {g.name: range(g.size) for g in groups if g.prunable}
    assert keep, "every test model has prunable groups"
    pruned = prune_channels(model, keep, x)
    with torch.no_grad():
        assert torch.equal(pruned(x), model(x))
    assert count_params(pruned) == count_params(model)


@pytest.mark.parametrize("name", ["small_cnn", "resnet20", "resnet29_bottleneck", "lenet",
                                  "view_head"])
def test_pruned_model_equals_the_original_with_removed_channels_silenced(name):
    """Zeroing, in the original, the input weights that read each removed channel (every
    consumer's) silences those channels; the physically pruned model must then give the same
    outputs (up to float rounding from the changed summation length)."""
    model, x = _models()[name]
    _settle(model, x)
    groups = channel_groups(model, x)
    keep = _random_keep(groups, 0.5, torch.Generator().manual_seed(1))
    pruned = prune_channels(model, keep, x)
    silenced = copy.deepcopy(model)
    removed = {}
    for g in groups:
        if g.name in keep:
            mask = torch.ones(g.size, dtype=torch.bool)
            mask[keep[g.name]] = False
            removed[g.name] = mask
    # Zero each removed channel at its producers (weights, bias) and at the batch norms that
    # follow (beta, running mean): it is then 0 after every norm, activation, pooling and
    # residual sum, which is exact for these networks (no concatenation here).
    for g in groups:
        if g.name not in removed:
            continue
        mask = removed[g.name]
        for module_name, role in g.users:
            module = silenced.get_submodule(module_name)
            with torch.no_grad():
                if role == "out":
                    module.weight[mask] = 0
                    if module.bias is not None:
                        module.bias[mask] = 0
                elif role == "norm":
                    module.bias[mask] = 0
                    module.running_mean[mask] = 0
    with torch.no_grad():
        torch.testing.assert_close(pruned(x), silenced(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", list(_models()))
def test_pruned_model_is_smaller_runs_and_trains(name):
    model, x = _models()[name]
    groups = channel_groups(model, x)
    keep = _random_keep(groups, 0.5, torch.Generator().manual_seed(2))
    if name == "grouped":  # c2 has 4 groups: keep the same number of channels in each
        keep["c1"], keep["c2"] = torch.tensor([0, 2, 5, 7]), torch.tensor([1, 3, 8, 10])
    pruned = prune_channels(model, keep, x)
    assert count_params(pruned).trainable < count_params(model).trainable
    assert count_ops(pruned, x).macs < count_ops(model, x).macs
    pruned.train()
    out = pruned(x)
    out.square().mean().backward()
    assert all(p.grad is not None for p in pruned.parameters())
    for module in pruned.modules():  # ordinary layers, no masks or hooks
        assert not module._forward_hooks and not module._forward_pre_hooks


def test_input_model_is_untouched_unless_inplace():
    model, x = _models()["resnet20"]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    modules = dict(model.named_modules())
    keep = {"stages.0.0.residual.0.0": [0, 3]}
    pruned = prune_channels(model, keep, x)
    assert pruned is not model and pruned.stages[0][0].residual[0][0].out_channels == 2
    assert dict(model.named_modules()).keys() == modules.keys()
    assert all(m is modules[n] for n, m in model.named_modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model.stages[0][0].residual[0][0].out_channels == 8
    same = prune_channels(model, keep, x, inplace=True)
    assert same is model and model.stages[0][0].residual[0][0].out_channels == 2


def test_groups_follow_residual_sums_and_the_head():
    model, x = _models()["resnet20"]  # depth 8: one basic block per stage, widths 8/16/32
    groups = {g.name: g for g in channel_groups(model, x)}
    inner = groups["stages.0.0.residual.0.0"]  # the block-internal width (EPruner's target)
    assert inner.producers == ("stages.0.0.residual.0.0",) and inner.prunable
    assert inner.users == (("stages.0.0.residual.0.0", "out"), ("stages.0.0.residual.0.1", "norm"),
                           ("stages.0.0.residual.2.0", "in"))
    stream = groups["stem.0.0"]  # stem output + identity shortcut + block output of stage 0
    assert stream.producers == ("stem.0.0", "stages.0.0.residual.2.0") and stream.prunable
    assert ("stages.1.0.shortcut.0", "in") in stream.users
    last = groups["stages.2.0.residual.2.0"]  # joined with the projection shortcut
    assert last.producers == ("stages.2.0.residual.2.0", "stages.2.0.shortcut.0")
    assert ("head", "in") in last.users  # through global average pooling and flatten
    assert not groups["head"].prunable and groups["head"].blockers == ("the model's output",)
    assert len(groups) == 7


def test_flatten_maps_channels_to_feature_runs():
    model, x = _models()["lenet"]
    pruned = prune_channels(model, {"3": [1, 4]}, x)
    assert pruned[3].out_channels == 2 and pruned[7].in_features == 2 * 16
    torch.testing.assert_close(pruned[7].weight, torch.cat(
        [model[7].weight[:, 16:32], model[7].weight[:, 64:80]], dim=1))


def test_concat_and_depthwise_are_rewired():
    model, x = _models()["concat"]
    groups = {g.name: g for g in channel_groups(model, x)}
    assert ("bn", "norm") in groups["a"].users and ("dw", "depthwise") in groups["b"].users
    pruned = prune_channels(model, {"a": [0, 5], "b": [3]}, x)
    assert pruned.bn.num_features == 3 and pruned.dw.groups == 3 and pruned.pw.in_channels == 3
    torch.testing.assert_close(pruned.pw.weight, model.pw.weight[:, [0, 5, 9]])


def test_grouped_convolution_needs_balanced_groups():
    model, x = _models()["grouped"]
    pruned = prune_channels(model, {"c1": [0, 2, 5, 7], "c2": [0, 3, 6, 9]}, x)
    assert (pruned.c2.in_channels, pruned.c2.out_channels, pruned.c2.groups) == (4, 4, 4)
    torch.testing.assert_close(pruned.c2.weight[1], model.c2.weight[3][[0]])
    with pytest.raises(ValueError, match="same non-zero number in every group"):
        prune_channels(model, {"c1": [0, 1, 2, 3]}, x)


def test_new_weights_replace_the_sliced_ones():
    model, x = _models()["lenet"]
    w = torch.randn(3, 6, 5, 5)
    pruned = prune_channels(model, {"3": [0, 1, 2]}, x, new_weights={"3": w})
    assert torch.equal(pruned[3].weight, w)
    with pytest.raises(ValueError, match="shape"):
        prune_channels(model, {"3": [0, 1, 2]}, x, new_weights={"3": torch.randn(2, 6, 5, 5)})
    with pytest.raises(KeyError, match="not a pruned layer"):
        prune_channels(model, {"3": [0, 1, 2]}, x, new_weights={"0": w})


class _Custom(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(1, 4, 3)
        self.ln = nn.LayerNorm([4, 6, 6])
        self.c2 = nn.Conv2d(4, 4, 3)
        self.c3 = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        return self.c3(torch.relu(self.c2(self.ln(self.c1(x))))).sum((1, 2, 3))


def test_clear_errors():
    model, x = _Custom(), torch.randn(1, 1, 8, 8)
    groups = {g.name: g for g in channel_groups(model, x)}
    assert not groups["c1"].prunable and groups["c2"].prunable
    with pytest.raises(ValueError, match=r"cannot be pruned: read by ln \(LayerNorm\)"):
        prune_channels(model, {"c1": [0]}, x)
    with pytest.raises(KeyError, match="produces no channel group"):
        prune_channels(model, {"c9": [0]}, x)
    with pytest.raises(ValueError, match="zero width"):
        prune_channels(model, {"c2": []}, x)
    with pytest.raises(ValueError, match=r"outside \[0, 4\)"):
        prune_channels(model, {"c2": [4]}, x)
    with pytest.raises(ValueError, match="repeated"):
        prune_channels(model, {"c2": [1, 1]}, x)
    with pytest.raises(TypeError, match="mapping"):
        prune_channels(model, [("c2", [0])], x)
    with pytest.raises(TypeError, match="example_inputs"):
        channel_groups(model, [x])
    assert prune_channels(model, {"c2": [0, 2]}, x).c2.out_channels == 2
