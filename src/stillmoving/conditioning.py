"""Conditional generation (the paper's third application): ControlNets, the videos that drive them, and
video-to-video input, read and checked before any model loads.

A ControlNet is a diffusers `ControlNetModel` folder (its `config.json` names the class; a pipeline folder with a
`controlnet/` sub-folder works too) or one weights file: the original ControlNet layout (`control_v11p_sd15_*.pth`,
`.safetensors`: `input_hint_block`, `zero_convs`, ...) converted by diffusers' own `convert_controlnet_checkpoint`,
or diffusers' layout saved as one file. Files are read by `formats.safety` (safetensors, or pickles restricted to
tensors); a single file takes its architecture from the video model's T2I, as SD1.5 ControlNets share SD1.5's.

A control video has one conditioning frame per output frame (mp4, gif, webm, mov or a folder of frames), already
preprocessed (a pose skeleton, a depth map, edges; for the embedded world, the object's silhouette, white on
black), at the output's size. The video-to-video input (`--video`) follows the same rule.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from diffusers import ControlNetModel
from PIL import Image

from stillmoving.errors import StillMovingError
from stillmoving.formats.safety import is_weights_file, read_state_dict
from stillmoving.validation import ANIMATEDIFF_FRAMES, SD_SIZE

CONTROLNET_CLASS = "ControlNetModel"
DIFFUSERS_EMBEDDING = "controlnet_cond_embedding."  # diffusers' layout: the conditioning embedding's prefix
ORIGINAL_EMBEDDING = "input_hint_block."  # the original ControlNet layout's (lllyasviel/ControlNet)
# What must agree between a ControlNet and the video model's T2I for its residuals to add up.
MATCHING = ("in_channels", "block_out_channels", "layers_per_block", "cross_attention_dim")


@dataclass(frozen=True)
class ControlNetSpec:
    """One `--controlnet PATH[:SCALE]`."""

    path: str
    scale: float = 1.0


def parse_controlnet(spec: str) -> ControlNetSpec:
    """`PATH` or `PATH:SCALE` (the last colon splits, so a path may hold colons when a scale is given)."""
    path, _, scale = spec.rpartition(":")
    if not path:
        return ControlNetSpec(spec)
    try:
        return ControlNetSpec(path, float(scale))
    except ValueError:
        if Path(spec).exists():
            return ControlNetSpec(spec)
        raise StillMovingError(f"bad --controlnet {spec!r}: use PATH or PATH:SCALE") from None


def _folder_config(path: Path) -> tuple[Path, dict]:
    """The ControlNet folder (the path, or its `controlnet/` sub-folder) and its config."""
    for folder in (path, path / "controlnet"):
        config = folder / "config.json"
        if config.is_file():
            try:
                values = json.loads(config.read_text())
            except (OSError, ValueError) as error:
                raise StillMovingError(f"cannot read {config}: {error}") from None
            if values.get("_class_name") == CONTROLNET_CLASS:
                return folder, values
            raise StillMovingError(
                f"--controlnet {path}: {config} describes a {values.get('_class_name')!r}, not a {CONTROLNET_CLASS}"
            )
    raise StillMovingError(f"--controlnet {path}: not a diffusers ControlNet folder (no config.json)")


def check_controlnet_source(spec: ControlNetSpec) -> None:
    """The path is a ControlNet folder or a weights file (its contents are checked on loading)."""
    path = Path(spec.path)
    if not path.exists():
        raise StillMovingError(f"--controlnet {path}: no such file or folder")
    if path.is_dir():
        _folder_config(path)
    elif not is_weights_file(path):
        raise StillMovingError(f"--controlnet {path}: expected a diffusers folder or a .safetensors/.ckpt/.pth file")


def conditioning_factor(config: dict) -> int:
    """Pixels per latent of a ControlNet's conditioning embedding (2 per stride-2 convolution)."""
    return 2 ** (len(config.get("conditioning_embedding_out_channels", (16, 32, 96, 256))) - 1)


def check_fits(config: dict, unet_config: dict, vae_factor: int, path: str | Path) -> None:
    """The ControlNet's residuals fit the video model's T2I: same blocks, channels and text width, and its
    conditioning embedding brings frames to the latents' size."""
    for key in MATCHING:
        ours, theirs = config.get(key), unet_config.get(key)
        if ours is not None and theirs is not None and list(np.atleast_1d(ours)) != list(np.atleast_1d(theirs)):
            raise StillMovingError(
                f"--controlnet {path} is not for this video model: its {key} is {ours}, the video model's T2I has "
                f"{theirs} (an SDXL or SD2 ControlNet on an SD1.5 model?)"
            )
    if conditioning_factor(config) != vae_factor:
        raise StillMovingError(
            f"--controlnet {path} is not for this video model: it brings conditioning frames down "
            f"{conditioning_factor(config)}x, the video model's latents are {vae_factor}x smaller than its frames"
        )


def controlnet_config(unet_config: dict, embedding: list[int], conditioning_channels: int = 3) -> dict:
    """A ControlNetModel config for a T2I UNet config (what `ControlNetModel.from_unet` builds), with the given
    conditioning embedding."""
    accepted = inspect.signature(ControlNetModel.__init__).parameters
    config = {k: v for k, v in unet_config.items() if k in accepted and not k.startswith("_")}
    embedding_config = {"conditioning_embedding_out_channels": list(embedding)}
    return config | embedding_config | {"conditioning_channels": conditioning_channels}


def _embedding_channels(state: dict[str, torch.Tensor], path: Path) -> tuple[list[int], int]:
    """Conditioning embedding widths and input channels read from diffusers-layout tensors."""
    conv_in = state.get(f"{DIFFUSERS_EMBEDDING}conv_in.weight")
    if conv_in is None:
        raise StillMovingError(f"--controlnet {path}: no conditioning embedding in the file (is it a ControlNet?)")
    blocks = sorted(
        int(k.split(".")[2]) for k in state if k.startswith(f"{DIFFUSERS_EMBEDDING}blocks.") and k.endswith(".weight")
    )
    widths = [conv_in.shape[0]] + [state[f"{DIFFUSERS_EMBEDDING}blocks.{i}.weight"].shape[0] for i in blocks[1::2]]
    return widths, conv_in.shape[1]


def _load_file(path: Path, unet_config: dict, vae_factor: int, dtype: torch.dtype) -> ControlNetModel:
    from diffusers.loaders.single_file_utils import convert_controlnet_checkpoint

    state = read_state_dict(path)
    original = any(ORIGINAL_EMBEDDING in k for k in state)
    if not original and not any(k.startswith(DIFFUSERS_EMBEDDING) for k in state):
        raise StillMovingError(
            f"--controlnet {path} is not a ControlNet: it has no conditioning embedding "
            f"({DIFFUSERS_EMBEDDING}* or {ORIGINAL_EMBEDDING}* tensors); is it a UNet, LoRA or motion-module file?"
        )
    if original:
        try:
            state = convert_controlnet_checkpoint(state, dict(unet_config))
        except (KeyError, IndexError, RuntimeError) as error:
            raise StillMovingError(f"--controlnet {path}: cannot convert its original layout ({error!r})") from None
    widths, channels = _embedding_channels(state, path)
    config = controlnet_config(unet_config, widths, channels)
    check_fits(config, unet_config, vae_factor, path)
    model = ControlNetModel.from_config(config)
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as error:
        detail = next((line.strip() for line in str(error).splitlines() if "size mismatch" in line), str(error))
        raise StillMovingError(f"--controlnet {path} does not fit the video model's T2I ({detail[:200]})") from None
    if missing or unexpected:
        names = ", ".join((missing or unexpected)[:3])
        raise StillMovingError(
            f"--controlnet {path} does not fit the video model's T2I: "
            f"{len(missing)} tensors missing, {len(unexpected)} unexpected (e.g. {names})"
        )
    return model.to(dtype=dtype).eval()


def load_controlnet(
    spec: ControlNetSpec, unet_config: dict, vae_factor: int, dtype: torch.dtype = torch.float32
) -> ControlNetModel:
    """A ControlNet for a video model whose T2I has `unet_config` (`injection.t2i_config`)."""
    check_controlnet_source(spec)
    path = Path(spec.path)
    if path.is_file():
        return _load_file(path, unet_config, vae_factor, dtype)
    folder, config = _folder_config(path)
    check_fits(config, unet_config, vae_factor, path)
    try:
        model = ControlNetModel.from_pretrained(folder, torch_dtype=dtype)
    except (OSError, ValueError, RuntimeError, KeyError) as error:
        raise StillMovingError(f"cannot load the ControlNet {path}: {str(error).splitlines()[0][:200]}") from None
    return model.eval()


# ----------------------------------------------------------------------------- videos


def frames_as_images(frames: np.ndarray) -> list[Image.Image]:
    """uint8 (F, H, W, 3) as the list of PIL frames diffusers' video pipelines take."""
    return [Image.fromarray(frame) for frame in frames]


@dataclass
class Conditioning:
    """What a conditional generation adds to a prompt: ControlNets with their control videos (one per
    ControlNet, uint8 (F, H, W, 3)), and/or an input video for video-to-video with its strength."""

    controlnets: list[ControlNetSpec] = field(default_factory=list)
    control_videos: list[np.ndarray] = field(default_factory=list)
    video: np.ndarray | None = None
    strength: float = 0.8

    @property
    def scales(self) -> list[float]:
        return [c.scale for c in self.controlnets]

    def call_kwargs(self) -> dict:
        """The conditioning arguments of the matching diffusers pipeline's call."""
        kwargs = {}
        if self.controlnets:
            videos = [frames_as_images(v) for v in self.control_videos]
            single = len(videos) == 1
            kwargs["conditioning_frames"] = videos[0] if single else videos
            kwargs["controlnet_conditioning_scale"] = self.scales[0] if single else self.scales
        if self.video is not None:
            kwargs |= {"video": frames_as_images(self.video), "strength": self.strength}
        return kwargs


def _read(flag: str, path: str | Path) -> np.ndarray:
    from stillmoving.data.video_io import read_video

    if not Path(path).exists():
        raise StillMovingError(f"{flag} {path}: no such file or folder")
    return read_video(path)


def read_conditioning(
    controlnets: list[str] | None = None,
    control_videos: list[str] | None = None,
    video: str | None = None,
    strength: float | None = None,
) -> Conditioning:
    """Parse and read `generate`'s conditioning options; every problem is one line, before any model loads."""
    specs = [parse_controlnet(s) for s in controlnets or []]
    for spec in specs:
        check_controlnet_source(spec)
    control_videos = list(control_videos or [])
    if specs and not control_videos:
        raise StillMovingError("--controlnet needs --control-video (one conditioning frame per output frame)")
    if control_videos and not specs:
        raise StillMovingError("--control-video needs a --controlnet to read it")
    if len(control_videos) not in (1, len(specs)):
        raise StillMovingError(
            f"{len(specs)} --controlnet but {len(control_videos)} --control-video: give one video for all, or one each"
        )
    if strength is not None and video is None:
        raise StillMovingError("--strength applies to video-to-video: give the input --video")
    strength = 0.8 if strength is None else strength
    if not 0 < strength <= 1:
        raise StillMovingError(f"--strength must be in (0, 1], not {strength}")
    frames = [_read("--control-video", p) for p in control_videos]
    if len(frames) == 1 and len(specs) > 1:
        frames = frames * len(specs)
    return Conditioning(specs, frames, _read("--video", video) if video else None, strength)


def conditioning_shape(
    conditioning: Conditioning,
    num_frames: int | None,
    height: int | None,
    width: int | None,
    default_size: int = SD_SIZE,
    default_frames: int = ANIMATEDIFF_FRAMES,
) -> tuple[int, int, int]:
    """(frames, height, width) of the output: what the conditioning videos have (each must agree with the others
    and with any of `--num-frames`, `--height`, `--width` given), else the options, else `default_frames` at
    `default_size` (the model's own clip length and size, `validation.native_frames` and `native_size`)."""
    named = [("--control-video", v) for v in conditioning.control_videos]
    named += [("--video", conditioning.video)] if conditioning.video is not None else []
    for flag, frames in named:
        count, (h, w) = len(frames), frames.shape[1:3]
        if num_frames is not None and count != num_frames:
            raise StillMovingError(
                f"{flag} has {count} frames but {num_frames} are asked for: it needs one frame per output frame "
                f"(drop --num-frames, or pass a {num_frames}-frame video)"
            )
        if (height is not None and h != height) or (width is not None and w != width):
            raise StillMovingError(
                f"{flag} is {w}x{h} but the output is {width or w}x{height or h}: resize the video or drop "
                "--height/--width (the output takes the video's size)"
            )
        num_frames, height, width = count, h, w
    frames = default_frames if num_frames is None else num_frames  # 0 stays 0, for check_generation to refuse
    return frames, default_size if height is None else height, default_size if width is None else width


# ----------------------------------------------------------------------------- the pipeline


def check_controlnets_fit_model(conditioning: Conditioning, model: str | Path) -> None:
    """Before any model loads: each ControlNet folder's config against a video-model folder's UNet and VAE configs
    (single files, and models given as single files, are checked when they load)."""
    from stillmoving.backends import SDXL, ZeroScope, family_of_folder
    from stillmoving.validation import vae_factor

    conditional = conditioning is not None and (conditioning.controlnets or conditioning.video is not None)
    if conditional and Path(model).is_dir() and family_of_folder(model) is SDXL:
        raise StillMovingError(
            f"{model} is an AnimateDiff-SDXL model: diffusers has no ControlNet or video-to-video pipeline for it; "
            "generate from the prompt alone"
        )
    if conditional and Path(model).is_dir() and family_of_folder(model) is ZeroScope:
        raise StillMovingError(
            f"{model} is a ModelScope/ZeroScope model: diffusers has no ControlNet pipeline for it and its "
            "video-to-video pipeline is not supported here; generate from the prompt alone"
        )
    unet_config = Path(model) / "unet" / "config.json"
    if not unet_config.is_file():
        return
    try:
        unet = json.loads(unet_config.read_text())
    except (OSError, ValueError):
        return  # the model's own loading reports it
    for spec in conditioning.controlnets:
        if Path(spec.path).is_dir():
            check_fits(_folder_config(Path(spec.path))[1], unet, vae_factor(model), spec.path)


def conditional_pipeline(pipe, conditioning: Conditioning | None):
    """`pipe` (assembled: customization, adapters) as the variant the conditioning needs, its ControlNets loaded in
    the pipeline's dtype and device; `pipe` itself without conditioning."""
    from stillmoving.injection import t2i_config

    if conditioning is None or (not conditioning.controlnets and conditioning.video is None):
        return pipe
    nets = [
        load_controlnet(spec, t2i_config(pipe.unet), pipe.vae_scale_factor, pipe.unet.dtype).to(pipe.unet.device)
        for spec in conditioning.controlnets
    ]
    return pipe.conditional(nets or None, video_to_video=conditioning.video is not None)
