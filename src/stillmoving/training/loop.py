"""The one training loop every trainer runs on: the endless, resumable batch stream, per-item randomness,
each loss term back-propagated in turn, and accumulate, clip, step, log, validate, checkpoint.

The loop is accelerate's: mixed precision, gradient accumulation, DDP/FSDP when launched with several
processes, seedable data order, and resumable state (training/checkpoints.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import numpy as np
import torch
from accelerate import Accelerator
from tqdm.auto import tqdm

from stillmoving.errors import StillMovingError
from stillmoving.training import monitor
from stillmoving.training.checkpoints import check_disk_space, save_checkpoint
from stillmoving.training.config import OptimConfig


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


def batches(accelerator: Accelerator, loader, start: int = 0) -> Iterator[dict]:
    """Endless batches across epochs, starting after `start` already-consumed batches (for resume)."""
    epoch, skip = divmod(start, len(loader))
    while True:
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(epoch)
        yield from accelerator.skip_first_batches(loader, skip) if skip else loader
        epoch, skip = epoch + 1, 0


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
