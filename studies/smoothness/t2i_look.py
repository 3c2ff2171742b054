"""How close a demo section's videos come to the customized T2I's own images, by whole-frame colour: the figure
`customize`'s end-of-run check reports, here over the demo's 12 videos with naive injection and with the given
adapters, against the mean colour histogram of eight T2I images per prompt (the videos' steps and guidance).

python studies/smoothness/t2i_look.py DEMO_DIR TARGET VIDEO_MODEL LORA_WEIGHT ADAPTERS
  e.g. python studies/smoothness/t2i_look.py runs/demo14 star animatediff 1 \
         runs/recipes_star/default/spatial_adapters.safetensors
"""

import sys
from pathlib import Path

import numpy as np
import torch
from recipes import section

from stillmoving.loading import assemble_pipeline, load_customized, load_t2v, t2i_pipeline
from stillmoving.video_metrics import colour_histograms
from stillmoving.world.demo import Generation, generate, section_prompts
from stillmoving.world.stats import paired_bootstrap

IMAGES = 8  # T2I images per prompt


def main(demo: Path, target: str, video_model: str, weight: float, adapters: str) -> None:
    torch.set_num_threads(2)
    cfg, m1 = section(demo, target, video_model, weight)
    prompts, _ = section_prompts(cfg, target)
    gen = Generation(cfg.num_frames, cfg.resolution, cfg.sample_steps, cfg.guidance_scale)
    t2v = load_t2v(cfg.model)
    customized = load_customized(t2v, m1["customized"], m1["loras"])
    t2i = t2i_pipeline(t2v, customized.unet, customized.text_encoder)
    t2i.set_progress_bar_config(disable=True)
    looks = []
    for prompt in prompts:
        shots = [
            t2i(
                prompt,
                height=gen.resolution,
                width=gen.resolution,
                num_inference_steps=gen.steps,
                guidance_scale=gen.guidance_scale,
                generator=torch.Generator().manual_seed(seed),
                output_type="np",
            ).images[0]
            for seed in range(IMAGES)
        ]
        looks.append(colour_histograms((np.stack(shots) * 255).round().astype(np.uint8)).mean(axis=0))
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
