"""python frozen_cells.py BASE T2I NAIVE ADAPTERS [BASE T2I NAIVE ADAPTERS ...]: session 29's held-out rule, per cell.

A cell is one background of one (draw, video model): evalv.py's results BASE (the base T2V), NAIVE (naive injection)
and ADAPTERS (Still-Moving), and evalt2i.py's T2I (the customized T2I's own images of the same pairs). A cell is
"frozen" where naive injection's mean speed is below half the base T2V's and the customized T2I's own fidelity there
is at least 0.3 (it draws its subject). The rule, written before the held-out draws were made:
  H1: in every frozen cell the adapters move the subject more than naive injection (speed interval above zero);
  H2: in every cell that is not frozen and where the T2I draws its subject, the adapters make the path no smoother
      than naive injection's (smoothness interval not above zero).
Intervals: paired 95% bootstrap over the cell's (prompt, seed) pairs, the demo's (`stillmoving.world.stats`).
"""

import os

os.makedirs(os.environ.get("STUDY_DIR", "runs/heavy_drift"), exist_ok=True)
os.chdir(os.environ.get("STUDY_DIR", "runs/heavy_drift"))  # every path below is relative to the study folder
import sys

import numpy as np
from by_background import load, split

from stillmoving.world.stats import paired_bootstrap

DRAWS_SUBJECT = 0.3  # the customized T2I's fidelity from which it counts as drawing its subject


def cells(base: str, t2i: str, naive: str, adapters: str) -> None:
    captions, _ = load(base)
    b, t, n, a = (split(captions, load(name)[1]) for name in (base, t2i, naive, adapters))
    for background in b:

        def mean(metrics: dict[str, list[dict]], key: str, background: str = background) -> float:
            return float(np.nanmean([m[key] for m in metrics[background]]))

        def gap(key: str, background: str = background):
            return paired_bootstrap([m[key] for m in n[background]], [m[key] for m in a[background]])

        draws = mean(t, "fidelity") >= DRAWS_SUBJECT
        frozen = draws and mean(n, "speed") < mean(b, "speed") / 2
        speed, smooth, look = gap("speed"), gap("smoothness"), gap("fidelity")
        if frozen:
            verdict = "H1 " + ("holds" if speed.low > 0 else "fails")
        elif draws:
            verdict = "H2 " + ("fails" if smooth.low > 0 else "holds")
        else:
            verdict = "the T2I draws no subject: not a case"
        print(
            f"{adapters:10s} {background:5s} T2I fidelity {mean(t, 'fidelity'):.3f}, speed base {mean(b, 'speed'):.3f}"
            f" naive {mean(n, 'speed'):.3f}{' (frozen)' if frozen else ''} | adapters minus naive: speed "
            f"{speed.estimate:+.3f} [{speed.low:+.3f}, {speed.high:+.3f}], smoothness {smooth.estimate:+.3f} "
            f"[{smooth.low:+.3f}, {smooth.high:+.3f}], fidelity {look.estimate:+.3f} [{look.low:+.3f}, "
            f"{look.high:+.3f}] | {verdict}"
        )


if __name__ == "__main__":
    args = sys.argv[1:]
    if not args or len(args) % 4:
        raise SystemExit("error: give BASE T2I NAIVE ADAPTERS, one or more times")
    for k in range(0, len(args), 4):
        cells(*args[k : k + 4])
