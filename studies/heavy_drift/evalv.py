"""Evaluate a variant: python evalv.py NAME M1DIR [ADAPTERS] [--alpha A] -> results/NAME.json (per-video metrics).
A style: M1DIR none, --target crayon --lora PATH:WEIGHT."""

import os

os.makedirs(os.environ.get("STUDY_DIR", "runs/heavy_drift"), exist_ok=True)
os.chdir(os.environ.get("STUDY_DIR", "runs/heavy_drift"))  # every path below is relative to the study folder
import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import variant_args

torch.set_num_threads(1)
p = variant_args.parser(seeds=4)
p.add_argument("--free-init", type=int, default=0, help="FreeInit iterations (diffusers' enable_free_init); 0: off")
p.add_argument("--shared-noise", type=float, default=0.0, help="share of the initial noise common to all frames")
p.add_argument(
    "--v-steps",
    default="",
    help="A-B: denoising steps A to B-1 (of 15) with V's own spatial layers and text encoder (the base T2V), M1 on the"
    " others; K alone: 0-K",
)
a = p.parse_args()
t = time.time()
pipe = variant_args.pipeline(a)  # adapter files of either kind attach: the spatial layers' or the motion modules' input
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
    plain = {"m1": "none", "adapters": None, "lora": [], "spatial_blocks": None}  # the base T2V
    base = variant_args.pipeline(argparse.Namespace(**{**vars(a), **plain}))
    base_on(pipe, base, range(int(first or 0), int(last)), 15)
v = variant_args.videos(pipe, a)
Path("results").mkdir(exist_ok=True)
Path(f"results/{a.name}.json").write_text(json.dumps({"captions": v.captions, "metrics": v.metrics}))
np.save(f"results/{a.name}.npy", np.stack(v.videos))
keys = ["speed", "is_static", "fidelity", "consistency", "artifact"]
print(a.name, " ".join(f"{k}={np.nanmean([m[k] for m in v.metrics]):.3f}" for k in keys), f"({time.time() - t:.0f}s)")
