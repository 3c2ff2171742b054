"""What a user watches during a training run, the way diffusers' training scripts show it.

- Log lines go through accelerate's `get_logger` (the local main process speaks; the others only on errors) to the
  library's logger "stillmoving", which has its own stderr handler, as diffusers' library logger has. The loop
  logs a banner before the first step (examples, batch sizes, steps, trainable parameters).
- `--report-to tensorboard|wandb` hands accelerate a tracker: the loss and learning rate of every step, and the
  validation videos, go to it (TensorBoard's logs in `<output>/logs`). Off by default.
- `--validation-every N`: every N steps, one video per validation prompt (seeds `--validation-seed`, +1, ...) at
  `--validation-motion-scale`, written to `<output>/validation/step-NNNNNN/` and sent to the tracker. Making them
  leaves the training untouched: the random state is restored afterwards, so the weights are those of a run
  without validation, bit for bit.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator, PartialState
from accelerate.logging import get_logger
from tqdm.auto import tqdm

from stillmoving.data.video_io import to_uint8_frames, write_video

LIBRARY_LOGGER = "stillmoving"
VALIDATION_DIR = "validation"  # also the folder of customize's end-of-run check (naive_check.py), at its top
LOGS_DIR = "logs"  # TensorBoard's event files
DEFAULT_VALIDATION_PROMPTS = 4  # without --validation-prompt: the first distinct training prompts, at most these

logger = get_logger(__name__)


class _TqdmHandler(logging.Handler):
    """Log lines above the progress bars, on whatever stderr is at the time of the line; accelerate's "[RANK 0] "
    only when there are several processes."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            if PartialState._shared_state and PartialState().num_processes == 1:
                line = line.removeprefix("[RANK 0] ")
            tqdm.write(line, file=sys.stderr)
        except Exception:  # logging's contract: a failing handler reports, never raises
            self.handleError(record)


def configure_logging(accelerator: Accelerator) -> None:
    """diffusers' habit: INFO from the local main process, errors only from the others (diffusers' and
    transformers' own loggers too there)."""
    library = logging.getLogger(LIBRARY_LOGGER)
    if not any(isinstance(h, _TqdmHandler) for h in library.handlers):
        handler = _TqdmHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        library.addHandler(handler)
        library.propagate = False  # as diffusers' library logger: its own handler, no duplicate through the root
    library.setLevel(logging.INFO if accelerator.is_local_main_process else logging.ERROR)
    if not accelerator.is_local_main_process:
        from diffusers.utils import logging as diffusers_logging
        from transformers.utils import logging as transformers_logging

        diffusers_logging.set_verbosity_error()
        transformers_logging.set_verbosity_error()


def trackers(cfg) -> list | None:
    """accelerate's `log_with` for `--report-to` (checked before any model loads: validation.check_tracker)."""
    return None if cfg.report_to == "none" else [cfg.report_to]


def start_trackers(accelerator: Accelerator, cfg, name: str) -> None:
    """Start the trackers of `log_with` with the run's settings (the scalar ones: TensorBoard's hparams take no
    lists)."""
    if not accelerator.log_with:
        return
    settings = {k: v for k, v in asdict(cfg).items() if isinstance(v, bool | int | float | str)}
    accelerator.init_trackers(f"stillmoving-{name.replace(' ', '-')}", config=settings)


def log_banner(accelerator: Accelerator, cfg, examples: dict[str, int], params, start_step: int) -> None:
    """The lines diffusers' scripts print before training, plus the trainable parameters."""
    total = cfg.batch_size * accelerator.num_processes * cfg.grad_accum
    logger.info("***** Running training *****")
    for what, count in examples.items():
        logger.info(f"  Num examples ({what}) = {count}")
    logger.info(f"  Instantaneous batch size per device = {cfg.batch_size}")
    logger.info(f"  Total train batch size (w. parallel, distributed & accumulation) = {total}")
    logger.info(f"  Gradient accumulation steps = {cfg.grad_accum}")
    logger.info(f"  Total optimization steps = {cfg.steps}")
    logger.info(f"  Trainable parameters = {sum(p.numel() for p in params)}")
    if start_step:
        logger.info(f"  Resuming from step {start_step}")


def _sample_arguments(cfg, seed: int) -> dict:
    """The pipeline arguments of the run's validation samples: its size and sampling settings, seeded by `seed`."""
    from stillmoving.inference import sampling_arguments

    return sampling_arguments(cfg.height, cfg.width, cfg.sample_steps, cfg.guidance_scale, seed)


@torch.no_grad()
def render_video(pipe, prompt: str, seed: int, cfg) -> np.ndarray:
    """One video (F, H, W, 3) uint8 at the run's size and sampling settings, seeded by `seed`."""
    return to_uint8_frames(pipe(prompt, num_frames=cfg.num_frames, **_sample_arguments(cfg, seed)).frames[0])


@torch.no_grad()
def render_image(t2i, prompt: str, seed: int, cfg) -> np.ndarray:
    """One image (H, W, 3) uint8 of a T2I pipeline at the run's size and sampling settings, seeded by `seed`."""
    return to_uint8_frames(t2i(prompt, **_sample_arguments(cfg, seed)).images[0][None])[0]


def first_validation_seed(cfg) -> int:
    return cfg.seed if cfg.validation_seed is None else cfg.validation_seed


def validation_prompts(cfg, training_prompts: list[str]) -> list[str]:
    """The periodic validation's prompts: the user's, else the first distinct training prompts."""
    return (
        list(dict.fromkeys(cfg.validation_prompt)) or list(dict.fromkeys(training_prompts))[:DEFAULT_VALIDATION_PROMPTS]
    )


def _file_name(index: int, prompt: str) -> str:
    return f"{index:03d}_{re.sub(r'[^a-z0-9]+', '_', prompt.lower()).strip('_')[:48]}.gif"


@contextlib.contextmanager
def _sampling(accelerator: Accelerator, pipe):
    """Generation inside a training run: eval mode, no inner progress bar, and every random state restored after."""
    training, bar = pipe.unet.training, dict(getattr(pipe, "_progress_bar_config", {}))
    devices = [accelerator.device.index or 0] if accelerator.device.type == "cuda" else []
    pipe.unet.eval()
    pipe.set_progress_bar_config(disable=True)
    try:
        with torch.random.fork_rng(devices=devices), accelerator.autocast():
            yield
    finally:
        pipe.unet.train(training)
        pipe._progress_bar_config = bar


def log_videos(accelerator: Accelerator, step: int, videos: dict[str, np.ndarray], files: dict[str, Path]) -> None:
    """Validation videos to the trackers: a video for wandb (its GIF), the frames as images for the others."""
    for tracker in accelerator.trackers:
        if tracker.name == "wandb":
            import wandb

            tracker.log({f"validation/{k}": wandb.Video(str(files[k])) for k in videos}, step=step)
        elif hasattr(tracker, "log_images"):
            extra = {"dataformats": "NHWC"} if tracker.name == "tensorboard" else {}
            tracker.log_images({f"validation/{k}": v for k, v in videos.items()}, step=step, **extra)


def periodic_validation(
    accelerator: Accelerator, pipe, cfg, prompts: list[str], setting: Callable[[], contextlib.AbstractContextManager]
) -> Callable[[int], None] | None:
    """`validate(step)` for the training loop (None when `--validation-every` is 0): one video per prompt, made
    inside `setting()` (the stage's motion scale and adapters), written to `validation/step-NNNNNN/` and sent to the
    trackers, on the main process."""
    if not cfg.validation_every or not prompts:
        return None
    seed = first_validation_seed(cfg)

    def validate(step: int) -> None:
        if accelerator.is_main_process:
            with _sampling(accelerator, pipe), setting():
                videos = {_file_name(i, p)[:-4]: render_video(pipe, p, seed + i, cfg) for i, p in enumerate(prompts)}
            folder = Path(cfg.output, VALIDATION_DIR, f"step-{step:06d}")
            files = {name: write_video(video, folder / f"{name}.gif") for name, video in videos.items()}
            log_videos(accelerator, step, videos, files)
            logger.info(f"step {step}: {len(videos)} validation video(s) in {folder}")
        accelerator.wait_for_everyone()

    return validate
