"""The demo's report folder: index.html, the enlarged videos it shows, motion_vs_alpha.png, metrics.json.

The page reads top-down: the verdicts on the paper's claims, a legend of the metrics, then per
customization the metrics table (with Still-Moving minus naive injection and its interval) and the
videos as a grid, one row per (prompt, seed) and one column per variant.
"""

from __future__ import annotations

import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from html import escape
from pathlib import Path

import numpy as np

from stillmoving.data.video_io import upscale_nearest, write_image, write_video
from stillmoving.files import atomic_write, write_text
from stillmoving.world import report_html
from stillmoving.world.claims import GAP, KEEP, STATIC_SHARE, Findings
from stillmoving.world.legend import Metric
from stillmoving.world.variants import Key, Variant, summarize

__all__ = ["Page", "Variant", "json_safe", "plot_motion_vs_alpha", "summarize", "write_report"]

ENLARGE = 4  # 32 px videos become 128 px GIFs a person can see
GRID_ROWS = 16  # (prompt, seed) rows shown per section; metrics.json keeps every video's figures


@dataclass
class Page:
    """Everything the report shows."""

    title: str
    sections: dict[str, list[Variant]]  # heading -> variants, each a table row and a grid column
    columns: list[Metric]
    findings: Findings | None = None  # the verdicts and, per section, Still-Moving minus naive injection
    sweep: dict[str, list[float]] | None = None  # "alpha", "mean", "std" of displacement: the plot
    sweep_section: str = ""  # the section holding the sweep's videos; the plot heads it
    notes: str = ""  # plain text under the title
    drift: str = ""  # the drift study's section (world/drift.py), shown after the legend
    grid_rows: int = GRID_ROWS


def json_safe(value):
    """NaN and infinities become null, recursively, so metrics.json and claims.json are strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


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


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text)


def section_keys(variants: list[Variant]) -> list[Key]:
    """The (prompt, seed) keys of a section, once each, in the order they were generated."""
    return list(dict.fromkeys(key for v in variants for key in v.keys()))


def write_media(folder: Path, section: str, variants: list[Variant], rows: list[Key]) -> dict[str, dict[Key, str]]:
    """Enlarged GIFs (PNG for a still image) of the grid's videos; variant -> key -> path relative to `folder`.
    Written by one thread per CPU core: Pillow releases the GIL while it reduces a frame to GIF's palette, the
    cost of a GIF, so the page's several hundred take half the time on 2 cores."""
    media: dict[str, dict[Key, str]] = {}
    files: dict[str, np.ndarray] = {}
    wanted = set(rows)
    for v in variants:
        for index, (key, video) in enumerate(zip(v.keys(), v.videos)):
            if key not in wanted:
                continue
            name = f"videos/{_slug(f'{section}_{v.name}')}_{index}.{'png' if len(video) == 1 else 'gif'}"
            files[name] = video
            media.setdefault(v.name, {})[key] = name
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        list(pool.map(lambda item: _write_enlarged(folder / item[0], item[1]), files.items()))
    return media


def _write_enlarged(path: Path, video: np.ndarray) -> None:
    big = upscale_nearest(video, ENLARGE)
    if len(video) == 1:
        write_image(big[0], path)
    else:
        write_video(big, path, fps=6)


def _section(folder: Path, page: Page, name: str, variants: list[Variant]) -> str:
    measured = [m for m in page.columns if any(m.key in x for v in variants for x in v.metrics)]
    skipped = [m.key for m in page.columns if m not in measured]
    gaps = page.findings.differences if page.findings else {}
    keys = section_keys(variants)
    rows, total = keys[: page.grid_rows], len(keys)
    parts = [f'<h2 id="{_slug(name)}">{escape(name)}</h2>']
    if page.sweep and name == page.sweep_section:
        parts.append('<img src="motion_vs_alpha.png" alt="object displacement against the motion scale alpha">')
    parts.append(report_html.metrics_table(variants, measured, (GAP, gaps[name]) if name in gaps else None))
    if skipped:
        parts.append(f'<p class="note">Not measured for these videos: {escape(", ".join(skipped))}.</p>')
    shown = f"all {total}" if len(rows) == total else f"the first {len(rows)} of {total}"
    parts.append(
        f"<h3>Videos: {shown} (prompt, seed) pairs, the same in every column</h3>"
        + report_html.video_grid(variants, write_media(folder, name, variants, rows), rows, measured)
    )
    return "".join(parts)


def _record(page: Page) -> dict:
    return {
        "sections": {section: {v.name: v.record() for v in variants} for section, variants in page.sections.items()},
        **({"motion_scale_sweep": page.sweep} if page.sweep else {}),
    }


def _head(page: Page) -> str:
    links = ["verdicts", "legend"] if page.findings else ["legend"]
    links += ["drift"] * bool(page.drift) + list(page.sections)
    nav = " &middot; ".join(f'<a href="#{_slug(x)}">{escape(x)}</a>' for x in links)
    parts = [
        f"<h1>{escape(page.title)}</h1>",
        f'<p class="intro">{escape(page.notes)}</p>' if page.notes else "",
        f"<p>{nav}</p>",
    ]
    if page.findings:
        parts += [
            '<h2 id="verdicts">Verdicts on the paper\'s claims</h2>',
            report_html.verdict_list(page.findings.claims),
            report_html.verdict_rules(KEEP, STATIC_SHARE),
        ]
    parts += ['<h2 id="legend">What the metrics measure</h2>', report_html.legend(page.columns), page.drift]
    return "".join(parts)


def _foot(page: Page) -> str:
    also = " and claims.json (the verdicts and their intervals)" if page.findings else ""
    return f'<p class="note">Every number of this page is in metrics.json (per video){also}, next to it.</p>'


def write_report(folder: str | Path, page: Page) -> Path:
    """index.html + metrics.json (+ motion_vs_alpha.png) in `folder`; returns the HTML path."""
    folder = Path(folder)
    if page.sweep:
        plot_motion_vs_alpha(page.sweep["alpha"], page.sweep["mean"], page.sweep["std"], folder / "motion_vs_alpha.png")
    body = _head(page) + "".join(_section(folder, page, name, variants) for name, variants in page.sections.items())
    write_text(folder / "metrics.json", json.dumps(json_safe(_record(page)), indent=2, allow_nan=False) + "\n")
    return write_text(
        folder / "index.html",
        f"<!doctype html><html><head><meta charset='utf-8'><title>"
        f"{escape(page.title)}</title><style>{report_html.STYLE}</style></head><body>{body}{_foot(page)}"
        "</body></html>\n",
    )
