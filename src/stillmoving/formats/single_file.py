"""Single-file Stable Diffusion checkpoints (original LDM key layout) as diffusers components.

Conversion is diffusers' own `from_single_file`, fed a state dict that `safety.read_state_dict` read
(so no pickle runs code) and a local config folder (so nothing reaches for the Hub): the customized
T2I gets the video model's own T2I config; a base model gets `--config-dir`, by default SD1.5's. An SDXL base
(sd_xl_base_1.0.safetensors, a civitai SDXL checkpoint) gets each component's config from `--config-dir` where it
has one, else SDXL base 1.0's shipped in `configs/sdxl`, and its tokenizers from `--config-dir`
(`sdxl_base_components`).
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
from stillmoving.formats import SHIPPED_CONFIGS, SHIPPED_SDXL_CONFIGS
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


def _convert(cls, state: dict, config: Path, subfolder: str | None, path, dtype, named: Path | None = None):
    """diffusers' `from_single_file` on a local config; `named`: the config folder messages name (default `config`)."""
    try:
        return cls.from_single_file(
            state, config=str(config), subfolder=subfolder, local_files_only=True, torch_dtype=dtype
        )
    except (ValueError, RuntimeError, KeyError, IndexError) as error:
        detail = str(error).splitlines()[0].split(" If you want to instead")[0]  # diffusers' advice does not apply
        raise StillMovingError(
            f"{path} does not fit the {cls.__name__} config in {named or config}: {detail}"
        ) from None


def unet_from_file(
    path: str | Path,
    unet_config: dict,
    dtype: torch.dtype = torch.float32,
    state: dict | None = None,
    check=check_sd1,
    named: Path | None = None,
) -> UNet2DConditionModel:
    """The UNet of an LDM checkpoint, shaped by `unet_config` (a UNet2DConditionModel config dict; `named`: the folder
    it came from, for messages); `check` refuses a checkpoint of another family first (`check_sd1`, `check_sdxl`)."""
    state = state if state is not None else read_state_dict(path)
    check(state, path)
    with tempfile.TemporaryDirectory() as folder:
        config = {**unet_config, "_class_name": "UNet2DConditionModel"}
        (Path(folder) / "config.json").write_text(json.dumps(config))
        return _convert(UNet2DConditionModel, state, Path(folder), None, path, dtype, named)


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


def is_sdxl(state) -> bool:
    """An SDXL checkpoint (original SGM layout; `state`: its tensors or its keys): SDXL's added embedding (pooled
    text + time ids)."""
    return SDXL_ADDED_EMBEDDING in state


def is_sdxl_base_file(path: str | Path, config_dir: str | Path | None) -> bool:
    """Whether a base T2I file is loaded as SDXL, before reading its tensors: a safetensors file by its keys (read
    from its header), a pickle (whose keys cost a full read) by `config_dir`, an SDXL folder's (tokenizer_2/)."""
    from safetensors import safe_open

    if Path(path).suffix.lower() == ".safetensors":
        try:
            with safe_open(str(path), framework="pt") as f:
                return is_sdxl(set(f.keys()))
        except Exception:  # unreadable: read_state_dict says so in one line
            return False
    return config_dir is not None and (Path(config_dir) / "tokenizer_2").is_dir()


def base_components(
    path: str | Path,
    config_dir: str | Path | None = None,
    dtype: torch.dtype = torch.float32,
    state: dict[str, torch.Tensor] | None = None,
) -> dict:
    """UNet, VAE, text encoder (from the file), tokenizer and scheduler (from the config folder) of a base T2I."""
    from diffusers import DDIMScheduler
    from transformers import CLIPTokenizer

    root = config_root(config_dir)
    if not (root / "tokenizer").is_dir():
        raise StillMovingError(
            f"{root} has no tokenizer/ folder; pass --config-dir with an SD1.5 diffusers folder "
            f"(its configs and tokenizer suffice) to load the single file {path}"
        )
    state = state if state is not None else read_state_dict(path)
    unet_config = UNet2DConditionModel.load_config(root, subfolder="unet")
    unet = unet_from_file(path, unet_config, dtype, state, named=root / "unet")
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


SDXL_COMPONENTS = ("unet", "vae", "text_encoder", "text_encoder_2", "scheduler", "motion_adapter")


def sdxl_config_folder(config_dir: str | Path | None, component: str) -> Path:
    """The folder holding an SDXL component's config: `config_dir`'s own where it has one, else SDXL base 1.0's
    (mm_sdxl_v10_beta's for the motion modules) shipped in configs/sdxl."""
    if config_dir is not None:
        folder = Path(config_dir) / component
        if (folder / "config.json").is_file() or (folder / "scheduler_config.json").is_file():
            return folder
    return SHIPPED_SDXL_CONFIGS / component


def _sdxl_scheduler(folder: Path):
    """The scheduler class the config names (as `from_pretrained` of the folder would build), on its config."""
    import diffusers

    config = diffusers.DDIMScheduler.load_config(folder)
    cls = getattr(diffusers, str(config.get("_class_name")), None)
    if cls is None or not hasattr(cls, "from_config"):
        raise StillMovingError(f"{folder}: unknown scheduler class {config.get('_class_name')!r}")
    return cls.from_config(config)


def sdxl_base_components(
    path: str | Path,
    config_dir: str | Path | None,
    dtype: torch.dtype = torch.float32,
    state: dict[str, torch.Tensor] | None = None,
) -> dict:
    """The components of an AnimateDiffSDXLPipeline but its motion modules, from one SDXL checkpoint (original SGM
    layout: `model.diffusion_model.*`, `first_stage_model.*`, `conditioner.embedders.0.transformer.*`,
    `conditioner.embedders.1.model.*`): UNet, VAE and both text encoders converted by diffusers' converters, each
    shaped by `sdxl_config_folder`'s config; both tokenizers, and `force_zeros_for_empty_prompt`, from `config_dir`."""
    from transformers import CLIPTextModelWithProjection, CLIPTokenizer

    missing = [
        name for name in ("tokenizer", "tokenizer_2") if config_dir is None or not (Path(config_dir) / name).is_dir()
    ]
    if missing:
        where = f"{config_dir} has no {missing[0]}/ folder" if config_dir is not None else "no --config-dir"
        raise StillMovingError(
            f"{path} is an SDXL checkpoint and {where}: pass --config-dir with an SDXL diffusers folder "
            "(its tokenizer/ and tokenizer_2/ are read, and its configs where it has them; not its weights)"
        )
    state = state if state is not None else read_state_dict(path)
    check_sdxl(state, path)
    unet_folder = sdxl_config_folder(config_dir, "unet")
    unet = unet_from_file(path, UNet2DConditionModel.load_config(unet_folder), dtype, state, check_sdxl, unet_folder)
    vae = _convert(AutoencoderKL, state, sdxl_config_folder(config_dir, "vae"), None, path, dtype)
    texts = []
    for name, cls, convert, prefix in (
        ("text_encoder", CLIPTextModel, text_encoder_from_state, "conditioner.embedders.0.transformer.*"),
        ("text_encoder_2", CLIPTextModelWithProjection, open_clip_text_encoder_from_state, SDXL_OPEN_CLIP + "*"),
    ):
        text = convert(state, cls(CLIPTextConfig.from_pretrained(sdxl_config_folder(config_dir, name))), path)
        if text is None:
            raise StillMovingError(f"{path} carries no {name.replace('_', ' ')} ({prefix})")
        texts.append(text.to(dtype))
    index = Path(config_dir) / "model_index.json"
    force_zeros = json.loads(index.read_text()).get("force_zeros_for_empty_prompt", True) if index.is_file() else True
    return dict(
        unet=unet,
        vae=vae,
        text_encoder=texts[0],
        text_encoder_2=texts[1],
        tokenizer=CLIPTokenizer.from_pretrained(config_dir, subfolder="tokenizer"),
        tokenizer_2=CLIPTokenizer.from_pretrained(config_dir, subfolder="tokenizer_2"),
        scheduler=_sdxl_scheduler(sdxl_config_folder(config_dir, "scheduler")),
        force_zeros_for_empty_prompt=force_zeros,
    )
