"""Oracle metrics for videos of the synthetic world, computed from the frames alone.

Generated frames (uint8 (F, H, W, 3)) are segmented against a background fitted to each frame's
border, and four families of figures come out, each validated on rendered ground truth by
`stillmoving.world.metrics_validation`:

  motion       Theil-Sen velocity of the object's centroid, its direction, and agreement with the
               direction and speed the prompt (or the expected `SceneSpec`) names.
  fidelity     probability that a frame shows a held-out target ("star", "crayon", "neon") rather
               than anything else of the world: quadratic logistic regression on a dozen colour and
               radial-profile features, trained in seconds on rendered frames of every look (base,
               star, crayon, neon), blurred and noised so it transfers to imperfect samples.
  consistency  the object keeps its shape (soft IoU after aligning centroids), colours (histogram
               intersection) and a smooth path (second differences of the centroid) across frames.
  artifacts    per frame: high-frequency noise on the background, and foreground that is not part of
               the one coherent object (a second blob, ghosting, a missing object).

`video_metrics` returns them all as a flat dict of floats (NaN where a figure does not apply); the
world's other measurements (`probe`, the demo's claims) are built on it. Keys (px = pixels, per frame
where it says so):
  velocity_x, velocity_y, speed (px/frame), displacement (px over the clip), is_static, object_present;
  direction_match, speed_ratio (velocity along the named direction / the named speed) given a
  direction; velocity_error (px/frame) and track_error (px, meaningful for renders only) given `expected`;
  color_match (dominant object colour is the named base colour);
  consistency = mean(shape_consistency, color_consistency, smoothness), all in [0, 1];
  artifact (in [0, 1]), artifact_noise (grey levels), artifact_stray (share), artifact_worst (worst frame);
  fidelity (and fidelity_<target> each) in [0, 1] when a target is given or named by expected/prompt.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

import numpy as np

from stillmoving.data.video_io import to_uint8_frames
from stillmoving.world.synthetic import (
    ACCENT_RGB,
    BACKGROUNDS,
    COLORS,
    DIRECTIONS,
    HELD_OUT_COLORS,
    SHAPES,
    SPEEDS,
    STYLES,
    SUBJECTS,
    TEXTURES,
    SceneSpec,
    make_image_dataset,
    object_trajectory,
)

BORDER = 2  # px: width of the frame edge ring the background is fitted to (objects keep off it)
MIN_CONTRAST = 24.0  # RGB distance from the background below which a pixel is never foreground
NOISE_SIGMAS = 4.5  # ... nor below this many border-noise sigmas (keeps noise specks out)
STATIC_SPEED = SPEEDS["slowly"] / 2  # frame widths per frame: slower than this counts as "static"
SMOOTHNESS = 1 / 32  # rms centroid second difference (frame widths) where smoothness exp(-(rms / this)^2) is 1/e
NOISE_LEVELS = 16.0  # background high-pass noise (0-255 levels) at which the noise artifact is 1 - 1/e
HIST_BINS = 4  # colour histogram bins per channel for colour consistency (coarse: blur shifts colours)
SHADE = 0.45  # the base world's dark texture shade (synthetic._fill_rgb), part of each colour's palette
LUMA = np.array([0.299, 0.587, 0.114])
# Palette for naming object colours: each base colour is the segment from its texture shade to the
# full colour (blurred stripes and dots mix the two); the star's pink and navy are single points.
PALETTE_NAMES = [*COLORS, *HELD_OUT_COLORS, "navy"]
PALETTE = np.array(
    [[[SHADE * v for v in c], c] for c in COLORS.values()] + [[c, c] for c in (*HELD_OUT_COLORS.values(), ACCENT_RGB)],
    dtype=np.float64,
)  # (names, 2, 3)


# ----------------------------------------------------------------------------- prompts


class PromptInfo(NamedTuple):
    """What a world caption says; None where it says nothing (see `synthetic.caption`)."""

    shape: str | None
    color: str | None
    texture: str | None
    direction: str | None
    speed: str | None
    background: str | None
    subject: str | None  # key of SUBJECTS when the caption names a held-out subject's shape
    style: str | None  # key of STYLES from "... in <style> style"
    placeholder: str | None  # the rare word in front of a subject's shape, e.g. "sks"


def parse_prompt(text: str) -> PromptInfo:
    """Recover the scene a caption describes, e.g. "a red striped circle moving left quickly on a
    gray background", "a sks star moving up slowly on a blue background in neon style"."""
    words = re.findall(r"[a-z0-9_<>*-]+", text.lower())
    stop = next((i for i, w in enumerate(words) if w in ("moving", "on", "in")), len(words))
    phrase = words[:stop]  # the object's noun phrase
    shape = next((w for w in reversed(phrase) if w in SHAPES), None)
    color = next((w for w in phrase if w in COLORS or w in HELD_OUT_COLORS), None)
    subject = next((name for name, s in SUBJECTS.items() if s.shape == shape), None)
    texture = next((w for w in phrase if w in TEXTURES), "plain" if color and not subject else None)
    placeholder = None
    if subject is not None and phrase.index(shape) > 0:
        word = phrase[phrase.index(shape) - 1]
        placeholder = None if word == "a" or word in COLORS or word in HELD_OUT_COLORS or word in TEXTURES else word
    after = lambda key, table: next(
        (words[i + 1] for i, w in enumerate(words[:-1]) if w == key and words[i + 1] in table), None
    )
    before = lambda key, table: next(
        (words[i - 1] for i, w in enumerate(words) if w == key and i > 0 and words[i - 1] in table), None
    )
    direction = after("moving", DIRECTIONS) or next((w for w in words if w in DIRECTIONS), None)
    speed = next((w for w in words if w in SPEEDS), None)
    return PromptInfo(
        shape,
        color,
        texture,
        direction,
        speed,
        before("background", BACKGROUNDS),
        subject,
        before("style", STYLES),
        placeholder,
    )


# ----------------------------------------------------------------------------- image helpers


def _neighbourhood(image: np.ndarray, op, eight: bool = True) -> np.ndarray:
    """Combine each pixel of (f, h, w) with its 8 (or 4) neighbours by a binary ufunc (np.maximum,
    np.minimum, np.add); the frame edge is replicated. The 3x3 case runs as two separable passes."""
    p = np.pad(image, ((0, 0), (1, 1), (1, 1)), mode="edge")
    if eight:
        rows = op(op(p[:, :, :-2], p[:, :, 1:-1]), p[:, :, 2:])  # (f, h + 2, w)
        return op(op(rows[:, :-2], rows[:, 1:-1]), rows[:, 2:])
    out = op(p[:, 1:-1, 1:-1], p[:, :-2, 1:-1])
    for shifted in (p[:, 2:, 1:-1], p[:, 1:-1, :-2], p[:, 1:-1, 2:]):
        out = op(out, shifted)
    return out


def _box_mean(image: np.ndarray) -> np.ndarray:
    return _neighbourhood(image.astype(np.float64), np.add) / 9


def _dilate(mask: np.ndarray, steps: int = 1) -> np.ndarray:
    for _ in range(steps):
        mask = _neighbourhood(mask, np.maximum)
    return mask


def _erode(mask: np.ndarray, steps: int = 1) -> np.ndarray:
    for _ in range(steps):
        mask = _neighbourhood(mask, np.minimum)
    return mask


def _components(mask: np.ndarray) -> np.ndarray:
    """(f, h, w) 8-connected component labels (smallest flat index in the component); -1 = off."""
    none = mask.size
    labels = np.where(mask, np.arange(mask.size).reshape(mask.shape), none)
    while True:  # propagate the minimum label until stable (objects are a few px across: few rounds)
        spread = np.where(mask, _neighbourhood(labels, np.minimum), none)
        if np.array_equal(spread, labels):
            return np.where(mask, labels, -1)
        labels = spread


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """(f, h, w) mask plus every off pixel that the frame border cannot reach (4-connected)."""
    outside = ~mask
    reach = outside.copy()
    reach[:, 1:-1, 1:-1] = False
    while True:
        grown = _neighbourhood(reach, np.maximum, eight=False) & outside
        if np.array_equal(grown, reach):
            return ~reach
        reach = grown


def blur_frames(frames: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of (f, h, w, 3) frames (float), separable, reflected at the edges."""
    if sigma <= 0:
        return frames.astype(np.float64)
    radius = max(1, int(np.ceil(3 * sigma)))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    out = frames.astype(np.float64)
    for axis in (1, 2):
        padded = np.pad(out, [(radius, radius) if a == axis else (0, 0) for a in range(4)], mode="reflect")
        out = sum(k * np.take(padded, np.arange(i, i + out.shape[axis]), axis=axis) for i, k in enumerate(kernel))
    return out


# ----------------------------------------------------------------------------- segmentation


class Segmentation(NamedTuple):
    """The one coherent object of each frame, found against a background fitted to the border."""

    background: np.ndarray  # (f, h, w, 3) float: per-frame background, linear in the row
    distance: np.ndarray  # (f, h, w) RGB distance of each pixel from the background
    noise: np.ndarray  # (f,) robust per-channel noise sigma of the border ring
    region: np.ndarray  # (f, h, w) bool: the main foreground component with its holes filled
    weight: np.ndarray  # (f, h, w) soft object mask in [0, 1] (about the pixel's coverage)
    stray: np.ndarray  # (f,) share of foreground contrast outside the main object (1: no object)
    centroid: np.ndarray  # (f, 2) weighted (x, y) centre in pixel-index units; NaN: no object


def _fit_background(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, least squares fit of `a + b * row` to the border ring (the world's backgrounds are
    flat or vertical gradients), twice refitted without outliers (an object grazing the border)."""
    f, h, w, _ = frames.shape
    ring = np.ones((h, w), dtype=bool)
    ring[BORDER:-BORDER, BORDER:-BORDER] = False
    rows = np.broadcast_to(((np.arange(h) + 0.5) / h)[:, None], (h, w))[ring]
    design = np.stack([np.ones_like(rows), rows], axis=1)  # (n, 2)
    pixels = frames[:, ring]  # (f, n, 3)
    keep = np.ones(pixels.shape[:2])  # (f, n)
    for _ in range(3):
        gram = np.einsum("fn,ni,nj->fij", keep, design, design) + 1e-9 * np.eye(2)
        coef = np.linalg.solve(gram, np.einsum("fn,ni,fnc->fic", keep, design, pixels))  # (f, 2, 3)
        residual = pixels - np.einsum("ni,fic->fnc", design, coef)
        size = np.linalg.norm(residual, axis=2)  # (f, n)
        keep = (size <= np.maximum(3 * np.median(size, axis=1, keepdims=True), 12.0)).astype(np.float64)
    noise = np.array([1.4826 * np.median(np.abs(r[k > 0])) for r, k in zip(residual, keep)])
    t = ((np.arange(h) + 0.5) / h)[:, None]
    background = coef[:, None, 0] + t[None] * coef[:, None, 1]  # (f, h, 3)
    return np.broadcast_to(background[:, :, None], frames.shape).astype(np.float64), noise


def _coverage(distance: np.ndarray, region: np.ndarray) -> np.ndarray:
    """(f, h, w) soft mask: 1 inside the region, and on its one-pixel edge on both sides, the pixel's
    contrast over that of its most contrasted inner neighbour, i.e. the covered fraction of an
    anti-aliased or blurred edge pixel (linear in coverage, so centroids are sub-pixel exact)."""
    inner = _erode(region)
    edge = _dilate(region) & ~inner
    reference = _neighbourhood(np.where(inner, distance, 0.0), np.maximum)
    level = np.array([np.percentile(d[r], 75) if r.any() else 1.0 for d, r in zip(distance, region)])
    reference = np.where(reference > 0, reference, level[:, None, None])  # thin parts have no inner pixel
    return np.where(inner, 1.0, np.where(edge, np.clip(distance / reference, 0, 1), 0.0))


def segment(frames: np.ndarray) -> Segmentation:
    """Fit the background, threshold the distance to it, keep the component with the most contrast."""
    frames = np.asarray(frames, dtype=np.float64)
    background, noise = _fit_background(frames)
    distance = np.linalg.norm(frames - background, axis=-1)  # (f, h, w)
    foreground = distance > np.maximum(MIN_CONTRAST, NOISE_SIGMAS * noise)[:, None, None]
    # Fragments closer than 2 px (4 px vertically; at 32 px) count as one object: the "striped" texture
    # draws a horizontal band up to 4 px tall that can match the background (white on gray).
    reach = max(1, round(frames.shape[2] / 32))
    grown = _dilate(foreground, reach)
    for _ in range(reach):
        grown = grown | np.pad(grown[:, 1:], ((0, 0), (0, 1), (0, 0))) | np.pad(grown[:, :-1], ((0, 0), (1, 0), (0, 0)))
    labels = _components(grown)
    contrast = np.bincount(labels[foreground], weights=distance[foreground], minlength=labels.size)
    per_frame = contrast.reshape(len(frames), -1)  # labels are flat indices, so frame i owns block i
    main = np.argmax(per_frame, axis=1) + np.arange(len(frames)) * per_frame.shape[1]
    present = per_frame.max(axis=1) > 0
    region = _fill_holes(foreground & (labels == main[:, None, None]) & present[:, None, None])
    weight = _coverage(distance, region)
    band = _dilate(region)
    total = np.where(foreground, distance, 0).sum(axis=(1, 2))
    outside = np.where(foreground & ~band, distance, 0).sum(axis=(1, 2))
    stray = np.where(present, outside / np.maximum(total, 1e-9), 1.0)
    rows, columns = np.mgrid[: frames.shape[1], : frames.shape[2]]
    mass = weight.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        centroid = np.stack([(weight * columns).sum((1, 2)), (weight * rows).sum((1, 2))], 1) / mass[:, None]
    centroid[~present] = np.nan
    return Segmentation(background, distance, noise, region, weight, stray, centroid)


# ----------------------------------------------------------------------------- motion


class MotionEstimate(NamedTuple):
    track: np.ndarray  # (f, 2) centroid (x, y) per frame, NaN where no object was found
    velocity: np.ndarray  # (2,) Theil-Sen slope of the track, px per frame (x right, y down)
    direction: str  # key of DIRECTIONS, "static" or "none"


def _theil_sen(track: np.ndarray) -> np.ndarray:
    """(2,) median over frame pairs of the per-pair slope: one bad frame cannot swing it."""
    frames = np.flatnonzero(~np.isnan(track[:, 0]))
    pairs = [(i, j) for i in frames for j in frames if j > i]
    if not pairs:
        return np.full(2, np.nan)
    return np.median([(track[j] - track[i]) / (j - i) for i, j in pairs], axis=0)


def direction_of(velocity: np.ndarray, width: int) -> str:
    """The axis direction a (2,) px/frame velocity points in, "static" below STATIC_SPEED frame
    widths per frame, or "none" when no velocity could be measured (no object in two frames)."""
    if not np.isfinite(velocity).all():
        return "none"
    if np.hypot(*velocity) < STATIC_SPEED * width:
        return "static"
    unit = velocity / np.hypot(*velocity)
    return max(DIRECTIONS, key=lambda name: float(unit @ np.array(DIRECTIONS[name])))


def estimate_motion(frames: np.ndarray, segmentation: Segmentation | None = None) -> MotionEstimate:
    segmentation = segmentation or segment(frames)
    velocity = _theil_sen(segmentation.centroid)
    return MotionEstimate(segmentation.centroid, velocity, direction_of(velocity, frames.shape[2]))


def _motion_metrics(
    motion: MotionEstimate, width: int, direction: str | None, speed: str | None, expected: SceneSpec | None
) -> dict[str, float]:
    vx, vy = motion.velocity
    out = {
        "velocity_x": vx,
        "velocity_y": vy,
        "speed": float(np.hypot(vx, vy)),
        "displacement": float(np.hypot(vx, vy) * (len(motion.track) - 1)),
        "is_static": float(motion.direction == "static"),
        "object_present": float(np.mean(~np.isnan(motion.track[:, 0]))),
    }
    out["direction_match"] = float(motion.direction == direction) if direction else np.nan
    along = float(motion.velocity @ np.array(DIRECTIONS[direction])) if direction else np.nan
    out["speed_ratio"] = along / (SPEEDS[speed] * width) if direction and speed else np.nan
    out["velocity_error"] = out["track_error"] = np.nan
    if expected is not None:
        truth = object_trajectory(expected, len(motion.track), width)  # (f, 2)
        out["velocity_error"] = float(np.hypot(*(motion.velocity - (truth[-1] - truth[0]) / max(len(truth) - 1, 1))))
        errors = np.hypot(*(motion.track - truth).T)
        out["track_error"] = float(errors[~np.isnan(errors)].mean()) if out["object_present"] else np.nan
    return out


# ----------------------------------------------------------------------------- colour and fidelity


def _palette_lookup(frames: np.ndarray, seg: Segmentation):
    """For the object's pixels (weight > 0): index into PALETTE_NAMES of the nearest palette segment,
    or len(PALETTE_NAMES) where the local background is nearer, and the RGB distance to the palette."""
    where = np.nonzero(seg.weight > 0)
    pixels = frames[where]  # (n, 3)
    start, span = PALETTE[:, 0], PALETTE[:, 1] - PALETTE[:, 0]  # (names, 3)
    along = np.clip(((pixels[:, None] - start) * span).sum(-1) / np.maximum((span**2).sum(-1), 1e-9), 0, 1)
    gaps = np.linalg.norm(pixels[:, None] - (start + along[..., None] * span), axis=-1)  # (n, names)
    to_background = np.linalg.norm(pixels - seg.background[where], axis=-1)[:, None]
    return where, np.argmin(np.concatenate([gaps, to_background], axis=1), axis=1), gaps.min(axis=1)


def palette_shares(frames: np.ndarray, seg: Segmentation) -> np.ndarray:
    """(f, len(PALETTE_NAMES)) share of each frame's object weight whose nearest colour (palette
    entries and the local background) is that palette colour; background-nearest pixels count for none."""
    where, nearest, _ = _palette_lookup(frames, seg)
    shares = np.zeros((len(frames), len(PALETTE_NAMES) + 1))
    np.add.at(shares, (where[0], nearest), seg.weight[where])
    return shares[:, :-1] / np.maximum(seg.weight.sum(axis=(1, 2)), 1e-9)[:, None]


def _off_palette(frames: np.ndarray, seg: Segmentation) -> np.ndarray:
    """(f, h, w) distance (0-1) of each object pixel to the nearest base or star colour; 0 elsewhere.
    Styled fills (crayon's quantised grain, neon's dark fill) are far from every palette colour."""
    where, _, gap = _palette_lookup(frames, seg)
    out = np.zeros(seg.weight.shape)
    out[where] = gap / 255
    return out


def _band_mean(values: np.ndarray, band: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    count = band.sum(axis=(1, 2))
    return np.where(count > 0, (values * band).sum(axis=(1, 2)) / np.maximum(count, 1), fallback)


FEATURES = (
    "pink_share",
    "navy_share",
    "background_luma",
    "core_luma",
    "rim_luma",
    "rim_minus_core",
    "rim_minus_background",
    "halo_minus_background",
    "core_chroma",
    "core_grain",
    "core_off_palette",
    "area",
)  # columns of `frame_features`


def frame_features(frames: np.ndarray, seg: Segmentation | None = None) -> np.ndarray:
    """(f, len(FEATURES)) features that separate held-out looks from base objects: pink and navy
    shares (the star), a radial luminance profile core -> rim -> halo against the background (neon:
    dark core, bright rim, glow on a dark ground; crayon: dark rim), the fill's chroma, grain and
    distance from every base colour (crayon's quantised grain and neon's dark fill are off-palette)."""
    frames = np.asarray(frames, dtype=np.float64)
    seg = seg or segment(frames)
    luma, bg_luma = frames @ LUMA / 255, seg.background @ LUMA / 255  # (f, h, w)
    region, core = seg.region, _erode(seg.region)
    rim, halo = region & ~core, _dilate(region, 2) & ~region
    zero = np.zeros(len(frames))
    whole = _band_mean(luma, region, zero)
    core_luma, rim_luma = _band_mean(luma, core, whole), _band_mean(luma, rim, whole)
    chroma = (frames.max(-1) - frames.min(-1)) / 255
    shares = palette_shares(frames, seg)
    return np.stack(
        [
            shares[:, PALETTE_NAMES.index("pink")],
            shares[:, PALETTE_NAMES.index("navy")],
            bg_luma.mean(axis=(1, 2)),
            core_luma,
            rim_luma,
            rim_luma - core_luma,
            _band_mean(luma - bg_luma, rim, zero),
            _band_mean(luma - bg_luma, halo, zero),
            _band_mean(chroma, core, _band_mean(chroma, region, zero)),
            _band_mean(np.abs(luma - _box_mean(luma)), core, zero),
            _band_mean(_off_palette(frames, seg), core, zero),
            seg.weight.mean(axis=(1, 2)),
        ],
        axis=1,
    )


class FidelityModel(NamedTuple):
    """Logistic regression on standardised `frame_features`: P(frame shows the target)."""

    mean: np.ndarray  # (d,) feature means of the training set
    scale: np.ndarray  # (d,) feature standard deviations of the training set
    weights: np.ndarray  # (d + 1,) coefficients, bias last

    def probability(self, features: np.ndarray) -> np.ndarray:
        z = np.c_[_expand((features - self.mean) / self.scale), np.ones(len(features))] @ self.weights
        return 1 / (1 + np.exp(-np.clip(z, -30, 30)))


def _expand(x: np.ndarray) -> np.ndarray:
    """(n, d) -> (n, d + d (d + 1) / 2): the features and their pairwise products (quadratic LR)."""
    rows, cols = np.triu_indices(x.shape[1])
    return np.c_[x, x[:, rows] * x[:, cols]]


def _logistic_regression(x: np.ndarray, y: np.ndarray, l2: float = 1.0, steps: int = 25) -> np.ndarray:
    """Newton's method on the L2-penalised log-likelihood (bias unpenalised); deterministic."""
    design = np.c_[x, np.ones(len(x))]
    weights, penalty = np.zeros(design.shape[1]), l2 * np.diag([1.0] * x.shape[1] + [0.0])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-np.clip(design @ weights, -30, 30)))
        # einsum, not BLAS: multithreaded OpenBLAS is ~50x slower here on a busy 2-core machine
        hessian = np.einsum("ni,nj->ij", design * (p * (1 - p))[:, None], design) + penalty
        weights -= np.linalg.solve(hessian, design.T @ (p - y) + penalty @ weights)
    return weights


TRAIN_SEED = 7_000_000  # fidelity training scenes; validation and tests use other seeds
AUGMENT = ((0.0, 0.0), (0.6, 4.0), (1.0, 10.0), (1.5, 20.0))  # (blur sigma px, noise sigma levels) copies of each image


def _training_looks(target: str) -> list[tuple[int, str | None, str | None]]:
    """(label, subject, style) groups: the target in every look vs every look without it, so a
    subject model ignores styles and a style model ignores which object wears it."""
    subjects, styles = [None, *SUBJECTS], [None, *STYLES]
    looks = [(subject, style) for subject in subjects for style in styles]
    return [(int(target in (subject, style)), subject, style) for subject, style in looks]


@functools.lru_cache(maxsize=16)
def fidelity_model(target: str, resolution: int = 32, num_images: int = 60) -> FidelityModel:
    """Train (seconds, cached) target-vs-rest on `num_images` rendered one-frame scenes per look of
    `_training_looks`, each also blurred and noised (AUGMENT)."""
    if target not in SUBJECTS and target not in STYLES:
        raise ValueError(f"unknown fidelity target {target!r}; expected one of {[*SUBJECTS, *STYLES]}")
    rng = np.random.default_rng(TRAIN_SEED)
    frames, labels = [], []
    for index, (label, subject, style) in enumerate(_training_looks(target)):
        samples = make_image_dataset(num_images, TRAIN_SEED + index, resolution, subject=subject, style=style)
        images = np.stack([s.pixels for s in samples])  # (n, h, w, 3) one-frame scenes
        for sigma, noise in AUGMENT:
            frames.append(np.clip(np.round(blur_frames(images, sigma) + rng.normal(0, noise, images.shape)), 0, 255))
            labels += [label] * len(images)
    frames = np.concatenate(frames)
    features = [frame_features(frames[i : i + 256]) for i in range(0, len(frames), 256)]
    x, y = np.concatenate(features), np.array(labels, dtype=np.float64)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    return FidelityModel(mean, scale, _logistic_regression(_expand((x - mean) / scale), y))


def fidelity(frames: np.ndarray, target: str, seg: Segmentation | None = None) -> np.ndarray:
    """(f,) per-frame probability in [0, 1] that the frame shows `target` (a key of SUBJECTS or STYLES)
    rather than a base object or another held-out look."""
    frames = np.asarray(frames, dtype=np.float64)
    return fidelity_model(target, frames.shape[2]).probability(frame_features(frames, seg))


# ----------------------------------------------------------------------------- consistency and artifacts


def _aligned_windows(weight: np.ndarray, centroid: np.ndarray, radius: int) -> np.ndarray:
    """(f, 2r+1, 2r+1) bilinear samples of each frame's soft mask around its centroid; NaN centroid: 0."""
    f, h, w = weight.shape
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    out = np.zeros((f, offsets.size, offsets.size))
    padded = np.pad(weight, ((0, 0), (1, 1), (1, 1)))
    for i, (cx, cy) in enumerate(centroid):
        if np.isnan(cx):
            continue
        ys, xs = np.clip(cy + offsets + 1, 0, h + 1 - 1e-9), np.clip(cx + offsets + 1, 0, w + 1 - 1e-9)
        y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
        fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
        y1, x1 = np.minimum(y0 + 1, h + 1), np.minimum(x0 + 1, w + 1)
        p = padded[i]
        out[i] = (
            (1 - fy) * (1 - fx) * p[np.ix_(y0, x0)]
            + (1 - fy) * fx * p[np.ix_(y0, x1)]
            + fy * (1 - fx) * p[np.ix_(y1, x0)]
            + fy * fx * p[np.ix_(y1, x1)]
        )
    return out


def colour_histograms(frames: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """(f, HIST_BINS**3) weighted RGB histograms, each pixel split linearly between its two nearest
    bin centres per channel, so an edge pixel drifting across a bin boundary changes them smoothly."""
    width = 256 / HIST_BINS
    centres = (np.arange(HIST_BINS) + 0.5) * width
    where = np.nonzero(weight > 0)
    share = np.clip(1 - np.abs(np.asarray(frames, np.float64)[where][..., None] - centres) / width, 0, None)
    share /= share.sum(axis=-1, keepdims=True)  # (n, 3, bins): the end bins take the tails
    joint = np.einsum("na,nb,nc,n->nabc", share[:, 0], share[:, 1], share[:, 2], weight[where])
    hist = np.zeros((len(frames), HIST_BINS**3))
    np.add.at(hist, where[0], joint.reshape(-1, HIST_BINS**3))
    return hist / np.maximum(hist.sum(axis=1, keepdims=True), 1e-9)


def consistency_metrics(frames: np.ndarray, seg: Segmentation) -> dict[str, float]:
    """Consecutive-frame shape IoU (centroids aligned), colour histogram intersection, path smoothness; NaN for a
    single image (the customized T2I's), which has no consecutive frames."""
    if len(frames) < 2:
        return dict.fromkeys(("shape_consistency", "color_consistency", "smoothness", "consistency"), np.nan)
    windows = _aligned_windows(seg.weight, seg.centroid, radius=frames.shape[2] // 4)
    union = np.maximum(windows[1:], windows[:-1]).sum(axis=(1, 2))
    shape = np.where(union > 0, np.minimum(windows[1:], windows[:-1]).sum(axis=(1, 2)) / np.maximum(union, 1e-9), 0)
    hist = colour_histograms(frames, seg.weight)
    colour = np.minimum(hist[1:], hist[:-1]).sum(axis=1)
    track = seg.centroid[~np.isnan(seg.centroid[:, 0])]
    jerk = np.diff(track, n=2, axis=0)  # (f - 2, 2) second differences: zero for constant velocity
    scale = SMOOTHNESS * frames.shape[2]
    smooth = float(np.exp(-(jerk**2).sum(axis=1).mean() / scale**2)) if len(jerk) else np.nan
    out = {"shape_consistency": float(shape.mean()), "color_consistency": float(colour.mean()), "smoothness": smooth}
    out["consistency"] = float(np.nanmean(list(out.values())))
    return out


def artifact_metrics(frames: np.ndarray, seg: Segmentation) -> dict[str, np.ndarray]:
    """Per frame: `artifact_noise` = robust sigma (levels) of the 3x3 high-pass away from the object;
    `artifact_stray` = foreground outside the main object; `artifact` = 1 - (1 - stray) exp(-noise / NOISE_LEVELS)."""
    frames = np.asarray(frames, dtype=np.float64)
    high = frames - np.stack([_box_mean(frames[..., c]) for c in range(3)], axis=-1)
    away = ~_dilate(seg.region, 2)
    noise = np.array(
        [1.4826 * np.median(np.abs(h[a])) / np.sqrt(1 - 1 / 9) if a.any() else 0.0 for h, a in zip(high, away)]
    )  # (f,) the 3x3 mean removes 1/9 of white-noise variance
    return {
        "artifact_noise": noise,
        "artifact_stray": seg.stray,
        "artifact": 1 - (1 - seg.stray) * np.exp(-noise / NOISE_LEVELS),
    }


# ----------------------------------------------------------------------------- following a reference track


def reference_masks(silhouettes: np.ndarray) -> np.ndarray:
    """(F, H, W) bool object masks of a conditioning video (white on black, any channel count): pixels brighter
    than half."""
    silhouettes = np.asarray(silhouettes, dtype=np.float64)
    grey = silhouettes.mean(axis=-1) if silhouettes.ndim == 4 else silhouettes
    return grey > 127.5


def track_following(frames: np.ndarray, silhouettes: np.ndarray) -> dict[str, float]:
    """How closely a video's object follows a reference silhouette video of the same size: the mean over frames
    of the IoU of the oracle's object region (`segment`) with the reference mask ("track_iou"; 0 in a frame
    without an object), and the mean distance in pixels between their centroids ("track_distance"; NaN when no
    frame has an object)."""
    frames = to_uint8_frames(frames)
    masks = reference_masks(silhouettes)
    if masks.shape != frames.shape[:3]:
        raise ValueError(f"reference {masks.shape} and video {frames.shape[:3]} differ in frames or size")
    seg = segment(frames)
    inter = (seg.region & masks).sum(axis=(1, 2))
    union = (seg.region | masks).sum(axis=(1, 2))
    iou = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    rows, columns = np.mgrid[: masks.shape[1], : masks.shape[2]]
    mass = masks.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = np.stack([(masks * columns).sum((1, 2)), (masks * rows).sum((1, 2))], 1) / mass[:, None]
        error = np.linalg.norm(seg.centroid - centre, axis=1)
    return {
        "track_iou": float(iou.mean()),
        "track_distance": float(np.nanmean(error)) if np.isfinite(error).any() else float("nan"),
    }


# ----------------------------------------------------------------------------- per video


def _targets(target: str | None, expected: SceneSpec | None, prompt: PromptInfo | None) -> list[str]:
    if target is not None:
        return [target]
    source = expected or prompt
    return [t for t in (source.subject, source.style) if t] if source else []


def video_metrics(
    frames: np.ndarray, expected: SceneSpec | None = None, prompt: str | None = None, target: str | None = None
) -> dict[str, float]:
    """All metrics for one video (uint8 (F, H, W, 3), or anything `to_uint8_frames` takes, e.g. the
    pipeline's float frames in [0, 1]). `expected` (the true scene) wins over `prompt` (a caption);
    `target` picks the fidelity target, else the subject/style they name ("fidelity_<t>" each, and
    "fidelity" their mean). Figures that need something not given are NaN."""
    frames = to_uint8_frames(frames)  # (f, h, w, 3) from uint8, floats in [0, 1], tensors or PIL images
    if frames.shape[1] != frames.shape[2]:
        raise ValueError(f"expected square frames, got {frames.shape[1]}x{frames.shape[2]}")
    seg, width = segment(frames), frames.shape[2]
    info = parse_prompt(prompt) if prompt else None
    direction = expected.direction if expected else info.direction if info else None
    speed = expected.speed if expected else info.speed if info else None
    out = _motion_metrics(estimate_motion(frames, seg), width, direction, speed, expected)
    color = expected.color if expected else info.color if info else None
    shares = palette_shares(frames.astype(np.float64), seg).mean(axis=0)
    named = PALETTE_NAMES[int(np.argmax(shares))] if shares.max() > 0 else None  # None: no object
    out["color_match"] = float(named == color) if color in COLORS else np.nan
    out |= consistency_metrics(frames, seg)
    artifacts = artifact_metrics(frames, seg)
    out |= {name: float(values.mean()) for name, values in artifacts.items()}
    out["artifact_worst"] = float(artifacts["artifact"].max())
    targets = _targets(target, expected, info)
    if targets:
        scores = {t: float(fidelity(frames, t, seg).mean()) for t in targets}
        out |= {f"fidelity_{t}": s for t, s in scores.items()} | {"fidelity": float(np.mean(list(scores.values())))}
    return {key: float(value) for key, value in out.items()}
