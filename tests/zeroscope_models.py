"""Tiny seeded ModelScope/ZeroScope parts built in-process: a `UNet3DConditionModel` (spatial ResNet blocks and
transformers with temporal convolutions and temporal attentions beside them, and `transformer_in`), a CLIP text
encoder, a VAE and a DDIM scheduler in a `TextToVideoSDPipeline`, and the SD2.x-shaped `UNet2DConditionModel` its
spatial layers are (linear projections, one head per 8 channels, as SD2.x's 64). Nothing touches the network."""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import TextToVideoSDPipeline, UNet2DConditionModel, UNet3DConditionModel
from family_models import RESOLUTION, tiny_vae
from transformers import CLIPTextConfig, CLIPTextModel

from stillmoving.world.architectures import build_scheduler
from stillmoving.world.tokenizer import build_tokenizer

WORDS = ["a", "red", "blue", "circle", "square", "moving", "left", "right", "dog", "photo", "of", "sks"]
TEXT_DIM = 32  # the text encoder's width and the UNet's cross-attention (ZeroScope, SD2.x: 1024)
HEAD_DIM = 8  # channels per attention head (ZeroScope, SD2.x: 64)
MAX_LENGTH = 16
CHANNELS = (32, 64)
UNET = dict(  # ZeroScope's levels: cross-attention blocks, then one without at the deepest level
    sample_size=RESOLUTION // 2,
    block_out_channels=CHANNELS,
    layers_per_block=1,
    down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"),
    up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
    cross_attention_dim=TEXT_DIM,
    attention_head_dim=HEAD_DIM,
    norm_num_groups=8,
)


def zeroscope_unet(seed: int = 0) -> UNet3DConditionModel:
    torch.manual_seed(seed)
    return UNet3DConditionModel(**UNET)


def sd2_unet(seed: int = 0, **overrides) -> UNet2DConditionModel:
    """A T2I UNet shaped as the tiny ZeroScope's spatial layers, in SD2.x's layout (a DreamBooth stand-in)."""
    torch.manual_seed(seed)
    config = dict(
        sample_size=RESOLUTION // 2,
        block_out_channels=CHANNELS,
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=TEXT_DIM,
        attention_head_dim=tuple(c // HEAD_DIM for c in CHANNELS),  # SD2.x's config: heads per level (5, 10, 20, 20)
        use_linear_projection=True,
        norm_num_groups=8,
    )
    return UNet2DConditionModel(**{**config, **overrides})


def zeroscope_pipeline(tokenizer_dir: str | Path, seed: int = 0) -> TextToVideoSDPipeline:
    """A seeded ModelScope/ZeroScope-shaped text-to-video pipeline (plain diffusers)."""
    tokenizer = build_tokenizer(WORDS, Path(tokenizer_dir) / "tokenizer", max_length=MAX_LENGTH)
    unet = zeroscope_unet(seed)
    vae = tiny_vae(seed + 1)
    torch.manual_seed(seed + 2)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=TEXT_DIM,
            intermediate_size=TEXT_DIM * 4,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=MAX_LENGTH,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.eos_token_id,
        )
    )
    return TextToVideoSDPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=build_scheduler()
    )


def save_zeroscope_models(root: Path) -> Path:
    """Folders in `root`: the ZeroScope-shaped pipeline saved by plain diffusers (`t2v`), and a customized
    SD2.x-shaped UNet (`m1`: V's own spatial layers nudged, a stand-in for a DreamBooth of V's T2I)."""
    from conftest import perturb

    from stillmoving.injection import spatial_state_dict

    pipe = zeroscope_pipeline(root / "tokenizers")
    pipe.save_pretrained(root / "t2v")
    m1 = sd2_unet()
    m1.load_state_dict(spatial_state_dict(pipe.unet))
    perturb(m1.parameters(), seed=5, scale=0.02, add=True)
    m1.save_pretrained(root / "m1")
    return root
