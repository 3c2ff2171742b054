"""Frozen videos and the latent caches the training stages read (docs/method.md, stages 1 and 2).

A frozen video is one image repeated F times. The image is VAE-encoded once and its latent repeated
along the frame axis, never encoded F times. Every image, frame and prompt of a run is encoded once,
at the start, into these caches; the training loops only ever touch latents and text embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image


def frozen_video(latents: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Repeat image latents (B, C, h, w) into frozen-video latents (B, C, F, h, w)."""
    return latents.unsqueeze(2).expand(-1, -1, num_frames, -1, -1).contiguous()


def random_frozen_frames(
    videos: torch.Tensor, num_frames: int, generators: list[torch.Generator] | None = None
) -> torch.Tensor:
    """Stage-1 data: ONE random frame of each video (b, c, f, h, w), repeated into frozen videos (b, c, F, h, w).

    Drawn in the training step (from the global RNG, or one generator per item), not in the dataset:
    accelerate's loaders fetch one batch ahead, which would move draws made there across checkpoints.
    """
    if generators is None:
        frames = torch.randint(videos.shape[2], (videos.shape[0],), device=videos.device)
    else:
        frames = torch.cat([torch.randint(videos.shape[2], (1,), generator=g) for g in generators]).to(videos.device)
    picked = videos[torch.arange(videos.shape[0], device=videos.device), :, frames]  # (b, c, h, w)
    return frozen_video(picked, num_frames)


@torch.no_grad()
def reencoded(vae, latents: list[torch.Tensor], num_frames: int = 1, pixels_per_frame: float = 0.0, generator=None):
    """Each image latent (C, h, w) decoded to pixels and encoded again (C, h, w): the latent of the image, as a
    T2I is trained on, not the sampler's own latent, which holds detail the decoder drops. With `num_frames` > 1, a
    moving still (C, F, h, w): the image shifted sideways by round(f x pixels_per_frame) pixels in frame f, wrapping
    around, left or right at random (`generator`), every frame encoded."""
    out = []
    for latent in latents:
        image = vae.decode(latent[None].to(device=vae.device, dtype=vae.dtype) / vae.config.scaling_factor).sample
        if num_frames == 1:
            out.append(encode_pixels(vae, image.clamp(-1, 1).float())[0])
            continue
        sign = 1 if torch.rand((), generator=generator) < 0.5 else -1
        frames = torch.cat([torch.roll(image, sign * round(f * pixels_per_frame), dims=-1) for f in range(num_frames)])
        out.append(encode_pixels(vae, frames.clamp(-1, 1).float()).permute(1, 0, 2, 3).contiguous())
    return out


def to_pixels(frames: np.ndarray, height: int, width: int) -> torch.Tensor:
    """uint8 (F, H, W, 3) or (H, W, 3) -> float (F, 3, height, width) in [-1, 1], centre-cropped and resized."""
    frames = frames[None] if frames.ndim == 3 else frames
    out = []
    for frame in frames:
        image = Image.fromarray(frame)
        scale = max(height / image.height, width / image.width)
        size = (max(width, round(image.width * scale)), max(height, round(image.height * scale)))
        image = image.resize(size, Image.BICUBIC) if size != image.size else image
        left, top = (image.width - width) // 2, (image.height - height) // 2
        out.append(np.asarray(image.crop((left, top, left + width, top + height))))
    pixels = torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float()  # (f, 3, h, w)
    return pixels / 127.5 - 1.0


@torch.no_grad()
def encode_pixels(vae, pixels: torch.Tensor, batch_size: int = 16) -> torch.Tensor:
    """VAE latents (N, C, h, w) of pixels (N, 3, H, W) in [-1, 1], in diffusion space (times scaling_factor).

    The posterior mean, not a sample, so a cached latent is the same on every run.
    """
    chunks = []
    for start in range(0, len(pixels), batch_size):
        batch = pixels[start : start + batch_size].to(device=vae.device, dtype=vae.dtype)
        chunks.append(vae.encode(batch).latent_dist.mean * vae.config.scaling_factor)
    return torch.cat(chunks).float().cpu()


@torch.no_grad()
def encode_prompts(tokenizer, text_encoder, prompts: list[str]) -> torch.Tensor:
    """CLIP last hidden states (P, seq, dim) for each prompt, padded to the tokenizer's max length."""
    tokens = tokenizer(
        prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
    )
    return text_encoder(tokens.input_ids.to(text_encoder.device))[0].float().cpu()


@dataclass
class LatentClips:
    """Cached latents of images or videos with an index into a prompt-embedding table."""

    latents: list[torch.Tensor]  # each (C, h, w) for an image or (C, F, h, w) for a video
    prompt_ids: list[int]  # row of the run's prompt-embedding table for each item

    def __len__(self) -> int:
        return len(self.latents)


class FrozenImageDataset(torch.utils.data.Dataset):
    """Spatial-adapter data: each cached image latent becomes a frozen video."""

    def __init__(self, images: LatentClips, num_frames: int):
        self.images = images
        self.num_frames = num_frames

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        latent = self.images.latents[index][None]  # (1, c, h, w)
        return {"latents": frozen_video(latent, self.num_frames)[0], "prompt_id": self.images.prompt_ids[index]}


class VideoClipDataset(torch.utils.data.Dataset):
    """Cached video latents (C, F, h, w) as they are: prior-preservation videos, or stage-1 source videos."""

    def __init__(self, videos: LatentClips):
        self.videos = videos

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index: int) -> dict:
        return {"latents": self.videos.latents[index], "prompt_id": self.videos.prompt_ids[index]}
