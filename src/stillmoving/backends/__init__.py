"""Video-model families: what differs between AnimateDiff over SD1.5, AnimateDiff-SDXL and ModelScope/ZeroScope, in
one place.

A backend says, for one family, what its spatial layers and temporal attentions are (the spatial and the motion
adapters' placements), how a customized T2I's state dict maps onto the video model V and when it is refused, how
prompts are encoded for training (SDXL: two text encoders and a pooled embedding), what the video UNet takes
besides the noisy latents (SDXL: `added_cond_kwargs` with `text_embeds` and `time_ids`; ZeroScope: the text per
video, not per frame), which T2I pipeline samples M1's images from V's parts, and which diffusers pipeline
generates. `backend_of(pipe)` picks it from a loaded pipeline, `family_of_folder(path)` from a diffusers folder's
`model_index.json`. Adding a family is one new module with a `Backend` subclass, listed in `FAMILIES`.
"""

from __future__ import annotations

import json
from pathlib import Path

from stillmoving.backends.base import Backend
from stillmoving.backends.sd15 import SD15
from stillmoving.backends.sdxl import SDXL
from stillmoving.backends.zeroscope import ZeroScope

# the first that matches; SD15 matches anything (the default)
FAMILIES: tuple[type[Backend], ...] = (ZeroScope, SDXL, SD15)


def backend_of(pipe) -> Backend:
    """The backend of a loaded video pipeline (or of a T2I pipeline of the same family)."""
    return next(family for family in FAMILIES if family.matches(pipe))(pipe)


def family_of_folder(path: str | Path) -> type[Backend]:
    """The family of a diffusers pipeline folder, from its `model_index.json` (SD15 when there is none)."""
    index = Path(path) / "model_index.json"
    config = json.loads(index.read_text()) if index.is_file() else {}
    return next(family for family in FAMILIES if family.matches_index(config))


__all__ = ["FAMILIES", "SD15", "SDXL", "Backend", "ZeroScope", "backend_of", "family_of_folder"]
