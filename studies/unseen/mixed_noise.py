"""Both variants of one run with initial noise partly common to the frames (PYoCo's mixed prior), scored as run.py.

Each video's initial latent is sqrt(rho) * one draw shared by its frames + sqrt(1 - rho) * a draw per frame, passed
to the pipeline as `latents` (the same seeds as run.py's videos); rho 0 is run.py's own noise. A study of where the
heavy drift's flicker is decided (docs/method.md, "The unseen subject's flicker, read without bins"), not an option.

    .venv/bin/python studies/unseen/mixed_noise.py runs/unseen/heavy/animatediff/default 0.3

Prints one JSON line: the means and paired 95% intervals of Still-Moving minus naive injection (15 steps, guidance 4).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from run import PROMPTS  # noqa: E402
from score import reference, summarize, video_scores  # noqa: E402

from stillmoving.inference import sampling_arguments  # noqa: E402
from stillmoving.loading import assemble_pipeline  # noqa: E402
from stillmoving.run_folder import merge_customization, read_customization  # noqa: E402

SIZE, FRAMES, STEPS, GUIDANCE = 32, 8, 15, 4.0  # the world's sampling, as run.py's eval_g4
SEEDS_PER_PROMPT = 4  # run.py's default (SEEDS)


def mixed_latents(pipe, rho: float, seed: int) -> torch.Tensor:
    """(1, C, F, h, w): sqrt(rho) * a draw shared by the frames + sqrt(1 - rho) * a draw per frame, from `seed`."""
    side = SIZE // pipe.vae_scale_factor
    shape = (1, pipe.unet.config.in_channels, FRAMES, side, side)
    generator = torch.Generator().manual_seed(seed)
    own = torch.randn(shape, generator=generator)
    shared = torch.randn((*shape[:2], 1, *shape[3:]), generator=generator)
    return math.sqrt(rho) * shared + math.sqrt(1 - rho) * own


def main(run: str, rho: str) -> None:
    torch.set_num_threads(2)
    files = merge_customization({}, read_customization(run))
    files["sampler"] = None  # the model's own scheduler: run.py's customizations record only steps and guidance
    ref = reference(Path(run).parents[2] / "images")
    scores = {}
    for variant, scale in (("naive", 0.0), ("still_moving", 1.0)):
        pipe = assemble_pipeline(**files, spatial_scale=scale)
        pipe.set_progress_bar_config(disable=True)
        scores[variant] = []
        for i, prompt in enumerate(PROMPTS):
            for seed in range(i * SEEDS_PER_PROMPT, (i + 1) * SEEDS_PER_PROMPT):
                latents = mixed_latents(pipe, float(rho), seed)
                args = sampling_arguments(SIZE, SIZE, STEPS, GUIDANCE, seed)
                frames = pipe(prompt=prompt, num_frames=FRAMES, latents=latents, **args).frames[0]
                scores[variant].append(video_scores((np.asarray(frames) * 255).round().astype(np.uint8), ref))
    print(json.dumps({"run": run, "rho": float(rho), **summarize(scores["naive"], scores["still_moving"])}))


if __name__ == "__main__":
    main(*sys.argv[1:3])
