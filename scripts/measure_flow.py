"""Which optical-flow estimator dynamic degree uses: accuracy and speed of the candidates, measured.

VBench's per-pair score is the mean of the top 5% flow magnitudes, so what matters is how close an
estimator's score comes to the true motion, how still a still video stays, and the time per pair.
Three cases with known motion: (1) a photograph (matplotlib's sample of Grace Hopper) translated by d px,
(2) a patch of it moving by d px over a static blurred copy (6% of the frame: the top 5% is the object),
(3) the embedded world's rendered 32 px videos, whose objects move 0.4 or 1.2 px per frame.
Gaussian noise of 2 grey levels on every frame. Run: OMP_NUM_THREADS=1 python scripts/measure_flow.py
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import matplotlib
import numpy as np

from stillmoving.evaluation.dynamic_degree import FLOW_ESTIMATORS, optical_flow, top_flow_magnitude, vbench_rule
from stillmoving.world.synthetic import SPEEDS, make_video_dataset

SHIFTS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 24.0, 32.0)  # px at the given size
AROUND_THRESHOLD = (0.5, 0.75, 0.9, 1.1, 1.25, 1.5, 2.0)  # shifts as multiples of VBench's threshold
ANGLE = np.deg2rad(30)  # direction of the translation: both flow components matter


def photo(size: int) -> np.ndarray:
    image = cv2.imread(str(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"))[..., ::-1]
    side = min(image.shape[:2])
    return cv2.resize(np.ascontiguousarray(image[:side, :side]), (size, size), interpolation=cv2.INTER_AREA)


def shifted(image: np.ndarray, d: float) -> np.ndarray:
    matrix = np.float32([[1, 0, d * np.cos(ANGLE)], [0, 1, d * np.sin(ANGLE)]])
    return cv2.warpAffine(image, matrix, image.shape[1::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def noisy(image: np.ndarray, rng) -> np.ndarray:
    return np.clip(image + rng.normal(0, 2, image.shape), 0, 255).astype(np.uint8)


def object_pair(size: int, d: float) -> tuple[np.ndarray, np.ndarray]:
    """A size/4 patch of the photo moving by d over a static blurred copy of it."""
    background = cv2.GaussianBlur(photo(size), (0, 0), size / 64)
    patch = photo(size)[size // 4 : size // 2, size // 3 : size // 3 + size // 4]
    frames = []
    for offset in (0.0, d):
        canvas = background.copy()
        mask = np.zeros(background.shape[:2], np.float32)
        mask[size // 3 : size // 3 + patch.shape[0], size // 3 : size // 3 + patch.shape[1]] = 1
        layer = np.zeros_like(background)
        layer[size // 3 : size // 3 + patch.shape[0], size // 3 : size // 3 + patch.shape[1]] = patch
        layer, mask = shifted(layer, offset), shifted(mask, offset)[..., None]
        frames.append((canvas * (1 - mask) + layer * mask).astype(np.uint8))
    return frames[0], frames[1]


def score_case(estimator: str, pairs: list[tuple[np.ndarray, np.ndarray, float]], threshold: float) -> list[float]:
    """Median |score - truth| / truth over pairs moving >= 2 px (all moving pairs for the world), the share of
    pairs that VBench's threshold puts on the right side, the mean score of still pairs, ms per pair."""
    errors, right, still, seconds = [], [], [], 0.0
    for a, b, truth in pairs:
        start = time.perf_counter()
        score = top_flow_magnitude(optical_flow(a, b, estimator))
        seconds += time.perf_counter() - start
        if truth == 0:
            still.append(score)
        elif truth >= min(2.0, threshold):
            errors.append(abs(score - truth) / truth)
        right.append((score > threshold) == (truth > threshold))
    return [float(np.median(errors)), float(np.mean(right)), float(np.mean(still)), 1000 * seconds / len(pairs)]


def world_pairs() -> list[tuple[np.ndarray, np.ndarray, float]]:
    pairs = []
    for sample in make_video_dataset(24, 11, num_frames=8, resolution=32):
        speed = SPEEDS[sample.spec.speed] * 32
        pairs += [(a, b, speed) for a, b in zip(sample.pixels[:-1], sample.pixels[1:])]
        pairs.append((sample.pixels[0], sample.pixels[0].copy(), 0.0))
    return pairs


def main() -> None:
    cv2.setNumThreads(1)
    rng = np.random.default_rng(0)
    cases = {}
    for size in (256, 512):
        base = photo(size)
        threshold = vbench_rule(16, size, 8.0)[0]
        shifts = SHIFTS + tuple(threshold * m for m in AROUND_THRESHOLD)
        cases[f"photo translated, {size} px"] = (
            threshold,
            [(noisy(base, rng), noisy(shifted(base, d), rng), d) for d in shifts],
        )
        cases[f"object on still background, {size} px"] = (
            threshold,
            [(noisy(a, rng), noisy(b, rng), d) for d in shifts for a, b in [object_pair(size, d)]],
        )
    cases["world videos, 32 px (0.4 / 1.2 px per frame)"] = (vbench_rule(8, 32, 8.0)[0], world_pairs())
    print(
        "| case | estimator | median relative error of the top-5% score | VBench threshold decision right | "
        "score of a still pair (px) | ms per pair |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for name, (threshold, pairs) in cases.items():
        for estimator in FLOW_ESTIMATORS:
            error, right, still, ms = score_case(estimator, pairs, threshold)
            print(f"| {name} | {estimator} | {error:.3f} | {right:.2f} | {still:.2f} | {ms:.1f} |")


if __name__ == "__main__":
    main()
