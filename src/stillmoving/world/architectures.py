"""Stable-Diffusion-shaped model presets built only from real diffusers/transformers classes.

`build_pipeline("tiny", ...)` gives a seeded AnimateDiff pipeline (CLIPTokenizer, CLIPTextModel,
AutoencoderKL, UNet2DConditionModel inflated with a MotionAdapter) small enough for unit tests; the
embedded world's preset lives beside it so that every preset exercises the code paths of SD1.5 +
AnimateDiff.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import AnimateDiffPipeline, AutoencoderKL, DDIMScheduler, MotionAdapter, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

from stillmoving.world.tokenizer import build_tokenizer


@dataclass(frozen=True)
class Architecture:
    """Sizes of every component; field names follow the diffusers/transformers configs they feed."""

    unet_channels: tuple[int, ...]  # UNet block_out_channels, one per resolution level
    cross_attn_levels: tuple[bool, ...]  # which levels carry spatial transformers (SD1.5: all but the deepest)
    layers_per_block: int  # ResNet (and transformer) layers per down block; up blocks have one more
    attention_heads: int  # heads of the spatial transformers (SD1.5's `attention_head_dim`)
    norm_groups: int  # GroupNorm groups of UNet, VAE and motion modules
    text_dim: int  # CLIP hidden size == UNet cross_attention_dim
    text_layers: int  # CLIP transformer layers
    text_max_length: int  # tokens per prompt (SD1.5: 77)
    vae_channels: tuple[int, ...]  # VAE block_out_channels; latents are 2**(len-1) times smaller
    motion_heads: int  # heads of the temporal attention in each motion module
    motion_max_frames: int  # length of the motion modules' positional table (AnimateDiff: 32)
    zero_init_motion_out: bool  # AnimateDiff's recipe: motion modules start as the identity


PRESETS: dict[str, Architecture] = {
    # Unit tests: a few hundred thousand parameters, every block type present.
    "tiny": Architecture(
        unet_channels=(32, 64),
        cross_attn_levels=(True, False),
        layers_per_block=1,
        attention_heads=2,
        norm_groups=8,
        text_dim=32,
        text_layers=2,
        text_max_length=16,
        vae_channels=(16, 32),
        motion_heads=2,
        motion_max_frames=16,
        zero_init_motion_out=False,
    ),
    # The embedded world (world/pretrain.py): 32 px frames -> 8x8x4 latents, 8-frame clips. Sized for a
    # CPU pretraining of about an hour and a ~22 MB fp32 pipeline folder.
    "world": Architecture(
        unet_channels=(64, 128),  # 8x8 and 4x4 latent levels, plus the 4x4 mid block
        cross_attn_levels=(
            True,
            False,
        ),  # text enters at 8x8 and in the mid block, as SD1.5 leaves its deepest level plain
        layers_per_block=1,
        attention_heads=4,
        norm_groups=8,
        text_dim=64,
        text_layers=2,
        text_max_length=32,  # longest captions: 23 tokens (base), ~28 with a style and a byte-split placeholder
        vae_channels=(16, 32, 64),  # three levels: 4x downsampling
        motion_heads=4,
        motion_max_frames=32,  # AnimateDiff's table length; clips are trained at 8 frames
        zero_init_motion_out=True,
    ),
}


def _block_types(levels: tuple[bool, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    down = tuple("CrossAttnDownBlock2D" if attn else "DownBlock2D" for attn in levels)
    up = tuple("CrossAttnUpBlock2D" if attn else "UpBlock2D" for attn in reversed(levels))
    return down, up


def build_unet(arch: Architecture, sample_size: int) -> UNet2DConditionModel:
    """The T2I denoiser (SD1.5's UNet2DConditionModel, scaled down)."""
    down, up = _block_types(arch.cross_attn_levels)
    return UNet2DConditionModel(
        sample_size=sample_size,
        block_out_channels=arch.unet_channels,
        down_block_types=down,
        up_block_types=up,
        layers_per_block=arch.layers_per_block,
        attention_head_dim=arch.attention_heads,
        cross_attention_dim=arch.text_dim,
        norm_num_groups=arch.norm_groups,
    )


def build_motion_modules(arch: Architecture) -> MotionAdapter:
    """AnimateDiff's temporal layers for `build_unet`'s block layout."""
    modules = MotionAdapter(
        block_out_channels=arch.unet_channels,
        motion_layers_per_block=arch.layers_per_block,
        motion_norm_num_groups=arch.norm_groups,
        motion_num_attention_heads=arch.motion_heads,
        motion_max_seq_length=arch.motion_max_frames,
    )
    if arch.zero_init_motion_out:  # diffusers does not zero proj_out; AnimateDiff does
        for name, param in modules.named_parameters():
            if name.endswith(("proj_out.weight", "proj_out.bias")):
                torch.nn.init.zeros_(param)
    return modules


def build_vae(arch: Architecture, resolution: int) -> AutoencoderKL:
    levels = len(arch.vae_channels)
    return AutoencoderKL(
        block_out_channels=arch.vae_channels,
        down_block_types=("DownEncoderBlock2D",) * levels,
        up_block_types=("UpDecoderBlock2D",) * levels,
        latent_channels=4,
        norm_num_groups=arch.norm_groups,
        sample_size=resolution,
    )


def build_text_encoder(arch: Architecture, vocab_size: int, bos_id: int, eos_id: int) -> CLIPTextModel:
    config = CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=arch.text_dim,
        intermediate_size=arch.text_dim * 4,
        num_hidden_layers=arch.text_layers,
        num_attention_heads=max(1, arch.text_dim // 32),
        max_position_embeddings=arch.text_max_length,
        projection_dim=arch.text_dim,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        pad_token_id=eos_id,
    )
    return CLIPTextModel(config)


def build_scheduler() -> DDIMScheduler:
    """SD1.5's noise schedule and sampler settings."""
    return DDIMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )


def build_pipeline(
    preset: str, words: list[str], tokenizer_dir: str | Path, resolution: int = 32, seed: int = 0
) -> AnimateDiffPipeline:
    """A randomly initialised (seeded) AnimateDiff pipeline of the named preset."""
    if preset not in PRESETS:
        raise KeyError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    arch = PRESETS[preset]
    torch.manual_seed(seed)
    tokenizer = build_tokenizer(words, tokenizer_dir, max_length=arch.text_max_length)
    latent_size = resolution // 2 ** (len(arch.vae_channels) - 1)
    return AnimateDiffPipeline(
        vae=build_vae(arch, resolution),
        text_encoder=build_text_encoder(arch, len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id),
        tokenizer=tokenizer,
        unet=build_unet(arch, latent_size),
        motion_adapter=build_motion_modules(arch),
        scheduler=build_scheduler(),
    )
