"""The BoF paper's CNN with BoF, GMP and SPP heads at equal parameter count (seed #24)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lightvision
from lightvision.metrics import count_params
from lightvision.models import PoolingHeadCNN
from lightvision.models.bof_cnn import head_param_counts

HEADS = ("bof", "gmp", "spp")
TOLERANCE = 0.05  # the three totals must lie within 5 % of the BoF network's


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"widths": (16, 24), "n_codewords": 32, "hidden": 64},
        {"widths": (32, 32), "n_codewords": 16, "bof_spatial_level": 1, "hidden": 0},
        {"widths": (32, 64), "spp_levels": (1, 2, 4), "hidden": 32, "num_classes": 5},
    ],
)
def test_heads_have_equal_parameter_counts(config):
    models = {head: PoolingHeadCNN(head=head, **config) for head in HEADS}
    totals = {head: m.param_counts()["total"] for head, m in models.items()}
    target = totals["bof"]
    for head, model in models.items():
        counts = model.param_counts()
        assert counts["total"] == count_params(model).trainable
        assert model.target_params == target
        widths = (config.get("widths", (32, 32))[0], model.last_width)
        formula = head_param_counts(head, widths=widths, **{
            k: v for k, v in config.items() if k != "widths"})
        assert counts == formula
        assert abs(counts["total"] - target) <= TOLERANCE * target, (head, totals)
    print(f"\n{config}: totals {totals}, last widths "
          f"{ {h: m.last_width for h, m in models.items()} }")


def test_default_counts():
    names = ("bof_cnn", "gmp_cnn", "spp_cnn")
    models = [lightvision.create_model(name) for name in names]
    assert [m.last_width for m in models] == [32, 127, 57]
    assert [m.param_counts()["total"] for m in models] == [54_762, 54_856, 54_780]
    # codewords and widths, + batch norm of the 5 x 64 histogram values (global + quadrants)
    assert models[0].param_counts()["pooling"] == 64 * (32 + 1) + 2 * 5 * 64


def test_unmatched_widths_are_kept():
    model = PoolingHeadCNN(head="gmp", match_params=False)
    assert model.last_width == 32


@pytest.mark.parametrize("name", ["bof_cnn", "gmp_cnn", "spp_cnn"])
@pytest.mark.parametrize("size", [(28, 28), (22, 22), (27, 27), (32, 32), (4, 5)])
def test_any_input_size(name, size):
    model = lightvision.create_model(name, num_classes=4).eval()
    out = model(torch.randn(2, 1, *size))
    assert out.shape == (2, 4) and torch.isfinite(out).all()


def test_bof_model_accepts_0_8x_scale_after_initialisation():
    torch.manual_seed(0)
    model = lightvision.create_model("bof_cnn", n_codewords=8)
    model.initialize_bof(torch.randn(16, 1, 28, 28), n_samples=500, random_state=0)
    model.eval()
    histograms = model.pool(model.feature_maps(torch.randn(3, 1, 22, 22)))
    # spatial level 1: the whole map and its 4 quadrants, each a histogram summing to 1
    torch.testing.assert_close(histograms.reshape(3, 5, 8).sum(2), torch.ones(3, 5))
    assert model(torch.randn(3, 1, 22, 22)).shape == (3, 10)


def test_clear_errors():
    with pytest.raises(ValueError, match="head"):
        PoolingHeadCNN(head="avg")
    with pytest.raises(ValueError, match="widths"):
        PoolingHeadCNN(widths=(8, 8, 8))
    with pytest.raises(ValueError, match="spatial_level"):
        PoolingHeadCNN(bof_spatial_level=2)
    with pytest.raises(ValueError, match="spp_levels"):
        PoolingHeadCNN(head="spp", spp_levels=())
    with pytest.raises(ValueError, match="dropout"):
        PoolingHeadCNN(dropout=1.0)
    model = PoolingHeadCNN()  # spatial level 1: 4 pixels at least
    with pytest.raises(ValueError, match="pixels"):
        model(torch.randn(1, 1, 3, 28))
    with pytest.raises(ValueError, match="channels"):
        model(torch.randn(1, 3, 28, 28))
    with pytest.raises(ValueError, match="BoFPooling input holds values up to .* overflow"):
        model.eval()(torch.full((1, 1, 28, 28), 1e30))  # finite, but the conv maps overflow
    with pytest.raises(ValueError, match="head='bof'"):
        PoolingHeadCNN(head="gmp").initialize_bof(torch.randn(2, 1, 28, 28))


def test_argument_types_are_checked():
    with pytest.raises(TypeError, match="bof_spatial_level must be an int, got Tensor"):
        PoolingHeadCNN(bof_spatial_level=torch.zeros(0))
    with pytest.raises(TypeError, match="bof_spatial_level must be an int, got float"):
        PoolingHeadCNN(bof_spatial_level=1.0)
    with pytest.raises(TypeError, match="spp_levels must be a sequence of ints"):
        PoolingHeadCNN(head="spp", spp_levels=None)
    with pytest.raises(TypeError, match=r"widths\[0\] must be an int"):
        PoolingHeadCNN(widths=(None, 8))
    assert PoolingHeadCNN(bof_spatial_level=np.int64(0), widths=(4, 4), n_codewords=4,
                          hidden=8).min_size == 2
