"""Tests of lightvision.metrics against hand-computed values."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import lightvision
from lightvision.metrics import (
    CostProfile,
    EnergyTable,
    OpCount,
    activation_traffic_bytes,
    count_ops,
    count_params,
    data_reduction_ratio,
    estimate_energy,
    feature_bits,
    image_bits,
    label_bits,
    link_bandwidth,
    measure_latency,
    measure_throughput,
    model_size_bytes,
    peak_activation_bytes,
    profile,
    raw_bandwidth,
    register_cost,
)
from lightvision.metrics.counting import _tracker_names


def out_size(n: int, k: int, stride: int = 1, pad: int = 0) -> int:
    return (n + 2 * pad - k) // stride + 1


# ---------------------------------------------------------------- MACs and parameters


CONV_CASES = {
    # name: (c_in, c_out, k, stride, pad, groups, bias, hw)
    "plain": (3, 8, 3, 1, 0, 1, True, 10),
    "plain_no_bias": (3, 8, 3, 1, 0, 1, False, 10),
    "grouped": (4, 8, 3, 1, 1, 2, True, 9),
    "depthwise": (4, 4, 3, 1, 1, 4, True, 9),
    "strided": (3, 8, 3, 2, 0, 1, True, 11),
    "padded": (3, 8, 5, 1, 2, 1, True, 10),
}


@pytest.mark.parametrize("case", CONV_CASES.values(), ids=CONV_CASES.keys())
def test_conv_macs_and_params(case):
    c_in, c_out, k, stride, pad, groups, bias, hw = case
    conv = nn.Conv2d(c_in, c_out, k, stride=stride, padding=pad, groups=groups, bias=bias)
    x = torch.randn(2, c_in, hw, hw)
    h_out = out_size(hw, k, stride, pad)
    ops = count_ops(conv, x)
    assert ops.macs == 2 * c_out * h_out * h_out * (c_in // groups) * k * k  # batch of 2
    assert ops.flops == 2 * ops.macs
    assert (ops.binary_ops, ops.ternary_ops, ops.other_ops) == (0, 0, 0)
    params = count_params(conv)
    assert params.trainable == c_out * (c_in // groups) * k * k + (c_out if bias else 0)
    assert params.fixed == 0


@settings(max_examples=20, deadline=None)
@given(
    groups=st.sampled_from([1, 2]),
    c_in_per_group=st.integers(1, 3),
    c_out_per_group=st.integers(1, 3),
    k=st.integers(1, 4),
    stride=st.integers(1, 3),
    pad=st.integers(0, 2),
    hw=st.integers(4, 9),
)
def test_conv_macs_formula_property(groups, c_in_per_group, c_out_per_group, k, stride, pad, hw):
    c_in, c_out = groups * c_in_per_group, groups * c_out_per_group
    conv = nn.Conv2d(c_in, c_out, k, stride=stride, padding=pad, groups=groups)
    h_out = out_size(hw, k, stride, pad)
    macs = count_ops(conv, torch.randn(1, c_in, hw, hw)).macs
    assert macs == c_out * h_out * h_out * c_in_per_group * k * k


def test_linear_macs_and_params():
    ops = count_ops(nn.Linear(20, 7), torch.randn(3, 20))
    assert ops.macs == 3 * 20 * 7
    assert count_params(nn.Linear(20, 7)).trainable == 20 * 7 + 7


POOL_CASES = {
    # name: (module, input shape, hand count of other ops)
    "max2": (nn.MaxPool2d(2), (1, 3, 8, 8), 3 * 4 * 4 * (2 * 2 - 1)),
    "max3_s2_p1": (nn.MaxPool2d(3, 2, 1), (1, 2, 7, 7), 2 * 4 * 4 * (3 * 3 - 1)),
    "avg2": (nn.AvgPool2d(2), (1, 3, 8, 8), 3 * 4 * 4 * 2 * 2),
    "avg3_no_pad_count": (
        nn.AvgPool2d(3, 2, 1, count_include_pad=False),
        (1, 2, 7, 7),
        2 * 4 * 4 * 3 * 3,  # the full window, whatever count_include_pad
    ),
    "adaptive_avg_1": (nn.AdaptiveAvgPool2d(1), (2, 3, 8, 8), 2 * 3 * 8 * 8),
    "adaptive_avg_2x2": (nn.AdaptiveAvgPool2d((2, 2)), (1, 3, 8, 8), 3 * 8 * 8),
    "adaptive_max_2x2": (nn.AdaptiveMaxPool2d(2), (1, 3, 8, 8), 3 * 8 * 8 - 3 * 2 * 2),
    "max1d": (nn.MaxPool1d(2), (1, 3, 8), 3 * 4 * 1),
}


@pytest.mark.parametrize("case", POOL_CASES.values(), ids=POOL_CASES.keys())
def test_pooling_ops(case):
    module, shape, expected = case
    ops = count_ops(module, torch.randn(*shape))
    assert ops == OpCount(macs=0, binary_ops=0, ternary_ops=0, other_ops=expected)
    assert count_params(module).trainable == count_params(module).fixed == 0


def small_net() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),  # 8x16x16
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),  # 8x8x8
        nn.Conv2d(8, 16, 3),  # 16x6x6
        nn.Flatten(),
        nn.Linear(16 * 6 * 6, 10),
    )


def test_small_net_profile_exact():
    p = profile(small_net(), torch.randn(1, 3, 16, 16), timing=False)
    conv1 = 8 * 16 * 16 * 3 * 3 * 3
    conv2 = 16 * 6 * 6 * 8 * 3 * 3
    linear = 576 * 10
    assert p.macs == conv1 + conv2 + linear
    assert p.flops == 2 * p.macs
    assert p.other_ops == 8 * 8 * 8 * 3  # max-pool comparisons
    params = (8 * 27 + 8) + (8 + 8) + (16 * 72 + 16) + (576 * 10 + 10)
    assert (p.trainable_params, p.fixed_params) == (params, 0)
    assert p.model_bytes == 4 * (params + 2 * 8)  # float32 + BN running mean and var
    assert p.latency_ms is p.throughput is p.threads is p.throughput_batch is None
    assert p.as_dict()["flops"] == p.flops
    assert "MACs" in str(p) and "estimate" in p.summary()


def test_frozen_params_and_buffers_are_fixed():
    net = small_net()
    net[0].requires_grad_(False)
    net[6].register_buffer("fixed_weight", torch.ones(5, 3))
    params = count_params(net)
    assert params.fixed == 8 * 27 + 8 + 15
    assert params.trainable == 16 + 16 * 72 + 16 + 5770


def test_flop_counter_module_names_match_tracker():
    class Inner(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(2, 2, 1)
            self.deep = nn.Sequential(nn.Conv2d(2, 2, 1))

        def forward(self, x):
            return self.deep(self.c(x))

    model = nn.Sequential(nn.Conv2d(2, 2, 1), Inner())
    counter = FlopCounterMode(display=False)
    with counter:
        model(torch.randn(1, 2, 3, 3))
    names = set(counter.get_flop_counts()) - {"Global"}
    assert names == {
        "Sequential",
        "Sequential.0",
        "Sequential.1",
        "Sequential.1.c",
        "Sequential.1.deep",
        "Sequential.1.deep.0",
    }
    assert names <= set(_tracker_names(model))


# ---------------------------------------------------------------- binary / ternary


@register_cost(op_kind="ternary", storage_bits={"weight": 2})
class TernaryConv(nn.Module):
    """Convolution with fixed weights in {-1, 0, +1} kept as a buffer."""

    def __init__(self, c_in: int, c_out: int, k: int):
        super().__init__()
        self.register_buffer("weight", torch.randint(-1, 2, (c_out, c_in, k, k)).float())

    def forward(self, x):
        return F.conv2d(x, self.weight, padding=self.weight.shape[-1] // 2)


class PlainBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.binary = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.plain = nn.Conv2d(4, 4, 1, bias=False)

    def forward(self, x):
        return self.plain(self.binary(x))


def test_ternary_separated_from_real_macs():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), TernaryConv(4, 4, 3))
    ops = count_ops(model, torch.randn(1, 1, 6, 6))
    assert ops.macs == 4 * 36 * 1 * 9
    assert ops.dense_ternary_ops == 36 * 4 * 4 * 9  # 36 positions x every weight
    assert ops.ternary_ops == 36 * int(model[1].weight.count_nonzero())  # zeros skipped
    assert ops.binary_ops == ops.dense_binary_ops == 0
    assert count_params(model).fixed == 4 * 4 * 9
    # conv float32 weights and bias, plus ternary weights packed into 2 bits each
    assert model_size_bytes(model) == 4 * (36 + 4) + math.ceil(4 * 4 * 9 * 2 / 8)


def test_nested_registered_modules_not_double_counted():
    block = PlainBlock()
    register_cost(block.binary, op_kind="binary")  # instance-level registration
    register_cost(block, op_kind="ternary")
    model = nn.Sequential(nn.Conv2d(1, 4, 1, bias=False), nn.Sequential(block))
    ops = count_ops(model, torch.randn(1, 1, 5, 5))
    assert ops.macs == 4 * 25  # only the outer plain conv
    assert ops.binary_ops == 4 * 25 * 4 * 9  # nearest registered module wins
    assert ops.ternary_ops == 4 * 25 * 4  # the block's own unregistered 1x1 conv
    assert count_ops(PlainBlock(), torch.randn(1, 4, 5, 5)).binary_ops == 0  # instance only


def test_storage_bits_shrink_model_size():
    conv = nn.Conv2d(4, 8, 3)
    full = model_size_bytes(conv)
    assert full == 4 * (8 * 4 * 9 + 8)
    register_cost(conv, storage_bits={"weight": 2})
    assert model_size_bytes(conv) == math.ceil((8 * 4 * 9 * 2 + 8 * 32) / 8)


def test_tied_weights_counted_once():
    a, b = nn.Linear(4, 4, bias=False), nn.Linear(4, 4, bias=False)
    b.weight = a.weight
    model = nn.Sequential(a, b)
    assert model_size_bytes(model) == 4 * 16
    assert count_params(model).trainable == 16


# ---------------------------------------------------------------- activation memory


def test_peak_activation_plain_chain():
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 8, 3, padding=1), nn.Conv2d(8, 2, 3, padding=1)
    )
    x = torch.randn(1, 1, 8, 8)
    sizes = [4 * 64 * c for c in (1, 4, 8, 2)]  # float32 bytes of input and each output
    # eager: a layer's input and output are live together; the caller keeps the input alive
    expected = sizes[0] + max(sizes[1], *(sizes[i] + sizes[i + 1] for i in range(1, 3)))
    assert peak_activation_bytes(model, x) == expected == 256 + 1024 + 2048
    assert peak_activation_bytes(model, x, activation_bits=8) == expected // 4
    assert activation_traffic_bytes(model, x) == sum(sizes)


class Residual(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.c1 = nn.Conv2d(c, c, 3, padding=1)
        self.c2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        y = self.c1(x)
        y = self.c2(y)
        return y + x


def test_peak_activation_residual_keeps_skip_live():
    c, hw = 4, 8
    s = 4 * c * hw * hw  # bytes of every activation
    x = torch.randn(1, c, hw, hw)
    chain = nn.Sequential(
        nn.Conv2d(c, c, 1), nn.Conv2d(c, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1)
    )
    residual = nn.Sequential(nn.Conv2d(c, c, 1), Residual(c))
    assert peak_activation_bytes(chain, x) == 3 * s  # input + one in/out pair
    # input + skip tensor + c1 output + c2 output all live while c2 runs
    assert peak_activation_bytes(residual, x) == 4 * s


# ---------------------------------------------------------------- timing


def test_latency_and_throughput():
    model = small_net()
    model.train()
    model[1].eval()
    flags = [m.training for m in model.modules()]
    lat = measure_latency(model, torch.randn(4, 3, 16, 16), repeats=5, warmup=1)
    assert 0 < lat.median_ms <= lat.p90_ms
    assert lat.repeats == 5
    assert lat.threads == torch.get_num_threads()
    assert [m.training for m in model.modules()] == flags
    assert measure_throughput(model, torch.randn(2, 3, 16, 16), batch_size=4, repeats=2) > 0
    assert [m.training for m in model.modules()] == flags


def test_profile_leaves_model_unchanged():
    model = small_net().train()
    before = copy.deepcopy(model.state_dict())
    hooks = len(torch.nn.modules.module._global_forward_hooks)
    x = torch.randn(2, 3, 16, 16, requires_grad=True)
    p = profile(model, x, repeats=3, warmup=1, throughput_batch=2)
    assert isinstance(p, CostProfile)
    assert p.latency_ms <= p.latency_p90_ms and p.threads == torch.get_num_threads()
    assert p.throughput > 0 and p.throughput_batch == 2
    assert model.training and all(m.training for m in model.modules())
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN stats untouched too
    assert all(prm.grad is None for prm in model.parameters()) and x.grad is None
    assert len(torch.nn.modules.module._global_forward_hooks) == hooks
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def test_profile_is_lazy_root_helper():
    assert lightvision.profile is profile


# ---------------------------------------------------------------- energy


def test_energy_estimate_by_hand():
    ops = OpCount(macs=1000, binary_ops=100, ternary_ops=10, other_ops=1)
    e = estimate_energy(ops, model_bytes=400, activation_bytes=40)
    compute_pj = 1000 * 4.6 + 100 * 0.03 + 10 * 0.9 + 1 * 0.9
    memory_pj = 400 * 8 / 32 * 640 + 2 * 40 * 8 / 32 * 5
    assert e.compute_uj == pytest.approx(compute_pj * 1e-6)
    assert e.memory_uj == pytest.approx(memory_pj * 1e-6)
    assert e.total_uj == pytest.approx((compute_pj + memory_pj) * 1e-6)
    assert EnergyTable().mac_pj == pytest.approx(4.6)
    int8 = estimate_energy(ops, model_bytes=400, activation_bytes=40, table=EnergyTable.int8())
    assert int8.compute_uj == pytest.approx((compute_pj - 1000 * (4.6 - 0.23)) * 1e-6)


# ---------------------------------------------------------------- bandwidth


def test_bandwidth_by_hand():
    assert image_bits(640, 480, channels=3, bit_depth=8) == 7_372_800
    raw = raw_bandwidth(640, 480, channels=3, bit_depth=8, fps=30.0)
    assert raw == 221_184_000
    assert label_bits(10) == 4 and label_bits(8) == 3 and label_bits(1) == 1
    assert feature_bits(128) == 4096 and feature_bits(128, bits=8) == 1024
    link = link_bandwidth(label_bits(10), fps=30.0, overhead=1.2)
    assert link == pytest.approx(4 * 30 * 1.2)
    assert data_reduction_ratio(raw, link) == pytest.approx(221_184_000 / 144)


# ---------------------------------------------------------------- input validation

X = torch.randn(1, 1, 4, 4)
CONV = nn.Conv2d(1, 1, 1)
BAD_CALLS = {
    "model_type_ops": (lambda: count_ops("net", X), TypeError, "model"),
    "model_type_params": (lambda: count_params(None), TypeError, "model"),
    "model_type_size": (lambda: model_size_bytes(3), TypeError, "model"),
    "model_type_profile": (lambda: profile(object(), X), TypeError, "model"),
    "input_type": (lambda: count_ops(CONV, [1.0]), TypeError, "example_inputs"),
    "input_zero_batch": (
        lambda: peak_activation_bytes(CONV, torch.zeros(0, 1, 4, 4)),
        ValueError,
        "example_inputs",
    ),
    "input_nan": (
        lambda: profile(CONV, torch.full((1, 1, 4, 4), float("nan")), timing=False),
        ValueError,
        "example_inputs",
    ),
    "activation_bits": (
        lambda: peak_activation_bytes(CONV, X, activation_bits=0),
        ValueError,
        "activation_bits",
    ),
    "latency_repeats": (lambda: measure_latency(CONV, X, repeats=0), ValueError, "repeats"),
    "throughput_repeats": (lambda: measure_throughput(CONV, X, repeats=0), ValueError, "repeats"),
    "throughput_batch": (
        lambda: measure_throughput(CONV, X, batch_size=0),
        ValueError,
        "batch_size",
    ),
    "profile_repeats": (lambda: profile(CONV, X, repeats=0), ValueError, "repeats"),
    "width": (lambda: raw_bandwidth(0, 480), ValueError, "width"),
    "height": (lambda: image_bits(640, -1), ValueError, "height"),
    "fps": (lambda: raw_bandwidth(640, 480, fps=0.0), ValueError, "fps"),
    "bit_depth": (lambda: raw_bandwidth(640, 480, bit_depth=0), ValueError, "bit_depth"),
    "n_classes": (lambda: label_bits(0), ValueError, "n_classes"),
    "overhead": (lambda: link_bandwidth(100, overhead=0.9), ValueError, "overhead"),
    "link_bps": (lambda: data_reduction_ratio(1e6, 0.0), ValueError, "link_bps"),
    "op_kind": (lambda: register_cost(nn.Conv2d, op_kind="quaternary"), ValueError, "op_kind"),
    "storage_bits": (
        lambda: register_cost(nn.Conv2d, storage_bits={"weight": 0}),
        ValueError,
        "storage_bits",
    ),
    "storage_bits_type": (
        lambda: register_cost(nn.Conv2d, storage_bits={"weight": 1.5}),
        ValueError,
        "storage_bits",
    ),
    "register_target": (lambda: register_cost(int, op_kind="binary"), TypeError, "module_cls"),
    "energy_ops": (lambda: estimate_energy(10, 0, 0), TypeError, "ops"),
    "energy_bytes": (lambda: estimate_energy(OpCount(1), -1, 0), ValueError, "model_bytes"),
}


@pytest.mark.parametrize("call", BAD_CALLS.values(), ids=BAD_CALLS.keys())
def test_bad_arguments_raise_clear_errors(call):
    fn, error, match = call
    with pytest.raises(error, match=match):
        fn()


def test_tuple_input_accepted():
    class Add(nn.Module):
        def forward(self, a, b):
            return a @ b

    ops = count_ops(Add(), (torch.randn(2, 3, 4), torch.randn(2, 4, 5)))
    assert ops.macs == 2 * 3 * 4 * 5


def test_bandwidths_refuse_to_overflow_and_sizes_stay_exact():
    assert image_bits(10**200, 10**200) == 8 * 10**400  # exact Python ints
    assert feature_bits(10**300, bits=64) == 64 * 10**300
    with pytest.raises(ValueError, match="raw_bandwidth: image_bits \\* fps overflows a float"):
        raw_bandwidth(10**200, 10**200)
    with pytest.raises(ValueError, match="raw_bandwidth: image_bits \\* fps overflows"):
        raw_bandwidth(10**150, 10**150, fps=1e10)  # finite bits, infinite rate
    with pytest.raises(ValueError, match="link_bandwidth: bits_per_frame \\* fps \\* overhead"):
        link_bandwidth(10**300, fps=1e300)
    with pytest.raises(ValueError, match="raw_bps / link_bps"):
        data_reduction_ratio(1e300, 1e-300)
    assert raw_bandwidth(np.int64(640), np.int64(480), fps=np.float32(30)) == 640 * 480 * 8 * 30


class TernaryLinear(nn.Module):
    """A linear layer with fixed weights in {-1, 0, +1} (every third one zero), registered."""

    def __init__(self, c_in: int, c_out: int, bias: bool):
        super().__init__()
        weight = torch.tensor([-1.0, 0.0, 1.0]).repeat(c_in * c_out)[: c_in * c_out]
        self.register_buffer("weight", weight.reshape(c_out, c_in))
        self.bias = nn.Parameter(torch.zeros(c_out)) if bias else None

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)


@pytest.mark.parametrize("bias", [False, True])  # mm and addmm
def test_ternary_ops_of_a_matrix_product_skip_zero_weights(bias):
    layer = register_cost(TernaryLinear(5, 6, bias), op_kind="ternary")
    nonzero = int(layer.weight.count_nonzero())
    assert nonzero == 20  # 30 weights, 10 zeros
    ops = count_ops(nn.Sequential(nn.Linear(3, 5), layer), torch.randn(4, 3))
    assert ops.macs == 4 * 3 * 5
    assert (ops.ternary_ops, ops.dense_ternary_ops) == (4 * nonzero, 4 * 30)


def test_op_count_dense_defaults_and_checks():
    ops = OpCount(macs=1, binary_ops=2, ternary_ops=3)
    assert (ops.dense_binary_ops, ops.dense_ternary_ops) == (2, 3)
    with pytest.raises(ValueError, match=r"dense_ternary_ops \(2\) must be >= ternary_ops \(3\)"):
        OpCount(macs=1, ternary_ops=3, dense_ternary_ops=2)
