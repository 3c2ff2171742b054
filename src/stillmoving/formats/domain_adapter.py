"""The AnimateDiff v3 domain adapter: a LoRA on the spatial layers, fused into the video model V before anything else.

AnimateDiff v3 trains `v3_sd15_adapter.ckpt` together with its motion modules, to absorb the look of the training
videos, and uses it fused at a scale (`adapter_lora_scale`). With it fused, V's spatial layers are no longer the SD1.5
that users' DreamBooths and LoRAs were made from: the mismatch Still-Moving's spatial adapters repair. So it is part of
V: `load_t2v(..., domain_adapter=...)` fuses it into V's UNet before M1 is injected, and prior videos, stage 1 and
plain generation all see the adapted V. Injecting M1 replaces every spatial weight, the adapted ones included; a
customized T2I made of LoRAs alone starts from V's T2I as it was before the adapter (`FusedDomainAdapter.original`).

Layouts: the original file (AnimateDiff's attention-processor keys, `<module>.processor.to_q_lora.down.weight`, no
prefix, no alpha: W += scale * up @ down), diffusers' (`unet.<module>.lora_A.weight`), peft's, and kohya's
(`lora_unet_<module>.lora_down.weight`, ComfyUI's repack). Fusing is diffusers' own (`load_lora_weights`, `fuse_lora`,
`unload_lora_weights`); the original layout only gets the `unet.` prefix, without which diffusers 0.42 silently loads
nothing, and diffusers converts the rest. Every layer is checked against V before loading.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from stillmoving.errors import StillMovingError

ADAPTER_NAME = "domain_adapter"  # the peft adapter name while it is loaded, before fusing
ORIGINAL_KEY = re.compile(r"(?:unet\.)?(.+)\.processor\.(to_q|to_k|to_v|to_out)_lora\.(down|up)\.weight")
PEFT_KEY = re.compile(r"(.+)\.lora_([AB])\.weight")
FLAG = "--domain-adapter"


@dataclass(frozen=True)
class DomainAdapter:
    """What the user asked for: a file (or LoRA folder) fused at `scale`; `fingerprint` when read from a record,
    which the file must still have."""

    path: str
    scale: float = 1.0
    fingerprint: str | None = None

    def record(self) -> dict:
        """`customization.json`'s entry: the absolute path, the scale and the file's fingerprint."""
        from stillmoving.fingerprint import file_fingerprint

        path = adapter_file(self.path)
        return {"path": str(path.resolve()), "scale": self.scale, "fingerprint": file_fingerprint(path)}


def _scale(text: str, spec: str) -> float:
    try:
        scale = float(text)
    except ValueError:
        raise StillMovingError(f"bad {FLAG} {spec!r}: SCALE must be a number (PATH or PATH:SCALE)") from None
    if not math.isfinite(scale):
        raise StillMovingError(f"bad {FLAG} {spec!r}: SCALE must be a finite number, not {text}")
    return scale


def parse_domain_adapter(spec) -> DomainAdapter | None:
    """`PATH` or `PATH:SCALE` (scale 1 by default), a record's dict, a DomainAdapter, or None."""
    if spec is None or spec == "" or isinstance(spec, DomainAdapter):
        return spec or None
    if isinstance(spec, dict):
        return DomainAdapter(str(spec["path"]), _scale(str(spec.get("scale", 1.0)), str(spec)), spec.get("fingerprint"))
    spec = str(spec)
    path, colon, scale = spec.rpartition(":")
    if not colon or Path(spec).exists():
        return DomainAdapter(spec)
    return DomainAdapter(path, _scale(scale, spec))


def adapter_file(path: str | Path) -> Path:
    """The adapter file: the path itself, or the one LoRA file in a diffusers or peft folder."""
    from stillmoving.formats.lora_files import lora_file

    path = Path(path)
    if not path.exists():
        raise StillMovingError(f"no such domain adapter file: {path}")
    return lora_file(path)


@dataclass
class AdapterLayers:
    """A domain-adapter file read and checked: its layout, the state dict diffusers loads, and its layers."""

    path: Path
    layout: str  # original | diffusers | peft | kohya
    state: dict[str, torch.Tensor]  # what `load_lora_weights` is given
    layers: dict[str, tuple[torch.Tensor, torch.Tensor]]  # UNet module -> (down (r, in), up (out, r)), unscaled

    @property
    def rank(self) -> int:
        ranks = sorted({down.shape[0] for down, _ in self.layers.values()})
        return ranks[0] if len(ranks) == 1 else ranks[-1]


def _not_a_lora(state: dict, path: Path, what: str = "a domain adapter") -> StillMovingError:
    from diffusers.loaders.single_file_utils import LDM_UNET_KEY

    from stillmoving.formats.motion_modules import inspect_motion_modules

    if inspect_motion_modules(state) is not None:
        held = "AnimateDiff motion modules (pass them as --motion-modules)"
    elif any(k.startswith(LDM_UNET_KEY) for k in state):
        held = "a full Stable Diffusion checkpoint (a customized T2I is --customized)"
    else:
        held = f"no LoRA layers (first key {next(iter(state))!r})"
    return StillMovingError(f"{path} is not {what} (a spatial LoRA): it holds {held}")


def _layout(state: dict) -> str:
    if all(ORIGINAL_KEY.fullmatch(k) for k in state):
        return "original"
    if any(k.startswith(("lora_unet_", "lora_te")) for k in state):
        return "kohya"
    return "diffusers"


def layers_of(
    state: dict, path: Path, what: str = "a domain adapter"
) -> tuple[str, dict[str, tuple[torch.Tensor, torch.Tensor]], dict]:
    """The layout, the UNet layers ({module: (down, up)}) and the state dict for diffusers, of a LoRA state dict
    (peft keys already renamed by `lora_files.read_lora`). Conversions are diffusers' own. `what` names the file's
    role in messages (an LCM LoRA: `few_step`)."""
    from diffusers import StableDiffusionPipeline
    from diffusers.utils.state_dict_utils import convert_unet_state_dict_to_peft

    lora_keys = [k for k in state if "lora" in k]
    if not lora_keys:
        raise _not_a_lora(state, path, what)
    motion = next((k for k in lora_keys if "motion_modules" in k or "temporal" in k), None)
    if motion is not None:
        raise StillMovingError(
            f"{path} is a motion LoRA (it changes motion modules, e.g. {motion!r}), not {what}: "
            f"{what} changes only V's spatial layers"
        )
    layout = _layout(state)
    if layout == "original":
        state = {k if k.startswith("unet.") else "unet." + k: v for k, v in state.items()}
    try:
        converted, alphas = StableDiffusionPipeline.lora_state_dict(dict(state))
    except (ValueError, KeyError, RuntimeError) as error:
        raise StillMovingError(f"{path}: not a LoRA diffusers can read ({str(error).splitlines()[0]})") from None
    text = next((k for k in converted if k.startswith("text_encoder.")), None)
    if text is not None:
        raise StillMovingError(
            f"{path} has text-encoder layers ({text!r}); {what} changes only the UNet's spatial layers"
        )
    unet = {k.removeprefix("unet."): v for k, v in converted.items() if k.startswith("unet.")}
    peft = convert_unet_state_dict_to_peft(unet)
    parts: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in peft.items():
        match = PEFT_KEY.fullmatch(key)
        if match is None:
            continue  # kohya alphas, biases
        parts.setdefault(match.group(1), {})[match.group(2)] = value
    incomplete = next((m for m, p in parts.items() if len(p) != 2), None)
    if not parts or incomplete is not None:
        raise StillMovingError(
            f"{path}: unrecognised LoRA layout (first key {next(iter(state))!r}); expected AnimateDiff's "
            f"(*.processor.to_q_lora.down.weight), diffusers' (unet.*), peft's or kohya's (lora_unet_*) keys"
        )
    layers = {}
    for module, p in parts.items():
        alpha = (alphas or {}).get(f"unet.{module}.alpha")
        scale = float(alpha) / p["A"].shape[0] if alpha is not None else 1.0  # kohya's alpha / rank, as diffusers
        layers[module] = (p["A"], p["B"] * scale)
    return layout, layers, state


def read_domain_adapter(path: str | Path) -> AdapterLayers:
    """A domain-adapter file (any layout), refused unless it is a LoRA on UNet layers outside the motion modules."""
    from stillmoving.formats.lora_files import is_peft_layout, read_lora
    from stillmoving.formats.safety import read_state_dict

    file = adapter_file(path)
    peft = is_peft_layout(read_state_dict(file))
    file, state = read_lora(file)  # peft keys renamed to diffusers', alpha / r folded in
    layout, layers, state = layers_of(state, file)
    return AdapterLayers(file, "peft" if peft else layout, state, layers)


def check_fits(unet: torch.nn.Module, adapter: AdapterLayers) -> None:
    """Every layer names a linear (or 1x1 convolution) layer of V's UNet outside the motion modules, with the
    adapter's input and output widths; else one line naming the key and the shapes."""
    modules = dict(unet.named_modules())
    for module, (down, up) in adapter.layers.items():
        layer = modules.get(module)
        weight = getattr(layer, "weight", None)
        if layer is None or weight is None or weight.ndim not in (2, 4):
            raise StillMovingError(
                f"domain adapter {adapter.path} does not fit the video model: its layer {module!r} "
                f"{tuple(down.shape)} names no linear layer of V's UNet (an adapter for another architecture?)"
            )
        out_features, in_features = weight.shape[:2]
        if down.shape[-1] != in_features or up.shape[0] != out_features:
            raise StillMovingError(
                f"domain adapter {adapter.path} does not fit the video model: {module} has down "
                f"{tuple(down.shape)} and up {tuple(up.shape)}, the video model's layer is "
                f"{in_features} -> {out_features} (an adapter for another architecture, e.g. SDXL?)"
            )


@dataclass
class FusedDomainAdapter:
    """A domain adapter fused into V: what `customization.json` records, and the weights it replaced."""

    spec: DomainAdapter
    record: dict  # path, scale, fingerprint
    layout: str
    rank: int
    layers: int
    original: dict[str, torch.Tensor]  # V's UNet weights before fusing, of the layers it changed (on the CPU)

    def restore(self, t2i: torch.nn.Module) -> None:
        """Put V's pre-adapter weights back into a T2I UNet rebuilt from the adapted V (same spatial names)."""
        target = t2i.state_dict()
        with torch.no_grad():
            for key, value in self.original.items():
                target[key].copy_(value)


def _loaded_layers(unet: torch.nn.Module) -> int:
    from peft.tuners.lora import LoraLayer

    return sum(isinstance(m, LoraLayer) and ADAPTER_NAME in m.lora_A for m in unet.modules())


def fuse_domain_adapter(pipe, spec) -> FusedDomainAdapter | None:
    """Fuse a domain adapter into V's UNet at its scale (diffusers' loader), in place; records it as
    `pipe.domain_adapter`. `spec`: PATH[:SCALE], a record's dict or a DomainAdapter; None does nothing."""
    spec = parse_domain_adapter(spec)
    if spec is None:
        return None
    adapter = read_domain_adapter(spec.path)
    record = spec.record()
    if spec.fingerprint is not None and spec.fingerprint != record["fingerprint"]:
        raise StillMovingError(
            f"domain adapter {adapter.path} changed since it was recorded (fingerprint {record['fingerprint']}, "
            f"recorded {spec.fingerprint}); put the recorded file back, or pass {FLAG} to use this one"
        )
    check_fits(pipe.unet, adapter)
    original = {f"{m}.weight": pipe.unet.get_submodule(m).weight.detach().to("cpu", copy=True) for m in adapter.layers}
    try:
        pipe.load_lora_weights(dict(adapter.state), adapter_name=ADAPTER_NAME)
    except (ValueError, RuntimeError, KeyError) as error:
        raise StillMovingError(
            f"domain adapter {adapter.path} does not fit the video model: {str(error).strip().splitlines()[0][:200]}"
        ) from None
    loaded = _loaded_layers(pipe.unet)
    if loaded != len(adapter.layers):
        pipe.unload_lora_weights()
        raise StillMovingError(
            f"domain adapter {adapter.path}: diffusers loaded {loaded} of its {len(adapter.layers)} layers"
        )
    pipe.fuse_lora(components=["unet"], lora_scale=spec.scale, adapter_names=[ADAPTER_NAME])
    pipe.unload_lora_weights()
    fused = FusedDomainAdapter(spec, record, adapter.layout, adapter.rank, len(adapter.layers), original)
    pipe.domain_adapter = fused
    return fused


def check_domain_adapter(spec) -> DomainAdapter | None:
    """Before any model loads: the spec parses, the file is there and is a spatial LoRA."""
    spec = parse_domain_adapter(spec)
    if spec is not None:
        read_domain_adapter(spec.path)
    return spec


def describe_domain_adapter(state: dict) -> dict | None:
    """`stillmoving info`'s summary of a file in AnimateDiff's original domain-adapter layout, else None."""
    if not state or not all(ORIGINAL_KEY.fullmatch(k) for k in state) or any("motion_modules" in k for k in state):
        return None
    downs = [v for k, v in state.items() if k.endswith(".down.weight")]
    ranks = sorted({v.shape[0] for v in downs})
    rank = ranks[0] if len(ranks) == 1 else ranks
    return {
        "kind": f"AnimateDiff v3 domain adapter (spatial LoRA, rank {rank}, {len(downs)} layers)",
        "layout": "original AnimateDiff (attention-processor keys); use with --domain-adapter PATH[:SCALE]",
        "rank": rank,
        "layers": len(downs),
    }
