"""How far apart the video model's conditional and unconditional predictions are (the direction classifier-free
guidance scales), with and without trained adapters, and how well each branch predicts the noise: noisy frozen
videos of M1's own guided samples (the section's prompts, 3 each) at t = 200, 500, 800, one fixed noise, the motion
adapter at alpha 0 and 1. One JSON line per (alpha, adapters): RMS of eps(cond) - eps(uncond) per t, and each
branch's mean squared error.

python studies/smoothness/guidance_gap.py DEMO_DIR TARGET ADAPTERS...   (the AnimateDiff-like model)
"""

import json
import os
import sys
from pathlib import Path

import torch
from recipes import section

from stillmoving.adapters.motion import MotionLoRA
from stillmoving.adapters.spatial import SpatialAdapters
from stillmoving.data.frozen import encode_prompts
from stillmoving.data.sources import sample_images
from stillmoving.loading import load_customized, load_t2v, t2i_pipeline
from stillmoving.training.setup import training_scheduler
from stillmoving.world.phases import section_prompts

TIMESTEPS = (200, 500, 800)


@torch.no_grad()
def main(demo: Path, target: str, adapters: list[str]) -> None:
    torch.set_num_threads(int(os.environ.get("THREADS", 2)))
    cfg, m1_args = section(demo, target, "animatediff", 1.0)
    prompts = [p for p in section_prompts(cfg, target)[0] for _ in range(3)]
    n, frames = len(prompts), cfg.num_frames
    pipe = load_t2v(cfg.model)
    m1 = load_customized(pipe, m1_args["customized"], m1_args["loras"])
    t2i = t2i_pipeline(pipe, m1.unet, m1.text_encoder)
    t2i.set_progress_bar_config(disable=True)
    images = torch.stack(sample_images(t2i, prompts, cfg.resolution, cfg.resolution, 7000, cfg.sample_steps, 4.0))
    pipe.inject_customized(m1.unet, m1.text_encoder)
    motion = MotionLoRA.load(pipe.unet, cfg.motion_adapter)
    cond = encode_prompts(pipe.tokenizer, pipe.text_encoder, prompts).repeat_interleave(frames, 0)
    uncond = encode_prompts(pipe.tokenizer, pipe.text_encoder, [""] * n).repeat_interleave(frames, 0)
    frozen = images[:, :, None].expand(-1, -1, frames, -1, -1)
    scheduler, generator = training_scheduler(pipe), torch.Generator().manual_seed(0)
    noised = []
    for t in TIMESTEPS:
        noise = torch.randn(frozen.shape, generator=generator)
        noised.append((t, scheduler.add_noise(frozen, noise, torch.tensor([t] * n)), noise))
    for alpha in (0.0, 1.0):
        motion.set_scale(alpha)
        for path in [None, *adapters]:
            spatial = SpatialAdapters.load(path).attach(pipe.unet) if path else None
            row = {"alpha": alpha, "adapters": path or "none (naive injection)"}
            for t, noisy, noise in noised:
                step = torch.tensor([t] * n)
                c = pipe.unet(noisy, step, encoder_hidden_states=cond).sample
                u = pipe.unet(noisy, step, encoder_hidden_states=uncond).sample
                row[f"gap_t{t}"] = round(float((c - u).pow(2).mean().sqrt()), 5)
                row[f"error_cond_t{t}"] = round(float((c - noise).pow(2).mean()), 5)
                row[f"error_uncond_t{t}"] = round(float((u - noise).pow(2).mean()), 5)
            if spatial is not None:
                spatial.detach()
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], sys.argv[3:])
