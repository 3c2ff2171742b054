"""DreamBooth (Ruiz et al. 2023): a customized T2I M1 made the way users make them (issue 3).

Still-Moving is evaluated on customizations M1 of the video model's own T2I M (docs/method.md, "The problem").
This trains M, the T2I part of an AnimateDiff or AnimateDiff-SDXL folder (or a plain Stable Diffusion (XL) folder),
with the ordinary diffusion loss of M's own scheduler, on the same loop as the Still-Moving stages
(training/loop.py): a full fine-tune of M's UNet (optionally its text encoders) on a few subject images with one
instance prompt, plus the prior-preservation loss on class images sampled from M, L = L_instance +
prior_loss_weight * L_class (their eq. 2). Output: `<out>/unet` (+ `<out>/text_encoder`, and for SDXL
`<out>/text_encoder_2`), which `stillmoving.loading.load_customized(t2v, "<out>")` loads. Image latents and prompt
embeddings are encoded once, before training. SDXL (the family of `--model`, `backends.family_of_folder`): both
text encoders condition the UNet, with the pooled embedding and the time ids (`backends.SDXL`), as its pipeline does.
"""

from __future__ import annotations

import functools
import os
import shutil
from pathlib import Path

import torch
from diffusers import StableDiffusionPipeline
from diffusers.training_utils import cast_training_params

from stillmoving.data.sources import PromptBank, decode_latents, images_from_folder, sample_images
from stillmoving.data.video_io import check_images, write_image
from stillmoving.errors import StillMovingError
from stillmoving.files import atomic_write, temporary_sibling
from stillmoving.losses import video_loss
from stillmoving.run_folder import DREAMBOOTH_RUN
from stillmoving.training.checkpoints import (
    check_output_dir,
    micro_batches_done,
    prepare_output_dir,
    resume_step,
    write_run_record,
)
from stillmoving.training.config import DreamBoothConfig
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
from stillmoving.validation import at_least

UNET_DIR = "unet"
TEXT_ENCODER_DIR = "text_encoder"
TEXT_ENCODER_2_DIR = "text_encoder_2"  # SDXL's second text encoder
CLASS_IMAGE_DIR = "class_images"


def _nonempty(text: str | None) -> bool:
    return bool(text and text.strip())


def check_dreambooth_inputs(cfg: DreamBoothConfig) -> None:
    """Fail on bad input before any model is loaded."""
    check_base_t2i(cfg.model)  # a diffusers pipeline folder (its model_index.json only)
    check_images(cfg.images)  # missing folder, no images in it, or one that does not decode
    if not _nonempty(cfg.prompt):
        raise StillMovingError("give an instance prompt with the subject's identifier, e.g. 'a sks dog'")
    at_least("--prior-loss-weight", cfg.prior_loss_weight, 0)  # below 0 the class images' loss would be climbed
    if cfg.class_images is not None and not _nonempty(cfg.class_prompt):
        raise StillMovingError("class images need a class prompt (e.g. 'a dog') for prior preservation")
    if _nonempty(cfg.class_prompt):
        if cfg.class_images is not None:
            check_images(cfg.class_images)
        elif cfg.num_class_images < 1:
            raise StillMovingError("prior preservation needs num_class_images >= 1 or a folder of class images")


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


def train_dreambooth(cfg: DreamBoothConfig) -> Path:
    """DreamBooth end to end; returns the output folder, holding `unet/` (and `text_encoder/`, SDXL's
    `text_encoder_2/`) for load_customized."""
    check_dreambooth_inputs(cfg)
    check_output_dir(cfg)
    accelerator = make_accelerator(cfg)
    pipe = frozen_image_model(accelerator, cfg)
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

    sdxl = sdxl_backend(pipe)
    trains = cfg.train_text_encoder
    text_encoder = pipe.text_encoder.requires_grad_(True) if trains else None
    text_encoder_2 = pipe.text_encoder_2.requires_grad_(True) if trains and sdxl else None
    prompts = bank.prompts if trains and sdxl else None  # SDXL's rows are encoded in the forward
    model = ImageDenoiser(pipe.unet.requires_grad_(True), text_encoder, sdxl, text_encoder_2, prompts)
    cast_training_params(model)  # trained weights in fp32 under mixed precision
    if cfg.gradient_checkpointing:
        pipe.unet.enable_gradient_checkpointing()
        for encoder in filter(None, (text_encoder, text_encoder_2)):
            encoder.gradient_checkpointing_enable()
    params = [p for p in model.parameters() if p.requires_grad]
    examples = {"instance images": len(instance), "class images": len(prior)}
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

    # L = L_instance + prior_loss_weight * L_class: one batch of each dataset per micro-step, back-propagated in turn
    terms = [functools.partial(term, stream, weight) for stream, weight in zip(streams, weights)]
    losses = train(
        accelerator, model, optimizer, schedule, cfg, lambda: terms, start, desc="dreambooth", examples=examples
    )
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        trained = accelerator.unwrap_model(model)
        save_model_folder(trained.unet, output / UNET_DIR)
        for encoder, folder in ((trained.text_encoder, TEXT_ENCODER_DIR), (trained.text_encoder_2, TEXT_ENCODER_2_DIR)):
            if encoder is not None:
                save_model_folder(encoder, output / folder)
            elif (output / folder).is_dir():  # an earlier run's; load_customized would pick it up
                shutil.rmtree(output / folder)
        write_run_record(
            output / DREAMBOOTH_RUN,
            cfg,
            losses,
            instance_images=len(instance),
            class_images=len(prior),
            start_step=start,
        )
    model, optimizer = accelerator.free_memory(model, optimizer)  # before the group goes: setup.make_accelerator
    accelerator.end_training()
    return output


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
