"""Still-Moving against naive injection at the same amount of motion, both turning the motion knob (session 24).

At heavy drift naive injection nearly stands still and Still-Moving moves more, so "keeps 90% of the base T2V's motion"
and "more consistent than naive injection" are read at different amounts of motion. The paper's motion adapter at a
negative scale gives any variant more motion (`generate --motion-scale`). Here each variant is generated at alpha 0,
-0.25, -0.5 and -1; a measure is read off the piecewise-linear curve of its mean against the mean speed, in alpha
order, where the curve first reaches a target speed, and Still-Moving minus naive injection there is bootstrapped
over the prompt-seed pairs (every variant's videos of a pair resampled together; 2000 resamples, 95% percentile
interval). A resample where a curve does not reach the target counts against that variant (+-inf; both: against
Still-Moving). The rule, written before the runs it judged: docs/method.md, "Matched motion".

    python matched_motion.py world RESULTS MODEL BASE NAIVE VARIANT...   # evalv.py's results/NAME{,_m025,_m05,_m1}.json
    python matched_motion.py unseen RUNS NAIVE_TAGS VARIANT_TAGS...      # studies/unseen run folders, eval_g4/

`world`: the world oracle's measures (speed, consistency, artifact, fidelity), target 0.9 x the base T2V's mean
speed at alpha 0. `unseen`: studies/unseen/score.py's (the base T2V has no violet object, so the target is naive
injection's mean speed at alpha -0.5); each curve is four comma-separated run tags, alpha 0, -0.25, -0.5, -1 (naive
injection: the folder `naive` of each run, Still-Moving: `still_moving`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ALPHAS = ("", "_m025", "_m05", "_m1")  # alpha 0, -0.25, -0.5, -1 (evalv.py result names)
RESAMPLES = 2000


def at_speed(points: list[dict], idx: np.ndarray, target: float, key: str) -> float:
    """`key`'s mean where the curve of (mean speed, mean `key`) over `points` (alpha order) first reaches `target`
    speed, linearly between the two points around it; alpha 0's value if it is already there; NaN if never."""
    speeds = [np.nanmean(p["speed"][idx]) for p in points]
    values = [np.nanmean(p[key][idx]) for p in points]
    for i, speed in enumerate(speeds):
        if speed >= target:
            if i == 0:
                return values[0]
            share = (target - speeds[i - 1]) / (speed - speeds[i - 1])
            return values[i - 1] + share * (values[i] - values[i - 1])
    return float("nan")


def matched(naive: list[dict], ours: list[dict], target, keys: dict[str, float], seed: int = 0) -> dict:
    """{key: (Still-Moving minus naive at the target speed, 2.5th, 97.5th percentile, share of unreached
    resamples)}; `target(idx)` is the target speed of a resample, `keys` {measure: +1 if higher is better, else -1}."""
    n = len(naive[0]["speed"])
    rng = np.random.default_rng(seed)
    resamples = [np.arange(n)] + [rng.integers(0, n, n) for _ in range(RESAMPLES)]
    out = {}
    for key, better in keys.items():
        diffs = []
        for idx in resamples:
            speed = target(idx)
            a, b = at_speed(ours, idx, speed, key), at_speed(naive, idx, speed, key)
            diffs.append(-better * np.inf if np.isnan(a) else better * np.inf if np.isnan(b) else a - b)
        diffs = np.array(diffs)
        low, high = np.percentile(diffs[1:], [2.5, 97.5], method="nearest")  # no interpolation into an infinity
        out[key] = (diffs[0], float(low), float(high), float(np.isinf(diffs[1:]).mean()))
    return out


def table(name: str, naive: list[dict], variants: dict[str, list[dict]], target, keys: dict[str, float]) -> None:
    """Print each curve's means and each variant's matched-motion differences."""
    print(f"== {name}")
    for label, points in {"naive": naive, **variants}.items():
        cells = " | ".join(f"{k} " + " ".join(f"{np.nanmean(p[k]):.3f}" for p in points) for k in ("speed", *keys))
        print(f"   {label:24s} {cells}")
    for label, points in variants.items():
        cells = []
        for key, (diff, low, high, lost) in matched(naive, points, target, keys).items():
            cells.append(f"{key} {diff:+.3f} [{low:+.3f}, {high:+.3f}]" + (f" (unreached {lost:.0%})" if lost else ""))
        print(f"   {label} - naive: " + "; ".join(cells))


def world(results: str, model: str, base: str, naive: str, *variants: str) -> None:
    def curve(name: str) -> list[dict]:
        points = []
        for alpha in ALPHAS:
            metrics = json.loads((Path(results) / f"{name}{alpha}.json").read_text())["metrics"]
            points.append({k: np.array([m[k] for m in metrics], float) for k in metrics[0]})
        return points

    base_speed = np.array(
        [m["speed"] for m in json.loads((Path(results) / f"{base}.json").read_text())["metrics"]], float
    )
    keys = {"consistency": 1.0, "artifact": -1.0, "fidelity": 1.0}
    table(model, curve(naive), {v: curve(v) for v in variants}, lambda idx: 0.9 * np.nanmean(base_speed[idx]), keys)


def unseen(runs: str, naive_tags: str, *tags: str) -> None:
    sys.path.insert(0, str(Path(__file__).parents[1] / "unseen"))
    from score import score_folder  # noqa: PLC0415

    images = Path(runs).parents[1] / "images"  # RUNS is <out>/<drift>/<model>

    def curve(tags: str, variant: str) -> list[dict]:
        points = []
        for tag in tags.split(","):
            scores = score_folder(Path(runs) / tag / "eval_g4" / variant, images)
            points.append({k: np.array([s[k] for s in scores], float) for k in scores[0]})
        return points

    naive = curve(naive_tags, "naive")
    keys = {"consistency": 1.0, "background change": -1.0, "fidelity": 1.0}
    variants = {t: curve(t, "still_moving") for t in tags}
    table(str(runs), naive, variants, lambda idx: np.nanmean(naive[2]["speed"][idx]), keys)


if __name__ == "__main__":
    {"world": world, "unseen": unseen}[sys.argv[1]](*sys.argv[2:])
