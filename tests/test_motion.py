"""Streamed video input, optical flow and the motion descriptors (binary, HOF, MBH)."""

from __future__ import annotations

import itertools
import math
import time
import tracemalloc

import cv2
import numpy as np
import pytest
from sklearn.base import clone

from lightvision.features import (
    BinaryMotionDescriptor,
    HOFDescriptor,
    MBHDescriptor,
    iter_frames,
    optical_flow,
)

DESCRIPTORS = (BinaryMotionDescriptor, HOFDescriptor, MBHDescriptor)
SMALL = {"region_size": 16, "region_frames": 4, "cells": (2, 2, 2), "min_motion": 0.0}


@pytest.fixture(autouse=True)
def one_thread():
    """OpenCV on one thread, as the speed targets are per core."""
    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    yield
    cv2.setNumThreads(previous)


def textured_video(n=20, height=48, width=64, dx=1.5, dy=0.5, seed=0, low=40, high=190):
    """A blurred random texture translated by (dx, dy) pixels per frame, float32 (n, H, W)."""
    rng = np.random.default_rng(seed)
    margin = int(max(abs(dx), abs(dy)) * n) + 8
    texture = cv2.GaussianBlur(rng.random((height + 2 * margin, width + 2 * margin))
                               .astype(np.float32), (0, 0), 2.5)
    texture = cv2.normalize(texture, None, low, high, cv2.NORM_MINMAX)
    return np.stack([cv2.warpAffine(texture, np.float32([[1, 0, -margin + dx * t],
                                                         [0, 1, -margin + dy * t]]),
                                    (width, height), flags=cv2.INTER_CUBIC)
                     for t in range(n)])


def as_uint8(video):
    return np.rint(np.clip(video, 0, 255)).astype(np.uint8)


def constant_flows(n, height, width, u=0.0, v=0.0):
    flows = np.zeros((n, height, width, 2), dtype=np.float32)
    flows[..., 0], flows[..., 1] = u, v
    return flows


# --- iter_frames -----------------------------------------------------------------------------

def test_iter_frames_grey_and_colour_arrays():
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (4, 10, 12), dtype=np.uint8)
    frames = iter_frames(grey)
    assert not isinstance(frames, list | tuple)
    np.testing.assert_array_equal(np.stack(list(frames)), grey)
    np.testing.assert_array_equal(np.stack(list(iter_frames(grey[..., None]))), grey)
    rgb = rng.integers(0, 256, (3, 10, 12, 3), dtype=np.uint8)
    expected = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in rgb]
    np.testing.assert_array_equal(list(iter_frames(rgb)), expected)
    rgba = np.concatenate([rgb, np.full((3, 10, 12, 1), 7, np.uint8)], axis=-1)
    np.testing.assert_array_equal(list(iter_frames(rgba)), expected)
    # an iterable of colour frames is RGB as well
    np.testing.assert_array_equal(list(iter_frames(list(rgb))), expected)
    for frame in iter_frames(rgb):
        assert frame.dtype == np.uint8 and frame.shape == (10, 12) and frame.flags.c_contiguous


def test_iter_frames_other_dtypes_are_rounded():
    video = np.array([[[0.4, 10.5, 10.6, 254.6]]] * 2, dtype=np.float64)  # (2, 1, 4)
    np.testing.assert_array_equal(next(iter_frames(video)), [[0, 10, 11, 255]])
    np.testing.assert_array_equal(next(iter_frames(video.astype(np.float32))),
                                  [[0, 10, 11, 255]])
    ints = np.arange(24, dtype=np.int16).reshape(2, 3, 4) * 10
    np.testing.assert_array_equal(np.stack(list(iter_frames(ints))), ints)
    assert next(iter_frames([[[1, 2], [3, 4]]])).dtype == np.uint8  # nested lists


@pytest.mark.parametrize("dtype", [bool, np.complex64, object, np.str_])
def test_iter_frames_rejects_non_real_dtypes(dtype):
    video = np.ones((2, 4, 4), dtype=dtype)
    with pytest.raises(TypeError, match=f"video has dtype {video.dtype}"):
        iter_frames(video)
    with pytest.raises(TypeError, match="video frame 0 has dtype"):
        list(iter_frames(list(video)))


@pytest.mark.parametrize("value, match", [(np.nan, "NaN or infinite"),
                                          (np.inf, "NaN or infinite"),
                                          (-1.0, "outside"), (256.0, "outside")])
def test_iter_frames_rejects_bad_values(value, match):
    video = np.zeros((2, 4, 4), dtype=np.float32)
    video[1, 2, 3] = value
    with pytest.raises(ValueError, match=f"video holds {match}|video holds values.*{match}"):
        iter_frames(video)
    with pytest.raises(ValueError, match="video frame 1 holds"):
        list(iter_frames(iter(video)))


def test_iter_frames_errors():
    with pytest.raises(ValueError, match="video must have 3 .* or 4 .* dimensions"):
        iter_frames(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="video must have 3 .* or 4 .* dimensions"):
        iter_frames(np.zeros((1, 2, 4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="video has 2 channels"):
        iter_frames(np.zeros((2, 4, 4, 2), np.uint8))
    with pytest.raises(ValueError, match="video has no frames"):
        iter_frames(np.zeros((0, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="video has empty frames"):
        iter_frames(np.zeros((3, 0, 4), np.uint8))
    with pytest.raises(ValueError, match="video has no frames"):
        list(iter_frames(iter([])))
    with pytest.raises(ValueError, match="video frame 0 must have 2 .* or 3 .* dimensions"):
        list(iter_frames([np.zeros(5)]))
    sizes = [np.zeros((4, 4)), np.zeros((4, 4)), np.zeros((4, 5))]
    with pytest.raises(ValueError, match="video frame 2 is 4x5 but the frames before it are 4x4"):
        list(iter_frames(sizes))
    with pytest.raises(TypeError, match="video must be an array, a path or an iterable"):
        iter_frames(5)


def test_iter_frames_consumes_iterables_lazily():
    pulled = []

    def frames():
        for t in itertools.count():
            pulled.append(t)
            yield np.full((6, 8), t % 256, dtype=np.uint8)

    stream = iter_frames(frames())  # an endless stream: nothing may be read ahead
    assert pulled == []
    assert next(stream)[0, 0] == 0 and next(stream)[0, 0] == 1
    assert pulled == [0, 1]
    fields = optical_flow(frames())
    assert next(fields).shape == (6, 8, 2)


def _write_video(path, frames):
    """frames (T, H, W) uint8 as an MJPG .avi (BGR); skips the test if OpenCV cannot write."""
    height, width = frames.shape[1:]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (width, height))
    if not writer.isOpened():
        pytest.skip("cv2.VideoWriter cannot write MJPG .avi here")
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()
    return path


def test_iter_frames_reads_files(tmp_path):
    video = as_uint8(textured_video(n=8))
    path = _write_video(tmp_path / "clip.avi", video)
    for source in (path, str(path)):
        frames = np.stack(list(iter_frames(source)))
        assert frames.shape == video.shape and frames.dtype == np.uint8
        assert np.abs(frames.astype(int) - video).mean() < 3  # MJPG is lossy
    fields = list(optical_flow(path))
    assert len(fields) == len(video) - 1
    codes = BinaryMotionDescriptor(**SMALL).transform([path, video])
    assert np.mean(np.unpackbits(codes[0]) == np.unpackbits(codes[1])) > 0.95


def test_iter_frames_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="video file .*missing.avi.* does not exist"):
        iter_frames(tmp_path / "missing.avi")
    garbage = tmp_path / "garbage.avi"
    garbage.write_text("not a video")
    with pytest.raises(ValueError, match="video file .*garbage.avi.* cannot be read by OpenCV"):
        iter_frames(garbage)
    empty = _write_video(tmp_path / "empty.avi", np.zeros((0, 16, 16), np.uint8))
    with pytest.raises(ValueError, match="video file .*empty.avi.* has no frames"):
        list(iter_frames(empty))


# --- optical_flow --------------------------------------------------------------------------------

@pytest.mark.parametrize("method, params", [("farneback", {}), ("dis", {}),
                                            ("dis", {"preset": "ultrafast"}),
                                            ("farneback", {"winsize": 9, "flags": 256})])
def test_optical_flow_recovers_the_shift(method, params):
    video = textured_video(n=6, dx=2.0, dy=-1.0)
    fields = list(optical_flow(video, method=method, **params))
    assert len(fields) == 5
    for field in fields:
        assert field.shape == (48, 64, 2) and field.dtype == np.float32
        np.testing.assert_allclose(np.median(field[8:-8, 8:-8], axis=(0, 1)), [2.0, -1.0],
                                   atol=0.1)


def test_optical_flow_errors():
    video = np.zeros((3, 16, 16), np.uint8)
    for method in ("lk", ["dis"], None):
        with pytest.raises(ValueError, match="method must be one of 'farneback', 'dis'"):
            optical_flow(video, method=method)
    with pytest.raises(ValueError, match="unknown parameter.*'window'.*valid: pyr_scale, levels"):
        optical_flow(video, window=3)
    with pytest.raises(ValueError, match="valid: preset"):
        optical_flow(video, method="dis", winsize=3)
    with pytest.raises(ValueError, match="preset must be one of 'ultrafast', 'fast', 'medium'"):
        optical_flow(video, method="dis", preset="slow")
    with pytest.raises(ValueError, match="pyr_scale must be in"):
        optical_flow(video, pyr_scale=1.5)
    with pytest.raises(ValueError, match="flags must be 0 or"):
        optical_flow(video, flags=4)
    with pytest.raises(TypeError, match="levels must be an int"):
        optical_flow(video, levels=2.0)
    with pytest.raises(ValueError, match="video has 1 frame; optical flow needs at least 2"):
        list(optical_flow(video[:1]))


# --- region grid, layout, positions ------------------------------------------------------------

def _expected_count(height, width, n_fields, size, frames, cells, stride):
    n_x, n_y, n_t = cells
    sx, sy = (size // n_x, size // n_y) if stride is None else (stride, stride)
    per_cell = frames // n_t
    times = max(0, (n_fields - frames) // per_cell + 1)
    return ((height - size) // sy + 1) * ((width - size) // sx + 1) * times


@pytest.mark.parametrize("height, width, n_fields, size, frames, cells, stride", [
    (48, 64, 11, 16, 4, (2, 2, 2), None),
    (50, 70, 16, 32, 15, (2, 2, 3), None),
    (50, 70, 16, 32, 15, (2, 2, 3), 32),
    (120, 160, 31, 32, 15, (2, 2, 3), 48),
    (40, 40, 9, 24, 6, (3, 2, 3), 24),
    (40, 40, 5, 24, 6, (3, 2, 3), None),  # shorter than a region: empty
])
@pytest.mark.parametrize("cls", DESCRIPTORS)
def test_region_grid_counts_and_positions(cls, height, width, n_fields, size, frames, cells,
                                          stride):
    desc = cls(region_size=size, region_frames=frames, cells=cells, stride=stride,
               min_motion=0)
    flows = constant_flows(n_fields, height, width, u=1.0)
    out, positions = desc.describe_flow(iter(flows), return_positions=True)
    count = _expected_count(height, width, n_fields, size, frames, cells, stride)
    assert out.shape == (count, desc.n_dims_) and positions.shape == (count, 3)
    assert out.dtype == (np.uint8 if cls is BinaryMotionDescriptor else np.float32)
    assert positions.dtype == np.int64
    if count:
        x, y, t = positions.T
        assert (x + size <= width).all() and (y + size <= height).all()
        assert (t + frames <= n_fields).all() and (t % (frames // cells[2]) == 0).all()
        assert len({tuple(p) for p in positions.tolist()}) == count
        assert (np.diff(t) >= 0).all()  # time order


def _mean_bits(flows, position, size, frames, cells, levels, reference):
    """Reference: the thermometer bits of one region from plain slicing and loops."""
    x, y, t = position
    n_x, n_y, n_t = cells
    cw, ch, ct = size // n_x, size // n_y, frames // n_t
    bits = []
    for component in (0, 1):
        region = flows[t: t + frames, y: y + size, x: x + size, component].astype(np.float64)
        offset = region.mean() if reference == "region" else 0.0
        for k in range(n_t):
            for j in range(n_y):
                for i in range(n_x):
                    block = flows[t + k * ct: t + (k + 1) * ct, y + j * ch: y + (j + 1) * ch,
                                  x + i * cw: x + (i + 1) * cw, component]
                    mean = block.astype(np.float64).mean() - offset
                    bits.extend(int(mean > level) for level in levels)
    return bits


@pytest.mark.parametrize("cells, thresholds, stride", [((2, 2, 2), (0.25, 1.0), None),
                                                       ((1, 1, 3), (0.5,), 12),
                                                       ((2, 3, 1), (0.2, 0.7, 1.6), 12)])
@pytest.mark.parametrize("reference", ["region", "zero"])
def test_binary_bit_layout_on_hand_made_flow(cells, thresholds, stride, reference):
    rng = np.random.default_rng(1)
    size, frames = 12, 6
    n_fields, height, width = 10, 30, 40
    # piecewise-constant motion on 6x6 blocks plus pixel noise
    blocks = rng.uniform(-2.5, 2.5, (n_fields, 5, 7, 2)).astype(np.float32)
    flows = np.repeat(np.repeat(blocks, 6, axis=1), 6, axis=2)[:, :height, :width]
    flows = flows + rng.normal(0, 0.3, flows.shape).astype(np.float32)
    desc = BinaryMotionDescriptor(region_size=size, region_frames=frames, cells=cells,
                                  stride=stride, min_motion=0, thresholds=thresholds,
                                  reference=reference)
    codes, positions = desc.describe_flow(list(flows), return_positions=True)
    n_cells = np.prod(cells)
    assert desc.n_bits_ == 2 * n_cells * 2 * len(thresholds)
    assert codes.shape[1] == desc.n_dims_ == desc.descriptor_bytes_ == -(-desc.n_bits_ // 8)
    levels = sorted([-t for t in thresholds] + list(thresholds))
    bits = np.unpackbits(codes, axis=1)
    assert not bits[:, desc.n_bits_:].any()  # pad bits are zero
    expected = [_mean_bits(flows, p, size, frames, cells, levels, reference)
                for p in positions]
    np.testing.assert_array_equal(bits[:, : desc.n_bits_], expected)
    x, y = np.meshgrid(np.arange(0, width - size + 1, stride or size // cells[0]),
                       np.arange(0, height - size + 1, stride or size // cells[1]))
    per_time = np.stack([x.ravel(), y.ravel()], axis=1)
    np.testing.assert_array_equal(positions[: len(per_time), :2], per_time)
    np.testing.assert_array_equal(np.unique(positions[:, 2]),
                                  np.arange(0, n_fields - frames + 1, frames // cells[2]))


def test_region_reference_code_invariant_to_a_constant_added_flow():
    """Camera pan: a constant flow added everywhere leaves the region-referenced code as it
    is (up to float rounding at the thresholds), while the zero-referenced code changes."""
    rng = np.random.default_rng(3)
    flows = rng.normal(0, 1.5, (8, 32, 32, 2)).astype(np.float32)
    panned = flows + np.float32([1.7, -0.6])
    for reference, same in (("region", True), ("zero", False)):
        desc = BinaryMotionDescriptor(**SMALL, reference=reference)
        equal = np.mean(np.unpackbits(desc.describe_flow(flows))
                        == np.unpackbits(desc.describe_flow(panned)))
        assert (equal >= 0.999) if same else (equal < 0.9), (reference, equal)


def test_binary_code_of_negated_flow_is_the_reversed_complement():
    rng = np.random.default_rng(2)
    flows = rng.normal(0, 1.5, (8, 32, 32, 2)).astype(np.float32)
    desc = BinaryMotionDescriptor(**SMALL)
    bits = np.unpackbits(desc.describe_flow(flows), axis=1).reshape(-1, 2, 8, 4)
    negated = np.unpackbits(desc.describe_flow(-flows), axis=1).reshape(-1, 2, 8, 4)
    np.testing.assert_array_equal(negated, 1 - bits[..., ::-1])


# --- HOF and MBH on hand-made flows -----------------------------------------------------------

def _cell_histograms(desc, out):
    n_bins = desc.n_bins
    return out.reshape(len(out), -1, n_bins + 1)


@pytest.mark.parametrize("u, v, bins", [(1.5, 0.0, {0: 1.0}), (0.0, 2.0, {2: 1.0}),
                                        (-1.0, 0.0, {4: 1.0}),
                                        (np.cos(np.pi / 8), np.sin(np.pi / 8), {0: .5, 1: .5}),
                                        (0.2, 0.1, {8: 1.0})])
def test_hof_bins_of_uniform_flow(u, v, bins):
    desc = HOFDescriptor(**SMALL)
    out = desc.describe_flow(constant_flows(4, 32, 32, u, v))
    assert out.shape == (9, 8 * 9) and desc.n_dims_ == 72 and desc.descriptor_bytes_ == 288
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
    expected = np.zeros(9)
    for k, share in bins.items():
        expected[k] = share
    expected /= np.linalg.norm(expected) * np.sqrt(8)  # 8 equal cells
    np.testing.assert_allclose(_cell_histograms(desc, out), np.broadcast_to(expected, (9, 8, 9)),
                               atol=2e-3)


def _reference_hof(flows, position, size, frames, cells, n_bins, zero_flow):
    """Plain loops over the pixels of one region, with numpy's exact arctan2."""
    x0, y0, t0 = position
    n_x, n_y, n_t = cells
    cw, ch, ct = size // n_x, size // n_y, frames // n_t
    hist = np.zeros((n_t, n_y, n_x, n_bins + 1))
    for t in range(frames):
        for y in range(size):
            for x in range(size):
                u, v = flows[t0 + t, y0 + y, x0 + x]
                cell = hist[t // ct, y // ch, x // cw]
                magnitude = np.hypot(u, v)
                if magnitude <= zero_flow:
                    cell[n_bins] += 1
                    continue
                position_ = (np.arctan2(v, u) % (2 * np.pi)) / (2 * np.pi) * n_bins
                low = int(position_) % n_bins
                share = position_ - int(position_)
                cell[low] += magnitude * (1 - share)
                cell[(low + 1) % n_bins] += magnitude * share
    hist = hist.ravel()
    return hist / np.linalg.norm(hist)


def test_hof_matches_a_loop_reference():
    rng = np.random.default_rng(3)
    flows = rng.normal(0, 1, (4, 20, 24, 2)).astype(np.float32)
    desc = HOFDescriptor(region_size=8, region_frames=4, cells=(2, 2, 2), stride=8,
                         min_motion=0, n_bins=6, zero_flow=0.5)
    out, positions = desc.describe_flow(flows, return_positions=True)
    assert out.shape == (2 * 3, 8 * 7)
    for row, position in zip(out, positions, strict=True):
        np.testing.assert_allclose(row, _reference_hof(flows, position, 8, 4, (2, 2, 2), 6, 0.5),
                                   atol=2e-3)


def test_hof_mass_rotates_with_the_flow():
    rng = np.random.default_rng(4)
    flows = cv2.GaussianBlur(rng.normal(0, 3, (8 * 32, 32, 2)).astype(np.float32), (0, 0), 2)
    flows = flows.reshape(8, 32, 32, 2)
    desc = HOFDescriptor(**SMALL)
    hist = _cell_histograms(desc, desc.describe_flow(flows))
    rotated = _cell_histograms(desc, desc.describe_flow(-flows))  # a 180-degree rotation
    np.testing.assert_allclose(rotated[..., :8], np.roll(hist[..., :8], 4, axis=-1), atol=5e-3)
    np.testing.assert_allclose(rotated[..., 8], hist[..., 8], atol=1e-6)


def test_mbh_of_uniform_and_boundary_flows():
    desc = MBHDescriptor(**SMALL)
    assert desc.n_dims_ == 2 * 8 * 8 and desc.descriptor_bytes_ == 512
    uniform = desc.describe_flow(constant_flows(4, 32, 32, 1.0, -0.7))
    assert uniform.shape == (9, 128) and not uniform.any()  # no gradients, no boundaries
    # u jumps between x = 23 and 24: du/dx > 0 at both columns (central differences), so
    # MBHx holds the 0-rad bin only, in the regions that hold them; v is constant
    flows = constant_flows(4, 32, 48, 0.0, 0.5)
    flows[:, :, 24:, 0] = 2.0
    out, positions = desc.describe_flow(flows, return_positions=True)
    mbhx, mbhy = out[:, :64].reshape(-1, 8, 8), out[:, 64:]
    assert not mbhy.any()
    crosses = (positions[:, 0] <= 24) & (positions[:, 0] + 16 > 23)
    assert 0 < crosses.sum() < len(out)
    np.testing.assert_allclose(np.linalg.norm(out[crosses, :64], axis=1), 1.0, rtol=1e-5)
    assert not out[~crosses].any()
    assert not mbhx[..., 1:].any() and mbhx[crosses, :, 0].max() > 0
    # a shear u = 0.1 y: du/dy > 0, so MBHx holds the pi/2 bin only
    shear = constant_flows(4, 32, 32)
    shear[..., 0] = 0.1 * np.arange(32)[:, None]
    mbhx = desc.describe_flow(shear)[:, :64].reshape(-1, 8, 8)
    assert mbhx[..., 2].min() > 0
    np.testing.assert_allclose(np.delete(mbhx, 2, axis=-1), 0, atol=1e-6)


# --- filtering, empty output, streaming ---------------------------------------------------------

@pytest.mark.parametrize("cls", DESCRIPTORS)
def test_min_motion_discards_static_regions(cls):
    flows = constant_flows(4, 32, 48)
    flows[:, :, :20, 0] = 1.0  # the left 20 columns move
    everything, where = cls(**SMALL).describe_flow(flows, return_positions=True)
    kept, kept_where = cls(**{**SMALL, "min_motion": 0.3}).describe_flow(
        flows, return_positions=True)
    mean_motion = np.array([np.abs(flows[t:t + 4, y:y + 16, x:x + 16, 0]).mean()
                            for x, y, t in where])
    np.testing.assert_array_equal(kept_where, where[mean_motion >= 0.3])
    np.testing.assert_array_equal(kept, everything[mean_motion >= 0.3])
    assert 0 < len(kept) < len(everything)


@pytest.mark.parametrize("cls", DESCRIPTORS)
def test_short_video_gives_an_empty_array(cls):
    desc = cls(region_frames=15)
    out, positions = desc.extract(as_uint8(textured_video(n=10)), return_positions=True)
    assert out.shape == (0, desc.n_dims_) and positions.shape == (0, 3)
    assert out.dtype == (np.uint8 if cls is BinaryMotionDescriptor else np.float32)
    assert desc.describe_flow([]).shape == (0, desc.n_dims_)


def test_streaming_memory_does_not_grow():
    def fields(n):
        field = np.full((32, 48, 2), 0.05, dtype=np.float32)  # below min_motion: all discarded
        for _ in range(n):
            yield field.copy()

    for cls in (BinaryMotionDescriptor, HOFDescriptor):
        desc = cls(**{**SMALL, "min_motion": 0.3})
        desc.describe_flow(fields(20))  # warm-up: first-call caches are not growth
        peaks = []
        for n in (200, 3000):
            tracemalloc.start()
            out = desc.describe_flow(fields(n))
            peaks.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
            assert out.shape == (0, desc.n_dims_)
        # bounded: 32 bytes more per field would already add 90 kB
        assert peaks[1] < peaks[0] + 80_000 and peaks[1] < 1_000_000, (cls, peaks)


# --- the scikit-learn API and validation -------------------------------------------------------

@pytest.mark.parametrize("cls", DESCRIPTORS)
def test_fit_transform_extract_and_describe_flow_agree(cls):
    videos = [as_uint8(textured_video(n=9, seed=s)) for s in range(2)]
    desc = cls(**SMALL)
    assert desc.fit(videos) is desc
    out = clone(desc).fit_transform(videos)
    assert isinstance(out, list) and len(out) == 2
    for video, descriptors in zip(videos, out, strict=True):
        np.testing.assert_array_equal(descriptors, desc.extract(video))
        np.testing.assert_array_equal(descriptors, desc.describe_flow(optical_flow(video)))
        assert descriptors.shape == (5 * 7 * 3, desc.n_dims_)  # y, x, t
    dis = clone(desc).set_params(flow="dis", flow_params={"preset": "fast"})
    np.testing.assert_array_equal(
        dis.extract(videos[0]), desc.describe_flow(optical_flow(videos[0], method="dis",
                                                                preset="fast")))
    assert not desc.__sklearn_tags__().requires_fit


@pytest.mark.parametrize("params, error, match", [
    ({"region_size": 33}, ValueError, "region_size = 33 must be divisible"),
    ({"region_frames": 16}, ValueError, "region_frames = 16 must be divisible"),
    ({"stride": 12}, ValueError, "stride = 12 must be a multiple of the cell size 16x16"),
    ({"stride": 0}, ValueError, "stride must be >= 1"),
    ({"cells": (2, 2)}, TypeError, "cells must be a sequence of 3 ints"),
    ({"cells": (2, 0, 3)}, ValueError, r"cells\[1\] must be >= 1"),
    ({"min_motion": -0.1}, ValueError, "min_motion must be a finite number >= 0"),
    ({"flow": "lk"}, ValueError, "flow must be one of 'farneback', 'dis'"),
    ({"flow": ["dis"]}, ValueError, "flow must be one of 'farneback', 'dis'"),
    ({"flow_params": {"preset": "fast"}}, ValueError, "unknown parameter.*'preset'"),
    ({"flow_params": [1]}, TypeError, "flow_params must be a dict"),
    ({"region_size": 1.5}, TypeError, "region_size must be an int"),
])
@pytest.mark.parametrize("cls", DESCRIPTORS)
def test_parameter_errors(cls, params, error, match):
    desc = cls(**params)
    with pytest.raises(error, match=match):
        desc.fit([])
    with pytest.raises(error, match=match):
        desc.describe_flow([])


@pytest.mark.parametrize("cls, params, error, match", [
    (BinaryMotionDescriptor, {"thresholds": (1.0, 0.5)}, ValueError, "strictly increasing"),
    (BinaryMotionDescriptor, {"thresholds": ()}, TypeError, "non-empty sequence"),
    (BinaryMotionDescriptor, {"thresholds": (0.0, 1.0)}, ValueError, r"thresholds\[0\]"),
    (BinaryMotionDescriptor, {"reference": "mean"}, ValueError, "reference"),
    (HOFDescriptor, {"n_bins": 0}, ValueError, "n_bins must be >= 1"),
    (HOFDescriptor, {"zero_flow": -1}, ValueError, "zero_flow"),
    (MBHDescriptor, {"n_bins": 2.5}, TypeError, "n_bins must be an int"),
])
def test_own_parameter_errors(cls, params, error, match):
    with pytest.raises(error, match=match):
        cls(**params).fit([])


@pytest.mark.parametrize("cls", DESCRIPTORS)
def test_input_errors(cls):
    desc = cls(**SMALL)
    with pytest.raises(ValueError, match="^flows: frames of 12x40 pixels are smaller than a "
                                         "region"):
        desc.describe_flow(constant_flows(4, 12, 40))
    with pytest.raises(ValueError, match=r"flows\[0\] must have shape \(H, W, 2\)"):
        desc.describe_flow([np.zeros((16, 16, 3))])
    with pytest.raises(ValueError, match=r"flows\[2\] is 16x17 but the fields before it"):
        desc.describe_flow([np.zeros((16, 16, 2))] * 2 + [np.zeros((16, 17, 2))])
    nan = constant_flows(2, 16, 16)
    nan[1, 3, 3, 0] = np.nan
    with pytest.raises(ValueError, match=r"flows\[1\] holds NaN"):
        desc.describe_flow(nan)
    with pytest.raises(TypeError, match=r"flows\[0\] has dtype complex"):
        desc.describe_flow([np.zeros((16, 16, 2), complex)])
    for flows in (None, 3, "flows.npy"):
        with pytest.raises(TypeError, match="flows must be an iterable of flow fields"):
            desc.describe_flow(flows)
    with pytest.raises(TypeError, match=r"flows\[1\] must be a flow field \(H, W, 2\), got None"):
        desc.describe_flow([np.zeros((16, 16, 2)), None])
    with pytest.raises(ValueError, match=r"flows\[0\] must be a flow field.*inhomogeneous"):
        desc.describe_flow([[[[0.0, 0.0]], [[0.0]]]])
    with pytest.raises(TypeError, match="videos must be a list of videos"):
        desc.transform("clip.avi")
    with pytest.raises(ValueError, match="video has 1 frame"):
        desc.extract(np.zeros((1, 16, 16), np.uint8))
    with pytest.raises(ValueError, match=r"^flows\[0\] has no pixels, shape \(0, 64, 2\)"):
        desc.describe_flow([np.zeros((0, 64, 2))])
    with pytest.raises(ValueError, match="^video: frames of 8x20 pixels are smaller than a "
                                         "region"):
        desc.extract(np.zeros((5, 8, 20), np.uint8))


@pytest.mark.parametrize("cls", DESCRIPTORS)
def test_errors_about_one_video_of_a_list_name_it(cls):
    """transform names the offending element videos[i], whatever the check that fails."""
    desc = cls(**SMALL)
    good = np.zeros((5, 16, 16), np.uint8)
    nan = np.zeros((5, 16, 16))
    nan[2, 3, 3] = np.nan
    for bad, error, match in [
            (None, TypeError, "must be an array, a path or an iterable of frames"),
            (np.zeros((5, 16)), ValueError, "must have 3 .* or 4 .* dimensions"),
            (np.zeros((0, 16, 16)), ValueError, "has no frames"),
            (np.zeros((1, 16, 16)), ValueError, "has 1 frame"),
            (nan, ValueError, "holds NaN or infinite values"),
            (np.full((5, 16, 16), 1e30), ValueError, r"holds values in \[1e\+30"),
            (np.zeros((5, 16, 16), bool), TypeError, "has dtype bool"),
            (np.full((5, 16, 16), "abc"), TypeError, "has dtype <U3"),
            (np.zeros((5, 8, 20)), ValueError, "frames of 8x20 pixels are smaller"),
            ([np.zeros((16, 16)), None], ValueError, "frame 1 must have 2"),
            ("missing.avi", FileNotFoundError, "file 'missing.avi' does not exist")]:
        with pytest.raises(error, match=rf"^videos\[1\]:? {match}"):
            desc.transform([good, bad])
    with pytest.raises(ValueError, match=r"^videos must be a list of videos .*got one array of "
                                         r"shape \(5, 16, 16\); wrap one video"):
        desc.fit_transform(good)


@pytest.mark.parametrize("cls", DESCRIPTORS)
def test_flows_beyond_the_stated_bound_raise(cls):
    """Flow components above 1e15 px/frame raise (their float32 magnitudes would overflow into
    NaN descriptors); up to the bound the descriptors are finite and scale-invariant
    (HOF and MBH are L2-normalised; the binary code at thresholds scaled alike)."""
    desc = cls(**{**SMALL, **({"zero_flow": 0.0} if cls is HOFDescriptor else {})})
    flows = np.random.default_rng(0).normal(size=(4, 16, 16, 2)).astype(np.float32)
    with pytest.raises(ValueError, match=r"^flows\[0\] holds flow components up to [\d.]+e\+30 "
                                         r"pixels/frame .*at most 1e\+15"):
        desc.describe_flow(flows * np.float32(1e30))
    scale = np.float32(2.0**47)  # a power of 2 (exact scaling), |flows| * scale < 1e15
    big = desc.describe_flow(flows * scale)
    assert np.isfinite(big.astype(float)).all()
    if cls is BinaryMotionDescriptor:
        np.testing.assert_array_equal(
            cls(**SMALL, thresholds=(0.25 * scale, scale)).describe_flow(flows * scale),
            desc.describe_flow(flows))
    else:
        np.testing.assert_allclose(big, desc.describe_flow(flows), rtol=1e-5, atol=1e-6)


# --- invariances, sizes, speed ------------------------------------------------------------

def test_binary_code_invariant_to_brightness_offset_and_gain():
    desc = BinaryMotionDescriptor(region_size=16, region_frames=6, min_motion=0)
    for seed in range(2):
        video = textured_video(n=20, dx=0.8 - seed, dy=0.5, seed=seed)  # values in [40, 190]
        base = np.unpackbits(desc.extract(as_uint8(video)), axis=1)
        assert base.shape == (5 * 7 * 7, 96)
        for changed in (video + 40, video * 1.3):
            bits = np.unpackbits(desc.extract(as_uint8(changed)), axis=1)
            assert np.mean(bits == base) >= 0.99


@pytest.mark.parametrize("cells, thresholds, binary_bytes, hof_bytes, mbh_bytes", [
    # n_cells = n_x n_y n_t; binary: 2 components x n_cells x 2 m bits, rounded up to bytes;
    # HOF: n_cells x 9 float32; MBH: 2 x n_cells x 8 float32
    ((2, 2, 3), (0.25, 1.0), 12, 432, 768),  # the defaults: 96 bits, 36x less than HOF
    ((1, 1, 3), (0.25, 1.0), 3, 108, 192),
    ((4, 4, 5), (0.25, 1.0), 80, 2880, 5120),
    ((1, 1, 3), (0.5,), 2, 108, 192),  # 12 bits: padded to 2 bytes
])
def test_descriptor_sizes_are_exact(cells, thresholds, binary_bytes, hof_bytes, mbh_bytes):
    params = {"region_size": 32, "region_frames": 15, "cells": cells, "min_motion": 0.0}
    binary = BinaryMotionDescriptor(thresholds=thresholds, **params)
    hof, mbh = HOFDescriptor(**params), MBHDescriptor(**params)
    n_cells = math.prod(cells)
    assert binary.n_bits_ == 4 * n_cells * len(thresholds)
    assert binary.n_dims_ == binary.descriptor_bytes_ == binary_bytes
    assert (hof.n_dims_, hof.descriptor_bytes_) == (hof_bytes // 4, hof_bytes)
    assert (mbh.n_dims_, mbh.descriptor_bytes_) == (mbh_bytes // 4, mbh_bytes)
    flows = constant_flows(15, 32, 32, u=1.0)  # one region
    for desc, size in ((binary, binary_bytes), (hof, hof_bytes), (mbh, mbh_bytes)):
        out = desc.describe_flow(flows)
        assert out.shape == (1, desc.n_dims_) and out.nbytes == size
    if cells == (2, 2, 3):
        assert hof.descriptor_bytes_ == 36 * binary.descriptor_bytes_


def _best_of(n, *runs):
    """Best wall-clock time of each of ``runs`` over n interleaved rounds (interleaved, so
    that all of them see the same machine load)."""
    best = [float("inf")] * len(runs)
    for _ in range(n):
        for i, run in enumerate(runs):
            start = time.perf_counter()
            run()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def test_speed_binary_end_to_end_and_against_hof():
    """Ratios measured in the same run (absolute frames/s are asv's track_seconds_per_1000_
    frames): the binary descriptor adds little to its Farneback flow, and costs less than HOF
    on the same flow fields."""
    video = as_uint8(textured_video(n=61, height=120, width=160, dx=1.0, dy=0.3))
    binary, hof = BinaryMotionDescriptor(), HOFDescriptor()
    assert len(binary.extract(video)) > 0
    t_flow, t_extract = _best_of(3, lambda: list(optical_flow(video)),
                                 lambda: binary.extract(video))
    assert t_extract <= 1.25 * t_flow, f"descriptor adds {t_extract / t_flow - 1:.0%} to the flow"
    flows = list(optical_flow(video))
    t_binary, t_hof = _best_of(5, lambda: binary.describe_flow(flows),
                               lambda: hof.describe_flow(flows))
    assert t_binary < t_hof, (t_binary, t_hof)
