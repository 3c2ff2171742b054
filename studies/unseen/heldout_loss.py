"""Does a `customize` run reach its own objective on the customized T2I's images it did not train on?

The denoising loss of frozen videos (every frame the same image) of M1's own unguided images, per timestep, with
the motion adapter at alpha 1 (training's setting) and 0: V with M1 injected, with and without the run's spatial
adapters, on the run's training images (`images/`, re-encoded from their PNGs) and on as many new ones, sampled
the way customize samples them (its prompts, 15 steps, no guidance) with other seeds. Noise and timesteps are the
same for every row.

    .venv/bin/python studies/unseen/heldout_loss.py RUN (--customized FOLDER | --lora FILE:WEIGHT)
e.g. runs/unseen_style/heavy/animatediff/default --lora runs/unseen_style/t2i/pytorch_lora_weights.safetensors:2
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from stillmoving.adapters.motion import MotionLoRA
from stillmoving.adapters.spatial import SpatialAdapters
from stillmoving.data.frozen import encode_pixels, encode_prompts, to_pixels
from stillmoving.inference import sampling_arguments
from stillmoving.loading import load_customized, load_t2v, t2i_pipeline
from stillmoving.training.setup import training_scheduler

TIMESTEPS = torch.tensor([50, 150, 300, 500, 700, 900])
FRAMES = 8


def main(run: str, kind: str, m1_spec: str) -> None:
    torch.set_num_threads(2)
    run = Path(run)
    config = json.loads((run / "customize_run.json").read_text())["config"]
    pipe = load_t2v(config["model"])
    if kind == "--lora":
        path, weight = m1_spec.rsplit(":", 1)
        m1 = load_customized(pipe, None, [(path, float(weight))])
    else:
        m1 = load_customized(pipe, m1_spec, [])
    files = sorted((run / "images").glob("*.png"))
    prompts = [config["prompt"][i % len(config["prompt"])] for i in range(len(files))]  # customize's `spread`
    t2i = t2i_pipeline(pipe, m1.unet, m1.text_encoder)
    t2i.set_progress_bar_config(disable=True)
    new = [t2i(p, **sampling_arguments(32, 32, 15, 1.0, 5000 + i)).images[0] for i, p in enumerate(prompts)]
    pixels = {
        "training images": [np.array(Image.open(f).convert("RGB")) for f in files],
        "new images": [(np.asarray(x) * 255).round().astype(np.uint8) for x in new],
    }
    latents = {k: encode_pixels(pipe.vae, torch.cat([to_pixels(x, 32, 32) for x in v])) for k, v in pixels.items()}
    text = encode_prompts(pipe.tokenizer, m1.text_encoder or pipe.text_encoder, prompts)
    scheduler = training_scheduler(pipe)
    n = len(files)
    noise = torch.randn((len(TIMESTEPS), n, 4, FRAMES, 8, 8), generator=torch.Generator().manual_seed(0))

    @torch.no_grad()
    def losses(x: torch.Tensor) -> list[float]:
        frozen = x[:, :, None].expand(-1, -1, FRAMES, -1, -1)
        out = []
        for i, t in enumerate(TIMESTEPS):
            noisy = scheduler.add_noise(frozen, noise[i], t.repeat(n))
            prediction = pipe.unet(noisy, t.repeat(n), encoder_hidden_states=text.repeat_interleave(FRAMES, 0)).sample
            out.append(((prediction - noise[i]) ** 2).mean().item())
        return out

    motion = MotionLoRA.load(pipe.unet, config["motion_adapter"])
    pipe.inject_customized(m1.unet, m1.text_encoder)
    print("| model | alpha | images | " + " | ".join(f"t={t}" for t in TIMESTEPS.tolist()) + " | mean |")
    print("| --- " * (len(TIMESTEPS) + 4) + "|")
    for name in ("V + M1", "V + M1 + adapters"):
        if name.endswith("adapters"):
            SpatialAdapters.load(str(run / "spatial_adapters.safetensors")).attach(pipe.unet)
        for alpha in (1.0, 0.0):
            motion.set_scale(alpha)
            for images, x in latents.items():
                row = losses(x)
                cells = " | ".join(f"{v:.4f}" for v in row)
                print(f"| {name} | {alpha:g} | {images} | {cells} | {np.mean(row):.4f} |", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
