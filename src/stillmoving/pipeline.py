"""Inference: diffusers' AnimateDiff pipeline plus Still-Moving's adapters (docs/method.md, stage 3).

`StillMovingPipeline` is an `AnimateDiffPipeline` (it loads any AnimateDiff folder and takes every
argument, scheduler and option of its parent) with three verbs: inject a customized T2I, attach spatial
adapters, load a motion adapter; and one extra call argument, `motion_scale` (alpha). The default
alpha = 0 removes the motion adapter, as the method prescribes; positive values dial motion down and
negative values up.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import AnimateDiffPipeline

from stillmoving.adapters.motion import ADAPTER_NAME, MotionLoRA
from stillmoving.adapters.spatial import SpatialAdapters, check_fingerprint
from stillmoving.errors import StillMovingError
from stillmoving.injection import inject_t2i_weights


def attach_spatial_adapters(pipe: AnimateDiffPipeline, adapters: SpatialAdapters | str | Path) -> SpatialAdapters:
    """Attach spatial adapters (an object or a file) to any AnimateDiff pipeline's UNet, plain diffusers too."""
    if not isinstance(adapters, SpatialAdapters):
        adapters = SpatialAdapters.load(adapters)
    adapters.to(device=pipe.unet.device)
    check_fingerprint(adapters, pipe.unet)
    return adapters.attach(pipe.unet)


class StillMovingPipeline(AnimateDiffPipeline):
    """AnimateDiff + customized T2I weights + spatial adapters + a motion-scale knob."""

    spatial_adapters: SpatialAdapters | None = None
    motion_lora: MotionLoRA | None = None

    def inject_customized(self, unet, text_encoder: torch.nn.Module | None = None) -> None:
        """Put a customized T2I (its UNet, and its text encoder if it has its own) into the video model."""
        inject_t2i_weights(self.unet, unet)
        if text_encoder is not None:
            self.text_encoder.load_state_dict(text_encoder.state_dict())

    def load_spatial_adapters(self, adapters: SpatialAdapters | str | Path) -> SpatialAdapters:
        if self.spatial_adapters is not None:
            self.spatial_adapters.detach()
        self.spatial_adapters = attach_spatial_adapters(self, adapters)
        return self.spatial_adapters

    def load_motion_adapter(self, path: str | Path) -> MotionLoRA:
        if self.motion_lora is not None:
            self.unet.delete_adapters(self.motion_lora.name)
        self.motion_lora = MotionLoRA.load(self.unet, path, name=ADAPTER_NAME)
        self.motion_lora.set_scale(0.0)
        return self.motion_lora

    def set_motion_scale(self, scale: float) -> None:
        """alpha for the next calls: 1 frozen, 0 the video model's own motion, < 0 more motion."""
        if self.motion_lora is None:
            if scale != 0:
                raise StillMovingError("motion_scale other than 0 needs a motion adapter (load_motion_adapter)")
            return
        self.motion_lora.set_scale(scale)

    def to(self, *args, **kwargs):
        pipe = super().to(*args, **kwargs)
        if self.spatial_adapters is not None:
            self.spatial_adapters.to(device=self.unet.device)
        return pipe

    def __call__(self, *args, motion_scale: float = 0.0, **kwargs):
        """AnimateDiffPipeline.__call__ with the motion adapter at `motion_scale` (default 0: removed)."""
        self.set_motion_scale(motion_scale)
        return super().__call__(*args, **kwargs)
