"""Are a video's frames independent samples? Shape IoU (centroid-aligned soft masks) between consecutive
frames of a video ("within") vs between the same frame index of two videos of the same prompt, other seed
("across"). independence = (1 - within) / (1 - across): 1 when frames differ as much as independent samples.
python independence.py NAME... (results/NAME.npy: prompt-major, 4 seeds per prompt)"""

import os

os.makedirs(os.environ.get("STUDY_DIR", "runs/heavy_drift"), exist_ok=True)
os.chdir(os.environ.get("STUDY_DIR", "runs/heavy_drift"))  # every path below is relative to the study folder
import sys

import numpy as np

from stillmoving.world.metrics import _aligned_windows, segment


def iou(a, b):
    u = np.maximum(a, b).sum()
    return np.minimum(a, b).sum() / u if u > 0 else 0.0


for name in sys.argv[1:]:
    v = np.load(f"results/{name}.npy")
    n, f = v.shape[:2]
    win = [_aligned_windows(s.weight, s.centroid, 8) for s in (segment(x) for x in v)]
    within = np.mean([iou(w[i], w[i + 1]) for w in win for i in range(f - 1)])
    across = np.mean(
        [
            iou(win[a][i], win[b][i])
            for p in range(n // 4)
            for a in range(4 * p, 4 * p + 4)
            for b in range(a + 1, 4 * p + 4)
            for i in range(f)
        ]
    )
    print(f"{name:22s} within {within:.3f} across-seeds {across:.3f} independence {(1 - within) / (1 - across):.2f}")
