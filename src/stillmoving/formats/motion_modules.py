"""AnimateDiff motion-module files (`mm_sd_v14/v15.ckpt`, `mm_sd_v15_v2.ckpt`, `v3_sd15_mm.ckpt`, ...).

The version is read from the keys, as diffusers' `infer_diffusers_model_type` does: v2 has a mid-block
motion module; v1 has none and a positional table of 24 frames; v3 has none and a table of 32.
Loading goes through `MotionAdapter.from_single_file` (diffusers' converter) with a local config.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import MotionAdapter

from stillmoving.errors import StillMovingError
from stillmoving.formats import SHIPPED_CONFIGS
from stillmoving.formats.safety import read_state_dict

# Original AnimateDiff names keep the table in each attention; diffusers' in each transformer block.
POSITIONAL = re.compile(
    r"(down_blocks|mid_block|up_blocks)(?:\.(\d+))?\.motion_modules\.(\d+)\..*pos_(?:encoder|embed)\.pe"
)
PROJ_IN = re.compile(r"down_blocks\.(\d+)\.motion_modules\.(\d+)\.(?:temporal_transformer\.)?proj_in\.weight")


@dataclass
class MotionModuleInfo:
    """What a motion-module file holds, read from its keys and shapes."""

    version: str  # v1, v2, v3 (original AnimateDiff layout) or "diffusers" layout
    max_frames: int  # length of the positional table: the most frames it can attend over
    mid_block: bool  # a motion module in the UNet's mid block (v2)
    block_channels: tuple[int, ...]  # channels of each down block's motion modules
    layers_per_block: int  # motion modules per down block


def inspect_motion_modules(state: dict[str, torch.Tensor]) -> MotionModuleInfo | None:
    """The motion-module facts of a state dict, or None when it holds no motion modules."""
    tables = [(k, v) for k, v in state.items() if POSITIONAL.fullmatch(k)]
    if not tables:
        return None
    max_frames = int(tables[0][1].shape[1])  # pe: (1, max_frames, channels)
    mid = any(k.startswith("mid_block.motion_modules.") for k in state)
    original = any(".temporal_transformer." in k for k in state)
    version = ("v2" if mid else "v1" if max_frames == 24 else "v3") if original else "diffusers"
    projs = {(int(m.group(1)), int(m.group(2))): v.shape[0] for k, v in state.items() if (m := PROJ_IN.fullmatch(k))}
    channels = tuple(projs[(i, 0)] for i in sorted({i for i, _ in projs}))
    layers = len({j for i, j in projs if i == 0})
    return MotionModuleInfo(version, max_frames, mid, channels, layers)


def _config_dir(config_dir: str | Path | None) -> Path:
    """The folder holding a MotionAdapter config.json: `config_dir` itself or its motion_adapter/."""
    root = Path(config_dir) if config_dir else SHIPPED_CONFIGS
    for folder in (root / "motion_adapter", root):
        if (folder / "config.json").is_file():
            return folder
    raise StillMovingError(f"{root} holds no motion-adapter config (motion_adapter/config.json or config.json)")


def check_fits(info: MotionModuleInfo, unet_config: dict, path: str | Path) -> None:
    """Refuse motion modules built for another block layout than the base T2I UNet."""
    channels = tuple(unet_config["block_out_channels"])
    layers = unet_config["layers_per_block"]
    if info.block_channels != channels or info.layers_per_block != layers:
        raise StillMovingError(
            f"motion modules {path} do not fit the base model: they are built for blocks of {info.block_channels} "
            f"channels with {info.layers_per_block} per block, the base UNet has {channels} with {layers}"
        )


def load_motion_modules_file(
    path: str | Path,
    config_dir: str | Path | None = None,
    unet_config: dict | None = None,
    dtype: torch.dtype = torch.float32,
) -> MotionAdapter:
    """A MotionAdapter from one motion-module file, checked against the base UNet's config when given."""
    state = read_state_dict(path)
    info = inspect_motion_modules(state)
    if info is None:
        raise StillMovingError(f"{path} holds no AnimateDiff motion modules (no positional-encoding tables)")
    if unet_config is not None:
        check_fits(info, unet_config, path)
    # The file's own shapes override the config's: a v1 file gets a 24-frame table and no mid block.
    overrides = dict(
        block_out_channels=info.block_channels,
        motion_layers_per_block=info.layers_per_block,
        use_motion_mid_block=info.mid_block,
        motion_max_seq_length=info.max_frames,
    )
    try:
        adapter = MotionAdapter.from_single_file(
            state, config=str(_config_dir(config_dir)), local_files_only=True, torch_dtype=dtype, **overrides
        )
    except (ValueError, RuntimeError, KeyError) as error:
        raise StillMovingError(f"cannot load motion modules {path}: {str(error).splitlines()[0]}") from None
    return adapter
