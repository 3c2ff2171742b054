"""The demo report, read as a structure: verdicts first, a legend, tables without NaN, a (prompt, seed) x
variant grid of videos, the sweep plot; metrics.json and its strict JSON."""

from __future__ import annotations

import json
import re

import pytest
from html_tree import parse, rows
from world_sections import PROMPTS, section, sweep

from stillmoving.world.claims import GAP, T2I, judge
from stillmoving.world.legend import DEMO_METRICS
from stillmoving.world.report import Page, summarize, write_report


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    variants = section()
    alphas, sweep_variants = sweep()
    findings = judge({"star": variants}, alphas, sweep_variants, list(DEMO_METRICS))
    plot = {"alpha": alphas, "mean": [16.0, 8.0, 0.25], "std": [0.1, 0.1, 0.0]}
    page = Page(
        "demo",
        {"star": variants, "sweep": sweep_variants},
        list(DEMO_METRICS),
        findings,
        plot,
        "sweep",
        "notes under the title",
    )
    return folder, parse(write_report(folder, page).read_text()), variants


def test_summarize_gives_mean_and_spread_ignoring_nan():
    s = summarize([{"a": 1.0, "b": float("nan")}, {"a": 3.0, "b": 2.0}])
    assert s["a"] == {"mean": 2.0, "std": 1.0, "n": 2}
    assert s["b"]["mean"] == 2.0 and s["b"]["n"] == 1


def test_verdicts_come_first_one_line_per_claim(report):
    _, page, _ = report
    headings = [h.text() for h in page.all("h2")]
    assert headings[:2] == ["Verdicts on the paper's claims", "What the metrics measure"]
    items = page.all("ul", "verdicts")[0].all("li")
    assert len(items) == 6  # five for the customization, one for the motion scale
    assert all(re.match(r"(holds|does not hold|cannot be judged) (star|motion scale): ", li.text()) for li in items)
    assert "consistency +0.125 [+0.125, +0.125]" in items[0].text()


def test_legend_explains_every_column(report):
    _, page, _ = report
    table = rows(page.all("table", "legend")[0])
    assert [r[0].text() for r in table[1:]] == [m.key for m in DEMO_METRICS]
    assert all(
        r[1].text() and r[2].text() and r[3].text().split(":")[0].split()[0] in ("higher", "lower", "neither")
        for r in table[1:]
    )


def test_no_nan_anywhere_and_n_a_cells_say_why(report):
    _, page, _ = report
    assert not re.search(r"\bnan\b", page.text(), re.IGNORECASE)
    star = rows(page.all("table", "metrics")[0])
    still = next(r for r in star if r[0].text().startswith(T2I.label))
    assert [c.text() for c in still[1:]] == ["n/a1", "n/a1", "n/a1", "0.800 ± 0.000", "n/a1", "0.062 ± 0.000"]
    assert "n/a: a still image has no motion" in page.text()


def test_the_table_has_a_difference_row_for_every_column(report):
    _, page, _ = report
    star = rows(page.all("table", "metrics")[0])
    gap = star[-1]
    assert gap[0].text().startswith(GAP) and len(gap) == 1 + len(DEMO_METRICS)
    consistency = gap[1 + [m.key for m in DEMO_METRICS].index("consistency")]
    assert consistency.text() == "+0.125 [+0.125, +0.125]" and consistency.attrs["class"] == "good"
    sweep_table = rows(page.all("table", "metrics")[1])
    assert "fidelity" not in sweep_table[0][-1].text() and not sweep_table[-1][0].text().startswith(GAP)


def test_videos_are_a_grid_of_prompt_seed_rows_and_variant_columns(report):
    folder, page, variants = report
    grid = rows(page.all("table", "grid")[0])
    assert [c.text() for c in grid[0]] == [
        "prompt, seed",
        *(v.name if v.name != T2I.label else f"{T2I.label} one still image" for v in variants),
    ]
    assert [r[0].text() for r in grid[1:]] == [f"{p} seed {s}" for p in PROMPTS for s in (0, 1)]
    for row in grid[1:]:
        images = [cell.all("img")[0].attrs for cell in row[1:]]
        assert len(images) == len(variants) and all((folder / i["src"]).is_file() for i in images)
        assert [i["src"].rsplit(".", 1)[1] for i in images] == ["gif", "png", "gif", "gif", "gif", "gif"]
        assert "consistency" in images[0]["title"]  # the video's own figures on hover


def test_sweep_section_keeps_the_plot_and_its_grid(report):
    folder, page, _ = report
    assert (folder / "motion_vs_alpha.png").read_bytes()[:4] == b"\x89PNG"
    assert any(img.attrs["src"] == "motion_vs_alpha.png" for img in page.all("img"))
    assert [c.text() for c in rows(page.all("table", "grid")[1])[0]] == [
        "prompt, seed",
        "alpha -1",
        "alpha 0",
        "alpha 1",
    ]


def test_metrics_json_is_strict_and_keeps_seeds(report):
    folder, _, _ = report
    record = json.loads((folder / "metrics.json").read_text(), parse_constant=lambda c: pytest.fail(c))
    star = record["sections"]["star"]
    assert star["Still-Moving"]["seeds"] == [0, 1] * 4
    assert star[T2I.label]["per_video"][0]["speed"] is None and star[T2I.label]["summary"]["speed"]["n"] == 0
    assert record["motion_scale_sweep"]["alpha"] == [-1.0, 0.0, 1.0]


def test_long_sections_show_the_first_rows_and_say_so(tmp_path):
    page = Page("demo", {"star": section()}, list(DEMO_METRICS), grid_rows=3)
    tree = parse(write_report(tmp_path, page).read_text())
    assert len(rows(tree.all("table", "grid")[0])) == 1 + 3
    assert "the first 3 of 8 (prompt, seed) pairs" in tree.text()
    assert not tree.all("ul", "verdicts")  # no findings, no verdict list
