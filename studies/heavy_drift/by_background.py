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
from draws import paired

MEASURES = ["speed", "smoothness", "fidelity", "consistency"]
BACKGROUNDS = ["gray", "dusk", "blue"]


def load(name: str) -> tuple[list[str], list[dict]]:
    data = json.load(open(f"results/{name}.json"))
    return data["captions"], data["metrics"]


def split(captions: list[str], metrics: list[dict]) -> dict[str, list[dict]]:
    """Each background's share of a run's per-video metrics, in the run's order (its prompts name the background)."""
    return {b: [m for c, m in zip(captions, metrics) if f"on a {b} background" in c] for b in BACKGROUNDS}


def measured(metrics: list[dict], key: str) -> bool:
    return not np.isnan([m[key] for m in metrics]).all()  # a T2I's images have no motion


def main(ref: str, names: list[str]) -> None:
    captions, base = load(ref)
    runs = {name: load(name) for name in names}
    for name, (other, _) in runs.items():
        if other != captions:
            raise SystemExit(f"error: {name}'s prompts and seeds are not {ref}'s")
    base_parts = split(captions, base)
    parts = {name: split(captions, metrics) for name, (_, metrics) in runs.items()}
    print("| background | variant | " + " | ".join(MEASURES) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in MEASURES) + " |")
    for background, ref_rows in base_parts.items():
        mean = lambda rows, key: f"{np.nanmean([m[key] for m in rows]):.3f}"  # noqa: E731
        cells = [mean(ref_rows, k) if measured(ref_rows, k) else "" for k in MEASURES]
        print(f"| {background} ({len(ref_rows)} pairs) | {ref} | " + " | ".join(cells) + " |")
        for name, split_rows in parts.items():
            rows = split_rows[background]
            cells = [
                f"{mean(rows, k)}, {paired(ref_rows, rows, k)}" if measured(ref_rows, k) and measured(rows, k) else ""
                for k in MEASURES
            ]
            print(f"| | {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
