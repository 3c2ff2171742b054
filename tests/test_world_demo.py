"""`stillmoving demo --quick` end to end on the shipped world: every variant, the sweep, the report.

Quick mode trains for a few steps only, so its figures say little; the full demo's table is in the README.
"""

import json

from test_cli import run

from stillmoving.world.demo import still_caption


def test_quick_demo_writes_every_variant_and_the_sweep(tmp_path, capsys, monkeypatch):
    code, _, err = run(capsys, monkeypatch, "demo", "--quick", "-o", tmp_path / "report")
    assert code == 0, err
    record = json.loads((tmp_path / "report/metrics.json").read_text())
    variants = record["sections"]["star"]
    assert list(variants) == ["base T2V", "customized T2I (image)", "naive injection", "no motion adapter",
                              "no prior preservation", "Still-Moving"]
    assert all(len(v["per_video"]) == 2 for v in variants.values())  # 2 prompts x 1 seed
    assert record["motion_scale_sweep"]["alpha"] == [-1.0, 0.0, 1.0]
    found = json.loads((tmp_path / "report/claims.json").read_text())
    assert {"motion_kept", "fidelity_kept", "no_motion_adapter_static_share"} <= set(found["claims"]["star"])
    assert found["timings_s"]["total"] > 0
    assert (tmp_path / "report/index.html").is_file() and (tmp_path / "report/motion_vs_alpha.png").is_file()
    assert len(list((tmp_path / "report/videos").glob("*.gif"))) == 6 * 2 + 3 * 2  # variants, then alphas
    assert list(record["sections"]["motion scale (base T2V + motion adapter)"]) == ["alpha -1", "alpha 0", "alpha 1"]
    assert "demo: [star] Still-Moving" in err


def test_still_caption_drops_motion_words():
    assert still_caption("a sks star moving left quickly on a gray background") == "a sks star on a gray background"
    assert (still_caption("a red circle moving up slowly on a dusk background in crayon style")
            == "a red circle on a dusk background in crayon style")
