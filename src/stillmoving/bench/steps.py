"""The training steps the bench times, all on one shared model (`Rig`) that each stage puts in its state.

floor            forward + input-gradient backward of the frozen video model V on one batch: no adapter
                 inside the UNet trains for less, since its gradient must cross the whole video model
motion           stage 1: MotionLoRA on the temporal q/k/v, a frozen video of cached latents at alpha 1
spatial          stage 2 as `customize` runs it: cached latents and text, the frozen motion adapter baked
                 per scale, the frozen-video term (alpha 1) back-propagated before the prior term (alpha 0)
straightforward  stage 2 written the easy way: every frame VAE-encoded and every prompt text-encoded each
                 step, fp32, every frozen weight left with requires_grad (gradients computed, never used),
                 peft's LoRA branch at both scales, one backward of the summed loss
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from diffusers import AutoencoderKL, DiffusionPipeline
from diffusers.training_utils import cast_training_params

from stillmoving.adapters.motion import MotionLoRA
from stillmoving.adapters.spatial import SpatialAdapters
from stillmoving.backends import SDXL, backend_of
from stillmoving.bench.models import Batch
from stillmoving.data.frozen import frozen_video, random_frozen_frames
from stillmoving.losses import video_loss
from stillmoving.training.config import CustomizeConfig, MotionAdapterConfig
from stillmoving.training.setup import VideoDenoiser, enable_gradient_checkpointing, freeze, training_scheduler

MOTION_RANK = MotionAdapterConfig.rank  # the training commands' defaults
SPATIAL_RANK = CustomizeConfig.spatial_rank
PRIOR_LOSS_WEIGHT = CustomizeConfig.prior_loss_weight
LEARNING_RATE, MAX_GRAD_NORM = 1e-4, 1.0


class Rig:
    """One preset's video model with a motion adapter and spatial adapters, and the state of each stage. The
    family's backend (`backends.backend_of`: SD1.5, SDXL, ModelScope/ZeroScope) conditions the UNet, as in training."""

    def __init__(
        self, pipe: DiffusionPipeline, batch: Batch, num_frames: int, dtype: torch.dtype, gradient_checkpointing: bool
    ):
        self.pipe, self.batch, self.num_frames, self.dtype = pipe, batch, num_frames, dtype
        self.backend = backend_of(pipe)
        self.modules = (pipe.unet, pipe.vae, *self.backend.text_encoders().values())
        freeze(*self.modules)
        pipe.to(dtype=dtype)  # frozen weights in the training precision, as training/setup.py loads them
        if gradient_checkpointing:
            enable_gradient_checkpointing(pipe.unet)
        self.motion = MotionLoRA.inject(pipe.unet, rank=MOTION_RANK)
        self.spatial = SpatialAdapters.for_unet(pipe.unet, SPATIAL_RANK).to(pipe.unet.device)
        self.scheduler = training_scheduler(pipe)
        self.model = VideoDenoiser(pipe.unet, self.spatial, self.backend)
        self.precision = (
            contextlib.nullcontext()
            if dtype == torch.float32  # (also on the meta device)
            else torch.autocast(pipe.unet.device.type, dtype=dtype)
        )

    def _frozen(self, dtype: torch.dtype) -> None:
        """Every weight frozen and without gradients, in `dtype`; the motion adapter on peft's branch."""
        self.motion.unbake()
        for module in self.modules:
            module.requires_grad_(False)
            module.zero_grad(set_to_none=True)  # the straightforward step's unused gradients
        if self.pipe.unet.dtype != dtype:
            self.pipe.to(dtype=dtype)

    def enter_floor(self) -> None:
        """V itself: scale 0 of a baked motion adapter is V's own weights without the LoRA branch."""
        self._frozen(self.dtype)
        self.spatial.detach()
        self.motion.bake([1.0])
        self.motion.set_scale(0.0)

    def enter_motion(self) -> None:
        self._frozen(self.dtype)
        self.spatial.detach()
        for p in self.motion.trainable_parameters():
            p.requires_grad_(True)
        cast_training_params(self.pipe.unet)  # the adapter in fp32, as stage 1 trains it
        self.motion.set_scale(1.0)

    def enter_spatial(self) -> None:
        self._frozen(self.dtype)
        self.motion.bake([1.0])  # as spatial_stage.attach_motion_adapter does
        self.spatial.attach(self.pipe.unet)

    def enter_straightforward(self) -> None:
        self._frozen(torch.float32)
        for module in self.modules:
            module.requires_grad_(True)
        self.spatial.attach(self.pipe.unet)

    def for_generation(self) -> None:
        """Inference as `generate` runs a customization at motion scale 0: no motion adapter, no hooks."""
        self._frozen(self.dtype)
        self.pipe.unet.delete_adapters(self.motion.name)
        self.spatial.detach()


def optimizer_step(params: list[torch.nn.Parameter], optimizer: torch.optim.Optimizer) -> None:
    """What the training loop does after backward: clip, step, clear."""
    torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def floor_step(rig: Rig) -> Callable[[], None]:
    """Forward and backward to the input latents; no parameter requires grad."""
    model = VideoDenoiser(rig.pipe.unet, backend=rig.backend)

    def step():
        latents = rig.batch.prior_latents.detach().requires_grad_(True)
        with rig.precision:
            loss = video_loss(model, rig.scheduler, latents, rig.batch.text)
        loss.backward()

    return step


def motion_step(rig: Rig) -> Callable[[], None]:
    """Stage 1 (training/motion_stage.py): one random frame of each cached video, repeated, at alpha 1."""
    params = rig.motion.trainable_parameters()
    optimizer = torch.optim.AdamW(params, lr=LEARNING_RATE)
    model = VideoDenoiser(rig.pipe.unet, backend=rig.backend)

    def step():
        frozen = random_frozen_frames(rig.batch.prior_latents, rig.num_frames)  # (b, c, f, h, w)
        with rig.precision:
            loss = video_loss(model, rig.scheduler, frozen, rig.batch.text)
        loss.backward()
        optimizer_step(params, optimizer)

    return step


def spatial_step(rig: Rig) -> Callable[[], None]:
    """Stage 2 (training/spatial_stage.py): image latents repeated into frozen videos, prompts encoded once,
    each term back-propagated before the motion scale switches (training/loop.py `backward_terms`)."""
    params = rig.spatial.trainable_parameters()
    optimizer = torch.optim.AdamW(params, lr=LEARNING_RATE)
    frozen = frozen_video(rig.batch.image_latents, rig.num_frames)  # (b, c, f, h, w)
    terms = ((1.0, 1.0, frozen), (0.0, PRIOR_LOSS_WEIGHT, rig.batch.prior_latents))

    def step():
        for scale, weight, latents in terms:
            rig.motion.set_scale(scale)
            with rig.precision:
                loss = weight * video_loss(rig.model, rig.scheduler, latents, rig.batch.text)
            loss.backward()
        optimizer_step(params, optimizer)

    return step


def _encode_frames(vae: AutoencoderKL, pixels: torch.Tensor) -> torch.Tensor:
    """(b, f, 3, H, W) -> (b, c, f, h, w), every frame through the VAE, with autograd."""
    latents = vae.encode(pixels.flatten(0, 1)).latent_dist.sample() * vae.config.scaling_factor
    return latents.unflatten(0, pixels.shape[:2]).transpose(1, 2)


def text_rows(pipe: DiffusionPipeline, prompts: list[str]) -> torch.Tensor:
    """The prompts text-encoded with autograd, in the rows the family's `Backend.encode_prompts` caches (SDXL: both
    encoders through the pipeline's own `encode_prompt`, the pooled embedding in extra rows; `SDXL.prompt_rows`)."""
    backend = backend_of(pipe)
    if isinstance(backend, SDXL):
        return backend.prompt_rows(prompts)
    tokens = pipe.tokenizer(
        prompts, padding="max_length", max_length=pipe.tokenizer.model_max_length, truncation=True, return_tensors="pt"
    ).input_ids.to(pipe.text_encoder.device)
    return pipe.text_encoder(tokens)[0]  # (b, seq, dim): CLIP's last hidden states


def straightforward_loss(
    pipe: DiffusionPipeline,
    model: VideoDenoiser,
    scheduler,
    motion: MotionLoRA,
    images: torch.Tensor,
    prior_pixels: torch.Tensor,
    prompts: list[str],
    num_frames: int,
) -> torch.Tensor:
    """Stage 2's loss as it is easy to write: tokenize, text-encode and VAE-encode every frame, every step. `model`
    conditions the UNet through the family's backend."""
    text = text_rows(pipe, prompts)
    frozen = _encode_frames(pipe.vae, images.unsqueeze(1).expand(-1, num_frames, -1, -1, -1))
    prior = _encode_frames(pipe.vae, prior_pixels)
    motion.set_scale(1.0)
    loss = video_loss(model, scheduler, frozen, text)
    motion.set_scale(0.0)
    return loss + PRIOR_LOSS_WEIGHT * video_loss(model, scheduler, prior, text)


def straightforward_step(rig: Rig) -> Callable[[], None]:
    """Stage 2 without caches, fp32, nothing frozen for autograd; only the adapters step."""
    params = rig.spatial.trainable_parameters()
    optimizer = torch.optim.AdamW(params, lr=LEARNING_RATE)

    def step():
        straightforward_loss(
            rig.pipe,
            rig.model,
            rig.scheduler,
            rig.motion,
            rig.batch.images,
            rig.batch.prior_pixels,
            rig.batch.prompts,
            rig.num_frames,
        ).backward()
        optimizer_step(params, optimizer)

    return step
