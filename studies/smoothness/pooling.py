"""Do the trained adapters fit a frozen video by drawing on its other frames (session 18; docs/method.md, "The
customized T2I's images as images")?

A frozen video's frames are one image under independent noise, so a video model can denoise a frame better by
pooling the others, which a moving video at inference does not allow. For a demo customization and one or more
adapter files, this samples the images `customize` trains on again (as `reencode.py` does) and re-encodes the share
each run's record gives (`--reencode-images`), and prints the video model's denoising loss with the
motion adapter at alpha 1 (the training setting), without and with the adapters, on frozen videos of 8 frames and of
1 frame (nothing to pool), at a few timesteps: the adapters' gain on 8 frames beyond their gain on 1 is what they
draw from the other frames.

python studies/smoothness/pooling.py DEMO_DIR TARGET LORA_WEIGHT RUN_DIR...   (RUN_DIR: a recipes.py output folder)
"""

import json
import sys
from pathlib import Path

import torch
from reencode import customization_samples

from stillmoving.data.frozen import frozen_video
from stillmoving.loading import assemble_pipeline
from stillmoving.run_folder import CUSTOMIZE_RUN, SPATIAL_ADAPTERS
from stillmoving.training.setup import training_scheduler
from stillmoving.training.spatial_stage import reencode_share
from stillmoving.world.weights import shipped_model, shipped_motion_adapter

STEPS = (50, 150, 300, 500, 700, 900)


def main(demo: Path, target: str, weight: float, runs: list[Path]) -> None:
    torch.set_num_threads(2)
    base, _, _, m1_args, prompts, sampled = customization_samples(demo, target, weight)
    model, motion = str(shipped_model()), str(shipped_motion_adapter())
    pipe = assemble_pipeline(model, customized=m1_args["customized"], loras=m1_args["loras"], motion_adapter=motion)
    pipe.set_motion_scale(1.0)
    scheduler = training_scheduler(pipe)
    with torch.no_grad():
        text = pipe.encode_prompt(prompts, "cpu", 1, False)[0]

    def losses(latents: torch.Tensor, frames: int) -> list[float]:
        generator, out = torch.Generator().manual_seed(0), []
        videos = frozen_video(latents, frames)
        for t in STEPS:
            noise = torch.randn(videos.shape, generator=generator)
            steps = torch.full((len(videos),), t)
            with torch.no_grad():
                per_frame = text.repeat_interleave(frames, dim=0)  # (b*f, seq, dim), as UNetMotionModel wants
                noisy = scheduler.add_noise(videos, noise, steps)
                pred = pipe.unet(noisy, steps, encoder_hidden_states=per_frame).sample
            out.append(round(float((pred - noise).pow(2).mean()), 4))
        return out

    for run in runs:
        share = float(json.loads((run / CUSTOMIZE_RUN).read_text())["config"].get("reencode_images") or 0)
        latents = torch.stack(reencode_share(base.vae, list(sampled), share))  # share 0: the sampled latents
        kind = "sampled" if not share else "reencoded" if share == 1 else f"{share:.0%} reencoded"
        row = {"run": run.name, "trained_on": kind, "timesteps": list(STEPS)}
        pipe.load_spatial_adapters(str(run / SPATIAL_ADAPTERS))
        for frames in (8, 1):
            with pipe.spatial_adapters.detached(pipe.unet):
                without = losses(latents, frames)
            adapted = losses(latents, frames)
            row[f"{frames} frames"] = {"without": without, "with": adapted}
            row[f"{frames} frames: gain"] = [round(a - b, 4) for a, b in zip(without, adapted)]
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], float(sys.argv[3]), [Path(p) for p in sys.argv[4:]])
