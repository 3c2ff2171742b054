"""Single-file Stable Diffusion checkpoints (original LDM key layout) as diffusers components.

Conversion is diffusers' own `from_single_file`, fed a state dict that `safety.read_state_dict` read
(so no pickle runs code) and a local config folder (so nothing reaches for the Hub): the customized
T2I gets the video model's own T2I config; a base model gets `--config-dir`, by default SD1.5's.
"""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers.loaders.single_file_utils import (
    LDM_UNET_KEY,
    convert_ldm_clip_checkpoint,
    convert_open_clip_checkpoint,
    infer_diffusers_model_type,
)
from transformers import CLIPTextConfig, CLIPTextModel

from stillmoving.errors import StillMovingError
from stillmoving.formats import SHIPPED_CONFIGS
from stillmoving.formats.safety import read_state_dict

SD1_TYPES = ("v1",)  # infer_diffusers_model_type's name for SD1.x-shaped checkpoints
SDXL_ADDED_EMBEDDING = LDM_UNET_KEY + "label_emb.0.0.weight"  # SDXL's add_embedding (pooled text + time ids)
SDXL_OPEN_CLIP = "conditioner.embedders.1.model."  # the second text encoder of an SDXL checkpoint (OpenCLIP layout)


def _kind(state: dict[str, torch.Tensor]) -> str:
    try:
        return infer_diffusers_model_type(state)
    except (KeyError, IndexError):  # keys of a known type with shapes of none
        return "unrecognised"


def check_sdxl(state: dict[str, torch.Tensor], path: str | Path) -> None:
    """Refuse a checkpoint without SDXL's added embedding (an SD1.x/SD2.x one) for an SDXL video model."""
    if not any(k.startswith(LDM_UNET_KEY) for k in state):
        raise StillMovingError(f"{path} is not a Stable Diffusion checkpoint (no {LDM_UNET_KEY}* keys)")
    if SDXL_ADDED_EMBEDDING not in state:
        raise StillMovingError(
            f"{path} is a {_kind(state)!r} checkpoint without SDXL's {SDXL_ADDED_EMBEDDING}; the video model is "
            "AnimateDiff-SDXL"
        )


def check_sd1(state: dict[str, torch.Tensor], path: str | Path) -> None:
    """Refuse an SDXL/SD2/other checkpoint before any conversion (which would fail with a KeyError)."""
    if not any(k.startswith(LDM_UNET_KEY) for k in state):
        raise StillMovingError(f"{path} is not a Stable Diffusion checkpoint (no {LDM_UNET_KEY}* keys)")
    try:
        kind = infer_diffusers_model_type(state)
    except (KeyError, IndexError):  # keys of a known type with shapes of none
        kind = "unrecognised"
    if kind not in SD1_TYPES:
        raise StillMovingError(
            f"{path} is a {kind!r} checkpoint (diffusers' name for its architecture); the video model is SD1.x-shaped"
        )


def _convert(cls, state: dict, config: Path, subfolder: str | None, path, dtype):
    try:
        return cls.from_single_file(
            state, config=str(config), subfolder=subfolder, local_files_only=True, torch_dtype=dtype
        )
    except (ValueError, RuntimeError, KeyError, IndexError) as error:
        raise StillMovingError(
            f"{path} does not fit the {cls.__name__} config in {config}: {str(error).splitlines()[0]}"
        ) from None


def unet_from_file(
    path: str | Path, unet_config: dict, dtype: torch.dtype = torch.float32, state: dict | None = None, check=check_sd1
) -> UNet2DConditionModel:
    """The UNet of an LDM checkpoint, shaped by `unet_config` (a UNet2DConditionModel config dict); `check` refuses
    a checkpoint of another family first (`check_sd1`, `check_sdxl`)."""
    state = state if state is not None else read_state_dict(path)
    check(state, path)
    with tempfile.TemporaryDirectory() as folder:
        config = {**unet_config, "_class_name": "UNet2DConditionModel"}
        (Path(folder) / "config.json").write_text(json.dumps(config))
        return _convert(UNet2DConditionModel, state, Path(folder), None, path, dtype)


def text_encoder_from_state(state: dict, like: CLIPTextModel, path) -> CLIPTextModel | None:
    """The CLIP text encoder an LDM checkpoint carries, in `like`'s architecture; None when it has none."""
    converted = convert_ldm_clip_checkpoint(state)
    if not converted:
        return None
    text = copy.deepcopy(like)
    target = text.state_dict()
    # Checkpoints name CLIP's modules from its top model (`text_model.encoder...`); transformers 5's CLIPTextModel
    # state dict drops that prefix (load_state_dict does not map it, from_pretrained does).
    converted = {
        k.removeprefix("text_model.") if k not in target and k.removeprefix("text_model.") in target else k: v
        for k, v in converted.items()
    }
    for key, value in converted.items():
        if key in target and target[key].shape != value.shape:
            raise StillMovingError(
                f"{path}: text encoder weight {key} has shape {tuple(value.shape)}, "
                f"the video model's text encoder expects {tuple(target[key].shape)}"
            )
    result = text.load_state_dict(converted, strict=False)
    missing = [k for k in result.missing_keys if "position_ids" not in k]
    if missing:
        raise StillMovingError(f"{path}: its text encoder lacks {missing[0]!r} ({len(missing)} keys missing)")
    return text.to(like.dtype)


def open_clip_text_encoder_from_state(state: dict, like: torch.nn.Module, path) -> torch.nn.Module | None:
    """An SDXL checkpoint's second text encoder (OpenCLIP layout, `conditioner.embedders.1.model.*`) in `like`'s
    architecture (a CLIPTextModelWithProjection), by diffusers' converter; None when it has none."""
    if not any(k.startswith(SDXL_OPEN_CLIP) for k in state):
        return None
    converted = convert_open_clip_checkpoint(like, state, prefix=SDXL_OPEN_CLIP)
    text = copy.deepcopy(like)
    target = text.state_dict()
    for key, value in converted.items():
        if key not in target or target[key].shape != value.shape:
            raise StillMovingError(
                f"{path}: second text encoder weight {key} has shape {tuple(value.shape)}, the video model's "
                f"expects {tuple(target[key].shape) if key in target else 'no such weight'}"
            )
    missing = [k for k in target if k not in converted and "position_ids" not in k]
    if missing:
        raise StillMovingError(f"{path}: its second text encoder lacks {missing[0]!r} ({len(missing)} keys missing)")
    text.load_state_dict(converted, strict=False)
    return text.to(like.dtype)


def config_root(config_dir: str | Path | None) -> Path:
    root = Path(config_dir) if config_dir else SHIPPED_CONFIGS
    if not (root / "unet" / "config.json").is_file():
        raise StillMovingError(f"{root} is not a diffusers config folder (no unet/config.json)")
    return root


def base_components(path: str | Path, config_dir: str | Path | None = None, dtype: torch.dtype = torch.float32) -> dict:
    """UNet, VAE, text encoder (from the file), tokenizer and scheduler (from the config folder) of a base T2I."""
    from diffusers import DDIMScheduler
    from transformers import CLIPTokenizer

    root = config_root(config_dir)
    if not (root / "tokenizer").is_dir():
        raise StillMovingError(
            f"{root} has no tokenizer/ folder; pass --config-dir with an SD1.5 diffusers folder "
            f"(its configs and tokenizer suffice) to load the single file {path}"
        )
    state = read_state_dict(path)
    unet = unet_from_file(path, UNet2DConditionModel.load_config(root, subfolder="unet"), dtype, state)
    vae = _convert(AutoencoderKL, state, root, "vae", path, dtype)
    text = text_encoder_from_state(
        state, CLIPTextModel(CLIPTextConfig.from_pretrained(root, subfolder="text_encoder")), path
    )
    if text is None:
        raise StillMovingError(f"{path} carries no text encoder (cond_stage_model.transformer.*)")
    return dict(
        unet=unet,
        vae=vae,
        text_encoder=text.to(dtype),
        tokenizer=CLIPTokenizer.from_pretrained(root, subfolder="tokenizer"),
        scheduler=DDIMScheduler.from_pretrained(root, subfolder="scheduler"),
    )
