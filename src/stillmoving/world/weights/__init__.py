"""The embedded world's pretrained weights, shipped inside the package (see MODEL_CARD.md beside this file)."""

from __future__ import annotations

from pathlib import Path

from stillmoving.errors import StillMovingError

HERE = Path(__file__).parent


def _shipped(relative: str) -> Path:
    path = HERE / relative
    if not path.exists():
        raise StillMovingError(
            f"the embedded world's weights are not in this install ({path}); build them with "
            f"`python -m stillmoving.world.pretrain` and pass --model/--motion-adapter"
        )
    return path


# The world's video models: name -> (its folder, its motion adapter's folder).
#   animatediff  the T2I M frozen, motion modules trained on videos (AnimateDiff's recipe): V's spatial layers are M
#   joint        that model with every UNet weight trained further on videos (the jointly trained kind:
#                ModelScope/ZeroScope, VideoCrafter, LaVie); its spatial layers are no longer M
VIDEO_MODELS = {"animatediff": ("t2v", "motion_adapter"), "joint": ("t2v_joint", "motion_adapter_joint")}
CONTROLNET = "controlnet"  # the world ControlNet's folder (conditional generation; MODEL_CARD.md)


def _check(video_model: str) -> None:
    if video_model not in VIDEO_MODELS:
        raise StillMovingError(f"unknown world video model {video_model!r} (known: {', '.join(VIDEO_MODELS)})")


def shipped_model(video_model: str = "animatediff") -> Path:
    """A world T2V: a diffusers AnimateDiff pipeline folder. The users' T2I, M, is the "animatediff" one's
    spatial layers (`load_customized` and the T2I trainers read it from that folder)."""
    _check(video_model)
    return _shipped(VIDEO_MODELS[video_model][0])


def shipped_motion_adapter(video_model: str = "animatediff") -> Path:
    """That T2V's motion adapter (diffusers LoRA format), trained by `stillmoving motion-adapter train`."""
    _check(video_model)
    return _shipped(VIDEO_MODELS[video_model][1])


def shipped_controlnet() -> Path:
    """The world's ControlNet (a diffusers ControlNetModel folder) for the "animatediff" model's T2I M, conditioned
    on the object's silhouette, white on black; made by `python -m stillmoving.world.pretrain --phase controlnet`."""
    return _shipped(CONTROLNET)
