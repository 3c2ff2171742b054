"""The demo's drift study: naive injection against Still-Moving as the customization drifts further from M.

The style LoRA is fused at several weights s (W + s * B A), so one trained customization gives a family
whose drift, the relative change of the T2I UNet's weights ||W_M1 - W_M|| / ||W_M||, grows linearly with s.
At each weight the demo generates naive injection and Still-Moving (spatial adapters trained at that
weight) on the same prompts and seeds, and reports Still-Moving minus naive injection for every metric
with its paired 95% interval, and a figure of consistency, artifacts and speed against the drift; and it
judges two claims on it (`drift_claims`): no worse at the lightest drift, better at the heaviest.

The subject is made again by `t2i dreambooth` at a higher learning rate (`DemoConfig.subject_drift_lrs`), the
heavily drifted subject of docs/method.md, whose naive injection loses motion and whose every-block adapters
flicker. There `customize` runs as a user's does, its end-of-run check included: where the check records blocks
(the down and mid blocks' adapters, when every block's are worse than naive injection and those not), the point
also holds Still-Moving as `generate --customization` then applies it (`RECORDED`). Its claims
(`subject_drift_claims`) are the issue's where naive injection breaks: better than naive injection, keeping 90% of
the customized T2I's fidelity and of the base T2V's motion, and no worse on any measure (a "better" on artifacts can
stand beside a loss of consistency), for both readings of Still-Moving.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from pathlib import Path

import torch

from stillmoving.files import atomic_write
from stillmoving.injection import relative_distance, t2i_unet_from_t2v
from stillmoving.loading import load_customized, load_t2v
from stillmoving.world.claims import (
    FIDELITY_FLOOR,
    NAIVE,
    OURS,
    RECORDED,
    Claim,
    better_than_naive,
    describe,
    differences,
    no_worse_than_naive,
    share_kept,
)
from stillmoving.world.legend import Metric
from stillmoving.world.stats import Interval
from stillmoving.world.variants import Variant, summarize

FIGURE = "drift.png"
PLOTTED = ("consistency", "artifact", "speed")  # the figure's panels


@dataclass
class DriftPoint:
    """One customization at one strength: its drift, both variants' videos, and Still-Moving minus naive injection;
    for a subject, Still-Moving with the blocks customize's check recorded too, where it recorded some."""

    lora_weight: float | None  # the style's LoRA weight; None for a subject (`dreambooth_lr`)
    drift: float  # ||W_M1 - W_M|| / ||W_M|| over the T2I UNet's weights
    naive: Variant
    ours: Variant
    gap: dict[str, Interval]
    target: str  # the customization ("crayon", "star")
    dreambooth_lr: float | None = None  # the subject's DreamBooth learning rate
    recorded: Variant | None = None  # Still-Moving on the blocks customize's check recorded (`RECORDED`)
    recorded_gap: dict[str, Interval] = field(default_factory=dict)  # its minus naive injection

    @property
    def setting(self) -> str:
        """What was varied, as the page shows it: "LoRA weight 2" or "DreamBooth lr 0.0005"."""
        if self.dreambooth_lr is not None:
            return f"DreamBooth lr {self.dreambooth_lr:g}"
        return f"LoRA weight {self.lora_weight:g}"

    @property
    def scope(self) -> str:
        """The section a claim on this point is filed under in claims.json (and the subject's section of the page)."""
        if self.dreambooth_lr is not None:
            return subject_scope(self.target, self.dreambooth_lr, self.drift)
        return drift_scope(self.target, self.lora_weight, self.drift)


@torch.no_grad()
def relative_drift(model: str, customized: str | None, loras: list[tuple[str, float]]) -> float:
    """||W_M1 - W_M|| / ||W_M|| over every weight of the T2I UNet (M: the video model's own T2I)."""
    t2v = load_t2v(model)
    base = t2i_unet_from_t2v(t2v.unet).state_dict()
    return relative_distance(base, load_customized(t2v, customized, loras).unet.state_dict())


def drift_point(
    weight: float, drift: float, naive: Variant, ours: Variant, columns: list[Metric], seed: int, target: str
) -> DriftPoint:
    return DriftPoint(weight, drift, naive, ours, differences(ours, naive, columns, seed), target)


def subject_drift_point(
    target: str,
    lr: float,
    drift: float,
    variants: dict[str, Variant],
    columns: list[Metric],
    seed: int,
) -> DriftPoint:
    """The subject at DreamBooth learning rate `lr`, from its variants by id (naive injection, Still-Moving and,
    where customize's check recorded blocks, `RECORDED`)."""
    naive, ours, recorded = variants[NAIVE.id], variants[OURS.id], variants.get(RECORDED.id)
    point = DriftPoint(None, drift, naive, ours, differences(ours, naive, columns, seed), target, lr, recorded)
    if recorded is not None:
        point.recorded_gap = differences(recorded, naive, columns, seed)
    return point


def drift_claims(points: list[DriftPoint]) -> list[Claim]:
    """The issue's two targets read on the style's drift: at the lightest drift, where naive injection still
    works, Still-Moving is no worse; at the heaviest, where it breaks, Still-Moving is better. Neither is judged
    again at LoRA weight 1: that point is the style's own section, whose claims judge the same videos."""
    points = [p for p in points if p.lora_weight is not None]
    if len(points) < 2:
        return []
    light, heavy = min(points, key=lambda p: p.drift), max(points, key=lambda p: p.drift)
    judged = [(no_worse_than_naive, light), (better_than_naive, heavy)]
    return [claim(drift_scope(p.target, p.lora_weight, p.drift), p.gap) for claim, p in judged if p.lora_weight != 1.0]


def subject_drift_claims(point: DriftPoint, t2i: Variant, base: Variant, seed: int) -> list[Claim]:
    """The issue's targets where naive injection breaks, read on a heavily drifted subject: Still-Moving better than
    naive injection, keeping 90% of the customized T2I's fidelity (`t2i`, its images at this drift) and of the base
    T2V's motion (`base`), and no worse than naive injection on any measure; for every block's adapters (the
    paper's) and, where customize's check recorded blocks, for those (`recorded_scope`)."""
    judged = [(point.scope, point.ours, point.gap)]
    if point.recorded is not None:
        judged.append((recorded_scope(point.scope), point.recorded, point.recorded_gap))
    look, motion = "customized T2I's fidelity", "base T2V's motion (speed)"
    return [
        claim
        for scope, ours, gap in judged
        for claim in (
            better_than_naive(scope, gap),
            share_kept(scope, "fidelity_kept", "fidelity", look, t2i, ours, seed, FIDELITY_FLOOR),
            share_kept(scope, "motion_kept", "speed", motion, base, ours, seed),
            no_worse_than_naive(scope, gap),  # "better" on one measure can hide a loss on another
        )
    ]


def drift_scope(target: str, lora_weight: float, drift: float) -> str:
    """The section a drift claim is filed under in claims.json, e.g. 'crayon at LoRA weight 2 (drift 0.124)'."""
    return f"{target} at LoRA weight {lora_weight:g} (drift {drift:.3f})"


def subject_scope(target: str, lr: float, drift: float) -> str:
    """The subject's drift section and claims' scope, e.g. 'star at DreamBooth lr 0.0005 (drift 0.280)'."""
    return f"{target} at DreamBooth lr {lr:g} (drift {drift:.3f})"


def recorded_scope(scope: str) -> str:
    """The scope of the claims on Still-Moving with the blocks customize's check recorded."""
    return f"{scope}, customize's blocks"


def _means(variant: Variant) -> dict[str, float]:
    """Every metric's mean over the variant's videos (NaNs ignored; NaN where none is finite)."""
    return {key: s["mean"] for key, s in summarize(variant.metrics).items()}


def _lines(points: list[DriftPoint]) -> dict[str, list[tuple[float, dict[str, float]]]]:
    """The figure's lines: per customization and variant, (drift, every metric's mean) in order of drift."""
    lines: dict[str, list[tuple[float, dict[str, float]]]] = {}
    for p in sorted(points, key=lambda p: p.drift):
        for kind, variant in ((NAIVE, p.naive), (OURS, p.ours), (RECORDED, p.recorded)):
            if variant is not None:
                lines.setdefault(f"{p.target}: {kind.label}", []).append((p.drift, _means(variant)))
    return lines


def plot_drift(points: list[DriftPoint], path: Path) -> Path:
    """Consistency, artifacts and speed of naive injection and Still-Moving against the drift, one line per
    customization and variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(PLOTTED), figsize=(4.4 * len(PLOTTED), 3.6), dpi=110)
    for ax, key in zip(axes, PLOTTED):
        for name, line in _lines(points).items():
            style = "--" if NAIVE.label in name else ":" if RECORDED.label in name else "-"
            ax.plot([d for d, _ in line], [m.get(key, float("nan")) for _, m in line], style, marker="o", label=name)
        ax.set_xlabel("drift ||M1 - M|| / ||M||")
        ax.set_title(key)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
    return path


def _row(label: str, point: DriftPoint, gap: dict[str, Interval], columns: list[Metric]) -> str:
    cells = "".join(f"<td>{escape(describe(gap[m.key]))}</td>" for m in columns)
    return f"<tr><th>{escape(label)}</th><td>{point.drift:.3f}</td>{cells}</tr>"


def drift_html(points: list[DriftPoint], columns: list[Metric]) -> str:
    """The section: what was varied, the figure, and the table of Still-Moving minus naive injection."""
    head = "".join(f"<th>{escape(m.key)}</th>" for m in columns)
    rows = "".join(
        _row(f"{p.target}, {p.setting}", p, p.gap, columns)
        + (_row(f"{p.target}, {p.setting}: {RECORDED.label}", p, p.recorded_gap, columns) if p.recorded else "")
        for p in points
    )
    styles = sorted({p.target for p in points if p.lora_weight is not None})
    subjects = sorted({p.target for p in points if p.dreambooth_lr is not None})
    varied = [f"the {escape(t)} LoRA fused at several weights" for t in styles]
    varied += [f"the {escape(t)}'s DreamBooth made again at a higher learning rate" for t in subjects]
    recorded = (
        f" Where <code>customize</code>'s end-of-run check finds the subject's adapters worse than naive injection "
        f"on every block and records the blocks whose adapters are not, the rows &ldquo;{escape(RECORDED.label)}"
        "&rdquo; are Still-Moving as <code>generate --customization</code> then applies it."
        if any(p.recorded for p in points)
        else ""
    )
    varied_text = "; ".join(varied)
    return (
        f'<h2 id="drift">Drift study ({escape(", ".join(styles + subjects))})</h2>'
        f"<p>{varied_text[:1].upper() + varied_text[1:]}: the further the customized T2I drifts from the video "
        "model's own, the more naive injection should suffer. Each cell: Still-Moving minus naive injection, mean "
        f"and paired 95% interval over the same (prompt, seed) pairs.{recorded}</p>"
        f'<img src="{FIGURE}" style="max-width:100%" alt="consistency, artifacts and speed against the drift">'
        f"<table><tr><th>customization</th><th>drift</th>{head}</tr>{rows}</table>"
    )


def drift_record(points: list[DriftPoint]) -> list[dict]:
    """claims.json's drift_study: per point, the customization, what was varied, the drift, both variants' means and
    every interval (and Still-Moving's on customize's recorded blocks, where there are some)."""
    records = []
    for p in points:
        record = {
            "target": p.target,
            "lora_weight": p.lora_weight,
            "dreambooth_lr": p.dreambooth_lr,
            "setting": p.setting,
            "drift": p.drift,
            "naive_injection_mean": {k: _means(p.naive).get(k, float("nan")) for k in p.gap},
            "still_moving_mean": {k: _means(p.ours).get(k, float("nan")) for k in p.gap},
            "still_moving_minus_naive": {k: vars(v) for k, v in p.gap.items()},
        }
        if p.recorded is not None:
            record["recorded_blocks_mean"] = {k: _means(p.recorded).get(k, float("nan")) for k in p.recorded_gap}
            record["recorded_blocks_minus_naive"] = {k: vars(v) for k, v in p.recorded_gap.items()}
        records.append(record)
    return records
