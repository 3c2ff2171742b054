"""The README's demo tables, printed as markdown from a `stillmoving demo` report folder (its metrics.json and
claims.json), so the README's figures come from a run by one command and not by hand:

    python scripts/readme_tables.py demo-report

Per section: mean ± std over its videos of speed, static share, fidelity, consistency and artifact; the motion-scale
sweep's displacement per alpha on each video model; then Still-Moving minus naive injection with its paired 95%
interval per measure (bold where the interval lies wholly on the good side) and the better / no worse verdicts,
the drift study's other LoRA weights and heavily drifted subject included; then the drift study itself: per LoRA
weight or DreamBooth learning rate its drift, naive injection's consistency and artifact, and Still-Moving minus naive
injection on fidelity, consistency, artifact and speed (for the subject also on the blocks customize's check
recorded).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from stillmoving.world.claims import describe, side
from stillmoving.world.legend import ARTIFACT, CONSISTENCY, FIDELITY, SPEED
from stillmoving.world.stats import Interval

COLUMNS = ("speed", "is_static", "fidelity", "consistency", "artifact")
HEADS = ("speed", "static share", "fidelity", "consistency", "artifact")
COMPARED = (FIDELITY, CONSISTENCY, ARTIFACT)  # the measures "better" and "no worse" are judged on


def cell(summary: dict, key: str) -> str:
    figure = summary.get(key) or {}
    if figure.get("mean") is None:
        return "-"
    if key == "is_static":
        return f"{figure['mean']:.2f}"
    return f"{figure['mean']:.3f} ± {figure['std']:.3f}"


def section_table(name: str, variants: dict) -> str:
    lines = [f"| {name} | " + " | ".join(HEADS) + " |", "| --- " * (len(HEADS) + 1) + "|"]
    for variant, record in variants.items():
        lines.append(f"| {variant} | " + " | ".join(cell(record["summary"], k) for k in COLUMNS) + " |")
    return "\n".join(lines)


def interval(figure: dict | None, metric) -> str:
    """claims.json's interval as the report writes it, bold where it lies wholly on the good side."""
    if not figure or figure.get("estimate") is None:
        return "-"
    found = Interval(**{k: float("nan") if v is None else v for k, v in figure.items()})
    return f"**{describe(found)}**" if side(metric, found) == "good" else describe(found)


def verdict(claims: dict, section: str, claim: str) -> str:
    found = claims.get(section, {}).get(claim)
    if found is None:
        return "(not judged)"
    return {"holds": "**yes**" if claim == "better_than_naive" else "yes", "does not hold": "no"}.get(
        found["verdict"], "undecided"
    )


def sweep_row(label: str, variants: dict) -> str:
    means = [v["summary"]["displacement"]["mean"] for v in variants.values()]
    return f"| {label}: displacement over 8 frames (px) | " + " | ".join(f"{m:.2f}" for m in means) + " |"


def drift_label(point: dict) -> str:
    """A drift point as the table names it: the customization, what was varied, and the drift."""
    target = f"{point['target']}, " if point.get("target") else ""
    return f"{target}{point['setting']} ({point['drift']:.3f})"  # DriftPoint.setting, as claims.json records it


def drift_table(points: list[dict]) -> None:
    """The drift study (claims.json's `drift_study`): where naive injection breaks, and Still-Moving's difference (on
    every block, and on the blocks customize's check recorded where it recorded some)."""
    if not points:
        return
    shown = (*COMPARED, SPEED)
    heads = ("customization, setting (drift)", "naive injection: consistency / artifact", *(m.key for m in shown))
    print("\n| " + " | ".join(heads) + " |")
    print("| --- " * (len(shown) + 2) + "|")
    for point in points:
        naive = point["naive_injection_mean"]
        gaps = [("", point["still_moving_minus_naive"])]
        if point.get("recorded_blocks_minus_naive"):
            gaps.append((": customize's blocks", point["recorded_blocks_minus_naive"]))
        for suffix, gap in gaps:
            figures = " | ".join(interval(gap.get(m.key), m) for m in shown)
            print(
                f"| {drift_label(point)}{suffix} | {naive['consistency']:.3f} / {naive['artifact']:.3f} | {figures} |"
            )


def main(folder: Path) -> None:
    from stillmoving.world.demo import verdict_counts  # here: they import the models' libraries, slow to load
    from stillmoving.world.drift import drift_scope

    metrics = json.loads((folder / "metrics.json").read_text())["sections"]
    record = json.loads((folder / "claims.json").read_text())
    sweeps = [name for name in metrics if name.startswith("motion scale")]
    for name, variants in metrics.items():
        if name not in sweeps:
            print(section_table(name, variants), end="\n\n")
    alphas = [k.removeprefix("alpha ") for k in metrics[sweeps[0]]]
    print("| motion scale alpha (base T2V + motion adapter) | " + " | ".join(alphas) + " |")
    print("| --- " * (len(alphas) + 1) + "|")
    for name in sweeps:
        print(sweep_row("jointly trained V" if "(joint V)" in name else "AnimateDiff-like V", metrics[name]))
    print("\n| section | fidelity | consistency | artifact | verdict: better / no worse |")
    print("| --- | --- | --- | --- | --- |")
    rows = [(s, d, s) for s, d in record["still_moving_minus_naive"].items() if "ControlNet" not in s]
    target = record["config"]["drift_target"]
    for point in record.get("drift_study", []):  # a subject's points are sections of their own, in the rows above
        if point["lora_weight"] not in (1.0, None):  # weight 1 is the target's own section
            judged = drift_scope(target, point["lora_weight"], point["drift"])
            rows.append((f"{target}, {point['setting']}", point["still_moving_minus_naive"], judged))
    for label, gaps, section in rows:
        figures = " | ".join(interval(gaps.get(m.key), m) for m in COMPARED)
        verdicts = f"{verdict(record['claims'], section, 'better_than_naive')} / "
        verdicts += verdict(record["claims"], section, "no_worse_than_naive")
        print(f"| {label} | {figures} | {verdicts} |")
    drift_table(record.get("drift_study", []))
    counts, _ = verdict_counts(folder / "claims.json")
    print(f"\nverdicts: {counts}; total {record['timings_s']['total'] / 60:.1f} min")


if __name__ == "__main__":
    if len(sys.argv) != 2 or not (Path(sys.argv[1]) / "claims.json").is_file():
        print("error: give a `stillmoving demo` report folder (with claims.json and metrics.json)", file=sys.stderr)
        sys.exit(2)
    main(Path(sys.argv[1]))
