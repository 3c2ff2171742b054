"""`stillmoving demo`: the whole method on the embedded world, against its baselines and ablations.

For each held-out customization (the "sks star" subject by DreamBooth, the crayon style by a LoRA),
made from rendered images by the same commands a user runs, and on each of the world's video models
(the AnimateDiff-like one, whose spatial layers are the T2I M, and the jointly trained one, whose are
not; weights/__init__.py), it compares: the base T2V, the customized T2I alone (the fidelity
reference), naive injection, weight interpolation (the paper's baseline), on the jointly trained model delta
injection (V + (M1 - M), `generate --base-t2i`), frozen-video training
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

from stillmoving.adapters.spatial import ALL_BLOCKS
from stillmoving.errors import StillMovingError
from stillmoving.files import write_text
from stillmoving.inference import sampling_arguments
from stillmoving.run_folder import SPATIAL_ADAPTERS
from stillmoving.training.config import CustomizeConfig
from stillmoving.world.claims import (
    BASE,
    FAILS,
    HOLDS,
    MOTION_SCALE,
    OURS,
    T2I,
    UNJUDGED,
    Findings,
    by_id,
    differences,
    judge,
)
from stillmoving.world.conditional import NAIVE_CONTROL, OURS_CONTROL, section_name
from stillmoving.world.drift import (
    FIGURE,
    drift_claims,
    drift_html,
    drift_record,
    plot_drift,
    recorded_scope,
    subject_drift_claims,
)
from stillmoving.world.legend import DEMO_METRICS, TRACK_METRICS
from stillmoving.world.phases import (
    conditional_section,
    customized_t2i,
    drift_points,
    drift_variants,
    drift_weights,
    motion_sweep,
    reference_variants,
    subject_drift_lrs,
    subject_drift_points,
    subject_drift_variants,
    t2i_base,
    trained_runs,
    trained_variant,
)
from stillmoving.world.report import Page, Variant, json_safe, write_report
from stillmoving.world.tasks import Task, default_jobs, run_tasks
from stillmoving.world.variants import VariantKind
from stillmoving.world.weights import shipped_model, shipped_motion_adapter

SWEEP_SECTION = "motion scale (base T2V + motion adapter)"
FULL_DRIFT_WEIGHTS = (0.5, 1.0, 2.0)  # `--full`'s LoRA weights of the drift study's style


@dataclass
class DemoConfig:
    """Sizes of the demo; the defaults take 12 to 15 minutes on 2 CPU cores (README), `quick()` far less."""

    output_dir: str = "demo-report"  # the report folder
    model: str | None = None  # a T2V of the user's instead of the shipped ones (then the only video model)
    motion_adapter: str | None = None  # its stage-1 adapter (default: the shipped AnimateDiff-like model's)
    video_models: tuple[str, ...] = ("animatediff", "joint")  # shipped video models (weights.VIDEO_MODELS)
    interpolation_weight: float = 0.5  # weight interpolation's w
    targets: tuple[str, ...] = ("star", "crayon")  # customizations to run (keys of phases.TARGETS)
    resolution: int = 32  # the world's frame size
    num_frames: int = 8  # frames per video
    customization_images: int = 24  # rendered images a customization is made from
    dreambooth_steps: int = 1500  # DreamBooth steps (full UNet + text encoder, per-image captions)
    dreambooth_lr: float = 5e-5  # low: a full fine-tune of a model this small forgets its world quickly
    style_steps: int = 400  # style-LoRA steps
    style_lr: float = 1e-3  # style-LoRA learning rate
    style_rank: int = 16  # style-LoRA rank
    t2i_batch_size: int = 4  # images per customization step
    spatial_steps: int = 120  # spatial-adapter steps (the paper: ~500 on SD-sized models; `full()`: customize's 500)
    spatial_lr: float = 1e-3  # spatial-adapter learning rate (`full()`: customize's 1e-4)
    spatial_rank: int = 8  # spatial-adapter rank
    spatial_blocks: str = ALL_BLOCKS  # `customize --spatial-blocks` of every trained variant (all: the paper's)
    generate_spatial_blocks: str | None = None  # `generate --spatial-blocks` of every trained variant's videos
    snr_gamma: float = 0.0  # `customize --snr-gamma` of every trained variant (0: plain MSE, the paper's)
    reencode_images: float = 0.0  # `customize --reencode-images` of every trained variant (0: the sampler's latents)
    frame_agreement: float = 0.0  # `customize --frame-agreement` of every trained variant (0: the paper's objective)
    frozen_target: str = "noise"  # `customize --frozen-target` of every trained variant ("noise": the paper's)
    prior_loss: str = "motion"  # `customize --prior-loss` of every trained variant ("video": the paper's)
    prior_loss_weight: float = 0.0  # `customize --prior-loss-weight` of Still-Moving (the paper: 1)
    image_guidance_scale: float = 1.0  # `customize --image-guidance-scale`: guidance of M1's sampled images
    spatial_min_timestep: int = 0  # `customize --spatial-min-timestep` of every trained variant (0: the paper's)
    num_images: int = 16  # customized T2I samples the spatial adapters train on
    num_prior_videos: int = 8  # prior-preservation videos sampled from the T2V
    eval_prompts: int = 8  # evaluation prompts per customization (the issue: at least 32 paired videos per variant)
    seeds: int = 4  # videos per prompt
    sweep_prompts: int = 4  # the motion-scale sweep's base-world prompts (its monotone claim needs few videos)
    sweep_seeds: int = 3  # and videos per prompt
    sample_steps: int = 15  # DDIM steps of every generation
    guidance_scale: float = 4.0  # classifier-free guidance of every generation
    alphas: tuple[float, ...] = (-1.0, -0.5, 0.0, 0.5, 1.0)  # the motion-scale sweep
    drift_target: str = "crayon"  # the style whose LoRA weight the drift study varies (a key of phases.TARGETS)
    drift_weights: tuple[float, ...] = (1.0, 2.0)  # its LoRA weights (1.0 reuses the main section); () skips it
    drift_subject: str = "star"  # the subject whose DreamBooth learning rate the drift study varies (phases.TARGETS)
    subject_drift_lrs: tuple[float, ...] = (5e-4,)  # its other DreamBooth learning rates (heavy drift); () skips it
    controlnet: str | None = None  # the conditional section's ControlNet (default: the shipped world ControlNet)
    conditional_prompts: int = 2  # conditional section: evaluation prompts x 2 reference tracks each; 0 skips it
    seed: int = 0  # everything else follows from it
    spatial_seed: int | None = None  # `customize --seed` of every trained variant (None: `seed`); nothing else changes
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
            sweep_prompts=2,
            sweep_seeds=2,
            sample_steps=4,
            alphas=(-1.0, 0.0, 1.0),
            drift_weights=(),
            subject_drift_lrs=(),
        )
        return cls(**{**small, **overrides})

    @classmethod
    def full(cls, **overrides) -> DemoConfig:
        """The README's run: every trained variant with customize's own recipe (500 steps at lr 1e-4, steady from one
        training seed to another; the default's 120 at 1e-3 is not, docs/method.md), and the motion-scale sweep on 32
        paired videos too (the default sweeps 12), and the drift study's style at LoRA weight 0.5 too, below the main
        section's (the default's 15 minutes leave it out); the sections, their videos and the default's claims are the
        default's."""
        steady = dict(spatial_steps=CustomizeConfig.steps, spatial_lr=CustomizeConfig.lr)
        larger = dict(sweep_prompts=8, sweep_seeds=4, drift_weights=FULL_DRIFT_WEIGHTS)
        return cls(**{**larger, **steady, **overrides})


@dataclass
class Generation:
    """Everything a call of the video model needs besides the prompt and seed."""

    num_frames: int
    resolution: int
    steps: int
    guidance_scale: float

    def arguments(self, seed: int) -> dict:
        """A diffusers pipeline's arguments for one video or image at `seed` (frames aside): size, steps, guidance,
        the seeded generator, numpy output."""
        return sampling_arguments(self.resolution, self.resolution, self.steps, self.guidance_scale, seed)


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


def demo_notes(cfg: DemoConfig) -> str:
    """The line under the report's title: how many videos each figure rests on, and how they pair."""
    return (
        f"Each variant: {cfg.eval_prompts} prompts x {cfg.seeds} seeds = {cfg.eval_prompts * cfg.seeds} videos "
        f"of {cfg.num_frames} frames at {cfg.resolution} px, {cfg.sample_steps} sampling steps, classifier-free "
        f"guidance {cfg.guidance_scale:g} (the customized T2I's images too). Every variant uses "
        "the same prompts and seeds, so videos pair up by (prompt, seed) across the grid and in the intervals. "
        f"The motion-scale sweep: {cfg.sweep_prompts} base-world prompts x {cfg.sweep_seeds} seeds per alpha. "
        f"Every trained variant: {cfg.spatial_steps} steps at lr {cfg.spatial_lr:g} of rank-{cfg.spatial_rank} adapters"
        " (the paper: about 500)"
        + (f", adapters at timesteps >= {cfg.spatial_min_timestep} only" if cfg.spatial_min_timestep else "")
        + (f", adapters in the UNet's {cfg.spatial_blocks} blocks only" if cfg.spatial_blocks != ALL_BLOCKS else "")
        + (
            f", videos made with the adapters of the UNet's {cfg.generate_spatial_blocks} blocks only"
            if cfg.generate_spatial_blocks
            else ""
        )
        + (f", min-SNR-{cfg.snr_gamma:g} loss weighting" if cfg.snr_gamma else "")
        + (f", {cfg.reencode_images:.0%} of M1's images decoded and encoded again" if cfg.reencode_images else "")
        + (f", adapters trained with seed {cfg.spatial_seed}" if cfg.spatial_seed is not None else "")
        + "; the no-motion-adapter ablation's videos stand still only once its adapters have moved about six times as "
        "far as customize's recipe moves them (docs/method.md: 15 of 32 static at 4800 steps at lr 0.0001 and 13 at "
        "480 steps at lr 0.001; 2 of 32 at 500 steps at lr 0.0001 and at 120 steps at lr 0.001)."
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
        # A ready task starts in list order when a worker is free: the drift study's phases, the longest ones, come
        # first, and the short ControlNet sections last, so that no worker waits alone at the end (listed after
        # the ControlNet sections, the LoRA weight's phase left one worker idle for 74 s of a 15-minute run).
        for lr in subject_drift_lrs(cfg):
            args = (model_config(cfg, models[0]), cfg.drift_subject, lr, work / cfg.drift_subject, self.gen)
            self.tasks.append(Task(self.subject_drift(lr), subject_drift_variants, args))
        for weight in [w for w in drift_weights(cfg) if w != 1.0]:
            args = (model_config(cfg, models[0]), cfg.drift_target, weight, work / cfg.drift_target, self.gen)
            self.tasks.append(Task(self.drift(weight), drift_variants, args, (self.t2i[cfg.drift_target],)))
        for vm in models:
            self.add_video_model(vm)
        self.add_conditional()

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
        delta = ", delta injection" if vm.model != t2i_base(self.cfg) else ""  # as reference_variants decides
        return f"[{vm.scope(target)}] base T2V, customized T2I, naive injection, weight interpolation{delta}"

    def trained(self, vm: VideoModel, target: str, kind: VariantKind) -> str:
        return f"[{vm.scope(target)}] {kind.label}"

    def sweep(self, vm: VideoModel) -> str:
        return vm.scope("motion-scale sweep")

    def conditional(self, target: str) -> str:
        return f"[{target}] conditional generation: reference silhouettes, ControlNet"

    def drift(self, weight: float) -> str:
        return f"[drift] {self.cfg.drift_target} LoRA at weight {weight:g}"

    def subject_drift(self, lr: float) -> str:
        return f"[drift] {self.cfg.drift_subject} DreamBooth at lr {lr:g}"

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


def with_section(sections: dict[str, list[Variant]], after: str, name: str, variants: list[Variant]) -> dict:
    """`sections` with `name` placed right after the section `after` (the page and metrics.json keep this order)."""
    placed = {}
    for key, value in sections.items():
        placed[key] = value
        if key == after:
            placed[name] = variants
    return placed if name in placed else {**placed, name: variants}


def verdict_counts(claims_file: Path) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """What the terminal says after the demo: how many claims hold, fail and cannot be judged, and each claim that
    does not hold as (section, statement), from the report's claims.json."""
    claims = json.loads(Path(claims_file).read_text())["claims"]
    counts = {HOLDS: 0, FAILS: 0, UNJUDGED: 0}
    failed = []
    for section, found in claims.items():
        for claim in found.values():
            counts[claim["verdict"]] += 1
            if claim["verdict"] == FAILS:
                failed.append((section, claim["statement"]))
    return counts, failed


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
    findings.claims += drift_claims(points)
    subject = by_id(cfg.drift_subject, sections[cfg.drift_subject]) if subject_drift_lrs(cfg) else {}
    subject_runs = {lr: results[plan.subject_drift(lr)] for lr in subject_drift_lrs(cfg)}
    subject_points = subject_drift_points(model_config(cfg, models[0]), subject, subject_runs, out / "work")
    for point in subject_points[1:]:  # the first is the subject's own section, judged there
        variants = [subject[BASE.id], *subject_runs[point.dreambooth_lr]]
        sections = with_section(sections, cfg.drift_subject, point.scope, variants)
        findings.differences[point.scope] = point.gap
        if point.recorded is not None:
            findings.differences[recorded_scope(point.scope)] = point.recorded_gap
        t2i = next(v for v in variants if v.id == T2I.id)  # its images at this drift: the look to keep
        findings.claims += subject_drift_claims(point, t2i, subject[BASE.id], cfg.seed)
    points += subject_points
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
        drift=drift_html(points, list(DEMO_METRICS)) if points else "",
    )
    return write_report(out, page)
