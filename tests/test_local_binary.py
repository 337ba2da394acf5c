"""Tests of the local binary convolution (LBCNN) and the local binary residual blocks (LBB)."""

from __future__ import annotations

import pytest
import torch

from lightvision.metrics import (
    count_ops,
    count_params,
    estimate_energy,
    model_size_bytes,
    profile,
)
from lightvision.nn.local_binary import (
    LocalBinaryBasicBlock,
    LocalBinaryConv2d,
    LocalBinaryResidualBlock,
    sparse_ternary_weight,
)
from lightvision.registry import BLOCKS


@pytest.mark.parametrize(
    ("shape", "density"),
    [
        ((1, 1, 3, 3), 1.0),
        ((1, 1, 3, 3), 0.5),  # 4.5 rounds half to even: 4
        ((8, 3, 3, 3), 0.1),
        ((8, 3, 3, 3), 0.9),  # the LBCNN code's with-replacement sampling gave ~59 % here
        ((16, 16, 3, 3), 0.5),
        ((5, 7, 5, 5), 0.33),
        ((4, 2, 1, 1), 0.25),
    ],
)
def test_density_is_exact_and_values_ternary(shape, density):
    w = sparse_ternary_weight(shape, density, random_state=3)
    assert w.shape == shape
    assert int(w.count_nonzero()) == round(density * w.numel())
    assert set(w.unique().tolist()) <= {-1.0, 0.0, 1.0}
    k = shape[-1]
    conv = LocalBinaryConv2d(shape[1], shape[0], k, density=density, random_state=3)
    torch.testing.assert_close(conv.weight, w, rtol=0, atol=0)


def test_signs_are_balanced():
    w = sparse_ternary_weight((64, 64, 3, 3), 0.5, random_state=0)
    nonzero = w[w != 0]
    assert abs(float(nonzero.mean())) < 0.05  # Bernoulli(0.5) signs, 18432 draws


def test_same_seed_same_weights_different_seed_different():
    a = LocalBinaryConv2d(6, 8, random_state=7)
    b = LocalBinaryConv2d(6, 8, random_state=7)
    c = LocalBinaryConv2d(6, 8, random_state=8)
    assert torch.equal(a.weight, b.weight)
    assert not torch.equal(a.weight, c.weight)
    # random_state=None: drawn from torch's global generator, reproducible under torch.manual_seed
    torch.manual_seed(0)
    d = LocalBinaryConv2d(6, 8)
    torch.manual_seed(0)
    e = LocalBinaryConv2d(6, 8)
    f = LocalBinaryConv2d(6, 8)
    assert torch.equal(d.weight, e.weight) and d.seed == e.seed
    assert not torch.equal(e.weight, f.weight)
    assert torch.equal(LocalBinaryConv2d(6, 8, random_state=d.seed).weight, d.weight)


def test_weight_is_a_buffer_and_matches_conv2d():
    conv = LocalBinaryConv2d(3, 4, 5, stride=2, random_state=1)
    assert list(conv.parameters()) == []
    assert "weight" in dict(conv.named_buffers())
    assert "weight" in conv.state_dict()
    x = torch.randn(2, 3, 9, 8)
    expected = torch.nn.functional.conv2d(x, conv.weight, stride=2, padding=2)
    torch.testing.assert_close(conv(x), expected)


def test_binary_weights_never_change_during_training():
    torch.manual_seed(0)
    block = LocalBinaryResidualBlock(4, 8, stride=2, random_state=0).train()
    frozen = block.binary.weight.clone()
    trainable = {n: p.detach().clone() for n, p in block.named_parameters()}
    assert "binary.weight" not in trainable
    opt = torch.optim.SGD(block.parameters(), lr=0.5, momentum=0.9, weight_decay=1e-2)
    x, target = torch.randn(4, 4, 7, 9), torch.randn(4, 8, 4, 5)
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.mse_loss(block(x), target).backward()
        opt.step()
    assert torch.equal(block.binary.weight, frozen)
    assert block.binary.weight.grad is None
    changed = [n for n, p in block.named_parameters() if not torch.equal(p, trainable[n])]
    assert changed == list(trainable)  # every trainable parameter did learn


@pytest.mark.parametrize("stride", [1, 2])
def test_gradients_reach_every_parameter_and_input(stride):
    torch.manual_seed(0)
    block = LocalBinaryResidualBlock(6, 8, width=3, num_maps=5, stride=stride,
                                     random_state=2).train()
    x = torch.randn(3, 6, 9, 7, requires_grad=True)
    block(x).square().mean().backward()
    for name, p in block.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("size", [(8, 8), (7, 9), (1, 1), (5, 12), (15, 3)])
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("kernel_size", [1, 3, 5])
def test_output_shapes(size, stride, kernel_size):
    h, w = size
    expected = (2, -(-h // stride), -(-w // stride))
    x = torch.randn(2, 4, h, w)
    conv = LocalBinaryConv2d(4, 6, kernel_size, stride=stride, random_state=0)
    assert conv(x).shape == (2, 6, *expected[1:])
    x = torch.randn(2, 8, h, w)
    for out_channels in (8, 16):  # identity shortcut (when stride 1) and projection
        block = LocalBinaryResidualBlock(
            8, out_channels, kernel_size=kernel_size, stride=stride, random_state=0
        ).eval()
        with torch.no_grad():
            assert block(x).shape == (2, out_channels, *expected[1:])


def test_shortcut_identity_or_projection():
    assert isinstance(LocalBinaryResidualBlock(8, 8, random_state=0).shortcut, torch.nn.Identity)
    for args, stride in (((4, 8), 1), ((8, 8), 2), ((8, 4), 1)):
        proj = LocalBinaryResidualBlock(*args, width=2, stride=stride, random_state=0).shortcut
        assert isinstance(proj, torch.nn.Sequential)
        assert proj[0].kernel_size == (1, 1) and proj[0].stride == (stride, stride)


def test_identity_block_is_residual():
    block = LocalBinaryResidualBlock(8, 8, random_state=0).eval()
    torch.nn.init.zeros_(block.bn2.weight)  # residual branch off: output = relu(x)
    x = torch.randn(2, 8, 5, 5)
    with torch.no_grad():
        torch.testing.assert_close(block(x), torch.relu(x))


def test_count_ops_counts_ternary_not_macs():
    n, c_in, c_out, h, w = 2, 4, 6, 7, 9
    conv = LocalBinaryConv2d(c_in, c_out, random_state=0)  # density 0.5: 108 of 216 weights
    ops = count_ops(conv, torch.randn(n, c_in, h, w))
    assert ops.macs == 0 and ops.binary_ops == ops.dense_binary_ops == 0
    assert ops.dense_ternary_ops == n * h * w * c_out * c_in * 9
    assert ops.ternary_ops == n * h * w * 108

    block = LocalBinaryResidualBlock(4, 8, stride=2, random_state=0)  # w = m = 4, projection
    ops = count_ops(block, torch.randn(n, 4, h, w))
    pixels = n * 4 * 5  # ceil(7 / 2) x ceil(9 / 2) output pixels
    assert ops.dense_ternary_ops == pixels * 4 * 4 * 9
    assert ops.ternary_ops == pixels * round(0.5 * 4 * 4 * 9)
    conv1 = n * h * w * 4 * 4
    assert ops.macs == conv1 + pixels * (4 * 8 + 4 * 8)  # 1x1 m -> out and the shortcut


@pytest.mark.parametrize("density", [0.1, 0.5, 1.0])
def test_ternary_ops_and_energy_count_only_non_zero_weights(density):
    """Hand count: each output position adds (or subtracts) the inputs of the non-zero
    weights, round(density * 4 * 5 * 9) = 18 / 90 / 180 of them; the dense count charges all
    180. The energy estimate charges the non-zero count, 0.9 pJ each."""
    n, h, w = 2, 6, 7
    conv = LocalBinaryConv2d(4, 5, density=density, random_state=0)
    nonzero = {0.1: 18, 0.5: 90, 1.0: 180}[density]
    assert int(conv.weight.count_nonzero()) == nonzero
    ops = count_ops(conv, torch.randn(n, 4, h, w))
    assert ops.ternary_ops == n * h * w * nonzero
    assert ops.dense_ternary_ops == n * h * w * 180
    assert ops.macs == ops.binary_ops == ops.other_ops == 0
    energy = estimate_energy(ops, model_bytes=0, activation_bytes=0)
    assert energy.compute_uj == pytest.approx(n * h * w * nonzero * 0.9 * 1e-6)
    report = profile(conv, torch.randn(n, 4, h, w), timing=False)
    assert (report.ternary_ops, report.dense_ternary_ops) == (ops.ternary_ops, n * h * w * 180)


def test_count_params_and_storage():
    conv = LocalBinaryConv2d(4, 6, random_state=0)
    p = count_params(conv)
    assert (p.trainable, p.fixed) == (0, 6 * 4 * 9)
    assert model_size_bytes(conv) == 6 * 4 * 9 * 2 / 8  # 2 bits per ternary weight

    block = LocalBinaryResidualBlock(4, 8, random_state=0)
    w = m = 4  # default width out_channels // 2
    by_hand = (4 * w + m * 8) + 2 * (w + 8) + (4 * 8 + 2 * 8)
    assert by_hand == 120
    p = count_params(block)
    assert (p.trainable, p.fixed) == (by_hand, m * w * 9)
    assert sum(q.numel() for q in block.parameters() if q.requires_grad) == by_hand

    wide = LocalBinaryResidualBlock(16, 16, num_maps=4, random_state=0)  # w = 8, identity
    assert count_params(wide).trainable == (16 * 8 + 4 * 16) + 2 * (8 + 16)


def test_default_width_meets_the_paper_bound_per_block():
    """The default expansion 2: an identity block keeps 4 w^2 of the 13 w^2 convolution
    weights of the real bottleneck (in -> w -> out, in = out = 2w, 3x3 on w): 9/13 = 69.2 %
    fewer, the paper's "at least 69.2 %"; width=out // 4 (expansion 4) keeps 8 of 17."""
    for out, width, (kept, total) in ((32, None, (4, 13)), (32, 8, (8, 17))):
        block = LocalBinaryResidualBlock(out, out, width=width, random_state=0)
        w = block.width
        assert w == (out // 2 if width is None else width)
        conv = sum(q.numel() for name, q in block.named_parameters() if q.ndim == 4)
        real = out * w + 9 * w * w + w * out  # the real bottleneck's 1x1, 3x3, 1x1
        assert (conv, real) == (kept * w * w, total * w * w)
    assert 1 - 4 / 13 == pytest.approx(0.692, abs=5e-4)


def test_state_dict_round_trip():
    torch.manual_seed(0)
    a = LocalBinaryResidualBlock(4, 8, stride=2, random_state=1).train()
    a(torch.randn(4, 4, 6, 6))  # move the batch-norm statistics
    b = LocalBinaryResidualBlock(4, 8, stride=2, random_state=2)
    assert not torch.equal(a.binary.weight, b.binary.weight)
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.binary.weight, b.binary.weight)
    x = torch.randn(2, 4, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(a.eval()(x), b.eval()(x), rtol=0, atol=0)


def test_registered_blocks():
    assert BLOCKS.get("local_binary_conv2d").obj is LocalBinaryConv2d
    for name, block in (("local_binary_residual_block", LocalBinaryResidualBlock),
                        ("local_binary_basic_block", LocalBinaryBasicBlock)):
        entry = BLOCKS.get(name)
        assert entry.obj is block
        assert {"binary", "residual"} <= entry.tags
    assert {"binary", "conv"} <= BLOCKS.get("local_binary_conv2d").tags
    for name in ("local_binary_conv2d", "local_binary_residual_block",
                 "local_binary_basic_block"):
        e = BLOCKS.get(name)
        block = e.create(**e.bench_params).eval()
        with torch.no_grad():
            assert block(torch.randn(1, *e.meta["input_shape"])).shape[0] == 1


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: LocalBinaryConv2d(0, 4), ValueError, "in_channels"),
        (lambda: LocalBinaryConv2d(4, 2.0), TypeError, "out_channels"),
        (lambda: LocalBinaryConv2d(4, 4, 2), ValueError, "kernel_size must be odd"),
        (lambda: LocalBinaryConv2d(4, 4, density=0.0), ValueError, "density"),
        (lambda: LocalBinaryConv2d(4, 4, density=1.5), ValueError, r"density must be in \(0, 1\]"),
        (lambda: LocalBinaryConv2d(4, 4, density=float("nan")), ValueError, "density"),
        (lambda: LocalBinaryConv2d(1, 1, 1, density=0.1), ValueError, "no non-zero"),
        (lambda: LocalBinaryConv2d(4, 4, random_state=-1), ValueError, "random_state"),
        (lambda: LocalBinaryConv2d(4, 4, stride=0), ValueError, "stride"),
        (lambda: LocalBinaryResidualBlock(4, 7), ValueError, "multiple of 2"),
        (lambda: LocalBinaryResidualBlock(-1, 8), ValueError, "in_channels"),
        (lambda: LocalBinaryResidualBlock(4, 8, width=0), ValueError, "width"),
        (lambda: LocalBinaryResidualBlock(4, 8, num_maps=True), TypeError, "num_maps"),
        (lambda: LocalBinaryResidualBlock(4, 8, kernel_size=4), ValueError, "kernel_size"),
        (lambda: LocalBinaryResidualBlock(4, 8, density=2), ValueError, "density"),
        (lambda: LocalBinaryBasicBlock(0, 8), ValueError, "in_channels"),
        (lambda: LocalBinaryBasicBlock(4, 8, num_maps=0), ValueError, "num_maps"),
        (lambda: LocalBinaryBasicBlock(4, 8, kernel_size=2), ValueError, "kernel_size"),
        (lambda: LocalBinaryBasicBlock(4, 8, density=0), ValueError, "density"),
        (lambda: LocalBinaryBasicBlock(4, 8, stride=1.5), TypeError, "stride"),
        (lambda: LocalBinaryBasicBlock(4, 8, random_state=-3), ValueError, "random_state"),
        (lambda: LocalBinaryBasicBlock(4, 8, random_state="0"), TypeError, "random_state"),
    ],
)
def test_construction_errors(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize(
    "block",
    [LocalBinaryConv2d(4, 6, random_state=0), LocalBinaryResidualBlock(4, 8, random_state=0),
     LocalBinaryBasicBlock(4, 8, random_state=0)],
    ids=["conv", "bottleneck", "basic"],
)
def test_call_errors(block):
    with pytest.raises(ValueError, match="has 3 channels, expected 4"):
        block(torch.randn(1, 3, 5, 5))
    with pytest.raises(ValueError, match="4-D input"):
        block(torch.randn(4, 5, 5))
    with pytest.raises(TypeError, match="torch.Tensor"):
        block([[1.0]])
    for dtype in (torch.int64, torch.uint8, torch.bool):
        with pytest.raises(TypeError, match=f"input must be a floating-point tensor, got {dtype}"):
            block(torch.ones(1, 4, 5, 5, dtype=dtype))


def test_conv_computes_in_the_input_dtype_and_blocks_refuse_a_mismatch():
    conv = LocalBinaryConv2d(4, 6, random_state=0)
    x = torch.randn(1, 4, 5, 5, dtype=torch.float64)
    assert conv(x).dtype == torch.float64  # no parameter: the fixed weight follows the input
    torch.testing.assert_close(conv(x).float(), conv(x.float()))
    block = LocalBinaryResidualBlock(4, 8, random_state=0)
    with pytest.raises(TypeError, match="input is torch.float64 but the block's weights are "
                                        "torch.float32"):
        block(x)
    assert block.double()(x).dtype == torch.float64


# --- the basic-block form -------------------------------------------------------------------


def test_basic_block_costs_by_hand():
    n, h, w = 2, 7, 9
    block = LocalBinaryBasicBlock(4, 8, num_maps=6, stride=2, random_state=0)
    m, out = 6, 8
    p = count_params(block)
    assert p.trainable == 2 * m * out + 4 * out + (4 * out + 2 * out)
    assert p.fixed == m * 4 * 9 + m * out * 9
    running_stats = 2 * 3 * out  # mean and variance of the three batch norms, float32
    assert model_size_bytes(block) == 4 * (p.trainable + running_stats) + p.fixed * 2 / 8
    ops = count_ops(block, torch.randn(n, 4, h, w))
    pixels = n * 4 * 5  # ceil(7 / 2) x ceil(9 / 2)
    assert ops.dense_ternary_ops == pixels * 9 * (4 * m + out * m)
    assert ops.ternary_ops == pixels * (round(0.5 * 9 * 4 * m) + round(0.5 * 9 * out * m))
    assert ops.macs == pixels * (2 * m * out + 4 * out)  # the two 1x1 and the shortcut


def test_basic_block_cut_against_the_real_basic_block():
    """With m = out an identity basic block keeps 2 out^2 of its 18 out^2 conv weights."""
    from lightvision.models.resnet import _BasicBlock

    plain, lbb = _BasicBlock(16, 16, 1, "projection"), LocalBinaryBasicBlock(16, 16, random_state=0)
    x = torch.randn(1, 16, 8, 8)
    assert count_params(plain).trainable - count_params(lbb).trainable == 16 * 16 * 16
    assert 1 - count_ops(lbb, x).macs / count_ops(plain, x).macs == pytest.approx(8 / 9)


def test_basic_block_trains_only_its_real_layers():
    torch.manual_seed(0)
    block = LocalBinaryBasicBlock(4, 8, stride=2, random_state=0).train()
    frozen = [block.binary1.weight.clone(), block.binary2.weight.clone()]
    assert not torch.equal(frozen[0][:, :4], frozen[1][:, :4])  # the two layers differ
    params = dict(block.named_parameters())
    assert not any(name.startswith("binary") for name in params)
    before = {n: p.detach().clone() for n, p in params.items()}
    opt = torch.optim.SGD(block.parameters(), lr=0.5, momentum=0.9, weight_decay=1e-2)
    x, target = torch.randn(4, 4, 7, 9), torch.randn(4, 8, 4, 5)
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.mse_loss(block(x), target).backward()
        opt.step()
    assert torch.equal(block.binary1.weight, frozen[0])
    assert torch.equal(block.binary2.weight, frozen[1])
    assert all(not torch.equal(p, before[n]) for n, p in params.items())


@pytest.mark.parametrize("size", [(8, 8), (7, 9), (1, 1), (15, 3)])
@pytest.mark.parametrize("stride", [1, 2])
def test_basic_block_shapes_and_gradients(size, stride):
    torch.manual_seed(0)
    block = LocalBinaryBasicBlock(6, 8, num_maps=5, stride=stride, random_state=1).train()
    x = torch.randn(3, 6, *size, requires_grad=True)
    out = block(x)
    assert out.shape == (3, 8, -(-size[0] // stride), -(-size[1] // stride))
    out.square().mean().backward()
    for name, p in block.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert torch.isfinite(x.grad).all()


def test_basic_block_seed():
    a, b = LocalBinaryBasicBlock(4, 8, random_state=5), LocalBinaryBasicBlock(4, 8, random_state=5)
    c = LocalBinaryBasicBlock(4, 8, random_state=6)
    assert torch.equal(a.binary2.weight, b.binary2.weight)
    assert not torch.equal(a.binary1.weight, c.binary1.weight)
    assert isinstance(LocalBinaryBasicBlock(8, 8, random_state=0).shortcut, torch.nn.Identity)
