"""A deterministic synthetic video world: one textured shape gliding over a background.

It is small enough to pretrain a Stable-Diffusion-shaped text-to-video model on CPU, and every
video comes with oracle ground truth (object centre and mask per frame), so the Still-Moving
claims (customised look, preserved motion) can be measured exactly instead of judged by eye.

Base world, sampled uniformly by `sample_scene`:
  shapes  circle, square, triangle, diamond, cross
  colours red, orange, yellow, green, cyan, purple, white
  textures plain, striped, dotted          directions left, right, up, down
  speeds  slowly, quickly                  backgrounds black, gray, blue, dusk (a gradient)
Held out (never sampled unless asked for; renderable by the same code, for customisation):
  SUBJECTS["star"]  a pink five-pointed star with a navy core: shape "star", colour "pink" and
                    texture "two_tone" never occur in the base world.
  STYLES["crayon"]  thick near-black outline, fill under a fixed paper grain quantised to 4 levels.
  STYLES["neon"]    darkened background, dark fill, bright outline and a soft glow around it.

Coordinates: a scene stores positions and sizes as fractions of the (square) frame, so one
`SceneSpec` renders at any resolution. Trajectories are in pixel-index units (x = column,
y = row, pixel j centred on j), directly comparable with the centroid of `object_mask` indices.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from stillmoving.errors import StillMovingError


def _star(points: int = 5, inner: float = 0.45) -> list[tuple[float, float]]:
    angles = [-math.pi / 2 + math.pi * k / points for k in range(2 * points)]
    return [
        ((1.0 if k % 2 == 0 else inner) * math.cos(a), (1.0 if k % 2 == 0 else inner) * math.sin(a))
        for k, a in enumerate(angles)
    ]


_ARM, _LEN = 0.32, 0.95  # cross: half-width and half-length of each arm
# Polygons in object coordinates: unit radius, y down, centroid at the origin (the trajectory
# is the centroid), every vertex inside [-1, 1]^2 so the object fits its bounding box. None = circle.
SHAPES: dict[str, list[tuple[float, float]] | None] = {
    "circle": None,
    "square": [(-0.8, -0.8), (0.8, -0.8), (0.8, 0.8), (-0.8, 0.8)],
    "triangle": [(0.0, -1.0), (math.sqrt(3) / 2, 0.5), (-math.sqrt(3) / 2, 0.5)],  # equilateral
    "diamond": [(0.0, -1.0), (1.0, 0.0), (0.0, 1.0), (-1.0, 0.0)],
    "cross": [
        (-_ARM, -_LEN),
        (_ARM, -_LEN),
        (_ARM, -_ARM),
        (_LEN, -_ARM),
        (_LEN, _ARM),
        (_ARM, _ARM),
        (_ARM, _LEN),
        (-_ARM, _LEN),
        (-_ARM, _ARM),
        (-_LEN, _ARM),
        (-_LEN, -_ARM),
        (-_ARM, -_ARM),
    ],
    "star": _star(),  # held out: only the SUBJECTS entry uses it
}
BASE_SHAPES = ("circle", "square", "triangle", "diamond", "cross")
COLORS: dict[str, tuple[int, int, int]] = {  # base colours, all far from every background
    "red": (225, 45, 45),
    "orange": (245, 145, 25),
    "yellow": (245, 225, 50),
    "green": (50, 190, 70),
    "cyan": (40, 215, 225),
    "purple": (165, 80, 235),
    "white": (240, 240, 240),
}
HELD_OUT_COLORS = {"pink": (255, 105, 190)}  # the star subject's body colour
ACCENT_RGB = (25, 35, 120)  # the core colour of the held-out "two_tone" texture
TEXTURES = ("plain", "striped", "dotted")  # base textures; "two_tone" is held out
DIRECTIONS: dict[str, tuple[int, int]] = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
SPEEDS = {"slowly": 1 / 80, "quickly": 3 / 80}  # frame widths per frame: 0.4 / 1.2 px at 32 px
BACKGROUNDS: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {  # (top, bottom) RGB
    "black": ((0, 0, 0), (0, 0, 0)),
    "gray": ((110, 110, 110), (110, 110, 110)),
    "blue": ((25, 35, 110), (25, 35, 110)),
    "dusk": ((40, 20, 70), (110, 50, 50)),
}
SIZE_RANGE = (0.25, 0.34)  # object diameter as a fraction of the frame side
MARGIN = 0.04  # gap kept between the object and the frame edge, as a fraction of the frame side
SUPERSAMPLE = 4  # samples per pixel side: edges get 17 coverage levels, so sub-pixel motion shows
GRAIN_SEED = 20240717  # fixed seed of the crayon style's paper grain


@dataclass(frozen=True)
class Subject:
    """A held-out object identity: fixed shape, colour and pattern the base world never uses."""

    shape: str  # key of SHAPES, not in BASE_SHAPES
    color: str  # key of HELD_OUT_COLORS
    texture: str  # a pattern outside TEXTURES


@dataclass(frozen=True)
class Style:
    """A held-out look applicable to any object; all values are fixed, so the style is learnable."""

    outline_scale: float  # the outline is the ring between the shape and this shrunken copy
    outline_rgb: tuple[int, int, int] | None  # fixed outline colour; None: body colour halfway to white
    fill_gain: float  # multiplies the fill colour inside the outline
    halo_scale: float  # a glow reaches out to this enlarged copy of the shape; 1.0 = no glow
    halo_alpha: float  # opacity of the glow
    background_gain: float  # multiplies the background colour
    grain_levels: int  # > 0: fill times a fixed paper grain, quantised to this many levels per channel


SUBJECTS = {"star": Subject(shape="star", color="pink", texture="two_tone")}
STYLES = {
    "crayon": Style(
        outline_scale=0.72,
        outline_rgb=(30, 25, 25),
        fill_gain=1.0,
        halo_scale=1.0,
        halo_alpha=0.0,
        background_gain=1.0,
        grain_levels=4,
    ),
    "neon": Style(
        outline_scale=0.78,
        outline_rgb=None,
        fill_gain=0.15,
        halo_scale=1.3,
        halo_alpha=0.45,
        background_gain=0.25,
        grain_levels=0,
    ),
}


@dataclass(frozen=True)
class SceneSpec:
    """Everything needed to render one video of the world; positions are frame fractions."""

    shape: str  # key of SHAPES
    color: str  # key of COLORS or HELD_OUT_COLORS
    texture: str  # one of TEXTURES, or "two_tone" (held out)
    direction: str  # key of DIRECTIONS
    speed: str  # key of SPEEDS
    background: str  # key of BACKGROUNDS
    size: float  # object diameter as a fraction of the frame side
    start_xy: tuple[float, float]  # object centre at frame 0 as fractions of width and height
    subject: str | None = None  # key of SUBJECTS when this is the held-out subject (captioned by placeholder)
    style: str | None = None  # key of STYLES, or None for the base look

    def __post_init__(self):
        known = {
            "shape": SHAPES,
            "color": COLORS | HELD_OUT_COLORS,
            "direction": DIRECTIONS,
            "speed": SPEEDS,
            "background": BACKGROUNDS,
            "texture": (*TEXTURES, "two_tone"),
        }
        for field, values in known.items():
            if getattr(self, field) not in values:
                raise ValueError(f"unknown {field} {getattr(self, field)!r}; expected one of {list(values)}")
        _check_held_out(self.subject, self.style)


class WorldSample(NamedTuple):
    """One item of a synthetic dataset; unpacks as (pixels, caption, spec)."""

    pixels: np.ndarray  # uint8 (F, H, W, 3) for videos, (H, W, 3) for images
    caption: str  # see `caption`
    spec: SceneSpec  # the ground truth behind the pixels


def _check_held_out(subject: str | None, style: str | None) -> None:
    if subject is not None and subject not in SUBJECTS:
        raise StillMovingError(f"unknown subject '{subject}'; the world has {', '.join(SUBJECTS)}")
    if style is not None and style not in STYLES:
        raise StillMovingError(f"unknown style '{style}'; the world has {', '.join(STYLES)}")


# ----------------------------------------------------------------------------- sampling


def _pick(rng: np.random.Generator, options) -> str:
    return str(list(options)[rng.integers(len(options))])


def sample_scene(
    rng: np.random.Generator, num_frames: int = 8, subject: str | None = None, style: str | None = None
) -> SceneSpec:
    """A scene from the base distribution whose object stays inside the frame for `num_frames`.

    The same draws happen with or without `subject`/`style`, so one seed gives paired base and
    held-out scenes with identical motion, background and placement.
    """
    _check_held_out(subject, style)
    shape, color, texture = _pick(rng, BASE_SHAPES), _pick(rng, COLORS), _pick(rng, TEXTURES)
    direction, speed, background = _pick(rng, DIRECTIONS), _pick(rng, SPEEDS), _pick(rng, BACKGROUNDS)
    travel = (num_frames - 1) * SPEEDS[speed]
    largest = min(SIZE_RANGE[1], 1 - 2 * MARGIN - travel)
    if largest < SIZE_RANGE[0]:
        raise StillMovingError(f"{num_frames} frames moving {speed} do not fit in the frame; use fewer frames")
    size = float(rng.uniform(SIZE_RANGE[0], largest))
    low, high = size / 2 + MARGIN, 1 - size / 2 - MARGIN
    along, across = float(rng.uniform(low, high - travel)), float(rng.uniform(low, high))
    dx, dy = DIRECTIONS[direction]
    start = along if dx + dy > 0 else along + travel  # the end point is then `along`
    start_xy = (start, across) if dx else (across, start)
    if subject is not None:
        looks = SUBJECTS[subject]
        shape, color, texture = looks.shape, looks.color, looks.texture
    return SceneSpec(shape, color, texture, direction, speed, background, size, start_xy, subject, style)


def caption(spec: SceneSpec, placeholder: str = "sks", motion: bool = True, appearance: bool = True) -> str:
    """E.g. "a red striped circle moving left quickly on a gray background"; the held-out subject is
    "a <placeholder> star ...", a style appends "in crayon style"; plain texture is not named.
    `appearance=False` leaves the object's colour and texture unnamed ("a circle moving left ...")."""
    if spec.subject is not None:
        noun = [placeholder, spec.shape]
    elif not appearance:
        noun = [spec.shape]
    else:
        noun = [spec.color] + ([spec.texture] if spec.texture != "plain" else []) + [spec.shape]
    words = ["a", *noun] + (["moving", spec.direction, spec.speed] if motion else [])
    words += ["on", "a", spec.background, "background"]
    return " ".join(words + (["in", spec.style, "style"] if spec.style else []))


def world_vocabulary(include_held_out: bool = True) -> list[str]:
    """Sorted unique words of every caption. The placeholder is deliberately absent (it should stay
    a rare word for the tokenizer); held-out words ("star", style names) are in unless excluded."""
    words = {"a", "moving", "on", "background", *BASE_SHAPES, *COLORS, *DIRECTIONS, *SPEEDS, *BACKGROUNDS}
    words |= set(TEXTURES) - {"plain"}
    if include_held_out:
        words |= {"in", "style", *STYLES} | {s.shape for s in SUBJECTS.values()}
    return sorted(words)


# ----------------------------------------------------------------------------- geometry


def object_trajectory(spec: SceneSpec, num_frames: int, resolution: int) -> np.ndarray:
    """(F, 2) object centre (x, y) per frame in pixel-index units."""
    step = SPEEDS[spec.speed] * np.array(DIRECTIONS[spec.direction], dtype=np.float64)
    fractions = np.array(spec.start_xy) + np.arange(num_frames)[:, None] * step  # (f, 2)
    return fractions * resolution - 0.5


def _inside(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Boolean inside-test in object coordinates; u (..., 1, n), v (..., n, 1) -> (..., n, n).
    Polygons use the even-odd crossing rule, vectorised over the 3-12 edges."""
    vertices = SHAPES[shape]
    if vertices is None:
        return u * u + v * v <= 1.0
    inside = np.zeros(np.broadcast_shapes(u.shape, v.shape), dtype=bool)
    for (x1, y1), (x2, y2) in zip(vertices, vertices[1:] + vertices[:1]):
        if y1 == y2:
            continue  # a horizontal edge never crosses a horizontal ray
        crosses = (y1 > v) != (y2 > v)  # (..., n, 1)
        inside ^= crosses & (u < x1 + (v - y1) * (x2 - x1) / (y2 - y1))
    return inside


def _fill_rgb(spec: SceneSpec, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(..., n, n, 3) body colour with its texture, in object coordinates so patterns move along."""
    base = np.array((COLORS | HELD_OUT_COLORS)[spec.color], dtype=np.float32)
    shape = np.broadcast_shapes(u.shape, v.shape)
    if spec.texture == "striped":  # three dark horizontal bands
        dark = np.floor((v + 1.0) * 1.5) % 2 == 1
    elif spec.texture == "dotted":  # a grid of dark dots
        du, dv = u / 0.7 - np.round(u / 0.7), v / 0.7 - np.round(v / 0.7)
        dark = du * du + dv * dv < 0.33**2
    elif spec.texture == "two_tone":  # a solid accent core
        core = np.broadcast_to(u * u + v * v < 0.42**2, shape)
        return np.where(core[..., None], np.array(ACCENT_RGB, np.float32), base)
    else:
        dark = np.zeros((1, 1), dtype=bool)
    return np.where(np.broadcast_to(dark, shape)[..., None], base * 0.45, base)


@functools.lru_cache(maxsize=8)
def _paper_grain(resolution: int) -> np.ndarray:
    """(H, W) fixed screen-space grain in [0.65, 1] for the crayon style."""
    return np.random.default_rng(GRAIN_SEED).uniform(0.65, 1.0, (resolution, resolution)).astype(np.float32)


def _box_down(samples: np.ndarray) -> np.ndarray:
    """Average SUPERSAMPLE x SUPERSAMPLE blocks: (f, n*s, n*s, ...) -> (f, n, n, ...)."""
    f, ns = samples.shape[:2]
    n, s = ns // SUPERSAMPLE, SUPERSAMPLE
    return samples.reshape(f, n, s, n, s, *samples.shape[3:]).mean(axis=(2, 4))


class _Layers(NamedTuple):
    origins: np.ndarray  # (f, 2) int top-left (x, y) pixel of each frame's window
    coverage: np.ndarray  # (f, n, n) fraction of each pixel covered by the object's body
    alpha: np.ndarray  # (f, n, n) opacity incl. any glow
    premultiplied: np.ndarray  # (f, n, n, 3) colour times alpha


def _object_layers(spec: SceneSpec, centres: np.ndarray, resolution: int) -> _Layers:
    """Supersampled object in a window around each centre (f, 2); the background is elsewhere."""
    radius = spec.size * resolution / 2
    style = STYLES[spec.style] if spec.style else None
    reach = radius * (style.halo_scale if style else 1.0)
    n = min(resolution, math.ceil(2 * reach) + 2)
    origins = np.clip(np.floor(centres + 0.5 - reach), 0, resolution - n).astype(int)  # (f, 2)
    offsets = (np.arange(n * SUPERSAMPLE) + 0.5) / SUPERSAMPLE - 0.5  # sample positions in the window
    xs = origins[:, 0, None] + offsets  # (f, n*s) pixel-index coordinates
    ys = origins[:, 1, None] + offsets
    u = ((xs - centres[:, 0, None]) / radius)[:, None, :]  # (f, 1, n*s)
    v = ((ys - centres[:, 1, None]) / radius)[:, :, None]  # (f, n*s, 1)
    body = _inside(spec.shape, u, v)  # (f, n*s, n*s)
    rgb = _fill_rgb(spec, u, v)  # (f, n*s, n*s, 3)
    alpha = body.astype(np.float32)
    if style is not None:
        rgb, alpha = _apply_style(spec, style, u, v, body, rgb, (xs, ys), resolution)
    coverage = _box_down(body.astype(np.float32))
    return _Layers(origins, coverage, _box_down(alpha), _box_down(rgb * alpha[..., None]))


def _apply_style(
    spec: SceneSpec,
    style: Style,
    u: np.ndarray,
    v: np.ndarray,
    body: np.ndarray,
    rgb: np.ndarray,
    sample_xy: tuple[np.ndarray, np.ndarray],
    resolution: int,
):
    """Recolour supersamples with a held-out style; returns (rgb, alpha) of shape (f, N, N, 3), (f, N, N)."""
    rgb = rgb * style.fill_gain
    if style.grain_levels:
        columns = np.clip(np.round(sample_xy[0]).astype(int), 0, resolution - 1)[:, None, :]
        rows = np.clip(np.round(sample_xy[1]).astype(int), 0, resolution - 1)[:, :, None]
        steps = 255 / (style.grain_levels - 1)
        rgb = np.round(rgb * _paper_grain(resolution)[rows, columns][..., None] / steps) * steps
    base = np.array((COLORS | HELD_OUT_COLORS)[spec.color], dtype=np.float32)
    outline = np.array(style.outline_rgb, np.float32) if style.outline_rgb else (base + 255) / 2
    inner = _inside(spec.shape, u / style.outline_scale, v / style.outline_scale)
    rgb = np.where((body & ~inner)[..., None], outline, rgb)
    alpha = body.astype(np.float32)
    if style.halo_scale > 1:
        glow = _inside(spec.shape, u / style.halo_scale, v / style.halo_scale) & ~body
        alpha = np.where(glow, np.float32(style.halo_alpha), alpha)
        rgb = np.where(glow[..., None], base, rgb)
    return rgb, alpha


# ----------------------------------------------------------------------------- rendering


def _background(spec: SceneSpec, resolution: int) -> np.ndarray:
    """(H, W, 3) float background: a vertical blend from the top colour to the bottom colour."""
    top, bottom = (np.array(c, np.float32) for c in BACKGROUNDS[spec.background])
    t = ((np.arange(resolution) + 0.5) / resolution)[:, None, None]  # (h, 1, 1)
    gain = STYLES[spec.style].background_gain if spec.style else 1.0
    return np.broadcast_to((top * (1 - t) + bottom * t) * gain, (resolution, resolution, 3))


def render_video(spec: SceneSpec, num_frames: int, resolution: int) -> np.ndarray:
    """uint8 (F, H, W, 3) frames of the scene, anti-aliased by supersampling."""
    if num_frames < 1 or resolution < 8:
        raise ValueError(f"need num_frames >= 1 and resolution >= 8, got {num_frames}, {resolution}")
    layers = _object_layers(spec, object_trajectory(spec, num_frames, resolution), resolution)
    frames = np.repeat(_background(spec, resolution)[None], num_frames, axis=0)  # (f, h, w, 3)
    n = layers.alpha.shape[1]
    for frame, (x, y), alpha, colour in zip(frames, layers.origins, layers.alpha, layers.premultiplied):
        window = frame[y : y + n, x : x + n]
        window[...] = window * (1 - alpha[..., None]) + colour  # "over" compositing
    return np.round(frames).clip(0, 255).astype(np.uint8)


def object_coverage(spec: SceneSpec, frame_index: int, resolution: int) -> np.ndarray:
    """(H, W) float fraction of each pixel covered by the object's body (outline included, glow not)."""
    centre = object_trajectory(spec, frame_index + 1, resolution)[frame_index:]  # (1, 2)
    layers = _object_layers(spec, centre, resolution)
    (x, y), n = layers.origins[0], layers.coverage.shape[1]
    full = np.zeros((resolution, resolution), dtype=np.float32)
    full[y : y + n, x : x + n] = layers.coverage[0]
    return full


def object_mask(spec: SceneSpec, frame_index: int, resolution: int) -> np.ndarray:
    """(H, W) bool: pixels at least half covered by the object."""
    return object_coverage(spec, frame_index, resolution) >= 0.5


# ----------------------------------------------------------------------------- silhouettes


def silhouette_video(spec: SceneSpec, centres: np.ndarray, resolution: int, soft: bool = False) -> np.ndarray:
    """uint8 (F, H, W, 3) conditioning video: the object's body placed at each centre (F, 2) (pixel-index
    units, any path), white on black; binary (pixels at least half covered) or, `soft`, anti-aliased by
    coverage, as a drawing program renders a filled shape. The world ControlNet's input format."""
    layers = _object_layers(spec, np.asarray(centres, dtype=np.float64), resolution)
    frames = np.zeros((len(centres), resolution, resolution), dtype=np.float32)
    n = layers.coverage.shape[1]
    for frame, (x, y), coverage in zip(frames, layers.origins, layers.coverage):
        frame[y : y + n, x : x + n] = coverage if soft else coverage >= 0.5
    grey = np.round(frames * 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


TRACKS = ("diagonal", "curved")  # paths the world's videos never take (theirs are straight and axis-aligned)


def reference_track(kind: str, num_frames: int, resolution: int, reverse: bool = False) -> np.ndarray:
    """(F, 2) centres of a path no world caption asks for: "diagonal" (top-left to bottom-right, 2.0 px/frame
    at 32 px and 8 frames) or "curved" (a half circle around the frame's centre); `reverse` runs it backwards."""
    if kind not in TRACKS:
        raise StillMovingError(f"unknown track {kind!r} (known: {', '.join(TRACKS)})")
    t = np.linspace(0.0, 1.0, num_frames)
    if kind == "diagonal":
        fractions = np.stack([0.3 + 0.4 * t, 0.3 + 0.4 * t], axis=1)
    else:
        angle = np.pi * (1.0 + t)  # from the left, over the top, to the right
        fractions = np.stack([0.5 + 0.25 * np.cos(angle), 0.55 + 0.25 * np.sin(angle)], axis=1)
    centres = fractions * resolution - 0.5
    return centres[::-1].copy() if reverse else centres


# ----------------------------------------------------------------------------- datasets


def make_video_dataset(
    num_videos: int,
    seed: int,
    num_frames: int = 8,
    resolution: int = 32,
    *,
    subject: str | None = None,
    style: str | None = None,
    placeholder: str = "sks",
) -> list[WorldSample]:
    """`num_videos` (video (F, H, W, 3) uint8, caption, spec) triples, identical for the same seed."""
    rng = np.random.default_rng(seed)
    specs = [sample_scene(rng, num_frames, subject, style) for _ in range(num_videos)]
    return [WorldSample(render_video(s, num_frames, resolution), caption(s, placeholder), s) for s in specs]


def make_image_dataset(
    num_images: int,
    seed: int,
    resolution: int = 32,
    *,
    subject: str | None = None,
    style: str | None = None,
    placeholder: str = "sks",
) -> list[WorldSample]:
    """`num_images` (image (H, W, 3) uint8, caption without motion words, spec) triples of static
    scenes (a one-frame scene: the object anywhere inside the frame), identical for the same seed."""
    rng = np.random.default_rng(seed)
    specs = [sample_scene(rng, 1, subject, style) for _ in range(num_images)]
    return [WorldSample(render_video(s, 1, resolution)[0], caption(s, placeholder, motion=False), s) for s in specs]


# ----------------------------------------------------------------------------- generic looks (the VAE decoder)


def generic_images(count: int, seed: int, resolution: int) -> np.ndarray:
    """uint8 (count, H, W, 3) scenes of the world's kind (one object of the world's sizes, mostly on a world
    background) whose object has any look: a random outline (a polygon of 3 to 8 vertices, regular, at random
    radii, or with alternating radii, so pointed star-like outlines occur with 4 to 8 points; an ellipse; a
    crescent), a uniformly random fill colour, and often a second random colour as a core (the outline shrunk),
    a dot, stripes or a rim.

    What the world's VAE decoder is fine-tuned on besides the world's frames (`pretrain` phase `decoder`), as SD's
    decoder was fine-tuned on a broader set than its first training: a decoder that renders any object look, so what
    a customized UNet learns can be seen (the first decoder drew every look outside the world's palette as the
    nearest base colour). It never draws the held-out looks themselves (the star subject's exact outline and
    colours, crayon, neon), though random outlines and colours come near them, as any broad image set would."""
    from PIL import Image, ImageDraw  # pillow is a dependency; imported here, the world's renders do not need it

    rng = np.random.default_rng(seed)
    big = resolution * SUPERSAMPLE
    images = np.empty((count, resolution, resolution, 3), np.uint8)
    world_backgrounds = list(BACKGROUNDS.values())

    def colour() -> tuple[int, int, int]:
        return tuple(int(c) for c in rng.integers(0, 256, 3))

    def outline(cx: float, cy: float, r: float, kind: int) -> list[tuple[float, float]]:
        turn = rng.uniform(0, 2 * math.pi)
        if kind == 0:  # polygon
            style = rng.random()
            k = int(rng.integers(4, 9)) if style < 0.4 else int(rng.integers(3, 9))
            if style < 0.4:  # pointed: alternating outer and inner radii
                inner = rng.uniform(0.3, 0.7)
                angles = turn + np.arange(2 * k) * math.pi / k
                radii = r * np.where(np.arange(2 * k) % 2 == 0, 1.0, inner)
            else:
                angles = turn + (np.arange(k) * 2 * math.pi / k if style < 0.7 else np.sort(rng.uniform(0, 6.3, k)))
                radii = r * (np.ones(k) if style < 0.7 else rng.uniform(0.45, 1.0, k))
            return [(cx + q * math.cos(a), cy + q * math.sin(a)) for q, a in zip(radii, angles)]
        squash = rng.uniform(0.55, 1.0)  # ellipse (and the crescent's body)
        points = [(r * math.cos(a), r * squash * math.sin(a)) for a in np.linspace(0, 2 * math.pi, 48, endpoint=False)]
        c, s_ = math.cos(turn), math.sin(turn)
        return [(cx + x * c - y * s_, cy + x * s_ + y * c) for x, y in points]

    for index in range(count):
        if rng.random() < 0.75:
            top, bottom = (
                np.array(c, np.float64) for c in world_backgrounds[int(rng.integers(len(world_backgrounds)))]
            )
        else:
            top = bottom = np.array(colour(), np.float64)
        rows = ((np.arange(big) + 0.5) / big)[:, None, None]
        canvas = Image.fromarray(np.broadcast_to(top * (1 - rows) + bottom * rows, (big, big, 3)).astype(np.uint8))
        draw = ImageDraw.Draw(canvas)
        r = big * rng.uniform(*SIZE_RANGE) / 2 * rng.uniform(0.9, 1.4)
        cx, cy = rng.uniform(r + MARGIN * big, big - r - MARGIN * big, 2)
        kind = int(rng.choice(3, p=[0.55, 0.25, 0.2]))  # polygon, ellipse, crescent
        body = outline(cx, cy, r, min(kind, 1))
        draw.polygon(body, fill=colour())
        if kind == 2:  # a crescent: a bite of the background out of the ellipse
            dx, dy = rng.uniform(-0.7, 0.7, 2) * r
            draw.polygon([(x + dx, y + dy) for x, y in body], fill=tuple(int(c) for c in top))
        detail, second = rng.random(), colour()
        if detail < 0.3:  # a core: the same outline, shrunk
            scale = rng.uniform(0.3, 0.6)
            draw.polygon([(cx + (x - cx) * scale, cy + (y - cy) * scale) for x, y in body], fill=second)
        elif detail < 0.45:  # a dot
            d = r * rng.uniform(0.2, 0.45)
            ox, oy = rng.uniform(-0.4, 0.4, 2) * r
            draw.ellipse([cx + ox - d, cy + oy - d, cx + ox + d, cy + oy + d], fill=second)
        elif detail < 0.55:  # a rim
            draw.polygon(body, outline=second, width=int(rng.integers(1, 3)) * SUPERSAMPLE)
        elif detail < 0.7:  # stripes inside the body
            inside = Image.new("L", (big, big), 0)
            ImageDraw.Draw(inside).polygon(body, fill=255)
            half = int(rng.integers(1, 3)) * SUPERSAMPLE
            keep = (np.arange(big)[None, :] // half) % 2 == 0
            inside = Image.fromarray(np.where(keep, np.array(inside), 0).astype(np.uint8))
            canvas.paste(Image.new("RGB", (big, big), second), (0, 0), inside)
        images[index] = np.array(canvas.resize((resolution, resolution), Image.BOX))
    return images
