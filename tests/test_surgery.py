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


# -- blockers named up front (issue 14, item 2) ----------------------------------------------
class _PerChannel(nn.Module):
    """PReLU with one slope per channel, a shared PReLU, a 1-D per-channel scale broadcast
    onto (N, C) features and a squeeze-and-excitation gate."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.act1 = nn.Conv2d(3, 6, 3, padding=1), nn.PReLU(6)
        self.c2, self.act2 = nn.Conv2d(6, 6, 3, padding=1), nn.PReLU()
        self.se1, self.se2 = nn.Conv2d(6, 2, 1), nn.Conv2d(2, 6, 1)
        self.scale = nn.Parameter(torch.linspace(0.5, 1.5, 6))
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        y = self.act2(self.c2(self.act1(self.c1(x))))
        y = y * torch.sigmoid(self.se2(torch.relu(self.se1(y.mean((2, 3), keepdim=True)))))
        return self.head(y.mean((2, 3)) * self.scale)


def test_per_channel_parameters_are_sliced_with_their_group():
    torch.manual_seed(0)
    model, x = _PerChannel().eval(), torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        model.act1.weight.uniform_(0.1, 0.9)
    groups = {g.name: g for g in channel_groups(model, x)}
    assert ("act1", "param") in groups["c1"].users and groups["c1"].prunable
    stream = groups["c2"]  # joined with the gate se2 through the broadcast product
    assert stream.producers == ("c2", "se2") and stream.prunable
    assert ("", "param") in stream.users  # model.scale
    pruned = prune_channels(model, {"c1": [1, 4], "c2": [0, 2, 3]}, x)
    assert pruned.act1.num_parameters == 2 and torch.equal(pruned.act1.weight,
                                                           model.act1.weight[[1, 4]])
    assert pruned.act2.num_parameters == 1
    assert torch.equal(pruned.scale, model.scale[[0, 2, 3]])
    assert isinstance(pruned.scale, nn.Parameter)
    assert pruned.se2.out_channels == 3 and pruned.head.in_features == 3
    full = prune_channels(model, {"c1": range(6), "c2": range(6)}, x)
    with torch.no_grad():
        assert torch.equal(full(x), model(x))


def test_views_of_parameters_are_sliced_on_their_own_axes():
    class Scaled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c, self.d = nn.Conv2d(1, 4, 1), nn.Conv2d(4, 2, 1)
            self.gain = nn.Parameter(torch.rand(4, 1, 1))  # per channel
            self.shift = nn.Parameter(torch.rand(1, 1, 1))  # shared by the channels

        def forward(self, x):
            y = self.c(x)
            return self.d(y * self.gain.type_as(y) + self.shift.expand_as(y))

    model, x = Scaled(), torch.randn(2, 1, 4, 4)
    group = channel_groups(model, x)[0]
    assert group.prunable and ("", "param") in group.users
    pruned = prune_channels(model, {"c": [1, 3]}, x)
    assert torch.equal(pruned.gain, model.gain[[1, 3]]) and pruned.shift.shape == (1, 1, 1)


class _Unfollowed(nn.Module):
    """A per-channel tensor computed from a parameter, and a mean over the channel axis of a
    map whose height equals its channel count."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(1, 4, 3, padding=1)
        self.log_scale = nn.Parameter(torch.zeros(4))
        self.c3 = nn.Conv2d(1, 2, 1)

    def forward(self, x):  # x: (N, 1, 4, 4): H == C == 4
        a = self.c1(x).mean((2, 3)) * self.log_scale.exp()
        b = self.c3(self.c2(x).mean(1, keepdim=True))
        return a.sum(1) + b.mean((1, 2, 3))


def test_unfollowed_tensors_and_channel_reductions_block_up_front():
    model, x = _Unfollowed(), torch.randn(2, 1, 4, 4)
    groups = {g.name: g for g in channel_groups(model, x)}
    assert not groups["c1"].prunable
    assert "with a tensor of shape (4,) we do not follow" in groups["c1"].blockers[0]
    assert groups["c2"].blockers == ("mean (mean_1) over the channel axis",)
    with pytest.raises(ValueError, match="over the channel axis"):
        prune_channels(model, {"c2": [0, 1]}, x)


class _Checked(nn.Module):
    """A block that checks its input width in Python (invisible to the traced graph) and a
    flatten whose size is written as a constant."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)
        self.width = 4
        self.c3, self.fc = nn.Conv2d(4, 3, 1), nn.Linear(3 * 16, 2)

    def forward(self, x):
        y = self.c2(torch.relu(self.c1(x)))
        if not isinstance(y, torch.fx.Proxy) and y.shape[1] != self.width:
            raise ValueError(f"expected {self.width} channels")
        return self.fc(self.c3(torch.relu(y)).reshape(x.shape[0], 48))


def test_code_outside_the_graph_blocks_its_groups_up_front():
    model, x = _Checked(), torch.randn(2, 1, 4, 4)
    groups = {g.name: g for g in channel_groups(model, x)}
    assert groups["c1"].prunable
    assert groups["c2"].blockers == ("the model fails when its channels are removed "
                                     "(ValueError: expected 4 channels)",)
    assert groups["c3"].blockers == ("reshape (reshape) to the fixed size 48 of the channels",)
    with pytest.raises(ValueError, match="cannot be pruned: .*'c2': the model fails"):
        prune_channels(model, {"c2": [0, 1]}, x)  # found when the rebuilt model fails
    before = model(x)
    with pytest.raises(ValueError, match="the model fails"):
        prune_channels(model, {"c2": [0, 1]}, x, inplace=True)
    assert model.c2.out_channels == 4 and torch.equal(model(x), before)  # given back whole
    assert prune_channels(model, {"c1": [0, 3]}, x).c2.in_channels == 2


class _SizeArithmetic(nn.Module):
    """Arithmetic on sizes (``n * c``) between tensors we follow: the cause of semg_cnn's
    IndexError."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):  # (N, C, L) signals, each channel through the same conv
        n, c = x.shape[0], x.shape[1]
        y = torch.relu(self.conv(x.reshape(n * c, 1, -1)))
        return self.fc(y.mean(2)).reshape(n, c * 2)


def test_arithmetic_on_sizes_is_not_a_channel_operation():
    model, x = _SizeArithmetic(), torch.randn(2, 3, 10)
    groups = {g.name: g for g in channel_groups(model, x)}
    assert groups["conv"].prunable and groups["conv"].users[-1] == ("fc", "in")
    assert prune_channels(model, {"conv": [1, 2]}, x).fc.in_features == 2


def test_divisions_of_grouped_convolutions():
    model, x = _models()["grouped"]
    groups = {g.name: g for g in channel_groups(model, x)}
    assert groups["c1"].divisions == 4 and groups["c2"].divisions == 4  # c2 has 4 groups
    with pytest.raises(ValueError, match=r"4 divisions of 2 consecutive channels.*\[2, 2, 0, 0\]"):
        prune_channels(model, {"c1": [0, 1, 2, 3]}, x)

    class Thin(nn.Module):  # groups of 2 and of 3 channels on 6: one channel per division
        def __init__(self) -> None:
            super().__init__()
            self.c1 = nn.Conv2d(2, 6, 1)
            self.g1, self.g2 = nn.Conv2d(6, 3, 1, groups=3), nn.Conv2d(6, 2, 1, groups=2)

        def forward(self, x):
            y = self.c1(x)
            return self.g1(y).sum((1, 2, 3)) + self.g2(y).sum((1, 2, 3))

    group = channel_groups(Thin(), x)[0]
    assert group.divisions == 6 and group.blockers == (
        "grouped users need 6 equal divisions of its 6 channels: none can be removed",)


def test_chunk_adds_divisions_and_split_blocks():
    class Halves(nn.Module):
        def __init__(self, split: bool) -> None:
            super().__init__()
            self.split, self.c1 = split, nn.Conv2d(1, 6, 1)
            self.c2, self.c3 = nn.Conv2d(3, 2, 1), nn.Conv2d(3, 2, 1)

        def forward(self, x):
            a, b = self.c1(x).split(3, 1) if self.split else self.c1(x).chunk(2, 1)
            return self.c2(a).sum((1, 2, 3)) + self.c3(b).sum((1, 2, 3))

    x = torch.randn(2, 1, 4, 4)
    model = Halves(False)
    group = channel_groups(model, x)[0]
    assert group.prunable and group.divisions == 2 and group.slots == {("c1", "out"): (0, 1)}
    pruned = prune_channels(model, {"c1": [0, 2, 4, 5]}, x)
    torch.testing.assert_close(pruned.c2.weight, model.c2.weight[:, [0, 2]])
    torch.testing.assert_close(pruned.c3.weight, model.c3.weight[:, [1, 2]])
    assert channel_groups(Halves(True), x)[0].blockers == (
        "split (split) of the channels into fixed sizes",)


def test_bad_indices_and_inputs_get_clear_errors():
    model, x = _Custom(), torch.randn(1, 1, 8, 8)
    with pytest.raises(TypeError, match=r"keep\['c2'\] must hold integer channel indices"):
        prune_channels(model, {"c2": [0.0, 1.7]}, x)
    with pytest.raises(ValueError, match="does not run on example_inputs of shapes"):
        channel_groups(model, torch.randn(1, 3, 8, 8))
    lenet, x = _models()["lenet"]
    before = {k: v.clone() for k, v in lenet.state_dict().items()}
    with pytest.raises(ValueError, match="shape"):  # in place, but nothing half-done
        prune_channels(lenet, {"0": [0, 1], "3": [0, 1, 2]}, x, inplace=True,
                       new_weights={"3": torch.randn(2, 6, 5, 5)})
    assert all(torch.equal(before[k], v) for k, v in lenet.state_dict().items())
