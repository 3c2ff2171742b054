"""Tiny random CLIP and DINO models built from transformers configs and saved as folders (no network)."""

from pathlib import Path

import torch
from transformers import (
    CLIPConfig,
    CLIPImageProcessor,
    CLIPModel,
    CLIPProcessor,
    ViTConfig,
    ViTImageProcessor,
    ViTModel,
)

from stillmoving.world.tokenizer import build_tokenizer

WORDS = ["a", "red", "blue", "circle", "square", "star", "moving", "left", "right", "on", "gray", "background", "sks"]
SIDE = 32  # input size of both models


def save_tiny_clip(folder: Path, seed: int = 0) -> Path:
    """CLIPModel + CLIPProcessor (the world's byte-level BPE tokenizer) in `folder`."""
    tokenizer = build_tokenizer(WORDS, folder / "tokenizer_src", max_length=16)
    torch.manual_seed(seed)
    text = dict(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=16,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.eos_token_id,
    )
    vision = dict(
        image_size=SIDE, patch_size=8, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2
    )
    CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)).save_pretrained(folder / "clip")
    images = CLIPImageProcessor(size={"shortest_edge": SIDE}, crop_size={"height": SIDE, "width": SIDE})
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder / "clip")
    return folder / "clip"


def save_tiny_dino(folder: Path, seed: int = 0) -> Path:
    """A ViT (DINO's architecture) with its image processor in `folder`."""
    torch.manual_seed(seed)
    config = ViTConfig(
        image_size=SIDE, patch_size=8, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2
    )
    ViTModel(config, add_pooling_layer=False).save_pretrained(folder / "dino")
    ViTImageProcessor(size={"height": SIDE, "width": SIDE}).save_pretrained(folder / "dino")
    return folder / "dino"
