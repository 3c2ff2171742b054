"""Do the trained adapters fit a frozen video by drawing on its other frames (session 18; docs/method.md, "The
customized T2I's images as images")?

A frozen video's frames are one image under independent noise, so a video model can denoise a frame better by
pooling the others, which a moving video at inference does not allow. For a demo customization and one or more
adapter files, this takes the images `customize` trained on (each run's `images/` folder, encoded, or its sampled
latents re-encoded: whatever the run trained on, see below), and prints the video model's denoising loss with the
motion adapter at alpha 1 (the training setting), without and with the adapters, on frozen videos of 8 frames and of
1 frame (nothing to pool), at a few timesteps: the adapters' gain on 8 frames beyond their gain on 1 is what they
draw from the other frames.

python studies/smoothness/pooling.py DEMO_DIR TARGET LORA_WEIGHT RUN_DIR...   (RUN_DIR: a recipes.py output folder)
"""

import json
import sys
from pathlib import Path

import torch

from stillmoving.data.frozen import frozen_video, reencoded
from stillmoving.data.sources import sample_images
from stillmoving.loading import assemble_pipeline, load_customized, load_t2v, t2i_pipeline
from stillmoving.training.setup import training_scheduler
from stillmoving.world.demo import DemoConfig
from stillmoving.world.phases import customized_args, on_video_model, section_prompts
from stillmoving.world.weights import shipped_model, shipped_motion_adapter

STEPS = (50, 150, 300, 500, 700, 900)


def main(demo: Path, target: str, weight: float, runs: list[Path]) -> None:
    torch.set_num_threads(2)
    cfg = DemoConfig()
    m1_args = customized_args(target, demo / "work" / target / "t2i")
    loras = [(m1_args["loras"][0][0], weight)] if m1_args["loras"] else []
    m1_args = on_video_model({**m1_args, "loras": loras}, str(shipped_model()), str(shipped_model()))
    # the images customize samples (unguided, the demo's prompts): the sampler's latents z and E(D(z))
    base = load_t2v(str(shipped_model()))
    m1 = load_customized(base, m1_args["customized"], loras)
    t2i = t2i_pipeline(base, m1.unet, m1.text_encoder, m1.text_encoder_2)
    t2i.set_progress_bar_config(disable=True)
    _, prompts = section_prompts(cfg, target)
    prompts = [prompts[i % len(prompts)] for i in range(cfg.num_images)]
    size = cfg.resolution
    sampled = torch.stack(sample_images(t2i, prompts, size, size, cfg.seed, cfg.sample_steps, cfg.image_guidance_scale))
    data = {"sampled": sampled, "reencoded": torch.stack(reencoded(base.vae, list(sampled)))}
    model, motion = str(shipped_model()), str(shipped_motion_adapter())
    pipe = assemble_pipeline(model, customized=m1_args["customized"], loras=loras, motion_adapter=motion)
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
        record = json.loads((run / "customize_run.json").read_text())["config"]
        kind = "reencoded" if record.get("reencode_images") else "sampled"
        row = {"run": run.name, "trained_on": kind, "timesteps": list(STEPS)}
        for frames in (8, 1):
            pipe.load_spatial_adapters(str(run / "spatial_adapters.safetensors"))
            with pipe.spatial_adapters.detached(pipe.unet):
                without = losses(data[kind], frames)
            adapted = losses(data[kind], frames)
            row[f"{frames} frames"] = {"without": without, "with": adapted}
            row[f"{frames} frames: gain"] = [round(a - b, 4) for a, b in zip(without, adapted)]
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], float(sys.argv[3]), [Path(p) for p in sys.argv[4:]])
