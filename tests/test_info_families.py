"""`stillmoving info` names the family and version of each model file, from tiny state dicts built in-process with
the keys and shapes each real file has (a real one has thousands more)."""

import pytest
import torch
from safetensors.torch import save_file
from test_cli import run

from stillmoving.describe import describe_file

LDM_ATTN = "model.diffusion_model.input_blocks.{}.1.transformer_blocks.0.attn2.to_k.weight"
UNET_ATTN = "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight"


def motion_modules(blocks: int, frames: int, mid: bool) -> dict:
    """Original AnimateDiff motion-module keys: a positional table per attention, a proj_in per module."""
    state = {}
    for i in range(blocks):
        for j in range(2):
            prefix = f"down_blocks.{i}.motion_modules.{j}.temporal_transformer."
            state[prefix + "proj_in.weight"] = torch.zeros(8, 8)
            state[prefix + "transformer_blocks.0.attention_blocks.0.pos_encoder.pe"] = torch.zeros(1, frames, 8)
    if mid:
        state["mid_block.motion_modules.0.temporal_transformer.proj_in.weight"] = torch.zeros(8, 8)
    return state


FILES = [  # (id, tensors, words `info` must print)
    ("sd15-checkpoint", {LDM_ATTN.format(1): torch.zeros(320, 768)}, ["original LDM layout", "SD1.x"]),
    ("sd2-checkpoint", {LDM_ATTN.format(2): torch.zeros(320, 1024)}, ["original LDM layout", "SD2.x", "v2"]),
    (
        "sdxl-checkpoint",
        {
            LDM_ATTN.format(4): torch.zeros(640, 2048),
            "conditioner.embedders.1.model.transformer.resblocks.9.mlp.c_proj.bias": torch.zeros(1280),
            "model.diffusion_model.input_blocks.0.0.weight": torch.zeros(320, 4, 3, 3),
        },
        ["original LDM layout", "SDXL", "xl_base"],
    ),
    ("sd15-diffusers-unet", {UNET_ATTN: torch.zeros(640, 768)}, ["UNet2DConditionModel", "SD1.x"]),
    ("sdxl-diffusers-unet", {UNET_ATTN: torch.zeros(640, 2048)}, ["UNet2DConditionModel", "SDXL"]),
    ("mm-v1", motion_modules(4, 24, False), ["AnimateDiff motion modules v1", "SD1.5"]),
    ("mm-v2", motion_modules(4, 32, True), ["AnimateDiff motion modules v2", "mid block"]),
    ("mm-v3", motion_modules(4, 32, False), ["AnimateDiff motion modules v3", "32-frame table"]),
    ("mm-sdxl-beta", motion_modules(3, 32, False), ["AnimateDiff-SDXL motion modules", "mm_sdxl_v10_beta"]),
    (
        "zeroscope-diffusers",
        {"down_blocks.0.temp_convs.0.conv1.0.weight": torch.zeros(8, 8, 3, 1, 1), UNET_ATTN: torch.zeros(640, 1024)},
        ["ModelScope/ZeroScope", "UNet3DConditionModel", "diffusers layout", "SD2.x"],
    ),
    (
        "modelscope-original",
        {
            "input_blocks.1.0.temopral_conv.conv1.0.weight": torch.zeros(8, 8, 3, 1, 1),
            "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": torch.zeros(320, 1024),
        },
        ["ModelScope/ZeroScope", "original ModelScope layout"],
    ),
]


@pytest.mark.parametrize("tensors,words", [row[1:] for row in FILES], ids=[row[0] for row in FILES])
def test_info_names_family_and_version(tmp_path, capsys, monkeypatch, tensors, words):
    path = tmp_path / "model.safetensors"
    save_file(tensors, path)
    summary = " ".join(str(v) for v in describe_file(path).values())
    for word in words:
        assert word in summary, summary
    code, out, _ = run(capsys, monkeypatch, "info", path)
    assert code == 0 and words[0] in " ".join(out.split())
