"""The field's video-customization metrics, from unit-norm image and text features (backbones.py).

They follow DreamVideo's evaluation script (Wei et al. 2024, "DreamVideo: Composing Your Dream Videos with
Customized Subject and Motion", §4.1; VGen `metric/cal_metric_DreamVideo.py`), which takes the definitions
of DreamBooth (Ruiz et al. 2023, §4.1: CLIP-T, CLIP-I, DINO) to videos, frame by frame:

  clip_t                cosine of the prompt's CLIP text feature and each frame's CLIP image feature, averaged
                        over the frames (DreamVideo: t . mean_f(x_f), the same number). CLIP ViT-B/32.
  clip_i                cosine of each reference image's and each frame's CLIP image features, averaged over
                        every (reference, frame) pair. CLIP ViT-B/32.
  dino_i                the same with DINO ViT-S/16's [CLS] features (better at identity than CLIP).
  temporal_consistency  cosine of the CLIP image features of consecutive frames, averaged over the pairs
                        (DreamVideo's "T. Cons.", Esser et al. 2023's frame consistency).

All are in [-1, 1]; higher is closer. A video of one frame has no temporal consistency (None here).
"""

from __future__ import annotations

import numpy as np


def clip_t(text_feature: np.ndarray, frame_features: np.ndarray) -> float:
    """mean_f cos(t, x_f) for a (D,) text feature and (F, D) frame features (all unit vectors)."""
    return float((frame_features @ text_feature).mean())


def image_similarity(reference_features: np.ndarray, frame_features: np.ndarray) -> float:
    """CLIP-I or DINO-I: mean over references r and frames f of cos(r, x_f); (R, D) and (F, D) unit vectors."""
    return float((reference_features @ frame_features.T).mean())


def temporal_consistency(frame_features: np.ndarray) -> float | None:
    """mean_t cos(x_t, x_{t+1}) over the F - 1 consecutive pairs of (F, D) unit vectors; None for one frame."""
    if len(frame_features) < 2:
        return None
    return float((frame_features[1:] * frame_features[:-1]).sum(axis=1).mean())
