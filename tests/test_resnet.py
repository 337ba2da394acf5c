"""CIFAR ResNets and their lightweight variants: shapes, errors, and costs checked by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lightvision
from lightvision.metrics import count_ops, count_params
from lightvision.models import CifarResNet
from lightvision.models.resnet import _Bottleneck, ini_fold_group
from lightvision.nn import LocalBinaryResidualBlock

RESNETS = ["resnet20", "resnet20_ini", "resnet20_ed", "resnet20_lbb", "resnet29_bottleneck",
           "resnet29_lbb", "resnet20_bof"]
TINY = {"width": 0.5}


def _tiny(name, **kw):
    torch.manual_seed(0)
    depth = 11 if "29" in name else 8
    return lightvision.create_model(name, depth=depth, **TINY, **kw).eval()


@pytest.mark.parametrize("name", RESNETS)
@pytest.mark.parametrize("size", [(28, 28), (27, 27), (32, 32), (22, 22), (27, 22), (1, 3)])
def test_output_shape_any_input_size(name, size):
    model = _tiny(name, num_classes=7)
    out = model(torch.randn(2, 1, *size))
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()


def test_feature_maps_are_quarter_size():
    model = _tiny("resnet20")
    assert model.feature_maps(torch.randn(1, 1, 27, 22)).shape == (1, 32, 7, 6)


def test_clear_errors():
    model = _tiny("resnet20")
    with pytest.raises(ValueError, match="channels"):
        model(torch.randn(1, 3, 28, 28))
    with pytest.raises(ValueError, match="pixels"):
        model(torch.randn(1, 1, 0, 28))
    with pytest.raises(ValueError, match="lbb_density"):
        CifarResNet(variant="lbb", lbb_density=0)
    with pytest.raises(ValueError, match="variant"):
        CifarResNet(variant="se")
    with pytest.raises(ValueError, match="head"):
        CifarResNet(head="gmp")
    with pytest.raises(ValueError, match="block"):
        CifarResNet(block="wide")
    with pytest.raises(ValueError, match="6n"):
        CifarResNet(depth=21)
    with pytest.raises(ValueError, match="9n"):
        CifarResNet(depth=20 + 2, block="bottleneck")
    with pytest.raises(ValueError, match="option A"):
        CifarResNet(variant="ed", shortcut="pad")
    with pytest.raises(ValueError, match="pseudo-image"):
        CifarResNet(variant="ini", width=0.25)  # 4 channels cannot make a 3x3 lens image
    with pytest.raises(ValueError, match="head='bof'"):
        _tiny("resnet20").initialize_bof(torch.randn(4, 1, 8, 8))


def _resnet20_params_by_hand(in_channels, classes, projection):
    """Sum over the layers of ResNet-20 (3x3 convs without bias, BN 2 per channel)."""
    total = 9 * in_channels * 16 + 2 * 16  # stem
    c_in = 16
    for c in (16, 32, 64):
        for _ in range(3):
            total += 9 * c_in * c + 2 * c + 9 * c * c + 2 * c
            if c_in != c and projection:
                total += c_in * c + 2 * c
            c_in = c
    return total + 64 * classes + classes


def test_resnet20_has_the_well_known_027m_parameters():
    option_a = CifarResNet(10, 3, depth=20, shortcut="pad")
    option_b = CifarResNet(10, 3, depth=20)
    assert count_params(option_a).trainable == _resnet20_params_by_hand(3, 10, False) == 269_722
    assert count_params(option_b).trainable == _resnet20_params_by_hand(3, 10, True) == 272_474
    assert count_params(option_a).fixed == 0
    assert round(count_params(option_a).trainable / 1e6, 2) == 0.27


def test_macs_of_a_small_config_by_hand():
    model = CifarResNet(10, 1, depth=8, width=0.25)  # widths 4, 8, 16
    size = 8

    def conv(c_in, c_out, k, out):
        return c_in * c_out * k * k * out * out

    expected = conv(1, 4, 3, size)  # stem
    expected += 2 * conv(4, 4, 3, size)  # stage 1, 8x8
    expected += conv(4, 8, 3, 4) + conv(8, 8, 3, 4) + conv(4, 8, 1, 4)  # stage 2, 4x4
    expected += conv(8, 16, 3, 2) + conv(16, 16, 3, 2) + conv(8, 16, 1, 2)  # stage 3, 2x2
    expected += 16 * 10  # linear head
    ops = count_ops(model, torch.randn(1, 1, size, size))
    assert ops.macs == expected == 49_568
    assert ops.binary_ops == ops.ternary_ops == 0


def _costs(name, **kw):
    torch.manual_seed(0)
    model = lightvision.create_model(name, num_classes=10, in_channels=3, **kw)
    return count_params(model), count_ops(model, torch.randn(1, 3, 32, 32))


@pytest.mark.parametrize(("in_channels", "size"), [(3, 32), (1, 28)])
@pytest.mark.parametrize("width", [1.0, 0.5])
def test_lbb_resnet_meets_the_paper_claim(in_channels, size, width):
    """Liu et al.: LBB networks have >= 69.2 % fewer trainable parameters and >= 70.5 % fewer
    FLOPs than the original model. For ResNet-20 (basic blocks, every 3x3 convolution but the
    stem replaced; real stem, projections and head kept) we count, at 3x32x32 and width 1,
    -86.2 % trainable parameters and -86.7 % real MACs (the ternary convolutions do additions
    only, counted apart as ternary ops)."""
    x = torch.randn(1, in_channels, size, size)
    costs = {}
    for name in ("resnet20", "resnet20_lbb"):
        torch.manual_seed(0)
        model = lightvision.create_model(name, in_channels=in_channels, width=width)
        costs[name] = count_params(model), count_ops(model, x)
    (p_plain, o_plain), (p_lbb, o_lbb) = costs.values()
    param_cut = 1 - p_lbb.trainable / p_plain.trainable
    mac_cut = 1 - o_lbb.macs / o_plain.macs
    print(f"\nLBB-ResNet-20 {in_channels}x{size}x{size} width {width}: "
          f"params -{param_cut:.1%}, real MACs -{mac_cut:.1%}")
    assert param_cut >= 0.692 and mac_cut >= 0.705
    assert o_lbb.ternary_ops > 0 and o_plain.ternary_ops == 0


def _bottleneck_resnet29_by_hand(expansion, lbb, in_channels=3, classes=10, size=32):
    """Trainable parameters and real MACs of ResNet-29 (bottlenecks, widths 16/32/64, 3
    blocks a stage, stride 2 on the first block of stages 2 and 3) from the layer formulas:
    convolutions without bias, 2 BN parameters per channel, a 1x1 conv + BN projection where
    the shape changes. The LBB block drops the 3x3 convolution and its BN (its fixed ternary
    3x3 costs no parameter and no real MAC) and keeps the other layers."""
    params, macs = 9 * in_channels * 16 + 2 * 16, 9 * in_channels * 16 * size * size  # stem
    c_in, s = 16, size
    for stage, w in enumerate((16, 32, 64)):
        for i in range(3):
            stride = 2 if stage and not i else 1
            s_in, s = s, s // stride
            c_out = expansion * w
            params += c_in * w + 2 * w  # 1x1 in -> w + BN, at the input resolution
            macs += c_in * w * s_in * s_in
            if not lbb:
                params += 9 * w * w + 2 * w  # 3x3 w -> w (stride) + BN
                macs += 9 * w * w * s * s
            params += w * c_out + 2 * c_out  # 1x1 w -> out + BN
            macs += w * c_out * s * s
            if c_in != c_out or stride != 1:
                params += c_in * c_out + 2 * c_out  # projection shortcut
                macs += c_in * c_out * s * s
            c_in = c_out
    return params + c_in * classes + classes, macs + c_in * classes


def test_lbb_bottleneck_reduction():
    """The LBB bottleneck drops the 3x3 weights (9 w^2) and, with m = w binary maps, keeps its
    output 1x1 (the LBC's 1x1 is that layer; see LocalBinaryResidualBlock). Per identity block
    of an expansion-2 bottleneck (the hourglass module of the paper's pose networks) that
    removes 9/13 = 69.2 % of the convolution weights and of the real MACs: the paper's lower
    bound exactly (asserted). Bottleneck networks keep a real stem, head and projection
    shortcuts and fall below their per-block ceiling 9 / (2e + 9), by the layer formulas
    (3x32x32, width 1): ResNet-29 expansion 2: parameters -66.3 %, real MACs -63.4 % (ceiling
    69.2 %); expansion 4 (He et al.'s CIFAR form): -46.6 %, -45.1 % (ceiling 9/17 = 52.9 %)."""
    torch.manual_seed(0)
    plain, lbb = _Bottleneck(32, 16, 1, 2, None), LocalBinaryResidualBlock(32, 32, width=16)
    x = torch.randn(1, 32, 8, 8)
    conv_weights = [sum(m.weight.numel() for m in block.modules()
                        if isinstance(m, torch.nn.Conv2d)) for block in (plain, lbb)]
    assert conv_weights == [13 * 16 * 16, 4 * 16 * 16]
    assert 1 - count_ops(lbb, x).macs / count_ops(plain, x).macs == pytest.approx(9 / 13)
    assert 9 / 13 == pytest.approx(0.692, abs=5e-4)

    for expansion in (2, 4):
        (p_plain, o_plain), (p_lbb, o_lbb) = (
            _costs(name, expansion=expansion) for name in ("resnet29_bottleneck", "resnet29_lbb"))
        by_hand = [_bottleneck_resnet29_by_hand(expansion, lbb) for lbb in (False, True)]
        assert [(p.trainable, o.macs) for p, o in ((p_plain, o_plain), (p_lbb, o_lbb))] == by_hand
        # what the LBB removes: the 3x3 + BN of every block, whatever the expansion
        assert p_plain.trainable - p_lbb.trainable == 3 * sum(9 * w * w + 2 * w
                                                              for w in (16, 32, 64))
        assert o_plain.macs - o_lbb.macs == 3 * 9 * (16**2 * 32**2 + 32**2 * 16**2 + 64**2 * 8**2)
        param_cut = 1 - by_hand[1][0] / by_hand[0][0]
        mac_cut = 1 - by_hand[1][1] / by_hand[0][1]
        assert max(param_cut, mac_cut) < 9 / (2 * expansion + 9)  # below the per-block ceiling
        print(f"\nLBB-ResNet-29 expansion {expansion}: params -{param_cut:.1%}, "
              f"real MACs -{mac_cut:.1%}")
        assert o_lbb.ternary_ops > 0
        assert p_lbb.fixed == sum(9 * w * w for w in (16, 32, 64)) * 3


def _blocks(model):
    return [b for stage in model.stages for b in stage]


def test_ed_adds_what_its_formula_says():
    plain, ed = CifarResNet(10, 3), CifarResNet(10, 3, variant="ed")
    extra = 0
    for block in _blocks(ed):
        c, m, g = block.ed.channels, block.ed.mid_channels, block.ed.groups
        assert g == min(32, m) and m == c // 4  # automatic groups: gcd(32, C, C/4)
        extra += 18 * c * m // g + 2 * m + 2 * c
    p_plain, p_ed = count_params(plain).trainable, count_params(ed).trainable
    assert p_ed - p_plain == extra
    print(f"\nED-ResNet-20 adds {extra} parameters (+{extra / p_plain:.2%})")
    assert extra / p_plain < 0.05


def test_ini_adds_what_its_formula_says():
    plain, ini = CifarResNet(10, 3), CifarResNet(10, 3, variant="ini")
    extra = 0
    for block in _blocks(ini):
        lens = block.ini
        c, k = lens.channels, lens.group
        assert k == ini_fold_group(c)
        m, h = lens.lens_maps, max(1, c // 16)
        rows, cols = lens.lens_shape
        assert (rows, cols) == (2 * c // k - 2, k - 2)
        extra += m * 9 + 2 * m + rows * cols * h + h * c
    p_plain, p_ini = count_params(plain).trainable, count_params(ini).trainable
    assert p_ini - p_plain == extra
    print(f"\nInI-ResNet-20 adds {extra} parameters (+{extra / p_plain:.2%})")
    assert extra / p_plain < 0.02


def test_ini_bottleneck_and_ed_bottleneck_build_and_run():
    for variant in ("ini", "ed"):
        model = CifarResNet(10, 1, depth=11, width=0.5, block="bottleneck", variant=variant)
        assert model(torch.randn(2, 1, 13, 15)).shape == (2, 10)


def test_bof_head_and_its_initialisation():
    torch.manual_seed(0)
    model = lightvision.create_model("resnet20_bof", depth=8, width=0.5, n_codewords=8)
    x = torch.randn(8, 1, 28, 28)
    model.initialize_bof(x, n_samples=200, random_state=0)
    assert model.num_features == 8
    histogram = model.pool(model.feature_maps(torch.randn(3, 1, 22, 22)))
    torch.testing.assert_close(histogram.sum(1), torch.ones(3))
    assert model.forward_features(torch.randn(3, 1, 22, 22)).shape == (3, 8)
    plain = lightvision.create_model("resnet20", depth=8, width=0.5)
    diff = count_params(model).trainable - count_params(plain).trainable
    # codebook + widths, histogram batch norm, smaller linear head
    assert diff == 8 * (32 + 1) + 2 * 8 + (8 - 32) * 10


@pytest.mark.parametrize("name", ["resnet20_lbb", "resnet29_lbb"])
def test_lbb_is_deterministic_under_the_global_seed(name):
    a, b = _tiny(name), _tiny(name)
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key])


def test_argument_types_are_checked():
    with pytest.raises(TypeError, match="channels must be an int, got Tensor"):
        ini_fold_group(torch.zeros(0))
    with pytest.raises(ValueError, match="view must be 'pair' or 'single'"):
        ini_fold_group(16, view="both")
    assert ini_fold_group(np.int64(32)) == 16
    with pytest.raises(TypeError, match="ed_groups must be an int, got Tensor"):
        CifarResNet(variant="ed", ed_groups=torch.zeros(0))
    with pytest.raises(TypeError, match="ini_group must be an int, got str"):
        CifarResNet(variant="ini", ini_group="4")
    with pytest.raises(TypeError, match="num_classes must be an int, got NoneType"):
        CifarResNet(None)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"variant": "ini", "ini_view": None}, ValueError, "ini_view must be 'pair' or 'single'"),
    ({"variant": "ini", "ini_reduction": 2.5}, TypeError, "ini_reduction must be an int"),
    ({"variant": "ini", "ini_kernel_size": -1}, ValueError, "ini_kernel_size must be >= 1"),
    ({"variant": "ed", "ed_width_ratio": 1.0}, ValueError, r"ed_width_ratio must be in \[0, 1\)"),
    ({"variant": "ed", "ed_width_ratio": "0"}, TypeError, "ed_width_ratio must be a real"),
    ({"head": "bof", "bof_spatial_level": -1}, ValueError, "bof_spatial_level must be >= 0"),
    ({"head": "bof", "bof_spatial_level": 2}, ValueError, "bof_spatial_level must be 0 or 1"),
    ({"head": "bof", "n_codewords": 0}, ValueError, "n_codewords must be >= 1"),
    ({"width": 1e30}, ValueError, r"channels \(width, expansion\) need about .* GiB"),
])
def test_forwarded_arguments_are_named_as_passed(kwargs, error, match):
    with pytest.raises(error, match=match):
        CifarResNet(**kwargs)
