"""The demo's report folder: enlarged GIFs side by side, a metrics table, a motion-vs-alpha plot, metrics.json."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stillmoving.data.video_io import upscale_nearest, write_video
from stillmoving.files import atomic_write, write_text

ENLARGE = 4  # 32 px videos become 128 px GIFs a person can see


@dataclass
class Variant:
    """One row of the report: a model variant, its videos and their metrics."""

    name: str  # e.g. "naive injection"
    description: str  # one line: what the variant is
    videos: list[np.ndarray] = field(default_factory=list)  # uint8 (F, H, W, 3) each
    captions: list[str] = field(default_factory=list)  # the prompt of each video
    metrics: list[dict[str, float]] = field(default_factory=list)  # per video


def summarize(metrics: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and spread (population std) of every metric over a variant's videos; NaNs ignored."""
    keys = sorted({k for m in metrics for k in m})
    summary = {}
    for key in keys:
        values = np.array([m.get(key, np.nan) for m in metrics], dtype=float)
        finite = values[np.isfinite(values)]
        summary[key] = {"mean": float(finite.mean()) if finite.size else float("nan"),
                        "std": float(finite.std()) if finite.size else float("nan"), "n": int(finite.size)}
    return summary


def _gif_cells(folder: Path, variant: Variant, slug: str, limit: int) -> str:
    cells = []
    for i, (video, caption) in enumerate(list(zip(variant.videos, variant.captions))[:limit]):
        name = f"{slug}_{i}.gif"
        write_video(upscale_nearest(video, ENLARGE), folder / "videos" / name, fps=6)
        cells.append(f'<figure><img src="videos/{name}" alt="{html.escape(caption)}">'
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    return "".join(cells)


def _table(rows: dict[str, dict[str, dict[str, float]]], columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for name, summary in rows.items():
        cells = "".join(
            f"<td>{summary[c]['mean']:.3f} &plusmn; {summary[c]['std']:.3f}</td>" if c in summary else "<td>-</td>"
            for c in columns)
        body.append(f"<tr><th>{html.escape(name)}</th>{cells}</tr>")
    return f"<table><tr><th>variant</th>{head}</tr>{''.join(body)}</table>"


def plot_motion_vs_alpha(alphas: list[float], means: list[float], stds: list[float], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 3.2), dpi=120)
    ax.errorbar(alphas, means, yerr=stds, marker="o", capsize=3)
    ax.set_xlabel("motion scale alpha")
    ax.set_ylabel("object displacement (px over the clip)")
    ax.set_title("Motion adapter as a motion knob")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
    return path


def write_report(folder: str | Path, title: str, sections: dict[str, list[Variant]], columns: list[str],
                 sweep: dict[str, list[float]] | None = None, notes: str = "", videos_per_variant: int = 4) -> Path:
    """index.html + metrics.json (+ motion_vs_alpha.png) in `folder`; returns the HTML path."""
    folder = Path(folder)
    parts = [f"<h1>{html.escape(title)}</h1>", f"<p>{notes}</p>" if notes else ""]
    record: dict = {"sections": {}}
    for section, variants in sections.items():
        summaries = {v.name: summarize(v.metrics) for v in variants}
        record["sections"][section] = {v.name: {"description": v.description, "summary": summaries[v.name],
                                                "per_video": v.metrics, "captions": v.captions} for v in variants}
        parts.append(f"<h2>{html.escape(section)}</h2>{_table(summaries, columns)}")
        for v in variants:
            slug = "".join(c if c.isalnum() else "_" for c in f"{section}_{v.name}")
            parts.append(f"<h3>{html.escape(v.name)}</h3><p>{html.escape(v.description)}</p>"
                         f'<div class="row">{_gif_cells(folder, v, slug, videos_per_variant)}</div>')
    if sweep:
        plot_motion_vs_alpha(sweep["alpha"], sweep["mean"], sweep["std"], folder / "motion_vs_alpha.png")
        record["motion_scale_sweep"] = sweep
        parts.append('<h2>Motion scale sweep</h2><img src="motion_vs_alpha.png" alt="motion against alpha">')
    style = ("<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
             "padding:3px 8px}.row{display:flex;flex-wrap:wrap;gap:8px}figure{margin:0;width:140px}"
             "img{image-rendering:pixelated}figcaption{font-size:11px}</style>")
    write_text(folder / "metrics.json", json.dumps(record, indent=2) + "\n")
    return write_text(folder / "index.html", f"<!doctype html><html><head><meta charset='utf-8'><title>"
                      f"{html.escape(title)}</title>{style}</head><body>{''.join(parts)}</body></html>\n")
