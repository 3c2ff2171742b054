"""Loading the models a run needs: the T2V (V) and the customized T2I (M1), from diffusers folders.

V is an AnimateDiff pipeline folder, or a Stable Diffusion folder plus a motion-module folder.
M1 is a UNet folder, a Stable Diffusion pipeline folder (its UNet, and its text encoder when that was
fine-tuned too), or the video model's own T2I plus LoRA files fused at given weights.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import MotionAdapter, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextModel

from stillmoving.errors import StillMovingError
from stillmoving.injection import t2i_unet_from_t2v
from stillmoving.pipeline import StillMovingPipeline


def _local_or_hub(path: str | Path) -> str:
    """A local folder as is; anything else must be a Hub id, which is refused while offline."""
    import os

    if Path(path).exists():
        return str(path)
    if os.environ.get("HF_HUB_OFFLINE") == "1" or "/" not in str(path) or str(path).startswith((".", "/")):
        raise StillMovingError(f"no such model folder: {path}")
    return str(path)


def _model_index(path: str) -> dict:
    index = Path(path) / "model_index.json"
    return json.loads(index.read_text()) if index.is_file() else {}


def load_t2v(model: str | Path, motion_modules: str | Path | None = None,
             dtype: torch.dtype = torch.float32) -> StillMovingPipeline:
    """V: an AnimateDiff folder, or an SD folder + AnimateDiff motion modules (a MotionAdapter folder)."""
    model = _local_or_hub(model)
    kwargs = {"dtype": dtype}
    if motion_modules is not None:
        kwargs["motion_adapter"] = MotionAdapter.from_pretrained(_local_or_hub(motion_modules), dtype=dtype)
    elif Path(model).exists() and _model_index(model).get("unet", [None, None])[1] != "UNetMotionModel":
        raise StillMovingError(f"{model} is not an AnimateDiff pipeline folder; pass its motion modules too")
    try:
        pipe = StillMovingPipeline.from_pretrained(model, **kwargs)
    except (OSError, ValueError, EnvironmentError) as error:
        raise StillMovingError(f"cannot load the video model from {model}: {str(error).splitlines()[0]}") from None
    pipe.set_progress_bar_config(leave=False)
    return pipe


@dataclass
class CustomizedT2I:
    """M1: a customized UNet, and a customized text encoder when the customization trained one."""

    unet: UNet2DConditionModel
    text_encoder: CLIPTextModel | None
    source: str  # what it was made from, for metadata and reports


def _load_unet_folder(path: Path, dtype: torch.dtype) -> tuple[UNet2DConditionModel, CLIPTextModel | None]:
    if (path / "unet").is_dir():
        unet = UNet2DConditionModel.from_pretrained(path, subfolder="unet", dtype=dtype)
        has_text = (path / "text_encoder").is_dir()
        text = CLIPTextModel.from_pretrained(path, subfolder="text_encoder", dtype=dtype) if has_text else None
        return unet, text
    if (path / "config.json").is_file():
        return UNet2DConditionModel.from_pretrained(path, dtype=dtype), None
    raise StillMovingError(f"{path} holds neither a diffusers UNet (config.json) nor a pipeline (unet/)")


def fuse_loras(t2i: StableDiffusionPipeline, loras: list[tuple[str, float]]) -> None:
    """Load LoRA files into a T2I pipeline and fuse them at their weights (diffusers' loaders)."""
    names = []
    for i, (path, _) in enumerate(loras):
        if not Path(path).exists():
            raise StillMovingError(f"no such LoRA file: {path}")
        file = Path(path)
        directory, weight_name = (file.parent, file.name) if file.is_file() else (file, None)
        t2i.load_lora_weights(str(directory), weight_name=weight_name, adapter_name=f"lora{i}")
        names.append(f"lora{i}")
    t2i.set_adapters(names, adapter_weights=[w for _, w in loras])
    t2i.fuse_lora(adapter_names=names, lora_scale=1.0)
    t2i.unload_lora_weights()


def t2i_pipeline(t2v: StillMovingPipeline, unet: UNet2DConditionModel,
                 text_encoder: torch.nn.Module | None = None) -> StableDiffusionPipeline:
    """A Stable Diffusion pipeline sharing V's VAE, tokenizer and scheduler, with the given UNet."""
    pipe = StableDiffusionPipeline(
        vae=t2v.vae, text_encoder=text_encoder or t2v.text_encoder, tokenizer=t2v.tokenizer, unet=unet,
        scheduler=t2v.scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(leave=False)
    return pipe


def load_customized(t2v: StillMovingPipeline, customized: str | Path | None = None,
                    loras: list[tuple[str, float]] = ()) -> CustomizedT2I:
    """M1 from a folder, or from a base (the folder, else V's own T2I) plus LoRA files fused in."""
    if customized is None and not loras:
        raise StillMovingError("give a customized T2I: a UNet/pipeline folder, LoRA files, or both")
    dtype = t2v.unet.dtype
    if customized is not None:
        unet, text = _load_unet_folder(Path(_local_or_hub(customized)), dtype)
    else:
        unet, text = t2i_unet_from_t2v(t2v.unet), None
    if loras:
        # Fusing changes the text encoder in place; keep V's own untouched for prior videos.
        text = text or copy.deepcopy(t2v.text_encoder)
        fuse_loras(t2i_pipeline(t2v, unet, text), list(loras))
        if all(torch.equal(a, b) for a, b in zip(text.state_dict().values(), t2v.text_encoder.state_dict().values())):
            text = None
    source = ", ".join([str(customized)] * (customized is not None) + [f"{p}@{w}" for p, w in loras])
    return CustomizedT2I(unet=unet.to(t2v.unet.device), text_encoder=text, source=source)


def read_customization(folder: str | Path) -> dict:
    """The record `customize` writes: model, motion modules, customized T2I, LoRAs, adapters."""
    record = Path(folder) / "customization.json"
    if not record.is_file():
        raise StillMovingError(f"{folder} is not a customization folder (no customization.json)")
    sources = json.loads(record.read_text())
    sources["spatial_adapters"] = str(Path(folder) / sources["spatial_adapters"])
    return sources


def assemble_pipeline(model: str, motion_modules: str | None = None, customized: str | None = None,
                      loras: list[tuple[str, float]] = (), spatial_adapters: str | None = None,
                      motion_adapter: str | None = None, device: str = "cpu",
                      dtype: torch.dtype = torch.float32) -> StillMovingPipeline:
    """V, with M1 injected when given, spatial adapters attached, and the motion adapter loaded (alpha 0)."""
    pipe = load_t2v(model, motion_modules, dtype=dtype)
    if customized or loras:
        m1 = load_customized(pipe, customized, loras)
        pipe.inject_customized(m1.unet, m1.text_encoder)
    if motion_adapter:
        pipe.load_motion_adapter(motion_adapter)
    pipe.to(device)
    if spatial_adapters:
        pipe.load_spatial_adapters(spatial_adapters)
    return pipe
