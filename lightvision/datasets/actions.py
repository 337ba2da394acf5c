"""A seeded, deterministic generator of KTH-like human-action videos (stick figures).

It stands in for the KTH action dataset [1]_ (160x120 grey frames at 25 fps, 6 actions, 25
actors, 4 scenarios), whose videos are not shipped: it is the data generator for seed #23
(Leyva et al., binary motion descriptor: dense Farneback optical flow, Fisher vectors, linear
SVM), so what it models with care is the *motion*.

What is modelled
----------------
- An articulated stick figure: head, neck, torso, shoulders, elbows, wrists with hands, hips,
  knees, ankles with feet. OpenCV draws it with anti-aliased thick lines, discs and polygons at
  1/16 pixel precision into an 8-bit opacity mask (OpenCV anti-aliases 8-bit images only), which
  is composited in float32 onto the background. The body is 0.6 * min(H, 0.75 W) pixels tall
  (0.6 of the frame height for KTH's 4:3 frames) times the actor's height factor.
- Class-specific periodic joint angles (from the vertical; left and right limbs half a cycle
  apart). Side view, facing left or right at random per clip:

  - walking: 0.9 Hz, hips +-25 deg, knees 0..40 deg, arms +-20 deg opposite to the legs, 0.7 body
    heights/s;
  - jogging: 1.3 Hz, +-35, 0..70, elbows bent 85 deg, arms +-30, 1.3 heights/s, small bounce;
  - running: 1.6 Hz, +-45, 0..100, forward lean 10 deg, elbows bent 90 deg, arms +-40, 2.0
    heights/s, larger bounce;
  - boxing: standing in a stance, slight bob; the arms punch alternately (upper arm raised
    forward 45 -> 85 deg, elbow 120 -> 10 deg), a left and a right punch per 1.5 Hz cycle.

  Frontal view: handwaving (both arms swing between 60 and 170 deg from hanging down, forearms
  lagging, 1 Hz) and handclapping (the hands meet in front of the chest and part horizontally,
  2 Hz). The lowest foot stays on the ground. Walkers, joggers and runners start at a random
  place and turn round (facing flips) at the edges of the view.
- Per actor, the same in every scenario and clip: height 0.85..1.15, thigh, shin, torso and arm
  lengths +-10 %, tempo (frequencies and speeds) +-15 %, angular amplitude +-15 %, limb
  thickness, clothes darker or lighter than the mean background behind the figure's path by
  70..110 grey levels (55..95 for the coat), skin (head, hands) darker or lighter by 35..60. Per
  clip: gait phase, facing, start position.
- Per scenario as in KTH: s1 outdoors (fractal, low-pass noise texture with a soft horizon);
  s2 outdoors with zoom (the scene scale follows a sinusoid of amplitude 15..25 % and period
  3.3..6.7 s about the point (W/2, 0.62 H)); s3 outdoors in different clothes (a coat: wider
  torso and thighs, clothes of the opposite polarity); s4 indoors (brighter, smoother background
  with a linear lighting gradient and a floor; figure contrast times 0.7).
- In every clip: camera jitter (smoothed mean-reverting random walk, std about 1 px),
  illumination gain drift (+-5..10 %, period 7..33 s), Gaussian sensor noise (sigma 2..4 grey
  levels), rounded and clipped to 0..255. The background is drawn per clip and is static apart
  from jitter, zoom and gain.

What is not modelled
--------------------
Real appearance (body shapes, faces, textured clothes), perspective and depth, self-occlusion
other than the drawing order, shadows, people walking diagonally or leaving the view, KTH's
varying clip lengths and sub-sequences, camera motion other than jitter and zoom, interlacing
and compression artefacts.

Randomness: ``random_state`` seeds a root :class:`numpy.random.SeedSequence`; each actor and each
clip draws from its child keyed by (actor) or (actor, scenario, action, clip), so an actor's body
and a clip's video do not depend on which other actors, scenarios or clips are asked for, and a
clip's first frames do not depend on ``n_frames``.

References
----------
.. [1] C. Schuldt, I. Laptev, B. Caputo, "Recognizing human actions: a local SVM approach",
   Proc. ICPR 2004, vol. 3, pp. 32-36: the KTH dataset modelled here (2391 sequences, 6 actions,
   25 people, 4 scenarios).

This module is the data generator for seed #23: Leyva et al.'s binary motion descriptor.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._checks import check_int, check_memory, check_real, is_integer, is_real
from .._rng import default_rng

__all__ = ["ACTIONS", "ActionVideos", "make_actions", "train_test_split_by_actor"]

ACTIONS: tuple[str, ...] = (
    "walking",
    "jogging",
    "running",
    "boxing",
    "handwaving",
    "handclapping",
)
"""Action names indexed by label 0..5, in KTH's order."""

_FPS = 25.0  # frames/s, as in KTH

_MIN_FRAME = (48, 64)  # smallest (height, width)
_WORK_BYTES_PER_PIXEL = 256  # [INTERP] estimate: float arrays of one clip's background
_SCENARIOS = (1, 2, 3, 4)
_HEIGHT = 0.6  # body height / min(H, 0.75 W) at actor height 1
_GROUND = 0.92  # y of the ground line / H
_ZOOM_CENTRE = 0.62  # y of the zoom centre / H (x is W / 2)
_BG_MARGIN = 0.21  # background margin / max(H, W): room for zooming out to 0.75 and jitter
_FAR_ALPHA = 190  # opacity (of 255) of the limbs on the far side in side views
_SHIFT = 4  # fractional bits of the coordinates passed to cv2
_ONE = 1 << _SHIFT

# Body proportions in body heights (before the actor's +-10 % factors).
_THIGH, _SHIN, _TORSO, _UPPER, _FORE = 0.26, 0.26, 0.31, 0.18, 0.17
_NECK, _HEAD_R, _FOOT = 0.03, 0.065, 0.06
_SHOULDER_HW, _HIP_HW, _WAIST_HW = 0.1, 0.06, 0.075  # frontal half widths


@dataclass(frozen=True)
class _Gait:
    """Side-view cyclic locomotion: frequency (Hz), amplitudes (deg), speed (heights/s)."""

    freq: float
    hip: float  # thigh swing +-
    knee: float  # knee flexion 0..knee
    arm: float  # upper arm swing +-
    elbow: float  # mean elbow flexion
    speed: float
    lean: float  # forward lean of the torso
    bounce: float  # extra lift (body heights) when the legs are spread


_GAITS = {
    "walking": _Gait(0.9, 25.0, 40.0, 20.0, 20.0, 0.7, 3.0, 0.0),
    "jogging": _Gait(1.3, 35.0, 70.0, 30.0, 85.0, 1.3, 6.0, 0.025),
    "running": _Gait(1.6, 45.0, 100.0, 40.0, 90.0, 2.0, 10.0, 0.05),
}
_FREQ = {"boxing": 1.5, "handwaving": 1.0, "handclapping": 2.0}


@dataclass(frozen=True, eq=False)
class ActionVideos:
    """Clips with their labels, actors and scenarios (row ``i`` of each array is clip ``i``).

    Attributes
    ----------
    videos : ndarray of uint8, shape (n_clips, n_frames, H, W)
        Grey frames.
    labels : ndarray of int64, shape (n_clips,)
        Index into ``target_names``.
    actors : ndarray of int64, shape (n_clips,)
        Actor id, 0..n_actors-1.
    scenarios : ndarray of int64, shape (n_clips,)
        KTH scenario 1..4 (s1 outdoors, s2 zoom, s3 different clothes, s4 indoors).
    target_names : tuple of str
        Action names, :data:`ACTIONS`.
    fps : float
        Frames per second.

    Not comparable with ``==`` (the arrays would make it ambiguous).
    """

    videos: np.ndarray
    labels: np.ndarray
    actors: np.ndarray
    scenarios: np.ndarray
    target_names: tuple[str, ...] = ACTIONS
    fps: float = _FPS

    def __post_init__(self) -> None:
        for name in ("videos", "labels", "actors", "scenarios"):
            if not isinstance(getattr(self, name), np.ndarray):
                raise TypeError(f"{name} must be a numpy array, got "
                                f"{type(getattr(self, name)).__name__}")
        if self.videos.ndim != 4:
            raise ValueError(
                f"videos must be 4-d (n_clips, n_frames, H, W), got {self.videos.ndim}-d"
            )
        n = len(self.videos)
        for name in ("labels", "actors", "scenarios"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name} must have shape ({n},), got {getattr(self, name).shape}")

    def __len__(self) -> int:
        return len(self.videos)

    def subset(self, mask_or_indices: Any) -> ActionVideos:
        """The clips selected by a boolean mask of length ``len(self)`` or an array of indices
        in ``[-len(self), len(self))`` (negative ones count from the end, as in numpy)."""
        index = np.asarray(mask_or_indices)
        if index.dtype == bool:
            if index.shape != (len(self),):
                raise ValueError(
                    f"mask_or_indices: a boolean mask must have shape ({len(self)},), "
                    f"got {index.shape}"
                )
        elif index.size and not np.issubdtype(index.dtype, np.integer):
            raise TypeError(
                f"mask_or_indices must be a boolean mask or integer indices, got {index.dtype}"
            )
        else:
            index = index.astype(np.intp)
        if index.ndim != 1:
            raise ValueError(f"mask_or_indices must be 1-d, got shape {index.shape}")
        n = len(self)
        bad = index[(index < -n) | (index >= n)] if index.dtype != bool else index[:0]
        if bad.size:
            raise ValueError(f"mask_or_indices: index {int(bad[0])} is out of range for "
                             f"{n} clips")
        return ActionVideos(self.videos[index], self.labels[index], self.actors[index],
                            self.scenarios[index], self.target_names, self.fps)


@dataclass(frozen=True)
class _Actor:
    """What is fixed for an actor: body, tempo and clothes."""

    height: float  # factor of the mean body height
    thigh: float  # segment lengths, body heights
    shin: float
    torso: float
    upper: float
    fore: float
    tempo: float  # factor of the action frequencies and speeds
    amp: float  # factor of the angular amplitudes
    thickness: float  # arm thickness, body heights
    polarity: int  # +1 lighter than the background, -1 darker
    contrast: float  # grey levels
    coat_contrast: float  # grey levels, opposite polarity (scenario 3)
    skin_contrast: float  # grey levels of head and hands against the background, signed

    @classmethod
    def draw(cls, rng: np.random.Generator) -> _Actor:
        thigh, shin, torso, upper, fore = rng.uniform(0.9, 1.1, 5) * (
            _THIGH, _SHIN, _TORSO, _UPPER, _FORE)
        return cls(
            height=rng.uniform(0.85, 1.15), thigh=thigh, shin=shin, torso=torso, upper=upper,
            fore=fore, tempo=rng.uniform(0.85, 1.15), amp=rng.uniform(0.85, 1.15),
            thickness=rng.uniform(0.04, 0.06), polarity=int(rng.choice((-1, 1))),
            contrast=rng.uniform(70.0, 110.0), coat_contrast=rng.uniform(55.0, 95.0),
            skin_contrast=rng.choice((-1.0, 1.0)) * rng.uniform(35.0, 60.0),
        )


def make_actions(
    n_actors: int = 25,
    *,
    scenarios: Iterable[int] = (1, 2, 3, 4),
    clips_per_actor: int = 1,
    n_frames: int = 75,
    frame_size: tuple[int, int] = (120, 160),
    random_state: Any = None,
) -> ActionVideos:
    """Generate KTH-like action clips: one per (actor, scenario, action, clip index).

    Parameters
    ----------
    n_actors : number of actors (KTH has 25).
    scenarios : KTH scenarios to generate, a non-empty subset of (1, 2, 3, 4).
    clips_per_actor : clips per actor, scenario and action (KTH has 4 sub-sequences).
    n_frames : frames per clip (>= 2); 75 is 3 s at 25 fps.
    frame_size : (height, width) in pixels, at least (48, 64); KTH is (120, 160).
    random_state : None, int, array of ints, SeedSequence, BitGenerator, Generator or
        RandomState, as in scikit-learn: ``numpy.random.default_rng(random_state)`` draws the
        entropy of the root seed. The same int gives byte-identical videos; a Generator passed
        in is advanced, so two calls with it differ; None gives fresh entropy.

    Returns
    -------
    ActionVideos
        ``n_actors * len(scenarios) * 6 * clips_per_actor`` clips ordered by actor, scenario
        (ascending), action (as in :data:`ACTIONS`), clip; videos of shape
        (n_clips, n_frames, height, width), uint8, at 25 fps.

    Examples
    --------
    >>> data = make_actions(1, scenarios=(1,), n_frames=8, random_state=0)
    >>> data.videos.shape, data.videos.dtype
    ((6, 8, 120, 160), dtype('uint8'))
    >>> [data.target_names[i] for i in data.labels[:3]]
    ['walking', 'jogging', 'running']
    """
    check_int(n_actors, "n_actors")
    scenarios = _check_scenarios(scenarios)
    check_int(clips_per_actor, "clips_per_actor")
    check_int(n_frames, "n_frames", 2)
    frame_size = _check_frame_size(frame_size)
    pixels = frame_size[0] * frame_size[1]
    n_clips = n_actors * len(scenarios) * len(ACTIONS) * clips_per_actor
    check_memory(n_clips * n_frames * pixels + _WORK_BYTES_PER_PIXEL * pixels,
                 f"{n_clips} clips of {n_frames} frames of {frame_size[0]}x{frame_size[1]} "
                 f"pixels (n_actors, scenarios, clips_per_actor, n_frames, frame_size)")
    rng = default_rng(random_state)
    root = np.random.SeedSequence(int(rng.integers(2**63)))

    keys = [(a, s, label, c) for a in range(n_actors) for s in scenarios
            for label in range(len(ACTIONS)) for c in range(clips_per_actor)]
    videos = np.empty((len(keys), n_frames, *frame_size), np.uint8)
    actors = [_Actor.draw(np.random.default_rng(_child(root, 0, a))) for a in range(n_actors)]
    for i, (a, s, label, c) in enumerate(keys):
        _render_clip(videos[i], ACTIONS[label], actors[a], s, _child(root, 1, a, s, label, c))
    labels, actor_ids, scenario_ids = np.array(keys, np.int64)[:, [2, 0, 1]].T.copy()
    return ActionVideos(videos, labels, actor_ids, scenario_ids)


def train_test_split_by_actor(
    data: ActionVideos, *, test_size: float | int = 9 / 25, random_state: Any = None
) -> tuple[ActionVideos, ActionVideos]:
    """Split clips into train and test parts with disjoint actors chosen at random.

    Parameters
    ----------
    data : the clips.
    test_size : fraction of the actors in ``data`` (float in (0, 1), rounded up as in
        scikit-learn) or number of actors (int) put in the test part. KTH's protocol tests on 9
        of its 25 actors (the default).
    random_state : seed of the choice, as in :func:`make_actions`.

    Returns
    -------
    train, test : ActionVideos
        The clips of the other actors and of the test actors, in ``data``'s order.
    """
    if not isinstance(data, ActionVideos):
        raise TypeError(f"data must be ActionVideos (from make_actions), got "
                        f"{type(data).__name__}")
    ids = np.unique(data.actors)
    if is_integer(test_size):
        n_test = check_int(test_size, "test_size", 0)
    elif is_real(test_size):
        fraction = check_real(test_size, "test_size")
        if fraction >= 1:
            raise ValueError(f"test_size must be < 1 as a fraction, got {test_size}")
        n_test = math.ceil(round(fraction * len(ids), 9))
    else:
        raise TypeError(f"test_size must be a fraction (float) or a number of actors (int), "
                        f"got {type(test_size).__name__}")
    if not 0 < n_test < len(ids):
        raise ValueError(
            f"test_size={test_size} puts {n_test} of the {len(ids)} actors in the test part; "
            "both parts need at least one actor"
        )
    test_ids = default_rng(random_state).choice(ids, n_test, replace=False)
    in_test = np.isin(data.actors, test_ids)
    return data.subset(~in_test), data.subset(in_test)


def _check_scenarios(scenarios: Any) -> tuple[int, ...]:
    try:
        values = tuple(scenarios)
    except TypeError:
        raise TypeError(
            f"scenarios must be a sequence of ints in 1..4, got {type(scenarios).__name__}"
        ) from None
    if not values:
        raise ValueError("scenarios must not be empty")
    for s in values:
        if check_int(s, "scenarios") not in _SCENARIOS:
            raise ValueError(f"scenarios must be a subset of {_SCENARIOS}, got {values}")
    if len(set(values)) != len(values):
        raise ValueError(f"scenarios has duplicates: {values}")
    return tuple(sorted(values))


def _check_frame_size(frame_size: Any) -> tuple[int, int]:
    if not isinstance(frame_size, tuple | list) or len(frame_size) != 2:
        raise TypeError(f"frame_size must be a pair of ints (height, width), got {frame_size!r}")
    return (check_int(frame_size[0], "frame_size height", _MIN_FRAME[0]),
            check_int(frame_size[1], "frame_size width", _MIN_FRAME[1]))


def _child(root: np.random.SeedSequence, *key: int) -> np.random.SeedSequence:
    """The child of ``root`` keyed by ``key`` (what ``spawn`` makes, addressed directly)."""
    return np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, *key))


# --- kinematics: joint positions in body heights, x forward (side) or right (frontal), y down,
# origin at the hip centre; angles in radians from the vertical (downwards) ---


def _dir(angle: np.ndarray, length: float, sign: float = 1.0) -> np.ndarray:
    """Vector of ``length`` at ``angle`` from the downward vertical, (..., 2)."""
    return length * np.stack((sign * np.sin(angle), np.cos(angle)), axis=-1)


def _side_joints(actor: _Actor, thigh: np.ndarray, knee: np.ndarray, upper: np.ndarray,
                 elbow: np.ndarray, lean: np.ndarray) -> dict[str, np.ndarray]:
    """Side-view joints from per-limb angles (2, T) (index 0 near, 1 far) and lean (T,)."""
    up = np.pi - lean  # the torso points up, leaning forward
    hip = np.zeros((len(lean), 2))
    neck = hip + _dir(up, actor.torso)
    joints = {"hip": hip, "neck": neck, "shoulder": hip + _dir(up, 0.9 * actor.torso),
              "head": neck + _dir(up, _NECK + _HEAD_R)}
    for k in (0, 1):
        shin = thigh[k] - knee[k]  # the knee bends backwards
        joints[f"knee{k}"] = hip + _dir(thigh[k], actor.thigh)
        joints[f"ankle{k}"] = joints[f"knee{k}"] + _dir(shin, actor.shin)
        joints[f"toe{k}"] = joints[f"ankle{k}"] + _dir(shin + np.pi / 2, _FOOT)
        joints[f"elbow{k}"] = joints["shoulder"] + _dir(upper[k], actor.upper)
        joints[f"wrist{k}"] = joints[f"elbow{k}"] + _dir(upper[k] + elbow[k], actor.fore)
    return joints


def _frontal_joints(actor: _Actor, upper: np.ndarray, sway: np.ndarray,
                    coat: bool) -> dict[str, np.ndarray]:
    """Frontal joints but the wrists from upper-arm angles (2, T) (outwards positive; 0 left,
    1 right in the image), standing legs; ``sway`` (T,) tilts the legs sideways a little."""
    hip = np.zeros((len(sway), 2))
    neck = hip - (0.0, actor.torso)
    joints = {"hip": hip, "neck": neck, "head": neck - (0.0, _NECK + _HEAD_R)}
    waist = _WAIST_HW * (1.6 if coat else 1.0)
    for k, side in ((0, -1.0), (1, 1.0)):
        joints[f"shoulder{k}"] = neck + (side * _SHOULDER_HW, 0.03)
        joints[f"waist{k}"] = hip + (side * waist, 0.0)
        leg = np.radians(4.0) + side * sway  # legs slightly apart
        joints[f"hip{k}"] = hip + (side * _HIP_HW, 0.0)
        joints[f"knee{k}"] = joints[f"hip{k}"] + _dir(leg, actor.thigh, side)
        joints[f"ankle{k}"] = joints[f"knee{k}"] + _dir(leg, actor.shin, side)
        joints[f"toe{k}"] = joints[f"ankle{k}"] + _dir(np.full_like(sway, np.pi / 2), 0.5 * _FOOT,
                                                      side)
        joints[f"elbow{k}"] = joints[f"shoulder{k}"] + _dir(upper[k], actor.upper, side)
    return joints


def _pose(action: str, actor: _Actor, phase: np.ndarray, coat: bool) -> dict[str, np.ndarray]:
    """Joints (T, 2) in body heights for ``phase`` (T,) radians of the action's cycle."""
    amp, legs = actor.amp, np.stack((phase, phase + np.pi))  # left/right half a cycle apart
    if action in _GAITS:
        g = _GAITS[action]
        thigh = np.radians(g.hip * amp) * np.sin(legs)
        knee = np.radians(g.knee * amp) * np.maximum(0.0, np.cos(legs + 0.5)) ** 1.5
        upper = np.radians(10.0 if g.elbow > 45 else 0.0) - np.radians(g.arm * amp) * np.sin(legs)
        elbow = np.radians(g.elbow) * (1.0 - 0.2 * np.sin(legs))
        lean = np.full_like(phase, np.radians(g.lean))
        joints = _side_joints(actor, thigh, knee, upper, elbow, lean)
        joints["lift"] = g.bounce * amp * np.abs(np.sin(phase))
        return joints
    if action == "boxing":
        punch = np.maximum(0.0, np.sin(legs)) ** 2  # extension 0..1, arms alternately
        bob = 0.5 - 0.5 * np.cos(2 * phase)
        thigh = np.radians([[18.0], [-18.0]]) + np.zeros_like(legs)  # stance
        knee = np.radians([[18.0], [8.0]]) + np.radians(8.0) * bob
        upper = np.radians(45.0 + 40.0 * amp * punch)
        elbow = np.radians(120.0 - min(110.0, 110.0 * amp) * punch)
        lean = np.radians(8.0 + 4.0 * punch.max(axis=0))
        return _side_joints(actor, thigh, knee, upper, elbow, lean)
    sway = np.radians(1.5) * np.sin(phase / 2)
    if action == "handwaving":
        upper = np.radians(np.minimum(175.0, 115.0 + 55.0 * amp * np.sin(phase)))
        fore = upper + np.radians(15.0 + 25.0 * np.sin(phase - 1.0))  # lagging forearm
        joints = _frontal_joints(actor, np.stack((upper, upper)), sway, coat)  # symmetric
        for k, side in ((0, -1.0), (1, 1.0)):
            joints[f"wrist{k}"] = joints[f"elbow{k}"] + _dir(fore, actor.fore, side)
        return joints
    # handclapping: upper arms down and a little out, the wrists at chest height ``gap`` apart
    # (the forearms point at the camera, so their image length varies)
    opening = 0.5 - 0.5 * np.cos(phase)  # 0 when the hands meet
    upper = np.radians(15.0 + 20.0 * amp * opening)
    joints = _frontal_joints(actor, np.stack((upper, upper)), sway, coat)
    for k, side in ((0, -1.0), (1, 1.0)):
        joints[f"wrist{k}"] = np.stack(
            (side * 0.2 * amp * opening, np.full_like(phase, 0.15 - actor.torso)), axis=1)
    return joints


def _strokes(frontal: bool, coat: bool, arm: float) -> list[tuple[str, list, float, tuple]]:
    """What to draw, back to front: (kind, joint names, thickness or radius in body heights,
    (opacity, skin, 0) of 255); kind "line" is an open polyline per name list, "poly" a filled
    polygon, "disc" a filled circle at each name."""
    leg, thigh, hand = 1.25 * arm, 0.09, 0.035
    if frontal:
        out = [("line", [[f"hip{k}", f"knee{k}", f"ankle{k}", f"toe{k}"] for k in (0, 1)],
                leg, (255, 0, 0))]
        if coat:
            out.append(("line", [["hip0", "knee0"], ["hip1", "knee1"]], thigh, (255, 0, 0)))
        return [*out, ("poly", ["shoulder0", "shoulder1", "waist1", "waist0"], 0.0, (255, 0, 0)),
                ("line", [["neck", "head"]], arm, (255, 255, 0)),
                ("disc", ["head"], _HEAD_R, (255, 255, 0)),
                ("line", [[f"shoulder{k}", f"elbow{k}", f"wrist{k}"] for k in (0, 1)], arm,
                 (255, 0, 0)),
                ("disc", ["wrist0", "wrist1"], hand, (255, 255, 0))]
    out = []
    for k, alpha in ((1, _FAR_ALPHA), (0, 255)):  # far limbs first
        out.append(("line", [["hip", f"knee{k}", f"ankle{k}", f"toe{k}"]], leg, (alpha, 0, 0)))
        if coat:
            out.append(("line", [["hip", f"knee{k}"]], thigh, (alpha, 0, 0)))
        out += [("line", [["shoulder", f"elbow{k}", f"wrist{k}"]], arm, (alpha, 0, 0)),
                ("disc", [f"wrist{k}"], hand, (alpha, alpha, 0))]
        if k == 1:
            out += [("line", [["hip", "neck"]], 0.15 if coat else 0.1, (255, 0, 0)),
                    ("line", [["neck", "head"]], arm, (255, 255, 0)),
                    ("disc", ["head"], _HEAD_R, (255, 255, 0))]
    return out


def _bounce(x0: float, v: float, t: np.ndarray, lo: float, hi: float):
    """Position (T,) and direction (T,) of a point moving at ``v`` reflected between lo, hi."""
    span = hi - lo
    u = np.mod(x0 - lo + v * t, 2 * span)
    back = u > span
    return lo + np.where(back, 2 * span - u, u), np.where(back, -1.0, 1.0) * np.sign(v)


def _fractal(rng: np.random.Generator, shape: tuple[int, int], beta: float) -> np.ndarray:
    """Zero-mean unit-std noise with amplitude spectrum 1/f**beta, float64 ``shape``."""
    f = np.hypot(np.fft.fftfreq(shape[0])[:, None], np.fft.rfftfreq(shape[1])[None, :])
    f[0, 0] = 1.0
    spectrum = np.fft.rfft2(rng.standard_normal(shape)) / f**beta
    spectrum[0, 0] = 0.0
    img = np.fft.irfft2(spectrum, s=shape)
    return img / img.std()


def _background(rng: np.random.Generator, scenario: int, frame: tuple[int, int],
                margin: int) -> np.ndarray:
    """Background (H + 2 margin, W + 2 margin) float32, grey levels."""
    height, width = frame
    shape = (height + 2 * margin, width + 2 * margin)
    y = np.arange(shape[0])[:, None] - margin  # frame coordinates
    x = np.arange(shape[1])[None, :] - margin
    if scenario == 4:  # indoors: bright, smooth, lit from one side, a floor
        mean = rng.uniform(165.0, 200.0)
        angle = rng.uniform(0.0, 2 * np.pi)
        ramp = ((x - width / 2) * np.cos(angle) + (y - height / 2) * np.sin(angle)) / (
            0.5 * math.hypot(height, width))
        floor = rng.uniform(0.8, 0.88) * height
        img = (mean + rng.uniform(10.0, 20.0) * ramp
               - rng.uniform(10.0, 25.0) / (1.0 + np.exp((floor - y) / 2.0))
               + rng.uniform(4.0, 7.0) * _fractal(rng, shape, 1.6)
               + 2.0 * _fractal(rng, shape, 0.8))
    else:  # outdoors: textured ground, a brighter band (trees, sky) above a soft horizon
        mean = rng.uniform(95.0, 150.0)
        horizon = rng.uniform(0.2, 0.45) * height
        img = (mean + rng.uniform(15.0, 40.0) / (1.0 + np.exp((y - horizon) / 3.0))
               + rng.uniform(14.0, 22.0) * _fractal(rng, shape, 1.8)
               + rng.uniform(4.0, 7.0) * _fractal(rng, shape, 0.8))
    return img.astype(np.float32)


def _render_clip(out: np.ndarray, action: str, actor: _Actor, scenario: int,
                 seed: np.random.SeedSequence) -> None:
    """Draw one clip into ``out`` (T, H, W) uint8."""
    import cv2

    params_seed, background_seed, jitter_seed, noise_seed = seed.spawn(4)
    rng = np.random.default_rng(params_seed)
    n_frames, height, width = out.shape
    t = np.arange(n_frames) / _FPS
    body = _HEIGHT * min(height, 0.75 * width) * actor.height  # pixels at zoom 1
    frontal, coat = action in ("handwaving", "handclapping"), scenario == 3
    centre = np.array([width / 2, _ZOOM_CENTRE * height])

    # camera: zoom (s2), jitter, illumination, noise
    zoom_amp = rng.uniform(0.15, 0.25) if scenario == 2 else 0.0
    zoom = 1.0 + zoom_amp * np.sin(2 * np.pi * rng.uniform(0.15, 0.3) * t
                                   + rng.uniform(0, 2 * np.pi))
    gain = 1.0 + rng.uniform(0.05, 0.1) * np.sin(2 * np.pi * rng.uniform(0.03, 0.15) * t
                                                  + rng.uniform(0, 2 * np.pi))
    sigma = rng.uniform(2.0, 4.0)
    jitter = _jitter(np.random.default_rng(jitter_seed), n_frames)

    # figure: phase, facing, path
    freq = (_GAITS[action].freq if action in _GAITS else _FREQ[action]) * actor.tempo
    phase = 2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi)
    facing = float(rng.choice((-1.0, 1.0)))
    if action in _GAITS:  # the hips stay in [left, right], room for the legs at full zoom
        half_view = width / (2 * (1.0 + zoom_amp)) - 0.35 * body
        left, right = centre[0] - half_view, centre[0] + half_view
        x, facing_t = _bounce(rng.uniform(left, right),
                              facing * _GAITS[action].speed * actor.tempo * body, t, left, right)
    else:
        left = right = rng.uniform(centre[0] - 0.15 * width, centre[0] + 0.15 * width)
        x = np.full(n_frames, left)
        facing_t = np.full(n_frames, 1.0 if frontal else facing)
    joints = _pose(action, actor, phase, coat)
    lift = joints.pop("lift", np.zeros(n_frames))
    low = np.max([p[:, 1] for name, p in joints.items() if name[:3] in ("ank", "toe")], axis=0)
    ground_y = _GROUND * height - (low + lift) * body  # hip y so the lowest foot is on the ground
    origin = np.stack((x, ground_y), axis=1)

    def to_image(p: np.ndarray) -> np.ndarray:  # body heights -> fixed-point image pixels
        scene = origin + body * np.stack((facing_t * p[:, 0], p[:, 1]), axis=1)
        image = zoom[:, None] * (scene - centre) + centre + jitter
        return np.rint(image * _ONE).astype(np.int32)

    points = {name: to_image(p) for name, p in joints.items()}

    margin = math.ceil(_BG_MARGIN * max(height, width)) + 3
    background = _background(np.random.default_rng(background_seed), scenario, (height, width),
                             margin)
    # grey levels of clothes and skin against the mean background behind the figure's path
    behind = float(background[
        margin + int(_GROUND * height - body):margin + int(_GROUND * height),
        margin + int(left - 0.3 * body):margin + int(right + 0.3 * body) + 1].mean())
    low_contrast = 0.7 if scenario == 4 else 1.0
    clothes = float(np.clip(behind + (-actor.polarity * actor.coat_contrast if coat else
                                      actor.polarity * actor.contrast * low_contrast), 10, 245))
    skin = float(np.clip(behind + actor.skin_contrast * low_contrast, 10, 245))
    # background pixel (u, v) -> image zoom * (u - margin - centre) + centre + jitter
    shift = centre * (1 - zoom[:, None]) - zoom[:, None] * margin + jitter
    strokes = _strokes(frontal, coat, actor.thickness)
    noise = np.random.default_rng(noise_seed)
    # opacity, opacity of skin, unused (OpenCV anti-aliases 1-, 3- and 4-channel uint8 only)
    mask = np.empty((height, width, 3), np.uint8)
    for i in range(n_frames):
        mask.fill(0)
        scale = body * zoom[i]
        for kind, names, size, colour in strokes:
            if kind == "line":
                cv2.polylines(mask, [np.stack([points[n][i] for n in chain]) for chain in names],
                              False, colour, max(1, round(size * scale)), cv2.LINE_AA, _SHIFT)
            elif kind == "poly":
                cv2.fillConvexPoly(mask, np.stack([points[n][i] for n in names]), colour,
                                   cv2.LINE_AA, _SHIFT)
            else:
                for name in names:
                    cv2.circle(mask, points[name][i], round(size * scale * _ONE), colour, -1,
                               cv2.LINE_AA, _SHIFT)
        affine = np.array([[zoom[i], 0.0, shift[i, 0]], [0.0, zoom[i], shift[i, 1]]])
        frame = cv2.warpAffine(background, affine, (width, height), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT_101)
        opacity = mask.astype(np.float32)
        opacity *= 1 / 255
        frame += opacity[..., 0] * (clothes - frame)
        frame += opacity[..., 1] * (skin - clothes)
        frame *= gain[i]
        frame += sigma * noise.standard_normal((height, width), dtype=np.float32)
        out[i] = np.rint(np.clip(frame, 0.0, 255.0, out=frame))


def _jitter(rng: np.random.Generator, n_frames: int) -> np.ndarray:
    """Camera offsets (T, 2) in pixels: a mean-reverting random walk (AR(1), rho 0.9) smoothed
    by an exponential moving average, std about 1 px per axis; frame t uses draws 0..t only."""
    rho, steps = 0.9, rng.normal(0.0, 0.45, (n_frames, 2))
    walk = steps[0] / math.sqrt(1 - rho**2)
    out = np.empty((n_frames, 2))
    out[0] = smooth = walk
    for i in range(1, n_frames):
        walk = rho * walk + steps[i]
        out[i] = smooth = 0.5 * smooth + 0.5 * walk
    return out
