"""Validate `stillmoving.world.metrics` on rendered ground truth before trusting it on generated videos.

`validate_metrics(seed, n)` renders n videos per condition with `synthetic` and returns the figures
that say whether each metric measures what it claims: direction accuracy, displacement and track
error against the true trajectory (clean, blurred + noisy, per held-out look), ~0 speed on static
videos, colour naming, fidelity AUC target-vs-base and target-vs-other-looks (clean and degraded,
plus blotchy and half-blended inputs), consistency ranking clean > shuffled / flicker, and artifact
ranking clean < noisy / blotchy / ghosted. Print them with
`python -m stillmoving.world.metrics_validation [seed] [n]` (about 2 minutes for n = 200).
"""

from __future__ import annotations

import sys

import numpy as np

from stillmoving.world.metrics import blur_frames, fidelity, video_metrics
from stillmoving.world.synthetic import STYLES, SUBJECTS, SceneSpec, make_video_dataset, object_mask

DEGRADED = dict(sigma=1.0, noise=8.0)  # blur sigma (px) and noise sigma (levels) of "degraded" copies
NOISY = 12.0  # noise sigma (levels) for the artifact ranking
GHOST_GAP = 5.0  # px between masks: a nearer ghost can merge with the object (metrics bridges 4 px gaps)


# ----------------------------------------------------------------------------- degradations


def degrade(video: np.ndarray, rng: np.random.Generator, sigma: float = 0.0, noise: float = 0.0) -> np.ndarray:
    """uint8 copy blurred by a Gaussian of `sigma` px, then with N(0, noise) added per pixel."""
    out = blur_frames(video, sigma) + rng.normal(0, noise, video.shape) if noise else blur_frames(video, sigma)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def blotch(video: np.ndarray, rng: np.random.Generator, amount: float = 80.0, sigma: float = 2.0) -> np.ndarray:
    """Low-frequency colour noise (white noise of `amount` levels blurred by `sigma` px), the
    blotchy kind of residue a diffusion model leaves, unlike per-pixel sensor noise."""
    return np.clip(np.round(video + blur_frames(rng.normal(0, amount, video.shape), sigma)), 0, 255).astype(np.uint8)


def shuffle(video: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Frames in a random order that is neither the original nor its reverse (both are smooth)."""
    frames = np.arange(len(video))
    while True:
        order = rng.permutation(frames)
        if not (np.array_equal(order, frames) or np.array_equal(order, frames[::-1])):
            return video[order]


def flicker(videos: list[np.ndarray], index: int) -> np.ndarray:
    """Frame f taken from video index + f: every frame an independent scene."""
    return np.stack([videos[(index + f) % len(videos)][f] for f in range(len(videos[index]))])


def blend(first: np.ndarray, second: np.ndarray, weight: float = 0.5) -> np.ndarray:
    return np.round(weight * first.astype(np.float64) + (1 - weight) * second).astype(np.uint8)


# ----------------------------------------------------------------------------- figures


def auc(positives, negatives) -> float:
    """Area under the ROC curve: P(random positive scores above random negative), ties count half."""
    pos, neg = np.asarray(positives, np.float64)[:, None], np.asarray(negatives, np.float64)[None, :]
    return float((pos > neg).mean() + 0.5 * (pos == neg).mean())


def ranked(better, worse) -> float:
    """Share of paired videos whose first score is strictly above the second (NaN for no pairs)."""
    wins = np.asarray(better) > np.asarray(worse)
    return float(wins.mean()) if wins.size else float("nan")


def _scores(videos, samples, **kwargs) -> list[dict[str, float]]:
    return [video_metrics(v, expected=s.spec, **kwargs) for v, s in zip(videos, samples)]


def _column(results, key) -> np.ndarray:
    return np.array([r[key] for r in results])


def _motion_figures(samples, looks, rng, num_frames: int) -> dict[str, float]:
    clean = _scores([s.pixels for s in samples], samples)
    noisy = _scores([degrade(s.pixels, rng, **DEGRADED) for s in samples], samples)
    static = [video_metrics(np.repeat(s.pixels[:1], num_frames, axis=0)) for s in samples]
    static_noisy = [
        video_metrics(degrade(np.repeat(s.pixels[:1], num_frames, axis=0), rng, **DEGRADED)) for s in samples
    ]
    out = {
        "direction_accuracy": _column(clean, "direction_match").mean(),
        "direction_accuracy_degraded": _column(noisy, "direction_match").mean(),
        "displacement_error_px": _column(clean, "velocity_error").mean() * (num_frames - 1),
        "displacement_error_px_p95": np.percentile(_column(clean, "velocity_error"), 95) * (num_frames - 1),
        "displacement_error_px_degraded": _column(noisy, "velocity_error").mean() * (num_frames - 1),
        "track_error_px": _column(clean, "track_error").mean(),
        "track_error_px_degraded": _column(noisy, "track_error").mean(),
        "speed_ratio_mean": _column(clean, "speed_ratio").mean(),
        "color_match": _column(clean, "color_match").mean(),
        "color_match_degraded": _column(noisy, "color_match").mean(),
        "static_speed_px_per_frame": _column(static, "speed").mean(),
        "static_speed_px_per_frame_degraded": _column(static_noisy, "speed").mean(),
        "static_detected": _column(static, "is_static").mean(),
        "static_detected_degraded": _column(static_noisy, "is_static").mean(),
    }
    for name, looked in looks.items():
        out[f"direction_accuracy_{name}"] = _column(
            _scores([s.pixels for s in looked], looked), "direction_match"
        ).mean()
    return out


def _fidelity_figures(samples, looks, rng) -> dict[str, float]:
    out = {}
    for name, looked in looks.items():
        score = lambda group, name=name: [fidelity(v, name).mean() for v in group]
        positive, negative = score([s.pixels for s in looked]), score([s.pixels for s in samples])
        others = [score([s.pixels for s in group]) for other, group in looks.items() if other != name]
        out[f"fidelity_auc_{name}"] = auc(positive, negative)
        out[f"fidelity_auc_{name}_vs_other_looks"] = auc(positive, np.concatenate(others))
        out[f"fidelity_{name}_on_target"], out[f"fidelity_{name}_on_base"] = np.mean(positive), np.mean(negative)
        degraded = lambda group, score=score: score([degrade(s.pixels, rng, **DEGRADED) for s in group])
        out[f"fidelity_auc_{name}_degraded"] = auc(degraded(looked), degraded(samples))
        out[f"fidelity_{name}_on_blotchy_base"] = np.mean(score([blotch(s.pixels, rng) for s in samples]))
        mixed = score([blend(a.pixels, b.pixels) for a, b in zip(looked, samples)])  # same scene, half the look
        out[f"fidelity_{name}_on_half_blend"] = np.mean(mixed)
    return out


def _consistency_figures(samples, rng) -> dict[str, float]:
    videos = [s.pixels for s in samples]
    conditions = {
        "clean": videos,
        "shuffled": [shuffle(v, rng) for v in videos],
        "flicker": [flicker(videos, i) for i in range(len(videos))],
        "degraded": [degrade(v, rng, **DEGRADED) for v in videos],
    }
    scores = {name: _column([video_metrics(v) for v in group], "consistency") for name, group in conditions.items()}
    out = {f"consistency_{name}": values.mean() for name, values in scores.items()}
    out["consistency_clean_above_shuffled"] = ranked(scores["clean"], scores["shuffled"])
    out["consistency_clean_above_flicker"] = ranked(scores["clean"], scores["flicker"])
    out["consistency_degraded_above_flicker"] = ranked(scores["degraded"], scores["flicker"])
    return out


def _mask_gap(first: SceneSpec, second: SceneSpec, num_frames: int, resolution: int) -> float:
    """Smallest distance (px) between the two scenes' object masks over all frames."""
    gaps = []
    for frame in range(num_frames):
        a, b = (np.argwhere(object_mask(s, frame, resolution)) for s in (first, second))
        gaps.append(np.sqrt(((a[:, None] - b[None]) ** 2).sum(-1)).min())
    return float(min(gaps))


def _artifact_figures(samples, rng) -> dict[str, float]:
    videos = [s.pixels for s in samples]
    partner = lambda i: (i + 1) % len(videos)
    conditions = {
        "clean": videos,
        "blurred": [degrade(v, rng, sigma=1.0) for v in videos],
        "noisy": [degrade(v, rng, noise=NOISY) for v in videos],
        "blotchy": [blotch(v, rng) for v in videos],
        "ghosted": [blend(v, videos[partner(i)]) for i, v in enumerate(videos)],
    }
    scores = {name: _column([video_metrics(v) for v in group], "artifact") for name, group in conditions.items()}
    out = {f"artifact_{name}": values.mean() for name, values in scores.items()}
    out["artifact_noisy_above_clean"] = ranked(scores["noisy"], scores["clean"])
    out["artifact_ghosted_above_clean"] = ranked(scores["ghosted"], scores["clean"])
    out["artifact_blotchy_above_clean"] = ranked(scores["blotchy"], scores["clean"])
    frames, size = videos[0].shape[:2]
    apart = np.array(
        [_mask_gap(s.spec, samples[partner(i)].spec, frames, size) > GHOST_GAP for i, s in enumerate(samples)]
    )
    out["ghost_apart_share"] = apart.mean()
    out["artifact_ghosted_apart_above_clean"] = ranked(scores["ghosted"][apart], scores["clean"][apart])
    return out


def validate_metrics(seed: int = 0, n: int = 200, num_frames: int = 8, resolution: int = 32) -> dict[str, float]:
    """Render n ground-truth videos per condition and measure every metric against the truth."""
    rng = np.random.default_rng(seed)
    make = lambda **looks: make_video_dataset(n, seed, num_frames, resolution, **looks)
    samples = make()
    looks = {name: make(subject=name) for name in SUBJECTS} | {name: make(style=name) for name in STYLES}
    figures = _motion_figures(samples, looks, rng, num_frames) | _fidelity_figures(samples, looks, rng)
    figures |= _consistency_figures(samples, rng) | _artifact_figures(samples, rng)
    return {key: float(value) for key, value in figures.items()}


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    seed, n = (int(args[0]) if args else 0), (int(args[1]) if len(args) > 1 else 200)
    for key, value in validate_metrics(seed, n).items():
        print(f"{key:40s} {value:8.3f}")


if __name__ == "__main__":
    main()
