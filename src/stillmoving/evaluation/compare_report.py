"""`compare`'s report folder: index.html, metrics.json, metrics.png and the page's GIFs.

The page follows the demo's (world/report_html.py pieces): a legend of the metrics, the table of means with
one row per variant minus naive injection (paired 95% bootstrap intervals over (prompt, seed) pairs), a plot
of every metric's mean and interval per variant, and the videos side by side, one row per prompt and seed.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

import numpy as np
from PIL import Image

from stillmoving.data.video_io import upscale_nearest, write_image, write_video
from stillmoving.evaluation.score import COLUMNS
from stillmoving.files import atomic_write, write_text
from stillmoving.world import report_html
from stillmoving.world.claims import NAIVE
from stillmoving.world.legend import DEMO_METRICS, Metric
from stillmoving.world.report import json_safe, section_keys
from stillmoving.world.stats import LEVEL, Interval, bootstrap_mean, paired_bootstrap
from stillmoving.world.variants import Key, Variant, paired

PAGE_SIDE = 128  # px: how large the grid shows a video (report_html's CSS)
MEDIA_SIDE = 256  # px: the GIFs' short side at most (sharp at 2x, small on disk)
PLOT_COLUMNS = 4  # panels per row of metrics.png


def measured_columns(variants: list[Variant]) -> list[Metric]:
    """The field's metrics, then the world's oracle ones, that some video has a value for."""
    present = {key for v in variants for m in v.metrics for key in m}
    return [m for m in (*COLUMNS, *DEMO_METRICS) if m.key in present]


def versus_naive(variants: list[Variant], columns: list[Metric], seed: int = 0) -> dict[str, dict[str, Interval]]:
    """Per variant other than naive injection: variant minus naive injection, paired by (prompt, seed)."""
    naive = next(v for v in variants if v.id == NAIVE.id)
    return {
        v.name: {m.key: paired_bootstrap(*paired(naive, v, m.key), seed=seed) for m in columns}
        for v in variants
        if v is not naive
    }


def _frame_size(video: np.ndarray) -> np.ndarray:
    """Small videos enlarged (nearest) to the page's size, large ones shrunk to MEDIA_SIDE."""
    side = min(video.shape[1:3])
    if side < PAGE_SIDE:
        return upscale_nearest(video, -(-PAGE_SIDE // side))
    if side <= MEDIA_SIDE:
        return video
    scale = MEDIA_SIDE / side
    size = (round(video.shape[2] * scale), round(video.shape[1] * scale))
    return np.stack([np.asarray(Image.fromarray(f).resize(size, Image.LANCZOS)) for f in video])


def write_media(folder: Path, variants: list[Variant], rows: list[Key]) -> dict[str, dict[Key, str]]:
    """A GIF (a PNG for a still image) per grid cell; variant -> key -> path relative to `folder`."""
    media: dict[str, dict[Key, str]] = {}
    for v in variants:
        for index, (key, video) in enumerate(zip(v.keys(), v.videos)):
            if key not in rows:
                continue
            name = f"media/{v.name.replace(' ', '_').replace('(', '').replace(')', '')}_{index}"
            small = _frame_size(video)
            if len(video) == 1:
                write_image(small[0], folder / f"{name}.png")
            else:
                write_video(small, folder / f"{name}.gif", fps=8)
            media.setdefault(v.name, {})[key] = f"{name}.png" if len(video) == 1 else f"{name}.gif"
    return media


def plot_metrics(variants: list[Variant], columns: list[Metric], path: Path) -> Path:
    """One panel per metric: each variant's mean with its 95% bootstrap interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = -(-len(columns) // PLOT_COLUMNS)
    width = min(len(columns), PLOT_COLUMNS)
    fig, axes = plt.subplots(rows, width, figsize=(2.8 * width, 3.3 * rows), dpi=110, squeeze=False)
    for ax in axes.ravel()[len(columns) :]:
        ax.set_visible(False)
    for ax, metric in zip(axes.ravel(), columns):
        intervals = [bootstrap_mean(v.values(metric.key)) for v in variants]
        x = np.arange(len(variants))
        means = np.array([i.estimate for i in intervals])
        errors = np.array([[i.estimate - i.low, i.high - i.estimate] for i in intervals]).T
        ax.bar(x, means, color=[f"C{k}" for k in range(len(variants))])
        ax.errorbar(x, means, yerr=np.nan_to_num(errors), fmt="none", ecolor="black", capsize=3)
        ax.set_xticks(x, [v.name for v in variants], rotation=60, ha="right", fontsize=7)
        ax.set_title(metric.key, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
    return path


def _record(variants: list[Variant], gaps: dict[str, dict[str, Interval]], settings: dict, timings: dict) -> dict:
    return {
        "settings": settings,
        "generation_seconds": timings,
        "variants": {v.name: v.record() for v in variants},
        f"minus {NAIVE.label}": {name: {k: i.as_dict() for k, i in row.items()} for name, row in gaps.items()},
    }


def _page(
    variants: list[Variant], columns: list[Metric], gaps: dict, media: dict, rows: list[Key], settings: dict
) -> str:
    gap_rows = [(f"{name} minus {NAIVE.label}", row) for name, row in gaps.items()]
    notes = (
        f"{len(settings['prompts'])} prompts x {settings['seeds']} seeds = {len(rows)} (prompt, seed) pairs per "
        f"variant, {settings['num_frames']} frames at {settings['width']}x{settings['height']}, "
        f"{settings['steps']} steps, guidance {settings['guidance_scale']:g}; every variant uses the same prompts "
        f"and seeds, so videos pair up across the grid and in the {LEVEL:.0%} intervals."
    )
    body = [
        f'<h1>Still-Moving against its baselines</h1><p class="intro">{escape(notes)}</p>',
        '<h2 id="legend">What the metrics measure</h2>',
        report_html.legend(columns),
        '<h2 id="table">Means, and each variant minus naive injection</h2>',
        report_html.metrics_table(variants, columns, None, gap_rows),
        '<img src="metrics.png" alt="each metric\'s mean and 95% interval per variant">',
        f"<h2>Videos: {len(rows)} (prompt, seed) pairs, the same in every column</h2>",
        report_html.video_grid(variants, media, rows, columns),
        '<p class="note">Every number of this page is in metrics.json, per video, next to it.</p>',
    ]
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Still-Moving comparison</title>"
        f"<style>{report_html.STYLE}</style></head><body>{''.join(body)}</body></html>\n"
    )


def write_compare_report(folder: Path, variants: list[Variant], settings: dict, timings: dict) -> Path:
    """index.html, metrics.json and metrics.png in `folder`; returns the HTML path."""
    columns = measured_columns(variants)
    gaps = versus_naive(variants, columns)
    rows = section_keys(variants)
    plot_metrics(variants, columns, folder / "metrics.png")
    record = json_safe(_record(variants, gaps, settings, timings))
    write_text(folder / "metrics.json", json.dumps(record, indent=2, allow_nan=False) + "\n")
    return write_text(
        folder / "index.html", _page(variants, columns, gaps, write_media(folder, variants, rows), rows, settings)
    )
