"""Where training latents come from: the user's folders, or samples of the models themselves.

Every source returns latents in diffusion space plus one prompt per item; `PromptBank` turns the
prompts into rows of one text-embedding table encoded once per run.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tqdm.auto import tqdm

from stillmoving.data.frozen import encode_pixels, encode_prompts, to_pixels
from stillmoving.data.video_io import (
    check_images,
    check_length,
    check_videos,
    list_images,
    list_videos,
    read_captions,
    read_image,
    read_video,
)
from stillmoving.errors import StillMovingError


class PromptBank:
    """Unique prompts of a run, each encoded once; items refer to them by row."""

    def __init__(self):
        self.prompts: list[str] = []

    def add(self, prompt: str) -> int:
        if prompt not in self.prompts:
            self.prompts.append(prompt)
        return self.prompts.index(prompt)

    def encode(self, tokenizer, text_encoder) -> torch.Tensor:
        """(P, seq, dim) embeddings, row i for prompt i."""
        return encode_prompts(tokenizer, text_encoder, self.prompts)


def _caption(captions: dict[str, str], path: Path, default: str | None) -> str:
    caption = captions.get(path.name, default)
    if caption is None:
        raise StillMovingError(f"no caption for {path} (add metadata.jsonl or {path.stem}.txt, or pass a prompt)")
    return caption


def check_video_folder(folder: str | Path, num_frames: int, default_prompt: str | None = None) -> None:
    """Every video of `folder` decodes, holds `num_frames` frames and has a caption (or `default_prompt`): what
    `videos_from_folder` needs, checked before any model loads."""
    captions = read_captions(Path(folder))
    for path in check_videos(folder, num_frames):
        _caption(captions, path, default_prompt)


def check_image_folder(folder: str | Path, default_prompt: str | None = None) -> None:
    """Every image of `folder` decodes and has a caption (or `default_prompt`): what `images_from_folder` needs,
    checked before any model loads."""
    captions = read_captions(Path(folder))
    for path in check_images(folder):
        _caption(captions, path, default_prompt)


def videos_from_folder(
    folder: str | Path, vae, num_frames: int, height: int, width: int, default_prompt: str | None = None
) -> tuple[list[torch.Tensor], list[str]]:
    """Latents (C, F, h, w) of the first `num_frames` frames of every video in `folder`, with captions."""
    folder = Path(folder)
    captions = read_captions(folder)
    latents, prompts = [], []
    for path in tqdm(list_videos(folder), desc="encoding videos", leave=False):
        frames = read_video(path, num_frames)  # the clip only: a long video is not held whole
        check_length(path, frames, num_frames)
        encoded = encode_pixels(vae, to_pixels(frames, height, width))  # (f, c, h, w)
        latents.append(encoded.permute(1, 0, 2, 3))
        prompts.append(_caption(captions, path, default_prompt))
    return latents, prompts


def images_from_folder(
    folder: str | Path, vae, height: int, width: int, default_prompt: str | None = None
) -> tuple[list[torch.Tensor], list[str]]:
    """Latents (C, h, w) of every image in `folder` (one VAE encode each), with captions."""
    folder = Path(folder)
    captions = read_captions(folder)
    paths = list_images(folder)
    pixels = torch.cat([to_pixels(read_image(p), height, width) for p in paths])
    prompts = [_caption(captions, p, default_prompt) for p in paths]
    return list(encode_pixels(vae, pixels)), prompts


def _generators(seed: int, count: int) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(seed + i) for i in range(count)]


@torch.no_grad()
def sample_videos(
    pipe,
    prompts: list[str],
    num_frames: int,
    height: int,
    width: int,
    seed: int,
    steps: int = 25,
    guidance_scale: float = 7.5,
    batch_size: int = 4,
) -> list[torch.Tensor]:
    """Latents (C, F, h, w) of one video per prompt from an AnimateDiff pipeline, in batches."""
    latents = []
    for start in tqdm(range(0, len(prompts), batch_size), desc="sampling videos", leave=False):
        batch = prompts[start : start + batch_size]
        out = pipe(
            batch,
            num_frames=num_frames,
            height=height,
            width=width,
            num_inference_steps=steps,
            guidance_scale=guidance_scale,
            generator=_generators(seed + start, len(batch)),
            output_type="latent",
        )
        latents.extend(out.frames.float().cpu())  # (b, c, f, h, w) -> b x (c, f, h, w)
    return latents


@torch.no_grad()
def sample_images(
    pipe,
    prompts: list[str],
    height: int,
    width: int,
    seed: int,
    steps: int = 25,
    guidance_scale: float = 7.5,
    batch_size: int = 8,
) -> list[torch.Tensor]:
    """Latents (C, h, w) of one image per prompt from a Stable Diffusion pipeline, in batches."""
    latents = []
    for start in tqdm(range(0, len(prompts), batch_size), desc="sampling images", leave=False):
        batch = prompts[start : start + batch_size]
        out = pipe(
            batch,
            height=height,
            width=width,
            num_inference_steps=steps,
            guidance_scale=guidance_scale,
            generator=_generators(seed + start, len(batch)),
            output_type="latent",
        )
        latents.extend(out.images.float().cpu())
    return latents


@torch.no_grad()
def decode_latents(vae, latents: torch.Tensor) -> torch.Tensor:
    """Images (N, 3, H, W) in [0, 1] from diffusion-space latents (N, C, h, w)."""
    images = vae.decode(latents.to(device=vae.device, dtype=vae.dtype) / vae.config.scaling_factor).sample
    return (images.float().cpu() / 2 + 0.5).clamp(0, 1)
