"""Encoder-decoder path (seed #10): any input size, one shortcut call, exact parameter counts."""

from __future__ import annotations

import pytest
import torch

from lightvision.nn.ed_path import EDBlock, EDBottleneck, EDPath


def _n_params(module):
    return sum(p.numel() for p in module.parameters())


def _ed_params(c, m, g):
    """Hand formula: two 3x3 grouped convs (c*m/g*9 each, no bias) + BN(m) + BN(c)."""
    return 2 * 9 * c * m // g + 2 * m + 2 * c


@pytest.mark.parametrize("size", [(1, 1), (2, 3), (7, 9), (8, 8), (13, 6), (28, 28)])
def test_ed_path_output_matches_input_size(size):
    ed = EDPath(16, groups=4)
    x = torch.randn(2, 16, *size)
    assert ed(x).shape == x.shape


@pytest.mark.parametrize(("c", "m", "g"), [(256, 64, 32), (512, 128, 32), (16, 4, 4),
                                           (24, 12, 3)])
def test_ed_path_parameter_count_matches_formula(c, m, g):
    assert _n_params(EDPath(c, mid_channels=m, groups=g)) == _ed_params(c, m, g)


def test_ed_resnet50_reference_figures():
    """Stage 1 of ED-ResNet-50: 9,856 parameters; all 16 paths add 2,867,072."""
    assert _n_params(EDPath(256)) == 9_856
    total = sum(n * _n_params(EDPath(4 * w)) for w, n in [(64, 3), (128, 4), (256, 6), (512, 3)])
    assert total == 2_867_072


@pytest.mark.parametrize(("c_in", "c_out", "stride", "size", "expected"), [
    (16, 16, 1, (7, 9), (7, 9)), (8, 16, 2, (7, 9), (4, 5)), (8, 16, 2, (32, 32), (16, 16)),
    (16, 32, 2, (1, 3), (1, 2)), (16, 16, 1, (6, 11), (6, 11)),
])
def test_ed_block_shapes(c_in, c_out, stride, size, expected):
    block = EDBlock(c_in, c_out, stride=stride, groups=4)
    assert block(torch.randn(2, c_in, *size)).shape == (2, c_out, *expected)


@pytest.mark.parametrize(("stride", "size", "expected"), [(1, (9, 9), (9, 9)),
                                                           (2, (7, 10), (4, 5))])
def test_ed_bottleneck_shapes(stride, size, expected):
    block = EDBottleneck(8, 4, stride=stride, groups=4)
    assert block(torch.randn(2, 8, *size)).shape == (2, 16, *expected)


@pytest.mark.parametrize("make", [
    lambda: EDBlock(8, 16, stride=2, groups=4),       # projection shortcut
    lambda: EDBlock(16, 16, groups=4),                # identity shortcut
    lambda: EDBottleneck(8, 4, stride=2, groups=4),
    lambda: EDBottleneck(16, 4, groups=4),
])
def test_shortcut_computed_once_per_forward(make):
    block = make().train()
    calls = []
    block.shortcut.register_forward_hook(lambda *args: calls.append(1))
    block(torch.randn(2, block.in_channels, 7, 9))
    assert len(calls) == 1


def test_projection_bn_statistics_updated_once_per_step():
    block = EDBlock(8, 16, stride=2, groups=4).train()
    block(torch.randn(2, 8, 7, 9))
    assert block.shortcut[1].num_batches_tracked.item() == 1


def test_block_output_is_residual_plus_shortcut_plus_ed():
    block = EDBlock(8, 16, stride=2, groups=4).eval()
    x = torch.randn(2, 8, 7, 9)
    with torch.no_grad():
        s = block.shortcut(x)
        expected = torch.relu(block.residual(x) + s + block.ed(s))
        torch.testing.assert_close(block(x), expected)


@pytest.mark.parametrize("make", [
    lambda: EDBlock(8, 16, stride=2, groups=4, width_ratio=0.5),
    lambda: EDBottleneck(8, 4, stride=2, groups=4, width_ratio=0.25),
])
def test_gradients_reach_every_parameter(make):
    block = make().train()
    x = torch.randn(4, block.in_channels, 7, 9, requires_grad=True)
    block(x).square().mean().backward()
    missing = [n for n, p in block.named_parameters() if p.grad is None or not p.grad.any()]
    assert not missing and x.grad is not None


def test_width_ratio_removes_branch_channels():
    full, light = EDBlock(16, 32, groups=8), EDBlock(16, 32, groups=8, width_ratio=0.5)
    assert (full.width, light.width) == (32, 16)

    def branch(b):
        return 9 * 16 * b.width + 2 * b.width + 9 * b.width * 32 + 2 * 32

    assert _n_params(full.residual) == branch(full)
    assert _n_params(light.residual) == branch(light)
    shortcut = 16 * 32 + 2 * 32
    assert _n_params(light) == branch(light) + shortcut + _ed_params(32, 8, 8)
    # the ED path keeps its nominal width in the bottleneck
    bottleneck = EDBottleneck(64, 16, groups=16, width_ratio=0.5)
    assert bottleneck.residual[0][0].out_channels == 8
    assert bottleneck.ed.mid_channels == 16


def test_state_dict_round_trip():
    torch.manual_seed(0)
    a = EDBlock(8, 16, stride=2, groups=4).eval()
    torch.manual_seed(1)
    b = EDBlock(8, 16, stride=2, groups=4).eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 8, 7, 9)
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)


def test_errors():
    with pytest.raises(ValueError, match=r"groups \(32\) must divide channels \(16\)"):
        EDPath(16)
    with pytest.raises(ValueError, match="must divide"):
        EDPath(64, mid_channels=12, groups=8)
    with pytest.raises(ValueError, match="must divide"):
        EDBlock(16, 16)
    with pytest.raises(ValueError, match="width_ratio"):
        EDBlock(16, 16, groups=4, width_ratio=1.0)
    with pytest.raises(ValueError, match="width_ratio"):
        EDBottleneck(16, 4, groups=4, width_ratio=-0.1)
    with pytest.raises(TypeError, match="stride must be an int"):
        EDBlock(16, 16, groups=4, stride=1.5)
    with pytest.raises(ValueError, match="channels, expected 16"):
        EDPath(16, groups=4)(torch.randn(2, 8, 5, 5))
    with pytest.raises(ValueError, match="channels, expected 8"):
        EDBlock(8, 16, groups=4)(torch.randn(2, 16, 5, 5))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        EDBlock(8, 16, groups=4)(torch.randn(8, 5, 5))


def test_ed_channels_is_checked_under_its_own_name():
    from lightvision.nn import EDBlock as _EDBlock

    with pytest.raises(TypeError, match="ed_channels must be an int, got str"):
        _EDBlock(8, 16, groups=4, ed_channels="bogus")
    with pytest.raises(ValueError, match="ed_channels must be >= 1"):
        _EDBlock(8, 16, groups=4, ed_channels=-1)
    assert _EDBlock(8, 16, groups=4, ed_channels=8).ed.mid_channels == 8
