"""Set-up every trainer shares: the accelerator, the frozen model on the device (the video model V for the
stages, the base T2I M for DreamBooth and style LoRA) and the trainable module around it, freezing, the
optimizer and its schedule, the data loaders, and the training noise schedule."""

from __future__ import annotations

from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration, set_seed
from diffusers import DDPMScheduler, DiffusionPipeline, StableDiffusionPipeline, StableDiffusionXLPipeline
from diffusers.optimization import get_scheduler

from stillmoving.adapters.spatial import SpatialAdapters
from stillmoving.backends import SDXL, backend_of, family_of_folder
from stillmoving.data.sources import PromptBank
from stillmoving.errors import StillMovingError
from stillmoving.few_step import sampler_of
from stillmoving.loading import check_num_frames, load_t2v, t2i_pipeline
from stillmoving.pipeline import StillMovingPipeline
from stillmoving.training import monitor
from stillmoving.training.checkpoints import save_only_trainable
from stillmoving.training.config import OptimConfig, T2ITrainConfig, TrainConfig
from stillmoving.validation import local_or_hub

WEIGHT_DTYPES = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class VideoDenoiser(torch.nn.Module):
    """The video UNet and its spatial adapters as one module, so accelerate can wrap and sync it. `backend`
    (`backends.backend_of(pipe)`) turns a text row into the UNet's conditioning (SDXL: added pooled text and time
    ids); without one, the row is SD1.5's CLIP hidden states."""

    def __init__(self, unet: torch.nn.Module, spatial: SpatialAdapters | None = None, backend=None):
        super().__init__()
        self.unet = unet
        self.spatial = spatial
        self.backend = backend

    def forward(self, noisy: torch.Tensor, timesteps: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """noisy (b, c, f, h, w), timesteps (b,), text (b, seq, dim) -> prediction (b, c, f, h, w)."""
        if self.backend is not None:
            return self.unet(noisy, timesteps, **self.backend.unet_inputs(text, noisy)).sample
        per_frame_text = text.repeat_interleave(noisy.shape[2], dim=0)  # (b*f, seq, dim), as UNetMotionModel wants
        return self.unet(noisy, timesteps, encoder_hidden_states=per_frame_text).sample


def freeze(*modules: torch.nn.Module) -> None:
    for module in modules:
        module.requires_grad_(False)


def frozen_video_model(accelerator: Accelerator, cfg: TrainConfig) -> StillMovingPipeline:
    """V with every weight frozen, in the mixed-precision dtype (adapters are added in fp32 later)."""
    pipe = load_t2v(
        cfg.model,
        cfg.motion_modules,
        dtype=WEIGHT_DTYPES[cfg.mixed_precision],
        config_dir=cfg.config_dir,
        domain_adapter=cfg.domain_adapter,
        sampler=sampler_of(cfg),
    )
    check_num_frames(pipe, cfg.num_frames)
    pipe.to(accelerator.device)
    pipe.set_progress_bar_config(disable=not accelerator.is_local_main_process, leave=False)
    freeze(pipe.unet, pipe.vae, *backend_of(pipe).text_encoders().values())
    if cfg.gradient_checkpointing:
        enable_gradient_checkpointing(pipe.unet)
    return pipe


def enable_gradient_checkpointing(unet: torch.nn.Module) -> None:
    """Checkpointing in the video UNet, or `--gradient-checkpointing` refused in one line where diffusers has none
    (UNet3DConditionModel: ModelScope/ZeroScope)."""
    try:
        unet.enable_gradient_checkpointing()
    except ValueError as error:
        raise StillMovingError(f"--gradient-checkpointing: {str(error).splitlines()[0]} Drop the flag.") from None


def training_scheduler(pipe: StillMovingPipeline) -> DDPMScheduler:
    """The forward noise process of V's schedule (and its prediction_type): its own, or that of the scheduler
    `--scheduler` swapped in (the few-step presets' linear betas, which AnimateDiff's motion modules trained on)."""
    return DDPMScheduler.from_config(pipe.scheduler.config)


def make_accelerator(cfg: OptimConfig) -> Accelerator:
    """The trainers' Accelerator (precision, accumulation, seeded data order, trackers, trainable-only checkpoints).

    Each trainer ends with `model, optimizer = accelerator.free_memory(model, optimizer)` before `end_training`: on
    several processes the prepared model is a DistributedDataParallel whose C++ reducer holds the gloo process group.
    Freed after `end_training` destroyed the group, the reducer is the group's last owner, and torch 2.13 then joins
    gloo's worker thread while holding the GIL, which that thread needs to free the last barrier: a rank that reaches
    it right after that barrier hangs for good (seen once in CI, on the non-main rank of a 2-process `customize`).
    Freed first, the group outlives the reducer and is destroyed from Python, which releases the GIL."""
    accelerator = Accelerator(
        mixed_precision=cfg.mixed_precision,
        gradient_accumulation_steps=cfg.grad_accum,
        project_config=ProjectConfiguration(
            project_dir=cfg.output, logging_dir=str(Path(cfg.output, monitor.LOGS_DIR))
        ),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
        log_with=monitor.trackers(cfg),
    )
    monitor.configure_logging(accelerator)
    set_seed(cfg.seed)
    save_only_trainable(accelerator)
    return accelerator


def make_optimizer(cfg: OptimConfig, params: list[torch.nn.Parameter]):
    """AdamW and the learning-rate schedule over the adapter parameters only."""
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.adam_weight_decay)
    schedule = get_scheduler(
        cfg.lr_scheduler, optimizer, num_warmup_steps=cfg.lr_warmup_steps, num_training_steps=cfg.steps
    )
    return optimizer, schedule


def loader(dataset, cfg: OptimConfig) -> torch.utils.data.DataLoader:
    """Shuffled batches. The loader's own generator keeps iterator creation off the global RNG, so a run
    resumed mid-epoch draws the same noise as an uninterrupted one."""
    generator = torch.Generator().manual_seed(cfg.seed)
    return torch.utils.data.DataLoader(
        dataset, batch_size=cfg.batch_size, shuffle=True, drop_last=False, generator=generator
    )


def sdxl_backend(pipe) -> SDXL | None:
    """The SDXL backend of a T2I pipeline (what `ImageDenoiser` and `text_table` condition the UNet through), or
    None for SD1.5, whose UNet takes the CLIP hidden states alone."""
    backend = backend_of(pipe)
    return backend if isinstance(backend, SDXL) else None


class ImageDenoiser(torch.nn.Module):
    """The T2I UNet (and the text encoders when they train) as one module, so accelerate can wrap and sync it.
    `backend` (`backends.backend_of(pipe)`, SDXL's) turns a text row into the UNet's conditioning (the pooled text
    and the time ids as `added_cond_kwargs`), each image a one-frame video; without one, the row is SD1.5's CLIP
    hidden states. `prompts`: SDXL's text encoders train, and a row is a prompt's index, encoded by the pipeline's
    own `encode_prompt` (`SDXL.prompt_rows`) with gradients."""

    def __init__(
        self,
        unet: torch.nn.Module,
        text_encoder: torch.nn.Module | None = None,
        backend=None,
        text_encoder_2: torch.nn.Module | None = None,
        prompts: list[str] | None = None,
    ):
        super().__init__()
        self.unet = unet
        self.text_encoder = text_encoder
        self.text_encoder_2 = text_encoder_2
        self.backend = backend
        self.prompts = prompts

    def forward(self, noisy: torch.Tensor, timesteps: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """noisy (b, c, h, w), timesteps (b,), text: embeddings (b, seq, dim), token ids (b, seq) when SD1.5's
        text encoder trains, prompt indices (b,) when SDXL's do -> prediction (b, c, h, w)."""
        if self.prompts is not None:
            text = self.backend.prompt_rows([self.prompts[i] for i in text.tolist()])
        elif self.text_encoder is not None:
            text = self.text_encoder(text)[0]
        if self.backend is None:
            return self.unet(noisy, timesteps, encoder_hidden_states=text).sample
        return self.unet(noisy, timesteps, **self.backend.unet_inputs(text, noisy.unsqueeze(2))).sample


def check_base_t2i(model: str) -> dict:
    """The base T2I folder's `model_index.json`, before anything loads: a diffusers pipeline folder, or refused."""
    model = local_or_hub(model)
    try:
        return DiffusionPipeline.load_config(model)
    except (OSError, ValueError) as error:
        raise StillMovingError(f"{model} is not a diffusers pipeline folder: {str(error).splitlines()[0]}") from None


def load_base_t2i(model: str, dtype: torch.dtype = torch.float32) -> StableDiffusionPipeline:
    """M as a Stable Diffusion pipeline (StableDiffusionXLPipeline for the SDXL family, `family_of_folder`): an
    AnimateDiff, AnimateDiff-SDXL (or ModelScope/ZeroScope) folder's T2I part, or a Stable Diffusion (XL) folder."""
    index = check_base_t2i(model)
    model = local_or_hub(model)
    if index.get("unet", [None, None])[1] in ("UNetMotionModel", "UNet3DConditionModel"):
        t2v = load_t2v(model, dtype=dtype)
        return t2i_pipeline(t2v, backend_of(t2v).t2i_unet(t2v.unet))
    sdxl = family_of_folder(model) is SDXL
    try:
        if sdxl:
            pipe = StableDiffusionXLPipeline.from_pretrained(model, dtype=dtype, add_watermarker=False)
        else:
            pipe = StableDiffusionPipeline.from_pretrained(
                model, dtype=dtype, safety_checker=None, requires_safety_checker=False
            )
    except (OSError, ValueError, TypeError) as error:
        raise StillMovingError(
            f"cannot load a Stable Diffusion{' XL' * sdxl} model from {model}: {str(error).splitlines()[0]}"
        ) from None
    pipe.set_progress_bar_config(leave=False)
    return pipe


def frozen_image_model(accelerator: Accelerator, cfg: T2ITrainConfig) -> StableDiffusionPipeline:
    """M (the base T2I) with every weight frozen, on the device in the mixed-precision dtype (SDXL's VAE stays in
    float32 under fp16, as in diffusers' SDXL DreamBooth script: it overflows in half precision)."""
    pipe = load_base_t2i(cfg.model, WEIGHT_DTYPES[cfg.mixed_precision]).to(accelerator.device)
    pipe.set_progress_bar_config(disable=not accelerator.is_local_main_process, leave=False)
    backend = backend_of(pipe)
    freeze(pipe.unet, pipe.vae, *backend.text_encoders().values())
    if isinstance(backend, SDXL) and pipe.vae.dtype == torch.float16:
        pipe.vae.to(torch.float32)
    return pipe


def text_table(bank: PromptBank, pipe: StableDiffusionPipeline, token_ids: bool) -> torch.Tensor:
    """Row i for prompt i: embeddings (P, seq, dim) (SDXL: `SDXL.encode_prompts`' rows, the pooled embedding after
    the hidden states), or, for text encoders that train, token ids (P, seq) (SD1.5) or the prompt's index (SDXL,
    encoded in `ImageDenoiser`)."""
    sdxl = sdxl_backend(pipe)
    if sdxl is not None:
        return torch.arange(len(bank.prompts)) if token_ids else sdxl.encode_prompts(bank.prompts)
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
