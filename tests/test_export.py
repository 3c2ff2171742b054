"""`stillmoving export`: a self-contained diffusers folder that plain diffusers loads and that gives the
same frames as the customization it came from."""

import json

import numpy as np
import torch
from diffusers import AnimateDiffPipeline
from test_cli import custom_run, customized, motion_run, run, workdir  # noqa: F401 (module fixtures)

from stillmoving import attach_spatial_adapters
from stillmoving.loading import assemble_pipeline
from stillmoving.run_folder import model_files, read_customization

CALL = dict(num_frames=4, height=32, width=32, num_inference_steps=2, output_type="np")


def frames(pipe, **kw):
    return pipe("a sks dog running", generator=torch.Generator().manual_seed(0), **CALL, **kw).frames[0]


def test_export_is_plain_diffusers_and_equals_the_customization(custom_run, tmp_path, capsys, monkeypatch):  # noqa: F811
    code, _, err = run(capsys, monkeypatch, "export", custom_run, "-o", tmp_path / "exported")
    assert code == 0, err
    out = tmp_path / "exported"
    assert json.loads((out / "model_index.json").read_text())["_class_name"] == "AnimateDiffPipeline"
    assert {p.name for p in out.iterdir()} >= {
        "unet",
        "vae",
        "text_encoder",
        "tokenizer",
        "scheduler",
        "README.md",
        "spatial_adapters.safetensors",
        "motion_adapter",
        "customization.json",
    }
    assert not list(out.rglob("*.bin")) and not list(tmp_path.glob(".*"))  # safetensors only, no staging left

    sources = read_customization(custom_run)
    ours = assemble_pipeline(
        sources["model"], customized=sources["customized"], spatial_adapters=sources["spatial_adapters"]
    )
    plain = AnimateDiffPipeline.from_pretrained(out)
    attach_spatial_adapters(plain, out / "spatial_adapters.safetensors")
    np.testing.assert_array_equal(frames(plain), frames(ours))

    plain.load_lora_weights(str(out / "motion_adapter"), adapter_name="motion")  # the motion adapter loads too
    plain.set_adapters(["motion"], [1.0])
    assert not np.array_equal(frames(plain), frames(ours))


def test_exported_folder_generates_from_anywhere(custom_run, tmp_path, capsys, monkeypatch):  # noqa: F811
    assert run(capsys, monkeypatch, "export", custom_run, "-o", tmp_path / "a" / "exported")[0] == 0
    (tmp_path / "a").rename(tmp_path / "moved")
    monkeypatch.chdir(tmp_path)
    code, _, err = run(
        capsys,
        monkeypatch,
        "generate",
        "--customization",
        "moved/exported",
        "--prompt",
        "a sks dog",
        "-o",
        "v.gif",
        "--num-frames",
        "4",
        "--height",
        "32",
        "--width",
        "32",
        "--steps",
        "2",
        "--motion-scale",
        "0.5",
    )
    assert code == 0 and (tmp_path / "v.gif").is_file(), err


def test_export_refuses_a_non_empty_target_and_a_non_customization(custom_run, tmp_path, capsys, monkeypatch):  # noqa: F811
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    code, _, err = run(capsys, monkeypatch, "export", custom_run, "-o", tmp_path / "taken")
    assert code == 2 and "not empty" in err
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["keep.txt"]
    code, _, err = run(capsys, monkeypatch, "export", tmp_path / "taken", "-o", tmp_path / "new")
    assert code == 2 and "not a customization folder" in err and not (tmp_path / "new").exists()


def test_export_with_a_controlnet_reproduces_with_diffusers_alone(custom_run, tmp_path, capsys, monkeypatch):  # noqa: F811
    from types import SimpleNamespace

    from diffusers import AnimateDiffControlNetPipeline, ControlNetModel
    from test_conditioning import frames_as_images, silhouettes, tiny_controlnet

    from stillmoving.pipeline import StillMovingControlNetPipeline

    sources = read_customization(custom_run)
    ours = assemble_pipeline(
        sources["model"], customized=sources["customized"], spatial_adapters=sources["spatial_adapters"]
    )
    tiny_controlnet(ours.unet).save_pretrained(tmp_path / "cn")
    out = tmp_path / "exported"
    code, _, err = run(capsys, monkeypatch, "export", custom_run, "-o", out, "--controlnet", f"{tmp_path / 'cn'}:0.5")
    assert code == 0, err
    card = (out / "README.md").read_text()
    assert "`controlnet/` (from" in card and "scale 0.5" in card and "enable_free_noise" in card
    # The card's recipe, followed with diffusers alone, gives Still-Moving's frames.
    controlnet = ControlNetModel.from_pretrained(out / "controlnet")
    plain = AnimateDiffControlNetPipeline.from_pretrained(out, controlnet=controlnet, motion_adapter=None)
    attach_spatial_adapters(plain, out / "spatial_adapters.safetensors")
    ours = ours.conditional(ControlNetModel.from_pretrained(tmp_path / "cn"))
    assert isinstance(ours, StillMovingControlNetPipeline)
    control = dict(conditioning_frames=frames_as_images(silhouettes()), controlnet_conditioning_scale=0.5)
    np.testing.assert_array_equal(frames(plain, **control), frames(ours, **control))
    plain.motion_adapter = SimpleNamespace(config=SimpleNamespace(motion_max_seq_length=16))
    plain.enable_free_noise(context_length=4, context_stride=2)
    plain.motion_adapter = None
    plain.load_lora_weights(str(out / "motion_adapter"), adapter_name="motion")
    plain.set_adapters(["motion"], [-0.5])
    long = dict(CALL, num_frames=8, num_inference_steps=1)
    control = dict(conditioning_frames=frames_as_images(silhouettes(num_frames=8)))
    video = plain("a sks dog running", generator=torch.Generator().manual_seed(0), **long, **control).frames[0]
    assert video.shape[0] == 8 and np.isfinite(video).all()


def test_an_export_with_recorded_blocks_loads_as_generate_applies_it(custom_run, tmp_path, capsys, monkeypatch):  # noqa: F811
    """Where customize's check recorded blocks, the card's diffusers snippet keeps only those adapters, and
    StillMovingPipeline.from_pretrained on the folder attaches them so; both equal `generate --customization`'s
    pipeline on the export, frame for frame, and differ from every block's adapters."""
    import shutil

    from stillmoving.pipeline import StillMovingPipeline
    from stillmoving.run_folder import record_spatial_blocks

    run_dir = shutil.copytree(custom_run, tmp_path / "run")
    record_spatial_blocks(run_dir, "down,mid", "its check")
    assert run(capsys, monkeypatch, "export", run_dir, "-o", tmp_path / "exported")[0] == 0
    out = tmp_path / "exported"
    card = (out / "README.md").read_text()
    assert 'attach_spatial_adapters(pipe, "exported/spatial_adapters.safetensors").keep_blocks_("down,mid")' in card
    assert 'StillMovingPipeline.from_pretrained("exported")` attaches them itself, in the blocks recorded' in card

    expected = frames(assemble_pipeline(**model_files(read_customization(out))))  # what generate applies
    plain = AnimateDiffPipeline.from_pretrained(out)
    attach_spatial_adapters(plain, out / "spatial_adapters.safetensors").keep_blocks_("down,mid")  # as the card
    np.testing.assert_array_equal(frames(plain), expected)
    ours = StillMovingPipeline.from_pretrained(out)
    np.testing.assert_array_equal(frames(ours), expected)
    ours.load_spatial_adapters(out / "spatial_adapters.safetensors")  # every block's
    assert not np.array_equal(frames(ours), expected)


def test_an_exported_record_keeps_the_blocks_the_customization_records():
    from stillmoving.run_folder import exported_customization

    sources = {"model": "/v", "spatial_blocks": "down,mid", "spatial_blocks_why": "its check"}
    exported = exported_customization(sources, motion_adapter=False)
    assert (exported["spatial_blocks"], exported["spatial_blocks_why"]) == ("down,mid", "its check")
    assert model_files(exported)["spatial_blocks"] == "down,mid"  # generate --customization on the export
    assert "spatial_blocks" not in exported_customization({"model": "/v"}, motion_adapter=False)


def test_recorded_blocks_go_with_the_recorded_adapters_only():
    from stillmoving.run_folder import merge_customization

    sources = {"model": "/v", "spatial_adapters": "/run/a.safetensors", "spatial_blocks": "down,mid"}
    assert merge_customization({}, sources)["spatial_blocks"] == "down,mid"
    assert merge_customization({"spatial_blocks": "up"}, sources)["spatial_blocks"] == "up"
    other = merge_customization({"spatial_adapters": "/mine.safetensors"}, sources)
    assert other["spatial_adapters"] == "/mine.safetensors" and other["spatial_blocks"] is None


def test_export_with_base_t2i_is_a_plain_video_model_of_delta_injection(custom_run, tmp_path, capsys, monkeypatch):  # noqa: F811
    """--base-t2i: V + (M1 - M) saved as a plain diffusers folder, no spatial adapters and no customization record;
    where V's spatial layers are M (this tiny V's own T2I as the base) it is naive injection frame for frame, and
    `generate --model` runs on it; a missing base is one line before any model loads."""
    from stillmoving.injection import t2i_unet_from_t2v
    from stillmoving.loading import load_t2v

    sources = read_customization(custom_run)
    t2i_unet_from_t2v(load_t2v(sources["model"]).unet).save_pretrained(tmp_path / "own_t2i")
    out = tmp_path / "delta"
    code, _, err = run(capsys, monkeypatch, "export", custom_run, "-o", out, "--base-t2i", tmp_path / "own_t2i")
    assert code == 0, err
    names = {p.name for p in out.iterdir()}
    assert {"unet", "vae", "README.md", "motion_adapter"} <= names
    assert not names & {"spatial_adapters.safetensors", "customization.json"}
    assert "delta injection" in (out / "README.md").read_text()
    naive = assemble_pipeline(sources["model"], customized=sources["customized"])
    np.testing.assert_array_equal(frames(AnimateDiffPipeline.from_pretrained(out)), frames(naive))
    small = ["--prompt", "a sks dog", "--num-frames", "4", "--height", "32", "--width", "32", "--steps", "2"]
    code, _, err = run(capsys, monkeypatch, "generate", "--model", out, *small, "-o", tmp_path / "v.gif")
    assert code == 0 and (tmp_path / "v.gif").is_file(), err
    code, _, err = run(capsys, monkeypatch, "export", custom_run, "-o", tmp_path / "x", "--base-t2i", tmp_path / "none")
    assert (code, err.strip().splitlines()[-1]) == (2, f"error: --base-t2i {tmp_path / 'none'}: no such file or folder")
    assert not (tmp_path / "x").exists()
