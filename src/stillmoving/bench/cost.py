"""A preset's model cost counted on PyTorch's meta device (`stillmoving bench --device meta`): no GPU, no memory.

Parameters of the video UNet (its spatial and temporal parts) and the FLOPs of one UNet forward at generation
(classifier-free guidance: a batch of 2) and of the floor of a training step (forward plus input-gradient backward,
batch 1), at the preset's frames and size. With a GPU, `stillmoving bench --device cuda` times what these count.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from rich.table import Table
from torch.utils.flop_counter import FlopCounterMode

from stillmoving.bench.models import PRESETS, video_unet
from stillmoving.errors import StillMovingError

TEMPORAL = ("motion_modules.", "temp_convs.", "temp_attentions.", "transformer_in.")  # AnimateDiff's, UNet3D's
FAMILIES = {
    "tiny": "AnimateDiff (tests' tiny)",
    "world": "AnimateDiff (world)",
    "sd15": "AnimateDiff v2 (SD1.5 + mm_sd_v15_v2)",
    "sd15-v3": "AnimateDiff v3 (SD1.5 + v3_sd15_mm)",
    "sdxl": "AnimateDiff-SDXL (SDXL + mm_sdxl_v10_beta)",
    "modelscope": "ModelScope/ZeroScope (UNet3DConditionModel)",
}


@dataclass
class CostResult:
    preset: str
    family: str
    num_frames: int
    resolution: int  # the frames' height (and width, unless `width` differs)
    unet_parameters: int
    temporal_parameters: int  # motion modules (AnimateDiff) or temporal convolutions and attentions (UNet3D)
    generation_flops: float  # one UNet forward with classifier-free guidance (batch 2)
    floor_flops: float  # one forward + input-gradient backward, batch 1
    width: int  # the frames' width


def _flops(fn) -> float:
    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def _inputs(unet, model: str, batch: int, frames: int, latent: tuple[int, int]) -> tuple[torch.Tensor, dict]:
    config = unet.config
    sample = torch.empty(batch, config.in_channels, frames, *latent)
    texts = batch if model == "modelscope" else batch * frames  # UNet3D repeats the text per frame itself
    kwargs = {"encoder_hidden_states": torch.empty(texts, 77, config.cross_attention_dim)}
    if model == "sdxl":  # pooled text embedding and size/crop ids
        kwargs["added_cond_kwargs"] = {"text_embeds": torch.empty(batch, 1280), "time_ids": torch.empty(batch, 6)}
    return sample, kwargs


def model_cost(name: str) -> CostResult:
    """Parameters and FLOPs of preset `name`'s video UNet, counted on the meta device."""
    preset = PRESETS[name]
    if preset.model in ("tiny", "world"):
        raise StillMovingError(f"preset {name} is benchmarked on the CPU; --device meta counts the real-size presets")
    latent, frames = (preset.resolution // 8, preset.frame_width // 8), preset.num_frames
    with torch.device("meta"):
        unet = video_unet(preset.model)
        unet.requires_grad_(False)
        timestep = torch.tensor([500])

        def generation():
            sample, kwargs = _inputs(unet, preset.model, 2, frames, latent)
            with torch.no_grad():
                unet(sample, timestep, **kwargs)

        def floor():
            sample, kwargs = _inputs(unet, preset.model, 1, frames, latent)
            sample.requires_grad_(True)
            unet(sample, timestep, **kwargs).sample.sum().backward()

        generation_flops, floor_flops = _flops(generation), _flops(floor)
    named = dict(unet.named_parameters())
    return CostResult(
        name,
        FAMILIES[preset.model],
        frames,
        preset.resolution,
        sum(p.numel() for p in named.values()),
        sum(p.numel() for k, p in named.items() if any(t in k for t in TEMPORAL)),
        generation_flops,
        floor_flops,
        preset.frame_width,
    )


def cost_table(results: list[CostResult]) -> Table:
    table = Table(
        "preset",
        "family",
        "frames x px",
        "UNet params",
        "temporal params",
        "TFLOP/forward (CFG)",
        "TFLOP/floor step",
        title="model cost on the meta device (random weights at the real sizes)",
    )
    for r in results:
        table.add_row(
            r.preset,
            r.family,
            f"{r.num_frames} x {r.resolution}"
            if r.width == r.resolution
            else f"{r.num_frames} x {r.width}x{r.resolution}",
            f"{r.unet_parameters:,}",
            f"{r.temporal_parameters:,}",
            f"{r.generation_flops / 1e12:.2f}",
            f"{r.floor_flops / 1e12:.2f}",
        )
    return table


def cost_report(names: list[str], output=None) -> Table:
    """`stillmoving bench --device meta`: every preset counted, the JSON written to `output` when given."""
    import json
    from dataclasses import asdict

    from stillmoving.files import write_text

    results = [model_cost(name) for name in names]
    if output:
        write_text(output, json.dumps([asdict(r) for r in results], indent=2) + "\n")
    return cost_table(results)
