"""The models and the batch a bench preset runs on: random or shipped weights, nothing downloaded."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass

import torch
from diffusers import AnimateDiffPipeline, AutoencoderKL, DDIMScheduler, MotionAdapter, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

from stillmoving.data.frozen import encode_pixels, encode_prompts
from stillmoving.formats import SHIPPED_CONFIGS
from stillmoving.loading import load_t2v
from stillmoving.world.architectures import build_pipeline
from stillmoving.world.tokenizer import build_tokenizer
from stillmoving.world.weights import shipped_model


@dataclass(frozen=True)
class Preset:
    """A model size to benchmark and the clips it trains on."""

    model: str  # "tiny": the tests' architecture; "world": the shipped weights; "sd15": random SD1.5 + mm_sd_v15_v2
    num_frames: int  # frames per training video
    resolution: int  # square frames, in pixels


PRESETS: dict[str, Preset] = {
    "tiny": Preset("tiny", num_frames=4, resolution=32),  # the shapes tests/conftest.py generates at
    "world": Preset("world", num_frames=8, resolution=32),  # the shipped world T2V as it was trained
    "sd15-256": Preset("sd15", num_frames=16, resolution=256),
    "sd15-512": Preset("sd15", num_frames=16, resolution=512),  # AnimateDiff v2's own training size
}
WORDS = ["a", "sks", "dog", "running", "on", "the", "beach", "photo", "of"]  # tokenizer vocabulary of random models
IMAGE_PROMPT, PRIOR_PROMPT = "a photo of a sks dog", "a dog running on the beach"


def sd15_pipeline(tokenizer_dir: str) -> AnimateDiffPipeline:
    """SD1.5 (shipped configs) inflated with mm_sd_v15_v2-shaped motion modules, random weights.

    v2, not v1: a 32-frame positional table and a motion mid block (mm_sd_v15 has 24 and no mid block).
    The tokenizer is a small offline CLIPTokenizer; its ids index the full 49408-token embedding.
    """

    def config(cls, name):
        return cls.load_config(str(SHIPPED_CONFIGS / name))

    return AnimateDiffPipeline(
        vae=AutoencoderKL.from_config(config(AutoencoderKL, "vae")),
        text_encoder=CLIPTextModel(CLIPTextConfig.from_pretrained(str(SHIPPED_CONFIGS / "text_encoder"))),
        tokenizer=build_tokenizer(WORDS, tokenizer_dir, max_length=77),
        unet=UNet2DConditionModel.from_config(config(UNet2DConditionModel, "unet")),
        motion_adapter=MotionAdapter.from_config(config(MotionAdapter, "motion_adapter")),
        scheduler=DDIMScheduler.from_config(config(DDIMScheduler, "scheduler")),
    )


def build_video_model(preset: Preset, device: torch.device, seed: int) -> AnimateDiffPipeline:
    """The preset's T2V in fp32 on `device` (random weights are initialised there, which is fast on a GPU)."""
    torch.manual_seed(seed)
    if preset.model == "world":
        pipe = load_t2v(shipped_model())
    else:
        with tempfile.TemporaryDirectory() as tokenizer_dir, torch.device(device):
            if preset.model == "tiny":
                pipe = build_pipeline("tiny", WORDS, tokenizer_dir, resolution=preset.resolution, seed=seed)
            else:
                pipe = sd15_pipeline(tokenizer_dir)
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@dataclass
class Batch:
    """One step's inputs, on the device: pixels for the straightforward step, cached latents for ours."""

    images: torch.Tensor  # (b, 3, H, W) in [-1, 1]: the customized T2I's images
    prior_pixels: torch.Tensor  # (b, f, 3, H, W): prior-preservation videos
    image_latents: torch.Tensor  # (b, c, h, w), encoded once
    prior_latents: torch.Tensor  # (b, c, f, h, w), encoded once
    prompts: list[str]  # one per video
    text: torch.Tensor  # (b, seq, dim), encoded once


def make_batch(pipe: AnimateDiffPipeline, preset: Preset, batch_size: int, device: torch.device) -> Batch:
    """Random pixels, encoded once into the latent and text caches the training stages read."""
    size, frames = preset.resolution, preset.num_frames
    images = torch.rand(batch_size, 3, size, size) * 2 - 1
    prior_pixels = torch.rand(batch_size, frames, 3, size, size) * 2 - 1
    prior_latents = encode_pixels(pipe.vae, prior_pixels.flatten(0, 1)).unflatten(0, (batch_size, frames))
    prompts = [IMAGE_PROMPT] * batch_size
    return Batch(
        images=images.to(device),
        prior_pixels=prior_pixels.to(device),
        image_latents=encode_pixels(pipe.vae, images).to(device),
        prior_latents=prior_latents.transpose(1, 2).contiguous().to(device),  # (b, c, f, h, w)
        prompts=prompts,
        text=encode_prompts(pipe.tokenizer, pipe.text_encoder, prompts).to(device),
    )
