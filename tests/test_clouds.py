"""Cloud-covered scene generator and Park et al.'s cloud CNNs (seed #18): unit tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lightvision.datasets import CloudScenes, make_cloud_scenes
from lightvision.models import CloudBaselineNet, CloudNet, create_model
from lightvision.models.cloud import (
    cloud_loss,
    downlink_gain,
    image_priority,
    image_to_patches,
    precision_at_k,
)


@pytest.fixture(scope="module")
def scenes() -> CloudScenes:
    return make_cloud_scenes(60, image_size=64, patch_size=16, random_state=3)


# ---------------------------------------------------------------- generator


def test_generator_shapes_and_dtypes(scenes):
    assert scenes.images.shape == (60, 64, 64, 3) and scenes.images.dtype == np.uint8
    assert scenes.cloud_mask.shape == (60, 64, 64) and scenes.cloud_mask.dtype == bool
    assert scenes.cloud_fraction.shape == (60,)
    assert scenes.patch_fraction.shape == (60, 4, 4)
    assert len(scenes) == 60 and len(scenes.bright_kind) == 60
    rect = make_cloud_scenes(2, image_size=(32, 64), patch_size=32, random_state=0)
    assert rect.images.shape == (2, 32, 64, 3) and rect.patch_fraction.shape == (2, 1, 2)


def test_generator_is_deterministic_and_image_independent_of_n():
    a = make_cloud_scenes(3, image_size=32, patch_size=16, random_state=7)
    b = make_cloud_scenes(5, image_size=32, patch_size=16, random_state=7)
    c = make_cloud_scenes(3, image_size=32, patch_size=16, random_state=8)
    np.testing.assert_array_equal(a.images, b.images[:3])
    np.testing.assert_array_equal(a.cloud_fraction, b.cloud_fraction[:3])
    assert not np.array_equal(a.images, c.images)


def test_cloud_fraction_is_exact(scenes):
    n_pixels = 64 * 64
    counts = scenes.cloud_fraction * n_pixels
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-9)
    np.testing.assert_array_equal(scenes.cloud_fraction, scenes.cloud_mask.mean(axis=(1, 2)))
    np.testing.assert_allclose(scenes.patch_fraction.mean(axis=(1, 2)), scenes.cloud_fraction,
                               atol=1e-12)
    assert scenes.patch_fraction.min() >= 0 and scenes.patch_fraction.max() <= 1


def test_cloud_is_bright_and_mostly_above_ground(scenes):
    grey = scenes.images.mean(axis=-1)
    mixed = (scenes.cloud_fraction > 0.2) & (scenes.cloud_fraction < 0.8)
    cloud = np.array([grey[i][scenes.cloud_mask[i]].mean() for i in np.flatnonzero(mixed)])
    ground = np.array([grey[i][~scenes.cloud_mask[i]].mean() for i in np.flatnonzero(mixed)])
    assert (cloud > ground).mean() > 0.8


def test_clear_share_and_bright_ground():
    s = make_cloud_scenes(200, image_size=32, patch_size=16, random_state=0)
    assert 0.2 < s.is_clear().mean() < 0.4  # clear_share=0.3, binomial sd 0.03
    assert (s.cloud_fraction == 0).any() and (s.cloud_fraction > 0.9).any()
    bright = np.array([k != "" for k in s.bright_kind])
    assert 0.3 < bright.mean() < 0.5  # bright_share=0.4
    assert {k for k in s.bright_kind} == {"", "snow", "sand", "salt"}
    assert (s.bright_fraction[bright] > 0.1).all() and (s.bright_fraction[~bright] == 0).all()
    # bright ground is as bright as cloud: clear images with bright ground reach cloud levels
    grey = s.images.mean(axis=-1)
    clear_bright = np.flatnonzero(s.is_clear() & (s.bright_fraction > 0.3))
    assert clear_bright.size and max(np.percentile(grey[i], 90) for i in clear_bright) > 200
    none = make_cloud_scenes(20, image_size=32, patch_size=16, clear_share=0.0,
                             bright_share=0.0, random_state=0)
    assert (none.cloud_fraction >= 0.1).all() and (none.bright_fraction == 0).all()


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"n_images": 0}, ValueError, "n_images"),
    ({"image_size": 40, "patch_size": 16}, ValueError, "multiple"),
    ({"image_size": (32, 32, 3)}, TypeError, "image_size"),
    ({"clear_share": 1.5}, ValueError, "clear_share"),
    ({"clear_threshold": 1.0}, ValueError, "clear_threshold"),
    ({"patch_size": 2.0}, TypeError, "patch_size"),
])
def test_generator_errors(kwargs, error, match):
    kwargs = {"n_images": 2, "image_size": 32, "patch_size": 16, **kwargs}
    with pytest.raises(error, match=match):
        make_cloud_scenes(**kwargs)


# ---------------------------------------------------------------- models


@pytest.mark.parametrize("size", [7, 8, 17, 31, 33, 45])
@pytest.mark.parametrize("shared", [False, True])
def test_cloudnet_shapes(size, shared):
    model = CloudNet(shared_streams=shared).eval()
    x = torch.rand(3, 3, size, size)
    assert model(x).shape == (3, 1)
    assert model.forward_features(x).shape == (3, 96)


def test_cloudnet_structure_and_parameter_counts():
    model = CloudNet()
    first = list(model.streams)[:2]
    assert isinstance(first[0], nn.ReplicationPad2d) and isinstance(first[1], nn.Conv2d)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.padding for c in convs] == [(0, 0)] * 3  # only block 1 pads, by replication
    assert [c.stride for c in convs] == [(1, 1), (2, 2), (2, 2)]
    assert not any(isinstance(m, nn.ZeroPad2d) for m in model.modules())
    assert all(c.groups == 3 for c in convs)
    # per stream: 1*8*9 + 2*8 + 8*16*9 + 2*16 + 16*32*9 + 2*32 = 5944; head 96 + 1
    assert sum(p.numel() for p in model.parameters()) == 3 * 5944 + 97 == 17929
    shared = CloudNet(shared_streams=True)
    assert sum(p.numel() for p in shared.parameters()) == 5944 + 97
    assert CloudNet(widths=(8, 16)).min_size == 3 and CloudNet().min_size == 7
    assert CloudNet(widths=(8, 8, 16, 32)).min_size == 15
    base = CloudBaselineNet()
    convs = 3 * 64 + 64 * 64 + 64 * 128 + 128 * 128 + 128 * 256 + 256 * 256 + 256 * 512 \
        + 512 * 512
    bn = 2 * 2 * (64 + 128 + 256 + 512)
    assert sum(p.numel() for p in base.parameters()) == 9 * convs + bn + 513 == 4687809


@pytest.mark.parametrize("shared", [False, True])
def test_each_stream_sees_one_channel(shared):
    torch.manual_seed(0)
    model = CloudNet(shared_streams=shared).eval()
    x = torch.rand(4, 3, 32, 32)
    f = model.forward_features(x)
    for c in range(3):
        y = x.clone()
        y[:, c] = torch.rand(4, 32, 32)
        g = model.forward_features(y)
        for s in range(3):
            same = torch.equal(f[:, 32 * s:32 * (s + 1)], g[:, 32 * s:32 * (s + 1)])
            assert same == (s != c), (c, s)
    if shared:  # the same stream on every channel: a channel permutation permutes features
        perm = model.forward_features(x[:, [2, 0, 1]])
        torch.testing.assert_close(perm, torch.cat([f[:, 64:], f[:, :64]], dim=1))


def test_replication_padding_sees_no_dark_border():
    # a uniform patch gives a uniform first-block response: no zero-padding border effect
    model = CloudNet().eval()
    out = model.streams[:4](torch.full((1, 3, 16, 16), 0.8))
    assert torch.allclose(out, out[..., :1, :1].expand_as(out))


def test_cloudnet_errors():
    with pytest.raises(ValueError, match="in_channels"):
        CloudNet(in_channels=1)
    with pytest.raises(ValueError, match="widths"):
        CloudNet(widths=())
    with pytest.raises(TypeError, match="shared_streams"):
        CloudNet(shared_streams=1)
    with pytest.raises(ValueError, match="dropout"):
        CloudBaselineNet(dropout=1.0)
    model = CloudNet()
    with pytest.raises(ValueError, match="channels"):
        model(torch.rand(1, 1, 32, 32))
    with pytest.raises(ValueError, match="pixels"):
        model(torch.rand(1, 3, 6, 32))
    assert create_model("cloud_net").num_classes == 1
    assert isinstance(create_model("cloud_baseline"), CloudBaselineNet)


# ---------------------------------------------------------------- patches and priority


def test_image_to_patches_order():
    images = np.arange(2 * 4 * 6 * 3, dtype=np.float32).reshape(2, 4, 6, 3)
    patches = image_to_patches(images, 2)
    assert patches.shape == (2 * 2 * 3, 3, 2, 2)
    # patch of image 1, row 1, column 2 = pixels [2:4, 4:6] in channel-first layout
    expected = torch.from_numpy(images[1, 2:4, 4:6]).permute(2, 0, 1)
    torch.testing.assert_close(patches[6 + 1 * 3 + 2], expected)
    assert image_to_patches(np.full((1, 5, 5, 3), 255, np.uint8), 2).max() == 1.0  # crops
    with pytest.raises(ValueError, match="shape"):
        image_to_patches(np.zeros((2, 8, 8)), 4)
    with pytest.raises(ValueError, match="patch_size"):
        image_to_patches(np.zeros((1, 8, 8, 3)), 16)
    with pytest.raises(TypeError, match="uint8"):
        image_to_patches(np.zeros((1, 8, 8, 3), dtype=np.int64), 4)


class _MeanBrightness(nn.Module):
    """Known model: logit = 8 * (mean patch brightness - 0.5)."""

    def forward(self, x):
        return 8 * (x.mean(dim=(1, 2, 3)) - 0.5)[:, None]


def test_image_priority_with_known_model():
    images = np.zeros((3, 64, 64, 3), dtype=np.uint8)
    images[1, :32] = 255  # half the patches white
    images[2] = 255
    model = _MeanBrightness().train()
    pr = image_priority(model, images, patch_size=32, batch_size=3)
    s = 1 / (1 + np.exp(-4.0))
    np.testing.assert_allclose(pr, [1 - s, 0.5, s])
    assert model.training  # mode restored
    with pytest.raises(ValueError, match="one logit"):
        image_priority(nn.Flatten(), images)


def test_cloud_loss_is_bce_against_fractions():
    logits = torch.tensor([[0.0], [2.0]])
    target = torch.tensor([0.5, 1.0], dtype=torch.float64)
    expected = (np.log(2) + np.log1p(np.exp(-2.0))) / 2
    assert cloud_loss(logits, target).item() == pytest.approx(expected)


# ---------------------------------------------------------------- ranking metrics


def test_precision_at_k_and_downlink_gain_by_hand():
    clear = np.array([False, False, True, False, True, True])
    priority = np.array([0.9, 0.8, 0.1, 0.7, 0.3, 0.2])
    assert precision_at_k(priority, clear, 3) == 1.0
    assert precision_at_k(priority, clear, 4) == 0.75
    assert precision_at_k(np.zeros(6), clear, 3) == pytest.approx(1 / 3)  # ties: capture order
    # first 4 chronologically hold 1 clear image, by priority 3
    assert downlink_gain(priority, clear, 4) == 3.0
    # captured in reverse order: the first 4 captured (indices 5, 4, 3, 2) hold 3 clear
    assert downlink_gain(priority, clear, 4, chronological_order=np.arange(6)[::-1]) == 1.0
    assert downlink_gain(priority, clear, 2) == float("inf")
    assert np.isnan(downlink_gain(-priority, clear, 2))


@pytest.mark.parametrize(("args", "error", "match"), [
    (([0.1, 0.2], [1, 0], 1), TypeError, "bool"),
    (([0.1, 0.2], np.array([True, False]), 3), ValueError, "exceeds"),
    (([0.1, 0.2], np.array([True, False]), 0), ValueError, "k"),
    (([0.1, 0.2, 0.3], np.array([True, False]), 1), ValueError, "same length"),
    (([0.1, np.nan], np.array([True, False]), 1), ValueError, "NaN"),
])
def test_ranking_metric_errors(args, error, match):
    with pytest.raises(error, match=match):
        precision_at_k(*args)
    with pytest.raises(error, match=match):
        downlink_gain(*args)
    with pytest.raises(ValueError, match="chronological_order"):
        downlink_gain([0.1, 0.2], np.array([True, False]), 1, chronological_order=[0.0])


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(("threshold", "error", "match"), [
    ("0.1", TypeError, "threshold must be a real number, got str"),
    (None, TypeError, "threshold must be a real number, got NoneType"),
    (float("nan"), ValueError, "threshold must be a finite number > 0"),
    (-1.0, ValueError, "threshold must be a finite number > 0"),
    (0.0, ValueError, "threshold must be a finite number > 0"),
    (1.5, ValueError, r"threshold must be a cloud fraction in \(0, 1\]"),
])
def test_is_clear_checks_its_threshold(scenes, threshold, error, match):
    with pytest.raises(error, match=match):
        scenes.is_clear(threshold)


def test_is_clear_accepts_numpy_scalars(scenes):
    np.testing.assert_array_equal(scenes.is_clear(np.float32(0.25)),
                                  scenes.cloud_fraction < np.float32(0.25))
    assert scenes.is_clear(1).all()


def test_image_priority_takes_lists_and_refuses_bad_images():
    images = np.zeros((2, 32, 32, 3), dtype=np.float32)
    images[1] = 1.0
    model = _MeanBrightness()
    expected = image_priority(model, images)
    np.testing.assert_allclose(image_priority(model, images.tolist()), expected)
    np.testing.assert_allclose(image_priority(model, torch.from_numpy(images)), expected)
    nan_images = images.copy()
    nan_images[0, 3, 4, 1] = np.nan
    for bad, error, match in (
        (nan_images, ValueError, "images contains NaN or infinite values"),
        (np.full_like(images, np.inf), ValueError, "images contains NaN"),
        (np.zeros((0, 32, 32, 3), np.uint8), ValueError, "images is empty"),
        (None, TypeError, "images must be an array or tensor of numbers, got NoneType"),
        ("images", TypeError, "images must be an array or tensor of numbers, got str"),
        ([[[[0.0] * 3] * 32] * 32, [[0.0] * 3]], ValueError, "images must be a rectangular"),
        (np.array([None] * 4).reshape(1, 1, 1, 4), TypeError, "images must hold real numbers"),
    ):
        with pytest.raises(error, match=match):
            image_priority(model, bad)
    assert np.isnan(nan_images).sum() == 1  # the input is not modified


def test_image_priority_refuses_a_model_giving_nan():
    class _NaN(nn.Module):
        def forward(self, x):
            return torch.full((len(x), 1), float("nan"))

    with pytest.raises(ValueError, match="logits contains NaN"):
        image_priority(_NaN(), np.zeros((1, 32, 32, 3), np.uint8))


def test_ranking_metrics_refuse_non_numbers():
    clear = np.array([True, False])
    with pytest.raises(TypeError, match="priority must be an array or tensor of numbers"):
        precision_at_k(None, clear, 1)
    with pytest.raises(TypeError, match="priority must hold real numbers or bools, got dtype <U"):
        downlink_gain(["a", "b"], clear, 1)
    with pytest.raises(TypeError, match="is_clear must be an array or tensor"):
        precision_at_k([0.1, 0.2], None, 1)
    with pytest.raises(TypeError, match="chronological_order must be an array"):
        downlink_gain([0.1, 0.2], clear, 1, chronological_order="ab")
    assert precision_at_k(torch.tensor([0.2, 0.1]), torch.tensor([True, False]), 1) == 0.0


@pytest.mark.parametrize("kwargs", [{"image_size": 2**20}, {"n_images": 10**9, "image_size": 64},
                                    {"image_size": (2**22, 32)}])
def test_huge_scenes_are_refused_up_front(kwargs):
    with pytest.raises(ValueError, match=r"\(n_images, image_size\) need about .* GiB, more than"):
        make_cloud_scenes(**kwargs)


def test_generator_accepts_numpy_ints():
    a = make_cloud_scenes(np.int64(1), image_size=np.int64(32), patch_size=np.int64(16),
                          random_state=0)
    b = make_cloud_scenes(1, image_size=32, patch_size=16, random_state=0)
    np.testing.assert_array_equal(a.images, b.images)


def test_cloud_loss_checks_its_arguments():
    with pytest.raises(TypeError, match="logits must be a torch.Tensor, got NoneType"):
        cloud_loss(None, torch.zeros(1))
    with pytest.raises(TypeError, match="target must be a torch.Tensor, got ndarray"):
        cloud_loss(torch.zeros(1, 1), np.zeros(1))
    with pytest.raises(ValueError, match="one value per patch"):
        cloud_loss(torch.zeros(2, 1), torch.zeros(3))
