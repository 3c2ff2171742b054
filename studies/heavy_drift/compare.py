"""python compare.py A B: paired bootstrap of B - A per metric."""

import os

os.makedirs(os.environ.get("STUDY_DIR", "runs/heavy_drift"), exist_ok=True)
os.chdir(os.environ.get("STUDY_DIR", "runs/heavy_drift"))  # every path below is relative to the study folder
import json
import sys

import numpy as np

a, b = (json.load(open(f"results/{n}.json"))["metrics"] for n in sys.argv[1:3])
rng = np.random.default_rng(0)
for k in ["speed", "is_static", "fidelity", "consistency", "artifact"]:
    x = np.array([m[k] for m in a], float)
    y = np.array([m[k] for m in b], float)
    ok = np.isfinite(x) & np.isfinite(y)
    d = (y - x)[ok]
    if not d.size:
        continue
    boots = [rng.choice(d, d.size).mean() for _ in range(2000)]
    print(
        f"{k:12s} {np.nanmean(x):.3f} -> {np.nanmean(y):.3f}  diff {d.mean():+.3f} "
        f"[{np.percentile(boots, 2.5):+.3f}, {np.percentile(boots, 97.5):+.3f}] n={d.size}"
    )
