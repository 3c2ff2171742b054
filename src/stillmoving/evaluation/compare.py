"""`stillmoving compare`: the paper's comparison on the user's own models, resumable.

From a customization folder (written by `customize`: the video model V, the customized T2I M1, the spatial
adapters) it generates, for every prompt and seed, the base T2V, M1's image, naive injection (M1's weights
in V), weight interpolation between V's T2I and M1 at `--interpolation-weight`, with `--base-t2i` delta injection
(V + (M1 - M), `loading.assemble_pipeline`), and Still-Moving (naive injection + the spatial adapters), scores them
with `VideoScorer` and writes the report (compare_report.py).

Each video is a folder of PNG frames under `videos/<variant>/`, written atomically the moment it is made, so
a run that stops resumes where it was: a video on disk is not generated again. compare.json records what the
videos depend on; a later run with other settings is refused rather than mixing videos of two set-ups.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from stillmoving.data.video_io import read_video, to_uint8_frames, write_video
from stillmoving.errors import StillMovingError
from stillmoving.evaluation.score import EvalSettings, VideoScorer, check_settings, evaluation_record
from stillmoving.files import write_text
from stillmoving.inference import sampling_arguments
from stillmoving.run_folder import SPATIAL_BLOCKS
from stillmoving.validation import at_least, check_device, check_dtype, check_size, check_writable, vae_factor
from stillmoving.world.claims import BASE, DELTA, INTERPOLATION, NAIVE, OURS, T2I
from stillmoving.world.variants import Key, Variant, VariantKind

RECORD = "compare.json"


@dataclass
class CompareConfig:
    """One comparison; every field is a `compare` option of the same name."""

    customization: str  # folder written by `customize` (V, M1 and the spatial adapters come from it)
    output_dir: str  # the report folder; its videos/ make a rerun resume
    prompts: list[str] = field(default_factory=list)  # evaluation prompts (they name the customization, "a sks dog")
    seeds: int = 2  # videos per prompt, seeds 0 .. seeds - 1; every variant uses the same ones
    interpolation_weight: float = 0.5  # w of the interpolation baseline: V's T2I + w (M1 - V's T2I)
    base_t2i: str | None = None  # the T2I M1 was made from: adds delta injection, V + (M1 - M)
    num_frames: int | None = None  # frames per video; None: the video model's own (`generate`'s default)
    height: int | None = None  # pixels; None: the video model's own size (as `generate`)
    width: int | None = None  # pixels; None: the video model's own size
    steps: int | None = None  # denoising steps; None: the customization's recorded setting, else 25
    guidance_scale: float | None = None  # classifier-free guidance; None: the recorded setting, else 7.5
    scheduler: str | None = None  # few-step preset or scheduler class; None: the recorded one, else the model's own
    lcm_lora: str | None = None  # AnimateLCM's LoRA PATH[:WEIGHT]; None: the recorded one
    allow_sampler_mismatch: bool = False  # compare under another sampling setting than the customization's anyway
    device: str = "auto"  # generation and scoring device
    dtype: str = "auto"  # generation weights: float32 on the CPU, half precision on a GPU
    overwrite: bool = False  # discard videos made with other settings instead of refusing
    evaluation: EvalSettings = field(default_factory=EvalSettings)  # how the videos are scored


def check_compare(cfg: CompareConfig) -> tuple[CompareConfig, dict]:
    """Every input checked before a model loads. Returns the config with its defaults resolved (the model's size;
    the sampling setting: each value given, else the customization's recorded one, else the video model's own,
    `validation.native_sampling`)
    and the customization's sources, whose "sampler" is the setting every variant samples with (`few_step.Sampler`).
    A setting other than the one the customization was trained with is refused unless `allow_sampler_mismatch`."""
    from stillmoving.few_step import resolved_sampler
    from stillmoving.loading import check_frames_fit, motion_frames_limit
    from stillmoving.run_folder import read_customization
    from stillmoving.validation import check_base_t2i, check_model_files, native_frames, native_sampling, native_size

    sources = read_customization(cfg.customization)
    check_model_files(
        sources["model"],
        sources.get("motion_modules"),
        sources.get("customized"),
        sources.get("config_dir"),
        [tuple(x) for x in sources.get("loras", [])],
        sources["spatial_adapters"],
        None,
    )
    if not sources.get("customized") and not sources.get("loras"):
        raise StillMovingError(
            f"{cfg.customization} records no customized T2I"
            + (" (an exported folder: its video model has the customized T2I injected)" * ("exported_from" in sources))
            + "; compare the folder `customize` wrote, which names the video model and the customized T2I"
        )
    check_base_t2i(cfg.base_t2i, sources.get("customized"), sources.get("loras"), None)  # its own variant: no adapters
    if not cfg.prompts:
        raise StillMovingError("give at least one --prompt")
    if cfg.num_frames is None:
        cfg = replace(cfg, num_frames=native_frames(sources["model"]))
    for flag, value in (("--seeds", cfg.seeds), ("--num-frames", cfg.num_frames)):
        at_least(flag, value, 1)
    check_frames_fit(motion_frames_limit(sources["model"], sources.get("motion_modules")), cfg.num_frames)
    sampler = resolved_sampler(
        sources.get("sampler"), cfg.scheduler, cfg.lcm_lora, cfg.steps, cfg.guidance_scale,
        what=f"customization {cfg.customization}", verb="compare", allow=cfg.allow_sampler_mismatch,
        defaults=native_sampling(sources["model"]),
    )  # fmt: skip
    at_least("--steps", sampler.steps, 1)
    at_least("--guidance-scale", sampler.guidance_scale, 0)
    if not 0 <= cfg.interpolation_weight <= 1:
        raise StillMovingError(f"--interpolation-weight must be between 0 and 1, not {cfg.interpolation_weight}")
    native = native_size(sources["model"], sources.get("config_dir"))
    cfg = replace(
        cfg,
        height=native if cfg.height is None else cfg.height,
        width=native if cfg.width is None else cfg.width,
        steps=sampler.steps,
        guidance_scale=sampler.guidance_scale,
    )
    check_size(cfg.height, cfg.width, vae_factor(sources["model"], sources.get("config_dir")))
    check_dtype(cfg.dtype, check_device(cfg.device))
    check_writable(Path(cfg.output_dir) / RECORD)
    check_settings(cfg.evaluation)
    return cfg, {**sources, "sampler": sampler}


def files_stamp(path: str | None) -> str | None:
    """Sizes and modification times of a file, or of every file under a folder: a model retrained in place is
    another model. None for a path that is not on disk (a Hub id)."""
    if not path or not Path(path).exists():
        return None
    root = Path(path)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    text = "".join(f"{p}:{p.stat().st_size}:{p.stat().st_mtime_ns};" for p in files)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def video_settings(cfg: CompareConfig, sources: dict) -> dict:
    """What the videos depend on: a rerun with other values, or other files under the same paths, must not
    reuse them."""
    keys = ("model", "motion_modules", "config_dir", "domain_adapter", "customized", "loras", "spatial_adapters")
    generation = (
        "interpolation_weight",
        "base_t2i",
        "num_frames",
        "height",
        "width",
        "steps",
        "guidance_scale",
        "dtype",
    )
    stamps = {
        f"{k}_files": files_stamp(sources.get(k)) for k in ("model", "motion_modules", "customized", "spatial_adapters")
    }
    stamps["base_t2i_files"] = files_stamp(cfg.base_t2i)
    stamps["loras_files"] = [files_stamp(path) for path, _ in sources.get("loras", [])]
    used = sources.get("sampler")  # check_compare's Sampler: recorded when it names a scheduler or an LCM LoRA
    sampler = {"sampler": used.record()} if used is not None and used.used else {}
    return {**{k: sources.get(k) for k in keys}, **sampler, **stamps, **{k: getattr(cfg, k) for k in generation}}


# Settings only the delta-injection variant's videos depend on; None where a run does not ask for that variant
DELTA_SETTINGS = ("base_t2i", "base_t2i_files")


def claim_output(cfg: CompareConfig, settings: dict) -> None:
    """Refuse (or with `overwrite`, clear) an output folder whose videos were made with other settings. A variant
    asked for the first time (`--base-t2i` added to a finished report) changes no video on disk, and one left out
    keeps the settings its videos were made with in the record, so that asking for it again reuses them."""
    record = Path(cfg.output_dir) / RECORD
    if record.is_file():
        before = json.loads(record.read_text()).get("video_settings", {})
        if settings.get("base_t2i") is None:
            settings = {**settings, **{k: before.get(k) for k in DELTA_SETTINGS}}
        elif before.get("base_t2i") is None:  # delta injection's first videos here: none on disk is its own
            before = {**before, **{k: settings[k] for k in DELTA_SETTINGS}}
            shutil.rmtree(variant_dir(Path(cfg.output_dir), DELTA.label), ignore_errors=True)
        changed = sorted(k for k in settings.keys() | before.keys() if settings.get(k) != before.get(k))
        if changed and not cfg.overwrite:
            raise StillMovingError(
                f"{cfg.output_dir} holds videos made with another {changed[0]} "
                f"({before.get(changed[0])!r}); pass --overwrite or another --output"
            )
        if changed:
            shutil.rmtree(Path(cfg.output_dir) / "videos", ignore_errors=True)
    write_text(record, json.dumps({"video_settings": settings}, indent=2) + "\n")


def video_path(output: Path, variant: str, key: Key) -> Path:
    """videos/<variant>/<prompt's first words>_<hash>_seed<s>: readable, and unique per prompt."""
    prompt, seed = key
    words = "_".join("".join(c for c in w if c.isalnum()) for w in prompt.split()[:6])
    digest = hashlib.sha1(prompt.encode()).hexdigest()[:8]
    return variant_dir(output, variant) / f"{words}_{digest}_seed{seed}"


def variant_dir(output: Path, variant: str) -> Path:
    return output / "videos" / variant.replace(" ", "_")


# ----------------------------------------------------------------------------- the variants' models


def _pipe(sources: dict, device: str, dtype: torch.dtype, **parts):
    from stillmoving.loading import assemble_pipeline

    return assemble_pipeline(
        sources["model"],
        sources.get("motion_modules"),
        device=device,
        dtype=dtype,
        config_dir=sources.get("config_dir"),
        domain_adapter=sources.get("domain_adapter"),
        sampler=sources.get("sampler"),
        **parts,
    )


def _customized(sources: dict) -> dict:
    return dict(customized=sources.get("customized"), loras=[tuple(x) for x in sources.get("loras", [])])


def interpolated_pipe(sources: dict, weight: float, device: str, dtype: torch.dtype):
    """V with its T2I part at V's T2I + w (M1 - V's T2I) (`loading.assemble_interpolated`)."""
    from stillmoving.loading import assemble_interpolated

    return assemble_interpolated(
        sources["model"],
        weight,
        sources.get("motion_modules"),
        device=device,
        dtype=dtype,
        config_dir=sources.get("config_dir"),
        domain_adapter=sources.get("domain_adapter"),
        sampler=sources.get("sampler"),
        **_customized(sources),
    )


def t2i_pipe(sources: dict, device: str, dtype: torch.dtype):
    """M1 on its own, as a Stable Diffusion pipeline sharing V's VAE, tokenizer and scheduler."""
    from stillmoving.loading import load_customized, load_t2v, t2i_pipeline

    t2v = load_t2v(
        sources["model"],
        sources.get("motion_modules"),
        dtype,
        sources.get("config_dir"),
        sources.get("domain_adapter"),
        sampler=sources.get("sampler"),
    )
    m1 = load_customized(t2v, **_customized(sources))
    return t2i_pipeline(t2v, m1.unet, m1.text_encoder, m1.text_encoder_2).to(device)


def variant_builders(cfg: CompareConfig, sources: dict, device: str, dtype: torch.dtype) -> dict:
    """kind -> (description, pipeline factory); the table's and the grid's order."""
    w = cfg.interpolation_weight
    blocks = sources.get(SPATIAL_BLOCKS)  # recorded by customize's check: generate applies only these adapters
    delta = {
        DELTA: (
            "the video model's own T2I weights plus the customization, V + (M1 - M), M the --base-t2i",
            lambda: _pipe(sources, device, dtype, base_t2i=cfg.base_t2i, **_customized(sources)),
        )
    }
    return {
        BASE: ("the video model, uncustomized", lambda: _pipe(sources, device, dtype)),
        T2I: ("the customized T2I alone: one image per prompt and seed", lambda: t2i_pipe(sources, device, dtype)),
        NAIVE: (
            "the customized T2I's weights plugged into the video model",
            lambda: _pipe(sources, device, dtype, **_customized(sources)),
        ),
        INTERPOLATION: (
            f"the video model's T2I weights moved a share w = {w:g} of the way to the customized T2I's",
            lambda: interpolated_pipe(sources, w, device, dtype),
        ),
        **(delta if cfg.base_t2i else {}),
        OURS: (
            "naive injection + the spatial adapters of the customization folder"
            + (f" (on the UNet's {blocks} blocks only, as it records)" if blocks else ""),
            lambda: _pipe(
                sources,
                device,
                dtype,
                spatial_adapters=sources["spatial_adapters"],
                spatial_blocks=blocks,
                **_customized(sources),
            ),
        ),
    }


# ----------------------------------------------------------------------------- generating and scoring


def _sample(pipe, kind: VariantKind, cfg: CompareConfig, key: Key) -> np.ndarray:
    prompt, seed = key
    common = sampling_arguments(cfg.height, cfg.width, cfg.steps, cfg.guidance_scale, seed)
    if kind == T2I:
        return to_uint8_frames(pipe(prompt, **common).images[0][None])  # (1, h, w, 3): a still
    return to_uint8_frames(pipe(prompt, num_frames=cfg.num_frames, **common).frames[0])


def generate_missing(cfg: CompareConfig, kind: VariantKind, build: Callable, keys: list[Key]) -> float:
    """Generate the variant's videos that are not on disk yet (the model loads only if one is missing);
    returns the seconds spent."""
    output = Path(cfg.output_dir)
    missing = [key for key in keys if not video_path(output, kind.label, key).is_dir()]
    if not missing:
        return 0.0
    start = time.perf_counter()
    pipe = build()
    if kind != T2I:  # what the files did not tell before loading (`check_compare`), the loaded model does
        from stillmoving.loading import check_num_frames

        check_num_frames(pipe, cfg.num_frames)
    pipe.set_progress_bar_config(disable=True)
    for key in missing:
        write_video(_sample(pipe, kind, cfg, key), video_path(output, kind.label, key))
    return time.perf_counter() - start


def score_variants(cfg: CompareConfig, keys: list[Key], descriptions: dict[VariantKind, str]) -> list[Variant]:
    """Every variant's videos, read back from disk (a resumed run scores exactly what a fresh one would)."""
    scorer = VideoScorer(cfg.evaluation)
    variants = []
    for kind, description in descriptions.items():
        variant = Variant.of(kind, description)
        for key in keys:
            variant.add(read_video(video_path(Path(cfg.output_dir), kind.label, key)), *key)
        variant.metrics = [scorer.score(video, prompt) for video, prompt in zip(variant.videos, variant.captions)]
        variants.append(variant)
    return variants


def run_compare(cfg: CompareConfig, on_variant: Callable[[str, float], None] = lambda name, seconds: None) -> Path:
    """Generate what is missing, score everything, write the report; returns index.html."""
    from stillmoving.evaluation.compare_report import write_compare_report

    cfg, sources = check_compare(cfg)
    claim_output(cfg, video_settings(cfg, sources))
    device = check_device(cfg.device)
    dtype = check_dtype(cfg.dtype, device)
    keys = [(prompt, seed) for prompt in cfg.prompts for seed in range(cfg.seeds)]
    builders = variant_builders(cfg, sources, device, dtype)
    timings = {}
    for kind, (_, build) in builders.items():
        timings[kind.label] = round(generate_missing(cfg, kind, build, keys), 1)
        on_variant(kind.label, timings[kind.label])
    variants = score_variants(cfg, keys, {kind: description for kind, (description, _) in builders.items()})
    settings = {
        **video_settings(cfg, sources),
        "prompts": cfg.prompts,
        "seeds": cfg.seeds,
        "evaluation": evaluation_record(cfg.evaluation),
    }
    return write_compare_report(Path(cfg.output_dir), variants, settings, timings)
