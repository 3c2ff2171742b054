"""Set-up both stages share: the frozen video model on the device, data loaders, the run record."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path

import torch
from accelerate import Accelerator
from diffusers import DDPMScheduler

from stillmoving.errors import StillMovingError
from stillmoving.files import write_text
from stillmoving.loading import check_num_frames, load_t2v
from stillmoving.pipeline import StillMovingPipeline
from stillmoving.run_folder import RUN_RECORD
from stillmoving.training.config import OptimConfig, TrainConfig
from stillmoving.training.loop import checkpoints, freeze

WEIGHT_DTYPES = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def frozen_video_model(accelerator: Accelerator, cfg: TrainConfig) -> StillMovingPipeline:
    """V with every weight frozen, in the mixed-precision dtype (adapters are added in fp32 later)."""
    pipe = load_t2v(
        cfg.model,
        cfg.motion_modules,
        dtype=WEIGHT_DTYPES[cfg.mixed_precision],
        config_dir=cfg.config_dir,
        domain_adapter=cfg.domain_adapter,
    )
    check_num_frames(pipe, cfg.num_frames)
    pipe.to(accelerator.device)
    pipe.set_progress_bar_config(disable=not accelerator.is_local_main_process, leave=False)
    freeze(pipe.unet, pipe.vae, pipe.text_encoder)
    if cfg.gradient_checkpointing:
        pipe.unet.enable_gradient_checkpointing()
    return pipe


def training_scheduler(pipe: StillMovingPipeline) -> DDPMScheduler:
    """The forward noise process of V's own schedule (and its prediction_type)."""
    return DDPMScheduler.from_config(pipe.scheduler.config)


def loader(dataset, cfg: OptimConfig) -> torch.utils.data.DataLoader:
    """Shuffled batches. The loader's own generator keeps iterator creation off the global RNG, so a run
    resumed mid-epoch draws the same noise as an uninterrupted one."""
    generator = torch.Generator().manual_seed(cfg.seed)
    return torch.utils.data.DataLoader(
        dataset, batch_size=cfg.batch_size, shuffle=True, drop_last=False, generator=generator
    )


def check_output_dir(cfg: OptimConfig) -> None:
    """Before any long work: the output folder is writable and holds no other run's results, unless the
    user resumes that run or asked to overwrite it (then its old checkpoints go, so none can mix in)."""
    output = Path(cfg.output)
    if output.exists() and not output.is_dir():
        raise StillMovingError(f"output {output} is a file, not a folder")
    existing = next((p for p in [output, *output.parents] if p.exists()), Path("."))
    if not os.access(existing, os.W_OK | os.X_OK):
        raise StillMovingError(f"cannot write into {existing} (permission denied); choose another --output")
    if cfg.resume and not checkpoints(output):
        raise StillMovingError(f"--resume: no checkpoint in {output / 'checkpoints'}")
    if not output.is_dir() or cfg.resume:
        return
    results = sorted(p.name for p in output.glob(RUN_RECORD)) + (["checkpoints/"] if checkpoints(output) else [])
    if results and not cfg.overwrite:
        raise StillMovingError(
            f"{output} holds another run's results ({', '.join(results)}); pass --resume to "
            f"continue it, --overwrite to start afresh, or choose another --output"
        )
    if cfg.overwrite:
        shutil.rmtree(output / "checkpoints", ignore_errors=True)


def prepare_output_dir(cfg: OptimConfig) -> Path:
    output = Path(cfg.output)
    output.mkdir(parents=True, exist_ok=True)
    return output


def write_run_record(path: Path, cfg: OptimConfig, losses: list[float], **extra) -> None:
    """What the run was (its config) and how it went (loss per step), next to what it produced."""
    record = {"config": asdict(cfg), "losses": losses, **extra}
    write_text(path, json.dumps(record, indent=2) + "\n")
