"""The world's oracle on `customize`'s own validation videos (session 28): does it order the two sets of blocks there as
it does on the 16 evaluation pairs of `blocks_oracle.py`? Separates what the check's eight videos can show from what
its colour readings make of them.

    .venv/bin/python studies/unseen/check_oracle.py TARGET RUN [RUN ...]    # TARGET: star, crayon or neon

Prints per run the oracle's mean fidelity of naive injection, every block and the down and mid blocks over the
validation videos (`validation/{naive_injection,still_moving,still_moving_down_mid}_*.gif`, prompts from
`validation.json`), and the down and mid blocks minus every block.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from stillmoving.data.video_io import read_video
from stillmoving.world.metrics import video_metrics

SETS = ("naive_injection", "still_moving", "still_moving_down_mid")


def fidelity(run: Path, name: str, prompts: list[str], target: str) -> float:
    gifs = (run / "validation" / f"{name}_{i:03d}.gif" for i in range(len(prompts)))
    return float(
        np.mean([video_metrics(read_video(g), prompt=p, target=target)["fidelity"] for g, p in zip(gifs, prompts)])
    )


def main(target: str, *runs: str) -> None:
    for run in map(Path, runs):
        prompts = json.loads((run / "validation.json").read_text())["prompts"]
        naive, every, down_mid = (fidelity(run, name, prompts, target) for name in SETS)
        print(
            f"{run}: naive injection {naive:.3f}, every block {every:.3f}, down and mid {down_mid:.3f}, "
            f"down and mid minus every block {down_mid - every:+.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main(*sys.argv[1:])
