"""Evaluate a variant: python evalv.py NAME M1DIR [ADAPTERS] [--alpha A] -> results/NAME.json (per-video metrics).
A style: M1DIR none, --target crayon --lora PATH:WEIGHT."""

import os

os.makedirs(os.environ.get("STUDY_DIR", "runs/heavy_drift"), exist_ok=True)
os.chdir(os.environ.get("STUDY_DIR", "runs/heavy_drift"))  # every path below is relative to the study folder
import argparse
import json
import time
from pathlib import Path

import motion_branch
import numpy as np
import torch

from stillmoving.loading import assemble_pipeline
from stillmoving.training.config import parse_lora
from stillmoving.world.demo import Generation
from stillmoving.world.phases import evaluation_prompts, generate, score
from stillmoving.world.variants import VariantKind
from stillmoving.world.weights import shipped_model, shipped_motion_adapter

torch.set_num_threads(1)
p = argparse.ArgumentParser()
p.add_argument("name")
p.add_argument("m1")
p.add_argument("adapters", nargs="?")
p.add_argument("--alpha", type=float, default=0.0)
p.add_argument("--prompts", type=int, default=8)
p.add_argument("--seeds", type=int, default=4)
p.add_argument("--guidance", type=float, default=4.0)
p.add_argument("--model", default=str(shipped_model()))
p.add_argument("--motion-adapter", default=str(shipped_motion_adapter()))
p.add_argument("--free-init", type=int, default=0, help="FreeInit iterations (diffusers' enable_free_init); 0: off")
p.add_argument("--shared-noise", type=float, default=0.0, help="share of the initial noise common to all frames")
p.add_argument("--spatial-blocks", default=None, help="generate --spatial-blocks: the adapters of these blocks only")
p.add_argument("--target", default="star", help="the world's customization target whose prompts and oracle score")
p.add_argument("--lora", action="append", default=[], help="a style LoRA fused into M, PATH[:WEIGHT] (M1DIR: none)")
p.add_argument(
    "--v-steps",
    default="",
    help="A-B: denoising steps A to B-1 (of 15) with V's own spatial layers and text encoder (the base T2V), M1 on the"
    " others; K alone: 0-K",
)
a = p.parse_args()
t = time.time()
motion_branch.use("load")  # adapter files of either kind attach: the spatial layers' or the motion modules' input
pipe = assemble_pipeline(
    a.model,
    customized=None if a.m1 == "none" else a.m1,
    loras=[parse_lora(x) for x in a.lora],
    spatial_adapters=a.adapters,
    motion_adapter=a.motion_adapter,
    spatial_blocks=a.spatial_blocks,
)
if a.free_init:
    pipe.enable_free_init(num_iters=a.free_init)
if a.shared_noise:  # x_T = sqrt(rho) * one noise for every frame + sqrt(1 - rho) * per-frame noise (unit variance)
    _prepare = pipe.prepare_latents

    def prepare_latents(batch, channels, frames, height, width, dtype, device, generator, latents=None):
        latents = _prepare(batch, channels, frames, height, width, dtype, device, generator, latents)
        g = torch.Generator().manual_seed(generator.initial_seed() + 7919)
        common = torch.randn(latents[:, :, :1].shape, generator=g).to(latents) * pipe.scheduler.init_noise_sigma
        return a.shared_noise**0.5 * common + (1 - a.shared_noise) ** 0.5 * latents

    pipe.prepare_latents = prepare_latents
if a.v_steps:
    from v_steps import base_on

    first, _, last = a.v_steps.rpartition("-")
    base_on(pipe, assemble_pipeline(a.model, motion_adapter=a.motion_adapter), range(int(first or 0), int(last)), 15)
prompts = evaluation_prompts(a.target, a.prompts, 2, 32, 8)
gen = Generation(8, 32, 15, a.guidance)
v = score(generate(pipe, prompts, gen, a.seeds, motion_scale=a.alpha), a.target, VariantKind(a.name, a.name), "")
Path("results").mkdir(exist_ok=True)
Path(f"results/{a.name}.json").write_text(json.dumps({"captions": v.captions, "metrics": v.metrics}))
np.save(f"results/{a.name}.npy", np.stack(v.videos))
keys = ["speed", "is_static", "fidelity", "consistency", "artifact"]
print(a.name, " ".join(f"{k}={np.nanmean([m[k] for m in v.metrics]):.3f}" for k in keys), f"({time.time() - t:.0f}s)")
