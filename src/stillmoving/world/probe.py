"""Monitor the world's models while they train and after: sampled videos scored against their prompts.

Every figure rests on the world's one oracle, `stillmoving.world.metrics`: its segmentation (`metrics.segment`:
the object against a background fitted to each frame's border, as a soft mask and a centroid per frame) and its
motion estimate (`metrics.estimate_motion`: the Theil-Sen velocity of the centroid track, and the direction it
points in, "static" below the oracle's speed threshold). From them come the motion's distance and direction, the
track's distance from a straight line, the object's frame-to-frame overlap (temporal consistency), its colour and
the background's name; `summarise` averages them over videos.

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
from stillmoving.world import metrics
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
MIN_COLOUR_PIXELS = 2  # confident object pixels below which a frame's object has no colour


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


def track_residual(track: np.ndarray, velocity: np.ndarray) -> float:
    """RMS distance (px) of a centroid track (F, 2) from the straight line of slope `velocity` (px/frame)
    through it; frames without an object are left out. NaN without a velocity."""
    if not np.isfinite(velocity).all():
        return float("nan")
    present = ~np.isnan(track[:, 0])
    offsets = track[present] - np.flatnonzero(present)[:, None] * velocity  # where each frame's line starts
    return float(np.sqrt(((offsets - offsets.mean(0)) ** 2).sum(1).mean()))


def mask_iou(weight: np.ndarray) -> float:
    """Mean IoU of consecutive frames' hard object masks (F, H, W): 1 for a still object, about 0
    for frames that are independent samples."""
    masks = weight > 0.5
    scores = [(a & b).sum() / max((a | b).sum(), 1) for a, b in itertools.pairwise(masks)]
    return float(np.mean(scores)) if scores else 1.0


def nearest(rgb: np.ndarray, palette: dict[str, tuple[int, int, int]]) -> str:
    return min(palette, key=lambda name: float(np.linalg.norm(np.array(palette[name], np.float32) - rgb)))


def object_colour(frame: np.ndarray, weight: np.ndarray) -> np.ndarray | None:
    """Body colour of one frame (H, W, 3) given its object mask (H, W) (`metrics.segment`'s weight): the
    brightest tenth of the confident object pixels, so the dark stripes and dots of a texture and the blended
    edges do not pull it down."""
    pixels = frame[weight > 0.9].astype(np.float32)
    if len(pixels) < MIN_COLOUR_PIXELS:
        return None
    bright = pixels[pixels.sum(1) >= np.percentile(pixels.sum(1), 90)]
    return bright.mean(0)


def background_name(frame: np.ndarray, background: np.ndarray | None = None) -> str:
    """Nearest world background of one frame (H, W, 3), comparing the top and bottom quarters of the oracle's
    background fit (`metrics.segment`; pass the frame's (H, W, 3) `Segmentation.background` to reuse one)."""
    if background is None:
        background = metrics.segment(frame[None]).background[0]
    rows = background[:, 0]  # (h, 3)
    top, bottom = rows[: len(rows) // 4].mean(0), rows[-(len(rows) // 4) :].mean(0)
    return min(BACKGROUNDS, key=lambda n: float(np.linalg.norm(np.subtract(BACKGROUNDS[n], (top, bottom)))))


def video_stats(frames: np.ndarray, spec: SceneSpec) -> dict:
    """Everything measured on one video (F, H, W, 3) uint8, against the scene its prompt describes."""
    seg = metrics.segment(frames)
    motion = metrics.estimate_motion(frames, seg)
    area = seg.weight.sum(axis=(1, 2))
    colour = object_colour(frames[0], seg.weight[0])
    return {
        "direction_ok": motion.direction == spec.direction,
        "displacement": float(np.linalg.norm(motion.velocity) * (len(frames) - 1)),
        "along": float(np.dot(DIRECTIONS[spec.direction], motion.velocity) * (len(frames) - 1)),
        "track_residual": track_residual(motion.track, motion.velocity),
        "mask_iou": mask_iou(seg.weight),
        "area_cv": float(area.std() / max(area.mean(), 1e-6)),
        "object_found": bool(np.isfinite(motion.track).all()),
        "colour_ok": colour is not None and nearest(colour, COLORS) == spec.color,
        "background_ok": background_name(frames[0], seg.background[0]) == spec.background,
    }


def _nanmean(values) -> float:
    kept = [float(v) for v in values if not np.isnan(v)]
    return float(np.mean(kept)) if kept else float("nan")


def summarise(videos, specs: list[SceneSpec]) -> dict:
    """Averages of `video_stats` over videos (N, F, H, W, 3). A video whose object is missing from a frame fails
    `object_found`; one the oracle finds static or without a track fails `direction_accuracy`; distances it cannot
    measure (the object in fewer than two frames) are left out of their averages. `expected_displacement` is what
    the prompts' speeds ask for."""
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
def monitor_videos(
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
    videos = monitor_videos(pipe, specs, num_frames, resolution, steps, guidance_scale, seed)
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
