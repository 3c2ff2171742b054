"""Style LoRA (Hu et al. 2021): a customized T2I M1 made the way users make them (issue 3).

W + A_down @ A_up on q/k/v/out of every spatial attention of M (the T2I part of an AnimateDiff or AnimateDiff-SDXL
folder, or a plain Stable Diffusion (XL) folder), A_up zero at init, trained on captioned style images with the
ordinary diffusion loss of M's own scheduler, on the same loop as the Still-Moving stages (training/loop.py).
Output: one file in diffusers' LoRA format (saved by the family's own pipeline class, StableDiffusionPipeline's
or StableDiffusionXLPipeline's `save_lora_weights`), which `load_customized(t2v, loras=[(file, weight)])` and plain
`load_lora_weights` load. Image latents and prompt embeddings are encoded once, before training. SDXL: the UNet is
conditioned on both text encoders, the pooled embedding and the time ids (`backends.SDXL`), as its pipeline does.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from diffusers import StableDiffusionPipeline
from diffusers.training_utils import cast_training_params
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict

from stillmoving.data.sources import PromptBank, images_from_folder
from stillmoving.data.video_io import check_images, read_captions
from stillmoving.errors import StillMovingError
from stillmoving.files import atomic_write
from stillmoving.losses import video_loss
from stillmoving.run_folder import STYLE_LORA_RUN
from stillmoving.training.checkpoints import (
    check_output_dir,
    micro_batches_done,
    prepare_output_dir,
    resume_step,
    write_run_record,
)
from stillmoving.training.config import StyleLoRAConfig
from stillmoving.training.loop import batches, train
from stillmoving.training.setup import (
    ImageDenoiser,
    check_base_t2i,
    frozen_image_model,
    latent_dataset,
    loader,
    make_accelerator,
    make_optimizer,
    sdxl_backend,
    text_table,
    training_scheduler,
)

LORA_FILE = "pytorch_lora_weights.safetensors"
LORA_NAME = "style"
# q/k/v/out of the self- (attn1) and cross-attention (attn2) of every spatial transformer; peft fullmatches it.
SPATIAL_ATTENTION_PATTERN = (
    r"(down_blocks\.\d+|mid_block|up_blocks\.\d+)\.attentions\.\d+"
    r"\.transformer_blocks\.\d+\.attn[12]\.(to_q|to_k|to_v|to_out\.0)"
)


def spatial_attention_modules(unet: torch.nn.Module) -> list[str]:
    """Names of the projections the style LoRA wraps, in module order."""
    return [name for name, _ in unet.named_modules() if re.fullmatch(SPATIAL_ATTENTION_PATTERN, name)]


def add_style_lora(unet: torch.nn.Module, rank: int) -> list[torch.nn.Parameter]:
    """A fresh LoRA (A_down gaussian, A_up zero: the UNet is unchanged) on every spatial attention projection."""
    if not spatial_attention_modules(unet):
        raise StillMovingError("the T2I UNet has no spatial attention to adapt")
    config = LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian", target_modules=SPATIAL_ATTENTION_PATTERN)
    unet.add_adapter(config, adapter_name=LORA_NAME)
    return [p for n, p in unet.named_parameters() if "lora_" in n]


def check_style_inputs(cfg: StyleLoRAConfig) -> None:
    """Fail on bad input before any model is loaded: every image needs a caption or the default prompt."""
    check_base_t2i(cfg.model)  # a diffusers pipeline folder (its model_index.json only)
    captions = read_captions(cfg.images)
    uncaptioned = [p for p in check_images(cfg.images) if p.name not in captions]
    if uncaptioned and not (cfg.prompt and cfg.prompt.strip()):
        raise StillMovingError(
            f"no caption for {uncaptioned[0]} (add metadata.jsonl or {uncaptioned[0].stem}.txt, "
            f"or give a prompt such as 'a house in crayon style')"
        )
    if cfg.rank < 1:
        raise StillMovingError(f"LoRA rank must be at least 1, got {cfg.rank}")


def train_style_lora(cfg: StyleLoRAConfig) -> Path:
    """Style LoRA end to end; returns the LoRA file (diffusers format) for load_customized(loras=...)."""
    check_style_inputs(cfg)
    check_output_dir(cfg)
    accelerator = make_accelerator(cfg)
    pipe = frozen_image_model(accelerator, cfg)
    output = prepare_output_dir(cfg)
    latents, prompts = images_from_folder(cfg.images, pipe.vae, cfg.height, cfg.width, cfg.prompt or None)
    bank = PromptBank()
    dataset = latent_dataset(latents, prompts, bank)
    table = text_table(bank, pipe, token_ids=False)

    params = add_style_lora(pipe.unet, cfg.rank)
    cast_training_params(pipe.unet)  # LoRA weights in fp32 under mixed precision
    if cfg.gradient_checkpointing:
        pipe.unet.enable_gradient_checkpointing()
    model = ImageDenoiser(pipe.unet, backend=sdxl_backend(pipe))
    optimizer, schedule = make_optimizer(cfg, params)
    data = loader(dataset, cfg)
    model, optimizer, schedule, data = accelerator.prepare(model, optimizer, schedule, data)
    start = resume_step(accelerator, cfg)
    stream = batches(accelerator, data, micro_batches_done(cfg, start))
    noise_scheduler = training_scheduler(pipe)
    table = table.to(accelerator.device)

    def loss() -> torch.Tensor:
        latents, prompt_ids = next(stream)  # (b, c, h, w), (b,)
        # video_loss only noises, predicts and regresses: any latent shape works.
        return video_loss(model, noise_scheduler, latents, table[prompt_ids], cfg.snr_gamma)

    losses = train(
        accelerator,
        model,
        optimizer,
        schedule,
        cfg,
        lambda: [loss],
        start,
        desc="style lora",
        examples={"images": len(latents)},
    )
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        save_style_lora(accelerator.unwrap_model(model).unet, output / LORA_FILE, cfg.rank, type(pipe))
        write_run_record(output / STYLE_LORA_RUN, cfg, losses, images=len(latents), start_step=start)
    model, optimizer = accelerator.free_memory(model, optimizer)  # before the group goes: setup.make_accelerator
    accelerator.end_training()
    return output / LORA_FILE


def save_style_lora(
    unet: torch.nn.Module, path: Path, rank: int, pipeline_class: type = StableDiffusionPipeline
) -> Path:
    """The LoRA alone, in diffusers' format (`unet.`-prefixed peft keys, safetensors, with its config), written by
    `pipeline_class.save_lora_weights` (the base T2I's: StableDiffusionPipeline, or StableDiffusionXLPipeline)."""
    state = {
        k: v.detach().float().cpu().contiguous()
        for k, v in get_peft_model_state_dict(unet, adapter_name=LORA_NAME).items()
    }
    metadata = {"r": rank, "lora_alpha": rank, "target_modules": SPATIAL_ATTENTION_PATTERN}
    return atomic_write(
        path,
        lambda tmp: pipeline_class.save_lora_weights(
            str(tmp.parent), unet_lora_layers=state, weight_name=tmp.name, unet_lora_adapter_metadata=metadata
        ),
    )
