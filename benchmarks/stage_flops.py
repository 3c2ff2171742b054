"""Model FLOPs of a real-size bench preset's stages, counted on PyTorch's meta device: no GPU, no memory, no compute.

    python benchmarks/stage_flops.py [--preset sd15-512]

Prints the FLOPs of one training step of each bench stage (`stillmoving.bench.steps`, batch 1, the UNet conditioned
through the family's backend) and of one UNet forward at generation (classifier-free guidance) without and with
spatial adapters, on the pipeline `stillmoving bench --device cuda` builds for the preset (SD1.5, AnimateDiff-SDXL,
ModelScope/ZeroScope). With a GPU, `stillmoving bench --preset NAME --device cuda` measures the times these FLOPs take.
"""

from __future__ import annotations

import argparse
import tempfile

import torch
from torch.utils.flop_counter import FlopCounterMode

from stillmoving.adapters.spatial import SpatialAdapters
from stillmoving.bench.models import BUILDERS, IMAGE_PROMPT, PRESETS, meta_batch
from stillmoving.bench.steps import Rig, floor_step, motion_step, spatial_step, straightforward_step, text_rows
from stillmoving.training.setup import VideoDenoiser

REAL_SIZE = [name for name, preset in PRESETS.items() if preset.model not in ("tiny", "world")]


def flops(fn) -> float:
    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="sd15-512", choices=REAL_SIZE)
    args = parser.parse_args()
    preset = PRESETS[args.preset]
    frames = preset.num_frames
    with tempfile.TemporaryDirectory() as tokenizer_dir, torch.device("meta"):
        pipe = BUILDERS[preset.model](preset, tokenizer_dir, 0)
        with torch.no_grad():
            text = text_rows(pipe, [IMAGE_PROMPT])  # (1, seq (+ SDXL's pooled rows), dim)
    batch = meta_batch(pipe, preset, text)
    rig = Rig(pipe, batch, frames, torch.float32, gradient_checkpointing=False)
    print(f"{args.preset}: {frames} frames of {preset.frame_width}x{preset.resolution} px, batch 1; TFLOP")
    for stage, enter, make in [
        ("floor", rig.enter_floor, floor_step),
        ("motion", rig.enter_motion, motion_step),
        ("spatial (2 batches)", rig.enter_spatial, spatial_step),
        ("straightforward (2 batches)", rig.enter_straightforward, straightforward_step),
    ]:
        enter()
        print(f"  {stage:<28} {flops(make(rig)) / 1e12:8.2f}")
    rig.for_generation()
    model = VideoDenoiser(pipe.unet, backend=rig.backend)
    noisy = torch.empty(2, *batch.prior_latents.shape[1:], device="meta")  # (2, c, f, h, w): CFG's two halves
    timesteps, cfg_text = torch.full((2,), 500, device="meta"), text.expand(2, -1, -1)

    def forward():
        with torch.no_grad():
            model(noisy, timesteps, cfg_text)

    plain = flops(forward)
    spatial = SpatialAdapters.for_unet(pipe.unet, rank=8).to("meta").attach(pipe.unet)
    adapted = flops(forward)
    print(
        f"  generation UNet forward (CFG) {plain / 1e12:8.2f}; with {len(spatial.placements)} spatial adapters "
        f"+{100 * (adapted / plain - 1):.3f}%"
    )


if __name__ == "__main__":
    main()
