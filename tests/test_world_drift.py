"""The demo's drift study: the drift of a LoRA family, the figure, the section and claims.json's record."""

import numpy as np
import pytest

from stillmoving.data.video_io import write_image
from stillmoving.training.config import StyleLoRAConfig
from stillmoving.training.style_lora import train_style_lora
from stillmoving.world.claims import FAILS, HOLDS, NAIVE, OURS, RECORDED
from stillmoving.world.drift import (
    DriftPoint,
    drift_claims,
    drift_html,
    drift_point,
    drift_record,
    plot_drift,
    relative_drift,
    subject_drift_claims,
    subject_drift_point,
)
from stillmoving.world.legend import ARTIFACT, CONSISTENCY, FIDELITY, SPEED
from stillmoving.world.variants import Variant


@pytest.fixture(scope="module")
def lora(tiny_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("striped")
    for i in range(2):
        image = np.zeros((32, 32, 3), np.uint8)
        image[:, i::3] = (20, 120, 240)
        write_image(image, folder / f"{i}.png")
    return str(
        train_style_lora(
            StyleLoRAConfig(
                model=str(tiny_dir),
                output=str(folder / "out"),
                images=str(folder),
                prompt="a square in striped style",
                rank=4,
                height=32,
                width=32,
                steps=2,
                lr=1e-2,
            )
        )
    )


def test_drift_is_zero_without_the_lora_and_linear_in_its_weight(tiny_dir, lora):
    assert relative_drift(str(tiny_dir), None, [(lora, 0.0)]) == 0.0
    one, two = relative_drift(str(tiny_dir), None, [(lora, 1.0)]), relative_drift(str(tiny_dir), None, [(lora, 2.0)])
    assert one > 0 and two == pytest.approx(2 * one, rel=1e-3)  # W + s B A: the change scales with s


def variant(name: str, consistency: list[float], artifact: float = 0.1) -> Variant:
    v = Variant(name, "")
    for i, c in enumerate(consistency):
        v.add(np.zeros((2, 4, 4, 3), np.uint8), f"prompt {i // 2}", i % 2)
        v.metrics.append({"consistency": c, "speed": 1.0, "fidelity": 0.5, "artifact": artifact + 0.01 * i})
    return v


def points() -> list[DriftPoint]:
    naive = [variant("naive injection", [0.8, 0.7, 0.6, 0.5]), variant("naive injection", [0.6, 0.5, 0.4, 0.3])]
    ours = [variant("Still-Moving", [0.9, 0.8, 0.7, 0.6]), variant("Still-Moving", [0.6, 0.5, 0.4, 0.3])]
    return [
        drift_point(w, d, n, o, [CONSISTENCY, SPEED], 0, "crayon")
        for w, d, n, o in zip((1.0, 2.0), (0.1, 0.2), naive, ours)
    ]


def test_each_point_holds_still_moving_minus_naive_paired():
    first, second = points()
    assert (first.gap["consistency"].low, first.gap["consistency"].high) == pytest.approx((0.1, 0.1))
    assert (second.gap["consistency"].low, second.gap["consistency"].high) == (0.0, 0.0)
    record = drift_record([first, second])
    assert [(r["lora_weight"], r["setting"]) for r in record] == [(1.0, "LoRA weight 1"), (2.0, "LoRA weight 2")]
    assert record[0]["still_moving_minus_naive"]["consistency"]["n"] == 4
    assert record[0]["naive_injection_mean"]["consistency"] == pytest.approx(0.65)
    assert record[0]["still_moving_mean"]["consistency"] == pytest.approx(0.75)


def test_the_section_has_the_figure_and_a_row_per_weight(tmp_path):
    html = drift_html(points(), [CONSISTENCY, SPEED])
    assert '<img src="drift.png"' in html and html.count("<tr><th>") == 3 and "+0.100 [+0.100, +0.100]" in html
    assert plot_drift(points(), tmp_path / "drift.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_worse_is_judged_at_the_lightest_drift_and_better_at_the_heaviest():
    columns = [FIDELITY, CONSISTENCY, ARTIFACT]
    naive_light, ours_light = variant("n", [0.8, 0.7, 0.6, 0.5]), variant("o", [0.7, 0.6, 0.5, 0.4])  # worse by 0.1
    naive_heavy, ours_heavy = variant("n", [0.5] * 4, artifact=0.3), variant("o", [0.5] * 4, artifact=0.2)
    points = [
        drift_point(2.0, 0.2, naive_heavy, ours_heavy, columns, 0, "crayon"),
        drift_point(0.5, 0.05, naive_light, ours_light, columns, 0, "crayon"),
        drift_point(1.0, 0.1, naive_light, naive_light, columns, 0, "crayon"),
    ]
    light, heavy = drift_claims(points)
    assert (light.scope, light.name, light.verdict) == (
        "crayon at LoRA weight 0.5 (drift 0.050)",
        "no_worse_than_naive",
        FAILS,
    )
    assert (heavy.scope, heavy.name, heavy.verdict) == (
        "crayon at LoRA weight 2 (drift 0.200)",
        "better_than_naive",
        HOLDS,
    )
    assert heavy.intervals["artifact"].high == pytest.approx(-0.1)  # fewer artifacts in every pair
    assert drift_claims(points[:1]) == []  # one weight: nothing to compare
    # weight 1 is the style's own section, whose claims judge it: not judged twice when it is the lightest
    (only,) = drift_claims([points[0], points[2]])
    assert (only.scope, only.name) == ("crayon at LoRA weight 2 (drift 0.200)", "better_than_naive")


def subject_points() -> list:
    """The subject at its own rate and at a heavy one whose every-block adapters flicker (consistency 0.1 lower in
    every pair) and whose recorded blocks' do not (0.05 higher)."""
    columns = [FIDELITY, CONSISTENCY, ARTIFACT]
    naive = variant("naive injection", [0.8, 0.7, 0.6, 0.5])
    light = {NAIVE.id: naive, OURS.id: variant("Still-Moving", [0.8, 0.7, 0.6, 0.5])}
    heavy = {
        NAIVE.id: naive,
        OURS.id: variant("Still-Moving", [0.7, 0.6, 0.5, 0.4]),
        RECORDED.id: variant("Still-Moving, customize's blocks", [0.85, 0.75, 0.65, 0.55]),
    }
    return [
        subject_drift_point("star", 5e-5, 0.05, light, columns, seed=0),
        subject_drift_point("star", 5e-4, 0.28, heavy, columns, seed=0),
    ]


def test_the_subject_s_heavy_point_is_judged_for_every_block_and_for_the_recorded_blocks(tmp_path):
    light, heavy = subject_points()
    assert (
        light.recorded is None
        and light.recorded_gap == {}
        and light.scope == "star at DreamBooth lr 5e-05 (drift 0.050)"
    )
    assert heavy.scope == "star at DreamBooth lr 0.0005 (drift 0.280)" and heavy.setting == "DreamBooth lr 0.0005"
    assert heavy.gap["consistency"].estimate == pytest.approx(-0.1) and heavy.recorded_gap[
        "consistency"
    ].estimate == pytest.approx(0.05)
    t2i, base = variant("customized T2I (image)", [0.9] * 4), variant("base T2V", [0.9] * 4)
    claims = subject_drift_claims(heavy, t2i, base, seed=0)
    names = ["better_than_naive", "fidelity_kept", "motion_kept", "no_worse_than_naive"]
    recorded = f"{heavy.scope}, customize's blocks"
    assert [(c.scope, c.name) for c in claims] == [(heavy.scope, n) for n in names] + [(recorded, n) for n in names]
    assert [c.verdict for c in claims] == [FAILS, HOLDS, HOLDS, FAILS, HOLDS, HOLDS, HOLDS, HOLDS]  # look, speed kept
    assert len(subject_drift_claims(light, t2i, base, seed=0)) == 4  # nothing recorded: every block only
    assert drift_claims(subject_points()) == []  # the style's two claims read only the style's points
    record = drift_record(subject_points())
    assert [(r["target"], r["lora_weight"], r["dreambooth_lr"], r["setting"]) for r in record] == [
        ("star", None, 5e-5, "DreamBooth lr 5e-05"),
        ("star", None, 5e-4, "DreamBooth lr 0.0005"),
    ]
    assert "recorded_blocks_minus_naive" not in record[0]
    assert record[1]["recorded_blocks_minus_naive"]["consistency"]["estimate"] == pytest.approx(0.05)
    assert record[1]["recorded_blocks_mean"]["consistency"] == pytest.approx(0.7)
    html = drift_html([*points(), *subject_points()], [CONSISTENCY])
    assert (
        "star, DreamBooth lr 0.0005: Still-Moving, customize&#x27;s blocks" in html and "crayon, LoRA weight 2" in html
    )
    assert "The crayon LoRA fused at several weights; the star's DreamBooth made again at a higher" in html
    assert html.count("<tr><th>") == 6  # the head, two LoRA weights, two learning rates, one recorded row
    assert plot_drift([*points(), *subject_points()], tmp_path / "drift.png").read_bytes()[:4] == b"\x89PNG"
