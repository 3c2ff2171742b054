"""A world style's `customize` run, generated with every block's adapters and with the down and mid blocks', against
naive injection, scored by the world's oracle (session 27; the base T2V added in session 28).

16 pairs: 4 of the demo's evaluation prompts for the style x seeds 0-3, at the world's sampling (15 steps, guidance
4); prints per measure the base T2V's (no LoRA) and naive injection's means and the paired 95% intervals of naive
injection minus the base T2V (where naive injection breaks the style), every block minus naive injection, the down and
mid blocks minus naive injection, and the down and mid blocks minus every block.

    .venv/bin/python studies/unseen/blocks_oracle.py MODEL LORA WEIGHT RUN [STYLE]
    .venv/bin/python studies/unseen/blocks_oracle.py MODEL DREAMBOOTH_FOLDER 1 RUN star    # a subject (session 28)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from stillmoving.loading import assemble_pipeline
from stillmoving.world.demo import Generation
from stillmoving.world.metrics import video_metrics
from stillmoving.world.phases import evaluation_prompts, generate
from stillmoving.world.stats import paired_bootstrap

MEASURES = ("fidelity", "consistency", "artifact", "speed")


def scores(model: str, lora: str, weight: float, style: str, **adapters) -> list[dict[str, float]]:
    """The demo's generation (`phases.generate`, at the world's sampling) of the look's first four evaluation prompts
    x seeds 0-3, each video scored by the oracle. `lora`: a LoRA file fused at `weight`, or a DreamBooth folder
    (injected whole when `weight` is not 0); weight 0 is the base T2V."""
    if Path(lora).is_dir():
        pipe = assemble_pipeline(model, customized=lora if weight else None, **adapters)
    else:
        pipe = assemble_pipeline(model, loras=[(lora, weight)] if weight else [], **adapters)
    prompts = evaluation_prompts(style, 4, 2, 32, 8)  # the demo's first four (its seed 0 + 2)
    variant = generate(pipe, prompts, Generation(num_frames=8, resolution=32, steps=15, guidance_scale=4.0), seeds=4)
    videos = zip(variant.videos, variant.captions)
    return [video_metrics(video, prompt=prompt, target=style) for video, prompt in videos]


def main(model: str, lora: str, weight: str, run: str, style: str = "crayon") -> None:
    torch.set_num_threads(1)
    file = f"{run}/spatial_adapters.safetensors"
    sets = {
        "base T2V": scores(model, lora, 0.0, style),
        "naive injection": scores(model, lora, float(weight), style),
        "every block": scores(model, lora, float(weight), style, spatial_adapters=file, spatial_blocks="down,mid,up"),
        "down,mid": scores(model, lora, float(weight), style, spatial_adapters=file, spatial_blocks="down,mid"),
    }
    pairs = (
        ("base T2V", "naive injection"),
        ("naive injection", "every block"),
        ("naive injection", "down,mid"),
        ("every block", "down,mid"),
    )
    for measure in MEASURES:
        values = {name: np.array([s[measure] for s in rows]) for name, rows in sets.items()}
        line = f"{measure}: base T2V {np.nanmean(values['base T2V']):.3f}, naive injection "
        line += f"{np.nanmean(values['naive injection']):.3f}"
        for first, second in pairs:
            gap = paired_bootstrap(values[first], values[second], seed=0)  # second minus first
            line += f" | {second} minus {first} {gap.estimate:+.3f} [{gap.low:+.3f}, {gap.high:+.3f}]"
        print(line, flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
