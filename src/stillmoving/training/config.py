"""Typed configs of every training verb, in the command line's own vocabulary.

A field is named after its option (`steps` is `--steps`, `checkpoint_every` is `--checkpoint-every`, a repeatable
`--prompt` is the list `prompt`), and its help text lives once, in the field's metadata: the CLI builds each training
verb's options from these fields (`cli_options`), and a `--config` file uses the same names. Unknown keys are an
error, and so are the names older versions used (`max_train_steps`, `learning_rate`, ...): the message names the new
key. Run records written by older versions are read back with `current_keys`, which renames silently.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from stillmoving.errors import StillMovingError

TRACKERS = ("none", "tensorboard", "wandb")  # --report-to: accelerate's trackers this project supports


def opt(default: Any = MISSING, help: str = "", factory: Any = MISSING, short: str | None = None, cli_type=None):
    """A config field and its option: `help` is the option's help text, `short` an extra flag (`-o`), `cli_type`
    the type the command line parses when it differs from the field's (`--lora PATH:WEIGHT`)."""
    metadata = {"help": help, "short": short, "cli_type": cli_type}
    return field(default=default, default_factory=factory, metadata=metadata)


# Keys of configs written before the CLI and the configs shared one vocabulary (issue 14), and their names now.
OLD_KEYS = {
    "output_dir": "output",
    "max_train_steps": "steps",
    "learning_rate": "lr",
    "train_batch_size": "batch_size",
    "gradient_accumulation_steps": "grad_accum",
    "checkpointing_steps": "checkpoint_every",
}


@dataclass
class OptimConfig:
    """Fields every training verb shares (both Still-Moving stages and the T2I customizers)."""

    RENAMED: ClassVar[dict[str, str]] = OLD_KEYS

    model: str = opt(help="The base model folder; each command says which kind it takes.")
    output: str = opt(help="Output folder: weights, checkpoints and the run record.", short="-o")
    height: int | None = opt(
        None,
        "Training height in pixels; images and frames are centre-cropped and resized to it (default: the model's own, "
        "as diffusers' pipelines: the UNet's sample_size times the VAE's factor, 512 for SD1.5, 1024 for SDXL, 32 for "
        "the embedded world).",
    )
    width: int | None = opt(None, "Training width in pixels (default: the model's own).")
    steps: int = opt(500, "Optimizer steps.")
    batch_size: int = opt(1, "Videos or images per step per process.")
    grad_accum: int = opt(1, "Gradient accumulation steps (micro-batches per optimizer step).")
    lr: float = opt(1e-4, "AdamW learning rate of the trained parameters.")
    lr_scheduler: str = opt("constant", "Learning-rate schedule: any of diffusers' get_scheduler names.")
    lr_warmup_steps: int = opt(0, "Linear learning-rate warm-up steps.")
    adam_weight_decay: float = opt(0.0, "AdamW weight decay (LoRA practice: none).")
    max_grad_norm: float = opt(1.0, "Gradient clipping norm.")
    mixed_precision: str = opt("no", "no | fp16 | bf16 (accelerate); trained parameters stay fp32.")
    gradient_checkpointing: bool = opt(False, "Gradient checkpointing in the UNet (less memory, more compute).")
    snr_gamma: float | None = opt(None, "Min-SNR-gamma loss weighting (default: plain MSE).")
    seed: int = opt(
        0, "Random seed: data order, noise, init and sampling; the same seed gives the same weights on CPU."
    )
    checkpoint_every: int = opt(0, "Save resumable state every N steps (0: never).")
    checkpoints_total_limit: int = opt(2, "Keep the last K checkpoints.")
    resume: bool = opt(False, "Continue from the newest checkpoint in the output folder.")
    overwrite: bool = opt(False, "Start afresh in an output folder that holds another run's results.")
    skip_nonfinite_steps: int = opt(0, "Skip up to N steps with a NaN/inf loss or gradient instead of stopping.")
    report_to: str = opt("none", f"Tracker of the loss and validation videos: {' | '.join(TRACKERS)} (accelerate's).")

    def __post_init__(self):
        if getattr(self, "num_frames", 0) is None:  # the video verbs' clip length, read from the model's folder
            from stillmoving.validation import native_frames

            self.num_frames = native_frames(self.model)
        if getattr(self, "sample_steps", 0) is None or getattr(self, "guidance_scale", 0) is None:
            from stillmoving.validation import native_sampling  # the model folder's own, else 25 and 7.5

            steps, guidance = native_sampling(self.model)
            self.sample_steps = steps if self.sample_steps is None else self.sample_steps
            self.guidance_scale = guidance if self.guidance_scale is None else self.guidance_scale
        if self.height is None or self.width is None:  # read from the model's configs, before any model loads
            from stillmoving.validation import native_size

            size = native_size(self.model, getattr(self, "config_dir", None))
            self.height = size if self.height is None else self.height
            self.width = size if self.width is None else self.width


@dataclass
class TrainConfig(OptimConfig):
    """Fields both Still-Moving stages share. Defaults suit SD1.5 + AnimateDiff (16 frames) on one GPU; the size is the
    model's own."""

    model: str = opt(
        help="Video model: AnimateDiff pipeline folder, or a base T2I (SD folder or one .safetensors/.ckpt "
        "checkpoint) + --motion-modules."
    )
    motion_modules: str | None = opt(
        None,
        "AnimateDiff motion modules (folder, or an mm_sd_v15/v2/v3 .ckpt/.safetensors file), when --model is a T2I.",
    )
    config_dir: str | None = opt(
        None, "Diffusers folder whose configs (and tokenizer) shape single files; default: the shipped SD1.5 configs."
    )
    domain_adapter: str | None = opt(
        None,
        "AnimateDiff v3 domain adapter (v3_sd15_adapter.ckpt, or a spatial LoRA in diffusers, peft or kohya layout) "
        "fused into V's spatial layers before anything else, PATH[:SCALE] (scale default 1).",
    )
    scheduler: str | None = opt(
        None,
        "Scheduler that samples training data and validation videos (its betas drive the training noise too): lcm "
        "(AnimateLCM: LCMScheduler, linear betas), lightning (AnimateDiff-Lightning: EulerDiscreteScheduler, trailing "
        "timesteps, linear betas) or a diffusers scheduler class; recorded for generate. Default: the model's own.",
    )
    lcm_lora: str | None = opt(
        None,
        "AnimateLCM's spatial LoRA (AnimateLCM_sd15_t2v_lora.safetensors; diffusers, peft or kohya layout), "
        "PATH[:WEIGHT], fused into V and into the customized T2I; with --scheduler lcm.",
    )
    num_frames: int | None = opt(
        None,
        "Frames per training video (default: the video model's own: its folder's generation_defaults.json, the "
        "embedded world's 8; else AnimateDiff's 16).",
    )
    sample_steps: int | None = opt(
        None,
        "Denoising steps when sampling training data (and validation videos) (default: the video model's own: its "
        "folder's generation_defaults.json, the embedded world's 15; else 25).",
    )
    guidance_scale: float | None = opt(
        None,
        "Classifier-free guidance when sampling training data (and validation videos) (default: the video model's "
        "own: its folder's generation_defaults.json, the embedded world's 4; else 7.5).",
    )
    validation_prompt: list[str] = opt(
        help="Prompt of the validation videos (repeatable; default: the training prompts).", factory=list
    )
    validation_seed: int | None = opt(
        None, "Seed of the first validation video, the next ones count up (default: --seed)."
    )
    validation_every: int = opt(
        0, "Every N steps, one validation video per prompt into validation/step-N/ and the tracker (0: never)."
    )
    validation_motion_scale: float = opt(0.0, "Motion scale (alpha) of the videos made every --validation-every steps.")


@dataclass
class MotionAdapterConfig(TrainConfig):
    """Stage 1: the motion adapter, trained once per video model on frozen videos at alpha = 1."""

    RENAMED: ClassVar[dict[str, str]] = {**OLD_KEYS, "motion_rank": "rank", "sample_prompts": "sample_prompt"}

    rank: int = opt(16, "LoRA rank of the motion adapter's temporal q/k/v projections.")
    videos: str | None = opt(
        None,
        "Folder of training videos (mp4/gif/frame folders, captions in metadata.jsonl or .txt sidecars); the first "
        "--num-frames frames of each are read.",
    )
    video_prompt: str | None = opt(None, "Caption of videos without one.")
    sample_prompt: list[str] = opt(help="Without --videos: sample V for this prompt (repeatable).", factory=list)
    num_sampled_videos: int = opt(16, "Videos to sample from V when no folder is given.")
    validation_motion_scale: float = 1.0  # the adapter's own setting: videos should become still


def parse_lora(spec: str) -> tuple[str, float]:
    """`path` or `path:weight`."""
    path, _, weight = spec.rpartition(":")
    try:
        return (path, float(weight)) if path else (spec, 1.0)
    except ValueError:
        raise StillMovingError(f"bad --lora {spec!r}: use PATH or PATH:WEIGHT") from None


@dataclass
class CustomizeConfig(TrainConfig):
    """Stage 2: spatial adapters for one customized T2I, on frozen customized videos + prior videos."""

    RENAMED: ClassVar[dict[str, str]] = {
        **OLD_KEYS,
        "loras": "lora",
        "prompts": "prompt",
        "prior_prompts": "prior_prompt",
        "validation_prompts": "validation_prompt",
    }

    motion_adapter: str = opt("", "Stage-1 motion adapter (file or folder) this customization trains with.")
    customized: str | None = opt(
        None,
        "Customized T2I: UNet or SD pipeline folder, or a single-file checkpoint (DreamBooth, civitai; "
        ".safetensors/.ckpt); default: V's own T2I (+ --lora).",
    )
    lora: list[tuple[str, float]] = opt(
        help="LoRA (kohya, diffusers or peft) fused into the T2I, PATH[:WEIGHT] (repeatable).",
        factory=list,
        cli_type=list[str],
    )
    prompt: list[str] = opt(help="Customization prompt, e.g. 'a sks dog' (repeatable).", factory=list)
    images: str | None = opt(None, "Folder of the customized T2I's images (default: sampled from it).")
    num_images: int = opt(40, "Images to sample from the customized T2I, spread over the prompts.")
    image_guidance_scale: float = opt(
        1.0,
        "Classifier-free guidance when sampling the customized T2I's images (1: none, its own distribution). Guided "
        "samples are not what the T2I learned, and fitting frozen videos of them erased the subject on the "
        "embedded world (docs/method.md, 'Why the paper's recipe erases the subject').",
    )
    prior_videos: str | None = opt(
        None, "Folder of non-customized videos, as motion-adapter train's --videos (their first --num-frames frames)."
    )
    prior_prompt: list[str] = opt(
        help="Prompt of prior videos sampled from V, without the identifier, e.g. 'a dog' (repeatable).", factory=list
    )
    identifier: str | None = opt(
        None,
        "Word or phrase naming the customization in the prompts ('sks', 'in crayon style'); prior prompts default "
        "to the prompts without it.",
    )
    num_prior_videos: int = opt(40, "Prior videos sampled from V when no folder is given (paper: about 40).")
    prior_loss_weight: float = opt(
        0.0,
        "Prior-preservation loss weight (0: none; the paper: 1). On the embedded world every prior term cost the "
        "customization's look and was not needed to keep the video model's motion (docs/method.md).",
    )
    prior_loss: str = opt(
        "motion",
        "motion: only the frame-varying part of the prior videos' denoising error, so they teach motion and not "
        "V's look; video: their whole error (the paper's) (docs/method.md).",
    )
    frozen_target: str = opt(
        "noise",
        "What frozen videos are fitted to: noise, the denoising target (the paper's); t2i, the customized T2I's own "
        "prediction for each frame, so the video model learns to make what M1 makes (docs/method.md).",
    )
    frame_agreement: float = opt(
        0.0,
        "Weight of a term that makes the frames of each frozen video agree (0: the paper's objective; 10 helped "
        "DreamBooth subjects and harmed a style LoRA on the embedded world: docs/method.md, 'A term that makes "
        "the frames of a frozen video agree').",
    )
    guidance_preservation: float = opt(
        0.0,
        "Weight of a term that keeps the prompt's pull (eps(prompt) - eps(empty prompt), what classifier-free "
        "guidance scales) as it is without the adapters, on frozen videos (0: the paper's objective; on the embedded "
        "world 1000 kept a mildly drifted subject's look and removed the repair of a heavily drifted style: "
        "docs/method.md, 'What Still-Moving's adapters do to a mildly drifted subject').",
    )
    loss_guidance_scale: float = opt(
        1.0,
        "Classifier-free guidance at which the frozen videos' loss is computed: the adapted model's eps(empty) + G "
        "(eps(prompt) - eps(empty)) is fitted, as sampling at guidance G uses it (1: eps(prompt) alone, the paper's). "
        "Give the guidance you generate at, with the same --image-guidance-scale. On the embedded world at 4 it helped "
        "one subject at mild drift and harmed it at heavy drift, and harmed the demo's subject and style "
        "(docs/method.md, 'Fitting what sampling uses: the loss at the guidance scale').",
    )
    reencode_images: float = opt(
        0.0,
        "Share of the customized T2I's sampled images trained on as images, decoded and encoded again (as a T2I is "
        "trained on images), instead of the sampler's own latents: 0 none, 1 all, 0.5 every second. On the embedded "
        "world 1 removed a DreamBooth subject's costs, cost another subject some of its look, and took a style LoRA's "
        "repair on one seed and kept it on another; 0.5 kept the subject's look and the style's repair on the demo's "
        "first seed and took part of the style's fidelity (docs/method.md, 'The customized T2I's images as images').",
    )
    moving_stills: float = opt(
        0.0,
        "Pixels per frame: the customized T2I's images become moving stills instead of frozen videos (each image "
        "shifted sideways by this much per frame, wrapping around, left or right at random) and are trained with the "
        "motion adapter OFF (alpha = 0, the inference setting). 0: the paper's frozen videos at alpha = 1. Measured "
        "on the embedded world as --reencode-images (docs/method.md, 'The customized T2I's images as images').",
    )
    shared_correction: bool = opt(
        False,
        "Each adapter adds one correction to every frame of a video, computed from the frames' mean features, "
        "so the adapters cannot make the frames differ (the paper's: one per frame). Recorded in the adapter file. "
        "On the embedded world it did what per-frame corrections do (docs/method.md, 'One correction for every "
        "frame').",
    )
    spatial_min_timestep: int = opt(
        0,
        "The spatial adapters train on, and act at, timesteps >= this only (of the scheduler's training timesteps, "
        "0-999 for SD); below it, the last steps of sampling, the customized T2I renders alone. Recorded in the "
        "adapter file, which generate follows. 0: every timestep, the paper's. On the embedded world 200 shrank a "
        "mildly drifted subject's fidelity cost on two seeds of three, and on the third cost a drifted style its "
        "repair (docs/method.md, 'Where in denoising the adapters repair and where they cost').",
    )
    cache_prior_videos: bool = opt(
        True, "Reuse prior videos sampled before from the same video model with the same settings."
    )
    cache_dir: str | None = opt(None, "Cache folder (default: $STILLMOVING_CACHE, else ~/.cache/stillmoving).")
    spatial_rank: int = opt(
        8,
        "Rank of each spatial adapter's A_down/A_up. On the embedded world rank 1 halved a subject's costs and shrank "
        "a style's repair (docs/method.md, 'How many directions the adapters may change').",
    )
    spatial_blocks: str = opt(
        "down,mid,up",
        "Which parts of the UNet get spatial adapters: down, mid, up (its down_blocks, mid_block, up_blocks), "
        "comma-separated; the paper's: all three. Recorded in the adapter file. On the embedded world the adapters of "
        "the up blocks at full resolution made a mildly drifted subject's cost, and those of the down and mid blocks "
        "most of a style's repair; trained on down,mid alone they slowed that subject (generate --spatial-blocks "
        "applies part of adapters trained on all; docs/method.md, 'Where in the UNet the adapters repair and where "
        "they cost').",
    )
    num_validation_videos: int = opt(
        8,
        "Videos made with and without the adapters at the end and compared, against naive injection (0: none). "
        "On the embedded world 4 missed a customization that 8 caught (docs/method.md, 'The unseen subject's "
        "flicker, read without bins'). The same adapters are also tried on the UNet's down and mid blocks only, "
        "and recorded for generate when every block's are worse and those pass or, worse too, read no worse than "
        "every block, or when both pass and those read no worse than every block on each reading and better on one.",
    )
    allow_sampler_mismatch: bool = opt(
        False,
        "Use a motion adapter trained with another sampling setting (--scheduler, --lcm-lora, and for a few-step "
        "one --sample-steps and --guidance-scale) anyway.",
    )

    def __post_init__(self):
        super().__post_init__()
        self.lora = [parse_lora(x) if isinstance(x, str) else (str(x[0]), float(x[1])) for x in self.lora]


@dataclass
class T2ITrainConfig(OptimConfig):
    """Fields both T2I customizers share. Defaults suit SD1.5 on one GPU; the size is the model's own."""

    model: str = opt(
        help="Base T2I: an SD or SDXL folder, or an AnimateDiff or AnimateDiff-SDXL folder (its T2I part); the family "
        "is read from the folder."
    )
    steps: int = 400


@dataclass(kw_only=True)
class DreamBoothConfig(T2ITrainConfig):
    """A DreamBooth subject: full fine-tune of M's UNet on a few images of it, with optional prior preservation."""

    RENAMED: ClassVar[dict[str, str]] = {**OLD_KEYS, "instance_images": "images", "instance_prompt": "prompt"}

    images: str = opt(help="Folder of the subject's images (DreamBooth uses 3-5).")
    prompt: str = opt(help="Instance prompt with the rare identifier, e.g. 'a sks dog'.")
    use_captions: bool = opt(
        False, "Caption each image from metadata.jsonl/.txt (kohya-style); --prompt for the images without one."
    )
    lr: float = 5e-6  # diffusers' DreamBooth recipe for SD1.5 (full fine-tune: keep it small)
    adam_weight_decay: float = 1e-2  # diffusers' DreamBooth default
    train_text_encoder: bool = opt(False, "Also fine-tune the text encoder (saved to <output>/text_encoder).")
    class_prompt: str | None = opt(None, "Turns prior preservation on: the subject's class, e.g. 'a dog'.")
    class_images: str | None = opt(
        None, "Folder of class images (default: sampled from the base; needs --class-prompt)."
    )
    num_class_images: int = opt(100, "Class images sampled from the base when no folder is given.")
    prior_loss_weight: float = opt(1.0, "Weight of the class-image (prior-preservation) loss.")
    sample_steps: int | None = opt(
        None,
        "Denoising steps when sampling class images (default: the model folder's generation_defaults.json, else 25).",
    )
    guidance_scale: float | None = opt(
        None,
        "Classifier-free guidance when sampling class images (default: the model folder's generation_defaults.json, "
        "else 7.5).",
    )


@dataclass(kw_only=True)
class StyleLoRAConfig(T2ITrainConfig):
    """A style: a LoRA on M's spatial attention projections, trained on captioned images of the style."""

    RENAMED: ClassVar[dict[str, str]] = {**OLD_KEYS, "lora_rank": "rank"}

    images: str = opt(help="Folder of style images; captions from metadata.jsonl or <stem>.txt sidecars.")
    prompt: str | None = opt(None, "Caption of images without one, e.g. 'a house in crayon style'.")
    rank: int = opt(16, "LoRA rank (lora_alpha = rank, so the weight given at load time is the LoRA's strength).")
    steps: int = 800  # a style of 10-50 images at batch 1


def flag(name: str) -> str:
    """The option of a config field: `checkpoint_every` -> `--checkpoint-every`."""
    return "--" + name.replace("_", "-")


def _help(cls, name: str) -> str:
    """A field's help text: its own, else that of the nearest base class that explains it (a subclass that only
    changes a default keeps its base's text)."""
    for klass in cls.__mro__:
        found = getattr(klass, "__dataclass_fields__", {}).get(name)
        if found is not None and found.metadata.get("help"):
            return found.metadata["help"]
    return ""


def cli_options(cls) -> list[dict]:
    """One entry per field of `cls`, in field order: name, the type the command line parses, help text, default
    and the flags (`--name` and an optional short one). The CLI turns each into a Typer option."""
    hints = typing.get_type_hints(cls)
    options = []
    for f in dataclasses.fields(cls):
        default = (
            f.default if f.default is not MISSING else f.default_factory() if f.default_factory is not MISSING else None
        )
        meta = {k: v for klass in reversed(cls.__mro__) for k, v in _field_meta(klass, f.name).items() if v}
        options.append(
            {
                "name": f.name,
                "type": meta.get("cli_type") or hints[f.name],
                "help": _help(cls, f.name),
                "default": default,
                "required": f.default is MISSING and f.default_factory is MISSING,
                "flags": [flag(f.name), *([meta["short"]] if meta.get("short") else [])],
            }
        )
    return options


def _field_meta(klass, name: str) -> dict:
    found = getattr(klass, "__dataclass_fields__", {}).get(name)
    return dict(found.metadata) if found is not None else {}


def read_config_file(path: str | Path, what: str = "config"):
    """The contents of a JSON file (`.json`) or a YAML one (anything else), with a one-line error."""
    path = Path(path)
    try:
        return json.loads(path.read_text()) if path.suffix == ".json" else _load_yaml(path)
    except (OSError, ValueError) as error:
        raise StillMovingError(f"cannot read {what} {path}: {error}") from None


def load_config(cls, path: str | Path, **overrides):
    """A config from a JSON/YAML file, with CLI overrides on top; unknown and old keys are refused."""
    values = read_config_file(path)
    if not isinstance(values, dict):
        raise StillMovingError(f"{path}: expected a mapping of option names to values")
    return make_config(cls, {**values, **{k: v for k, v in overrides.items() if v is not None}})


def _load_yaml(path: Path) -> dict:
    import yaml  # optional: only needed for YAML configs

    try:
        return yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:  # read_config_file's one line: the problem and where, not the parser's drawing
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ValueError(f"not valid YAML: {getattr(error, 'problem', None) or error}{where}") from None


def renamed_keys(cls, values: dict) -> dict[str, str]:
    """The old keys among `values` and their names now (keys `cls` still defines are not old)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {old: new for old, new in cls.RENAMED.items() if old in values and old not in names}


def current_keys(cls, values: dict) -> dict:
    """A saved config (a run record's "config") in today's names: old keys renamed silently, so run folders of
    older versions are read as they were meant."""
    renamed = renamed_keys(cls, values)
    return {renamed.get(k, k): v for k, v in values.items()}


def make_config(cls, values: dict):
    """Build `cls` from a dict of option names, refusing old names (naming the new one), unknown and missing keys. A
    lone string where the option repeats (`"prompt": "a sks dog"`) is that one value, not a list of characters."""
    old = renamed_keys(cls, values)
    if old:
        raise StillMovingError(
            "; ".join(f"config key {k!r} is now {v!r} (the {flag(v)} option)" for k, v in old.items())
            + ": a config uses the command's option names"
        )
    options = cli_options(cls)
    unknown = sorted(set(values) - {o["name"] for o in options})
    if unknown:
        raise StillMovingError(f"unknown {cls.__name__} key(s): {', '.join(unknown)}")
    missing = [o["flags"][0] for o in options if o["required"] and o["name"] not in values]
    if missing:
        raise StillMovingError(f"incomplete {cls.__name__}: missing {', '.join(missing)}")
    lists = {o["name"] for o in options if typing.get_origin(o["type"]) is list}
    values = {k: [v] if k in lists and isinstance(v, str) else v for k, v in values.items()}  # "prompt": "a sks dog"
    try:
        return cls(**values)
    except TypeError as error:
        raise StillMovingError(f"incomplete {cls.__name__}: {error}") from None
