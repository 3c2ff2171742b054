"""The demo report: files written, table rows, the sweep plot, metrics.json contents."""

import json

import numpy as np

from stillmoving.world.report import Variant, summarize, write_report


def test_summarize_gives_mean_and_spread_ignoring_nan():
    s = summarize([{"a": 1.0, "b": float("nan")}, {"a": 3.0, "b": 2.0}])
    assert s["a"] == {"mean": 2.0, "std": 1.0, "n": 2}
    assert s["b"]["mean"] == 2.0 and s["b"]["n"] == 1


def test_report_folder_has_html_gifs_plot_and_json(tmp_path):
    video = np.zeros((4, 8, 8, 3), np.uint8)
    variants = [Variant("base", "the video model", [video, video], ["a", "b"], [{"motion": 1.0}, {"motion": 3.0}]),
                Variant("ours", "Still-Moving", [video], ["a"], [{"motion": 2.0, "fidelity": 0.9}])]
    page = write_report(tmp_path, "demo", {"subject": variants}, ["motion", "fidelity"],
                        sweep={"alpha": [-1, 0, 1], "mean": [3, 2, 0.1], "std": [0.1, 0.1, 0.0]})
    text = page.read_text()
    assert "<th>base</th><td>2.000 &plusmn; 1.000</td><td>-</td>" in text
    assert len(list((tmp_path / "videos").glob("*.gif"))) == 3
    assert (tmp_path / "motion_vs_alpha.png").read_bytes()[:4] == b"\x89PNG"
    record = json.loads((tmp_path / "metrics.json").read_text())
    assert record["sections"]["subject"]["ours"]["summary"]["fidelity"]["mean"] == 0.9
    assert record["motion_scale_sweep"]["alpha"] == [-1, 0, 1]
