"""Tiny seeded AnimateDiff-SDXL parts built in-process (the shapes of diffusers' own AnimateDiffSDXL fast tests,
smaller): an SDXL-shaped UNet2DConditionModel (`addition_embed_type="text_time"`, linear projections, two
transformer layers at the deepest level), two CLIP text encoders (the second with a projection: the pooled
embedding), a VAE, and SDXL-shaped motion modules (three down blocks in the real model, two here; no motion mid
block, as mm_sdxl_v10_beta). Nothing touches the network."""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDIMScheduler, MotionAdapter, StableDiffusionXLPipeline, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from stillmoving.world.tokenizer import build_tokenizer

WORDS = ["a", "red", "blue", "circle", "square", "moving", "left", "right", "dog", "photo", "of"]
TEXT_DIM = 32  # each text encoder's width; the UNet's cross-attention is both, concatenated (SDXL: 768 + 1280)
TIME_DIM = 8  # addition_time_embed_dim (SDXL: 256); the added embedding is 6 time ids x 8 + the pooled 32
MAX_LENGTH = 16
RESOLUTION = 32  # pixels; the VAE halves it


def sdxl_unet(seed: int = 0) -> UNet2DConditionModel:
    torch.manual_seed(seed)
    return UNet2DConditionModel(
        sample_size=RESOLUTION // 2,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),  # SDXL: no attention at the first level
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=TIME_DIM,
        transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=6 * TIME_DIM + TEXT_DIM,
        cross_attention_dim=2 * TEXT_DIM,
        norm_num_groups=8,
    )


def sdxl_motion_adapter(seed: int = 0) -> MotionAdapter:
    torch.manual_seed(seed)
    return MotionAdapter(
        block_out_channels=(32, 64),
        motion_layers_per_block=1,
        motion_norm_num_groups=8,
        motion_num_attention_heads=2,
        motion_max_seq_length=16,
        use_motion_mid_block=False,
    )


def _text_config(tokenizer) -> CLIPTextConfig:
    return CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=TEXT_DIM,
        intermediate_size=TEXT_DIM * 4,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=MAX_LENGTH,
        projection_dim=TEXT_DIM,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.eos_token_id,
    )


def sdxl_t2i(tokenizer_dir: str | Path, seed: int = 0) -> StableDiffusionXLPipeline:
    """A seeded SDXL-shaped text-to-image pipeline (the base T2I M of AnimateDiff-SDXL)."""
    tokenizer = build_tokenizer(WORDS, Path(tokenizer_dir) / "tokenizer", max_length=MAX_LENGTH)
    tokenizer_2 = build_tokenizer(WORDS, Path(tokenizer_dir) / "tokenizer_2", max_length=MAX_LENGTH)
    unet = sdxl_unet(seed)
    torch.manual_seed(seed + 1)
    vae = AutoencoderKL(
        block_out_channels=(16, 32),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=RESOLUTION,
    )
    torch.manual_seed(seed + 2)
    text_encoder = CLIPTextModel(_text_config(tokenizer))
    text_encoder_2 = CLIPTextModelWithProjection(_text_config(tokenizer_2))
    scheduler = DDIMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    return StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        unet=unet,
        scheduler=scheduler,
        add_watermarker=False,
    )
