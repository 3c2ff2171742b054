"""What a run leaves on disk: its checkpoints (trainable tensors only, written atomically), resuming from
the newest, the disk check before any, and the output folder with its run record.

Checkpoints are accelerate's full state: trainable weights, optimizer, scheduler, RNGs, sampler. They hold
only the trainable (adapter) tensors, never the frozen model.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger

from stillmoving.errors import StillMovingError
from stillmoving.files import write_text
from stillmoving.run_folder import RUN_RECORD
from stillmoving.training.config import OptimConfig

CHECKPOINT_PREFIX = "checkpoint-"
logger = get_logger(__name__)


def save_only_trainable(accelerator: Accelerator) -> None:
    """Checkpoints keep the tensors that train; the frozen video model is reloaded from its folder."""

    def hook(models, weights, output_dir):
        for i, model in enumerate(models):
            trainable = {name for name, p in model.named_parameters() if p.requires_grad}
            weights[i] = {k: v for k, v in weights[i].items() if k in trainable}

    accelerator.register_save_state_pre_hook(hook)


def checkpoints(output_dir: str | Path) -> list[Path]:
    """Saved training states, oldest first."""
    found = Path(output_dir, "checkpoints").glob(f"{CHECKPOINT_PREFIX}*")
    return sorted(
        (p for p in found if re.fullmatch(rf"{CHECKPOINT_PREFIX}\d+", p.name)),
        key=lambda p: int(p.name[len(CHECKPOINT_PREFIX) :]),
    )


def resume_step(accelerator: Accelerator, cfg: OptimConfig) -> int:
    """Restore the newest checkpoint when resuming; returns the optimizer steps already done. One that cannot be
    restored (a damaged file, or a run of other settings) is said so in a warning and the one before it is tried; when
    none can be, one error line. Checkpoints are written atomically, so a killed run leaves none half-written: this is
    for files damaged afterwards."""
    if not cfg.resume:
        return 0
    saved = checkpoints(cfg.output)
    if not saved:
        raise StillMovingError(f"--resume: no checkpoint in {Path(cfg.output, 'checkpoints')}")
    for path in reversed(saved):
        try:
            accelerator.load_state(str(path), strict=False)
        except Exception as error:  # safetensors, pickle, zip or shape errors: what is wrong, in the message
            why = (str(error).strip().splitlines() or [type(error).__name__])[0]
            if path == saved[0]:
                raise StillMovingError(
                    f"--resume: {path} cannot be restored ({why}), nor any checkpoint after it; start afresh with "
                    "--overwrite"
                ) from None
            logger.warning(f"--resume: {path} cannot be restored ({why}); trying the checkpoint before it")
            continue
        return int(path.name[len(CHECKPOINT_PREFIX) :])
    raise AssertionError("unreachable: the oldest checkpoint returns or raises")


def micro_batches_done(cfg: OptimConfig, step: int) -> int:
    return step * cfg.grad_accum


def save_checkpoint(accelerator: Accelerator, cfg: OptimConfig, step: int) -> None:
    """accelerate's full state (trainable weights, optimizer, scheduler, RNGs, sampler), written into a hidden
    folder and renamed into place: a run killed mid-save leaves the previous checkpoints as they were, and
    `checkpoints()` never lists the partial one."""
    accelerator.wait_for_everyone()
    root = Path(cfg.output, "checkpoints")
    final, partial = root / f"{CHECKPOINT_PREFIX}{step}", root / f".{CHECKPOINT_PREFIX}{step}.partial"
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)  # a killed run's leftover
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if final.exists():  # the same step saved by an earlier run that was resumed from before it
            shutil.rmtree(final)
        os.replace(partial, final)
        for old in checkpoints(cfg.output)[: -cfg.checkpoints_total_limit]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()


def check_disk_space(cfg: OptimConfig, params: list[torch.nn.Parameter]) -> None:
    """Checkpoints hold the trained tensors and AdamW's two moments: refuse to start if the disk cannot take
    the `checkpoints_total_limit` + 1 of them that exist at once while a new one is written."""
    if not cfg.checkpoint_every:
        return
    need = 3 * sum(p.numel() * 4 for p in params) * (cfg.checkpoints_total_limit + 1)
    free = shutil.disk_usage(Path(cfg.output)).free
    if free < need:
        raise StillMovingError(
            f"checkpoints need about {need / 2**20:.0f} MiB in {cfg.output}, only "
            f"{free / 2**20:.0f} MiB are free; free space, lower --checkpoints-total-limit "
            f"or checkpoint less often"
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
