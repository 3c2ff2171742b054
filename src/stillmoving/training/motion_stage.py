"""Stage 1: train the motion adapter on frozen videos at alpha = 1 (docs/method.md, stage 1).

Each step takes a batch of videos, picks ONE random frame of each, repeats it F times and trains only
the temporal q/k/v LoRA with the diffusion loss, so that at alpha = 1 the video model generates static
videos of its own distribution. Videos come from a folder or, for users without videos, from V itself.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch
from diffusers.training_utils import cast_training_params

from stillmoving.adapters.motion import MotionLoRA
from stillmoving.backends import backend_of
from stillmoving.data.frozen import LatentClips, VideoClipDataset, random_frozen_frames
from stillmoving.data.sources import PromptBank, check_video_folder, sample_videos, videos_from_folder
from stillmoving.errors import StillMovingError
from stillmoving.few_step import sampler_of, with_fingerprint
from stillmoving.losses import video_loss
from stillmoving.run_folder import MOTION_ADAPTER, MOTION_ADAPTER_RUN
from stillmoving.training.checkpoints import (
    check_output_dir,
    micro_batches_done,
    prepare_output_dir,
    resume_step,
    write_run_record,
)
from stillmoving.training.config import MotionAdapterConfig
from stillmoving.training.loop import ItemRandomness, batches, train
from stillmoving.training.monitor import periodic_validation, validation_prompts
from stillmoving.training.setup import (
    VideoDenoiser,
    frozen_video_model,
    loader,
    make_accelerator,
    make_optimizer,
    training_scheduler,
)
from stillmoving.validation import check_model_files


def motion_videos(cfg: MotionAdapterConfig, pipe) -> tuple[list, list[str]]:
    """Video latents (C, F, h, w) and captions: the user's folder, or videos sampled from V."""
    if cfg.videos:
        return videos_from_folder(cfg.videos, pipe.vae, cfg.num_frames, cfg.height, cfg.width, cfg.video_prompt)
    prompts = [cfg.sample_prompt[i % len(cfg.sample_prompt)] for i in range(cfg.num_sampled_videos)]
    latents = sample_videos(
        pipe, prompts, cfg.num_frames, cfg.height, cfg.width, cfg.seed, cfg.sample_steps, cfg.guidance_scale
    )
    return latents, prompts


def train_motion_adapter(cfg: MotionAdapterConfig) -> Path:
    """Run stage 1; returns the folder holding the adapter in diffusers' LoRA format."""
    check_output_dir(cfg)
    check_model_files(cfg.model, cfg.motion_modules, config_dir=cfg.config_dir, domain_adapter=cfg.domain_adapter)
    if cfg.videos:  # every video decoded once and long enough, before any model loads
        check_video_folder(cfg.videos, cfg.num_frames, cfg.video_prompt)
    elif not cfg.sample_prompt:
        raise StillMovingError("give a folder of videos, or prompts to sample videos from the video model")
    accelerator = make_accelerator(cfg)
    pipe = frozen_video_model(accelerator, cfg)
    latents, prompts = motion_videos(cfg, pipe)  # every input is read before anything is written
    output = prepare_output_dir(cfg)
    bank = PromptBank()
    clips = LatentClips(latents, [bank.add(p) for p in prompts])
    backend = backend_of(pipe)  # the family: SD1.5, SDXL
    text_table = backend.encode_prompts(bank.prompts).to(accelerator.device)

    # A_down from the seed alone: not from what loading V drew from the global RNG (a single file, a folder)
    init = torch.Generator().manual_seed(cfg.seed)
    motion = MotionLoRA.inject(pipe.unet, rank=cfg.rank, generator=init)
    motion.set_scale(1.0)  # train at alpha = 1: frozen videos
    cast_training_params(pipe.unet)  # adapters in fp32 under mixed precision
    model = VideoDenoiser(pipe.unet, backend=backend)
    optimizer, schedule = make_optimizer(cfg, motion.trainable_parameters())
    data = loader(VideoClipDataset(clips), cfg)
    model, optimizer, data, schedule = accelerator.prepare(model, optimizer, data, schedule)
    start = resume_step(accelerator, cfg)
    done = micro_batches_done(cfg, start)
    stream = batches(accelerator, data, done)
    noise_scheduler = training_scheduler(pipe)

    randomness = ItemRandomness(cfg.seed, 0, accelerator, cfg.batch_size, done)

    def loss():
        batch = next(stream)
        generators = randomness.next(len(batch["latents"]))  # frame, noise, timestep: per item, process-independent
        frozen = random_frozen_frames(batch["latents"], cfg.num_frames, generators)  # one frame repeated
        return video_loss(model, noise_scheduler, frozen, text_table[batch["prompt_id"]], cfg.snr_gamma, generators)

    @contextlib.contextmanager
    def validation_setting():  # the adapter at --validation-motion-scale, then back at alpha = 1 for training
        motion.set_scale(cfg.validation_motion_scale)
        try:
            yield
        finally:
            motion.set_scale(1.0)

    validate = periodic_validation(accelerator, pipe, cfg, validation_prompts(cfg, prompts), validation_setting)
    losses = train(
        accelerator,
        model,
        optimizer,
        schedule,
        cfg,
        lambda: [loss],
        start,
        desc="motion adapter",
        examples={"videos": len(clips)},
        validate=validate,
    )
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        motion.save(output / MOTION_ADAPTER)
        sampler = sampler_of(cfg)  # recorded where one was named: customize checks it
        recorded = {"sampler": with_fingerprint(sampler).record()} if sampler.used else {}
        write_run_record(output / MOTION_ADAPTER_RUN, cfg, losses, videos=len(clips), start_step=start, **recorded)
    model, optimizer = accelerator.free_memory(model, optimizer)  # before the group goes: setup.make_accelerator
    accelerator.end_training()
    return output / MOTION_ADAPTER
