"""The demo's drift study: naive injection against Still-Moving as the customization drifts further from M.

The style LoRA is fused at several weights s (W + s * B A), so one trained customization gives a family
whose drift, the relative change of the T2I UNet's weights ||W_M1 - W_M|| / ||W_M||, grows linearly with s.
At each weight the demo generates naive injection and Still-Moving (spatial adapters trained at that
weight) on the same prompts and seeds, and reports Still-Moving minus naive injection for every metric
with its paired 95% interval, and a figure of consistency, artifacts and speed against the drift; and it
judges two claims on it (`drift_claims`): no worse at the lightest drift, better at the heaviest.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from pathlib import Path

import torch

from stillmoving.files import atomic_write
from stillmoving.injection import relative_distance, t2i_unet_from_t2v
from stillmoving.loading import load_customized, load_t2v
from stillmoving.world.claims import NAIVE, OURS, Claim, better_than_naive, describe, differences, no_worse_than_naive
from stillmoving.world.legend import Metric
from stillmoving.world.stats import Interval
from stillmoving.world.variants import Variant, summarize

FIGURE = "drift.png"
PLOTTED = ("consistency", "artifact", "speed")  # the figure's panels


@dataclass
class DriftPoint:
    """One LoRA weight: its drift, both variants' videos, and Still-Moving minus naive injection."""

    lora_weight: float
    drift: float  # ||W_M1 - W_M|| / ||W_M|| over the T2I UNet's weights
    naive: Variant
    ours: Variant
    gap: dict[str, Interval]


@torch.no_grad()
def relative_drift(model: str, customized: str | None, loras: list[tuple[str, float]]) -> float:
    """||W_M1 - W_M|| / ||W_M|| over every weight of the T2I UNet (M: the video model's own T2I)."""
    t2v = load_t2v(model)
    base = t2i_unet_from_t2v(t2v.unet).state_dict()
    return relative_distance(base, load_customized(t2v, customized, loras).unet.state_dict())


def drift_point(
    weight: float, drift: float, naive: Variant, ours: Variant, columns: list[Metric], seed: int
) -> DriftPoint:
    return DriftPoint(weight, drift, naive, ours, differences(ours, naive, columns, seed))


def drift_claims(points: list[DriftPoint], target: str) -> list[Claim]:
    """The issue's two targets read on the drift study: at the lightest drift, where naive injection still
    works, Still-Moving is no worse; at the heaviest, where it breaks, Still-Moving is better."""
    if len(points) < 2:
        return []
    light, heavy = min(points, key=lambda p: p.drift), max(points, key=lambda p: p.drift)
    return [
        no_worse_than_naive(drift_scope(target, light.lora_weight, light.drift), light.gap),
        better_than_naive(drift_scope(target, heavy.lora_weight, heavy.drift), heavy.gap),
    ]


def drift_scope(target: str, lora_weight: float, drift: float) -> str:
    """The section a drift claim is filed under in claims.json, e.g. 'crayon at LoRA weight 2 (drift 0.124)'."""
    return f"{target} at LoRA weight {lora_weight:g} (drift {drift:.3f})"


def _means(variant: Variant) -> dict[str, float]:
    """Every metric's mean over the variant's videos (NaNs ignored; NaN where none is finite)."""
    return {key: s["mean"] for key, s in summarize(variant.metrics).items()}


def plot_drift(points: list[DriftPoint], path: Path) -> Path:
    """Consistency, artifacts and speed of naive injection and Still-Moving against the drift."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    drifts = [p.drift for p in points]
    lines = {NAIVE.label: [_means(p.naive) for p in points], OURS.label: [_means(p.ours) for p in points]}
    fig, axes = plt.subplots(1, len(PLOTTED), figsize=(4 * len(PLOTTED), 3.2), dpi=110)
    for ax, key in zip(axes, PLOTTED):
        for name, means in lines.items():
            ax.plot(drifts, [m.get(key, float("nan")) for m in means], marker="o", label=name)
        ax.set_xlabel("drift ||M1 - M|| / ||M||")
        ax.set_title(key)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
    return path


def drift_html(points: list[DriftPoint], columns: list[Metric], target: str) -> str:
    """The section: what was varied, the figure, and the table of Still-Moving minus naive injection."""
    head = "".join(f"<th>{escape(m.key)}</th>" for m in columns)
    rows = "".join(
        f"<tr><th>{p.lora_weight:g}</th><td>{p.drift:.3f}</td>"
        + "".join(f"<td>{escape(describe(p.gap[m.key]))}</td>" for m in columns)
        + "</tr>"
        for p in points
    )
    return (
        f'<h2 id="drift">Drift study ({escape(target)})</h2>'
        f"<p>The {escape(target)} LoRA fused at several weights: the further the customized T2I drifts from "
        "the video model's own, the more naive injection should suffer. Each cell: Still-Moving minus naive "
        "injection, mean and paired 95% interval over the same (prompt, seed) pairs.</p>"
        f'<img src="{FIGURE}" style="max-width:100%" alt="consistency, artifacts and speed against the drift">'
        f"<table><tr><th>LoRA weight</th><th>drift</th>{head}</tr>{rows}</table>"
    )


def drift_record(points: list[DriftPoint]) -> list[dict]:
    """claims.json's drift_study: per LoRA weight, the drift, both variants' means and every interval."""
    return [
        {
            "lora_weight": p.lora_weight,
            "drift": p.drift,
            "naive_injection_mean": {k: _means(p.naive).get(k, float("nan")) for k in p.gap},
            "still_moving_mean": {k: _means(p.ours).get(k, float("nan")) for k in p.gap},
            "still_moving_minus_naive": {k: vars(v) for k, v in p.gap.items()},
        }
        for p in points
    ]
