"""The end-of-customize check against naive injection, and the model-agnostic figures it scores with."""

import json

import numpy as np
import pytest
import torch
from conftest import tiny_customize
from safetensors.torch import load_file

from stillmoving.training import naive_check
from stillmoving.training.naive_check import (
    ENCODER_SIDE,
    LOOK_DROP,
    MIN_DROP,
    MIN_TINT_RISE,
    SUBJECT_DROP,
    TINT_RATIO,
    WORSE_RATIO,
    check_encoder_side,
    look_kept,
    motion_read,
    motion_text,
    verdict,
)
from stillmoving.training.spatial_stage import train_spatial_adapters
from stillmoving.video_metrics import (
    colour_agreement,
    colour_consistency,
    frame_change,
    subject_agreement,
    tint_change,
    video_figures,
)


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
    assert video_figures(black_white) == {"colour_consistency": 0.0, "frame_change": 1.0, "tint_change": 1.0}


def test_tint_change_reads_the_whole_frame_colour_without_bins_and_ignores_motion():
    moving = square_video([(10, 4 + 3 * i) for i in range(4)])
    assert tint_change(moving) == 0.0  # the same colours, elsewhere: the mean colour is unchanged
    # a gray background stepping 126 -> 130 -> 126 (one red level across the 8-bin edge at 128) and back
    steps = [square_video([(10, 10)], background=(r, 110, 110)) for r in (126, 130, 126)]
    video = np.concatenate(steps)
    background = 1 - 36 / 1024  # the share of the frame the background covers
    assert tint_change(video) == pytest.approx(4 * background / 3 / 255)  # red only: a third of the channels
    assert colour_consistency(video) == pytest.approx(36 / 1024)  # the binned figure: a whole-frame jump
    assert tint_change(moving[:1]) == 0.0


def test_motion_read_counts_the_videos_that_move_by_vbenchs_rule():
    still = square_video([(10, 10)] * 4)
    moving = square_video([(10, 4 + 3 * i) for i in range(4)])  # 3 px per frame; VBench's threshold at 32 px: 0.75
    assert motion_read([still, still]) == {"dynamic_degree": 0.0, "flow_magnitude": 0.0}  # identical frames: 0
    read = motion_read([still, moving])
    assert read["dynamic_degree"] == 0.5 and read["flow_magnitude"] > 0.75 / 2
    assert motion_text(read, 2) == f"1 of 2 videos move (optical flow {read['flow_magnitude']:.2f} px per frame pair)"


def test_look_kept_compares_each_video_with_the_customized_t2i_image_of_its_prompt():
    moving = square_video([(10, 4 + 3 * i) for i in range(4)])
    image = moving[0]
    other = square_video([(10, 10)] * 4, colour=(0, 250, 0), background=(250, 250, 250))
    half = np.concatenate([moving[:2], other[:2]])  # two frames in the image's colours, two in none of them
    kept = look_kept({"naive injection": [moving, other], "Still-Moving": [half, moving]}, [image, image])
    assert kept["per_video"] == {"naive injection": [1.0, 0.0], "Still-Moving": [0.5, 1.0]}
    assert kept["means"] == {"naive injection": 0.5, "Still-Moving": 0.75}


def test_subject_agreement_leaves_out_each_frame_s_most_common_colour():
    # the same background, a red square in one and a green one in the other: 36 of 1024 pixels differ
    red, green = square_video([(10, 10)]), square_video([(10, 10)], colour=(40, 200, 40))
    assert colour_agreement(red, green) == pytest.approx(1 - 36 / 1024)  # the background outweighs the subject
    assert subject_agreement(red, green) == 0.0  # without it, nothing in common
    assert subject_agreement(red, square_video([(4, 20)])) == 1.0  # the same square elsewhere
    # each frame's own most common colour: a background that changes tint is left out all the same
    tinted = square_video([(10, 10)], background=(60, 10, 10))
    assert colour_agreement(red, tinted) == pytest.approx(36 / 1024) and subject_agreement(red, tinted) == 1.0
    plain = np.full((1, 32, 32, 3), 90, np.uint8)  # one colour: nothing left to compare
    assert subject_agreement(plain, plain) == 0.0
    kept = look_kept({"naive injection": [red], "Still-Moving": [green]}, [red[0]], subject_agreement)
    assert kept["means"] == {"naive injection": 1.0, "Still-Moving": 0.0}


def figures(values, tints=None):
    tints = tints or [0.01] * len(values)
    return [{"colour_consistency": v, "frame_change": 0.1, "tint_change": t} for v, t in zip(values, tints)]


def test_verdict_reports_much_more_inconsistency_than_naive_injection_as_worse():
    # naive inconsistency 0.04 (mean of 0.97, 0.95); the adapters' 0.07 = 1.75 times it, 0.03 lower consistency
    result = verdict({"naive injection": figures([0.97, 0.95]), "Still-Moving": figures([0.94, 0.92])})
    assert WORSE_RATIO == 1.3 and result["worse_than_naive"]
    assert "WORSE than naive injection (their colours flicker more)" in result["message"]
    assert all(
        f in result["message"] for f in ("--steps", "--lr", "--spatial-rank", "--spatial-blocks", "--spatial-scale")
    )
    assert result["difference"]["colour_consistency"] == pytest.approx(-0.03)
    slightly = verdict({"naive injection": figures([0.97, 0.95]), "Still-Moving": figures([0.96, 0.94])})
    assert not slightly["worse_than_naive"]  # 1.25 times naive's inconsistency
    missed = verdict({"naive injection": figures([0.97, 0.95]), "Still-Moving": figures([0.951, 0.931])})
    assert missed["worse_than_naive"]  # 1.475 times: a flicker the first threshold, 1.5, let pass (session 23)
    tiny = verdict({"naive injection": figures([0.998]), "Still-Moving": figures([0.998 - MIN_DROP / 2])})
    assert not tiny["worse_than_naive"]  # 2.25 times, but a drop below MIN_DROP
    same = verdict({"naive injection": figures([0.9, 0.8]), "Still-Moving": figures([0.9, 0.8])})
    assert not same["worse_than_naive"] and set(same["difference"].values()) == {0.0}


def test_verdict_reports_a_tint_that_flickers_more_than_naive_injections_as_worse():
    # the binned figure unmoved; the tint changes 1.25 times naive injection's per frame, 0.75 grey levels more
    naive, ours = figures([0.9, 0.9], [3 / 255, 3 / 255]), figures([0.9, 0.9], [3.5 / 255, 4 / 255])
    result = verdict({"naive injection": naive, "Still-Moving": ours})
    assert (TINT_RATIO, MIN_TINT_RISE) == (1.2, 0.25 / 255) and result["worse_than_naive"]
    assert "(their tint flickers more)" in result["message"] and "3.75 and 3.00 grey levels" in result["message"]
    assert result["difference"]["tint_change"] == pytest.approx(0.75 / 255)
    slightly = verdict({"naive injection": naive, "Still-Moving": figures([0.9, 0.9], [3.5 / 255, 3.5 / 255])})
    assert not slightly["worse_than_naive"]  # 1.17 times
    tiny = figures([0.9], [0.2 / 255])
    assert not verdict({"naive injection": tiny, "Still-Moving": figures([0.9], [0.4 / 255])})["worse_than_naive"]


def test_verdict_reports_a_look_further_from_the_customized_t2is_images_as_worse():
    same = {"naive injection": figures([0.9, 0.9]), "Still-Moving": figures([0.9, 0.9])}
    assert not verdict(same)["worse_than_naive"]  # no images: the look is not judged
    kept = {"naive injection": 0.86, "Still-Moving": 0.86 - LOOK_DROP}
    result = verdict(same, kept)
    assert LOOK_DROP == 0.05 and result["worse_than_naive"]
    assert (
        "WORSE than naive injection (their colours agree less with the customized T2I's own images)"
        in (result["message"])
    )
    assert not verdict(same, {"naive injection": 0.86, "Still-Moving": 0.82})["worse_than_naive"]  # 0.04 less
    flicker = {"naive injection": figures([0.97, 0.95]), "Still-Moving": figures([0.94, 0.92])}
    both = verdict(flicker, kept)["message"]
    assert "(their colours flicker more; their colours agree less with the customized T2I's own images)" in both


def test_verdict_reports_a_subject_further_from_the_customized_t2is_images_as_worse():
    same = {"naive injection": figures([0.9, 0.9]), "Still-Moving": figures([0.9, 0.9])}
    whole = {"naive injection": 0.86, "Still-Moving": 0.86}  # the whole frame's look kept
    subject = {"naive injection": 0.50, "Still-Moving": 0.50 - SUBJECT_DROP}
    result = verdict(same, whole, subject)
    assert SUBJECT_DROP == 0.05 and result["worse_than_naive"]
    assert (
        "(their colours other than the most common agree less with the customized T2I's images)" in (result["message"])
    )
    assert not verdict(same, whole, {"naive injection": 0.50, "Still-Moving": 0.46})["worse_than_naive"]  # 0.04 less
    assert not verdict(same, whole)["worse_than_naive"]  # not read: not judged


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
        "still_moving_down_mid_000.gif",  # the same adapters on the down and mid blocks only, always tried
        "still_moving_down_mid_001.gif",
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
    motion = report["motion"]  # how much each set moves: VBench's dynamic degree on optical flow
    assert sorted(motion) == ["Still-Moving", "naive injection"]
    assert all(sorted(m) == ["dynamic_degree", "flow_magnitude"] for m in motion.values())
    assert f"with naive injection {motion_text(motion['naive injection'], 2)}" in report["message"]
    assert report["encoder_side"]["motion"].keys() == motion["Still-Moving"].keys()
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


@pytest.mark.parametrize("flicker", [False, True])
def test_the_encoder_side_check_judges_the_down_and_mid_blocks_videos_against_naive_injections(
    tmp_path, monkeypatch, flicker
):
    naive = [square_video([(4, 4 + i) for i in range(6)]) for _ in range(2)]
    jumping = [square_video([(4, 4 + i) for i in range(6)], background=(10, 10, 60)) for _ in range(2)]
    for video in jumping:
        video[1::2] = np.where(video[1::2] == 10, 90, video[1::2])  # every other frame's background jumps
    ours = jumping if flicker else [v.copy() for v in naive]
    monkeypatch.setattr(naive_check, "encoder_side_videos", lambda *args: ours)
    checked = {"figures": {"naive injection": [video_figures(v) for v in naive]}}  # the check's own result
    result = check_encoder_side(None, None, ["a", "b"], None, tmp_path, checked, None)
    assert ENCODER_SIDE == "down,mid" and result["spatial_blocks"] == "down,mid"
    assert sorted(p.name for p in (tmp_path / "validation").iterdir()) == [
        "still_moving_down_mid_000.gif",
        "still_moving_down_mid_001.gif",
    ]
    assert result["figures"] == [video_figures(v) for v in ours] and result["worse_than_naive"] == flicker
    assert result["t2i_agreement"] is None
    assert result["motion"] == motion_read(ours) and result["motion"]["dynamic_degree"] == 1.0  # 1 px per frame
    assert "2 of 2 videos move (optical flow" in result["message"]
    if flicker:
        assert result["message"].startswith("on the UNet's down and mid blocks only (generate --spatial-blocks ")
        assert "the adapters are worse than naive injection (colour consistency" in result["message"]
    else:
        assert result["difference"]["colour_consistency"] == 0 and result["difference"]["tint_change"] == 0
        assert "they are not worse than naive injection (colour consistency 1.000" in result["message"]
        assert result["message"].endswith("validation/still_moving_down_mid_*.gif)")  # the caller says what follows


@pytest.mark.parametrize("blocks", ["down,mid,up", "down,mid"])
def test_adapters_found_worse_are_tried_on_the_down_and_mid_blocks_when_they_reach_the_up_blocks(
    tiny_dir, tmp_path, stage2_inputs, monkeypatch, blocks
):
    monkeypatch.setattr(naive_check, "LOOK_DROP", -1.0)  # every look "lost": the full set is judged worse
    monkeypatch.setattr(naive_check, "less_worse", lambda side, full: False)  # and the down and mid blocks no better
    cfg = tiny_customize(tiny_dir, stage2_inputs, tmp_path, num_validation_videos=2, spatial_blocks=blocks)
    saved = load_file(str(train_spatial_adapters(cfg)))
    report = json.loads((tmp_path / "validation.json").read_text())
    assert report["worse_than_naive"]
    tried = sorted(p.name for p in (tmp_path / "validation").glob("still_moving_down_mid_*.gif"))
    if blocks == "down,mid":  # nothing on the up blocks to leave out
        assert "encoder_side" not in report and tried == []
        return
    side = report["encoder_side"]
    assert tried == ["still_moving_down_mid_000.gif", "still_moving_down_mid_001.gif"]
    assert side["spatial_blocks"] == "down,mid" and len(side["figures"]) == 2 and side["worse_than_naive"]
    assert side["t2i_agreement"] is not None and "the adapters are worse than naive injection" in side["message"]
    assert side["message"] not in report["message"]  # its own line, after the verdict's
    assert any(k.startswith("up_blocks.") and torch.count_nonzero(v) for k, v in saved.items() if k.endswith(".up"))
    assert "spatial_blocks" not in json.loads((tmp_path / "customization.json").read_text())  # nothing better found
    assert side["less_worse_than_every_block"] is False


def test_down_and_mid_blocks_that_pass_where_every_block_fails_are_recorded_for_generate(
    tiny_dir, tmp_path, stage2_inputs, monkeypatch, capsys
):
    judged = []

    def full_set_worse(figures, kept=None, subject=None):  # the real verdict, "worse" for the first (every block) only
        result = verdict(figures, kept, subject)
        judged.append(result)
        return {**result, "worse_than_naive": len(judged) == 1}

    monkeypatch.setattr(naive_check, "verdict", full_set_worse)
    cfg = tiny_customize(tiny_dir, stage2_inputs, tmp_path, num_validation_videos=2)
    train_spatial_adapters(cfg)
    report = json.loads((tmp_path / "validation.json").read_text())
    assert len(judged) == 2 and report["worse_than_naive"] and not report["encoder_side"]["worse_than_naive"]
    assert report["encoder_side"]["less_worse_than_every_block"] is False  # it passes: no lesser-of-two reading
    record = json.loads((tmp_path / "customization.json").read_text())
    assert record["spatial_blocks"] == "down,mid" and record["spatial_blocks_why"] == naive_check.RECORDED_WHY
    assert record["spatial_adapters"] == "spatial_adapters.safetensors"  # the rest of the record kept
    assert "generate --customization applies those only from now on" in report["encoder_side"]["message"]
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("validation: ")]
    assert [line.removeprefix("validation: ") for line in said][-1] == report["encoder_side"]["message"]


def test_the_lesser_of_two_sets_both_worse_than_naive_injection_is_recorded_with_its_reason(
    tiny_dir, tmp_path, stage2_inputs, monkeypatch, capsys
):
    monkeypatch.setattr(naive_check, "LOOK_DROP", -1.0)  # both sets judged worse
    compared = []
    monkeypatch.setattr(naive_check, "less_worse", lambda side, full: compared.append((side, full)) or True)
    cfg = tiny_customize(tiny_dir, stage2_inputs, tmp_path, num_validation_videos=2)
    train_spatial_adapters(cfg)
    report = json.loads((tmp_path / "validation.json").read_text())
    side = report["encoder_side"]
    assert report["worse_than_naive"] and side["worse_than_naive"] and side["less_worse_than_every_block"]
    ((judged_side, full),) = compared
    assert judged_side["means"] == side["means"] and full["means"] == report["means"]  # down,mid against every block
    record = json.loads((tmp_path / "customization.json").read_text())
    assert record["spatial_blocks"] == "down,mid" and record["spatial_blocks_why"] == naive_check.LESSER_WHY
    assert "worse than naive injection (" in side["message"] and "though less so than every block" in side["message"]
    assert side["message"].endswith("naive injection (generate --spatial-scale 0) is better than both")


@pytest.mark.parametrize("no_worse, better", [(True, True), (False, True), (True, False)])
def test_down_and_mid_blocks_no_worse_than_every_block_are_recorded_where_both_pass(
    tiny_dir, tmp_path, stage2_inputs, monkeypatch, capsys, no_worse, better
):
    monkeypatch.setattr(naive_check, "LOOK_DROP", 2.0)  # no look "lost": both sets pass (the videos barely move)
    monkeypatch.setattr(naive_check, "WORSE_RATIO", 1e9)
    monkeypatch.setattr(naive_check, "TINT_RATIO", 1e9)
    compared = []
    monkeypatch.setattr(naive_check, "less_worse", lambda side, full: compared.append((side, full)) or no_worse)
    monkeypatch.setattr(naive_check, "better_somewhere", lambda side, full: better)  # False: a tie on all three
    cfg = tiny_customize(tiny_dir, stage2_inputs, tmp_path, num_validation_videos=2)
    train_spatial_adapters(cfg)
    report = json.loads((tmp_path / "validation.json").read_text())
    side = report["encoder_side"]
    assert not report["worse_than_naive"] and not side["worse_than_naive"] and len(compared) == 1
    assert side["no_worse_than_every_block"] is no_worse and side["less_worse_than_every_block"] is False
    assert len(list((tmp_path / "validation").glob("still_moving_down_mid_*.gif"))) == 2
    record = json.loads((tmp_path / "customization.json").read_text())
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("validation: ")]
    assert said[-1] == f"validation: {side['message']}"
    if no_worse and better:
        assert record["spatial_blocks"] == "down,mid" and record["spatial_blocks_why"] == naive_check.NO_WORSE_WHY
        assert side["message"].endswith(
            "and no worse than every block on each reading: generate --customization applies those only from now on "
            "(recorded in customization.json; generate --spatial-blocks down,mid,up for every block)"
        )
    elif no_worse:  # a tie: every block, the paper's, stays
        assert "spatial_blocks" not in record
        assert side["message"].endswith(", and read the same as every block on each reading: every block's stay")
    else:
        assert "spatial_blocks" not in record
        assert side["message"].endswith(", but every block's read better on at least one reading and stay")


def test_less_worse_asks_for_every_reading_no_worse_than_every_block():
    full = {
        "means": {"Still-Moving": {"colour_consistency": 0.88, "tint_change": 0.008}},
        "t2i_agreement": {"means": {"Still-Moving": 0.80}},
    }
    side = {"means": {"colour_consistency": 0.90, "tint_change": 0.006}, "t2i_agreement": 0.81}
    assert naive_check.less_worse(side, full)
    assert naive_check.less_worse({**side, "t2i_agreement": 0.80}, full)  # equal counts as no worse
    assert not naive_check.less_worse({**side, "t2i_agreement": 0.79}, full)  # its look further from the T2I's
    assert not naive_check.less_worse({**side, "means": {**side["means"], "tint_change": 0.009}}, full)
    assert not naive_check.less_worse({**side, "means": {**side["means"], "colour_consistency": 0.87}}, full)
    assert naive_check.less_worse({**side, "t2i_agreement": None}, {**full, "t2i_agreement": None})  # not read
    # the subject's look without the most common colour is a reading too, where both read it
    with_subject = {**full, "subject_agreement": {"means": {"Still-Moving": 0.40}}}
    assert naive_check.less_worse({**side, "subject_agreement": 0.45}, with_subject)
    assert not naive_check.less_worse({**side, "subject_agreement": 0.39}, with_subject)
    assert naive_check.less_worse({**side, "subject_agreement": None}, with_subject)  # not read by the side
    assert naive_check.reading_gains({**side, "subject_agreement": 0.45}, with_subject) == pytest.approx(
        [0.02, 0.002, 0.01, 0.05]
    )


def test_better_somewhere_asks_for_one_reading_strictly_better_than_every_block():
    full = {
        "means": {"Still-Moving": {"colour_consistency": 0.88, "tint_change": 0.008}},
        "t2i_agreement": {"means": {"Still-Moving": 0.80}},
    }
    tie = {"means": {"colour_consistency": 0.88, "tint_change": 0.008}, "t2i_agreement": 0.80}
    assert not naive_check.better_somewhere(tie, full)  # a tie on all three leaves every block
    assert naive_check.better_somewhere({**tie, "t2i_agreement": 0.81}, full)
    assert naive_check.better_somewhere({**tie, "means": {**tie["means"], "tint_change": 0.007}}, full)
    assert naive_check.better_somewhere({**tie, "means": {**tie["means"], "colour_consistency": 0.89}}, full)
    assert not naive_check.better_somewhere({**tie, "t2i_agreement": None}, full)  # not read: no better there
