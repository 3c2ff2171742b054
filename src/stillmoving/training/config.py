"""Typed configs of the two training stages; one comment per field. Unknown keys are an error."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from stillmoving.errors import StillMovingError


@dataclass
class OptimConfig:
    """Fields every training command shares (both Still-Moving stages and the T2I customizers)."""

    model: str  # the base model folder; each command says which kind it takes
    output_dir: str  # where weights, checkpoints and the run record go
    height: int = 512  # training resolution; images/frames are centre-cropped and resized to it
    width: int = 512
    max_train_steps: int = 500  # optimizer steps
    train_batch_size: int = 1  # items (videos or images) per process per micro-step
    gradient_accumulation_steps: int = 1  # micro-steps per optimizer step
    learning_rate: float = 1e-4  # AdamW learning rate of the trained parameters
    lr_scheduler: str = "constant"  # any of diffusers.optimization.get_scheduler's names
    lr_warmup_steps: int = 0  # linear warm-up steps
    adam_weight_decay: float = 0.0  # AdamW weight decay (LoRA practice: none)
    max_grad_norm: float = 1.0  # gradient clipping
    mixed_precision: str = "no"  # "no", "fp16" or "bf16" (accelerate); trained parameters stay fp32
    gradient_checkpointing: bool = False  # trade compute for memory in the UNet
    snr_gamma: float | None = None  # min-SNR-gamma loss weighting; None = plain MSE
    seed: int = 0  # seeds data order, noise, init and sampling; same seed -> same weights on CPU
    checkpointing_steps: int = 0  # save resumable state every N steps (0: only at the end)
    checkpoints_total_limit: int = 2  # keep the last K checkpoints
    resume: bool = False  # continue from the newest checkpoint in output_dir
    overwrite: bool = False  # start afresh in an output_dir that holds another run's results
    skip_nonfinite_steps: int = 0  # skip up to N steps whose loss or gradient is NaN/inf; beyond that, stop


@dataclass
class TrainConfig(OptimConfig):
    """Fields both Still-Moving stages share. Defaults suit SD1.5 + AnimateDiff (512 px, 16 frames) on one GPU.

    `model` is the video model V: an AnimateDiff pipeline folder, or an SD folder with `motion_modules`.
    """

    motion_modules: str | None = None  # AnimateDiff motion modules (folder or v1/v2/v3 file) when model is a T2I
    config_dir: str | None = None  # diffusers folder whose configs/tokenizer shape single files (default: SD1.5's)
    num_frames: int = 16  # frames per training video (AnimateDiff v1/v2: 16)
    sample_steps: int = 25  # denoising steps when sampling training data from the models
    guidance_scale: float = 7.5  # classifier-free guidance when sampling training data


@dataclass
class MotionAdapterConfig(TrainConfig):
    """Stage 1: the motion adapter, trained once per video model on frozen videos at alpha = 1."""

    motion_rank: int = 16  # LoRA rank r of the temporal q/k/v adapters
    videos: str | None = None  # folder of videos (mp4/gif/frame folders, captions in metadata.jsonl/.txt)
    video_prompt: str | None = None  # caption for videos that have none
    sample_prompts: list[str] = field(default_factory=list)  # without videos: sample V itself for these
    num_sampled_videos: int = 16  # how many videos to sample from V when no folder is given


@dataclass
class CustomizeConfig(TrainConfig):
    """Stage 2: spatial adapters for one customized T2I, on frozen customized videos + prior videos."""

    motion_adapter: str = ""  # the stage-1 adapter (file or folder) this customization trains with
    customized: str | None = None  # M1: a UNet or pipeline folder (None: V's own T2I + loras)
    loras: list[tuple[str, float]] = field(default_factory=list)  # LoRA files fused into M1, with weights
    prompts: list[str] = field(default_factory=list)  # customization prompts, e.g. "a sks dog"
    images: str | None = None  # a folder of M1's images to use instead of sampling M1
    num_images: int = 40  # images to sample from M1, spread over the prompts
    prior_videos: str | None = None  # a folder of non-customized videos
    prior_prompts: list[str] = field(default_factory=list)  # prompts for prior videos sampled from V (no identifier)
    # word/phrase naming the customization ("sks", "in crayon style"); prior prompts default to the prompts without it
    identifier: str | None = None
    num_prior_videos: int = 40  # prior videos sampled from V when no folder is given (paper: ~40)
    prior_loss_weight: float = 1.0  # weight of the prior-preservation loss
    # "video": the whole denoising error (the paper); "motion": only its frame-varying part, appearance left to M1
    # (docs/method.md)
    prior_loss: str = "video"
    cache_prior_videos: bool = True  # reuse prior videos sampled before from the same V with the same settings
    cache_dir: str | None = None  # that cache's folder (default: $STILLMOVING_CACHE, else ~/.cache/stillmoving)
    spatial_rank: int = 8  # rank r of each spatial adapter's A_down/A_up
    # videos made with and without the adapters at the end, to catch a customization worse than naive injection
    # (0: none)
    num_validation_videos: int = 4
    validation_prompts: list[str] = field(default_factory=list)  # their prompts (default: the customization prompts)


def read_config_file(path: str | Path, what: str = "config"):
    """The contents of a JSON file (`.json`) or a YAML one (anything else), with a one-line error."""
    path = Path(path)
    try:
        return json.loads(path.read_text()) if path.suffix == ".json" else _load_yaml(path)
    except (OSError, ValueError) as error:
        raise StillMovingError(f"cannot read {what} {path}: {error}") from None


def load_config(cls, path: str | Path, **overrides):
    """A config from a JSON/YAML file, with CLI overrides on top; unknown keys are refused."""
    values = read_config_file(path)
    return make_config(cls, {**values, **{k: v for k, v in overrides.items() if v is not None}})


def _load_yaml(path: Path) -> dict:
    import yaml  # optional: only needed for YAML configs

    return yaml.safe_load(path.read_text()) or {}


def make_config(cls, values: dict):
    """Build `cls` from a dict, refusing keys it does not define."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise StillMovingError(f"unknown {cls.__name__} key(s): {', '.join(unknown)}")
    try:
        return cls(**values)
    except TypeError as error:
        raise StillMovingError(f"incomplete {cls.__name__}: {error}") from None
