"""What a file holds, for `stillmoving info`: adapters (kind, rank, layers, metadata), AnimateDiff
motion modules (version, positional-table length), the AnimateDiff v3 domain adapter, and the family of a model
file: SD1.x / SD2.x / SDXL by the cross-attention width, AnimateDiff for SD1.5 or SDXL, ModelScope/ZeroScope UNet3D;
and the family of a diffusers pipeline folder."""

from __future__ import annotations

import json
import re
from pathlib import Path

from stillmoving.adapters.motion import PATTERNS, WEIGHT_NAME
from stillmoving.adapters.spatial import FORMAT
from stillmoving.errors import StillMovingError
from stillmoving.formats.safety import read_adapter_file
from stillmoving.run_folder import CUSTOMIZATION, SPATIAL_ADAPTERS, SPATIAL_BLOCKS, SPATIAL_BLOCKS_WHY, load_record
from stillmoving.world.weights import HERE, VIDEO_MODELS

LORA_KEY = re.compile(r"unet\.(.+)\.lora_([AB])\.weight")


def _resolve(path: Path) -> Path:
    """A folder stands for the adapter file inside it."""
    if path.is_dir():
        for name in (SPATIAL_ADAPTERS, WEIGHT_NAME):
            if (path / name).is_file():
                return path / name
        raise StillMovingError(f"{path} holds no {SPATIAL_ADAPTERS} or {WEIGHT_NAME}")
    return path


CROSS_ATTENTION_KEY = "attn2.to_k.weight"  # its input width is the text encoder's: the Stable Diffusion generation
FAMILIES = {768: "SD1.x (cross-attention 768, CLIP ViT-L)", 1024: "SD2.x (cross-attention 1024, OpenCLIP ViT-H)"}
FAMILIES[2048] = "SDXL (cross-attention 2048, CLIP ViT-L + OpenCLIP ViT-bigG)"
WORLD = "the embedded world's (cross-attention 64: SD1.x-shaped, its own small CLIP text encoder)"  # its folders'


def sd_family(tensors: dict) -> str:
    """SD1.x, SD2.x or SDXL, from the input width of the first cross-attention key projection (any layout)."""
    width = next((int(v.shape[1]) for k, v in tensors.items() if k.endswith(CROSS_ATTENTION_KEY)), None)
    return FAMILIES.get(width, f"unknown (cross-attention {width})" if width else "unknown (no cross-attention)")


def _model_type(tensors: dict) -> str:
    from stillmoving.formats.single_file import infer_diffusers_model_type

    try:
        return infer_diffusers_model_type(tensors)
    except (KeyError, IndexError):  # keys of a known type with shapes of none
        return "unrecognised"


def _describe_weights(tensors: dict) -> dict | None:
    """Motion modules, an LDM checkpoint or a kohya/peft LoRA; None for anything else."""
    from stillmoving.formats.domain_adapter import describe_domain_adapter
    from stillmoving.formats.modelscope import refusal, video_unet_layout
    from stillmoving.formats.motion_modules import inspect_motion_modules
    from stillmoving.formats.single_file import LDM_UNET_KEY, is_sdxl

    domain = describe_domain_adapter(tensors)
    if domain is not None:
        return domain
    layout = video_unet_layout(tensors)
    if layout is not None:
        return {
            "kind": f"ModelScope/ZeroScope text-to-video UNet (UNet3DConditionModel, {layout})",
            "family": sd_family(tensors),
            "as --model": refusal("this file", layout).removeprefix("this file is "),
        }
    motion = inspect_motion_modules(tensors)
    if motion is not None:
        layout = "diffusers layout" if motion.version == "diffusers" else motion.version
        sdxl = len(motion.block_channels) == 3  # SD1.5 has four down blocks, SDXL three
        video_unet = any(k.startswith("conv_in.") for k in tensors)  # a whole UNetMotionModel, not the modules
        what = "video UNet (UNetMotionModel)" if video_unet else "motion modules"
        return {
            "kind": f"AnimateDiff{'-SDXL' if sdxl else ''} {what} {layout}"
            + (" (mm_sdxl_v10_beta)" if sdxl and motion.version != "diffusers" else ""),
            "family": f"AnimateDiff for {'SDXL' if sdxl else 'SD1.5'}, "
            + ("like v2 (motion mid block)" if motion.mid_block else f"{motion.max_frames}-frame table, no mid block"),
            "max_frames": motion.max_frames,
            "mid_block": motion.mid_block,
            "block_channels": motion.block_channels,
            "layers_per_block": motion.layers_per_block,
        }
    if any(k.startswith(LDM_UNET_KEY) for k in tensors):
        xl = is_sdxl(tensors)  # SDXL's added embedding: an SDXL base or DreamBooth (SGM layout)
        return {
            "kind": f"Stable Diffusion{' XL' * xl} checkpoint (original LDM layout, one file)",
            "architecture": _model_type(tensors),
            "family": sd_family(tensors),
            "text_encoder": any(k.startswith(("cond_stage_model.", "conditioner.embedders.")) for k in tensors),
            "vae": any(k.startswith("first_stage_model.") for k in tensors),
        }
    if any(k.endswith(CROSS_ATTENTION_KEY) and k.startswith(("down_blocks.", "mid_block.")) for k in tensors):
        return {"kind": "Stable Diffusion UNet (UNet2DConditionModel, diffusers layout)", "family": sd_family(tensors)}
    if any(k.startswith(("lora_unet_", "lora_te")) for k in tensors):
        return {"kind": "LoRA (kohya layout)", "layers": sum(k.endswith("lora_down.weight") for k in tensors)}
    if tensors and all(".lora_" in k for k in tensors):
        return {"kind": "LoRA (peft layout)", "layers": sum(k.endswith("lora_A.weight") for k in tensors)}
    return None


def _json_or_text(value: str):
    """Metadata values are JSON (the models a run used) or plain text (a weights fingerprint)."""
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


VIDEO_UNETS = ("UNetMotionModel", "UNet3DConditionModel")


def describe_pipeline_folder(path: Path) -> dict:
    """A diffusers pipeline folder: its pipeline and UNet classes, the video-model family (`backends`), and the Stable
    Diffusion generation of its spatial layers (the cross-attention width in `unet/config.json`)."""
    from stillmoving.backends import family_of_folder

    index = json.loads((path / "model_index.json").read_text())
    unet = (index.get("unet") or [None, None])[-1]
    video = unet in VIDEO_UNETS or bool((index.get("motion_adapter") or [None])[0])
    summary = {
        "folder": str(path),
        "kind": f"diffusers pipeline folder ({index.get('_class_name')}, {unet})",
        "family": family_of_folder(path).label if video else "text-to-image (no temporal layers)",
    }
    config = path / "unet" / "config.json"
    if config.is_file():
        width = json.loads(config.read_text()).get("cross_attention_dim")
        summary["spatial layers"] = FAMILIES.get(width, f"unknown (cross-attention {width})")
        if path.resolve() in {(HERE / folder).resolve() for folder, _ in VIDEO_MODELS.values()}:
            summary["spatial layers"] = WORLD  # the shipped folders; another model of width 64 stays unknown
    if video:
        summary["generation defaults"] = generation_setting(path)
    return summary


def generation_setting(model: Path) -> str:
    """What the verbs make with a video model folder unless told (`validation.native_settings`), and where it comes
    from."""
    from stillmoving.validation import GENERATION_DEFAULTS, native_settings

    own = native_settings(model)
    source = GENERATION_DEFAULTS if (model / GENERATION_DEFAULTS).is_file() else f"no {GENERATION_DEFAULTS}"
    return (
        f"{own['height']} px, {own['num_frames']} frames, {own['steps']} steps, guidance {own['guidance_scale']:g} "
        f"({source})"
    )


def recorded_blocks(folder: Path) -> dict:
    """What a customization folder's record says `generate` applies, when it names blocks (`naive_check`)."""
    sources = load_record(folder) if folder.is_dir() and (folder / CUSTOMIZATION).is_file() else {}
    if not sources.get(SPATIAL_BLOCKS):
        return {}
    why = sources.get(SPATIAL_BLOCKS_WHY, CUSTOMIZATION)
    return {"generate applies": f"the adapters of the UNet's {sources[SPATIAL_BLOCKS]} blocks only ({why})"}


def describe_file(path: str | Path) -> dict:
    """A summary dict of an adapter file, a motion-module file, a checkpoint, or any other weights file; of a
    diffusers pipeline folder that holds no adapter, `describe_pipeline_folder`."""
    from stillmoving.formats.safety import SAFETENSORS, read_state_dict

    path = Path(path)
    adapters = any((path / name).is_file() for name in (SPATIAL_ADAPTERS, WEIGHT_NAME))
    if path.is_dir() and (path / "model_index.json").is_file() and not adapters:
        return describe_pipeline_folder(path)
    folder = path
    path = _resolve(path)
    if path.suffix.lower() in SAFETENSORS or not path.is_file():
        metadata, tensors = read_adapter_file(path)
    else:  # pickles: read with weights_only, refused when they need more
        metadata, tensors = {}, read_state_dict(path)
    summary = {"file": str(path), "tensors": len(tensors), "parameters": sum(t.numel() for t in tensors.values())}
    if metadata.get("format") == FORMAT:
        placements = json.loads(metadata["placements"])
        extra = {
            k: _json_or_text(v)
            for k, v in metadata.items()
            if k not in ("format", "format_version", "rank", "placements")
        }
        return {
            **summary,
            "kind": "spatial adapters",
            "format_version": metadata.get("format_version"),
            "rank": int(metadata["rank"]),
            "layers": len(placements),
            "placements": [f"{name} ({channels} ch)" for name, channels in placements],
            **extra,
            **recorded_blocks(folder),
        }
    lora = {m.group(1): t for k, t in tensors.items() if (m := LORA_KEY.fullmatch(k)) and m.group(2) == "A"}
    motion = [pattern for pattern in PATTERNS if lora and all(re.fullmatch(pattern, name) for name in lora)]
    if motion:
        ranks = sorted({t.shape[0] for t in lora.values()})
        return {
            **summary,
            "kind": "motion adapter (LoRA on temporal attention q/k/v, diffusers format)",
            "rank": ranks[0] if len(ranks) == 1 else ranks,
            "layers": len(lora),
            **({"family": "ModelScope/ZeroScope (UNet3DConditionModel)"} if motion[0] != PATTERNS[0] else {}),
        }
    if lora:
        return {**summary, "kind": "LoRA (diffusers format)", "layers": len(lora)}
    return {**summary, **(_describe_weights(tensors) or {"kind": "unknown weights file"})}
