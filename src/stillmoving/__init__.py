"""Still-Moving: customize a text-to-video model with a customized text-to-image model, no video data needed.

The pieces, each in its own module:
- `adapters.motion.MotionLoRA`: stage 1, the motion adapter (LoRA on temporal q/k/v, scale alpha).
- `adapters.spatial.SpatialAdapters`: stage 2, per-layer channel adapters after every spatial layer.
- `injection`: customized T2I weights into the video model's spatial layers.
- `data`: frozen videos, latent caches, video files.
- `training`: the two training stages on accelerate.
- `pipeline.StillMovingPipeline`: AnimateDiff + adapters + a motion-scale knob.
"""

from stillmoving.adapters.motion import MotionLoRA
from stillmoving.adapters.spatial import SpatialAdapters
from stillmoving.errors import StillMovingError
from stillmoving.injection import inject_t2i_weights, t2i_unet_from_t2v
from stillmoving.pipeline import StillMovingPipeline, attach_spatial_adapters

__all__ = [
    "MotionLoRA",
    "SpatialAdapters",
    "StillMovingError",
    "StillMovingPipeline",
    "attach_spatial_adapters",
    "inject_t2i_weights",
    "t2i_unet_from_t2v",
]
__version__ = "0.1.0"
