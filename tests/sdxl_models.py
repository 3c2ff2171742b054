"""Tiny seeded AnimateDiff-SDXL parts built in-process (the shapes of diffusers' own AnimateDiffSDXL fast tests,
smaller): an SDXL-shaped UNet2DConditionModel (`addition_embed_type="text_time"`, linear projections, two
transformer layers at the deepest level), two CLIP text encoders (the second with a projection: the pooled
embedding), a VAE, and SDXL-shaped motion modules (three down blocks in the real model, two here; no motion mid
block, as mm_sdxl_v10_beta). Nothing touches the network."""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from diffusers import MotionAdapter, StableDiffusionXLPipeline, UNet2DConditionModel
from family_models import RESOLUTION, tiny_vae
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from stillmoving.formats.single_file import LDM_UNET_KEY, SDXL_OPEN_CLIP
from stillmoving.world.architectures import build_scheduler
from stillmoving.world.tokenizer import build_tokenizer

WORDS = ["a", "red", "blue", "circle", "square", "moving", "left", "right", "dog", "photo", "of"]
TEXT_DIM = 32  # each text encoder's width; the UNet's cross-attention is both, concatenated (SDXL: 768 + 1280)
TIME_DIM = 8  # addition_time_embed_dim (SDXL: 256); the added embedding is 6 time ids x 8 + the pooled 32
MAX_LENGTH = 16


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
    vae = tiny_vae(seed + 1)
    torch.manual_seed(seed + 2)
    text_encoder = CLIPTextModel(_text_config(tokenizer))
    text_encoder_2 = CLIPTextModelWithProjection(_text_config(tokenizer_2))
    scheduler = build_scheduler()  # SDXL shares SD1.5's noise schedule and sampler settings
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


def save_sdxl_models(root: Path) -> Path:
    """Folders in `root`: the SDXL T2I (`t2i`), its motion modules (`motion_modules`), the AnimateDiff-SDXL pipeline
    saved by plain diffusers (`t2v`), and a customized SDXL UNet (`m1`, the T2I's UNet nudged: a stand-in for a
    DreamBooth)."""
    from conftest import perturb
    from diffusers import AnimateDiffSDXLPipeline

    from stillmoving.pipeline import inflate

    t2i = sdxl_t2i(root / "tokenizers")
    t2i.save_pretrained(root / "t2i")
    motion = sdxl_motion_adapter()
    motion.save_pretrained(root / "motion_modules")
    parts = {k: v for k, v in t2i.components.items()}
    parts["unet"] = inflate(t2i.unet, motion)
    AnimateDiffSDXLPipeline(**parts, motion_adapter=motion).save_pretrained(root / "t2v")
    m1 = copy.deepcopy(t2i.unet)
    perturb(m1.parameters(), seed=5, scale=0.02, add=True)
    m1.save_pretrained(root / "m1")
    return root


# The original (LDM/SGM) checkpoint layout, as A1111 and kohya save SDXL DreamBooths: diffusers' single-file
# converters run backwards.
RESNET = [
    ("in_layers.0", "norm1"),
    ("in_layers.2", "conv1"),
    ("out_layers.0", "norm2"),
    ("out_layers.3", "conv2"),
    ("emb_layers.1", "time_emb_proj"),
    ("skip_connection", "conv_shortcut"),
]
TOP = [
    ("time_embed.0.", "time_embedding.linear_1."),
    ("time_embed.2.", "time_embedding.linear_2."),
    ("label_emb.0.0.", "add_embedding.linear_1."),
    ("label_emb.0.2.", "add_embedding.linear_2."),
    ("input_blocks.0.0.", "conv_in."),
    ("out.0.", "conv_norm_out."),
    ("out.2.", "conv_out."),
]


def unet_prefixes(config) -> list[tuple[str, str]]:
    """(LDM prefix, diffusers prefix) of every block of a UNet2DConditionModel config."""
    per_level, levels = config.layers_per_block + 1, len(config.block_out_channels)
    down_attn = ["CrossAttn" in t for t in config.down_block_types]
    up_attn = ["CrossAttn" in t for t in config.up_block_types]
    prefixes = list(TOP)
    for i in range(levels):
        for j in range(per_level - 1):
            n = per_level * i + j + 1
            prefixes.append((f"input_blocks.{n}.0.", f"down_blocks.{i}.resnets.{j}."))
            if down_attn[i]:
                prefixes.append((f"input_blocks.{n}.1.", f"down_blocks.{i}.attentions.{j}."))
        for j in range(per_level):
            n = per_level * i + j
            prefixes.append((f"output_blocks.{n}.0.", f"up_blocks.{i}.resnets.{j}."))
            if up_attn[i]:
                prefixes.append((f"output_blocks.{n}.1.", f"up_blocks.{i}.attentions.{j}."))
        if i < levels - 1:
            prefixes.append((f"input_blocks.{per_level * (i + 1)}.0.op.", f"down_blocks.{i}.downsamplers.0.conv."))
            upsampler = f"output_blocks.{per_level * i + per_level - 1}.{2 if up_attn[i] else 1}."
            prefixes.append((upsampler, f"up_blocks.{i}.upsamplers.0."))
    middle = [("middle_block.0.", "mid_block.resnets.0."), ("middle_block.1.", "mid_block.attentions.0.")]
    return prefixes + middle + [("middle_block.2.", "mid_block.resnets.1.")]


def ldm_unet_state(unet: UNet2DConditionModel) -> dict[str, torch.Tensor]:
    """`model.diffusion_model.*` keys of a UNet (SD1.x or SDXL)."""
    prefixes = unet_prefixes(unet.config)
    state = {}
    for key, value in unet.state_dict().items():
        ldm, ours = next((ldm, ours) for ldm, ours in prefixes if key.startswith(ours))
        rest = key[len(ours) :]
        if ".resnets." in ours:
            for old, new in RESNET:
                rest = rest.replace(new, old)
        state[LDM_UNET_KEY + ldm + rest] = value.contiguous()
    return state


def ldm_clip_state(text_encoder, prefix: str = "conditioner.embedders.0.transformer.") -> dict[str, torch.Tensor]:
    """A CLIP text encoder under `prefix` in transformers' own names (SDXL's first, SD1.x's `cond_stage_model`)."""
    return {
        prefix + "text_model." * (not k.startswith("text_model.")) + k: v for k, v in text_encoder.state_dict().items()
    }


def open_clip_state(text_encoder: CLIPTextModelWithProjection) -> dict[str, torch.Tensor]:
    """SDXL's second text encoder in OpenCLIP's layout (`conditioner.embedders.1.model.*`, q/k/v fused)."""
    renames = [
        ("text_model.encoder.layers.", "transformer.resblocks."),
        ("layer_norm1", "ln_1"),
        ("layer_norm2", "ln_2"),
        (".mlp.fc1.", ".mlp.c_fc."),
        (".mlp.fc2.", ".mlp.c_proj."),
        (".self_attn.out_proj.", ".attn.out_proj."),
    ]
    top = {
        "text_model.embeddings.position_embedding.weight": "positional_embedding",
        "text_model.embeddings.token_embedding.weight": "token_embedding.weight",
        "text_model.final_layer_norm.weight": "ln_final.weight",
        "text_model.final_layer_norm.bias": "ln_final.bias",
    }
    source = text_encoder.state_dict()
    state = {"text_projection": source["text_projection.weight"].T.contiguous()}
    for key, value in source.items():
        if key in top:
            state[top[key]] = value
        elif ".self_attn.q_proj." in key:
            kind = key.rsplit(".", 1)[1]
            parts = [source[key.replace(".q_proj.", f".{p}_proj.")] for p in "qkv"]
            layer = key.split(".self_attn.")[0]
            for old, new in renames[:1]:
                layer = layer.replace(old, new)
            state[f"{layer}.attn.in_proj_{kind}"] = torch.cat(parts)
        elif key.startswith("text_model.encoder.") and not any(f".self_attn.{p}_proj." in key for p in "kv"):
            for old, new in renames:
                key = key.replace(old, new)
            state[key] = value
    return {SDXL_OPEN_CLIP + k: v for k, v in state.items()}
