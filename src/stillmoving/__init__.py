"""Still-Moving: customize a text-to-video model with a customized text-to-image model, no video data needed.

The pieces, each in its own module:
- `adapters.motion.MotionLoRA`: stage 1, the motion adapter (LoRA on temporal q/k/v, scale alpha).
- `adapters.spatial.SpatialAdapters`: stage 2, per-layer channel adapters after every spatial layer.
- `injection`: customized T2I weights into the video model's spatial layers.
- `data`: frozen videos, latent caches, video files.
- `training`: the two training stages on accelerate.
- `pipeline.StillMovingPipeline`: AnimateDiff + adapters + a motion-scale knob; its ControlNet and
  video-to-video variants (`pipe.conditional(...)`), for conditional generation.
- `pipeline.StillMovingSDXLPipeline`, `pipeline.StillMovingTextToVideoPipeline`: the same on AnimateDiff-SDXL and on
  ModelScope/ZeroScope; `backends`: what differs per family.
- `conditioning`: ControlNets and control videos, read and checked.

Names are imported on first use, so `import stillmoving` (and `stillmoving --help`) stays fast.
"""

import importlib

_EXPORTS = {
    "MotionLoRA": "stillmoving.adapters.motion",
    "SpatialAdapters": "stillmoving.adapters.spatial",
    "StillMovingError": "stillmoving.errors",
    "StillMovingPipeline": "stillmoving.pipeline",
    "StillMovingSDXLPipeline": "stillmoving.pipeline",
    "StillMovingTextToVideoPipeline": "stillmoving.pipeline",
    "StillMovingControlNetPipeline": "stillmoving.pipeline",
    "StillMovingVideoToVideoPipeline": "stillmoving.pipeline",
    "StillMovingVideoToVideoControlNetPipeline": "stillmoving.pipeline",
    "load_controlnet": "stillmoving.conditioning",
    "attach_spatial_adapters": "stillmoving.pipeline",
    "inject_t2i_weights": "stillmoving.injection",
    "t2i_unet_from_t2v": "stillmoving.injection",
}
__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'stillmoving' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
