"""Model-agnostic figures of a generated video, computed from its frames alone (any model, any size).

They are what `customize` can measure on the user's own models without any extra network: the end-of-run
check (`training/naive_check.py`) compares the spatial adapters against naive injection with them.

  colour_consistency  mean histogram intersection of the RGB colour histograms of consecutive frames, in
                      [0, 1], 1 = every frame has the same colours. Moving an object keeps a frame's
                      histogram, so motion barely lowers it; flicker (colours jumping), colour noise and
                      fragments that come and go lower it (Swain & Ballard 1991, histogram intersection).
  colour_agreement    of two videos of the same prompt and seed: mean histogram intersection of their frames
                      taken pairwise, in [0, 1]; 1 = the same colours. Between naive injection and the
                      spatial adapters it says how much the adapters change the look.
  subject_agreement   colour_agreement with each frame's most common colour cell left out of both histograms
                      (the rest renormalised): the agreement of everything but the largest single colour, on
                      the embedded world the object without its background, which the whole frame's histogram
                      lets the background outweigh (docs/method.md, "What the check did not see").
  frame_change        mean absolute difference of consecutive frames, in [0, 1] of the pixel range: the
                      amount of change, motion and flicker alike (0 = a still video).
  tint_change         mean absolute change of the frame's mean colour (R, G, B) between consecutive frames, in
                      [0, 1] of the pixel range: flicker of the whole frame's tint, which an object moving
                      within the frame barely changes. colour_consistency bins colours, so a background whose
                      channel sits near a bin edge scores a change of a few levels as a whole-frame jump and
                      another of many levels within a bin as none; this figure reads the same change without
                      bins (docs/method.md, "The unseen subject's flicker, read without bins").
"""

from __future__ import annotations

import numpy as np

HIST_BINS = 8  # per channel: 512 colour cells, coarse enough that noise of a few levels does not move a pixel


def colour_histograms(frames: np.ndarray, bins: int = HIST_BINS) -> np.ndarray:
    """(F, bins**3) normalised joint RGB histograms of uint8 frames (F, H, W, 3)."""
    cells = (frames.astype(np.int64) * bins) // 256  # (f, h, w, 3) in [0, bins)
    index = (cells[..., 0] * bins + cells[..., 1]) * bins + cells[..., 2]
    counts = np.stack([np.bincount(i.ravel(), minlength=bins**3) for i in index]).astype(np.float64)
    return counts / counts.sum(axis=1, keepdims=True)


def colour_consistency(frames: np.ndarray) -> float:
    """Mean histogram intersection sum_k min(h_t[k], h_{t+1}[k]) over consecutive frames; 1.0 for one frame."""
    histograms = colour_histograms(frames)
    if len(histograms) < 2:
        return 1.0
    return float(np.minimum(histograms[1:], histograms[:-1]).sum(axis=1).mean())


def colour_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over frames t of sum_k min(h_a,t[k], h_b,t[k]) for two videos of the same length."""
    return float(np.minimum(colour_histograms(a), colour_histograms(b)).sum(axis=1).mean())


def without_most_common(histograms: np.ndarray) -> np.ndarray:
    """(F, cells) histograms with each row's largest cell set to zero and the rest renormalised (a row of one colour
    becomes all zeros)."""
    rest = histograms.copy()
    rest[np.arange(len(rest)), np.argmax(rest, axis=1)] = 0
    return rest / np.maximum(rest.sum(axis=1, keepdims=True), 1e-12)


def subject_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """`colour_agreement` of two videos of the same length without each frame's most common colour cell."""
    rest_a, rest_b = (without_most_common(colour_histograms(v)) for v in (a, b))
    return float(np.minimum(rest_a, rest_b).sum(axis=1).mean())


def frame_change(frames: np.ndarray) -> float:
    """Mean |frame_{t+1} - frame_t| over pixels and frame pairs, divided by 255; 0.0 for one frame."""
    if len(frames) < 2:
        return 0.0
    return float(np.abs(np.diff(frames.astype(np.float64), axis=0)).mean() / 255)


def tint_change(frames: np.ndarray) -> float:
    """Mean |mean colour_{t+1} - mean colour_t| over R, G, B and frame pairs, divided by 255; 0.0 for one frame."""
    if len(frames) < 2:
        return 0.0
    means = frames.reshape(len(frames), -1, frames.shape[-1]).astype(np.float64).mean(axis=1)
    return float(np.abs(np.diff(means, axis=0)).mean() / 255)


def video_figures(frames: np.ndarray) -> dict[str, float]:
    """The figures of one uint8 video (F, H, W, 3)."""
    return {
        "colour_consistency": colour_consistency(frames),
        "frame_change": frame_change(frames),
        "tint_change": tint_change(frames),
    }
