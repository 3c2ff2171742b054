"""Loading the models a run needs: the T2V (V) and the customized T2I (M1), from folders or single files.

V is an AnimateDiff (or AnimateDiff-SDXL) pipeline folder, or a base T2I (a Stable Diffusion or SDXL folder, or one
LDM/SGM checkpoint file: SD1.5, or SDXL shaped by `--config-dir`) plus AnimateDiff motion modules (a MotionAdapter
folder, or one v1/v2/v3 motion-module file), or a ModelScope/ZeroScope folder (`TextToVideoSDPipeline`: its temporal
layers are its own, no motion modules).
M1 is a UNet folder, a Stable Diffusion pipeline folder (its UNet, and its text encoder when that was
fine-tuned too; an SDXL pipeline folder's two text encoders), a single-file checkpoint (DreamBooth, civitai), or
the video model's own T2I plus LoRA files (kohya, diffusers or peft layout) fused at given weights. Files are read
by `formats`. What differs by family (SD1.5, SDXL, ZeroScope) is asked of `backends`.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import (
    MotionAdapter,
    StableDiffusionPipeline,
    UNet2DConditionModel,
    UNet3DConditionModel,
    UNetMotionModel,
)
from transformers import CLIPTextModel, CLIPTextModelWithProjection

from stillmoving.backends import SDXL, ZeroScope, backend_of, family_of_folder
from stillmoving.errors import StillMovingError
from stillmoving.few_step import apply_sampler
from stillmoving.formats.domain_adapter import fuse_domain_adapter
from stillmoving.formats.lora_files import load_lora_checked
from stillmoving.formats.modelscope import check_not_original_folder, check_not_video_unet_file
from stillmoving.formats.motion_modules import load_motion_modules_file
from stillmoving.formats.safety import is_weights_file, read_state_dict
from stillmoving.formats.single_file import (
    base_components,
    check_sdxl,
    is_sdxl_base_file,
    open_clip_text_encoder_from_state,
    sdxl_base_components,
    sdxl_config_folder,
    text_encoder_from_state,
    unet_from_file,
)
from stillmoving.injection import (
    delta_weights,
    inject_t2i_weights,
    interpolate_weights,
    spatial_state_dict,
    t2i_config,
    t2i_unet_from_t2v,
)
from stillmoving.pipeline import StillMovingPipeline
from stillmoving.validation import local_or_hub


def _model_index(path: str) -> dict:
    index = Path(path) / "model_index.json"
    return json.loads(index.read_text()) if index.is_file() else {}


def _motion_adapter(
    motion_modules: str, base_unet_config: dict, config_dir: str | Path | None, dtype: torch.dtype
) -> MotionAdapter:
    if is_weights_file(motion_modules):
        return load_motion_modules_file(motion_modules, config_dir, base_unet_config, dtype)
    return MotionAdapter.from_pretrained(local_or_hub(motion_modules), dtype=dtype)


def load_t2v(
    model: str | Path,
    motion_modules: str | Path | None = None,
    dtype: torch.dtype = torch.float32,
    config_dir: str | Path | None = None,
    domain_adapter=None,
    sampler=None,
) -> StillMovingPipeline:
    """V: an AnimateDiff folder, or a base T2I (SD folder or single file) + motion modules (folder or file), with
    an AnimateDiff v3 domain adapter fused into its spatial layers when given (`PATH[:SCALE]`, a record's dict), and
    a few-step setting (`few_step.Sampler`: its scheduler swapped in, AnimateLCM's LoRA fused after the adapter).

    `config_dir` is a diffusers folder whose configs (and tokenizer) shape single files; default SD1.5's.
    """
    pipe = _load_t2v(model, motion_modules, dtype, config_dir)
    fuse_domain_adapter(pipe, domain_adapter)
    apply_sampler(pipe, sampler)
    return pipe


def _load_t2v(model, motion_modules, dtype: torch.dtype, config_dir) -> StillMovingPipeline:
    model = local_or_hub(model)
    kwargs = {"dtype": dtype}
    check_not_original_folder(model)
    if is_weights_file(model):
        check_not_video_unet_file(model)
        if motion_modules is None:
            raise StillMovingError(f"{model} is a single T2I checkpoint; pass its motion modules too")
        if is_sdxl_base_file(model, config_dir):  # AnimateDiff-SDXL: configs --config-dir lacks are SDXL 1.0's
            base, family = sdxl_base_components(model, config_dir, dtype), SDXL
            motion_configs = sdxl_config_folder(config_dir, "motion_adapter")
        else:
            base, family, motion_configs = base_components(model, config_dir, dtype), None, config_dir
        adapter = _motion_adapter(str(motion_modules), dict(base["unet"].config), motion_configs, dtype)
        cls = family.pipeline_class() if family is not None else StillMovingPipeline
        pipe = cls(**base, motion_adapter=adapter, feature_extractor=None, image_encoder=None)
        pipe.set_progress_bar_config(leave=False)
        return pipe
    if family_of_folder(model) is ZeroScope:
        if motion_modules is not None:
            raise StillMovingError(
                f"{model} is a ModelScope/ZeroScope model: its temporal layers are its own; drop --motion-modules"
            )
        return _from_folder(ZeroScope, model, kwargs)
    if motion_modules is not None:
        unet_config = (
            UNet2DConditionModel.load_config(model, subfolder="unet") if (Path(model) / "unet").is_dir() else None
        )
        kwargs["motion_adapter"] = _motion_adapter(str(motion_modules), unet_config, config_dir, dtype)
    elif Path(model).exists() and _model_index(model).get("unet", [None, None])[1] != "UNetMotionModel":
        raise StillMovingError(f"{model} is not an AnimateDiff pipeline folder; pass its motion modules too")
    family = family_of_folder(model)
    if family is SDXL and _model_index(model).get("motion_adapter", [None])[0] is None:
        kwargs.setdefault("motion_adapter", None)  # diffusers' SDXL pipeline requires it; an export has none
    return _from_folder(family, model, kwargs)


def _from_folder(family, model: str, kwargs: dict) -> StillMovingPipeline:
    try:
        pipe = family.pipeline_class().from_pretrained(model, adapters=False, **kwargs)  # adapters: as asked
    except (OSError, ValueError) as error:
        raise StillMovingError(f"cannot load the video model from {model}: {str(error).splitlines()[0]}") from None
    pipe.set_progress_bar_config(leave=False)
    return pipe


def motion_frames_limit(model: str | Path, motion_modules: str | Path | None = None) -> int | None:
    """The motion modules' positional-table length read without loading V (`check_num_frames`' limit, for checks
    before any model loads): a motion-modules folder's config, a motion-module file's table (its header or a
    memory-mapped pickle), else an AnimateDiff folder's UNet config. None where there is no table (ModelScope/ZeroScope)
    or it cannot be read so (`check_num_frames` then checks the loaded model)."""
    from stillmoving.formats.motion_modules import POSITIONAL

    def config_value(path: Path) -> int | None:
        try:
            config = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if config.get("_class_name") == "MotionAdapter":
            return config.get("motion_max_seq_length", 32)  # MotionAdapter's default
        return config.get("motion_max_seq_length")

    if motion_modules is not None:
        path = Path(motion_modules)
        if path.is_dir():
            return config_value(path / "config.json")
        return _positional_length(path, POSITIONAL)
    if Path(model).is_dir():
        return config_value(Path(model) / "unet" / "config.json")
    return None


def _positional_length(path: Path, pattern) -> int | None:
    """The frames of a motion-module file's first positional table (pe: (1, frames, channels)), its tensors unread."""
    from safetensors import safe_open

    try:
        if path.suffix.lower() == ".safetensors":
            with safe_open(str(path), framework="pt") as f:
                key = next((k for k in f.keys() if pattern.fullmatch(k)), None)
                return int(f.get_slice(key).get_shape()[1]) if key else None
        state = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
        while isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        return next((int(v.shape[1]) for k, v in state.items() if pattern.fullmatch(k)), None)
    except Exception:  # unreadable here: the loaders say what is wrong
        return None


def check_frames_fit(limit: int | None, num_frames: int) -> None:
    """Refuse more frames than a positional table of `limit` frames holds (`motion_frames_limit`)."""
    if limit and num_frames > limit:
        raise StillMovingError(
            f"--num-frames {num_frames} is more than the motion modules' positional table holds ({limit} frames); "
            f"ask for at most {limit}"
        )


def check_num_frames(pipe: StillMovingPipeline, num_frames: int, context_length: int | None = None) -> None:
    """Refuse more frames than the motion modules' positional table holds (AnimateDiff v1: 24, v2/v3: 32), in one
    pass or, for long videos, in each FreeNoise context window of `context_length` frames."""
    limit = pipe.unet.config.get("motion_max_seq_length")
    if limit and context_length is not None and context_length > limit:
        raise StillMovingError(
            f"--context-length {context_length} is more than the motion modules' positional table "
            f"holds ({limit} frames); use at most {limit}"
        )
    if limit and context_length is None and num_frames > limit:
        raise StillMovingError(
            f"--num-frames {num_frames} is more than the motion modules' positional table "
            f"holds ({limit} frames); ask for at most {limit}, or make a long video in windows "
            f"(--context-length {limit})"
        )


@dataclass
class CustomizedT2I:
    """M1: a customized UNet, and a customized text encoder when the customization trained one."""

    unet: UNet2DConditionModel
    text_encoder: CLIPTextModel | None
    source: str  # what it was made from, for metadata and reports
    text_encoder_2: CLIPTextModelWithProjection | None = None  # SDXL's second text encoder, when M1 has its own


def _second_text_encoder(path: Path, dtype: torch.dtype) -> CLIPTextModelWithProjection | None:
    """An SDXL pipeline folder's second text encoder; None elsewhere."""
    if not (path / "text_encoder_2").is_dir():
        return None
    return CLIPTextModelWithProjection.from_pretrained(path, subfolder="text_encoder_2", dtype=dtype)


def _load_unet_folder(path: Path, dtype: torch.dtype) -> tuple[UNet2DConditionModel, CLIPTextModel | None]:
    """A T2I pipeline folder, a UNet folder, or an AnimateDiff folder whose spatial layers are the T2I
    (the video model's M: what a LoRA made for M fuses into), a ModelScope/ZeroScope folder's likewise. SDXL's second
    text encoder: `_second_text_encoder`."""
    if (path / "unet").is_dir() and _model_index(path).get("unet", [None, None])[1] == "UNetMotionModel":
        unet = t2i_unet_from_t2v(UNetMotionModel.from_pretrained(path, subfolder="unet", dtype=dtype))
        return unet, CLIPTextModel.from_pretrained(path, subfolder="text_encoder", dtype=dtype)
    if (path / "unet").is_dir() and family_of_folder(path) is ZeroScope:
        unet = ZeroScope(None).t2i_unet(UNet3DConditionModel.from_pretrained(path, subfolder="unet", dtype=dtype))
        return unet, CLIPTextModel.from_pretrained(path, subfolder="text_encoder", dtype=dtype)
    if (path / "unet").is_dir():
        unet = UNet2DConditionModel.from_pretrained(path, subfolder="unet", dtype=dtype)
        has_text = (path / "text_encoder").is_dir()
        text = CLIPTextModel.from_pretrained(path, subfolder="text_encoder", dtype=dtype) if has_text else None
        return unet, text
    if (path / "config.json").is_file():
        return UNet2DConditionModel.from_pretrained(path, dtype=dtype), None
    raise StillMovingError(f"{path} holds neither a diffusers UNet (config.json) nor a pipeline (unet/)")


def _load_unet_file(path: Path, t2v: StillMovingPipeline) -> tuple[UNet2DConditionModel, CLIPTextModel | None]:
    """A single-file checkpoint shaped like V's own T2I; its text encoder only when it differs from V's."""
    state = read_state_dict(path)
    unet = unet_from_file(path, backend_of(t2v).t2i_config(t2v.unet), t2v.unet.dtype, state)
    text = text_encoder_from_state(state, t2v.text_encoder, path)
    if text is not None and _same_weights(text, t2v.text_encoder):
        text = None
    return unet, text


def _load_sdxl_file(path: Path, t2v) -> tuple[UNet2DConditionModel, CLIPTextModel | None, torch.nn.Module | None]:
    """A single-file SDXL checkpoint (A1111/kohya DreamBooth layout) shaped like V's T2I: its UNet, and each text
    encoder it carries only when it differs from V's."""
    state = read_state_dict(path)
    unet = unet_from_file(path, t2i_config(t2v.unet), t2v.unet.dtype, state, check=check_sdxl)
    texts = [
        text_encoder_from_state(state, t2v.text_encoder, path),  # conditioner.embedders.0.transformer.*
        open_clip_text_encoder_from_state(state, t2v.text_encoder_2, path),  # conditioner.embedders.1.model.*
    ]
    text, text_2 = (
        None if text is None or _same_weights(text, own) else text
        for text, own in zip(texts, (t2v.text_encoder, t2v.text_encoder_2))
    )
    return unet, text, text_2


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def fuse_loras(t2i: StableDiffusionPipeline, loras: list[tuple[str, float]]) -> None:
    """Load LoRA files into a T2I pipeline and fuse them at their weights (diffusers' loaders)."""
    names = [f"lora{i}" for i in range(len(loras))]
    for name, (path, _) in zip(names, loras):
        load_lora_checked(t2i, path, name)
    t2i.set_adapters(names, adapter_weights=[w for _, w in loras])
    t2i.fuse_lora(adapter_names=names, lora_scale=1.0)
    t2i.unload_lora_weights()


def t2i_pipeline(
    t2v: StillMovingPipeline,
    unet: UNet2DConditionModel,
    text_encoder: torch.nn.Module | None = None,
    text_encoder_2: torch.nn.Module | None = None,
) -> StableDiffusionPipeline:
    """A Stable Diffusion pipeline (StableDiffusionXLPipeline for AnimateDiff-SDXL) sharing V's VAE, tokenizers, text
    encoders and scheduler, with the given UNet and, where given, M1's own text encoders."""
    return backend_of(t2v).image_pipeline(unet, text_encoder, text_encoder_2)


def load_customized(
    t2v: StillMovingPipeline, customized: str | Path | None = None, loras: list[tuple[str, float]] = ()
) -> CustomizedT2I:
    """M1 from a folder, or from a base (the folder, else V's own T2I) plus LoRA files fused in."""
    if customized is None and not loras:
        raise StillMovingError("give a customized T2I: a UNet/pipeline folder, LoRA files, or both")
    dtype = t2v.unet.dtype
    sdxl = isinstance(backend_of(t2v), SDXL)
    text_2 = None
    if customized is not None:
        path = Path(local_or_hub(customized))
        if sdxl and is_weights_file(path):
            unet, text, text_2 = _load_sdxl_file(path, t2v)
        else:
            unet, text = _load_unet_file(path, t2v) if is_weights_file(path) else _load_unet_folder(path, dtype)
            text_2 = _second_text_encoder(path, dtype) if sdxl and path.is_dir() else None
    else:
        unet, text = backend_of(t2v).t2i_unet(t2v.unet), None
        if getattr(t2v, "lcm_lora", None) is not None:  # fused last into V: undone first
            t2v.lcm_lora.restore(unet)
        if getattr(t2v, "domain_adapter", None) is not None:  # LoRAs are made for the T2I before the adapter
            t2v.domain_adapter.restore(unet)
    if loras:
        # Fusing changes the text encoder in place; keep V's own untouched for prior videos.
        text = text or copy.deepcopy(t2v.text_encoder)
        if sdxl:
            text_2 = text_2 or copy.deepcopy(t2v.text_encoder_2)
        fuse_loras(t2i_pipeline(t2v, unet, text, text_2), list(loras))
        if _same_weights(text, t2v.text_encoder):
            text = None
        if sdxl and _same_weights(text_2, t2v.text_encoder_2):
            text_2 = None
    if getattr(t2v, "lcm_lora", None) is not None:  # AnimateLCM's LoRA plugs into the personalized T2I too
        t2v.lcm_lora.fuse_into(t2i_pipeline(t2v, unet, text, text_2))
    source = ", ".join([str(customized)] * (customized is not None) + [f"{p}@{w}" for p, w in loras])
    return CustomizedT2I(unet=unet.to(t2v.unet.device), text_encoder=text, source=source, text_encoder_2=text_2)


def assemble_pipeline(
    model: str,
    motion_modules: str | None = None,
    customized: str | None = None,
    loras: list[tuple[str, float]] = (),
    spatial_adapters: str | None = None,
    motion_adapter: str | None = None,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
    config_dir: str | None = None,
    domain_adapter=None,
    sampler=None,
    spatial_scale: float = 1.0,
    spatial_min_timestep: int | None = None,
    spatial_blocks: str | None = None,
    base_t2i: str | None = None,
) -> StillMovingPipeline:
    """V (its domain adapter fused, its few-step setting applied), with M1 injected when given (in place of V's
    spatial weights; with `base_t2i`, the T2I M that M1 was made from, as V + (M1 - M): `delta_weights`), spatial
    adapters attached at strength `spatial_scale` (acting from `spatial_min_timestep` up; default: the file's; in the
    UNet's `spatial_blocks` only; default: every one of the file), and the motion adapter loaded (alpha 0)."""
    pipe = load_t2v(
        model, motion_modules, dtype=dtype, config_dir=config_dir, domain_adapter=domain_adapter, sampler=sampler
    )
    if customized or loras:
        m1 = load_customized(pipe, customized, loras)
        unet = m1.unet
        if base_t2i is not None:
            own = backend_of(pipe).t2i_unet(pipe.unet).state_dict()
            unet = delta_weights(own, load_customized(pipe, base_t2i).unet.state_dict(), m1.unet.state_dict())
        pipe.inject_customized(unet, m1.text_encoder, m1.text_encoder_2)
    if motion_adapter:
        pipe.load_motion_adapter(motion_adapter)
    pipe.to(device)
    if spatial_adapters:
        pipe.load_spatial_adapters(spatial_adapters, spatial_scale, spatial_min_timestep, spatial_blocks)
    return pipe


def assemble_interpolated(
    model: str,
    weight: float,
    motion_modules: str | None = None,
    customized: str | None = None,
    loras: list[tuple[str, float]] = (),
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
    config_dir: str | None = None,
    domain_adapter=None,
    sampler=None,
) -> StillMovingPipeline:
    """Weight interpolation, the paper's baseline: V with its T2I part (and text encoder, where M1 has its
    own) at V's T2I + w (M1 - V's T2I); w = 1 is naive injection, w = 0 is V."""
    pipe = load_t2v(
        model, motion_modules, dtype=dtype, config_dir=config_dir, domain_adapter=domain_adapter, sampler=sampler
    )
    m1 = load_customized(pipe, customized, loras)
    customized_state = backend_of(pipe).map_t2i_state(m1.unet.state_dict())  # in V's names and shapes
    inject_t2i_weights(pipe.unet, interpolate_weights(spatial_state_dict(pipe.unet), customized_state, weight))
    if m1.text_encoder is not None:
        pipe.text_encoder.load_state_dict(
            interpolate_weights(pipe.text_encoder.state_dict(), m1.text_encoder.state_dict(), weight)
        )
    if m1.text_encoder_2 is not None:  # SDXL
        pipe.text_encoder_2.load_state_dict(
            interpolate_weights(pipe.text_encoder_2.state_dict(), m1.text_encoder_2.state_dict(), weight)
        )
    return pipe.to(device)
