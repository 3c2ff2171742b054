"""Generating videos to files: the `generate` verb's library side."""

from __future__ import annotations

from pathlib import Path

import torch

from stillmoving.conditioning import Conditioning
from stillmoving.data.video_io import write_video
from stillmoving.errors import StillMovingError
from stillmoving.few_step import scheduler_from
from stillmoving.pipeline import StillMovingMixin, StillMovingPipeline
from stillmoving.validation import at_least


def use_scheduler(pipe: StillMovingPipeline, name: str) -> None:
    """Swap in any diffusers scheduler class by name, or a few-step preset (`lcm`, `lightning`: `few_step`),
    keeping the model's noise schedule."""
    pipe.scheduler = scheduler_from(name, pipe.scheduler.config)


def check_long_video(
    num_frames: int, context_length: int | None, context_stride: int, free_init_iterations: int | None
) -> None:
    """FreeNoise's window and stride, and FreeInit's passes, before any model loads."""
    if context_length is not None:
        at_least("--context-length", context_length, 1)
        at_least("--context-stride", context_stride, 1)
        if context_stride > context_length:
            raise StillMovingError(
                f"--context-stride {context_stride} is longer than --context-length {context_length}: "
                "windows would leave frames out"
            )
        if context_length > num_frames:
            raise StillMovingError(
                f"--context-length {context_length} is more than the {num_frames} frames asked for; "
                "drop it (one window) or ask for more frames"
            )
    if free_init_iterations is not None:
        at_least("--free-init-iterations", free_init_iterations, 1)


def use_long_video(
    pipe: StillMovingMixin, context_length: int | None, context_stride: int = 4, free_init_iterations: int | None = None
) -> None:
    """diffusers' FreeNoise (sliding context windows of `context_length` frames, `context_stride` apart; the motion
    adapter stays usable, `MotionLoRA.lifted`) and FreeInit (`free_init_iterations` sampling passes)."""
    if context_length is not None:
        pipe.enable_free_noise(context_length=context_length, context_stride=context_stride)
    if free_init_iterations is not None:
        pipe.enable_free_init(num_iters=free_init_iterations)


def output_paths(output: Path, count: int) -> list[Path]:
    """One path as given, or numbered siblings (name_000.mp4, ...) for several videos."""
    if count == 1:
        return [output]
    return [output.with_name(f"{output.stem}_{i:03d}{output.suffix}") for i in range(count)]


def sampling_arguments(height: int, width: int, steps: int, guidance_scale: float, seed: int) -> dict:
    """A diffusers pipeline's arguments for one sample at `seed`: its size, steps and guidance, a CPU generator seeded
    with `seed`, and numpy output (what generate, customize's validation, compare and the demo all pass)."""
    return dict(
        height=height,
        width=width,
        num_inference_steps=steps,
        guidance_scale=guidance_scale,
        generator=torch.Generator().manual_seed(seed),
        output_type="np",
    )


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
    conditioning: Conditioning | None = None,
) -> list[Path]:
    """One video per prompt (seed, seed+1, ...), written as mp4, gif or a frames folder by `output`'s suffix.
    With `conditioning`, `pipe` is the matching variant (`conditioning.conditional_pipeline`)."""
    if scheduler:
        use_scheduler(pipe, scheduler)
    extra = conditioning.call_kwargs() if conditioning is not None else {}
    if "video" not in extra:  # video-to-video takes its frame count from the input video
        extra["num_frames"] = num_frames
    written = []
    for i, (prompt, path) in enumerate(zip(prompts, output_paths(Path(output), len(prompts)))):
        frames = pipe(
            prompt=prompt,
            negative_prompt=negative_prompt,
            **extra,
            motion_scale=motion_scale,
            **sampling_arguments(height, width, steps, guidance_scale, seed + i),
        ).frames[0]
        written.append(write_video(frames, path, fps=fps))
    return written
