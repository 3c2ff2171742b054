"""Model FLOPs of the sd15 presets, counted on PyTorch's meta device: no GPU, no memory, no compute.

    python benchmarks/sd15_flops.py [--preset sd15-512]

Prints the FLOPs of one training step of each bench stage (`stillmoving.bench.steps`, batch 1) and of one
UNet forward at generation (classifier-free guidance) without and with spatial adapters. With a GPU,
`stillmoving bench --preset sd15-512 --device cuda` measures the times these FLOPs take.
"""

from __future__ import annotations

import argparse
import tempfile

import torch
from torch.utils.flop_counter import FlopCounterMode

from stillmoving.adapters.spatial import SpatialAdapters
from stillmoving.bench.models import IMAGE_PROMPT, PRESETS, Batch, sd15_pipeline
from stillmoving.bench.steps import Rig, floor_step, motion_step, spatial_step, straightforward_step


def flops(fn) -> float:
    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="sd15-512", choices=[k for k, p in PRESETS.items() if p.model == "sd15"])
    args = parser.parse_args()
    preset = PRESETS[args.preset]
    size, frames, latent = preset.resolution, preset.num_frames, preset.resolution // 8
    with tempfile.TemporaryDirectory() as tokenizer_dir, torch.device("meta"):
        pipe = sd15_pipeline(tokenizer_dir)
        batch = Batch(
            images=torch.empty(1, 3, size, size),
            prior_pixels=torch.empty(1, frames, 3, size, size),
            image_latents=torch.empty(1, 4, latent, latent),
            prior_latents=torch.empty(1, 4, frames, latent, latent),
            prompts=[IMAGE_PROMPT],
            text=torch.empty(1, 77, 768),
        )
    rig = Rig(pipe, batch, frames, torch.float32, gradient_checkpointing=False)
    print(f"{args.preset}: {frames} frames at {size} px, batch 1; TFLOP")
    for stage, enter, make in [
        ("floor", rig.enter_floor, floor_step),
        ("motion", rig.enter_motion, motion_step),
        ("spatial (2 batches)", rig.enter_spatial, spatial_step),
        ("straightforward (2 batches)", rig.enter_straightforward, straightforward_step),
    ]:
        enter()
        print(f"  {stage:<28} {flops(make(rig)) / 1e12:8.2f}")
    rig.for_generation()
    unet = pipe.unet
    noisy, timestep = torch.empty(2, 4, frames, latent, latent, device="meta"), torch.tensor([500], device="meta")
    text = torch.empty(2 * frames, 77, 768, device="meta")

    def forward():
        with torch.no_grad():
            unet(noisy, timestep, encoder_hidden_states=text)

    plain = flops(forward)
    spatial = SpatialAdapters.for_unet(unet, rank=8).to("meta").attach(unet)
    adapted = flops(forward)
    print(
        f"  generation UNet forward (CFG) {plain / 1e12:8.2f}; with {len(spatial.placements)} spatial adapters "
        f"+{100 * (adapted / plain - 1):.3f}%"
    )


if __name__ == "__main__":
    main()
