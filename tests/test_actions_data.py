"""Tests for lightvision.datasets.actions: the seeded KTH-like action-video generator."""

from __future__ import annotations

import numpy as np
import pytest

from lightvision.datasets import ACTIONS, ActionVideos, make_actions, train_test_split_by_actor

TRANSLATING = ("walking", "jogging", "running")
STANDING = ("boxing", "handwaving", "handclapping")


@pytest.fixture(scope="module")
def small() -> ActionVideos:
    return make_actions(2, n_frames=6, random_state=0)


@pytest.fixture(scope="module")
def motion() -> ActionVideos:
    """Three actors in every scenario, 2 s each: enough to measure how the figures move."""
    return make_actions(3, n_frames=50, random_state=2024)


def centroid_speed(video: np.ndarray, threshold: float = 20.0, window: int = 10) -> float:
    """How fast the moving pixels move sideways, px/frame: median step of the horizontal centroid
    of the absolute frame difference (above ``threshold`` grey levels, so not sensor noise),
    smoothed over ``window`` frames so that limbs swinging back and forth average out."""
    diff = np.abs(np.diff(video.astype(np.float32), axis=0))
    mass = np.where(diff > threshold, diff, 0.0).sum(axis=1)  # (T - 1, W)
    total = mass.sum(axis=1)
    centroid = np.where(total > 0, mass @ np.arange(video.shape[2]) / np.maximum(total, 1), np.nan)
    smooth = np.convolve(centroid, np.ones(window) / window, mode="valid")
    return float(np.nanmedian(np.abs(np.diff(smooth))))


def test_shapes_dtypes_and_order(small):
    n = 2 * 4 * 6
    assert len(small) == n
    assert small.videos.shape == (n, 6, 120, 160) and small.videos.dtype == np.uint8
    for array in (small.labels, small.actors, small.scenarios):
        assert array.shape == (n,) and array.dtype == np.int64
    assert small.target_names == ACTIONS == (
        "walking", "jogging", "running", "boxing", "handwaving", "handclapping")
    assert small.fps == 25.0
    # ordered by actor, scenario, action
    np.testing.assert_array_equal(small.actors, np.repeat([0, 1], 24))
    np.testing.assert_array_equal(small.scenarios, np.tile(np.repeat([1, 2, 3, 4], 6), 2))
    np.testing.assert_array_equal(small.labels, np.tile(np.arange(6), 8))


def test_frame_size_clips_and_scenario_order():
    data = make_actions(1, scenarios=(4, 2), clips_per_actor=2, n_frames=3, frame_size=(48, 64),
                        random_state=1)
    assert data.videos.shape == (2 * 6 * 2, 3, 48, 64)
    np.testing.assert_array_equal(data.scenarios, np.repeat([2, 4], 12))
    np.testing.assert_array_equal(data.labels, np.tile(np.repeat(np.arange(6), 2), 2))


def test_labels_balanced(small):
    assert np.all(np.bincount(small.labels) == len(small) // 6)
    for actor in (0, 1):
        for scenario in (1, 2, 3, 4):
            labels = small.labels[(small.actors == actor) & (small.scenarios == scenario)]
            assert sorted(labels) == list(range(6))


def test_same_seed_same_bytes_other_seed_other_bytes(small):
    again = make_actions(2, n_frames=6, random_state=0)
    assert again.videos.tobytes() == small.videos.tobytes()
    other = make_actions(2, n_frames=6, random_state=1)
    assert not np.array_equal(other.videos, small.videos)
    # clips differ from each other too
    assert not np.array_equal(small.videos[0], small.videos[6])


def test_generator_seeding():
    kwargs = {"scenarios": (1,), "n_frames": 2, "frame_size": (48, 64)}
    by_int = make_actions(1, random_state=7, **kwargs).videos
    np.testing.assert_array_equal(
        make_actions(1, random_state=np.random.default_rng(7), **kwargs).videos, by_int)
    shared = np.random.default_rng(7)
    first = make_actions(1, random_state=shared, **kwargs).videos
    assert not np.array_equal(make_actions(1, random_state=shared, **kwargs).videos, first)


def test_actors_and_clips_do_not_depend_on_the_request():
    few = make_actions(2, scenarios=(1,), n_frames=12, random_state=3)
    many = make_actions(3, scenarios=(3, 1), clips_per_actor=2, n_frames=20, random_state=3)
    same = (many.actors < 2) & (many.scenarios == 1)
    # clip index 0 of each (actor, scenario 1, action): every other clip
    picked = many.subset(np.flatnonzero(same)[::2])
    np.testing.assert_array_equal(picked.labels, few.labels)
    np.testing.assert_array_equal(picked.actors, few.actors)
    np.testing.assert_array_equal(picked.videos[:, :12], few.videos)


def test_subset(small):
    mask = small.labels == 2
    part = small.subset(mask)
    assert isinstance(part, ActionVideos) and len(part) == mask.sum()
    assert np.all(part.labels == 2)
    np.testing.assert_array_equal(part.videos, small.videos[mask])
    by_index = small.subset([5, 0, 5])
    np.testing.assert_array_equal(by_index.labels, small.labels[[5, 0, 5]])
    np.testing.assert_array_equal(by_index.scenarios, small.scenarios[[5, 0, 5]])
    assert by_index.target_names == ACTIONS and by_index.fps == 25.0
    assert len(small.subset([])) == 0
    with pytest.raises(ValueError, match="mask_or_indices"):
        small.subset(mask[:-1])
    with pytest.raises(TypeError, match="mask_or_indices"):
        small.subset([0.5])
    with pytest.raises(ValueError, match="mask_or_indices"):
        small.subset([[0, 1]])


def test_split_by_actor_follows_kth_protocol():
    data = make_actions(25, scenarios=(1,), n_frames=2, frame_size=(48, 64), random_state=0)
    train, test = train_test_split_by_actor(data, random_state=0)
    assert len(np.unique(test.actors)) == 9 and len(np.unique(train.actors)) == 16
    assert not set(train.actors) & set(test.actors)
    assert len(train) + len(test) == len(data) and len(test) == 9 * 6
    again = train_test_split_by_actor(data, random_state=0)[1]
    np.testing.assert_array_equal(again.actors, test.actors)
    others = {tuple(np.unique(train_test_split_by_actor(data, random_state=s)[1].actors))
              for s in range(5)}
    assert len(others) > 1  # the test actors are chosen at random
    train, test = train_test_split_by_actor(data, test_size=3, random_state=1)
    assert len(np.unique(test.actors)) == 3 and not set(train.actors) & set(test.actors)
    # clips keep their order within each part
    assert np.all(np.diff(train.actors) >= 0) and np.all(np.diff(test.actors) >= 0)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_actors": 0}, ValueError, "n_actors"),
        ({"n_actors": 2.0}, TypeError, "n_actors"),
        ({"scenarios": (5,)}, ValueError, "scenarios"),
        ({"scenarios": (0, 1)}, ValueError, "scenarios"),
        ({"scenarios": ()}, ValueError, "scenarios"),
        ({"scenarios": (1, 1)}, ValueError, "scenarios"),
        ({"scenarios": 1}, TypeError, "scenarios"),
        ({"clips_per_actor": 0}, ValueError, "clips_per_actor"),
        ({"n_frames": 1}, ValueError, "n_frames"),
        ({"frame_size": (40, 160)}, ValueError, "frame_size"),
        ({"frame_size": (120, 60)}, ValueError, "frame_size"),
        ({"frame_size": (120,)}, TypeError, "frame_size"),
        ({"frame_size": (120.0, 160)}, TypeError, "frame_size"),
        ({"frame_size": 120}, TypeError, "frame_size"),
    ],
)
def test_make_actions_argument_errors(kwargs, error, match):
    kwargs = {"n_actors": 1, "n_frames": 2, **kwargs}
    with pytest.raises(error, match=match):
        make_actions(**kwargs)


@pytest.mark.parametrize(
    ("test_size", "error"),
    [(0.0, ValueError), (1.0, ValueError), (0.01, None), (0, ValueError), (2, ValueError),
     (True, TypeError), ("half", TypeError)],
)
def test_split_argument_errors(small, test_size, error):
    if error is None:  # 1 % of 2 actors rounds up to one actor, as in scikit-learn
        train, test = train_test_split_by_actor(small, test_size=test_size, random_state=0)
        assert len(np.unique(test.actors)) == 1 == len(np.unique(train.actors))
        return
    with pytest.raises(error, match="test_size"):
        train_test_split_by_actor(small, test_size=test_size)


def test_motion_speed_orders_the_actions(motion):
    """Running moves the figure sideways much faster than walking, jogging in between, the
    standing actions hardly at all; averaged over actors and scenarios."""
    speed = np.array([centroid_speed(video) for video in motion.videos])
    mean = {name: speed[motion.labels == label].mean() for label, name in enumerate(ACTIONS)}
    assert mean["running"] > 1.8 * mean["walking"]
    assert 1.3 * mean["walking"] < mean["jogging"] < mean["running"]
    assert max(mean[name] for name in STANDING) < 0.35 * mean["walking"]
    # and clip by clip, every walker moves faster than every standing figure
    translating = np.isin(motion.labels, [ACTIONS.index(name) for name in TRANSLATING])
    assert speed[translating].min() > speed[~translating].max()


def test_figure_is_visible(motion):
    """The figure stands out of the background: against the per-pixel temporal median (the
    background where the figure moves across it, without zoom) it covers a body-sized area with
    a clear contrast, and the standing figures' limbs make visible frame differences (sensor
    noise alone exceeds 25 grey levels in about 1e-5 of the pixels)."""
    for video, label, scenario in zip(motion.videos.astype(np.float32), motion.labels,
                                      motion.scenarios, strict=True):
        if ACTIONS[label] in STANDING:
            assert (np.abs(np.diff(video, axis=0)) > 25).mean() > 5e-4
        elif scenario != 2:
            off = np.abs(video - np.median(video, axis=0))
            assert 0.01 < (off > 25).mean() < 0.15  # the figure covers a few % of the frame
            assert np.percentile(off, 99.5) > 30


def test_subset_refuses_out_of_range_indices(small):
    n = len(small)
    with pytest.raises(ValueError, match=f"mask_or_indices: index 99 is out of range for {n}"):
        small.subset([99])
    with pytest.raises(ValueError, match=f"index {-n - 1} is out of range"):
        small.subset([0, -n - 1])
    np.testing.assert_array_equal(small.subset([-1]).labels, small.labels[[-1]])
    with pytest.raises(TypeError, match="mask_or_indices"):
        small.subset(None)


def test_split_refuses_what_is_not_action_videos(small):
    for data in (None, small.videos, [small]):
        with pytest.raises(TypeError, match="data must be ActionVideos"):
            train_test_split_by_actor(data)
    with pytest.raises(TypeError, match="videos must be a numpy array, got list"):
        ActionVideos([[[[0]]]], small.labels[:1], small.actors[:1], small.scenarios[:1])


def test_split_accepts_numpy_scalars(small):
    for test_size in (np.int64(1), np.float32(0.5)):
        train, test = train_test_split_by_actor(small, test_size=test_size, random_state=0)
        assert len(np.unique(test.actors)) == 1 == len(np.unique(train.actors))


@pytest.mark.parametrize("kwargs", [{"frame_size": (10**6, 10**6)}, {"n_actors": 10**9},
                                    {"n_frames": 10**12}])
def test_huge_videos_are_refused_up_front(kwargs):
    with pytest.raises(ValueError, match=r"n_frames, frame_size\) need about .* GiB, more than"):
        make_actions(**{"n_actors": 1, **kwargs})


def test_split_checks_random_state(small):
    with pytest.raises(TypeError, match="random_state must be None, an int"):
        train_test_split_by_actor(small, random_state="0")
    with pytest.raises(ValueError, match="random_state must be an int in"):
        train_test_split_by_actor(small, random_state=-1)
