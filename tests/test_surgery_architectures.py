"""The surgery engine on the architectures users bring: small faithful versions (few channels,
3x32x32 inputs) of ten standard families, pruned by L1 at ratio 0.3 with ``layers="auto"``
and ``"all"``: the block-internal layers shrink, the output shape stays, the pruned model
runs, and what is left alone says why."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import lightvision
from lightvision.compression.pruning import channel_groups
from lightvision.metrics import count_params


def _cbr(cin, cout, k=3, stride=1, groups=1, act=nn.ReLU):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), act())


class _Basic(nn.Module):  # ResNet basic block
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = _cbr(cin, cout, 3, stride)
        self.conv2 = nn.Sequential(nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
                                   nn.BatchNorm2d(cout))
        self.down = None if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x if self.down is None else self.down(x)
        return torch.relu(self.conv2(self.conv1(x)) + identity)


class _Bottleneck(nn.Module):  # ResNet bottleneck block
    def __init__(self, cin, width, stride=1):
        super().__init__()
        self.conv1, self.conv2 = _cbr(cin, width, 1), _cbr(width, width, 3, stride)
        self.conv3 = nn.Sequential(nn.Conv2d(width, 4 * width, 1, bias=False),
                                   nn.BatchNorm2d(4 * width))
        self.down = nn.Sequential(nn.Conv2d(cin, 4 * width, 1, stride, bias=False),
                                  nn.BatchNorm2d(4 * width))

    def forward(self, x):
        return torch.relu(self.conv3(self.conv2(self.conv1(x))) + self.down(x))


class ResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = _cbr(3, 8)
        self.layer1 = nn.Sequential(_Basic(8, 8), _Basic(8, 16, 2))
        self.layer2 = _Bottleneck(16, 6, 2)
        self.fc = nn.Linear(24, 10)

    def forward(self, x):
        x = self.layer2(self.layer1(self.stem(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class _Inverted(nn.Module):  # MobileNetV2 inverted residual
    def __init__(self, cin, cout, stride, expand=4):
        super().__init__()
        hidden = cin * expand
        self.use_res = stride == 1 and cin == cout
        self.conv = nn.Sequential(
            _cbr(cin, hidden, 1, act=nn.ReLU6), _cbr(hidden, hidden, 3, stride, hidden, nn.ReLU6),
            nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return x + self.conv(x) if self.use_res else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(_cbr(3, 8, stride=2, act=nn.ReLU6), _Inverted(8, 8, 1),
                                      _Inverted(8, 12, 2), _Inverted(12, 12, 1),
                                      _cbr(12, 32, 1, act=nn.ReLU6))
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(32, 10))

    def forward(self, x):
        x = nn.functional.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


class _DenseLayer(nn.Module):
    def __init__(self, cin, growth):
        super().__init__()
        self.norm1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, 2 * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(2 * growth)
        self.conv2 = nn.Conv2d(2 * growth, growth, 3, padding=1, bias=False)

    def forward(self, features):
        x = torch.cat(features, 1)
        return self.conv2(F.relu(self.norm2(self.conv1(F.relu(self.norm1(x))))))


class DenseNet(nn.Module):
    def __init__(self, growth=4):
        super().__init__()
        self.conv0 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.layers = nn.ModuleList([_DenseLayer(8 + i * growth, growth) for i in range(3)])
        self.transition = nn.Sequential(nn.BatchNorm2d(20), nn.ReLU(),
                                        nn.Conv2d(20, 10, 1, bias=False), nn.AvgPool2d(2))
        self.norm = nn.BatchNorm2d(10)
        self.classifier = nn.Linear(10, 10)

    def forward(self, x):
        features = [self.conv0(x)]
        for layer in self.layers:
            features.append(layer(features))
        x = F.relu(self.norm(self.transition(torch.cat(features, 1))))
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class _SqueezeExcite(nn.Module):
    def __init__(self, channels, squeezed, act=nn.SiLU):
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(channels, squeezed, 1), nn.Conv2d(squeezed, channels, 1)
        self.act = act()

    def forward(self, x):
        scale = F.adaptive_avg_pool2d(x, 1)
        return x * torch.sigmoid(self.fc2(self.act(self.fc1(scale))))


class _MBConv(nn.Module):  # EfficientNet
    def __init__(self, cin, cout, stride, expand=4):
        super().__init__()
        hidden = cin * expand
        self.expand = _cbr(cin, hidden, 1, act=nn.SiLU)
        self.depthwise = _cbr(hidden, hidden, 3, stride, hidden, nn.SiLU)
        self.se = _SqueezeExcite(hidden, max(1, cin // 4))
        self.project = nn.Sequential(nn.Conv2d(hidden, cout, 1, bias=False),
                                     nn.BatchNorm2d(cout))
        self.use_res = stride == 1 and cin == cout

    def forward(self, x):
        y = self.project(self.se(self.depthwise(self.expand(x))))
        return x + y if self.use_res else y


class EfficientNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = _cbr(3, 8, stride=2, act=nn.SiLU)
        self.blocks = nn.Sequential(_MBConv(8, 8, 1), _MBConv(8, 12, 2), _MBConv(12, 12, 1))
        self.head = _cbr(12, 32, 1, act=nn.SiLU)
        self.classifier = nn.Linear(32, 10)

    def forward(self, x):
        x = self.head(self.blocks(self.stem(x)))
        return self.classifier(x.mean((2, 3)))


class _RegNetBlock(nn.Module):  # RegNetY bottleneck: grouped 3x3, squeeze-and-excitation
    def __init__(self, cin, cout, stride, group_width=4):
        super().__init__()
        self.a = _cbr(cin, cout, 1)
        self.b = _cbr(cout, cout, 3, stride, cout // group_width)
        self.se = _SqueezeExcite(cout, max(1, cin // 4), nn.ReLU)
        self.c = nn.Sequential(nn.Conv2d(cout, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.proj = None if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        shortcut = x if self.proj is None else self.proj(x)
        return F.relu(self.c(self.se(self.b(self.a(x)))) + shortcut)


class RegNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = _cbr(3, 8, stride=2)
        self.trunk = nn.Sequential(_RegNetBlock(8, 16, 2), _RegNetBlock(16, 16, 1))
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.trunk(self.stem(x)), 1), 1))


class _Inception(nn.Module):  # GoogLeNet
    def __init__(self, cin, c1, c3r, c3, c5r, c5, pool):
        super().__init__()
        self.branch1 = _cbr(cin, c1, 1)
        self.branch2 = nn.Sequential(_cbr(cin, c3r, 1), _cbr(c3r, c3, 3))
        self.branch3 = nn.Sequential(_cbr(cin, c5r, 1), _cbr(c5r, c5, 3))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), _cbr(cin, pool, 1))

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class GoogLeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = _cbr(3, 8, stride=2)
        self.inception3a = _Inception(8, 4, 4, 8, 2, 4, 4)
        self.inception3b = _Inception(20, 8, 6, 8, 2, 4, 4)
        self.fc = nn.Linear(24, 10)

    def forward(self, x):
        x = self.inception3b(self.inception3a(F.max_pool2d(self.conv1(x), 3, 2, 1)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class _Fire(nn.Module):  # SqueezeNet
    def __init__(self, cin, squeeze, expand):
        super().__init__()
        self.squeeze = nn.Conv2d(cin, squeeze, 1)
        self.expand1x1, self.expand3x3 = nn.Conv2d(squeeze, expand, 1), nn.Conv2d(
            squeeze, expand, 3, padding=1)

    def forward(self, x):
        x = torch.relu(self.squeeze(x))
        return torch.cat([torch.relu(self.expand1x1(x)), torch.relu(self.expand3x3(x))], 1)


class SqueezeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, 2), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True), _Fire(8, 4, 8),
            _Fire(16, 4, 8), nn.MaxPool2d(3, 2, ceil_mode=True), _Fire(16, 6, 12))
        self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Conv2d(24, 10, 1), nn.ReLU(),
                                        nn.AdaptiveAvgPool2d((1, 1)))

    def forward(self, x):
        return torch.flatten(self.classifier(self.features(x)), 1)


class _ChannelsFirstNorm(nn.Module):
    """ConvNeXt's LayerNorm over the channels of (N, C, H, W) maps, written with means."""

    def __init__(self, channels, eps=1e-6):
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.ones(channels)), nn.Parameter(
            torch.zeros(channels))
        self.eps = eps

    def forward(self, x):
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class _ConvNeXtBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1, self.act, self.pwconv2 = nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(
            4 * dim, dim)
        self.gamma = nn.Parameter(1e-6 * torch.ones(dim))

    def forward(self, x):
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.gamma * self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        return x + y.permute(0, 3, 1, 2)


class ConvNeXt(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 4, 4), _ChannelsFirstNorm(8))
        self.stage1 = _ConvNeXtBlock(8)
        self.down = nn.Sequential(_ChannelsFirstNorm(8), nn.Conv2d(8, 16, 2, 2))
        self.stage2 = _ConvNeXtBlock(16)
        self.norm, self.head = nn.LayerNorm(16, eps=1e-6), nn.Linear(16, 10)

    def forward(self, x):
        x = self.stage2(self.down(self.stage1(self.stem(x))))
        return self.head(self.norm(x.mean([-2, -1])))


def _channel_shuffle(x, groups):
    n, c, h, w = x.size()
    x = x.view(n, groups, c // groups, h, w).transpose(1, 2).contiguous()
    return x.view(n, -1, h, w)


class _ShuffleUnit(nn.Module):  # ShuffleNetV2
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.stride, branch = stride, cout // 2
        if stride > 1:
            self.branch1 = nn.Sequential(
                nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), nn.BatchNorm2d(cin),
                _cbr(cin, branch, 1))
        self.branch2 = nn.Sequential(
            _cbr(cin if stride > 1 else branch, branch, 1),
            nn.Conv2d(branch, branch, 3, stride, 1, groups=branch, bias=False),
            nn.BatchNorm2d(branch), _cbr(branch, branch, 1))

    def forward(self, x):
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return _channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = _cbr(3, 8, stride=2)
        self.stage2 = nn.Sequential(_ShuffleUnit(8, 16, 2), _ShuffleUnit(16, 16, 1))
        self.conv5 = _cbr(16, 32, 1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        return self.fc(self.conv5(self.stage2(self.conv1(x))).mean([2, 3]))


class _EncoderBlock(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim)
        self.self_attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Dropout(0.0),
                                 nn.Linear(4 * dim, dim), nn.Dropout(0.0))

    def forward(self, x):
        y = self.ln_1(x)
        x = x + self.self_attention(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class ViT(nn.Module):
    def __init__(self, dim=16, patch=8, size=32):
        super().__init__()
        self.conv_proj = nn.Conv2d(3, dim, patch, patch)
        self.class_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embedding = nn.Parameter(0.02 * torch.randn(1, (size // patch) ** 2 + 1, dim))
        self.layers = nn.Sequential(_EncoderBlock(dim, 2), _EncoderBlock(dim, 2))
        self.ln, self.head = nn.LayerNorm(dim), nn.Linear(dim, 10)

    def forward(self, x):
        x = self.conv_proj(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = self.ln(self.layers(x + self.pos_embedding))
        return self.head(x[:, 0])


class _HandWrittenAttention(nn.Module):
    """A timm-style ViT block: qkv Linear, heads by reshape / permute, softmax, MLP."""

    def __init__(self, dim=16, heads=2):
        super().__init__()
        self.heads, self.embed = heads, nn.Conv2d(3, dim, 8, 8)
        self.norm1, self.qkv, self.proj = nn.LayerNorm(dim), nn.Linear(dim, 3 * dim), nn.Linear(
            dim, dim)
        self.norm2, self.fc1, self.fc2 = nn.LayerNorm(dim), nn.Linear(dim, 4 * dim), nn.Linear(
            4 * dim, dim)
        self.head = nn.Linear(dim, 10)

    def forward(self, x):
        x = self.embed(x).flatten(2).transpose(1, 2)
        b, n, c = x.shape
        qkv = self.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, c // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        attention = (q @ k.transpose(-2, -1) * (c // self.heads) ** -0.5).softmax(dim=-1)
        x = x + self.proj((attention @ v).transpose(1, 2).reshape(b, n, c))
        x = x + self.fc2(F.gelu(self.fc1(self.norm2(x))))
        return self.head(x.mean(1))


# family: (builder, block-internal layers that must shrink with "auto", and with "all")
FAMILIES = {
    "resnet": (ResNet, ["layer1.0.conv1.0", "layer2.conv1.0", "layer2.conv2.0"], []),
    "mobilenet_v2": (MobileNetV2, ["features.1.conv.0.0", "features.2.conv.0.0"], []),
    "densenet": (DenseNet, ["layers.0.conv1", "layers.2.conv1"], ["layers.1.conv2"]),
    "efficientnet": (EfficientNet, ["blocks.0.se.fc1", "blocks.2.se.fc1"],
                     ["blocks.0.expand.0", "blocks.1.expand.0"]),
    "regnet": (RegNet, ["trunk.0.a.0", "trunk.1.a.0"], ["trunk.0.b.0"]),
    "googlenet": (GoogLeNet, ["inception3a.branch2.0.0", "inception3b.branch1.0"], []),
    "squeezenet": (SqueezeNet, ["features.3.squeeze", "features.4.expand3x3"], []),
    "convnext": (ConvNeXt, [], ["stage1.pwconv1", "stage2.pwconv1"]),
    "shufflenet_v2": (ShuffleNetV2, ["stage2.0.branch2.0.0", "stage2.1.branch2.0.0"], []),
    "vit": (ViT, [], ["layers.0.mlp.0", "layers.1.mlp.0"]),
}


def _width(module):
    return module.out_features if isinstance(module, nn.Linear) else module.out_channels


def _build(family):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model, x = FAMILIES[family][0]().eval(), torch.randn(2, 3, 32, 32)
    return model, x


@pytest.mark.parametrize("family", list(FAMILIES))
def test_each_family_prunes_inside_its_blocks(family):
    model, x = _build(family)
    _, auto_layers, all_layers = FAMILIES[family]
    with torch.no_grad():
        expected = model(x).shape
    groups = channel_groups(model, x)
    assert all(g.blockers for g in groups if not g.prunable)  # every refusal says why
    for layers, shrinking in (("auto", auto_layers), ("all", auto_layers + all_layers)):
        if not shrinking:  # no ordinary convolution inside the blocks (ConvNeXt, ViT)
            with pytest.raises(ValueError, match="no prunable layer"):
                lightvision.prune(model, x, method="l1", ratio=0.3, layers=layers)
            continue
        pruned, report = lightvision.prune(model, x, method="l1", ratio=0.3, layers=layers)
        assert count_params(pruned).total < count_params(model).total, layers
        for name in shrinking:
            assert _width(pruned.get_submodule(name)) < _width(model.get_submodule(name)), name
        with torch.no_grad():
            assert pruned(x).shape == expected
            assert pruned(x[:1]).shape == (1, *expected[1:])


def _reasons(model, x):
    return {g.name: " ".join(g.blockers) for g in channel_groups(model, x)}


def test_what_each_family_reports_blocked():
    model, x = _build("shufflenet_v2")
    reasons = _reasons(model, x)
    assert "splitting or tiling the channel axis" in reasons["stage2.0.branch1.2.0"]
    assert reasons["stage2.0.branch2.0.0"] == ""  # inside the branch: prunable
    model, x = _build("vit")
    groups = {g.name: g for g in channel_groups(model, x)}
    assert "MultiheadAttention: attention heads are not pruned" in " ".join(
        groups["conv_proj"].blockers)
    assert groups["layers.0.mlp.0"].prunable and ("layers.0.mlp.3", "in") in groups[
        "layers.0.mlp.0"].users
    model, x = _HandWrittenAttention().eval(), torch.randn(2, 3, 32, 32)
    groups = {g.name: g for g in channel_groups(model, x)}
    assert groups["qkv"].blockers == ("reshape (reshape) splitting or tiling the channel axis",)
    assert groups["embed"].blockers[0].startswith("the model fails when its channels are removed")
    assert groups["fc1"].prunable
    pruned, _ = lightvision.prune(model, x, method="l1", ratio=0.3, layers="all")
    assert pruned.fc1.out_features == 45 and pruned(x).shape == (2, 10)
    model, x = _build("convnext")
    groups = {g.name: g for g in channel_groups(model, x)}
    assert "mean (mean) over the channel axis" in " ".join(groups["stem.0"].blockers)
    hidden = groups["stage1.pwconv1"]
    assert hidden.prunable and ("stage1.pwconv2", "in") in hidden.users
    model, x = _build("regnet")
    groups = {g.name: g for g in channel_groups(model, x)}
    assert groups["trunk.0.a.0"].divisions == 4 and groups["trunk.0.a.0"].prunable


def test_convnext_stream_with_layer_norm_and_layer_scale_is_sliced():
    """The channels-last stream of a ConvNeXt block (depthwise conv, LayerNorm, pointwise
    Linear, layer scale gamma, residual) prunes as one group once its channels-first norm is
    not there: LayerNorm and gamma are sliced with it, exactly."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 4, 4), _ConvNeXtBlock(8), nn.Conv2d(8, 4, 1)).eval()
    with torch.no_grad():
        model[1].gamma.uniform_(0.5, 1.5)
    x = torch.randn(2, 3, 16, 16)
    groups = {g.name: g for g in channel_groups(model, x)}
    stream = groups["0"]
    assert stream.prunable and stream.producers == ("0", "1.pwconv2")
    assert {("1.norm", "layer_norm"), ("1", "param"), ("1.dwconv", "depthwise")} <= set(
        stream.users)
    keep = [0, 2, 3, 7]
    pruned = lightvision.compression.pruning.prune_channels(model, {"0": keep}, x)
    assert pruned[1].norm.normalized_shape == (4,) and pruned[1].gamma.shape == (4,)
    assert torch.equal(pruned[1].gamma, model[1].gamma[keep])
    full = lightvision.compression.pruning.prune_channels(model, {"0": range(8)}, x)
    with torch.no_grad():
        assert torch.equal(full(x), model(x))
