"""Set-up every trainer shares: the accelerator, the frozen model on the device (the video model V for the
stages, the base T2I M for DreamBooth and style LoRA) and the trainable module around it, freezing, the
optimizer and its schedule, the data loaders, and the training noise schedule."""

from __future__ import annotations

from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration, set_seed
from diffusers import DDPMScheduler, DiffusionPipeline, StableDiffusionPipeline
from diffusers.optimization import get_scheduler

from stillmoving.adapters.spatial import SpatialAdapters
from stillmoving.backends import SDXL, backend_of
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


def per_frame_prediction(
    unet2d: torch.nn.Module, noisy: torch.Tensor, timesteps: torch.Tensor, text: torch.Tensor
) -> torch.Tensor:
    """A T2I UNet's prediction for every frame of noisy videos (b, c, f, h, w) on its own, at the videos'
    timesteps (b,) and text (b, seq, dim): (b, c, f, h, w). `customize --frozen-target t2i` fits the video model's
    prediction on frozen videos to the customized T2I's, frame by frame."""
    b, c, f, h, w = noisy.shape
    frames = noisy.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w).to(unet2d.dtype)
    out = unet2d(
        frames, timesteps.repeat_interleave(f), encoder_hidden_states=text.repeat_interleave(f, dim=0).to(unet2d.dtype)
    ).sample
    return out.reshape(b, f, c, h, w).permute(0, 2, 1, 3, 4)


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
        try:
            pipe.unet.enable_gradient_checkpointing()
        except ValueError as error:  # diffusers' UNet3DConditionModel (ModelScope/ZeroScope) has none
            raise StillMovingError(f"--gradient-checkpointing: {str(error).splitlines()[0]} Drop the flag.") from None
    return pipe


def training_scheduler(pipe: StillMovingPipeline) -> DDPMScheduler:
    """The forward noise process of V's schedule (and its prediction_type): its own, or that of the scheduler
    `--scheduler` swapped in (the few-step presets' linear betas, which AnimateDiff's motion modules trained on)."""
    return DDPMScheduler.from_config(pipe.scheduler.config)


def make_accelerator(cfg: OptimConfig) -> Accelerator:
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


def load_base_t2i(model: str, dtype: torch.dtype = torch.float32) -> StableDiffusionPipeline:
    """M as a Stable Diffusion pipeline: an AnimateDiff (or ModelScope/ZeroScope) folder's T2I part, or a Stable
    Diffusion folder."""
    model = local_or_hub(model)
    try:
        index = DiffusionPipeline.load_config(model)
    except (OSError, ValueError) as error:
        raise StillMovingError(f"{model} is not a diffusers pipeline folder: {str(error).splitlines()[0]}") from None
    if SDXL.matches_index(index):
        raise StillMovingError(
            f"{model} is an SDXL model: the t2i verbs train SD1.5 T2Is only for now; make the SDXL DreamBooth or LoRA "
            "with diffusers' train_dreambooth_lora_sdxl.py, fuse it, and pass the folder to customize as --customized"
        )
    if index.get("unet", [None, None])[1] in ("UNetMotionModel", "UNet3DConditionModel"):
        t2v = load_t2v(model, dtype=dtype)
        return t2i_pipeline(t2v, backend_of(t2v).t2i_unet(t2v.unet))
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


def frozen_image_model(accelerator: Accelerator, cfg: T2ITrainConfig) -> StableDiffusionPipeline:
    """M (the base T2I) with every weight frozen, on the device in the mixed-precision dtype."""
    pipe = load_base_t2i(cfg.model, WEIGHT_DTYPES[cfg.mixed_precision]).to(accelerator.device)
    pipe.set_progress_bar_config(disable=not accelerator.is_local_main_process, leave=False)
    freeze(pipe.unet, pipe.vae, pipe.text_encoder)
    return pipe


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
