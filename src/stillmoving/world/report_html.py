"""The pieces of the report page, as HTML strings: verdicts, legend, metrics table, video grid.

Ordered for a reader: what holds first, then what each number means, then the numbers, then the
videos lined up so one prompt and seed can be followed across every variant.
"""

from __future__ import annotations

import math
from html import escape

from stillmoving.world.claims import FAILS, HOLDS, MIN_PAIRS, Claim, side, signed
from stillmoving.world.legend import HIGHER, LOWER, Metric
from stillmoving.world.stats import LEVEL, Interval
from stillmoving.world.variants import Key, Variant, summarize

STYLE = """
body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1320px;padding:0 16px;color:#222;line-height:1.4}
h1{margin-bottom:4px}h2{margin-top:36px;border-bottom:1px solid #ddd;padding-bottom:4px}
.intro{color:#555;margin-top:0}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #d4d4d4;padding:4px 8px;vertical-align:top}
th{background:#f6f6f6;text-align:left}
.metrics td{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
.metrics th small,.grid th small{display:block;font-weight:normal;color:#666;max-width:260px}
.metrics tr.gap th,.metrics tr.gap td{border-top:2px solid #888}
.good{background:#e3f4e1}.bad{background:#fbe3e1}.na{color:#999;text-align:center!important}
ul.verdicts{list-style:none;padding:0}
ul.verdicts li{display:flex;gap:12px;margin:6px 0;padding:6px 10px;border-left:6px solid #bbb;background:#fafafa}
li.holds{border-color:#3a9a3a!important}li.fails{border-color:#c8413b!important}
.badge{flex:0 0 11em;font-weight:bold;white-space:nowrap}
li.holds .badge{color:#2a7a2a}li.fails .badge{color:#b0302a}li.unjudged .badge{color:#777}
.measured{color:#444}.note{color:#555;font-size:90%}
.legend td:first-child{font-family:monospace;white-space:nowrap}
.grid td{padding:4px;text-align:center;width:136px}.grid th{max-width:220px;font-size:90%}
.grid img{width:128px;height:128px;image-rendering:pixelated;display:block;margin:auto}
.grid .still{outline:3px dashed #999;outline-offset:-3px}
"""
BADGE_CLASS = {HOLDS: "holds", FAILS: "fails"}  # anything else: "unjudged"
ARROW = {HIGHER: " &uarr;", LOWER: " &darr;"}


def verdict_list(claims: list[Claim]) -> str:
    """One line per claim: the verdict, the claim, and the measured sentence with its interval."""
    items = "".join(
        f'<li class="{BADGE_CLASS.get(c.verdict, "unjudged")}" title="{escape(c.rule)}">'
        f'<span class="badge">{escape(c.verdict)}</span> <span><b>{escape(c.scope)}</b>: {escape(c.statement)}.'
        f' <span class="measured">{escape(c.measured)}</span></span></li>'
        for c in claims
    )
    return f'<ul class="verdicts">{items}</ul>'


def verdict_rules(keep: float, static_share: float) -> str:
    return (
        f'<p class="note">Intervals are {LEVEL:.0%} bootstrap intervals over (prompt, seed) pairs: every '
        "variant is generated from the same prompts and seeds. They hold each section's spatial adapters fixed: "
        "the adapters are trained once per run (with --spatial-seed, else --seed), and another training seed moves "
        "Still-Moving's figures too, which these intervals do not include (docs/method.md, \"How far the training "
        'seed moves a recipe"). "Better" needs the whole interval on the good side; "no '
        'worse" fails only when an interval lies wholly on the bad side; "keeps at least" a share '
        f"({keep:.0%} of fidelity or motion, {static_share:.0%} static) holds when the whole interval is at or "
        "above it, fails when the whole interval is below it, and cannot be judged when it contains it. "
        f"Fewer than {MIN_PAIRS} pairs cannot be judged.</p>"
    )


def legend(columns: list[Metric]) -> str:
    rows = "".join(
        f"<tr><td>{escape(m.key)}</td><td>{escape(m.measures)}</td><td>{escape(m.scale)}</td>"
        f"<td>{escape(m.better)}{ARROW.get(m.better, '')}{': ' + escape(m.why) if m.why else ''}</td></tr>"
        for m in columns
    )
    return (
        '<table class="legend"><tr><th>metric</th><th>what it measures</th><th>range</th>'
        f"<th>which is better</th></tr>{rows}</table>"
    )


class Footnotes:
    """Numbered reasons for the table's n/a cells, each reason printed once under the table."""

    def __init__(self) -> None:
        self.reasons: list[str] = []

    def mark(self, reason: str) -> str:
        if reason not in self.reasons:
            self.reasons.append(reason)
        return f'<td class="na" title="{escape(reason)}">n/a<sup>{self.reasons.index(reason) + 1}</sup></td>'

    def html(self) -> str:
        return "".join(f'<p class="note"><sup>{i}</sup> n/a: {escape(r)}</p>' for i, r in enumerate(self.reasons, 1))


def _summary_cell(variant: Variant, summary: dict[str, dict[str, float]], metric: Metric, notes: Footnotes) -> str:
    if metric.temporal and variant.is_still():
        return notes.mark("a still image has no motion and no frame-to-frame consistency")
    figures = summary.get(metric.key, {"n": 0})
    if not figures["n"]:
        return notes.mark(f"no video of this variant gave a value for {metric.key}")
    if metric.share:  # a share of videos: the count says more than a standard deviation of 0s and 1s
        return f"<td>{figures['mean']:.2f} ({round(figures['mean'] * figures['n'])}/{figures['n']})</td>"
    return f"<td>{figures['mean']:.3f} &plusmn; {figures['std']:.3f}</td>"


def _variant_row(variant: Variant, columns: list[Metric], notes: Footnotes) -> str:
    summary = summarize(variant.metrics)
    cells = "".join(_summary_cell(variant, summary, m, notes) for m in columns)
    return f"<tr><th>{escape(variant.name)} <small>{escape(variant.description)}</small></th>{cells}</tr>"


def _gap_cell(metric: Metric, gap: Interval, notes: Footnotes) -> str:
    if not gap.n:
        return notes.mark(f"no (prompt, seed) pair where both variants gave a value for {metric.key}")
    colour = {"good": "good", "bad": "bad"}.get(side(metric, gap) or "", "")
    return f'<td class="{colour}">{signed(gap.estimate)}<br><small>[{signed(gap.low)}, {signed(gap.high)}]</small></td>'


def metrics_table(
    variants: list[Variant],
    columns: list[Metric],
    gap: tuple[str, dict[str, Interval]] | None,
    more_gaps: list[tuple[str, dict[str, Interval]]] = (),
) -> str:
    """Mean &plusmn; std per variant and column, then the row of a paired difference with its interval (and one
    row per entry of `more_gaps`, e.g. every variant against the same reference)."""
    notes = Footnotes()
    head = "".join(f'<th><a href="#legend">{escape(m.key)}</a>{ARROW.get(m.better, "")}</th>' for m in columns)
    rows = [_variant_row(v, columns, notes) for v in variants]
    for label, intervals in [gap] * bool(gap) + list(more_gaps):
        pairs = max((i.n for i in intervals.values()), default=0)
        rows.append(
            f'<tr class="gap"><th>{escape(label)} <small>mean difference and {LEVEL:.0%} interval over {pairs} '
            "(prompt, seed) pairs; green: wholly better, red: wholly worse</small></th>"
            + "".join(_gap_cell(m, intervals[m.key], notes) for m in columns)
            + "</tr>"
        )
    caption = "mean &plusmn; standard deviation over the videos"
    return (
        f'<table class="metrics"><tr><th>variant <small>{caption}</small></th>{head}</tr>{"".join(rows)}</table>'
        + notes.html()
    )


def _figures(variant: Variant, key: Key, columns: list[Metric]) -> str:
    """The video's own figures, for the tooltip of its image."""
    figures = dict(zip(variant.keys(), variant.metrics)).get(key, {})
    return ", ".join(f"{m.key} {figures[m.key]:.2f}" for m in columns if math.isfinite(figures.get(m.key, math.nan)))


def _grid_cell(variant: Variant, key: Key, src: str | None, columns: list[Metric]) -> str:
    if src is None:
        return '<td title="this variant has no video for this prompt and seed">-</td>'
    still = ' class="still"' if variant.is_still() else ""
    return (
        f'<td><img{still} src="{escape(src)}" alt="{escape(variant.name)}: {escape(key[0])}, seed {key[1]}" '
        f'title="{escape(_figures(variant, key, columns))}"></td>'
    )


def video_grid(
    variants: list[Variant], media: dict[str, dict[Key, str]], rows: list[Key], columns: list[Metric]
) -> str:
    """One row per (prompt, seed), one column per variant; `media[variant][key]` is the image's path."""
    head = "".join(
        f"<th>{escape(v.name)}{' <small>one still image</small>' if v.is_still() else ''}</th>" for v in variants
    )
    body = [
        f"<tr><th>{escape(prompt)} <small>seed {seed}</small></th>"
        + "".join(_grid_cell(v, (prompt, seed), media.get(v.name, {}).get((prompt, seed)), columns) for v in variants)
        + "</tr>"
        for prompt, seed in rows
    ]
    return f'<table class="grid"><tr><th>prompt, seed</th>{head}</tr>{"".join(body)}</table>'
