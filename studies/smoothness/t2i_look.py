"""How close a demo section's videos come to the customized T2I's own images, by whole-frame colour: the figure
`customize`'s end-of-run check reports, here over the demo's 12 videos with naive injection and with the given
adapters, against the mean colour histogram of eight T2I images per prompt (the videos' steps and guidance).

python studies/smoothness/t2i_look.py DEMO_DIR TARGET VIDEO_MODEL LORA_WEIGHT ADAPTERS
  e.g. python studies/smoothness/t2i_look.py runs/demo14 star animatediff 1 \
         runs/recipes_star/default/spatial_adapters.safetensors
"""

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from recipes import section

from stillmoving.loading import assemble_pipeline
from stillmoving.video_metrics import colour_histograms
from stillmoving.world.demo import Generation
from stillmoving.world.phases import generate, section_prompts, t2i_reference
from stillmoving.world.stats import paired_bootstrap

IMAGES = 8  # T2I images per prompt


def main(demo: Path, target: str, video_model: str, weight: float, adapters: str) -> None:
    torch.set_num_threads(2)
    cfg, m1 = section(demo, target, video_model, weight)
    prompts, _ = section_prompts(cfg, target)
    gen = Generation(cfg.num_frames, cfg.resolution, cfg.sample_steps, cfg.guidance_scale)
    shots = t2i_reference(replace(cfg, seeds=IMAGES), m1, prompts, gen).videos  # IMAGES per prompt, prompt by prompt
    looks = [
        colour_histograms(np.concatenate(shots[k : k + IMAGES])).mean(axis=0) for k in range(0, len(shots), IMAGES)
    ]
    agreement = {}
    for name, spatial in (("naive injection", None), ("Still-Moving", adapters)):
        pipe = assemble_pipeline(cfg.model, customized=m1["customized"], loras=m1["loras"], spatial_adapters=spatial)
        videos = generate(pipe, prompts, gen, cfg.seeds).videos  # prompt by prompt, cfg.seeds each
        agreement[name] = [
            float(np.minimum(colour_histograms(v), looks[i // cfg.seeds]).sum(axis=1).mean())
            for i, v in enumerate(videos)
        ]
    d = paired_bootstrap(agreement["naive injection"], agreement["Still-Moving"])
    print(
        f"{target} ({video_model}, weight {weight:g}): colour agreement with the T2I's images, naive injection "
        f"{np.mean(agreement['naive injection']):.3f}, Still-Moving {np.mean(agreement['Still-Moving']):.3f}, "
        f"difference {d.estimate:+.3f} [{d.low:+.3f}, {d.high:+.3f}]"
    )


if __name__ == "__main__":
    a = sys.argv
    main(Path(a[1]), a[2], a[3], float(a[4]), a[5])
