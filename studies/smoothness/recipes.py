"""Spatial-adapter recipes on a demo's customized T2I, each scored against naive injection on the demo's videos.

Every recipe trains `customize` with the demo's sizes plus its changes (DemoConfig fields, e.g. spatial_lr, or
CustomizeConfig fields, e.g. prior_loss_weight), regenerates the demo's videos of the section (4 prompts x 3 seeds;
FULL=1: 8 x 4) and prints one JSON line: the means and, per metric, Still-Moving minus naive injection with its
paired 95% bootstrap interval (SEED=N: a `demo --seed N`'s section). {"empty": K} adds K empty prompts to the
image prompts (M1's unconditional samples, trained with the empty prompt); {"others": K} adds K captions of the base
world (no held-out look, no motion words; `others`): M1's own images of ordinary prompts, trained with them (session
30); {"shared_noise": true} noises every
frame of a frozen video with the same noise (a study switch, not a customize option); {"perturb": true} trains on
each sampled latent moved at random as far as re-encoding would move it, {"perturb": "half"} on every second image
re-encoded (customize's --reencode-images 0.5), {"perturb": "compensated"} on the images re-encoded with one round
trip's drift added back (`reencode.compensated`; with "reencode_images", a share of them) (`perturbed`);
{"motion_labels": true} samples M1's images with the image prompts as always and labels each frozen video with its
scene's caption with the motion words ("... moving left quickly ..."), as the videos are generated (`motion_labels`);
{"delta": true} injects M1 as V + (M1 - M), keeping V's own spatial weights and adding the customization to them,
in training and in the videos (`delta_injection`; on the jointly trained model, whose spatial layers are not M;
session 31); {"delta_prior": K} (with a prior weight) replaces the prior videos sampled from V by K videos of
delta injection, V + (M1 - M), of the customization's captions with their motion words (scenes and seeds not the
evaluation's), trained with those captions: delta injection as the motion teacher of adapters on naive injection
(`delta_prior`; session 32); {"spatial_seed": N} (the demo's --spatial-seed) trains with seed N (M1's images, the
noise and timesteps of training) and leaves the demo's seed, prompts and videos as they are. Naive injection's
videos are cached in OUT/naive.json.

python studies/smoothness/recipes.py DEMO_DIR TARGET VIDEO_MODEL LORA_WEIGHT OUT NAME='{json changes}' ...
  e.g. python studies/smoothness/recipes.py runs/demo14 star animatediff 1 runs/recipes_star default= \
         lr3e-4='{"spatial_lr": 3e-4}' prior='{"prior_loss_weight": 1, "prior_loss": "motion"}'
VIDEO_MODEL: animatediff or joint; LORA_WEIGHT: a style LoRA's weight (ignored for a DreamBooth subject).
"""

import contextlib
import json
import os
import sys
import time
import types
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import torch
from reencode import compensated  # noqa: E402  (this folder, on the path when run as a script)

from stillmoving import losses, pipeline
from stillmoving.data.sources import sample_videos
from stillmoving.injection import delta_weights, spatial_state_dict
from stillmoving.loading import assemble_pipeline
from stillmoving.training import spatial_stage
from stillmoving.world.demo import DemoConfig, Generation
from stillmoving.world.phases import (
    customized_args,
    evaluation_prompts,
    evaluation_scenes,
    generate,
    on_video_model,
    score,
    section_prompts,
    spatial_run,
)
from stillmoving.world.stats import paired_bootstrap
from stillmoving.world.synthetic import caption, sample_scene
from stillmoving.world.variants import VariantKind
from stillmoving.world.weights import shipped_model, shipped_motion_adapter

KEYS = ("speed", "is_static", "fidelity", "consistency", "artifact", "smoothness")
COMPARED = ("fidelity", "consistency", "artifact", "speed", "smoothness")
DEMO_FIELDS = {f.name for f in fields(DemoConfig)}


def section(demo: Path, target: str, video_model: str, weight: float) -> tuple[DemoConfig, dict]:
    """The demo's settings on `video_model` (FULL=1: today's demo prompts and seeds, 8 x 4) and M1's load arguments."""
    # 12 pairs, the demo's size through session 16, which these studies' figures use; FULL=1: today's demo, 32
    full = dict(eval_prompts=8, seeds=4) if os.environ.get("FULL") == "1" else dict(eval_prompts=4, seeds=3)
    full["seed"] = int(os.environ.get("SEED", 0))  # the demo's --seed (its prompts follow from it)
    model = str(shipped_model(video_model))
    cfg = replace(DemoConfig(), model=model, motion_adapter=str(shipped_motion_adapter(video_model)), **full)
    m1 = customized_args(target, demo / "work" / target / "t2i")
    if m1["loras"]:
        m1["loras"] = [(m1["loras"][0][0], weight)]
    return cfg, on_video_model(m1, model, str(shipped_model()))


def figures(pipe, cfg: DemoConfig, target: str, motion_scale: float = 0.0) -> dict[str, list[float]]:
    """The section's videos from `pipe` (prompts x seeds of `cfg`), scored: each metric's per-video values."""
    prompts, _ = section_prompts(cfg, target)
    gen = Generation(cfg.num_frames, cfg.resolution, cfg.sample_steps, cfg.guidance_scale)
    variant = score(generate(pipe, prompts, gen, cfg.seeds, motion_scale), target, VariantKind("v", "v"), "")
    return {k: [float(m[k]) for m in variant.metrics] for k in KEYS}


def videos(
    cfg: DemoConfig,
    target: str,
    m1: dict,
    adapters: str | None,
    motion_adapter: str | None = None,
    motion_scale: float = 0.0,
) -> dict[str, list[float]]:
    """`figures` of V with M1 injected, `adapters` attached and, given, the motion adapter at `motion_scale`."""
    pipe = assemble_pipeline(
        cfg.model,
        customized=m1["customized"],
        loras=m1["loras"],
        motion_adapter=motion_adapter,
        spatial_adapters=adapters,
    )
    return figures(pipe, cfg, target, motion_scale)


@contextlib.contextmanager
def shared_noise(on: bool):
    """While on, the training losses draw one noise per video and repeat it over the frames (axis 1 of an item's
    (c, f, h, w) draw): a frozen video's frames then stay equal under noise, so nothing is gained by pooling them."""
    if not on:
        yield
        return

    def randn(*shape, generator=None, **kwargs):
        size = tuple(shape[0]) if len(shape) == 1 and not isinstance(shape[0], int) else shape
        if len(size) != 4:
            return torch.randn(*shape, generator=generator, **kwargs)
        one = torch.randn((size[0], 1, *size[2:]), generator=generator, **kwargs)
        return one.expand(size).contiguous()

    real = losses.torch
    losses.torch = types.SimpleNamespace(**{k: getattr(torch, k) for k in dir(torch) if not k.startswith("__")})
    losses.torch.randn = randn
    try:
        yield
    finally:
        losses.torch = real


@contextlib.contextmanager
def motion_labels(on: bool, scenes: list):
    """While on, `customize` labels each frozen video with its scene's full caption (motion words included)
    instead of the motion-free prompt M1's image was sampled with: with the motion adapter at alpha 1 the video
    model makes a still video whatever the caption, and at inference the prompts name a motion (session 21)."""
    if not on:
        yield
        return
    real = spatial_stage.customized_images
    full = {caption(spec, motion=False): caption(spec) for spec in scenes}

    def labelled(*args, **kwargs):
        latents, prompts = real(*args, **kwargs)
        return latents, [full[p] for p in prompts]

    spatial_stage.customized_images = labelled
    try:
        yield
    finally:
        spatial_stage.customized_images = real


@contextlib.contextmanager
def perturbed(how: str | None):
    """While `how` is "random", `customize --reencode-images` trains on each sampled latent z moved by a random
    direction of the length re-encoding would move it, |E(D(z)) - z|: a control for what re-encoding does (session
    18); "compensated": re-encoding that adds back one round trip's drift (`reencode.compensated`, session 19)."""
    if not how:
        yield
        return
    real = spatial_stage.reencoded
    generator = torch.Generator().manual_seed(0)

    def moved(vae, latents, *args):
        out = []
        for z, again in zip(latents, real(vae, latents, *args)):
            direction = torch.randn(z.shape, generator=generator)
            out.append(z + direction * (again - z).norm() / direction.norm())
        return out

    spatial_stage.reencoded = compensated if how == "compensated" else moved
    try:
        yield
    finally:
        spatial_stage.reencoded = real


@contextlib.contextmanager
def delta_injection(on: bool, model: str):
    """While on, `inject_customized` puts M1 into V as V + (M1 - M) ("delta injection", `injection.delta_weights`,
    as `generate --base-t2i`), in training too, where `customize` has no such option. M is the first world model's
    T2I part, from which the world's M1s were made; on that model the two are the same."""
    if not on:
        yield
        return
    v_spatial = spatial_state_dict(assemble_pipeline(model).unet)
    m_spatial = spatial_state_dict(assemble_pipeline(str(shipped_model())).unet)
    real = pipeline.inject_t2i_weights

    def inject(unet, t2i):
        state = t2i.state_dict() if isinstance(t2i, torch.nn.Module) else t2i
        real(unet, delta_weights(v_spatial, m_spatial, state))

    pipeline.inject_t2i_weights = inject
    try:
        yield
    finally:
        pipeline.inject_t2i_weights = real


@contextlib.contextmanager
def delta_prior(count: int, cfg: DemoConfig, target: str, m1: dict):
    """While `count` > 0, `customize`'s prior videos are `count` videos of delta injection (V + (M1 - M), as `generate
    --base-t2i`) of the customization's captions with motion words, trained with those captions, instead of V's
    own samples of ordinary captions: videos with the base T2V's motion and part of M1's look (session 31)."""
    if not count:
        yield
        return
    real = spatial_stage.prior_videos

    def delta_videos(run, pipe):
        if run.prior_loss_weight == 0:
            return [], []
        teacher = assemble_pipeline(
            run.model, customized=m1["customized"], loras=m1["loras"], base_t2i=str(shipped_model())
        )
        prompts = evaluation_prompts(target, count, cfg.seed + 40, cfg.resolution, cfg.num_frames)
        settings = dict(steps=run.sample_steps, guidance_scale=run.guidance_scale, seed=run.seed + 10_000)
        return sample_videos(teacher, prompts, run.num_frames, run.height, run.width, **settings), prompts

    spatial_stage.prior_videos = delta_videos
    try:
        yield
    finally:
        spatial_stage.prior_videos = real


def others(count: int, seed: int, num_frames: int) -> list[str]:
    """`count` captions of the base world's scenes without motion words, drawn with `seed`: what the customized T2I
    draws for prompts that do not name its customization."""
    rng = np.random.default_rng(seed)
    return [caption(sample_scene(rng, num_frames), motion=False) for _ in range(count)]


def means(values: dict[str, list[float]]) -> dict[str, float]:
    return {k: round(float(np.nanmean(v)), 4) for k, v in values.items()}


def compared(ours: dict, naive: dict) -> dict:
    row = {"static": float(np.mean(ours["is_static"]))}
    for key in COMPARED:
        diff = paired_bootstrap(naive[key], ours[key])  # ours - naive
        row[key] = round(float(np.nanmean(ours[key])), 4)
        row[f"minus_naive_{key}"] = [round(diff.estimate, 4), round(diff.low, 4), round(diff.high, 4)]
    return row


def main(demo: Path, target: str, video_model: str, weight: float, out: Path, recipes: list[str]) -> None:
    torch.set_num_threads(int(os.environ.get("THREADS", 2)))
    cfg, m1 = section(demo, target, video_model, weight)
    _, image_prompts = section_prompts(cfg, target)
    out.mkdir(parents=True, exist_ok=True)
    cache = out / "naive.json"
    if not cache.exists():
        cache.write_text(json.dumps(videos(cfg, target, m1, None)))
    naive = json.loads(cache.read_text())
    print("naive", json.dumps(means(naive)), flush=True)
    for recipe in recipes:
        name, _, text = recipe.partition("=")
        changes = json.loads(text) if text else {}
        prompts = list(image_prompts) + [""] * changes.pop("empty", 0)
        prompts += others(changes.pop("others", 0), cfg.seed + 30, cfg.num_frames)
        perturb = changes.pop("perturb", None)
        perturb = "random" if perturb is True else perturb  # {"perturb": true} is the random move
        if perturb == "half":  # session 18's name for --reencode-images 0.5: images 0, 2, 4, ... re-encoded
            perturb, changes["reencode_images"] = None, 0.5
        if perturb:
            changes.setdefault("reencode_images", 1.0)
        run = replace(cfg, **{k: v for k, v in changes.items() if k in DEMO_FIELDS})
        run = replace(run, num_images=len(prompts) * (run.num_images // len(image_prompts)))
        started = time.perf_counter()
        shared = changes.pop("shared_noise", False)
        labels = changes.pop("motion_labels", False)
        delta = changes.pop("delta", False)
        teacher = changes.pop("delta_prior", 0)
        customize = {k: v for k, v in changes.items() if k not in DEMO_FIELDS}
        scenes = evaluation_scenes(target, run.num_images, run.seed + 4, run.resolution, run.num_frames)
        with delta_injection(delta, run.model), delta_prior(teacher, run, target, m1):
            with shared_noise(shared), perturbed(perturb), motion_labels(labels, scenes):
                adapters = spatial_run(run, m1, prompts, out / name, **customize)
            ours = videos(run, target, m1, adapters)
        (out / name / "metrics.json").write_text(json.dumps(ours))
        row = {"recipe": name, "seconds": round(time.perf_counter() - started), **compared(ours, naive)}
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    a = sys.argv
    main(Path(a[1]), a[2], a[3], float(a[4]), Path(a[5]), a[6:])
