"""`stillmoving demo`: the whole method on the embedded world, against its baselines and ablations.

For each held-out customization (the "sks star" subject by DreamBooth, the crayon style by a LoRA),
made from rendered images by the same commands a user runs, and on each of the world's video models
(the AnimateDiff-like one, whose spatial layers are the T2I M, and the jointly trained one, whose are
not; weights/__init__.py), it compares: the base T2V, the customized T2I alone (the fidelity
reference), naive injection, weight interpolation (the paper's baseline), frozen-video training
without the motion adapter, Still-Moving with the prior term toggled (the paper's prior videos added, or
removed where Still-Moving has them), and Still-Moving; then sweeps the
motion scale on each base T2V. Every video is scored by the world's oracle metrics; claims.json judges the paper's
claims with paired bootstrap intervals (claims.py), and the report folder gets a page with those verdicts, a
legend, a table per customization, the videos as a (prompt, seed) x variant grid, a plot of motion
against alpha, and metrics.json.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from stillmoving.conditioning import ControlNetSpec, load_controlnet
from stillmoving.data.video_io import to_uint8_frames
from stillmoving.errors import StillMovingError
from stillmoving.files import write_text
from stillmoving.injection import t2i_config
from stillmoving.loading import assemble_interpolated, assemble_pipeline, load_customized, load_t2v, t2i_pipeline
from stillmoving.run_folder import SPATIAL_ADAPTERS
from stillmoving.training.config import CustomizeConfig, DreamBoothConfig, StyleLoRAConfig
from stillmoving.training.dreambooth import train_dreambooth
from stillmoving.training.spatial_stage import train_spatial_adapters
from stillmoving.training.style_lora import LORA_FILE, train_style_lora
from stillmoving.world.claims import (
    BASE,
    INTERPOLATION,
    MOTION_SCALE,
    NAIVE,
    NO_MOTION,
    NO_PRIOR,
    OURS,
    T2I,
    WITH_PRIOR,
    Findings,
    by_id,
    differences,
    judge,
)
from stillmoving.world.conditional import NAIVE_CONTROL, OURS_CONTROL, conditional_variants, references, section_name
from stillmoving.world.drift import (
    FIGURE,
    drift_claims,
    drift_html,
    drift_point,
    drift_record,
    plot_drift,
    relative_drift,
)
from stillmoving.world.folders import write_image_folder
from stillmoving.world.legend import DEMO_METRICS, TRACK_METRICS
from stillmoving.world.metrics import video_metrics
from stillmoving.world.report import Page, Variant, json_safe, write_report
from stillmoving.world.synthetic import SceneSpec, caption, make_video_dataset
from stillmoving.world.tasks import Task, default_jobs, run_tasks
from stillmoving.world.variants import VariantKind
from stillmoving.world.weights import shipped_controlnet, shipped_model, shipped_motion_adapter

SWEEP_SECTION = "motion scale (base T2V + motion adapter)"
TARGETS = {"star": {"subject": "star"}, "crayon": {"style": "crayon"}}  # held-out looks, synthetic.py


@dataclass
class DemoConfig:
    """Sizes of the demo; the defaults take 9-11 minutes on 2 CPU cores (README), `quick()` far less."""

    output_dir: str = "demo-report"  # the report folder
    model: str | None = None  # a T2V of the user's instead of the shipped ones (then the only video model)
    motion_adapter: str | None = None  # its stage-1 adapter (default: the shipped AnimateDiff-like model's)
    video_models: tuple[str, ...] = ("animatediff", "joint")  # shipped video models (weights.VIDEO_MODELS)
    interpolation_weight: float = 0.5  # weight interpolation's w
    targets: tuple[str, ...] = ("star", "crayon")  # customizations to run (keys of TARGETS)
    resolution: int = 32  # the world's frame size
    num_frames: int = 8  # frames per video
    customization_images: int = 24  # rendered images a customization is made from
    dreambooth_steps: int = 1500  # DreamBooth steps (full UNet + text encoder, per-image captions)
    dreambooth_lr: float = 5e-5  # low: a full fine-tune of a model this small forgets its world quickly
    style_steps: int = 400  # style-LoRA steps
    style_lr: float = 1e-3  # style-LoRA learning rate
    style_rank: int = 16  # style-LoRA rank
    t2i_batch_size: int = 4  # images per customization step
    spatial_steps: int = 120  # spatial-adapter steps (the paper: ~500 on SD-sized models)
    spatial_lr: float = 1e-3  # spatial-adapter learning rate
    spatial_rank: int = 8  # spatial-adapter rank
    frame_agreement: float = 0.0  # `customize --frame-agreement` of every trained variant (0: the paper's objective)
    frozen_target: str = "noise"  # `customize --frozen-target` of every trained variant ("noise": the paper's)
    prior_loss: str = "motion"  # `customize --prior-loss` of every trained variant ("video": the paper's)
    prior_loss_weight: float = 0.0  # `customize --prior-loss-weight` of Still-Moving (the paper: 1)
    image_guidance_scale: float = 1.0  # `customize --image-guidance-scale`: guidance of M1's sampled images
    spatial_min_timestep: int = 0  # `customize --spatial-min-timestep` of every trained variant (0: the paper's)
    num_images: int = 16  # customized T2I samples the spatial adapters train on
    num_prior_videos: int = 8  # prior-preservation videos sampled from the T2V
    eval_prompts: int = 4  # evaluation prompts per customization
    seeds: int = 3  # videos per prompt
    sample_steps: int = 15  # DDIM steps of every generation
    guidance_scale: float = 4.0  # classifier-free guidance of every generation
    alphas: tuple[float, ...] = (-1.0, -0.5, 0.0, 0.5, 1.0)  # the motion-scale sweep
    drift_target: str = "crayon"  # the style whose LoRA weight the drift study varies (a key of TARGETS)
    drift_weights: tuple[float, ...] = (0.5, 1.0, 2.0)  # its LoRA weights (1.0 reuses the main section); () skips it
    controlnet: str | None = None  # the conditional section's ControlNet (default: the shipped world ControlNet)
    conditional_prompts: int = 2  # conditional section: evaluation prompts x 2 reference tracks each; 0 skips it
    seed: int = 0  # everything else follows from it
    jobs: int = 0  # worker processes for the phases (world/tasks.py); 0: one per CPU core, at most 4

    @classmethod
    def quick(cls, **overrides) -> DemoConfig:
        """CI-sized: one customization, few steps; 2 prompts x 2 seeds, the fewest pairs the claims judge."""
        small = dict(
            targets=("star",),
            customization_images=4,
            dreambooth_steps=10,
            style_steps=10,
            spatial_steps=6,
            num_images=4,
            num_prior_videos=2,
            eval_prompts=2,
            seeds=2,
            sample_steps=4,
            alphas=(-1.0, 0.0, 1.0),
            drift_weights=(),
        )
        return cls(**{**small, **overrides})

    @classmethod
    def full(cls, **overrides) -> DemoConfig:
        """The study size: 8 prompts x 4 seeds = 32 paired videos per variant (docs/method.md's study uses as
        many), everything else as the default; about four times the default's generation time."""
        return cls(**{**dict(eval_prompts=8, seeds=4), **overrides})


@dataclass
class Generation:
    """Everything a call of the video model needs besides the prompt and seed."""

    num_frames: int
    resolution: int
    steps: int
    guidance_scale: float


@dataclass(frozen=True)
class VideoModel:
    """One video model the demo runs on, and how its sections and phases are named."""

    name: str  # a key of weights.VIDEO_MODELS, or "" for the user's --model
    model: str
    motion_adapter: str

    def scope(self, section: str) -> str:
        """The first model's sections are named by the customization alone ("star"), the others' carry the
        model's name ("star (joint V)"), in the report, in claims.json and in the phase lines."""
        return section if self.name in ("", "animatediff") else f"{section} ({self.name} V)"


def video_models(cfg: DemoConfig) -> list[VideoModel]:
    """The user's video model, else the shipped ones `cfg.video_models` names."""
    if cfg.model:
        return [VideoModel("", cfg.model, cfg.motion_adapter or str(shipped_motion_adapter()))]
    return [VideoModel(name, str(shipped_model(name)), str(shipped_motion_adapter(name))) for name in cfg.video_models]


def t2i_base(cfg: DemoConfig) -> str:
    """The T2I M users customize: the user's video model's spatial layers, else the AnimateDiff-like world
    model's (the jointly trained one's spatial layers are no longer M)."""
    return cfg.model or str(shipped_model("animatediff"))


def on_video_model(m1_args: dict, model: str, base: str) -> dict:
    """`load_customized` arguments of M1 for the video model `model`: a LoRA fuses into M (`base`), never into
    another video model's own spatial layers."""
    if m1_args["customized"] is None and model != base:
        return {**m1_args, "customized": base}
    return m1_args


def render_customization_images(folder: Path, target: str, count: int, seed: int, resolution: int) -> Path:
    """The user's side: a folder of images of the new subject/style, captioned in metadata.jsonl."""
    return write_image_folder(folder, count, seed, resolution, **TARGETS[target])


def customized_args(target: str, t2i: Path) -> dict:
    """`load_customized` arguments of the customized T2I `make_customized_t2i` wrote to `t2i`."""
    if "subject" in TARGETS[target]:
        return {"customized": str(t2i), "loras": []}
    return {"customized": None, "loras": [(str(t2i / LORA_FILE), 1.0)]}


def make_customized_t2i(cfg: DemoConfig, target: str, images: Path, out: Path) -> dict:
    """DreamBooth for a subject, a style LoRA for a style; returns `load_customized` arguments."""
    common = dict(
        model=cfg.model,
        output=str(out),
        height=cfg.resolution,
        width=cfg.resolution,
        batch_size=cfg.t2i_batch_size,
        seed=cfg.seed,
    )
    if "subject" in TARGETS[target]:
        train_dreambooth(
            DreamBoothConfig(
                **common,
                images=str(images),
                prompt=f"a sks {target}",
                use_captions=True,
                train_text_encoder=True,
                steps=cfg.dreambooth_steps,
                lr=cfg.dreambooth_lr,
            )
        )
    else:
        train_style_lora(
            StyleLoRAConfig(
                **common,
                images=str(images),
                rank=cfg.style_rank,
                steps=cfg.style_steps,
                lr=cfg.style_lr,
            )
        )
    return customized_args(target, out)


def evaluation_scenes(target: str, count: int, seed: int, resolution: int, num_frames: int) -> list[SceneSpec]:
    """`count` scenes of the customization's subject or style, the same for the same seed."""
    return [sample.spec for sample in make_video_dataset(count, seed, num_frames, resolution, **TARGETS[target])]


def evaluation_prompts(target: str, count: int, seed: int, resolution: int, num_frames: int) -> list[str]:
    return [caption(spec) for spec in evaluation_scenes(target, count, seed, resolution, num_frames)]


def generate(pipe, prompts: list[str], gen: Generation, seeds: int, motion_scale: float = 0.0) -> Variant:
    pipe.set_progress_bar_config(disable=True)
    variant = Variant("", "")
    for prompt in prompts:
        for seed in range(seeds):
            frames = pipe(
                prompt,
                num_frames=gen.num_frames,
                height=gen.resolution,
                width=gen.resolution,
                num_inference_steps=gen.steps,
                guidance_scale=gen.guidance_scale,
                motion_scale=motion_scale,
                generator=torch.Generator().manual_seed(seed),
                output_type="np",
            ).frames[0]
            variant.add(to_uint8_frames(frames), prompt, seed)
    return variant


def score(variant: Variant, target: str | None, kind: VariantKind, description: str) -> Variant:
    variant.name, variant.id, variant.description = kind.label, kind.id, description
    variant.metrics = [video_metrics(v, prompt=c, target=target) for v, c in zip(variant.videos, variant.captions)]
    return variant


def t2i_reference(cfg: DemoConfig, m1_args: dict, prompts: list[str], gen: Generation) -> Variant:
    """The customized T2I on its own: one image per prompt and seed, its fidelity is the target to keep."""
    t2v = load_t2v(cfg.model)
    m1 = load_customized(t2v, m1_args["customized"], m1_args["loras"])
    t2i = t2i_pipeline(t2v, m1.unet, m1.text_encoder)
    t2i.set_progress_bar_config(disable=True)
    variant = Variant("", "")
    for prompt in prompts:
        for seed in range(cfg.seeds):
            image = t2i(
                prompt,
                height=gen.resolution,
                width=gen.resolution,
                num_inference_steps=gen.steps,
                guidance_scale=gen.guidance_scale,
                generator=torch.Generator().manual_seed(seed),
                output_type="np",
            ).images[0]
            variant.add(to_uint8_frames(image[None]), prompt, seed)
    return variant


def image_prompts(scenes: list[SceneSpec]) -> list[str]:
    """The scenes' captions without their motion words: what the customized T2I is asked for."""
    return [caption(spec, motion=False) for spec in scenes]


def prior_prompts(cfg: DemoConfig) -> list[str]:
    """Captions of the base world: what the un-customized T2V's prior videos show."""
    return [s.caption for s in make_video_dataset(cfg.num_prior_videos, cfg.seed + 5, cfg.num_frames, cfg.resolution)]


def spatial_run(cfg: DemoConfig, m1_args: dict, prompts: list[str], out: Path, **changes) -> str:
    """Stage 2 with the demo's sizes on `prompts` (`image_prompts`); `changes` make the ablations (no motion
    adapter, the prior term toggled)."""
    run = CustomizeConfig(
        model=cfg.model,
        output=str(out),
        motion_adapter=cfg.motion_adapter,
        customized=m1_args["customized"],
        lora=m1_args["loras"],
        prompt=list(prompts),
        prior_prompt=prior_prompts(cfg),
        num_images=cfg.num_images,
        num_prior_videos=cfg.num_prior_videos,
        spatial_rank=cfg.spatial_rank,
        frame_agreement=cfg.frame_agreement,
        frozen_target=cfg.frozen_target,
        prior_loss=cfg.prior_loss,
        prior_loss_weight=cfg.prior_loss_weight,
        image_guidance_scale=cfg.image_guidance_scale,
        spatial_min_timestep=cfg.spatial_min_timestep,
        num_frames=cfg.num_frames,
        height=cfg.resolution,
        width=cfg.resolution,
        steps=cfg.spatial_steps,
        lr=cfg.spatial_lr,
        sample_steps=cfg.sample_steps,
        guidance_scale=cfg.guidance_scale,
        seed=cfg.seed,
        num_validation_videos=0,  # customize's own check against naive injection: the demo makes that comparison
    )
    return str(train_spatial_adapters(replace(run, **changes)))


def section_prompts(cfg: DemoConfig, target: str) -> tuple[list[str], list[str]]:
    """A customization's evaluation prompts and the image prompts its spatial adapters train on: the same for
    every variant of the section and of the drift study, so their videos pair up by (prompt, seed)."""
    return (
        evaluation_prompts(target, cfg.eval_prompts, cfg.seed + 2, cfg.resolution, cfg.num_frames),
        image_prompts(evaluation_scenes(target, cfg.num_images, cfg.seed + 4, cfg.resolution, cfg.num_frames)),
    )


def customized_t2i(cfg: DemoConfig, target: str, work: Path) -> dict:
    """The user's side, once per customization whatever the video model: images, then M1 from M."""
    images = render_customization_images(
        work / "images", target, cfg.customization_images, cfg.seed + 1, cfg.resolution
    )
    return make_customized_t2i(replace(cfg, model=t2i_base(cfg)), target, images, work / "t2i")


def interpolation_variant(cfg: DemoConfig, m1: dict, prompts: list[str], gen: Generation) -> Variant:
    pipe = assemble_interpolated(cfg.model, cfg.interpolation_weight, customized=m1["customized"], loras=m1["loras"])
    return generate(pipe, prompts, gen, cfg.seeds)


def reference_variants(cfg: DemoConfig, target: str, gen: Generation, base: str, m1: dict) -> list[Variant]:
    """The untrained variants of one customization on one video model (`cfg.model`; M is `base`): base T2V, the
    customized T2I alone, naive injection, weight interpolation."""
    m1 = on_video_model(m1, cfg.model, base)
    prompts, _ = section_prompts(cfg, target)
    plain = assemble_pipeline(cfg.model)
    naive = assemble_pipeline(cfg.model, customized=m1["customized"], loras=m1["loras"])
    return [
        score(generate(plain, prompts, gen, cfg.seeds), target, BASE, "the video model, uncustomized"),
        score(t2i_reference(cfg, m1, prompts, gen), target, T2I, "the customized T2I alone: the fidelity to keep"),
        score(generate(naive, prompts, gen, cfg.seeds), target, NAIVE, "customized T2I weights plugged into the T2V"),
        score(
            interpolation_variant(cfg, m1, prompts, gen),
            target,
            INTERPOLATION,
            f"the T2V's spatial weights moved {cfg.interpolation_weight:g} of the way to the customized T2I's",
        ),
    ]


def trained_runs(cfg: DemoConfig) -> list[tuple[VariantKind, str, dict]]:
    """The variants with spatial adapters, and the `customize` options that make each."""
    return [
        (NO_MOTION, "frozen-video training of spatial adapters without the motion adapter", {"motion_adapter": ""}),
        prior_ablation(cfg),
        (OURS, "spatial adapters on frozen videos (motion adapter on)" + (" + prior videos" * has_prior(cfg)), {}),
    ]


def trained_variant(
    cfg: DemoConfig, target: str, work: Path, gen: Generation, base: str, run: tuple[VariantKind, str, dict], m1: dict
) -> Variant:
    """One trained variant of one customization on one video model (`cfg.model`; M is `base`): its adapters in
    `work`/<id>, its videos."""
    kind, description, changes = run
    m1 = on_video_model(m1, cfg.model, base)
    prompts, train_prompts = section_prompts(cfg, target)
    adapters = spatial_run(cfg, m1, train_prompts, work / kind.id, **changes)
    pipe = assemble_pipeline(cfg.model, customized=m1["customized"], loras=m1["loras"], spatial_adapters=adapters)
    return score(generate(pipe, prompts, gen, cfg.seeds), target, kind, description)


def has_prior(cfg: DemoConfig) -> bool:
    return cfg.prior_loss_weight > 0


def prior_ablation(cfg: DemoConfig) -> tuple[VariantKind, str, dict]:
    """The prior term toggled: Still-Moving without its prior videos, or, where it has none (the default), with
    the paper's (weight 1 on the prior videos' whole denoising error)."""
    if has_prior(cfg):
        return NO_PRIOR, "Still-Moving without prior videos", {"prior_loss_weight": 0.0}
    return WITH_PRIOR, "Still-Moving with the paper's prior videos", {"prior_loss_weight": 1.0, "prior_loss": "video"}


def drift_variants(
    cfg: DemoConfig, target: str, weight: float, work: Path, gen: Generation, _m1: dict
) -> tuple[Variant, Variant]:
    """Naive injection and Still-Moving with the target's LoRA (in `work`/t2i, made by the task whose result is
    `_m1`) fused at `weight`."""
    loras = [(str(work / "t2i" / LORA_FILE), weight)]
    prompts, train_prompts = section_prompts(cfg, target)
    naive = generate(assemble_pipeline(cfg.model, loras=loras), prompts, gen, cfg.seeds)
    adapters = spatial_run(cfg, {"customized": None, "loras": loras}, train_prompts, work / f"drift_{weight:g}")
    ours = generate(assemble_pipeline(cfg.model, loras=loras, spatial_adapters=adapters), prompts, gen, cfg.seeds)
    return score(naive, target, NAIVE, ""), score(ours, target, OURS, "")


def drift_weights(cfg: DemoConfig) -> list[float]:
    """The drift study's LoRA weights, if it runs: on a style, on the first video model."""
    target = cfg.drift_target
    return list(cfg.drift_weights) if target in cfg.targets and "style" in TARGETS[target] else []


def drift_points(cfg: DemoConfig, main: dict[str, Variant], runs: dict[float, tuple[Variant, Variant]], work: Path):
    """Still-Moving against naive injection at each drift weight (docs: world/drift.py); weight 1 is the main
    section's pair (`main`, by variant id), the others are `runs`."""
    points = []
    for weight in drift_weights(cfg):
        naive, ours = (main[NAIVE.id], main[OURS.id]) if weight == 1.0 else runs[weight]
        drift = relative_drift(cfg.model, None, [(str(work / cfg.drift_target / "t2i" / LORA_FILE), weight)])
        points.append(drift_point(weight, drift, naive, ours, list(DEMO_METRICS), cfg.seed))
    return points


def motion_sweep(cfg: DemoConfig, gen: Generation) -> tuple[dict[str, list[float]], list[Variant]]:
    """On `cfg.model` with `cfg.motion_adapter`."""
    """Displacement of base-world videos against alpha, the motion adapter on the base T2V; and the videos."""
    pipe = assemble_pipeline(cfg.model, motion_adapter=cfg.motion_adapter)
    prompts = [s.caption for s in make_video_dataset(cfg.eval_prompts, cfg.seed + 3, cfg.num_frames, cfg.resolution)]
    sweep, variants = {"alpha": [], "mean": [], "std": []}, []
    for alpha in cfg.alphas:
        variant = score(
            generate(pipe, prompts, gen, cfg.seeds, motion_scale=alpha),
            None,
            VariantKind(f"alpha_{alpha:g}", f"alpha {alpha:g}"),
            {1.0: "static", 0.0: "the T2V's own motion", -1.0: "more motion"}.get(alpha, ""),
        )
        displacement = np.array([m["displacement"] for m in variant.metrics], dtype=float)
        displacement = displacement[np.isfinite(displacement)]
        sweep["alpha"].append(alpha)
        sweep["mean"].append(float(displacement.mean()) if displacement.size else float("nan"))
        sweep["std"].append(float(displacement.std()) if displacement.size else float("nan"))
        variants.append(variant)
    return sweep, variants


def conditional_section(
    cfg: DemoConfig, target: str, adapters: Path, gen: Generation, m1: dict, _ours: Variant
) -> list[Variant]:
    """The paper's third application on the first video model (`cfg.model`, world/conditional.py): videos that
    follow reference silhouettes through the world ControlNet, with naive injection and with Still-Moving (the
    `adapters` its customization section trained, in the task whose result is `_ours`)."""
    pipe = load_t2v(cfg.model)
    spec = ControlNetSpec(cfg.controlnet or str(shipped_controlnet()))
    controlnet = load_controlnet(spec, t2i_config(pipe.unet), pipe.vae_scale_factor)
    refs = references(TARGETS[target], cfg.conditional_prompts, cfg.seed + 2, cfg.num_frames, cfg.resolution)
    return conditional_variants(cfg.model, m1, str(adapters), controlnet, refs, gen, target)


def demo_notes(cfg: DemoConfig) -> str:
    """The line under the report's title: how many videos each figure rests on, and how they pair."""
    return (
        f"Each variant: {cfg.eval_prompts} prompts x {cfg.seeds} seeds = {cfg.eval_prompts * cfg.seeds} videos "
        f"of {cfg.num_frames} frames at {cfg.resolution} px, {cfg.sample_steps} sampling steps, classifier-free "
        f"guidance {cfg.guidance_scale:g} (the customized T2I's images too). Every variant uses "
        "the same prompts and seeds, so videos pair up by (prompt, seed) across the grid and in the intervals. "
        f"Every trained variant: {cfg.spatial_steps} adapter steps (the paper: about 500)"
        + (f", adapters at timesteps >= {cfg.spatial_min_timestep} only" if cfg.spatial_min_timestep else "")
        + "; the no-motion-adapter "
        "ablation's videos stand still only after more (docs/method.md: 8 of 12 static at 480 steps, 11 at 1920)."
    )


def model_config(cfg: DemoConfig, vm: VideoModel) -> DemoConfig:
    return replace(cfg, model=vm.model, motion_adapter=vm.motion_adapter)


class Plan:
    """The demo's phases as tasks (world/tasks.py), named as their lines on stderr, and where their results go."""

    def __init__(self, cfg: DemoConfig, models: list[VideoModel], work: Path, gen: Generation) -> None:
        self.cfg, self.models, self.work, self.gen = cfg, models, work, gen
        self.tasks: list[Task] = []
        self.t2i = {t: f"[{t}] customized T2I from {cfg.customization_images} rendered images" for t in cfg.targets}
        for target in cfg.targets:
            self.tasks.append(Task(self.t2i[target], customized_t2i, (cfg, target, work / target)))
        for vm in models:
            self.add_video_model(vm)
        self.add_conditional()
        for weight in [w for w in drift_weights(cfg) if w != 1.0]:
            args = (model_config(cfg, models[0]), cfg.drift_target, weight, work / cfg.drift_target, self.gen)
            self.tasks.append(Task(self.drift(weight), drift_variants, args, (self.t2i[cfg.drift_target],)))

    def add_video_model(self, vm: VideoModel) -> None:
        cfg, base = model_config(self.cfg, vm), t2i_base(self.cfg)
        for target in cfg.targets:
            after = (self.t2i[target],)
            self.tasks.append(
                Task(self.reference(vm, target), reference_variants, (cfg, target, self.gen, base), after)
            )
            for run in trained_runs(cfg):
                args = (cfg, target, self.folder(vm, target), self.gen, base, run)
                self.tasks.append(Task(self.trained(vm, target, run[0]), trained_variant, args, after))
        self.tasks.append(Task(self.sweep(vm), motion_sweep, (cfg, self.gen)))

    def add_conditional(self) -> None:
        """On the first video model, skipped for a user's --model, which the world ControlNet need not fit."""
        if not self.cfg.conditional_prompts or self.cfg.model:
            return
        vm = self.models[0]
        cfg = model_config(self.cfg, vm)
        for target in cfg.targets:
            adapters = self.folder(vm, target) / OURS.id / SPATIAL_ADAPTERS
            after = (self.t2i[target], self.trained(vm, target, OURS))
            args = (cfg, target, adapters, self.gen)
            self.tasks.append(Task(self.conditional(target), conditional_section, args, after))

    def folder(self, vm: VideoModel, target: str) -> Path:
        """Where one customization's trained variants on one video model write their runs (<folder>/<id>)."""
        return self.work / target / (vm.name or "model")

    def reference(self, vm: VideoModel, target: str) -> str:
        return f"[{vm.scope(target)}] base T2V, customized T2I, naive injection, weight interpolation"

    def trained(self, vm: VideoModel, target: str, kind: VariantKind) -> str:
        return f"[{vm.scope(target)}] {kind.label}"

    def sweep(self, vm: VideoModel) -> str:
        return vm.scope("motion-scale sweep")

    def conditional(self, target: str) -> str:
        return f"[{target}] conditional generation: reference silhouettes, ControlNet"

    def drift(self, weight: float) -> str:
        return f"[drift] {self.cfg.drift_target} LoRA at weight {weight:g}"

    def section(self, results: dict, vm: VideoModel, target: str) -> list[Variant]:
        """One customization's variants on one video model, in the report's column order."""
        trained = [results[self.trained(vm, target, kind)] for kind, _, _ in trained_runs(self.cfg)]
        return [*results[self.reference(vm, target)], *trained]


@dataclass
class ModelPart:
    """What one video model contributes to the page: its sections (customizations, then the sweep's videos),
    its claims, and its sweep's displacement figures."""

    sections: dict[str, list[Variant]]
    findings: Findings
    sweep: dict[str, list[float]]


def video_model_part(cfg: DemoConfig, plan: Plan, vm: VideoModel, results: dict) -> ModelPart:
    """Every customization's variants on one video model, its motion-scale sweep, and their claims."""
    sections = {vm.scope(t): plan.section(results, vm, t) for t in cfg.targets}
    sweep, videos = results[plan.sweep(vm)]
    findings = judge(sections, sweep["alpha"], videos, list(DEMO_METRICS), cfg.seed, vm.scope(MOTION_SCALE))
    return ModelPart({**sections, vm.scope(SWEEP_SECTION): videos}, findings, sweep)


def run_demo(cfg: DemoConfig) -> Path:
    """Run everything; returns the report's index.html."""
    models = video_models(cfg)
    for path in [x for vm in models for x in (vm.model, vm.motion_adapter)]:
        if not Path(path).exists():
            raise StillMovingError(f"no such model or adapter: {path}")
    out = Path(cfg.output_dir)
    shutil.rmtree(out / "work", ignore_errors=True)  # the demo's own scratch (models, images) from an earlier run
    gen = Generation(cfg.num_frames, cfg.resolution, cfg.sample_steps, cfg.guidance_scale)
    start = time.perf_counter()
    plan = Plan(cfg, models, out / "work", gen)
    results, seconds = run_tasks(plan.tasks, cfg.jobs or default_jobs(), out / "work" / "logs")
    parts = [video_model_part(cfg, plan, vm, results) for vm in models]
    sections = {name: variants for part in parts for name, variants in part.sections.items()}
    findings = sum((part.findings for part in parts[1:]), parts[0].findings)
    for target in [t for t in cfg.targets if plan.conditional(t) in results]:
        variants = sections[section_name(target)] = results[plan.conditional(target)]
        by = {v.id: v for v in variants}  # Still-Moving + ControlNet minus naive injection + ControlNet
        columns = list(DEMO_METRICS) + list(TRACK_METRICS)
        findings.differences[section_name(target)] = differences(
            by[OURS_CONTROL.id], by[NAIVE_CONTROL.id], columns, cfg.seed
        )
    main = by_id(cfg.drift_target, sections[cfg.drift_target]) if drift_weights(cfg) else {}
    drift_runs = {w: results[plan.drift(w)] for w in drift_weights(cfg) if w != 1.0}
    points = drift_points(model_config(cfg, models[0]), main, drift_runs, out / "work")
    findings.claims += drift_claims(points, cfg.drift_target)
    timings = {**seconds, "total": round(time.perf_counter() - start, 1)}
    record = {
        **findings.record(),
        "drift_study": drift_record(points),
        "config": asdict(cfg),
        "timings_s": timings,
        "video_models": [asdict(vm) for vm in models],
    }
    if points:
        plot_drift(points, out / FIGURE)
    write_text(out / "claims.json", json.dumps(json_safe(record), indent=2, allow_nan=False) + "\n")
    page = Page(
        "Still-Moving on the embedded world",
        sections,
        list(DEMO_METRICS) + list(TRACK_METRICS),
        findings,
        parts[0].sweep,
        SWEEP_SECTION,
        demo_notes(cfg),
        drift=drift_html(points, list(DEMO_METRICS), cfg.drift_target) if points else "",
    )
    return write_report(out, page)
