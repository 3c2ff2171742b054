"""Generating videos to files: the `generate` verb's library side."""

from __future__ import annotations

from pathlib import Path

import diffusers
import torch

from stillmoving.data.video_io import write_video
from stillmoving.errors import StillMovingError
from stillmoving.pipeline import StillMovingPipeline


def use_scheduler(pipe: StillMovingPipeline, name: str) -> None:
    """Swap in any diffusers scheduler class by name, keeping the model's noise schedule."""
    cls = getattr(diffusers, name, None)
    if cls is None or not hasattr(cls, "from_config") or not name.endswith("Scheduler"):
        raise StillMovingError(f"unknown scheduler {name!r} (e.g. DDIMScheduler, DPMSolverMultistepScheduler)")
    pipe.scheduler = cls.from_config(pipe.scheduler.config)


def output_paths(output: Path, count: int) -> list[Path]:
    """One path as given, or numbered siblings (name_000.mp4, ...) for several videos."""
    if count == 1:
        return [output]
    return [output.with_name(f"{output.stem}_{i:03d}{output.suffix}") for i in range(count)]


def generate_videos(
    pipe: StillMovingPipeline,
    prompts: list[str],
    output: Path,
    motion_scale: float = 0.0,
    negative_prompt: str | None = None,
    num_frames: int = 16,
    height: int = 512,
    width: int = 512,
    steps: int = 25,
    guidance_scale: float = 7.5,
    scheduler: str | None = None,
    seed: int = 0,
    fps: int = 8,
) -> list[Path]:
    """One video per prompt (seed, seed+1, ...), written as mp4, gif or a frames folder by `output`'s suffix."""
    if scheduler:
        use_scheduler(pipe, scheduler)
    written = []
    for i, (prompt, path) in enumerate(zip(prompts, output_paths(Path(output), len(prompts)))):
        frames = pipe(
            prompt,
            negative_prompt=negative_prompt,
            num_frames=num_frames,
            height=height,
            width=width,
            num_inference_steps=steps,
            guidance_scale=guidance_scale,
            motion_scale=motion_scale,
            generator=torch.Generator().manual_seed(seed + i),
            output_type="np",
        ).frames[0]
        written.append(write_video(frames, path, fps=fps))
    return written
