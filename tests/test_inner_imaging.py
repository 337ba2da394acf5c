"""Inner-Imaging (seed #8): fold layout, shapes, weights, parameter counts, errors."""

from __future__ import annotations

import pytest
import torch

from lightvision.nn.inner_imaging import InnerImaging, InnerImagingBlock


def _n_params(module):
    return sum(p.numel() for p in module.parameters())


def _ini_params(c, k, *, view="pair", kernel=(3, 3), maps=None, reduction=16):
    """Hand formula: lens M*kh*kw + BN 2M + FC L*h + FC h*C (no biases)."""
    rows = (2 if view == "pair" else 1) * c // k
    m = max(1, c // 64) if maps is None else maps
    h = max(1, c // reduction)
    length = (rows - kernel[0] + 1) * (k - kernel[1] + 1)
    return m * kernel[0] * kernel[1] + 2 * m + length * h + h * c


def test_pair_fold_alternates_residual_and_shortcut_groups():
    ini = InnerImaging(12, group=4, kernel_size=1)
    z_r = torch.arange(12.0)[None]
    z_x = 100 + torch.arange(12.0)[None]
    image = ini.fold(z_r, z_x)
    assert image.shape == (1, 1, 6, 4)
    expected = torch.stack([z_r[0, :4], z_x[0, :4], z_r[0, 4:8], z_x[0, 4:8],
                            z_r[0, 8:], z_x[0, 8:]])
    torch.testing.assert_close(image[0, 0], expected)


def test_single_fold_is_row_major():
    ini = InnerImaging(12, group=4, view="single", kernel_size=1)
    image = ini.fold(torch.arange(12.0)[None])
    torch.testing.assert_close(image[0, 0], torch.arange(12.0).reshape(3, 4))


@pytest.mark.parametrize("view", ["pair", "single"])
@pytest.mark.parametrize("size", [(1, 1), (7, 9), (8, 8), (5, 12)])
def test_shapes_and_weights_in_unit_interval(view, size):
    ini = InnerImaging(16, group=4, view=view).eval()
    r, s = torch.randn(3, 16, *size), torch.randn(3, 16, *size)
    args = (r, s) if view == "pair" else (r,)
    w = ini.weights(*args)
    assert w.shape == (3, 16)
    assert ((w > 0) & (w < 1)).all()
    out = ini(*args)
    assert out.shape == r.shape
    torch.testing.assert_close(out, r * w[:, :, None, None])


def test_pair_view_depends_on_shortcut():
    ini = InnerImaging(16, group=4).eval()
    r = torch.randn(2, 16, 5, 5)
    with torch.no_grad():
        a, b = ini.weights(r, torch.randn(2, 16, 5, 5)), ini.weights(r, torch.randn(2, 16, 5, 5))
    assert not torch.allclose(a, b)


@pytest.mark.parametrize(
    ("c", "k", "view", "kernel", "maps"),
    [(256, 16, "pair", 3, None), (64, 16, "single", 3, None), (16, 4, "pair", (1, 2), 3),
     (128, 8, "single", (3, 1), None)],
)
def test_parameter_count_matches_formula(c, k, view, kernel, maps):
    ini = InnerImaging(c, group=k, view=view, kernel_size=kernel, lens_maps=maps)
    pair = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    assert _n_params(ini) == _ini_params(c, k, view=view, kernel=pair, maps=maps)


def test_reference_configuration_overhead():
    """ResNet-164 stage 3 (C=256, k=16): 10,860 parameters, 2,668 more than bias-free SE."""
    ini = InnerImaging(256, group=16)
    assert ini.image_shape == (32, 16) and ini.lens_shape == (30, 14)
    assert _n_params(ini) == 10_860
    assert _n_params(ini) - 2 * 256 * 16 == 2_668


@pytest.mark.parametrize("view", ["pair", "single"])
@pytest.mark.parametrize(("c_in", "c_out", "stride", "size", "expected"), [
    (16, 16, 1, (7, 9), (7, 9)), (8, 16, 2, (7, 9), (4, 5)), (16, 32, 2, (8, 8), (4, 4)),
])
def test_block_shapes(view, c_in, c_out, stride, size, expected):
    block = InnerImagingBlock(c_in, c_out, stride=stride, group=4, view=view)
    assert block(torch.randn(2, c_in, *size)).shape == (2, c_out, *expected)


@pytest.mark.parametrize("view", ["pair", "single"])
def test_block_gradients_reach_every_parameter(view):
    block = InnerImagingBlock(8, 16, stride=2, group=4, view=view).train()
    block(torch.randn(4, 8, 7, 9)).square().mean().backward()
    missing = [n for n, p in block.named_parameters() if p.grad is None or not p.grad.any()]
    assert not missing


def test_block_calls_shortcut_once_and_uses_it_for_recalibration():
    block = InnerImagingBlock(8, 16, stride=2, group=4).eval()
    calls = []
    block.shortcut.register_forward_hook(lambda *args: calls.append(1))
    x = torch.randn(2, 8, 7, 9)
    with torch.no_grad():
        out = block(x)
        s = block.shortcut(x)
        r = block.conv2(block.relu(block.conv1(x)))
        expected = torch.relu(block.ini(r, s) + s)
    assert len(calls) == 2  # one in the forward pass, one here
    torch.testing.assert_close(out, expected)


def test_block_parameter_count():
    block = InnerImagingBlock(8, 16, stride=2, group=4)
    convs = 9 * 8 * 16 + 2 * 16 + 9 * 16 * 16 + 2 * 16 + 8 * 16 + 2 * 16
    assert _n_params(block) == convs + _ini_params(16, 4)


def test_state_dict_round_trip():
    torch.manual_seed(0)
    a = InnerImagingBlock(16, 16, group=4).eval()
    torch.manual_seed(1)
    b = InnerImagingBlock(16, 16, group=4).eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 16, 6, 7)
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)


def test_construction_errors():
    with pytest.raises(ValueError, match="divisible by group"):
        InnerImaging(20, group=8)
    with pytest.raises(ValueError, match="view must be one of"):
        InnerImaging(16, group=4, view="both")
    with pytest.raises(ValueError, match="smaller than the lens kernel"):
        InnerImaging(16, group=16)
    with pytest.raises(ValueError, match="smaller than the lens kernel"):
        InnerImaging(8, group=4, view="single")
    with pytest.raises(TypeError, match="channels must be an int"):
        InnerImaging(16.0, group=4)
    with pytest.raises(ValueError, match="kernel_size"):
        InnerImaging(16, group=4, kernel_size=(1, 2, 3))
    with pytest.raises(ValueError, match="group must be >= 1"):
        InnerImagingBlock(8, 16, group=0)


def test_call_errors():
    ini = InnerImaging(16, group=4)
    r = torch.randn(2, 16, 5, 5)
    with pytest.raises(ValueError, match="needs the shortcut"):
        ini(r)
    with pytest.raises(ValueError, match="shortcut has 8 channels"):
        ini(r, torch.randn(2, 8, 5, 5))
    with pytest.raises(ValueError, match="residual has 8 channels"):
        ini(torch.randn(2, 8, 5, 5), r)
    with pytest.raises(ValueError, match="batch size"):
        ini(r, torch.randn(3, 16, 5, 5))
    with pytest.raises(ValueError, match="takes no shortcut"):
        InnerImaging(16, group=4, view="single")(r, r)
    block = InnerImagingBlock(8, 16, group=4)
    with pytest.raises(ValueError, match="channels, expected 8"):
        block(torch.randn(2, 16, 5, 5))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        block(torch.randn(8, 5, 5))
