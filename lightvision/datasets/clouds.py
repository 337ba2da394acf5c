"""A seeded, deterministic generator of cloud-covered satellite RGB scenes with exact labels.

It is the data generator for seed #18 (Park et al. [1]_: prioritising the downlink of a
nanosatellite's RGB images by the cloud cover a small CNN estimates on image patches), whose
images and labels are not available offline. Each scene is procedural terrain seen from above
with procedural clouds composited over it; the cloud fraction of every image and of every
``patch_size`` x ``patch_size`` patch is known exactly.

What is modelled
----------------
- Fractal noise: white Gaussian noise filtered in the Fourier domain by the amplitude spectrum
  ``(f**2 + f0**2) ** (-beta / 4)`` (power ~ 1/f**beta above the corner frequency ``f0``), then
  standardised (zero mean, unit variance per field). It is periodic over the field; all of it is
  vectorised numpy FFTs, with no per-pixel Python loop.
- Ground (reflectance in [0, 1] per RGB channel): land cover from an elevation field (beta 4) and
  a moisture field (beta 3.5): water in the lowest ``U(0, 0.25)`` of the elevation, vegetation
  and bare soil split by moisture, urban blocks (nearest-upsampled random blocks of 4..8 px)
  where a third field exceeds its ``1 - U(0, 0.12)`` quantile, and, in a share
  ``bright_share`` of the scenes, **bright ground** covering ``U(0.15, 0.5)`` of the image:
  snow on the highest ground, or bright sand or a salt flat on the driest. Bright ground is
  as bright as cloud, so brightness alone does not tell cloud from ground (the reason Park et
  al.'s multi-stream network is built to avoid leaning on colour). Class colours get +-10 %
  per scene, a fine texture (beta 1.5, +-12 %) and hill shading from the elevation gradient.
- Clouds: a fractal field (beta 4 plus 0.15 x a beta 2.5 field, features of about a quarter
  of the image) whose
  ``k = round(f * H * W)`` highest pixels are cloud, for a target fraction ``f``: the cloud
  fraction is exactly ``k / (H * W)``. Opacity is ``alpha = clip(0.5 + (c - t) / (2 w), 0, 1)``
  with ``t`` half-way between the k-th and (k+1)-th highest values and a per-scene edge width
  ``w``: alpha > 0.5 on the cloud pixels and < 0.5 elsewhere, so thin cloud and haze fade out
  softly at the edges (and may appear, below 0.5, next to cloud). Cloud colour is white-ish
  (0.80..0.97 with a +-2 % per-channel tint) with a darker, textured body where it is thinner.
- Shadows (in a share ``shadow_share`` of the scenes): the opacity field shifted by 4..16 % of
  the image size in a random direction darkens the ground by a factor ``1 - s * alpha`` with
  ``s ~ U(0.3, 0.6)`` (the shadow field is cut from the same larger noise canvas, so shadows of
  clouds outside the view can enter it).
- Targets: a share ``clear_share`` of the images is clear, with ``f ~ U(0, clear_threshold)``
  (a third of those exactly 0); the others have ``f ~ U(clear_threshold, 1)``.
- Sensor: illumination gain ``U(0.8, 1.15)`` times a linear gradient (+-10 %), per-channel
  gains +-4 %, Gaussian noise of ``U(1, 3)`` grey levels, rounded and clipped to 0..255.

What is not modelled
--------------------
Real terrain appearance, atmosphere (Rayleigh scattering, aerosols), cloud types and 3-D
structure (heights, sun angle, cirrus), specular water, seasons, sensor optics (MTF,
vignetting, Bayer demosaicing) and compression. Capture order is the index order, with
independent scenes (no weather correlation along the orbit).

Labels
------
``cloud_mask[i]`` marks the pixels of opacity >= 0.5; ``cloud_fraction[i]`` is its mean (exact:
``k / (H * W)``); ``patch_fraction[i, r, c]`` is its mean over the patch in row ``r`` and column
``c`` of the non-overlapping ``patch_size`` grid, so the patch fractions of an image average to
its cloud fraction.

Randomness: ``random_state`` seeds a root :class:`numpy.random.SeedSequence`; image ``i`` draws
from its child keyed by ``i``, so an image does not depend on how many images are asked for.

>>> from lightvision.datasets import make_cloud_scenes
>>> scenes = make_cloud_scenes(4, image_size=64, patch_size=16, random_state=0)
>>> scenes.images.shape, scenes.images.dtype, scenes.patch_fraction.shape
((4, 64, 64, 3), dtype('uint8'), (4, 4, 4))
>>> bool((scenes.cloud_fraction * 64 * 64 % 1 == 0).all())  # exact pixel counts
True

References
----------
.. [1] J. Park, T. Inamori, R. Hamaguchi, K. Otsuki, J. E. Kim, K. Yamaoka, "RGB image
   prioritization using convolutional neural network on a microprocessor for nanosatellites",
   Remote Sensing 12(23):3941, 2020 (seed #18).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._checks import check_int, check_memory, check_real, is_integer
from .._rng import default_rng

__all__ = ["CloudScenes", "make_cloud_scenes"]

# Reflectances (RGB, 0..1) of the land-cover classes.
_WATER = (0.05, 0.11, 0.17)
_VEGETATION = (0.16, 0.33, 0.12)
_SOIL = (0.46, 0.36, 0.25)
_URBAN = (0.48, 0.47, 0.46)
_BRIGHT = {  # bright ground: snow, sand, salt flat
    "snow": (0.90, 0.93, 0.97),
    "sand": (0.88, 0.79, 0.60),
    "salt": (0.93, 0.92, 0.88),
}
_BRIGHT_KINDS = tuple(_BRIGHT)
_WORK_BYTES_PER_PIXEL = 512  # [INTERP] estimate: the float64 fields of one scene


@dataclass(frozen=True)
class CloudScenes:
    """Cloud-covered RGB scenes from :func:`make_cloud_scenes`.

    Attributes
    ----------
    images : uint8 (n, H, W, 3), RGB, in capture (chronological) order.
    cloud_mask : bool (n, H, W), pixels of cloud opacity >= 0.5.
    cloud_fraction : float64 (n,), mean of ``cloud_mask`` per image (exact pixel counts).
    patch_fraction : float64 (n, H // P, W // P), mean of ``cloud_mask`` per P x P patch.
    bright_fraction : float64 (n,), fraction of bright ground (snow, sand, salt flat) per image.
    bright_kind : tuple of n str, ``"snow"``, ``"sand"``, ``"salt"`` or ``""`` (none).
    patch_size : P.
    """

    images: np.ndarray
    cloud_mask: np.ndarray
    cloud_fraction: np.ndarray
    patch_fraction: np.ndarray
    bright_fraction: np.ndarray
    bright_kind: tuple[str, ...]
    patch_size: int

    def __len__(self) -> int:
        return len(self.images)

    def is_clear(self, threshold: float = 0.1) -> np.ndarray:
        """bool (n,): images whose cloud fraction is below ``threshold``, a cloud fraction in
        (0, 1]."""
        threshold = check_real(threshold, "threshold")
        if threshold > 1.0:
            raise ValueError(f"threshold must be a cloud fraction in (0, 1], got {threshold}")
        return self.cloud_fraction < threshold


def _fractal(rng: np.random.Generator, shape: tuple[int, int], beta: float,
             scale: float) -> np.ndarray:
    """Standardised fractal noise (H, W), power ~ 1/f**beta above 1 / ``scale`` cycles/px."""
    h, w = shape
    spectrum = np.fft.rfft2(rng.standard_normal(shape))
    f2 = np.fft.fftfreq(h)[:, None] ** 2 + np.fft.rfftfreq(w)[None, :] ** 2
    spectrum *= (f2 + (1.0 / scale) ** 2) ** (-beta / 4.0)
    spectrum[0, 0] = 0.0
    field = np.fft.irfft2(spectrum, s=shape)
    return field / (field.std() + 1e-12)


def _child(root: np.random.SeedSequence, *key: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, *key))


def _top_k_threshold(values: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    """Mask of the ``k`` largest entries of ``values`` and a threshold strictly between."""
    flat = values.ravel()
    n = flat.size
    order = np.argsort(flat, kind="stable")
    mask = np.zeros(n, dtype=bool)
    mask[order[n - k:]] = True
    if k == 0:
        t = float(flat[order[-1]]) + 1e-6
    elif k == n:
        t = float(flat[order[0]]) - 1e-6
    else:
        t = 0.5 * (float(flat[order[n - k - 1]]) + float(flat[order[n - k]]))
    return mask.reshape(values.shape), t


def _scene(seed: np.random.SeedSequence, h: int, w: int, k: int, bright: bool,
           shadow: bool) -> tuple[np.ndarray, np.ndarray, float, str]:
    rng = np.random.default_rng(seed)
    size = max(h, w)
    # ---- ground
    elev = _fractal(rng, (h, w), 4.0, size / 2)
    moist = _fractal(rng, (h, w), 3.5, size / 3)
    detail = _fractal(rng, (h, w), 1.5, size / 8)
    jitter = lambda c: np.asarray(c) * rng.uniform(0.9, 1.1, 3)  # noqa: E731
    ground = np.empty((h, w, 3))
    veg = moist > np.quantile(moist, rng.uniform(0.2, 0.7))
    ground[veg] = jitter(_VEGETATION)
    ground[~veg] = jitter(_SOIL)
    bs = int(rng.integers(4, 9))
    blocks = rng.uniform(0.6, 1.4, (-(-h // bs), -(-w // bs)))
    blocks = np.repeat(np.repeat(blocks, bs, 0), bs, 1)[:h, :w]
    urban_field = _fractal(rng, (h, w), 3.0, size / 6)
    urban = urban_field > np.quantile(urban_field, 1.0 - rng.uniform(0.0, 0.12))
    ground[urban] = jitter(_URBAN) * blocks[urban][:, None]
    water = elev < np.quantile(elev, rng.uniform(0.0, 0.25))
    kind = ""
    bright_mask = np.zeros((h, w), dtype=bool)
    if bright:
        kind = _BRIGHT_KINDS[int(rng.integers(len(_BRIGHT_KINDS)))]
        share = rng.uniform(0.15, 0.5)
        field = elev if kind == "snow" else -moist
        bright_mask = field > np.quantile(field, 1.0 - share)
        water &= ~bright_mask
        ground[bright_mask] = np.minimum(jitter(_BRIGHT[kind]), 1.0)
    land = ~water
    ground[water] = jitter(_WATER)
    gy, gx = np.gradient(elev * (size / 64.0))
    azimuth = rng.uniform(0, 2 * np.pi)
    shade = 1.0 + 0.08 * (np.cos(azimuth) * gx + np.sin(azimuth) * gy)
    texture = np.where(land, 1.0 + 0.12 * detail, 1.0 + 0.03 * detail)
    ground *= np.clip(shade * texture, 0.5, 1.5)[..., None]
    ground = np.clip(ground, 0.0, 1.0)
    # ---- clouds on a larger canvas (the shadow is cut from it with an offset)
    margin = int(np.ceil(0.16 * size))
    canvas = _fractal(rng, (h + 2 * margin, w + 2 * margin), 4.0, size / 4)
    canvas += 0.15 * _fractal(rng, canvas.shape, 2.5, size / 10)
    c = canvas[margin:margin + h, margin:margin + w]
    mask, t = _top_k_threshold(c, k)
    edge = rng.uniform(0.15, 0.6)
    alpha_of = lambda v: np.clip(0.5 + (v - t) / (2 * edge), 0.0, 1.0)  # noqa: E731
    alpha = alpha_of(c)
    if shadow:
        angle = rng.uniform(0, 2 * np.pi)
        dist = rng.uniform(0.04, 0.16) * size
        dy = int(round(np.clip(dist * np.sin(angle), -margin, margin)))
        dx = int(round(np.clip(dist * np.cos(angle), -margin, margin)))
        sh = alpha_of(canvas[margin - dy:margin - dy + h, margin - dx:margin - dx + w])
        ground *= (1.0 - rng.uniform(0.3, 0.6) * sh)[..., None]
    body = np.clip(0.5 + (c - t) / 1.5, 0.0, 1.0)  # thicker cloud inside is brighter
    tint = rng.uniform(0.98, 1.02, 3)
    cloud = rng.uniform(0.80, 0.97) * (0.82 + 0.18 * body)[..., None] * tint
    cloud *= (1.0 + 0.04 * detail)[..., None]
    rgb = ground * (1.0 - alpha[..., None]) + cloud * alpha[..., None]
    # ---- illumination and sensor
    yy, xx = np.mgrid[0:h, 0:w]
    ramp = (np.cos(azimuth) * (xx / max(w - 1, 1) - 0.5)
            + np.sin(azimuth) * (yy / max(h - 1, 1) - 0.5))
    gain = rng.uniform(0.8, 1.15) * (1.0 + rng.uniform(-0.1, 0.1) * ramp)
    rgb = rgb * gain[..., None] * rng.uniform(0.97, 1.03, 3)
    rgb = 255.0 * rgb + rng.normal(0.0, rng.uniform(1.0, 3.0), rgb.shape)
    image = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    return image, mask, float(bright_mask.mean()), kind


def make_cloud_scenes(
    n_images: int = 100,
    *,
    image_size: int | tuple[int, int] = 256,
    patch_size: int = 32,
    clear_share: float = 0.3,
    clear_threshold: float = 0.1,
    bright_share: float = 0.4,
    shadow_share: float = 0.5,
    random_state: Any = None,
) -> CloudScenes:
    """Generate ``n_images`` cloud-covered RGB scenes with exact cloud fractions.

    See the module docstring for what is modelled and how the labels are defined.

    Parameters
    ----------
    n_images : number of images n.
    image_size : H = W, or (H, W), in pixels; both multiples of ``patch_size``.
    patch_size : side P of the non-overlapping patches of ``patch_fraction``, >= 1.
    clear_share : expected share of clear images (cloud fraction < ``clear_threshold``), in
        [0, 1]; each image is clear with this probability.
    clear_threshold : cloud fraction separating clear from cloudy targets, in (0, 1).
    bright_share : probability that a scene has bright ground (snow, sand or salt flat).
    shadow_share : probability that a scene's clouds cast shadows.
    random_state : None, int, SeedSequence or Generator (a Generator passed in is advanced).

    Returns
    -------
    CloudScenes
    """
    check_int(n_images, "n_images")
    check_int(patch_size, "patch_size")
    if is_integer(image_size):
        image_size = (image_size, image_size)
    if not isinstance(image_size, tuple | list) or len(image_size) != 2:
        raise TypeError(f"image_size must be an int or a pair (H, W), got {image_size!r}")
    h, w = (check_int(v, "image_size") for v in image_size)
    if h % patch_size or w % patch_size:
        raise ValueError(
            f"image_size {h}x{w} must be a multiple of patch_size={patch_size}"
        )
    check_memory(n_images * h * w * 4 + _WORK_BYTES_PER_PIXEL * h * w,  # RGB + mask, uint8
                 f"{n_images} scenes of {h}x{w} pixels (n_images, image_size)")
    for name, value in (("clear_share", clear_share), ("bright_share", bright_share),
                        ("shadow_share", shadow_share)):
        if not 0.0 <= check_real(value, name, strict=False) <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value}")
    if not 0.0 < check_real(clear_threshold, "clear_threshold") < 1.0:
        raise ValueError(f"clear_threshold must be in (0, 1), got {clear_threshold}")
    rng = default_rng(random_state)
    root = np.random.SeedSequence(int(rng.integers(2**63)))
    images = np.empty((n_images, h, w, 3), dtype=np.uint8)
    masks = np.empty((n_images, h, w), dtype=bool)
    bright_fraction = np.empty(n_images)
    kinds: list[str] = []
    for i in range(n_images):
        draw = np.random.default_rng(_child(root, i, 0))
        clear = draw.random() < clear_share
        if clear:
            target = 0.0 if draw.random() < 1 / 3 else draw.uniform(0.0, clear_threshold)
        else:
            target = draw.uniform(clear_threshold, 1.0)
        bright = bool(draw.random() < bright_share)
        shadow = bool(draw.random() < shadow_share)
        k = int(round(target * h * w))
        if clear and k >= clear_threshold * h * w:  # rounding must not make a clear image cloudy
            k -= 1
        images[i], masks[i], bright_fraction[i], kind = _scene(
            _child(root, i, 1), h, w, k, bright, shadow)
        kinds.append(kind)
    cloud_fraction = masks.reshape(n_images, -1).mean(axis=1)
    p = patch_size
    patch_fraction = masks.reshape(n_images, h // p, p, w // p, p).mean(axis=(2, 4))
    return CloudScenes(
        images=images,
        cloud_mask=masks,
        cloud_fraction=cloud_fraction,
        patch_fraction=patch_fraction,
        bright_fraction=bright_fraction,
        bright_kind=tuple(kinds),
        patch_size=patch_size,
    )
