"""LoRA files in the layouts users bring: kohya/civitai (`lora_unet_*`, alphas), diffusers (`unet.*`), peft.

diffusers' `lora_state_dict` converts kohya and diffusers layouts; a peft `adapter_model.safetensors`
(`base_model.model.<module>.lora_A.weight`) needs its prefix turned into diffusers' `unet.` (or
`text_encoder.` for a CLIP text model's `text_model.*` modules), and the `lora_alpha / r` of the
`adapter_config.json` beside it folded into `lora_B` (diffusers reads no alpha from a peft file).
Every LoRA is checked against the T2I it goes into before anything is loaded: a LoRA for another
architecture (an SDXL LoRA into SD1.5) is refused with the first module that does not fit.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import torch
from diffusers import StableDiffusionPipeline

from stillmoving.errors import StillMovingError
from stillmoving.formats.safety import read_state_dict

PEFT_PREFIX = "base_model.model."
PEFT_KEY = re.compile(r"(?:base_model\.model\.)?(.+)\.(lora_[AB]|lora_magnitude_vector)(?:\.weight)?")
TEXT_ROOTS = ("text_model.", "encoder.", "embeddings.", "final_layer_norm.")  # CLIPTextModel's top-level modules
DOWN_KEY = re.compile(r"(lora_A|lora\.down|lora_down|_lora\.down)\.weight$")


def lora_file(path: str | Path) -> Path:
    """A LoRA file, or the one file inside a LoRA folder (diffusers or peft)."""
    path = Path(path)
    if not path.exists():
        raise StillMovingError(f"no such LoRA file: {path}")
    if path.is_file():
        return path
    for name in (
        "pytorch_lora_weights.safetensors",
        "adapter_model.safetensors",
        "pytorch_lora_weights.bin",
        "adapter_model.bin",
    ):
        if (path / name).is_file():
            return path / name
    raise StillMovingError(f"{path} holds no LoRA file (pytorch_lora_weights.safetensors or adapter_model.safetensors)")


def is_peft_layout(state: dict) -> bool:
    """peft's own files name bare module paths (optionally under `base_model.model.`)."""
    return not any(k.startswith(("unet.", "text_encoder.", "lora_")) for k in state) and all(
        PEFT_KEY.fullmatch(k) for k in state
    )


def _peft_scale(module: str, rank: int, config: dict) -> float:
    """peft's `scaling` of one module: lora_alpha / r (or / sqrt(r) with rsLoRA), with alpha_pattern overrides."""
    alpha = config.get("lora_alpha", rank)
    for pattern, value in (config.get("alpha_pattern") or {}).items():
        if re.fullmatch(rf"(.*\.)?(?:{pattern})", module):
            alpha = value
            break
    return alpha / (math.sqrt(rank) if config.get("use_rslora") else rank)


def _peft_config(path: Path) -> dict:
    """The `adapter_config.json` saved beside a peft adapter; without one, alpha = r (scale 1) is assumed."""
    config = path.parent / "adapter_config.json"
    if not config.is_file():
        return {}
    try:
        return json.loads(config.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise StillMovingError(f"{config}: not valid JSON ({error})") from None


def _peft_to_diffusers(state: dict, config: dict) -> dict:
    """peft keys name modules of the model the adapter was saved from: a CLIP text model's start with
    `encoder.`/`embeddings.` (transformers 5) or `text_model.` (older), a UNet's never do. diffusers wants
    them under `text_encoder.` / `unet.`, at scale 1."""
    out = {}
    for key, value in state.items():
        module, kind = PEFT_KEY.fullmatch(key).groups()
        if kind == "lora_B":
            rank = value.shape[1]
            value = value * _peft_scale(module.removeprefix(PEFT_PREFIX), rank, config)
        bare = key.removeprefix(PEFT_PREFIX)
        out[("text_encoder." if bare.startswith(TEXT_ROOTS) else "unet.") + bare] = value
    return out


def read_lora(path: str | Path) -> tuple[Path, dict[str, torch.Tensor]]:
    """A LoRA file and its tensors, peft keys renamed to diffusers' (`unet.<module>.lora_A.weight`)."""
    path = lora_file(path)
    state = read_state_dict(path)
    return path, _peft_to_diffusers(state, _peft_config(path)) if is_peft_layout(state) else state


def _lora_layers(*models: torch.nn.Module, adapter: str) -> int:
    from peft.tuners.lora import LoraLayer

    return sum(isinstance(m, LoraLayer) and adapter in m.lora_A for model in models for m in model.modules())


# The down projection of a cross-attention key projection's LoRA: its input width is the text's. diffusers' converter
# names kohya's `...attn2.processor.to_k_lora.down.weight`, peft's `...attn2.to_k.lora_A.weight`.
CROSS_ATTENTION_DOWN = re.compile(
    r"^unet\..*\.attn2\.(processor\.)?to_k(\.lora_A|\.lora\.down|\.lora_down|_lora\.down)\.weight$"
)


def check_lora_family(converted: dict[str, torch.Tensor], t2i: StableDiffusionPipeline, path: Path) -> None:
    """Refuse, in one line naming both families, a LoRA (diffusers' keys, as `lora_state_dict` converts them) whose
    UNet cross-attention takes text of another width than the T2I's: one made for SDXL into SD1.5, or the reverse.
    A LoRA with a second text encoder's layers is SDXL's whatever its width."""
    from stillmoving.injection import family_name

    width = t2i.unet.config.cross_attention_dim
    key = next((k for k, v in converted.items() if CROSS_ATTENTION_DOWN.match(k) and v.shape[-1] != width), None)
    if key is None:
        return
    sdxl_lora = True if any(k.startswith("text_encoder_2.") for k in converted) else None
    theirs = family_name(int(converted[key].shape[-1]), sdxl_lora)
    ours = family_name(width, getattr(t2i, "text_encoder_2", None) is not None)
    raise StillMovingError(
        f"LoRA {path} does not fit this model: it is for {theirs}, the model's T2I is {ours} ({key} has shape "
        f"{tuple(converted[key].shape)}). Give a LoRA made for {ours.split(' (')[0]}"
    )


def load_lora_checked(t2i: StableDiffusionPipeline, path: str | Path, adapter: str) -> None:
    """`load_lora_weights` (diffusers converts kohya and old layouts), then check every layer found its module.
    `t2i` is a StableDiffusionPipeline, or a StableDiffusionXLPipeline (its converter: `lora_te1_`/`lora_te2_`)."""
    path, state = read_lora(path)
    sdxl = getattr(t2i, "text_encoder_2", None) is not None
    try:
        converted, _ = (type(t2i) if sdxl else StableDiffusionPipeline).lora_state_dict(dict(state))
    except (ValueError, KeyError, RuntimeError) as error:
        raise StillMovingError(f"{path}: not a LoRA diffusers can read ({str(error).splitlines()[0]})") from None
    expected = sum(bool(DOWN_KEY.search(k)) for k in converted)
    if expected == 0:
        raise StillMovingError(
            f"{path}: unrecognised LoRA layout (first key {next(iter(state))!r}); expected "
            f"kohya (lora_unet_*), diffusers (unet.*) or peft (*.lora_A.weight) keys"
        )
    check_lora_family(converted, t2i, path)
    try:
        t2i.load_lora_weights(state, adapter_name=adapter)
    except (ValueError, RuntimeError, KeyError) as error:
        raise StillMovingError(
            f"LoRA {path} does not fit this model (one for another architecture, e.g. SDXL?): "
            f"{str(error).strip().splitlines()[0][:200]}"
        ) from None
    loaded = _lora_layers(t2i.unet, t2i.text_encoder, *([t2i.text_encoder_2] if sdxl else []), adapter=adapter)
    if loaded != expected:
        raise StillMovingError(
            f"LoRA {path} does not fit this model: {expected - loaded} of its {expected} layers "
            f"name modules the model lacks (a LoRA for another architecture, e.g. SDXL?)"
        )
