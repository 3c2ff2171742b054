"""Tests for stillmoving.world.pretrain and stillmoving.world.probe: 2-step smoke runs of every phase on the
"tiny" preset, the saved AnimateDiff folder, determinism, and the probe on ground-truth videos."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from stillmoving.world import probe
from stillmoving.world.pretrain import PretrainConfig, main, override, run
from stillmoving.world.synthetic import render_video

RESOLUTION, FRAMES = 16, 4


def tiny_config(steps: int = 2) -> PretrainConfig:
    cfg = PretrainConfig(
        preset="tiny", resolution=RESOLUTION, num_frames=FRAMES, num_videos=8, monitor_videos=4, monitor_steps=2
    )
    for phase in (cfg.vae, cfg.t2i, cfg.motion):
        phase.steps, phase.batch_size, phase.warmup_steps, phase.monitor_every = steps, 2, 1, 0
    return cfg


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("world")
    run(tiny_config(), out)
    return out


def test_every_phase_writes_its_folder_and_log(world_dir):
    for folder in ("vae", "t2i", "pipeline", "motion_adapter"):
        assert (world_dir / folder).is_dir()
    record = json.loads((world_dir / "pretrain_log.json").read_text())
    assert [record[p]["steps"] for p in ("vae", "t2i", "motion")] == [2, 2, 2]
    assert record["vae"]["scaling_factor"] > 0
    assert set(record["motion"]["monitor"][-1]) >= {"step", "direction_accuracy", "displacement", "mask_iou"}


def test_pipeline_folder_is_standard_animatediff(world_dir):
    index = json.loads((world_dir / "pipeline" / "model_index.json").read_text())
    assert index["_class_name"] == "AnimateDiffPipeline"
    assert index["unet"] == ["diffusers", "UNetMotionModel"]
    keys = load_file(world_dir / "pipeline" / "unet" / "diffusion_pytorch_model.safetensors").keys()
    assert any(".motion_modules." in k for k in keys) and any(".attentions." in k for k in keys)
    adapter = load_file(world_dir / "motion_adapter" / "diffusion_pytorch_model.safetensors")
    assert all("motion_modules" in k for k in adapter)


def test_the_pipeline_folder_carries_the_monitor_s_generation_settings(world_dir):
    """pretrain writes the clip length and the monitor's steps and guidance as the folder's generation defaults,
    the verbs' defaults on it; the shipped folders hold what the default config writes."""
    from stillmoving.validation import GENERATION_DEFAULTS
    from stillmoving.world.demo import DemoConfig
    from stillmoving.world.weights import shipped_model

    cfg = tiny_config()
    written = json.loads((world_dir / "pipeline" / GENERATION_DEFAULTS).read_text())
    assert written == {
        "num_frames": FRAMES,
        "num_inference_steps": cfg.monitor_steps,
        "guidance_scale": cfg.guidance_scale,
    }
    default = PretrainConfig()
    expected = {"num_frames": default.num_frames, "num_inference_steps": default.monitor_steps, "guidance_scale": 4.0}
    assert expected["guidance_scale"] == default.guidance_scale
    for name in ("animatediff", "joint"):
        assert json.loads((shipped_model(name) / GENERATION_DEFAULTS).read_text()) == expected
    demo = DemoConfig()  # the demo, whose figures every document quotes, samples at the world's own setting
    assert [demo.num_frames, demo.sample_steps, demo.guidance_scale] == list(expected.values())


def test_motion_modules_trained_and_spatial_layers_frozen(world_dir):
    t2i = load_file(world_dir / "t2i" / "unet" / "diffusion_pytorch_model.safetensors")
    video = load_file(world_dir / "pipeline" / "unet" / "diffusion_pytorch_model.safetensors")
    assert all(torch.equal(t2i[k], video[k]) for k in t2i)
    proj_out = [v for k, v in video.items() if k.endswith("proj_out.weight") and "motion_modules" in k]
    assert proj_out and any(v.abs().max() > 0 for v in proj_out)  # moved away from its zero init


def test_loaded_pipeline_generates_frames(world_dir):
    from stillmoving.pipeline import StillMovingPipeline

    pipe = StillMovingPipeline.from_pretrained(world_dir / "pipeline")
    pipe.set_progress_bar_config(disable=True)
    frames = pipe(
        "a red circle moving left slowly on a gray background",
        num_frames=FRAMES,
        height=RESOLUTION,
        width=RESOLUTION,
        num_inference_steps=2,
        output_type="pt",
        generator=torch.Generator().manual_seed(0),
    ).frames
    assert frames.shape == (1, FRAMES, 3, RESOLUTION, RESOLUTION)
    assert torch.isfinite(frames).all()


def test_joint_phase_trains_spatial_and_temporal_weights_from_the_video_model(world_dir, tmp_path):
    cfg = tiny_config()
    cfg.joint.steps, cfg.joint.batch_size, cfg.joint.warmup_steps, cfg.joint.monitor_every = 2, 2, 1, 0
    cfg.joint_from = str(world_dir / "pipeline")
    record = run(cfg, tmp_path, ("joint",))["joint"]
    before = load_file(world_dir / "pipeline" / "unet" / "diffusion_pytorch_model.safetensors")
    after = load_file(tmp_path / "joint" / "pipeline" / "unet" / "diffusion_pytorch_model.safetensors")
    assert before.keys() == after.keys()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert any("motion_modules" in k for k in moved) and any("motion_modules" not in k for k in moved)
    spatial = [k for k in before if "motion_modules" not in k]
    change = sum(float((after[k] - before[k]).pow(2).sum()) for k in spatial)
    expected = (change / sum(float(before[k].pow(2).sum()) for k in spatial)) ** 0.5
    assert record["spatial_drift"] == pytest.approx(expected, abs=1e-5) and record["spatial_drift"] > 0
    assert {"unnamed_look_color_consistency", "unconditional_shape_consistency"} <= set(record["monitor"][-1])
    assert (tmp_path / "joint" / "motion_adapter").is_dir()


def test_controlnet_phase_trains_a_controlnet_for_the_t2i(world_dir, tmp_path):
    from diffusers import ControlNetModel

    cfg = tiny_config()
    cfg.controlnet.steps, cfg.controlnet.batch_size, cfg.controlnet.warmup_steps = 2, 2, 1
    cfg.controlnet_from = str(world_dir / "pipeline")
    record = run(cfg, tmp_path, ("controlnet",))["controlnet"]
    net = ControlNetModel.from_pretrained(tmp_path / "controlnet")
    assert net.config.conditioning_embedding_out_channels == [16, 32]  # the tiny VAE halves: one stride-2 conv
    zero_convs = [p for n, p in net.named_parameters() if n.startswith("controlnet_down_blocks")]
    assert any(p.abs().sum() > 0 for p in zero_convs)  # trained away from their zero start
    assert set(record["monitor"]) == {"track_iou", "track_distance"} and record["params"] > 0


def test_joint_phase_can_keep_the_spatial_layers(world_dir, tmp_path):
    cfg = tiny_config()
    cfg.joint.steps, cfg.joint.batch_size, cfg.joint.warmup_steps, cfg.joint.monitor_every = 2, 2, 1, 0
    cfg.joint_from, cfg.joint.train_spatial = str(world_dir / "pipeline"), False
    record = run(cfg, tmp_path, ("joint",))["joint"]
    before = load_file(world_dir / "pipeline" / "unet" / "diffusion_pytorch_model.safetensors")
    after = load_file(tmp_path / "joint" / "pipeline" / "unet" / "diffusion_pytorch_model.safetensors")
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved and all("motion_modules" in k for k in moved) and record["spatial_drift"] == 0.0


def test_captions_leave_the_look_unnamed_at_the_configured_rate(world_dir):
    from transformers import CLIPTokenizer

    from stillmoving.world.pretrain import WorldData, choose_captions

    cfg = tiny_config()
    data = WorldData(cfg, CLIPTokenizer.from_pretrained(world_dir / "pipeline" / "tokenizer"))
    cfg.joint.caption_dropout, cfg.joint.appearance_dropout = 0.0, 1.0
    ids = torch.arange(len(data.captions))
    assert choose_captions(data, ids, cfg.joint) == data.unnamed_look_captions
    assert all(spec.color not in text for spec, text in zip(data.specs, data.unnamed_look_captions))
    cfg.joint.appearance_dropout = 0.0
    assert choose_captions(data, ids, cfg.joint) == data.captions


def test_same_seed_same_weights_and_log(tmp_path):
    for name in ("a", "b"):
        cfg = tiny_config()
        cfg.num_videos = 4
        run(cfg, tmp_path / name)
    for part in ("vae", "t2i/unet", "t2i/text_encoder", "pipeline/unet"):
        file = "model.safetensors" if "text" in part else "diffusion_pytorch_model.safetensors"
        first, second = (load_file(tmp_path / n / part / file) for n in ("a", "b"))
        assert all(torch.equal(first[k], second[k]) for k in first), part
    logs = [json.loads((tmp_path / n / "pretrain_log.json").read_text()) for n in ("a", "b")]
    assert logs[0]["motion"]["monitor"] == logs[1]["motion"]["monitor"]


def test_overrides_are_typed_and_strict():
    cfg = PretrainConfig()
    override(cfg, "motion.learning_rate=5e-4")
    override(cfg, "num_videos=10")
    assert cfg.motion.learning_rate == 5e-4 and cfg.num_videos == 10
    for bad in ("motion.nope=1", "nope=1", "vae=1", "t2i.steps.x=1"):
        with pytest.raises(KeyError):
            override(cfg, bad)


def test_cli_runs_one_phase(tmp_path):
    main(
        [
            "--out",
            str(tmp_path),
            "--phase",
            "vae",
            "--preset",
            "tiny",
            "--steps",
            "1",
            "--set",
            "num_videos=2",
            "--set",
            f"resolution={RESOLUTION}",
            "--set",
            f"num_frames={FRAMES}",
            "--set",
            "vae.batch_size=2",
        ]
    )
    assert json.loads((tmp_path / "pretrain_log.json").read_text())["vae"]["steps"] == 1


# ----------------------------------------------------------------------------- probe


def ground_truth(count: int = 24, num_frames: int = 8, resolution: int = 32):
    specs = probe.monitor_scenes(count, seed=3, num_frames=num_frames)
    return np.stack([render_video(s, num_frames, resolution) for s in specs]), specs


def test_probe_reads_ground_truth_motion():
    videos, specs = ground_truth()
    figures = probe.summarise(videos, specs)
    assert figures["direction_accuracy"] == 1.0
    assert figures["displacement"] == pytest.approx(figures["expected_displacement"], rel=0.05)
    assert figures["track_residual"] < 0.3
    assert figures["object_found"] == figures["colour_accuracy"] == figures["background_accuracy"] == 1.0


def test_probe_sees_static_and_independent_frames():
    videos, specs = ground_truth()
    static = probe.summarise(np.repeat(videos[:, :1], 8, axis=1), specs)
    assert static["displacement"] < 1e-6 and static["mask_iou"] == 1.0
    shuffled = probe.summarise(videos[np.arange(8) * 3 % len(videos), np.arange(8)][None], specs[:1])
    assert shuffled["mask_iou"] < 0.5 and shuffled["track_residual"] > 1.0


def test_probe_accepts_pipeline_output_layouts():
    videos, _ = ground_truth(2, num_frames=3, resolution=16)
    as_float = torch.from_numpy(videos).float().div(255).permute(0, 1, 4, 2, 3)  # (b, f, 3, h, w) like "pt"
    np.testing.assert_array_equal(probe.to_uint8(as_float), videos)


def test_joint_phase_without_a_video_model_to_start_from_is_one_error_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--out", str(tmp_path / "run"), "--phase", "joint"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "error: the joint phase starts from an AnimateDiff folder" in err
    assert "Traceback" not in err and not (tmp_path / "run").exists()


def test_decoder_phase_trains_the_decoder_and_keeps_the_encoder_bit_for_bit(world_dir, tmp_path):
    cfg = tiny_config()
    cfg.decoder.steps, cfg.decoder.batch_size, cfg.decoder.warmup_steps = 2, 4, 1
    cfg.decoder_from, cfg.generic_images, cfg.held_out_images = str(world_dir / "vae"), 8, 6
    record = run(cfg, tmp_path, ("decoder",))["decoder"]
    before = load_file(world_dir / "vae" / "diffusion_pytorch_model.safetensors")
    after = load_file(tmp_path / "vae_decoder" / "diffusion_pytorch_model.safetensors")
    assert before.keys() == after.keys()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    # the latent space every UNet was trained in is untouched: encoder and quant_conv equal, the decoder moved
    assert moved and all(k.startswith(("decoder.", "post_quant_conv.")) for k in moved)
    assert any(k.startswith("decoder.") for k in moved)
    config = json.loads((tmp_path / "vae_decoder" / "config.json").read_text())
    assert config["scaling_factor"] == json.loads((world_dir / "vae" / "config.json").read_text())["scaling_factor"]
    assert set(record["before"]) == set(record["after"]) == {"psnr", "psnr_generic_held_out", "psnr_held_out"}
    assert set(record["after"]["psnr_held_out"]) == set(probe.HELD_OUT_LOOKS)


def test_decoder_phase_without_a_vae_to_start_from_is_one_error_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--out", str(tmp_path / "run"), "--phase", "decoder"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "error: the decoder phase fine-tunes a VAE folder" in err
    assert "Traceback" not in err and not (tmp_path / "run").exists()
