"""The models and the batch a bench preset runs on: random or shipped weights, nothing downloaded."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import (
    AnimateDiffPipeline,
    AnimateDiffSDXLPipeline,
    AutoencoderKL,
    DDIMScheduler,
    DiffusionPipeline,
    MotionAdapter,
    TextToVideoSDPipeline,
    UNet2DConditionModel,
    UNet3DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from stillmoving.backends import backend_of
from stillmoving.data.frozen import encode_pixels
from stillmoving.formats import SHIPPED_CONFIGS, SHIPPED_SDXL_CONFIGS
from stillmoving.loading import load_t2v
from stillmoving.world.architectures import build_pipeline
from stillmoving.world.tokenizer import build_tokenizer
from stillmoving.world.weights import shipped_model


@dataclass(frozen=True)
class Preset:
    """A model size to benchmark and the clips it trains on."""

    model: str  # "tiny": the tests' architecture; "world": the shipped weights; "sd15": random SD1.5 + mm_sd_v15_v2;
    # "sd15-v3": + v3_sd15_mm; "sdxl": SDXL + mm_sdxl_v10_beta; "modelscope": ModelScope/ZeroScope's UNet3D
    num_frames: int  # frames per training video
    resolution: int  # square frames, in pixels (the height when `width` is given)
    width: int = 0  # frames' width in pixels where they are not square (0: square)

    @property
    def frame_width(self) -> int:
        return self.width or self.resolution


PRESETS: dict[str, Preset] = {
    "tiny": Preset("tiny", num_frames=4, resolution=32),  # the shapes tests/conftest.py generates at
    "world": Preset("world", num_frames=8, resolution=32),  # the shipped world T2V as it was trained
    "sd15-256": Preset("sd15", num_frames=16, resolution=256),
    "sd15-512": Preset("sd15", num_frames=16, resolution=512),  # AnimateDiff v2's own training size
    # Issue 17's families at their real sizes: timed on a GPU (--device cuda), counted with --device meta
    "animatediff-v3-512": Preset("sd15-v3", num_frames=16, resolution=512),  # SD1.5 + v3_sd15_mm (no mid block)
    "animatediff-sdxl-1024": Preset("sdxl", num_frames=16, resolution=1024),  # SDXL + mm_sdxl_v10_beta
    "modelscope-256": Preset("modelscope", num_frames=16, resolution=256),  # text-to-video-ms-1.7b (ZeroScope's arch)
    # cerspense/zeroscope_v2_576w: the same UNet3DConditionModel config, fine-tuned at 24 frames of 576x320
    "zeroscope-576w": Preset("modelscope", num_frames=24, resolution=320, width=576),
}
# stabilityai/stable-diffusion-xl-base-1.0 unet/config.json (2,567,463,684 parameters).
SDXL_UNET = dict(
    addition_embed_type="text_time",
    addition_embed_type_num_heads=64,
    addition_time_embed_dim=256,
    attention_head_dim=[5, 10, 20],
    block_out_channels=[320, 640, 1280],
    cross_attention_dim=2048,
    down_block_types=["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    up_block_types=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    layers_per_block=2,
    projection_class_embeddings_input_dim=2816,
    sample_size=128,
    transformer_layers_per_block=[1, 2, 10],
    use_linear_projection=True,
)
# guoyww/animatediff-motion-adapter-sdxl-beta config.json (mm_sdxl_v10_beta: 236,779,200 parameters).
SDXL_MOTION = dict(
    block_out_channels=[320, 640, 1280],
    motion_layers_per_block=2,
    motion_num_attention_heads=8,
    motion_norm_num_groups=32,
    motion_max_seq_length=32,
    use_motion_mid_block=False,
)
# damo-vilab/text-to-video-ms-1.7b unet/config.json; ZeroScope v2 (zeroscope_v2_576w, _XL) fine-tunes the same
# UNet3DConditionModel (its unet/config.json has these entries).
MODELSCOPE_UNET = dict(
    attention_head_dim=64,
    block_out_channels=[320, 640, 1280, 1280],
    cross_attention_dim=1024,
    down_block_types=["CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "DownBlock3D"],
    up_block_types=["UpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D"],
    downsample_padding=1,
    layers_per_block=2,
    sample_size=32,
)
# damo-vilab/text-to-video-ms-1.7b text_encoder/config.json: OpenCLIP ViT-H's text tower, as SD2.x's (340,387,840
# parameters); ZeroScope v2 keeps it.
MODELSCOPE_TEXT = dict(
    hidden_act="gelu",
    hidden_size=1024,
    intermediate_size=4096,
    num_attention_heads=16,
    num_hidden_layers=23,
    max_position_embeddings=77,
    projection_dim=512,
    vocab_size=49408,
)
# Its scheduler: DDIM over SD's scaled-linear betas (AnimateDiff's shipped DDIM config uses linear ones).
MODELSCOPE_SCHEDULER = {"beta_schedule": "scaled_linear"}
V3_MOTION = {"use_motion_mid_block": False}  # v3_sd15_mm: v2's shapes without the motion mid block


def video_unet(model: str) -> torch.nn.Module:
    """The video UNet of a preset's family, random weights (build it under `torch.device("meta")` to count)."""
    from diffusers import UNetMotionModel

    if model == "modelscope":
        return UNet3DConditionModel(**MODELSCOPE_UNET)
    if model == "sdxl":
        return UNetMotionModel.from_unet2d(UNet2DConditionModel(**SDXL_UNET), MotionAdapter(**SDXL_MOTION))
    motion = MotionAdapter.load_config(str(SHIPPED_CONFIGS / "motion_adapter"))
    unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(str(SHIPPED_CONFIGS / "unet")))
    return UNetMotionModel.from_unet2d(unet, MotionAdapter.from_config({**motion, **_motion_overrides(model)}))


def _motion_overrides(model: str) -> dict:
    return V3_MOTION if model == "sd15-v3" else {}


WORDS = ["a", "sks", "dog", "running", "on", "the", "beach", "photo", "of"]  # tokenizer vocabulary of random models
IMAGE_PROMPT, PRIOR_PROMPT = "a photo of a sks dog", "a dog running on the beach"


def _config(cls, folder: Path) -> dict:
    return cls.load_config(str(folder))


def sd15_pipeline(tokenizer_dir: str, model: str = "sd15") -> AnimateDiffPipeline:
    """SD1.5 (shipped configs) inflated with mm_sd_v15_v2-shaped motion modules, random weights.

    v2, not v1: a 32-frame positional table and a motion mid block (mm_sd_v15 has 24 and no mid block).
    The tokenizer is a small offline CLIPTokenizer; its ids index the full 49408-token embedding.
    """
    return AnimateDiffPipeline(
        vae=AutoencoderKL.from_config(_config(AutoencoderKL, SHIPPED_CONFIGS / "vae")),
        text_encoder=CLIPTextModel(CLIPTextConfig.from_pretrained(str(SHIPPED_CONFIGS / "text_encoder"))),
        tokenizer=build_tokenizer(WORDS, tokenizer_dir, max_length=77),
        unet=UNet2DConditionModel.from_config(_config(UNet2DConditionModel, SHIPPED_CONFIGS / "unet")),
        motion_adapter=MotionAdapter.from_config(
            {**_config(MotionAdapter, SHIPPED_CONFIGS / "motion_adapter"), **_motion_overrides(model)}
        ),
        scheduler=DDIMScheduler.from_config(_config(DDIMScheduler, SHIPPED_CONFIGS / "scheduler")),
    )


def sdxl_pipeline(tokenizer_dir: str) -> AnimateDiffSDXLPipeline:
    """SDXL base 1.0 inflated with mm_sdxl_v10_beta-shaped motion modules, random weights: its UNet as `video_unet`
    builds it, its VAE, both text encoders (CLIP ViT-L, OpenCLIP ViT-bigG with the pooled projection) and the DDIM
    scheduler from the shipped SDXL configs; two small offline tokenizers."""
    configs = SHIPPED_SDXL_CONFIGS
    tokenizers = [
        build_tokenizer(WORDS, Path(tokenizer_dir) / name, max_length=77) for name in ("tokenizer", "tokenizer_2")
    ]
    return AnimateDiffSDXLPipeline(
        vae=AutoencoderKL.from_config(_config(AutoencoderKL, configs / "vae")),
        text_encoder=CLIPTextModel(CLIPTextConfig.from_pretrained(str(configs / "text_encoder"))),
        text_encoder_2=CLIPTextModelWithProjection(CLIPTextConfig.from_pretrained(str(configs / "text_encoder_2"))),
        tokenizer=tokenizers[0],
        tokenizer_2=tokenizers[1],
        unet=UNet2DConditionModel(**SDXL_UNET),
        motion_adapter=MotionAdapter(**SDXL_MOTION),
        scheduler=DDIMScheduler.from_config(_config(DDIMScheduler, configs / "scheduler")),
    )


def modelscope_pipeline(tokenizer_dir: str) -> TextToVideoSDPipeline:
    """ModelScope text-to-video-ms-1.7b (ZeroScope's architecture), random weights: its UNet3DConditionModel, SD's
    VAE (the shipped SD1.5 config, which ModelScope's equals), OpenCLIP ViT-H's text tower, DDIM; a small tokenizer."""
    scheduler = {**_config(DDIMScheduler, SHIPPED_CONFIGS / "scheduler"), **MODELSCOPE_SCHEDULER}
    return TextToVideoSDPipeline(
        vae=AutoencoderKL.from_config(_config(AutoencoderKL, SHIPPED_CONFIGS / "vae")),
        text_encoder=CLIPTextModel(CLIPTextConfig(**MODELSCOPE_TEXT)),
        tokenizer=build_tokenizer(WORDS, tokenizer_dir, max_length=77),
        unet=UNet3DConditionModel(**MODELSCOPE_UNET),
        scheduler=DDIMScheduler.from_config(scheduler),
    )


# (preset, tokenizer folder, seed) -> the preset's video pipeline with random weights, built on the current device
Builder = Callable[[Preset, str, int], DiffusionPipeline]
BUILDERS: dict[str, Builder] = {  # by `Preset.model`; "world" loads the shipped weights instead
    "tiny": lambda preset, folder, seed: build_pipeline("tiny", WORDS, folder, resolution=preset.resolution, seed=seed),
    "sd15": lambda preset, folder, seed: sd15_pipeline(folder, "sd15"),
    "sd15-v3": lambda preset, folder, seed: sd15_pipeline(folder, "sd15-v3"),
    "sdxl": lambda preset, folder, seed: sdxl_pipeline(folder),
    "modelscope": lambda preset, folder, seed: modelscope_pipeline(folder),
}


def build_video_model(preset: Preset, device: torch.device, seed: int) -> DiffusionPipeline:
    """The preset's T2V in fp32 on `device` (random weights are initialised there, which is fast on a GPU): an
    AnimateDiffPipeline, AnimateDiffSDXLPipeline or TextToVideoSDPipeline, which the bench drives through its
    family's backend (`backends.backend_of`), as training does."""
    torch.manual_seed(seed)
    if preset.model == "world":
        pipe = load_t2v(shipped_model())
    else:
        with tempfile.TemporaryDirectory() as tokenizer_dir, torch.device(device):
            pipe = BUILDERS[preset.model](preset, tokenizer_dir, seed)
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
    text: torch.Tensor  # (b, seq, dim), encoded once (`Backend.encode_prompts`' rows)


def make_batch(pipe: DiffusionPipeline, preset: Preset, batch_size: int, device: torch.device) -> Batch:
    """Random pixels, encoded once into the latent and text caches the training stages read (the text as the
    family's backend encodes it for training: SDXL's rows carry the pooled embedding too)."""
    size, frames = (preset.resolution, preset.frame_width), preset.num_frames
    images = torch.rand(batch_size, 3, *size) * 2 - 1
    prior_pixels = torch.rand(batch_size, frames, 3, *size) * 2 - 1
    prior_latents = encode_pixels(pipe.vae, prior_pixels.flatten(0, 1)).unflatten(0, (batch_size, frames))
    prompts = [IMAGE_PROMPT] * batch_size
    return Batch(
        images=images.to(device),
        prior_pixels=prior_pixels.to(device),
        image_latents=encode_pixels(pipe.vae, images).to(device),
        prior_latents=prior_latents.transpose(1, 2).contiguous().to(device),  # (b, c, f, h, w)
        prompts=prompts,
        text=backend_of(pipe).encode_prompts(prompts).to(device),
    )


def meta_batch(pipe: DiffusionPipeline, preset: Preset, text: torch.Tensor) -> Batch:
    """One video's inputs at the preset's frames and size on the meta device, for counting FLOPs; `text`: the text
    rows of `IMAGE_PROMPT` (`steps.text_rows`, computed on the meta device)."""
    frames, size = preset.num_frames, (preset.resolution, preset.frame_width)
    latent = (pipe.vae.config.latent_channels, *(s // pipe.vae_scale_factor for s in size))
    with torch.device("meta"):
        return Batch(
            images=torch.empty(1, 3, *size),
            prior_pixels=torch.empty(1, frames, 3, *size),
            image_latents=torch.empty(1, *latent),
            prior_latents=torch.empty(1, latent[0], frames, *latent[1:]),
            prompts=[IMAGE_PROMPT],
            text=text,
        )
