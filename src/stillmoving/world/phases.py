"""The demo's phases (`demo.py` plans them as tasks, world/tasks.py runs them): a customization's images and
customized T2I, made by the commands a user runs; its evaluation and training prompts; videos generated and scored
by the world's oracle; stage 2 with the demo's sizes; and the variants each phase returns (the untrained
references, the trained variants, the drift study's pairs, the motion-scale sweep, the conditional section).
Every function takes the demo's `DemoConfig` and `Generation` (demo.py)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from stillmoving.conditioning import ControlNetSpec, load_controlnet
from stillmoving.data.video_io import to_uint8_frames
from stillmoving.injection import t2i_config
from stillmoving.loading import assemble_interpolated, assemble_pipeline, load_customized, load_t2v, t2i_pipeline
from stillmoving.run_folder import SPATIAL_BLOCKS, load_record
from stillmoving.training.config import CustomizeConfig, DreamBoothConfig, StyleLoRAConfig
from stillmoving.training.dreambooth import train_dreambooth
from stillmoving.training.spatial_stage import train_spatial_adapters
from stillmoving.training.style_lora import LORA_FILE, train_style_lora
from stillmoving.world.claims import (
    BASE,
    DELTA,
    INTERPOLATION,
    NAIVE,
    NO_MOTION,
    NO_PRIOR,
    OURS,
    RECORDED,
    T2I,
    WITH_PRIOR,
)
from stillmoving.world.conditional import conditional_variants, references
from stillmoving.world.drift import DriftPoint, drift_point, relative_drift, subject_drift_point
from stillmoving.world.folders import write_image_folder
from stillmoving.world.legend import DEMO_METRICS
from stillmoving.world.metrics import video_metrics
from stillmoving.world.report import Variant
from stillmoving.world.synthetic import SceneSpec, caption, make_video_dataset
from stillmoving.world.variants import VariantKind

if TYPE_CHECKING:
    from stillmoving.world.demo import DemoConfig, Generation
from stillmoving.world.weights import shipped_controlnet, shipped_model

TARGETS = {"star": {"subject": "star"}, "crayon": {"style": "crayon"}, "neon": {"style": "neon"}}  # held-out looks
T2I_DESCRIPTION = "the customized T2I alone: the fidelity to keep"  # the report's line under each variant
NAIVE_DESCRIPTION = "customized T2I weights plugged into the T2V"


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
            frames = pipe(prompt, num_frames=gen.num_frames, motion_scale=motion_scale, **gen.arguments(seed)).frames[0]
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
            image = t2i(prompt, **gen.arguments(seed)).images[0]
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
        spatial_blocks=cfg.spatial_blocks,
        snr_gamma=cfg.snr_gamma or None,
        reencode_images=cfg.reencode_images,
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
        seed=cfg.seed if cfg.spatial_seed is None else cfg.spatial_seed,
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


def customization_images(cfg: DemoConfig, target: str, folder: Path) -> Path:
    """The rendered images a customization is made from (the same for the same seed, wherever they are written)."""
    return render_customization_images(folder, target, cfg.customization_images, cfg.seed + 1, cfg.resolution)


def customized_t2i(cfg: DemoConfig, target: str, work: Path) -> dict:
    """The user's side, once per customization whatever the video model: images, then M1 from M."""
    images = customization_images(cfg, target, work / "images")
    return make_customized_t2i(replace(cfg, model=t2i_base(cfg)), target, images, work / "t2i")


def interpolation_variant(cfg: DemoConfig, m1: dict, prompts: list[str], gen: Generation) -> Variant:
    pipe = assemble_interpolated(cfg.model, cfg.interpolation_weight, customized=m1["customized"], loras=m1["loras"])
    return generate(pipe, prompts, gen, cfg.seeds)


def reference_variants(cfg: DemoConfig, target: str, gen: Generation, base: str, m1: dict) -> list[Variant]:
    """The untrained variants of one customization on one video model (`cfg.model`; M is `base`): base T2V, the
    customized T2I alone, naive injection, weight interpolation, and where V's spatial layers are not M (the jointly
    trained model), delta injection, V + (M1 - M) (on the first model it is naive injection to the bit)."""
    m1 = on_video_model(m1, cfg.model, base)
    prompts, _ = section_prompts(cfg, target)
    plain = assemble_pipeline(cfg.model)
    naive = assemble_pipeline(cfg.model, customized=m1["customized"], loras=m1["loras"])
    variants = [
        score(generate(plain, prompts, gen, cfg.seeds), target, BASE, "the video model, uncustomized"),
        score(t2i_reference(cfg, m1, prompts, gen), target, T2I, T2I_DESCRIPTION),
        score(generate(naive, prompts, gen, cfg.seeds), target, NAIVE, NAIVE_DESCRIPTION),
        score(
            interpolation_variant(cfg, m1, prompts, gen),
            target,
            INTERPOLATION,
            f"the T2V's spatial weights moved {cfg.interpolation_weight:g} of the way to the customized T2I's",
        ),
    ]
    if cfg.model != base:
        delta = assemble_pipeline(cfg.model, customized=m1["customized"], loras=m1["loras"], base_t2i=base)
        description = "the T2V's own spatial weights plus the customization, V + (M1 - M) (generate --base-t2i)"
        variants.append(score(generate(delta, prompts, gen, cfg.seeds), target, DELTA, description))
    return variants


def trained_runs(cfg: DemoConfig) -> list[tuple[VariantKind, str, dict]]:
    """The variants with spatial adapters, and the `customize` options that make each."""
    return [
        (NO_MOTION, "frozen-video training of spatial adapters without the motion adapter", {"motion_adapter": ""}),
        prior_ablation(cfg),
        (OURS, ours_description(cfg), {}),
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
    pipe = assemble_pipeline(
        cfg.model,
        customized=m1["customized"],
        loras=m1["loras"],
        spatial_adapters=adapters,
        spatial_blocks=cfg.generate_spatial_blocks,
    )
    return score(generate(pipe, prompts, gen, cfg.seeds), target, kind, description)


def ours_description(cfg: DemoConfig) -> str:
    """Still-Moving's line in the report: how its adapters trained."""
    return "spatial adapters on frozen videos (motion adapter on)" + (" + prior videos" * has_prior(cfg))


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
    blocks = cfg.generate_spatial_blocks
    ours = assemble_pipeline(cfg.model, loras=loras, spatial_adapters=adapters, spatial_blocks=blocks)
    ours = generate(ours, prompts, gen, cfg.seeds)
    return score(naive, target, NAIVE, ""), score(ours, target, OURS, "")


def subject_drift_variants(cfg: DemoConfig, target: str, lr: float, work: Path, gen: Generation) -> list[Variant]:
    """The drift study's subject made again by `t2i dreambooth` at learning rate `lr` from the same rendered images
    (rendered again into its own folder, so that it waits for no other task), on the first video model: the
    customized T2I's images, naive injection, Still-Moving, and Still-Moving as `generate --customization` applies
    it when `customize`'s end-of-run check (run here as a user's customize runs it) records blocks: the adapters of
    those blocks only (`RECORDED`; absent where the check records none, or where --generate-spatial-blocks fixes
    every variant's)."""
    folder = subject_drift_folder(work, lr)
    m1_cfg = replace(cfg, model=t2i_base(cfg), dreambooth_lr=lr)
    m1 = make_customized_t2i(m1_cfg, target, customization_images(cfg, target, folder / "images"), folder / "t2i")
    prompts, train_prompts = section_prompts(cfg, target)
    naive = assemble_pipeline(cfg.model, customized=m1["customized"], loras=m1["loras"])
    variants = [
        score(t2i_reference(cfg, m1, prompts, gen), target, T2I, T2I_DESCRIPTION),
        score(generate(naive, prompts, gen, cfg.seeds), target, NAIVE, NAIVE_DESCRIPTION),
    ]
    checked = CustomizeConfig.num_validation_videos  # customize's own check, as a user's run makes it
    adapters = spatial_run(cfg, m1, train_prompts, folder / OURS.id, num_validation_videos=checked)
    recorded = load_record(Path(adapters).parent).get(SPATIAL_BLOCKS)
    runs = [(OURS, cfg.generate_spatial_blocks, ours_description(cfg))]
    if recorded and not cfg.generate_spatial_blocks:
        why = f"the same adapters on the UNet's {recorded} blocks only, as customize's check recorded them"
        runs.append((RECORDED, recorded, why))
    for kind, blocks, description in runs:
        pipe = assemble_pipeline(
            cfg.model, customized=m1["customized"], loras=m1["loras"], spatial_adapters=adapters, spatial_blocks=blocks
        )
        variants.append(score(generate(pipe, prompts, gen, cfg.seeds), target, kind, description))
    return variants


def subject_drift_folder(work: Path, lr: float) -> Path:
    """Where the subject's DreamBooth at `lr` and its adapters go (`work`: the subject's work folder)."""
    return work / f"drift_lr_{lr:g}"


def subject_drift_lrs(cfg: DemoConfig) -> list[float]:
    """The drift study's DreamBooth learning rates besides the subject's own section's, if it runs: on a subject,
    on the first video model."""
    target = cfg.drift_subject
    runs = target in cfg.targets and "subject" in TARGETS[target]
    return [lr for lr in cfg.subject_drift_lrs if lr != cfg.dreambooth_lr] if runs else []


def subject_drift_points(
    cfg: DemoConfig, main: dict[str, Variant], runs: dict[float, list[Variant]], work: Path
) -> list[DriftPoint]:
    """The subject at its own section's learning rate (`main`, by variant id) and at each of `subject_drift_lrs`
    (`runs`: `subject_drift_variants`' lists), on the first video model (`cfg.model`)."""
    if not runs:
        return []
    target, points = cfg.drift_subject, []
    for lr in [cfg.dreambooth_lr, *runs]:
        own = lr == cfg.dreambooth_lr
        variants = main if own else {v.id: v for v in runs[lr]}
        t2i = work / target / "t2i" if own else subject_drift_folder(work / target, lr) / "t2i"
        drift = relative_drift(cfg.model, str(t2i), [])
        points.append(subject_drift_point(target, lr, drift, variants, list(DEMO_METRICS), cfg.seed))
    return points


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
        points.append(drift_point(weight, drift, naive, ours, list(DEMO_METRICS), cfg.seed, cfg.drift_target))
    return points


def motion_sweep(cfg: DemoConfig, gen: Generation) -> tuple[dict[str, list[float]], list[Variant]]:
    """Displacement of base-world videos against alpha, the motion adapter on the base T2V (`cfg.model` with
    `cfg.motion_adapter`); and the videos."""
    pipe = assemble_pipeline(cfg.model, motion_adapter=cfg.motion_adapter)
    prompts = [s.caption for s in make_video_dataset(cfg.sweep_prompts, cfg.seed + 3, cfg.num_frames, cfg.resolution)]
    sweep, variants = {"alpha": [], "mean": [], "std": []}, []
    for alpha in cfg.alphas:
        variant = score(
            generate(pipe, prompts, gen, cfg.sweep_seeds, motion_scale=alpha),
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
    return conditional_variants(
        cfg.model, m1, str(adapters), controlnet, refs, gen, target, cfg.generate_spatial_blocks
    )
