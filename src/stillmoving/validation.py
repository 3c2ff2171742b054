"""A verb's numbers, paths and devices, checked before any model loads: each problem is one `error:` line.

Every verb calls these (generate through `check_generation`, the training verbs through `check_training`,
bench through `check_device`), so a bad value never reaches diffusers as a traceback or costs a model load.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import torch

from stillmoving.errors import StillMovingError

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
SD_SIZE = 512  # Stable Diffusion 1.5's images, the default where a model's configs do not say
ANIMATEDIFF_FRAMES = 16  # AnimateDiff's clip length, the default where a model's folder does not say
SD_STEPS = 25  # denoising steps and guidance scale, the defaults where a model's folder does not say
SD_GUIDANCE = 7.5
# a video model folder's own generation settings, each optional, named as diffusers' pipelines name their arguments:
# {"num_frames": N, "num_inference_steps": S, "guidance_scale": G} (the embedded world's: 8, 15, 4)
GENERATION_DEFAULTS = "generation_defaults.json"
SD_VAE_FACTOR = 8  # Stable Diffusion's VAE: 4 blocks, 3 downsamplings


def at_least(flag: str, value: float, minimum: float) -> None:
    """Refuse a number below `minimum`, or not a number at all (NaN compares false with everything), or infinite."""
    if not value >= minimum:
        raise StillMovingError(f"{flag} must be at least {minimum}, not {value}")
    if value == float("inf"):
        raise StillMovingError(f"{flag} must be a finite number, not {value}")


def positive(flag: str, value: float) -> None:
    """Refuse a number that is not above 0 (NaN included) or is infinite: a learning rate (a negative one climbs the
    loss; 0 trains nothing)."""
    if not value > 0 or value == float("inf"):
        raise StillMovingError(f"{flag} must be a positive number, not {value}")


def in_unit_interval(flag: str, value: float) -> None:
    """Refuse a share outside [0, 1] (or not a number)."""
    at_least(flag, value, 0)
    if value > 1:
        raise StillMovingError(f"{flag} is a share, at most 1, not {value}")


def one_of(flag: str, value: str, choices) -> None:
    if value not in choices:
        raise StillMovingError(f"{flag} must be one of {', '.join(choices)}, not {value!r}")


def vae_factor(*folders: str | Path | None) -> int:
    """Pixels per latent of the first diffusers folder's VAE (the model, else the `--config-dir` shaping a single
    file), 2 ** (len(block_out_channels) - 1), read from its config alone; else Stable Diffusion's 8."""
    for folder in filter(None, folders):
        try:
            config = json.loads((Path(folder) / "vae" / "config.json").read_text())
            return 2 ** (len(config["block_out_channels"]) - 1)
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return SD_VAE_FACTOR


def native_size(*folders: str | Path | None) -> int:
    """The image size a video model was made for, as diffusers' pipelines default to it: the UNet's `sample_size`
    times the VAE's factor, read from the first diffusers folder's configs; else Stable Diffusion 1.5's 512."""
    for folder in filter(None, folders):
        try:
            config = json.loads((Path(folder) / "unet" / "config.json").read_text())
            size = config["sample_size"]
            return (size if isinstance(size, int) else size[0]) * vae_factor(folder)
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            continue
    return SD_SIZE


def generation_defaults(model: str | Path | None) -> dict:
    """The model folder's generation_defaults.json (what `pretrain` writes beside the embedded world's models, as
    transformers' generation_config.json holds a language model's own decoding settings), checked: a positive whole
    `num_frames` and `num_inference_steps`, a finite `guidance_scale` of at least 0, each optional. No file: {}."""
    path = Path(model or "") / GENERATION_DEFAULTS
    try:
        values = json.loads(path.read_text())
    except OSError:
        return {}
    except ValueError as error:
        raise StillMovingError(f"{path}: not JSON ({error})") from None
    if not isinstance(values, dict):
        raise StillMovingError(f"{path}: must be a JSON object, not {values!r}")
    for key in ("num_frames", "num_inference_steps"):
        count = values.get(key, 1)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise StillMovingError(f"{path}: {key} must be a positive whole number, not {count!r}")
    guidance = values.get("guidance_scale", 0)
    if isinstance(guidance, bool) or not isinstance(guidance, (int, float)) or not 0 <= guidance < float("inf"):
        raise StillMovingError(f"{path}: guidance_scale must be a finite number of at least 0, not {guidance!r}")
    return values


def _or_fallbacks(values: dict) -> tuple[int, int, float]:
    """Frames, steps and guidance of a checked generation_defaults.json, each absent one AnimateDiff's and SD's."""
    return (
        values.get("num_frames", ANIMATEDIFF_FRAMES),
        values.get("num_inference_steps", SD_STEPS),
        float(values.get("guidance_scale", SD_GUIDANCE)),
    )


def native_frames(model: str | Path | None) -> int:
    """The clip length a video model was made for: `num_frames` of its folder's generation_defaults.json (the
    embedded world's say 8, what their motion modules trained at; at 16 frames its base T2V nearly stands still,
    MODEL_CARD.md), else AnimateDiff's 16."""
    return _or_fallbacks(generation_defaults(model))[0]


def native_sampling(model: str | Path | None) -> tuple[int, float]:
    """The denoising steps and guidance scale a model was made to sample with: `num_inference_steps` and
    `guidance_scale` of its folder's generation_defaults.json (the embedded world's say 15 and 4, the setting its
    pretraining monitor, model card and demo measure at), else 25 and 7.5, diffusers' and AnimateDiff's habit."""
    return _or_fallbacks(generation_defaults(model))[1:]


def native_settings(model: str | Path | None) -> dict:
    """Everything a verb makes with a video model folder unless told, as `generate` defaults to it, the file read
    once: `native_size`, and `num_frames`, `num_inference_steps` and `guidance_scale` of its generation_defaults.json
    (the world's: 32 px, 8 frames, 15 steps, guidance 4), else 16, 25 and 7.5."""
    frames, steps, guidance = _or_fallbacks(generation_defaults(model))
    side = native_size(model)
    return dict(height=side, width=side, num_frames=frames, steps=steps, guidance_scale=guidance)


def check_size(height: int, width: int, factor: int) -> None:
    """Height and width: positive multiples of the VAE's factor (the latent grid must divide the image)."""
    for flag, value in (("--height", height), ("--width", width)):
        if value < factor or value % factor:
            below = max(factor, value // factor * factor)
            raise StillMovingError(
                f"{flag} {value} is not a multiple of the VAE's factor {factor}; use e.g. {below} or {below + factor}"
            )


def available_devices() -> list[str]:
    """What this machine can run on, best first: each CUDA device, MPS, the CPU."""
    cuda = [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    return cuda + (["mps"] if torch.backends.mps.is_available() else []) + ["cpu"]


def check_device(name: str) -> str:
    """`auto` becomes the best device here (cuda, then mps, then cpu); any other name must be present."""
    available = available_devices()
    if name == "auto":
        return available[0].removesuffix(":0")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise StillMovingError(f"--device {name}: not a device name (available: {', '.join(available)})") from None
    present = {torch.device(d).type for d in available}
    if device.type not in present:
        what = {"cuda": "CUDA", "mps": "MPS"}.get(device.type, device.type)
        raise StillMovingError(
            f"--device {name}: {what} is not available on this machine (available: {', '.join(available)})"
        )
    if device.type == "cuda" and device.index is not None and f"cuda:{device.index}" not in available:
        raise StillMovingError(f"--device {name}: no such CUDA device (available: {', '.join(available)})")
    return name


def check_dtype(name: str, device: str) -> torch.dtype:
    """`auto`: float32 on the CPU, half precision on a GPU (bfloat16 where CUDA supports it, else float16)."""
    if name != "auto":
        one_of("--dtype", name, ("auto", *DTYPES))
        return DTYPES[name]
    kind = torch.device(device).type
    if kind == "cpu":
        return torch.float32
    return torch.bfloat16 if kind == "cuda" and torch.cuda.is_bf16_supported() else torch.float16


def check_writable(output: Path) -> None:
    """The nearest existing folder of `output` takes new files."""
    existing = next((p for p in [output.parent, *output.parents] if p.exists()), Path("."))
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise StillMovingError(f"cannot write {output}: {existing} is not a writable folder")


def check_exists(flag: str, path: str | None) -> None:
    if path is not None and not Path(path).exists():
        raise StillMovingError(f"{flag} {path}: no such file or folder")


def local_or_hub(path: str | Path) -> str:
    """A local folder or file as is; anything else must be a Hub id, which is refused while offline."""
    if Path(path).exists():
        return str(path)
    if os.environ.get("HF_HUB_OFFLINE") == "1" or "/" not in str(path) or str(path).startswith((".", "/")):
        raise StillMovingError(f"no such model folder: {path}")
    return str(path)


def check_model_files(
    model: str,
    motion_modules: str | None = None,
    customized: str | None = None,
    config_dir: str | None = None,
    loras=(),
    spatial_adapters: str | None = None,
    motion_adapter: str | None = None,
    domain_adapter=None,
    sampler=None,
    spatial_blocks: str | None = None,
) -> None:
    """Every model file a verb will load is there (or, online, a Hub id where the Hub can serve one), the spatial
    adapters and the motion adapter are readable files of their kind (from their headers), a domain adapter is a
    spatial LoRA, a sampling setting's scheduler and LCM LoRA are sound (`few_step`), and
    `spatial_blocks` (a customization's recorded ones, or --spatial-blocks) name parts of the UNet and come with
    spatial adapters (`check_spatial_scale`)."""
    from stillmoving.formats.domain_adapter import check_domain_adapter
    from stillmoving.formats.lora_files import lora_file
    from stillmoving.formats.safety import check_header

    for path in (model, motion_modules, customized, config_dir):
        if path is not None:
            local_or_hub(path)
    if model is not None and Path(model).exists():  # ModelScope's own files: refused before any model loads
        from stillmoving.formats.modelscope import check_not_original_folder, check_not_video_unet_file
        from stillmoving.formats.safety import is_weights_file

        check_not_original_folder(model)
        if is_weights_file(model):
            check_not_video_unet_file(model)
    if customized is not None:
        check_header(customized)
    for path, _ in loras:
        check_header(lora_file(path))
    check_exists("--spatial-adapters", spatial_adapters)
    check_exists("--motion-adapter", motion_adapter)
    if spatial_adapters is not None:  # readable, and of the format: from the header, before any model loads
        from stillmoving.adapters.spatial import check_file

        check_file(spatial_adapters)
    if motion_adapter is not None:
        from stillmoving.adapters.motion import check_motion_adapter_file

        check_motion_adapter_file(motion_adapter)
    check_domain_adapter(domain_adapter)
    if sampler is not None:
        from stillmoving.few_step import check_sampler, parse_sampler

        check_sampler(parse_sampler(sampler))
    check_spatial_scale(1.0, None, spatial_adapters, spatial_blocks)


def check_base_t2i(base_t2i: str | None, customized: str | None, loras, spatial_adapters: str | None) -> None:
    """generate's --base-t2i (delta injection, `loading.assemble_pipeline`): a T2I that is there, given with the
    customized T2I it is the base of, and without spatial adapters in effect (`spatial_adapters`: None at
    --spatial-scale 0), which trained with M1 in place of V's spatial weights."""
    if base_t2i is None:
        return
    from stillmoving.formats.safety import check_header

    if not customized and not loras:
        raise StillMovingError("--base-t2i needs the customized T2I made from it: give --customized or --lora")
    if spatial_adapters:
        raise StillMovingError(
            "--base-t2i (delta injection) takes no spatial adapters: they trained with the customized T2I in place "
            "of the video model's spatial weights; give --customized or --lora without --spatial-adapters or "
            "--customization, or --spatial-scale 0"
        )
    if not Path(base_t2i).exists():
        try:
            local_or_hub(base_t2i)  # a Hub id, where online
        except StillMovingError:
            raise StillMovingError(f"--base-t2i {base_t2i}: no such file or folder") from None
    check_header(base_t2i)


def check_motion_scale(scale: float, motion_adapter: str | None) -> None:
    """generate's --motion-scale (alpha): a finite number, and other than 0 only with a motion adapter to scale."""
    if not math.isfinite(scale):
        raise StillMovingError(f"--motion-scale must be a finite number, not {scale}")
    if scale != 0 and not motion_adapter:
        raise StillMovingError(
            f"--motion-scale {scale:g} needs a motion adapter (--motion-adapter, or a --customization that records one)"
        )


def check_spatial_scale(
    scale: float, min_timestep: int | None, spatial_adapters: str | None, blocks: str | None = None
) -> None:
    """generate's settings of the spatial adapters: a strength >= 0, a timestep >= 0, known blocks, and adapters to
    apply them to."""
    at_least("--spatial-scale", scale, 0)
    if min_timestep is not None:
        at_least("--spatial-min-timestep", min_timestep, 0)
    if blocks is not None:
        from stillmoving.adapters.spatial import parse_blocks  # here: it imports diffusers, slow to load

        parse_blocks(blocks)
    changes = (
        ("--spatial-scale", scale != 1.0),
        ("--spatial-min-timestep", min_timestep is not None),
        ("--spatial-blocks", blocks is not None),
    )
    for flag, changed in changes:
        if changed and not spatial_adapters:
            raise StillMovingError(f"{flag} needs spatial adapters (--spatial-adapters or --customization)")


def check_generation(
    model: str,
    config_dir: str | None,
    output: Path,
    height: int,
    width: int,
    num_frames: int,
    steps: int,
    guidance_scale: float,
    fps: int,
) -> None:
    """`generate`'s numbers and output path (its model files: `check_model_files`)."""
    from stillmoving.data.video_io import _video_kind as video_kind

    check_size(height, width, vae_factor(model, config_dir))
    for flag, value in (("--num-frames", num_frames), ("--steps", steps), ("--fps", fps)):
        at_least(flag, value, 1)
    at_least("--guidance-scale", guidance_scale, 0)
    video_kind(output)  # .mp4, .gif or a folder, else one line naming the suffix
    check_writable(Path(output))


COUNTS = ("steps", "batch_size", "grad_accum", "num_frames", "sample_steps", "checkpoints_total_limit")  # >= 1
NON_NEGATIVE = (
    "checkpoint_every",
    "skip_nonfinite_steps",
    "validation_every",
    "lr_warmup_steps",
    "adam_weight_decay",
    "max_grad_norm",
)


def check_training(cfg) -> None:
    """A training config's numbers (both stages and both T2I customizers; fields a config lacks are skipped)."""
    from stillmoving.training.setup import WEIGHT_DTYPES

    check_size(cfg.height, cfg.width, vae_factor(cfg.model, getattr(cfg, "config_dir", None)))
    for minimum, fields in ((1, COUNTS), (0, NON_NEGATIVE)):
        for field in fields:
            if hasattr(cfg, field):
                at_least("--" + field.replace("_", "-"), getattr(cfg, field), minimum)
    if hasattr(cfg, "guidance_scale"):
        at_least("--guidance-scale", cfg.guidance_scale, 0)
    positive("--lr", cfg.lr)
    if hasattr(cfg, "motion_modules"):  # the video stages: clips of frames, checked against the motion modules' table
        from stillmoving.loading import check_frames_fit, motion_frames_limit

        at_least("--num-frames", cfg.num_frames, 2)  # one frame is no video: no motion to keep or to freeze
        check_frames_fit(motion_frames_limit(cfg.model, cfg.motion_modules), cfg.num_frames)
    if cfg.snr_gamma is not None:
        at_least("--snr-gamma", cfg.snr_gamma, 0)  # 0: plain MSE; below, the weights turn the loss upside down
    one_of("--mixed-precision", cfg.mixed_precision, tuple(WEIGHT_DTYPES))
    check_tracker(cfg.report_to)
    if getattr(cfg, "domain_adapter", None):
        from stillmoving.formats.domain_adapter import check_domain_adapter

        check_domain_adapter(cfg.domain_adapter)
    if hasattr(cfg, "lcm_lora"):
        from stillmoving.few_step import check_sampler, sampler_of

        check_sampler(sampler_of(cfg))


def check_tracker(name: str) -> None:
    """`--report-to`: a tracker this project logs to, whose package is installed (before any model loads)."""
    from accelerate.utils import is_tensorboard_available, is_wandb_available

    from stillmoving.training.config import TRACKERS

    one_of("--report-to", name, TRACKERS)
    available = {"tensorboard": is_tensorboard_available, "wandb": is_wandb_available}
    if name in available and not available[name]():
        raise StillMovingError(f"--report-to {name}: the {name} package is not installed (pip install {name})")
