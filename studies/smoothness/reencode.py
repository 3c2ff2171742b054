"""What decoding and encoding again does to the customized T2I's sampled images (session 18; docs/method.md, "The
customized T2I's images as images").

`customize` trained on the sampler's own latents z of M1's images; a T2I is trained on the latents E(D(z)) of images.
For a demo's customization this samples M1's images as `customize` does (unguided, the demo's prompts, steps and
size), and prints, for z and E(D(z)): the change |z - E(D(z))| / |z|, the latents' high-frequency energy, M1's
noise-prediction error at a few timesteps, and the world oracle's fidelity of the decoded images D(z) and
D(E(D(z))) (mean over images, with the paired 95% interval of the difference).

python studies/smoothness/reencode.py DEMO_DIR TARGET LORA_WEIGHT
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch

from stillmoving.data.frozen import encode_pixels, reencoded
from stillmoving.data.sources import decode_latents, sample_images
from stillmoving.loading import load_customized, load_t2v, t2i_pipeline
from stillmoving.training.setup import training_scheduler
from stillmoving.world.demo import DemoConfig
from stillmoving.world.metrics import fidelity
from stillmoving.world.phases import customized_args, section_prompts
from stillmoving.world.stats import paired_bootstrap
from stillmoving.world.weights import shipped_model

STEPS = (20, 50, 150, 500, 900)


def high_frequency(latents: torch.Tensor) -> float:
    return float((latents - torch.nn.functional.avg_pool2d(latents, 3, 1, 1)).pow(2).mean())


def prediction_error(unet, scheduler, latents, text, seed: int = 0) -> list[float]:
    out, generator = [], torch.Generator().manual_seed(seed)
    for t in STEPS:
        noise, steps = torch.randn(latents.shape, generator=generator), torch.full((len(latents),), t)
        with torch.no_grad():
            prediction = unet(scheduler.add_noise(latents, noise, steps), steps, encoder_hidden_states=text).sample
        out.append(round(float((prediction - noise).pow(2).mean()), 4))
    return out


def oracle(latents: torch.Tensor, vae, target: str) -> list[float]:
    images = (decode_latents(vae, latents).permute(0, 2, 3, 1).numpy() * 255).round()
    return [float(fidelity(image[None], target)[0]) for image in images]


@torch.no_grad()
def compensated(vae, latents: list[torch.Tensor], num_frames: int = 1, *_) -> list[torch.Tensor]:
    """Each latent z re-encoded with one round trip's drift added back (session 19): x = D(z), y = D(E(x)), the
    latent E(x + (x - y)), whose decoded image is nearer M1's image x than D(E(x)) is (on the unseen violet: 1.8
    against 2.7 grey levels). A drop-in for `stillmoving.data.frozen.reencoded` on still images only."""
    if num_frames != 1:
        raise ValueError("compensated re-encoding is for still images (num_frames 1)")
    scale = vae.config.scaling_factor
    out = []
    for z in latents:
        x = vae.decode(z[None].to(device=vae.device, dtype=vae.dtype) / scale).sample.clamp(-1, 1).float()
        y = vae.decode(encode_pixels(vae, x).to(device=vae.device, dtype=vae.dtype) / scale).sample.clamp(-1, 1)
        out.append(encode_pixels(vae, (2 * x - y.float()).clamp(-1, 1))[0])
    return out


def customization_samples(demo: Path, target: str, weight: float):
    """A demo's M1 of `target` (a LoRA at `weight`) on the shipped video model's T2I, and the images `customize`
    samples from it (unguided; the demo's image prompts, steps, size and seed): (V, M1, its T2I pipeline, M1's load
    arguments, the prompts, the sampled latents z (N, C, h, w))."""
    cfg = DemoConfig()
    m1_args = customized_args(target, demo / "work" / target / "t2i")
    m1_args["loras"] = [(m1_args["loras"][0][0], weight)] if m1_args["loras"] else []
    pipe = load_t2v(str(shipped_model()))
    m1 = load_customized(pipe, m1_args["customized"], m1_args["loras"])
    t2i = t2i_pipeline(pipe, m1.unet, m1.text_encoder, m1.text_encoder_2)
    t2i.set_progress_bar_config(disable=True)
    _, prompts = section_prompts(cfg, target)
    prompts = [prompts[i % len(prompts)] for i in range(cfg.num_images)]
    size, steps = cfg.resolution, cfg.sample_steps
    sampled = torch.stack(sample_images(t2i, prompts, size, size, cfg.seed, steps, cfg.image_guidance_scale))
    return pipe, m1, t2i, m1_args, prompts, sampled


def main(demo: Path, target: str, weight: float) -> None:
    torch.set_num_threads(2)
    pipe, m1, t2i, _, prompts, sampled = customization_samples(demo, target, weight)
    again = torch.stack(reencoded(pipe.vae, list(sampled)))
    length = t2i.tokenizer.model_max_length
    tokens = t2i.tokenizer(prompts, padding="max_length", max_length=length, return_tensors="pt")
    with torch.no_grad():
        text = (m1.text_encoder or pipe.text_encoder)(tokens.input_ids)[0]
    scheduler = training_scheduler(pipe)
    seen = {name: oracle(z, pipe.vae, target) for name, z in (("sampled", sampled), ("reencoded", again))}
    diff = paired_bootstrap(seen["sampled"], seen["reencoded"])
    print(
        json.dumps(
            {
                "target": target,
                "weight": weight,
                "images": len(prompts),
                "relative_change": round(float((sampled - again).norm() / sampled.norm()), 4),
                "high_frequency": {"sampled": high_frequency(sampled), "reencoded": high_frequency(again)},
                "m1_error_at": list(STEPS),
                "m1_error": {
                    "sampled": prediction_error(m1.unet, scheduler, sampled, text),
                    "reencoded": prediction_error(m1.unet, scheduler, again, text),
                },
                "fidelity": {k: round(float(np.mean(v)), 4) for k, v in seen.items()},
                "fidelity_reencoded_minus_sampled": [round(diff.estimate, 4), round(diff.low, 4), round(diff.high, 4)],
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], float(sys.argv[3]))
