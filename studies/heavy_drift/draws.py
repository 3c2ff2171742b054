"""python draws.py [SEED ...]: the heavily drifted star over DreamBooth draws (session 26), one table.

Each draw is `make_m1.py 5e-4 1500 m1_heavy[_sN] N`, then customize's recipe on both video models (`customize.py
sm_heavy[_joint]_{d,sN} ... image_guidance_scale=1.0 guidance_scale=1.0 prior_loss_weight=0`) and `evalv.py` of naive
injection, every block's adapters and the down and mid blocks' (`--spatial-blocks down,mid`, what customize's check
records at heavy drift). Draw 0 keeps the names the study used before (m1_heavy, sm_heavy_d, sm_heavy_joint_d).
Prints, per draw and model, naive injection's means and each variant minus naive injection with its paired 95%
bootstrap interval (`stillmoving.world.stats.paired_bootstrap`, the demo's), and the customized T2I's own fidelity
where `evalt2i.py t2i_heavy[_sN]` ran.
"""

import os

os.makedirs(os.environ.get("STUDY_DIR", "runs/heavy_drift"), exist_ok=True)
os.chdir(os.environ.get("STUDY_DIR", "runs/heavy_drift"))  # every path below is relative to the study folder
import json
import sys
from pathlib import Path

import numpy as np

from stillmoving.world.stats import paired_bootstrap

MEASURES = ["fidelity", "consistency", "artifact", "speed"]


def metrics(name: str) -> list[dict] | None:
    path = Path(f"results/{name}.json")
    return json.loads(path.read_text())["metrics"] if path.exists() else None


def paired(a: list[dict], b: list[dict], key: str) -> str:
    """b minus a over the pairs, its 95% interval as the demo's claims compute it, bold where it excludes zero."""
    d = paired_bootstrap([m[key] for m in a], [m[key] for m in b])
    bold = "**" if d.low > 0 or d.high < 0 else ""
    return f"{bold}{d.estimate:+.3f} [{d.low:+.3f}, {d.high:+.3f}]{bold}"


def names(seed: int, joint: bool) -> tuple[str, str, str]:
    j = "_joint" if joint else ""
    if seed == 0:
        return f"naive_heavy{j}", f"sm_heavy{j}_d", f"sm_heavy{j}_d_dm"
    return f"naive_heavy{j}_s{seed}", f"sm_heavy{j}_s{seed}", f"sm_heavy{j}_s{seed}_dm"


def main(seeds: list[int]) -> None:
    print("| draw | video model | adapters | " + " | ".join(MEASURES) + " |")
    print("| --- | --- | --- | " + " | ".join("---" for _ in MEASURES) + " |")
    for seed in seeds:
        t2i = metrics("t2i_heavy" if seed == 0 else f"t2i_heavy_s{seed}")
        for joint in (False, True):
            naive, every, down_mid = (metrics(n) for n in names(seed, joint))
            if naive is None:
                continue
            model = "jointly trained" if joint else "AnimateDiff-like"
            own = " | ".join(f"{np.nanmean([m[k] for m in naive]):.3f}" for k in MEASURES)
            print(f"| {seed} | {model} | none (naive injection's own) | {own} |")
            for label, ours in (("every block", every), ("down, mid", down_mid)):
                if ours is not None:
                    cells = " | ".join(paired(naive, ours, k) for k in MEASURES)
                    print(f"| {seed} | {model} | {label} | {cells} |")
        if t2i is not None:
            own = np.nanmean([m["fidelity"] for m in t2i])
            print(f"| {seed} | (the customized T2I's own images) | | {own:.3f} | | | |")


if __name__ == "__main__":
    main([int(s) for s in sys.argv[1:]] or [0, 1, 2])
