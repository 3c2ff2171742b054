"""python by_background.py REF NAME ...: evalv.py's results split by the prompt's background (session 29).

For each background the evaluation prompts name (gray, dusk, blue), REF's means and each NAME's means with NAME minus
REF and its paired 95% bootstrap interval (`stillmoving.world.stats.paired_bootstrap`, the demo's), for speed, path
smoothness, fidelity and consistency. A REF or NAME "t2i_<x>" reads `results/t2i_<x>.json`, the customized T2I's own
images of the same pairs (`evalt2i.py`), whose fidelity is the one to keep.
"""

import os

os.makedirs(os.environ.get("STUDY_DIR", "runs/heavy_drift"), exist_ok=True)
os.chdir(os.environ.get("STUDY_DIR", "runs/heavy_drift"))  # every path below is relative to the study folder
import json
import sys

import numpy as np

from stillmoving.world.stats import paired_bootstrap

MEASURES = ["speed", "smoothness", "fidelity", "consistency"]
BACKGROUNDS = ["gray", "dusk", "blue"]


def load(name: str) -> tuple[list[str], list[dict]]:
    data = json.load(open(f"results/{name}.json"))
    return data["captions"], data["metrics"]


def main(ref: str, names: list[str]) -> None:
    captions, base = load(ref)
    runs = {name: load(name) for name in names}
    for name, (other, _) in runs.items():
        if other != captions:
            raise SystemExit(f"error: {name}'s prompts and seeds are not {ref}'s")
    print("| background | variant | " + " | ".join(MEASURES) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in MEASURES) + " |")
    for background in BACKGROUNDS:
        rows = [i for i, c in enumerate(captions) if f"on a {background} background" in c]

        def pick(metrics: list[dict], key: str, rows: list[int] = rows) -> list[float]:
            return [metrics[i][key] for i in rows]

        cells = [f"{np.nanmean(pick(base, k)):.3f}" if not np.isnan(pick(base, k)).all() else "" for k in MEASURES]
        print(f"| {background} ({len(rows)} pairs) | {ref} | " + " | ".join(cells) + " |")
        for name, (_, metrics) in runs.items():
            cells = []
            for key in MEASURES:
                if np.isnan(pick(base, key)).all() or np.isnan(pick(metrics, key)).all():
                    cells.append("")  # a T2I's images have no motion
                    continue
                mean = np.nanmean(pick(metrics, key))
                d = paired_bootstrap(pick(base, key), pick(metrics, key))
                bold = "**" if d.low > 0 or d.high < 0 else ""
                cells.append(f"{mean:.3f}, {bold}{d.estimate:+.3f} [{d.low:+.3f}, {d.high:+.3f}]{bold}")
            print(f"| | {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
