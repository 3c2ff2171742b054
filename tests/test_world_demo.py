"""The demo's plumbing end to end on the tiny (untrained) model: every variant, the sweep, the report.

The figures are meaningless on random weights; the point is that every stage runs through the same
commands a user runs and the report has every section. (The shipped world model replaces the tiny one.)
"""

import json

import pytest

from stillmoving.training.config import MotionAdapterConfig
from stillmoving.training.motion_stage import train_motion_adapter
from stillmoving.world.demo import DemoConfig, run_demo, still_caption


@pytest.fixture(scope="module")
def motion_adapter(tiny_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("demo_motion")
    return train_motion_adapter(MotionAdapterConfig(
        model=str(tiny_dir), output_dir=str(out), sample_prompts=["a red circle moving left"], num_sampled_videos=2,
        motion_rank=2, num_frames=4, height=32, width=32, max_train_steps=2, sample_steps=2))


def test_quick_demo_writes_every_variant_and_the_sweep(tiny_dir, motion_adapter, tmp_path):
    cfg = DemoConfig.quick(output_dir=str(tmp_path / "report"), model=str(tiny_dir), motion_adapter=str(motion_adapter),
                           num_frames=4, eval_prompts=1, t2i_steps=2, spatial_steps=2, num_images=2, sample_steps=2)
    page = run_demo(cfg)
    record = json.loads((tmp_path / "report/metrics.json").read_text())
    variants = record["sections"]["star"]
    assert list(variants) == ["base T2V", "customized T2I (image)", "naive injection", "no motion adapter",
                              "no prior preservation", "Still-Moving"]
    assert all(len(v["per_video"]) == 1 for v in variants.values())
    assert record["motion_scale_sweep"]["alpha"] == [-1.0, 0.0, 1.0]
    claims = json.loads((tmp_path / "report/claims.json").read_text())["claims"]
    assert {"motion_kept", "fidelity_kept", "no_motion_adapter_static_share"} <= set(claims["star"])
    assert page.name == "index.html" and (tmp_path / "report/motion_vs_alpha.png").exists()
    assert len(list((tmp_path / "report/videos").glob("*.gif"))) == 6


def test_still_caption_drops_motion_words():
    assert still_caption("a sks star moving left quickly on a gray background") == "a sks star on a gray background"
    assert (still_caption("a red circle moving up slowly on a dusk background in crayon style")
            == "a red circle on a dusk background in crayon style")
