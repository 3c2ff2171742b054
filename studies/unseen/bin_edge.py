"""Where a run's consistency gap sits: per background, and how near the gray background's red sits to a bin edge.

`score.py`'s consistency bins each channel into 4 levels (edges at 64, 128, 192). A background whose mean red sits
near 128 moves its whole mass between two bins for a change of a few grey levels, which the binned figure reads as
a large drop and the unbinned background change does not (session 15). This prints, for naive injection and each
named variant of one drift and video model of `run.py`, the binned consistency per background (Still-Moving minus
naive injection, paired over that background's videos), and for the gray-background videos the background's mean
colour, its mean |change| per frame and channel (grey levels) and the share of frames whose background red lies
within 8 levels of 128.

    .venv/bin/python studies/unseen/bin_edge.py runs/unseen/heavy/animatediff default gdm [eval_g4]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from run import PROMPTS  # noqa: E402
from score import background_colours, histogram_consistency, load  # noqa: E402

EDGE, NEAR = 128, 8  # the bin edge the world's gray backgrounds come near, and what counts as near it


def background_of(prompt: str) -> str:
    return prompt.split(" on a ")[1].split()[0]


def videos(folder: Path) -> list[np.ndarray]:
    return [load(p) for p in sorted(folder.glob("*.gif"))]


def main(run: str, *tags: str) -> None:
    evaluation = tags[-1] if tags and tags[-1].startswith("eval") else "eval_g4"
    tags = tuple(t for t in tags if t != evaluation) or ("default",)
    root = Path(run)
    naive = videos(root / tags[0] / evaluation / "naive")
    per_prompt = len(naive) // len(PROMPTS)  # run.py's order: each prompt SEEDS times
    names = [background_of(PROMPTS[i // per_prompt]) for i in range(len(naive))]
    gray = [i for i, n in enumerate(names) if n == "gray"]
    base = np.array([histogram_consistency(v) for v in naive])
    for tag, vs in [("naive", naive)] + [(t, videos(root / t / evaluation / "still_moving")) for t in tags]:
        scores = np.array([histogram_consistency(v) for v in vs])
        gaps = {
            n: float((scores - base)[[i for i, m in enumerate(names) if m == n]].mean()) for n in dict.fromkeys(names)
        }
        colours = [background_colours(vs[i]) for i in gray]
        mean = np.mean([c.mean(axis=0) for c in colours], axis=0)
        change = np.mean([np.abs(np.diff(c, axis=0)).mean(axis=0) for c in colours], axis=0)
        near = np.mean([np.mean(np.abs(c[:, 0] - EDGE) < NEAR) for c in colours])
        print(
            f"{tag:10s} consistency minus naive: "
            + ", ".join(f"{n} {g:+.3f}" for n, g in gaps.items())
            + f" | gray background RGB {np.round(mean, 1).tolist()}, change per frame {np.round(change, 2).tolist()},"
            f" red within {NEAR} of {EDGE} in {near:.0%} of frames"
        )


if __name__ == "__main__":
    main(*sys.argv[1:])
