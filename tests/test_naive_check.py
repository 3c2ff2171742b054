"""The end-of-customize check against naive injection, and the model-agnostic figures it scores with."""

import json

import numpy as np
import pytest
import torch
from conftest import tiny_customize
from safetensors.torch import load_file

from stillmoving.training.naive_check import MIN_DROP, WORSE_RATIO, look_kept, verdict
from stillmoving.training.spatial_stage import train_spatial_adapters
from stillmoving.video_metrics import colour_agreement, colour_consistency, frame_change, video_figures


def square_video(positions, colour=(200, 40, 40), background=(10, 10, 60)) -> np.ndarray:
    frames = np.empty((len(positions), 32, 32, 3), np.uint8)
    frames[:] = background
    for frame, (y, x) in zip(frames, positions):
        frame[y : y + 6, x : x + 6] = colour
    return frames


def test_colour_consistency_ignores_motion_and_sees_colour_jumps():
    still = square_video([(10, 10)] * 4)
    moving = square_video([(10, 4 + 3 * i) for i in range(4)])
    assert colour_consistency(still) == 1.0
    assert colour_consistency(moving) == 1.0  # the same colours, elsewhere
    flicker = np.concatenate([square_video([(10, 10)] * 2), square_video([(10, 10)] * 2, background=(250, 250, 0))])
    # frames 1->2 change the background (1024 - 36 px) to a colour cell no other frame has
    assert colour_consistency(flicker) == pytest.approx((1 + 36 / 1024 + 1) / 3)
    assert colour_consistency(still[:1]) == 1.0


def test_colour_agreement_compares_paired_frames():
    video = square_video([(10, 4 + 3 * i) for i in range(4)])
    assert colour_agreement(video, video) == 1.0
    assert colour_agreement(video, square_video([(2, 2)] * 4)) == 1.0  # same colours, other places
    other = square_video([(10, 10)] * 4, colour=(0, 250, 0), background=(250, 250, 250))
    assert colour_agreement(video, other) == 0.0


def test_frame_change_is_the_mean_absolute_step():
    black_white = np.stack([np.zeros((4, 4, 3), np.uint8), np.full((4, 4, 3), 255, np.uint8)])
    assert frame_change(black_white) == 1.0
    assert frame_change(square_video([(10, 10)] * 3)) == 0.0
    assert video_figures(black_white) == {"colour_consistency": 0.0, "frame_change": 1.0}


def test_look_kept_compares_each_video_with_the_customized_t2i_image_of_its_prompt():
    moving = square_video([(10, 4 + 3 * i) for i in range(4)])
    image = moving[0]
    other = square_video([(10, 10)] * 4, colour=(0, 250, 0), background=(250, 250, 250))
    half = np.concatenate([moving[:2], other[:2]])  # two frames in the image's colours, two in none of them
    kept = look_kept({"naive injection": [moving, other], "Still-Moving": [half, moving]}, [image, image])
    assert kept["per_video"] == {"naive injection": [1.0, 0.0], "Still-Moving": [0.5, 1.0]}
    assert kept["means"] == {"naive injection": 0.5, "Still-Moving": 0.75}


def figures(values):
    return [{"colour_consistency": v, "frame_change": 0.1} for v in values]


def test_verdict_reports_much_more_inconsistency_than_naive_injection_as_worse():
    # naive inconsistency 0.04 (mean of 0.97, 0.95); the adapters' 0.07 = 1.75 times it, 0.03 lower consistency
    result = verdict({"naive injection": figures([0.97, 0.95]), "Still-Moving": figures([0.94, 0.92])})
    assert WORSE_RATIO == 1.5 and result["worse_than_naive"]
    assert "LESS consistent than naive injection" in result["message"]
    assert all(f in result["message"] for f in ("--steps", "--lr", "--spatial-rank", "--spatial-scale"))  # remedies
    assert result["difference"]["colour_consistency"] == pytest.approx(-0.03)
    slightly = verdict({"naive injection": figures([0.97, 0.95]), "Still-Moving": figures([0.96, 0.94])})
    assert not slightly["worse_than_naive"]  # 1.25 times naive's inconsistency
    tiny = verdict({"naive injection": figures([0.998]), "Still-Moving": figures([0.998 - MIN_DROP / 2])})
    assert not tiny["worse_than_naive"]  # 2.25 times, but a drop below MIN_DROP
    same = verdict({"naive injection": figures([0.9, 0.8]), "Still-Moving": figures([0.9, 0.8])})
    assert not same["worse_than_naive"] and same["difference"] == {"colour_consistency": 0.0, "frame_change": 0.0}


def test_customize_writes_paired_validation_videos_and_its_verdict(tiny_dir, tmp_path, stage2_inputs, capsys):
    cfg = tiny_customize(
        tiny_dir,
        stage2_inputs,
        tmp_path,
        num_prior_videos=1,
        prior_loss_weight=1.0,
        num_validation_videos=2,
        validation_prompt=["a sks dog running", "a sks dog sitting"],
    )
    train_spatial_adapters(cfg)
    assert sorted(p.name for p in (tmp_path / "validation").iterdir()) == [
        "customized_t2i_000.png",
        "customized_t2i_001.png",
        "naive_injection_000.gif",
        "naive_injection_001.gif",
        "still_moving_000.gif",
        "still_moving_001.gif",
    ]
    report = json.loads((tmp_path / "validation.json").read_text())
    assert report["prompts"] == ["a sks dog running", "a sks dog sitting"] and report["seeds"] == [0, 1]
    assert [len(report["figures"][k]) for k in ("naive injection", "Still-Moving")] == [2, 2]
    assert 0 <= report["colour_agreement"] <= 1 and "colours agree with naive injection's" in report["message"]
    # the customized T2I's own image of each prompt and seed, the look both variants are compared with
    t2i = sorted((tmp_path / "validation").glob("customized_t2i_*.png"))
    assert [p.name for p in t2i] == ["customized_t2i_000.png", "customized_t2i_001.png"]
    kept = report["t2i_agreement"]
    assert [len(kept["per_video"][k]) for k in ("naive injection", "Still-Moving")] == [2, 2]
    assert kept["means"]["naive injection"] == pytest.approx(np.mean(kept["per_video"]["naive injection"]))
    assert "colours agree with the customized T2I's own images" in report["message"]
    assert "all at 2 steps, guidance 1 (--sample-steps, --guidance-scale)" in report["message"]
    record = json.loads((tmp_path / "customize_run.json").read_text())
    assert record["validation"]["worse_than_naive"] == report["worse_than_naive"]
    assert "validation: colour consistency" in capsys.readouterr().err


def test_the_check_and_its_t2i_images_leave_the_adapters_bit_for_bit_as_without(tiny_dir, tmp_path, stage2_inputs):
    plain, checked = (
        train_spatial_adapters(tiny_customize(tiny_dir, stage2_inputs, tmp_path / name, num_validation_videos=n))
        for name, n in (("plain", 0), ("checked", 2))
    )
    wa, wb = load_file(str(plain)), load_file(str(checked))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert len(list((tmp_path / "checked/validation").glob("customized_t2i_*.png"))) == 2


def test_no_validation_videos_when_disabled(tiny_dir, tmp_path, stage2_inputs):
    cfg = tiny_customize(
        tiny_dir, stage2_inputs, tmp_path, num_prior_videos=1, prior_loss_weight=1.0, steps=1, guidance_scale=7.5
    )
    train_spatial_adapters(cfg)
    assert not (tmp_path / "validation").exists() and not (tmp_path / "validation.json").exists()
    assert json.loads((tmp_path / "customize_run.json").read_text())["validation"] is None
