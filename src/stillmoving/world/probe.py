"""Measure what a video of the synthetic world shows, from its pixels alone.

The world's frames are one object over a background that is constant along each row (plain colours,
or the vertical "dusk" gradient), and the object never covers more than a third of a row. So the
per-row median of a frame is its background, and the distance of each pixel from it says how much
of the object is there. From that soft foreground mask come the object's centroid track (motion
direction and distance), its frame-to-frame overlap (temporal consistency) and its colour.

`monitor` samples a few prompts from a pipeline and scores the videos against their prompts; the
pretraining prints it while the motion modules learn, and the same numbers describe a finished world.
Beside it: `monitor_images` for a T2I, `direction_gap` (does the denoiser use the direction word at all?)
and `reconstruction_psnr` for a VAE, on base frames or the held-out looks.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

from stillmoving.losses import predicted_clean
from stillmoving.world.synthetic import (
    BACKGROUNDS,
    COLORS,
    DIRECTIONS,
    SPEEDS,
    SceneSpec,
    caption,
    make_video_dataset,
    sample_scene,
)

OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up"}

FOREGROUND_RAMP = (30.0, 60.0)  # RGB distance from the background: weight 0 below, 1 above
MIN_AREA = 2.0  # pixels of foreground weight below which a frame "shows no object"


def to_uint8(frames) -> np.ndarray:
    """Pipeline output (float in [0, 1], numpy or torch, channels last or first) -> uint8 (..., H, W, 3)."""
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().cpu().float().numpy()
    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
        frames = np.round(np.clip(frames, 0, 1) * 255).astype(np.uint8)
    if frames.shape[-1] != 3 and frames.shape[-3] == 3:
        frames = np.moveaxis(frames, -3, -1)
    return frames


def background(frames: np.ndarray) -> np.ndarray:
    """(..., H, W, 3) float per-row median colour broadcast over the row: the background estimate."""
    rows = np.median(frames.astype(np.float32), axis=-2, keepdims=True)  # (..., h, 1, 3)
    return np.broadcast_to(rows, frames.shape)


def foreground(frames: np.ndarray) -> np.ndarray:
    """(..., H, W) soft object mask in [0, 1] of uint8 frames (..., H, W, 3)."""
    distance = np.linalg.norm(frames.astype(np.float32) - background(frames), axis=-1)
    low, high = FOREGROUND_RAMP
    return np.clip((distance - low) / (high - low), 0.0, 1.0)


def centroids(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Object centre (F, 2) as (x, y) pixel indices and foreground area (F,) of one video (F, H, W, 3).
    Frames without an object get a NaN centre."""
    weight = foreground(frames)  # (f, h, w)
    area = weight.sum(axis=(1, 2))
    ys, xs = np.indices(weight.shape[1:], dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = np.stack([(weight * xs).sum((1, 2)), (weight * ys).sum((1, 2))], axis=1) / area[:, None]
    centre[area < MIN_AREA] = np.nan
    return centre, area


def fit_velocity(track: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares straight line through a centroid track (F, 2): velocity (2,) in px/frame and the
    RMS distance of the track from the line (px). NaN when any frame has no object."""
    if np.isnan(track).any() or len(track) < 2:
        return np.full(2, np.nan), float("nan")
    t = np.arange(len(track)) - (len(track) - 1) / 2
    velocity = (t[:, None] * (track - track.mean(0))).sum(0) / (t * t).sum()
    residual = track - track.mean(0) - t[:, None] * velocity
    return velocity, float(np.sqrt((residual**2).sum(1).mean()))


def direction_of(velocity: np.ndarray) -> str | None:
    """The world direction whose unit vector best matches a velocity (x right, y down)."""
    if np.isnan(velocity).any():
        return None
    return max(DIRECTIONS, key=lambda name: float(np.dot(DIRECTIONS[name], velocity)))


def mask_iou(weight: np.ndarray) -> float:
    """Mean IoU of consecutive frames' hard object masks (F, H, W): 1 for a still object, about 0
    for frames that are independent samples."""
    masks = weight > 0.5
    scores = [(a & b).sum() / max((a | b).sum(), 1) for a, b in itertools.pairwise(masks)]
    return float(np.mean(scores)) if scores else 1.0


def nearest(rgb: np.ndarray, palette: dict[str, tuple[int, int, int]]) -> str:
    return min(palette, key=lambda name: float(np.linalg.norm(np.array(palette[name], np.float32) - rgb)))


def object_colour(frame: np.ndarray) -> np.ndarray | None:
    """Body colour of one frame (H, W, 3): the brightest tenth of the confident object pixels, so the dark
    stripes and dots of a texture and the blended edges do not pull it down."""
    pixels = frame[foreground(frame) > 0.9].astype(np.float32)
    if len(pixels) < MIN_AREA:
        return None
    bright = pixels[pixels.sum(1) >= np.percentile(pixels.sum(1), 90)]
    return bright.mean(0)


def background_name(frame: np.ndarray) -> str:
    """Nearest world background of one frame, comparing its top and bottom rows' medians."""
    rows = background(frame)[:, 0]  # (h, 3)
    top, bottom = rows[: len(rows) // 4].mean(0), rows[-(len(rows) // 4) :].mean(0)
    return min(BACKGROUNDS, key=lambda n: float(np.linalg.norm(np.subtract(BACKGROUNDS[n], (top, bottom)))))


def video_stats(frames: np.ndarray, spec: SceneSpec) -> dict:
    """Everything measured on one video (F, H, W, 3) uint8, against the scene its prompt describes."""
    track, area = centroids(frames)
    velocity, residual = fit_velocity(track)
    colour = object_colour(frames[0])
    return {
        "direction_ok": direction_of(velocity) == spec.direction,
        "displacement": float(np.linalg.norm(velocity) * (len(frames) - 1)),
        "along": float(np.dot(DIRECTIONS[spec.direction], velocity) * (len(frames) - 1)),
        "track_residual": residual,
        "mask_iou": mask_iou(foreground(frames)),
        "area_cv": float(area.std() / max(area.mean(), 1e-6)),
        "object_found": bool(area.min() >= MIN_AREA),
        "colour_ok": colour is not None and nearest(colour, COLORS) == spec.color,
        "background_ok": background_name(frames[0]) == spec.background,
    }


def _nanmean(values) -> float:
    kept = [float(v) for v in values if not np.isnan(v)]
    return float(np.mean(kept)) if kept else float("nan")


def summarise(videos, specs: list[SceneSpec]) -> dict:
    """Averages of `video_stats` over videos (N, F, H, W, 3); NaNs (no object) count as failures and are
    left out of the distance averages. `expected_displacement` is what the prompts' speeds ask for."""
    stats = [video_stats(to_uint8(v), s) for v, s in zip(videos, specs, strict=True)]
    num_frames = to_uint8(videos[0]).shape[0]
    resolution = to_uint8(videos[0]).shape[1]
    mean = lambda key: _nanmean([s[key] for s in stats])
    quick = [s["direction_ok"] for s, spec in zip(stats, specs) if spec.speed == "quickly"]
    return {
        "direction_accuracy": mean("direction_ok"),
        "direction_accuracy_quick": float(np.mean(quick)) if quick else float("nan"),
        "displacement": mean("displacement"),
        "displacement_along_prompt": mean("along"),
        "expected_displacement": float(np.mean([SPEEDS[s.speed] * resolution * (num_frames - 1) for s in specs])),
        "track_residual": mean("track_residual"),
        "mask_iou": mean("mask_iou"),
        "area_cv": mean("area_cv"),
        "object_found": mean("object_found"),
        "colour_accuracy": mean("colour_ok"),
        "background_accuracy": mean("background_ok"),
    }


def monitor_scenes(count: int, seed: int = 1234, num_frames: int = 8) -> list[SceneSpec]:
    """`count` base-world scenes whose directions cycle left, right, up, down, so every direction is probed."""
    rng = np.random.default_rng(seed)
    directions = list(DIRECTIONS)
    scenes = []
    while len(scenes) < count:
        spec = sample_scene(rng, num_frames)
        if spec.direction == directions[len(scenes) % len(directions)]:
            scenes.append(spec)
    return scenes


@torch.no_grad()
def sample_videos(
    pipe,
    specs: list[SceneSpec],
    num_frames: int,
    resolution: int,
    steps: int = 15,
    guidance_scale: float = 4.0,
    seed: int = 0,
) -> np.ndarray:
    """uint8 (N, F, H, W, 3) videos from an AnimateDiff pipeline for the scenes' captions."""
    out = pipe(
        prompt=[caption(s) for s in specs],
        num_frames=num_frames,
        height=resolution,
        width=resolution,
        num_inference_steps=steps,
        guidance_scale=guidance_scale,
        output_type="np",
        generator=torch.Generator().manual_seed(seed),
    )
    return to_uint8(out.frames)


def monitor(
    pipe,
    num_videos: int = 12,
    num_frames: int = 8,
    resolution: int = 32,
    steps: int = 15,
    guidance_scale: float = 4.0,
    seed: int = 0,
) -> dict:
    """Sample `num_videos` prompts and score motion direction, distance, consistency and appearance."""
    specs = monitor_scenes(num_videos, num_frames=num_frames)
    videos = sample_videos(pipe, specs, num_frames, resolution, steps, guidance_scale, seed)
    return summarise(videos, specs)


@torch.no_grad()
def monitor_images(
    pipe, num_images: int = 12, resolution: int = 32, steps: int = 15, guidance_scale: float = 4.0, seed: int = 0
) -> dict:
    """Object presence, colour and background accuracy of a T2I pipeline's images for the monitor's captions."""
    specs = monitor_scenes(num_images)
    images = pipe(
        [caption(s) for s in specs],
        height=resolution,
        width=resolution,
        num_inference_steps=steps,
        guidance_scale=guidance_scale,
        output_type="np",
        generator=torch.Generator().manual_seed(seed),
    ).images
    figures = summarise(to_uint8(images)[:, None], specs)  # one-frame videos
    return {k: figures[k] for k in ("object_found", "colour_accuracy", "background_accuracy")}


@torch.no_grad()
def direction_gap(
    model, scheduler, latents: torch.Tensor, text: torch.Tensor, swapped: torch.Tensor, seed: int = 0
) -> float:
    """How much worse a video denoiser `model(noisy, t, text)` recovers clips (b, c, f, h, w) at high noise
    (t >= 500, where a sample's motion is decided) when their captions name the OPPOSITE direction: relative x0
    error, about 0 while the model ignores the direction word. Cheaper and steadier than sampling."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(latents.shape, generator=generator)
    timesteps = torch.randint(500, scheduler.config.num_train_timesteps, (len(latents),), generator=generator)
    noisy = scheduler.add_noise(latents, noise, timesteps)

    def x0_error(states: torch.Tensor) -> torch.Tensor:
        x0 = predicted_clean(scheduler, noisy, model(noisy, timesteps, states), timesteps)
        return (x0 - latents).pow(2).mean()

    return float(x0_error(swapped) / x0_error(text) - 1)


HELD_OUT_LOOKS = {"star": ("star", None), "crayon": (None, "crayon"), "neon": (None, "neon")}  # (subject, style)


def held_out_pixels(look: str, resolution: int, count: int = 32, seed: int = 99) -> torch.Tensor:
    """(count, 3, h, w) frames in [-1, 1] of a held-out subject or style, which pretraining never shows."""
    subject, style = HELD_OUT_LOOKS[look]
    samples = make_video_dataset(count, seed, 1, resolution, subject=subject, style=style)
    pixels = torch.from_numpy(np.stack([s.pixels[0] for s in samples]))
    return pixels.permute(0, 3, 1, 2).float() / 127.5 - 1.0


@torch.no_grad()
def reconstruction_psnr(vae, pixels: torch.Tensor) -> float:
    """PSNR (dB, peak-to-peak 2) of a VAE's posterior-mean reconstruction of pixels (b, 3, h, w) in [-1, 1]."""
    recon = vae.decode(vae.encode(pixels).latent_dist.mean).sample.clamp(-1, 1)
    return float(10 * torch.log10(4.0 / (recon - pixels).pow(2).mean()))
