"""Delta injection (`generate --base-t2i`) for a subject nobody here has seen, through the user's commands: the
violet gem of `run.py` (its DreamBooths at the mild and heavy learning rates, made as there) on the jointly trained
model, `generate --customized` (naive injection) against the same with `--base-t2i` the first world model (M, the T2I
the DreamBooths were made from), and the base T2V, at the world's sampling (15 steps, guidance 4); scored by
`score.py`'s colour measures, delta injection minus naive injection with paired 95% intervals (session 31).

    .venv/bin/python studies/unseen/delta.py runs/unseen [mild heavy]
Writes <out>/<drift>/joint/delta_g4/{naive,delta}/*.gif and one JSON line per drift into <out>/delta.jsonl.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from run import cli, customized_t2i, prepared, repeated  # noqa: E402  (this folder)
from score import METRICS, summarize  # noqa: E402

from stillmoving.world.weights import shipped_model

SETTING = ["--height", "32", "--width", "32", "--num-frames", "8", "--steps", "15", "--guidance-scale", "4"]


def main(out: str, *which: str) -> None:
    root, drifts, _, prompts, images, score = prepared(out, which)
    joint, first = str(shipped_model("joint")), str(shipped_model())

    def generate(folder: Path, *source: str) -> list[dict]:
        if not folder.exists():
            folder.mkdir(parents=True)
            cli(folder.parent / f"{folder.name}.log", "generate", *source, *repeated("--prompt", prompts),
                "-o", str(folder / "v.gif"), "--seed", "0", "--device", "cpu", *SETTING)  # fmt: skip
        return score(folder)

    base = generate(root / "base_joint" / "delta_g4", "--model", joint)
    for drift in drifts:
        t2i = customized_t2i(root, drift, images)[1]  # ["--customized", T2I, ...]: the DreamBooth's folder
        runs = root / drift / "joint" / "delta_g4"
        naive = generate(runs / "naive", "--model", joint, "--customized", t2i)
        delta = generate(runs / "delta", "--model", joint, "--customized", t2i, "--base-t2i", first)
        record = {"drift": drift, "model": "joint", "pairs": len(naive), **summarize(naive, delta, METRICS)}
        record["base T2V"] = {m: round(float(np.nanmean([v[m] for v in base])), 3) for m in METRICS}
        print(json.dumps(record), flush=True)
        with (root / "delta.jsonl").open("a") as f:
            f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
