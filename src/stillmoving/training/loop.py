"""What both stages share: the trainable video model and the one training loop.

The loop is accelerate's: mixed precision, gradient accumulation, DDP/FSDP when launched with several
processes, seedable data order, and resumable state. Checkpoints hold only the trainable (adapter)
tensors, never the frozen model.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration, set_seed
from diffusers.optimization import get_scheduler
from tqdm.auto import tqdm

from stillmoving.adapters.spatial import SpatialAdapters
from stillmoving.errors import StillMovingError
from stillmoving.training import monitor
from stillmoving.training.config import OptimConfig

CHECKPOINT_PREFIX = "checkpoint-"


class VideoDenoiser(torch.nn.Module):
    """The video UNet and its spatial adapters as one module, so accelerate can wrap and sync it."""

    def __init__(self, unet: torch.nn.Module, spatial: SpatialAdapters | None = None):
        super().__init__()
        self.unet = unet
        self.spatial = spatial

    def forward(self, noisy: torch.Tensor, timesteps: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """noisy (b, c, f, h, w), timesteps (b,), text (b, seq, dim) -> prediction (b, c, f, h, w)."""
        per_frame_text = text.repeat_interleave(noisy.shape[2], dim=0)  # (b*f, seq, dim), as UNetMotionModel wants
        return self.unet(noisy, timesteps, encoder_hidden_states=per_frame_text).sample


def freeze(*modules: torch.nn.Module) -> None:
    for module in modules:
        module.requires_grad_(False)


class ItemRandomness:
    """Per-item random streams: the draws for an item depend on (seed, stream, micro-step, its position in the
    GLOBAL batch), not on which process holds it. So N processes with batch b draw exactly what one process
    with batch N*b draws, and a resumed run draws what an uninterrupted one did."""

    def __init__(self, seed: int, stream: int, accelerator: Accelerator, per_process_batch: int, micro_step: int = 0):
        self.seed, self.stream, self.micro_step = seed, stream, micro_step
        self.offset = accelerator.process_index * per_process_batch

    def next(self, count: int) -> list[torch.Generator]:
        """`count` generators for the items of this process's next micro-batch."""
        generators = []
        for j in range(count):
            key = np.random.SeedSequence([self.seed, self.stream, self.micro_step, self.offset + j])
            generators.append(torch.Generator().manual_seed(int(key.generate_state(1, np.uint64)[0])))
        self.micro_step += 1
        return generators


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
    _save_only_trainable(accelerator)
    return accelerator


def _save_only_trainable(accelerator: Accelerator) -> None:
    """Checkpoints keep the tensors that train; the frozen video model is reloaded from its folder."""

    def hook(models, weights, output_dir):
        for i, model in enumerate(models):
            trainable = {name for name, p in model.named_parameters() if p.requires_grad}
            weights[i] = {k: v for k, v in weights[i].items() if k in trainable}

    accelerator.register_save_state_pre_hook(hook)


def make_optimizer(cfg: OptimConfig, params: list[torch.nn.Parameter]):
    """AdamW and the learning-rate schedule over the adapter parameters only."""
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.adam_weight_decay)
    schedule = get_scheduler(
        cfg.lr_scheduler, optimizer, num_warmup_steps=cfg.lr_warmup_steps, num_training_steps=cfg.steps
    )
    return optimizer, schedule


def batches(accelerator: Accelerator, loader, start: int = 0) -> Iterator[dict]:
    """Endless batches across epochs, starting after `start` already-consumed batches (for resume)."""
    epoch, skip = divmod(start, len(loader))
    while True:
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(epoch)
        yield from accelerator.skip_first_batches(loader, skip) if skip else loader
        epoch, skip = epoch + 1, 0


def checkpoints(output_dir: str | Path) -> list[Path]:
    """Saved training states, oldest first."""
    found = Path(output_dir, "checkpoints").glob(f"{CHECKPOINT_PREFIX}*")
    return sorted(
        (p for p in found if re.fullmatch(rf"{CHECKPOINT_PREFIX}\d+", p.name)),
        key=lambda p: int(p.name[len(CHECKPOINT_PREFIX) :]),
    )


def resume_step(accelerator: Accelerator, cfg: OptimConfig) -> int:
    """Restore the newest checkpoint when resuming; returns the optimizer steps already done."""
    if not cfg.resume:
        return 0
    saved = checkpoints(cfg.output)
    if not saved:
        raise StillMovingError(f"--resume: no checkpoint in {Path(cfg.output, 'checkpoints')}")
    accelerator.load_state(str(saved[-1]), strict=False)
    return int(saved[-1].name[len(CHECKPOINT_PREFIX) :])


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


LossTerms = Callable[[], list[Callable[[], torch.Tensor]]]  # one micro-batch: its loss terms, each computed lazily


def backward_terms(
    accelerator: Accelerator, model: torch.nn.Module, terms: list[Callable[[], torch.Tensor]]
) -> tuple[torch.Tensor, str | None]:
    """Compute and back-propagate each loss term before the next is computed; returns their sum, detached,
    and the first non-finite term's value as text (nothing more is computed then).

    Stage 2's terms run the model in two states (motion scale 1, then 0): backing the first term up before
    the second forward frees its activations first (peak memory is one term's, not two) and keeps gradient
    checkpointing right, since its recomputation happens while the model is still in the first state.
    Under DDP only the last term's backward all-reduces.
    """
    total = torch.zeros(())
    for i, term in enumerate(terms):
        last = i == len(terms) - 1
        with contextlib.nullcontext() if last or not accelerator.sync_gradients else accelerator.no_sync(model):
            loss = term()
            if not torch.isfinite(loss):
                return total, f"{loss.item()}"
            accelerator.backward(loss)
        total = total + loss.detach().float().cpu()
    return total, None


def train(
    accelerator: Accelerator,
    model: torch.nn.Module,
    optimizer,
    schedule,
    cfg: OptimConfig,
    loss_terms: LossTerms,
    start_step: int = 0,
    desc: str = "training",
    examples: dict[str, int] | None = None,
    validate: Callable[[int], None] | None = None,
) -> list[float]:
    """The training loop: accumulate, clip, step, log, validate, checkpoint. Returns the loss of every optimizer
    step. `examples` (what the run trains on, and how many) go into the banner; `validate(step)` runs every
    `cfg.validation_every` steps (training/monitor.py)."""
    params = [p for p in model.parameters() if p.requires_grad]
    check_disk_space(cfg, params)
    monitor.start_trackers(accelerator, cfg, desc)
    monitor.log_banner(accelerator, cfg, examples or {}, params, start_step)
    progress = tqdm(range(cfg.steps), initial=start_step, desc=desc, disable=not accelerator.is_local_main_process)
    losses, step, accumulated, skipped = [], start_step, 0.0, 0

    def non_finite(what: str, value: float | str) -> None:
        """Stop (the last checkpoint stays as it is), or skip the step when the user allowed it."""
        nonlocal skipped
        skipped += 1
        if skipped > cfg.skip_nonfinite_steps:
            allowed = f" (after skipping {cfg.skip_nonfinite_steps})" if cfg.skip_nonfinite_steps else ""
            raise StillMovingError(
                f"{what} became {value} at step {step + 1}{allowed}; lower the learning rate or "
                f"use fp32; the last checkpoint is kept"
            )
        monitor.logger.warning(
            f"skipping step {step + 1}: {what} is {value} ({skipped} of {cfg.skip_nonfinite_steps} allowed)"
        )

    model.train()
    while step < cfg.steps:
        with accelerator.accumulate(model):
            loss, bad = backward_terms(accelerator, model, loss_terms())
            finite = bad is None
            if not finite:
                non_finite("the loss", bad)
            if accelerator.sync_gradients and finite:
                norm = accelerator.clip_grad_norm_(params, cfg.max_grad_norm)
                if norm is not None and not torch.isfinite(torch.as_tensor(norm)):
                    non_finite("the gradient norm", float(norm))
                    finite = False
            if finite:
                optimizer.step()
                schedule.step()
            optimizer.zero_grad(set_to_none=True)
        if not finite:
            accumulated = 0.0
            continue
        accumulated += loss.item() / cfg.grad_accum
        if accelerator.sync_gradients:
            step += 1
            losses.append(accumulated)
            progress.update(1)
            progress.set_postfix(loss=f"{accumulated:.4f}")
            accelerator.log({"loss": accumulated, "lr": schedule.get_last_lr()[0]}, step=step)
            accumulated = 0.0
            if validate is not None and cfg.validation_every and step % cfg.validation_every == 0:
                validate(step)
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                save_checkpoint(accelerator, cfg, step)
    progress.close()
    return losses


def micro_batches_done(cfg: OptimConfig, step: int) -> int:
    return step * cfg.grad_accum
