"""Customized T2I models made the way users make them: DreamBooth and style LoRA (issue 3).

Still-Moving is evaluated on customizations M1 of the video model's own T2I M (docs/method.md, "The problem"):
a DreamBooth subject ("a sks dog") and a style LoRA. Both customizers here train M, the T2I part of an
AnimateDiff folder (or a plain Stable Diffusion folder), with the ordinary diffusion loss of M's own
scheduler, through the same accelerate loop as the Still-Moving stages:

- DreamBooth (Ruiz et al. 2023): full fine-tune of M's UNet (optionally its text encoder) on a few subject
  images with one instance prompt, plus the prior-preservation loss on class images sampled from M,
  L = L_instance + prior_loss_weight * L_class (their eq. 2). Output: `<out>/unet` (+ `<out>/text_encoder`),
  which `stillmoving.loading.load_customized(t2v, "<out>")` loads.
- Style LoRA (Hu et al. 2021): W + A_down @ A_up on q/k/v/out of every spatial attention, A_up zero at init,
  trained on captioned style images. Output: one file in diffusers' LoRA format, which
  `load_customized(t2v, loras=[(file, weight)])` and plain `load_lora_weights` load.

Image latents and prompt embeddings are encoded once, before training.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
from pathlib import Path

import torch
from diffusers import DiffusionPipeline, StableDiffusionPipeline
from diffusers.training_utils import cast_training_params
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict

from stillmoving.data.sources import PromptBank, decode_latents, images_from_folder, sample_images
from stillmoving.data.video_io import check_images, read_captions, write_image
from stillmoving.errors import StillMovingError
from stillmoving.files import atomic_write, temporary_sibling
from stillmoving.injection import t2i_unet_from_t2v
from stillmoving.loading import load_t2v, t2i_pipeline
from stillmoving.losses import video_loss
from stillmoving.run_folder import DREAMBOOTH_RUN, STYLE_LORA_RUN
from stillmoving.training.checkpoints import (
    check_output_dir,
    micro_batches_done,
    prepare_output_dir,
    resume_step,
    write_run_record,
)
from stillmoving.training.config import DreamBoothConfig, StyleLoRAConfig, T2ITrainConfig
from stillmoving.training.loop import batches, train
from stillmoving.training.setup import (
    WEIGHT_DTYPES,
    freeze,
    loader,
    make_accelerator,
    make_optimizer,
    training_scheduler,
)
from stillmoving.validation import local_or_hub

UNET_DIR = "unet"
TEXT_ENCODER_DIR = "text_encoder"
CLASS_IMAGE_DIR = "class_images"
LORA_FILE = "pytorch_lora_weights.safetensors"
LORA_NAME = "style"
# q/k/v/out of the self- (attn1) and cross-attention (attn2) of every spatial transformer; peft fullmatches it.
SPATIAL_ATTENTION_PATTERN = (
    r"(down_blocks\.\d+|mid_block|up_blocks\.\d+)\.attentions\.\d+"
    r"\.transformer_blocks\.\d+\.attn[12]\.(to_q|to_k|to_v|to_out\.0)"
)


class ImageDenoiser(torch.nn.Module):
    """The T2I UNet (and the text encoder when it trains) as one module, so accelerate can wrap and sync it."""

    def __init__(self, unet: torch.nn.Module, text_encoder: torch.nn.Module | None = None):
        super().__init__()
        self.unet = unet
        self.text_encoder = text_encoder

    def forward(self, noisy: torch.Tensor, timesteps: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """noisy (b, c, h, w), timesteps (b,), text: embeddings (b, seq, dim), or token ids (b, seq)
        when the text encoder trains -> prediction (b, c, h, w)."""
        if self.text_encoder is not None:
            text = self.text_encoder(text)[0]
        return self.unet(noisy, timesteps, encoder_hidden_states=text).sample


# ----------------------------------------------------------------------------- models


def load_base_t2i(model: str, dtype: torch.dtype = torch.float32) -> StableDiffusionPipeline:
    """M as a Stable Diffusion pipeline: an AnimateDiff folder's T2I part, or a Stable Diffusion folder."""
    model = local_or_hub(model)
    try:
        index = DiffusionPipeline.load_config(model)
    except (OSError, ValueError) as error:
        raise StillMovingError(f"{model} is not a diffusers pipeline folder: {str(error).splitlines()[0]}") from None
    if index.get("unet", [None, None])[1] == "UNetMotionModel":
        t2v = load_t2v(model, dtype=dtype)
        return t2i_pipeline(t2v, t2i_unet_from_t2v(t2v.unet))
    try:
        pipe = StableDiffusionPipeline.from_pretrained(
            model, dtype=dtype, safety_checker=None, requires_safety_checker=False
        )
    except (OSError, ValueError, TypeError) as error:
        raise StillMovingError(
            f"cannot load a Stable Diffusion model from {model}: {str(error).splitlines()[0]}"
        ) from None
    pipe.set_progress_bar_config(leave=False)
    return pipe


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


# ----------------------------------------------------------------------------- input


def _nonempty(text: str | None) -> bool:
    return bool(text and text.strip())


def check_dreambooth_inputs(cfg: DreamBoothConfig) -> None:
    """Fail on bad input before any model is loaded."""
    check_images(cfg.images)  # missing folder, no images in it, or one that does not decode
    if not _nonempty(cfg.prompt):
        raise StillMovingError("give an instance prompt with the subject's identifier, e.g. 'a sks dog'")
    if cfg.class_images is not None and not _nonempty(cfg.class_prompt):
        raise StillMovingError("class images need a class prompt (e.g. 'a dog') for prior preservation")
    if _nonempty(cfg.class_prompt):
        if cfg.class_images is not None:
            check_images(cfg.class_images)
        elif cfg.num_class_images < 1:
            raise StillMovingError("prior preservation needs num_class_images >= 1 or a folder of class images")


def check_style_inputs(cfg: StyleLoRAConfig) -> None:
    """Fail on bad input before any model is loaded: every image needs a caption or the default prompt."""
    captions = read_captions(cfg.images)
    uncaptioned = [p for p in check_images(cfg.images) if p.name not in captions]
    if uncaptioned and not _nonempty(cfg.prompt):
        raise StillMovingError(
            f"no caption for {uncaptioned[0]} (add metadata.jsonl or {uncaptioned[0].stem}.txt, "
            f"or give a prompt such as 'a house in crayon style')"
        )
    if cfg.rank < 1:
        raise StillMovingError(f"LoRA rank must be at least 1, got {cfg.rank}")


def class_latents(cfg: DreamBoothConfig, pipe: StableDiffusionPipeline, image_dir: Path | None):
    """Prior-preservation latents (C, h, w): the user's class folder, or samples of the base M (saved to
    `image_dir`)."""
    if not _nonempty(cfg.class_prompt) or cfg.prior_loss_weight == 0:
        return [], []
    if cfg.class_images is not None:
        latents, _ = images_from_folder(cfg.class_images, pipe.vae, cfg.height, cfg.width, cfg.class_prompt)
    else:
        pipe.set_progress_bar_config(disable=True)
        latents = sample_images(
            pipe,
            [cfg.class_prompt] * cfg.num_class_images,
            cfg.height,
            cfg.width,
            cfg.seed + 10_000,
            cfg.sample_steps,
            cfg.guidance_scale,
        )
        if image_dir is not None:
            for i, image in enumerate(decode_latents(pipe.vae, torch.stack(latents))):
                write_image(image.permute(1, 2, 0).numpy(), image_dir / f"{i:04d}.png")
    return latents, [cfg.class_prompt] * len(latents)


def text_table(bank: PromptBank, pipe: StableDiffusionPipeline, token_ids: bool) -> torch.Tensor:
    """Row i for prompt i: embeddings (P, seq, dim), or token ids (P, seq) for a text encoder that trains."""
    if not token_ids:
        return bank.encode(pipe.tokenizer, pipe.text_encoder)
    tokenizer = pipe.tokenizer
    return tokenizer(
        bank.prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
    ).input_ids


def latent_dataset(latents: list[torch.Tensor], prompts: list[str], bank: PromptBank):
    """Items (latent (c, h, w), prompt row)."""
    ids = torch.tensor([bank.add(p) for p in prompts], dtype=torch.long)
    return torch.utils.data.TensorDataset(torch.stack(latents), ids)


# ----------------------------------------------------------------------------- training


def fit(
    accelerator,
    cfg: T2ITrainConfig,
    model: ImageDenoiser,
    params: list[torch.nn.Parameter],
    table: torch.Tensor,
    pipe: StableDiffusionPipeline,
    datasets: list[tuple[torch.utils.data.Dataset, float]],
    desc: str,
    examples: dict[str, int] | None = None,
):
    """Train `params` on weighted datasets, one batch of each per micro-step: L = sum_k w_k L_k.

    Returns the prepared model, the loss of every optimizer step, and the step it resumed from.
    """
    optimizer, schedule = make_optimizer(cfg, params)
    loaders = [loader(data, cfg) for data, _ in datasets]
    model, optimizer, schedule, *loaders = accelerator.prepare(model, optimizer, schedule, *loaders)
    start = resume_step(accelerator, cfg)
    streams = [batches(accelerator, data, micro_batches_done(cfg, start)) for data in loaders]
    weights = [weight for _, weight in datasets]
    noise_scheduler = training_scheduler(pipe)
    table = table.to(accelerator.device)

    def term(stream, weight: float) -> torch.Tensor:
        latents, prompt_ids = next(stream)  # (b, c, h, w), (b,)
        # video_loss only noises, predicts and regresses: any latent shape works.
        return weight * video_loss(model, noise_scheduler, latents, table[prompt_ids], cfg.snr_gamma)

    terms = [functools.partial(term, stream, weight) for stream, weight in zip(streams, weights)]  # one per dataset

    losses = train(accelerator, model, optimizer, schedule, cfg, lambda: terms, start, desc=desc, examples=examples)
    accelerator.wait_for_everyone()
    return model, losses, start


def _frozen_base(accelerator, cfg: T2ITrainConfig) -> StableDiffusionPipeline:
    pipe = load_base_t2i(cfg.model, WEIGHT_DTYPES[cfg.mixed_precision]).to(accelerator.device)
    pipe.set_progress_bar_config(disable=not accelerator.is_local_main_process, leave=False)
    freeze(pipe.unet, pipe.vae, pipe.text_encoder)
    return pipe


def train_dreambooth(cfg: DreamBoothConfig) -> Path:
    """DreamBooth end to end; returns the output folder, holding `unet/` (and `text_encoder/`) for load_customized."""
    check_dreambooth_inputs(cfg)
    check_output_dir(cfg)
    accelerator = make_accelerator(cfg)
    pipe = _frozen_base(accelerator, cfg)
    output = prepare_output_dir(cfg)
    instance, captions = images_from_folder(cfg.images, pipe.vae, cfg.height, cfg.width, cfg.prompt)
    instance_prompts = captions if cfg.use_captions else [cfg.prompt] * len(instance)
    image_dir = output / CLASS_IMAGE_DIR if accelerator.is_main_process else None
    prior, prior_prompts = class_latents(cfg, pipe, image_dir)  # from the base M, before it trains
    bank = PromptBank()
    datasets = [(latent_dataset(instance, instance_prompts, bank), 1.0)]
    if prior:
        datasets.append((latent_dataset(prior, prior_prompts, bank), cfg.prior_loss_weight))
    table = text_table(bank, pipe, token_ids=cfg.train_text_encoder)

    text_encoder = pipe.text_encoder.requires_grad_(True) if cfg.train_text_encoder else None
    model = ImageDenoiser(pipe.unet.requires_grad_(True), text_encoder)
    cast_training_params(model)  # trained weights in fp32 under mixed precision
    if cfg.gradient_checkpointing:
        pipe.unet.enable_gradient_checkpointing()
        if text_encoder is not None:
            text_encoder.gradient_checkpointing_enable()
    params = [p for p in model.parameters() if p.requires_grad]
    examples = {"instance images": len(instance), "class images": len(prior)}
    model, losses, start = fit(accelerator, cfg, model, params, table, pipe, datasets, "dreambooth", examples)
    if accelerator.is_main_process:
        trained = accelerator.unwrap_model(model)
        save_model_folder(trained.unet, output / UNET_DIR)
        if trained.text_encoder is not None:
            save_model_folder(trained.text_encoder, output / TEXT_ENCODER_DIR)
        elif (output / TEXT_ENCODER_DIR).is_dir():  # an earlier run's; load_customized would pick it up
            shutil.rmtree(output / TEXT_ENCODER_DIR)
        write_run_record(
            output / DREAMBOOTH_RUN,
            cfg,
            losses,
            instance_images=len(instance),
            class_images=len(prior),
            start_step=start,
        )
    accelerator.end_training()
    return output


def train_style_lora(cfg: StyleLoRAConfig) -> Path:
    """Style LoRA end to end; returns the LoRA file (diffusers format) for load_customized(loras=...)."""
    check_style_inputs(cfg)
    check_output_dir(cfg)
    accelerator = make_accelerator(cfg)
    pipe = _frozen_base(accelerator, cfg)
    output = prepare_output_dir(cfg)
    latents, prompts = images_from_folder(cfg.images, pipe.vae, cfg.height, cfg.width, cfg.prompt or None)
    bank = PromptBank()
    datasets = [(latent_dataset(latents, prompts, bank), 1.0)]
    table = text_table(bank, pipe, token_ids=False)

    params = add_style_lora(pipe.unet, cfg.rank)
    cast_training_params(pipe.unet)  # LoRA weights in fp32 under mixed precision
    if cfg.gradient_checkpointing:
        pipe.unet.enable_gradient_checkpointing()
    model, losses, start = fit(
        accelerator,
        cfg,
        ImageDenoiser(pipe.unet),
        params,
        table,
        pipe,
        datasets,
        "style lora",
        {"images": len(latents)},
    )
    if accelerator.is_main_process:
        save_style_lora(accelerator.unwrap_model(model).unet, output / LORA_FILE, cfg.rank)
        write_run_record(output / STYLE_LORA_RUN, cfg, losses, images=len(latents), start_step=start)
    accelerator.end_training()
    return output / LORA_FILE


# ----------------------------------------------------------------------------- saving


def save_model_folder(model, target: Path) -> Path:
    """`model.save_pretrained` (safetensors) into `target`, each file moved in atomically, config last."""
    staging = temporary_sibling(target, "tmp")
    try:
        model.save_pretrained(staging, safe_serialization=True)
        files = sorted(staging.iterdir(), key=lambda p: p.name == "config.json")
        target.mkdir(parents=True, exist_ok=True)
        for file in files:
            atomic_write(target / file.name, lambda tmp, src=file: os.replace(src, tmp))
        for stale in set(target.iterdir()) - {target / f.name for f in files}:  # e.g. an old run's shards
            stale.unlink() if stale.is_file() else shutil.rmtree(stale)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def save_style_lora(unet: torch.nn.Module, path: Path, rank: int) -> Path:
    """The LoRA alone, in diffusers' format (`unet.`-prefixed peft keys, safetensors, with its config)."""
    state = {
        k: v.detach().float().cpu().contiguous()
        for k, v in get_peft_model_state_dict(unet, adapter_name=LORA_NAME).items()
    }
    metadata = {"r": rank, "lora_alpha": rank, "target_modules": SPATIAL_ATTENTION_PATTERN}
    return atomic_write(
        path,
        lambda tmp: StableDiffusionPipeline.save_lora_weights(
            str(tmp.parent), unet_lora_layers=state, weight_name=tmp.name, unet_lora_adapter_metadata=metadata
        ),
    )
