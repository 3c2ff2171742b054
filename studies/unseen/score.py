"""Colour measures of the "sks gem" videos, written for this study and independent of the world's oracle.

Per video (uint8 frames of 32 x 32 RGB):
- fidelity: in each frame, the share of the subject's violet pixels against that share in the drawn renders,
  capped at 1, mean over frames: the subject in about its size, or a low figure.
- consistency: histogram intersection of consecutive frames' colour histograms (4 levels per channel), mean
  over the pairs: 1 when no colour appears or vanishes between frames (motion of one object moves no mass), lower
  when the background or the object flickers.
- stability: 1 - mean |area(t+1) - area(t)| / mean area of the violet pixels: the object keeps its size.
- speed: mean displacement of the object's centroid between consecutive frames, px/frame.
- background change: mean |change| of the background's mean colour between consecutive frames, in grey levels
  (0-255, mean over R, G, B); the background is every pixel at least 2 px from the subject's violet in all frames.
  A continuous reading of what consistency bins: a gray background whose red sits near a bin edge (128) flips its
  whole mass between two cells for a change of a few levels, which consistency scores as a large drop.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence

from stillmoving.world.stats import paired_bootstrap

BODY = (200, 100, 255)  # violet
RADIUS = 80.0  # RGB distance within which a pixel counts as that colour
METRICS = ("fidelity", "consistency", "stability", "speed", "background change")
MARGIN = 2  # px between the subject and what counts as background


def load(path: Path) -> np.ndarray:
    """(F, H, W, 3) uint8 frames of a GIF or a single image."""
    with Image.open(path) as image:
        return np.stack([np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(image)])


def mask(frames: np.ndarray) -> np.ndarray:
    """(F, H, W) bool: the subject's violet pixels."""
    return np.linalg.norm(frames.astype(np.float32) - np.array(BODY, np.float32), axis=-1) < RADIUS


@functools.cache
def reference(renders: Path) -> dict[str, float]:
    """The share of the subject's violet pixels in the drawn renders (read once per folder)."""
    return {"look": float(mask(np.concatenate([load(p) for p in sorted(renders.glob("*.png"))])).mean())}


def histogram_consistency(frames: np.ndarray) -> float:
    """Histogram intersection of consecutive frames' colour histograms (4 levels per channel), mean over the pairs;
    NaN for one frame."""
    if len(frames) < 2:
        return np.nan
    levels = (frames // 64).astype(np.int64)
    codes = levels[..., 0] * 16 + levels[..., 1] * 4 + levels[..., 2]
    hists = np.stack([np.bincount(c.ravel(), minlength=64) / c.size for c in codes])
    return float(np.minimum(hists[1:], hists[:-1]).sum(axis=1).mean())


def centroid_speed(obj: np.ndarray) -> float:
    """Mean displacement, px/frame, of the centroid of `obj` (F, H, W) between consecutive frames where it has 4
    pixels or more; NaN when no two consecutive frames do."""
    centres = [np.argwhere(m).mean(axis=0) if m.sum() >= 4 else None for m in obj]
    steps = [np.linalg.norm(b - a) for a, b in zip(centres, centres[1:]) if a is not None and b is not None]
    return float(np.mean(steps)) if steps else np.nan


def video_scores(frames: np.ndarray, ref: dict) -> dict[str, float]:
    obj = mask(frames)
    fidelity = float(np.minimum(1.0, obj.mean(axis=(1, 2)) / ref["look"]).mean())
    area = obj.sum(axis=(1, 2)).astype(np.float64)
    stability = float(1 - np.abs(np.diff(area)).mean() / area.mean()) if area.mean() >= 1 else 0.0
    scores = {"fidelity": fidelity, "consistency": histogram_consistency(frames), "stability": stability}
    return {**scores, "speed": centroid_speed(obj), "background change": background_change(frames, obj)}


def background_mask(obj: np.ndarray) -> np.ndarray:
    """(H, W) bool: the pixels at least MARGIN px from the subject's violet (`obj`, (F, H, W)) in every frame."""
    near = np.pad(obj.any(axis=0), MARGIN)
    h, w = obj.shape[1:]
    grown = np.zeros((h, w), bool)
    for dy in range(2 * MARGIN + 1):
        for dx in range(2 * MARGIN + 1):
            grown |= near[dy : dy + h, dx : dx + w]
    return ~grown


def background_colours(frames: np.ndarray, obj: np.ndarray | None = None) -> np.ndarray:
    """(F, 3) mean colour of each frame's background (`background_mask` of `obj`, the violet mask, by default
    computed from `frames`)."""
    return frames[:, background_mask(mask(frames) if obj is None else obj)].astype(np.float64).mean(axis=1)


def background_change(frames: np.ndarray, obj: np.ndarray) -> float:
    """Mean |change| of the background's mean colour between consecutive frames, grey levels; NaN for one frame or
    no background (see the module's docstring)."""
    if len(frames) < 2 or background_mask(obj).sum() < 16:
        return np.nan
    return float(np.abs(np.diff(background_colours(frames, obj), axis=0)).mean())


def score_folder(folder: Path, renders: Path | None = None) -> list[dict[str, float]]:
    """Scores of every GIF/PNG in `folder`, in name order (the pairing order)."""
    ref = reference(renders or Path(folder).parents[4] / "images")
    files = sorted(p for p in Path(folder).iterdir() if p.suffix in (".gif", ".png"))
    return [video_scores(load(p), ref) for p in files]


def summarize(naive: list[dict], still: list[dict], metrics: tuple[str, ...] = METRICS) -> dict:
    """Means of both and Still-Moving minus naive injection with its paired 95% interval, per metric."""
    out = {}
    for m in metrics:
        a, b = [s[m] for s in naive], [s[m] for s in still]
        d = paired_bootstrap(a, b)
        out[m] = {
            "naive": round(float(np.nanmean(a)), 3),
            "still_moving": round(float(np.nanmean(b)), 3),
            "diff": [round(d.estimate, 3), round(d.low, 3), round(d.high, 3)],
        }
    return out
