"""Paired 95% bootstrap intervals of one variant's videos minus another's, from the per-video figures the studies
write: `recipes.py`'s OUT/NAME/metrics.json (and OUT/naive.json), `delta_injection.py`'s OUT.json (one entry per
variant; name it FILE:VARIANT). Both must be the same section's videos (the same prompts and seeds, in order).
Also each variant's share of a reference's mean (the base T2V's speed, the customized T2I's fidelity) when given.

python studies/joint_motion/paired.py OURS BASELINE [SPEED_REF=FILE:VARIANT]
  e.g. python studies/joint_motion/paired.py runs/rec/smdelta/metrics.json "runs/delta_star.json:delta injection"
"""

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "smoothness"))
from recipes import COMPARED  # noqa: E402

from stillmoving.world.stats import paired_bootstrap  # noqa: E402


def load(spec: str) -> dict[str, list[float]]:
    path, _, variant = spec.partition(".json:")
    path = path if not variant else path + ".json"
    values = json.loads(Path(path).read_text())
    return values[variant] if variant else values


def main(ours: str, baseline: str, speed_ref: str | None) -> None:
    a, b = load(ours), load(baseline)
    row = {}
    for key in COMPARED:
        diff = paired_bootstrap(b[key], a[key])  # ours - baseline
        row[key] = [round(float(np.nanmean(a[key])), 4), round(float(np.nanmean(b[key])), 4)]
        row[f"minus_{key}"] = [round(diff.estimate, 4), round(diff.low, 4), round(diff.high, 4)]
    if speed_ref:
        ref = float(np.nanmean(load(speed_ref)["speed"]))
        row["speed_share"] = [round(float(np.nanmean(v["speed"])) / ref, 3) for v in (a, b)]
    print(json.dumps(row))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
