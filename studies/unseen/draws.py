"""python studies/unseen/draws.py ROOT [ROOT ...] [--tags T,T] [--drift heavy]: one table over DreamBooth draws.

Each ROOT is one `run.py` output folder (one DreamBooth draw: `T2I_SEED=N run.py ROOT`); its results.jsonl holds one
line per (drift, video model, tag). Prints, per root, model and tag, Still-Moving minus naive injection with the paired
95% interval of each measure (bold where the interval excludes zero), naive injection's own figure first. The last
line of a (drift, model, tag) wins, so a rerun replaces an earlier one.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

MEASURES = ("fidelity", "consistency", "background change", "speed")


def cell(values: dict) -> str:
    mean, low, high = values["diff"]
    bold = "**" if low > 0 or high < 0 else ""
    return f"{bold}{mean:+.3f} [{low:+.3f}, {high:+.3f}]{bold}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("roots", nargs="+")
    parser.add_argument("--tags", default="default", help="comma list of run.py TAGs, in the table's order")
    parser.add_argument("--drift", default="heavy")
    args = parser.parse_args()
    tags = args.tags.split(",")
    names = " / ".join(MEASURES)
    print(f"| draw | video model | adapters (tag) | naive injection's own: {names} | " + " | ".join(MEASURES) + " |")
    print("| --- | --- | --- | --- | " + " | ".join("---" for _ in MEASURES) + " |")
    for root in args.roots:
        records = {}
        for line in (Path(root) / "results.jsonl").read_text().splitlines():
            r = json.loads(line)
            if r["drift"] == args.drift:
                records[(r["model"], r["tag"])] = r
        for model in ("animatediff", "joint"):
            for tag in tags:
                r = records.get((model, tag))
                if r is None:
                    continue
                own = " / ".join(f"{r[m]['naive']:.3f}" for m in MEASURES)
                cells = " | ".join(cell(r[m]) for m in MEASURES)
                print(f"| {Path(root).name} | {model} | {tag} | {own} | {cells} |")


if __name__ == "__main__":
    main()
