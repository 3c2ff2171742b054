"""The embedded world's pretrained weights, shipped inside the package (see MODEL_CARD.md beside this file)."""

from __future__ import annotations

from pathlib import Path

from stillmoving.errors import StillMovingError

HERE = Path(__file__).parent


def _shipped(relative: str) -> Path:
    path = HERE / relative
    if not path.exists():
        raise StillMovingError(f"the embedded world's weights are not in this install ({path}); build them with "
                               f"`python -m stillmoving.world.pretrain` and pass --model/--motion-adapter")
    return path


def shipped_model() -> Path:
    """The world T2V: a diffusers AnimateDiff pipeline folder."""
    return _shipped("t2v")


def shipped_motion_adapter() -> Path:
    """The world T2V's motion adapter (diffusers LoRA format), trained by `stillmoving motion-adapter train`."""
    return _shipped("motion_adapter")
