"""`stillmoving compare` end to end on the embedded world (CI-sized), its resumption, and weight interpolation."""

import json
import os
import shutil

import pytest
import torch
from conftest import perturb
from diffusers import UNetMotionModel
from evaluation_models import save_tiny_clip, save_tiny_dino
from test_cli import invoke, run

from stillmoving.errors import StillMovingError
from stillmoving.injection import interpolate_weights, t2i_unet_from_t2v
from stillmoving.world.claims import BASE, NAIVE, OURS, T2I
from stillmoving.world.weights import shipped_model, shipped_motion_adapter

PROMPTS = ["a sks star moving left quickly on a gray background", "a sks star moving up slowly on a blue background"]
VARIANTS = [BASE.label, T2I.label, NAIVE.label, "weight interpolation", OURS.label]
WORLD = ["--num-frames", "8", "--height", "32", "--width", "32"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A 1-step customization of the shipped world model (its T2I nudged: a stand-in DreamBooth), CLIP, DINO and
    reference images."""
    root = tmp_path_factory.mktemp("compare")
    unet = t2i_unet_from_t2v(UNetMotionModel.from_pretrained(shipped_model(), subfolder="unet"))
    perturb(unet.parameters(), seed=3, scale=0.01, add=True)
    unet.save_pretrained(root / "m1")
    invoke(
        "customize",
        "--model",
        shipped_model(),
        "--motion-adapter",
        shipped_motion_adapter(),
        "-o",
        root / "custom",
        "--customized",
        root / "m1",
        "--prompt",
        "a sks star on a gray background",
        "--num-images",
        "1",
        "--num-prior-videos",
        "1",
        "--prior-loss-weight",
        "1",
        "--prior-prompt",
        "a red circle moving left slowly on a gray background",
        "--steps",
        "1",
        "--sample-steps",
        "2",
        "--num-validation-videos",
        "0",
        *WORLD,
    )
    invoke("world", "render", root / "refs", "--images", "--subject", "star", "--count", "2")
    return dict(
        custom=root / "custom", m1=root / "m1", clip=save_tiny_clip(root), dino=save_tiny_dino(root), refs=root / "refs"
    )


def compare(capsys, monkeypatch, inputs, output, *extra):
    return run(
        capsys,
        monkeypatch,
        "compare",
        "--customization",
        inputs["custom"],
        "--prompt",
        PROMPTS[0],
        "--prompt",
        PROMPTS[1],
        "--seeds",
        "2",
        "--steps",
        "2",
        "--clip-model",
        inputs["clip"],
        "--dino-model",
        inputs["dino"],
        "--reference-images",
        inputs["refs"],
        "--device",
        "cpu",
        "-o",
        output,
        *WORLD,
        *extra,
    )


def test_compare_reports_every_variant_with_intervals_and_resumes(inputs, tmp_path, capsys, monkeypatch):
    output = tmp_path / "report"
    code, _, err = compare(capsys, monkeypatch, inputs, output)
    assert code == 0, err
    record = json.loads((output / "metrics.json").read_text())
    assert list(record["variants"]) == VARIANTS
    for name, variant in record["variants"].items():
        assert len(variant["per_video"]) == 4 and variant["seeds"] == [0, 1, 0, 1]
        keys = {"clip_t", "clip_i", "dino_i"} | (
            {"temporal_consistency", "dynamic_degree", "speed"} if name != T2I.label else set()
        )
        assert all(keys <= set(figures) for figures in variant["per_video"]), name
    gaps = record["minus naive injection"]
    assert list(gaps) == [BASE.label, T2I.label, "weight interpolation", OURS.label]
    ours = gaps[OURS.label]
    assert ours["clip_t"]["n"] == 4 and ours["clip_t"]["low"] <= ours["clip_t"]["high"]
    assert gaps[T2I.label]["temporal_consistency"]["n"] == 0  # a still image has none
    page = (output / "index.html").read_text()
    assert all(f"{name} minus naive injection" in page for name in gaps) and "metrics.png" in page
    assert (output / "metrics.png").stat().st_size > 0 and len(list((output / "media").iterdir())) == 20

    removed = sorted((output / "videos" / "naive_injection").iterdir())[0]
    shutil.rmtree(removed)  # as if the run had stopped there
    code, _, err = compare(capsys, monkeypatch, inputs, output)
    assert code == 0, err
    assert [line.split(":")[0] for line in err.splitlines() if "generated in" in line] == [NAIVE.label]
    assert err.count("all videos on disk") == 4 and removed.is_dir()
    assert json.loads((output / "metrics.json").read_text())["variants"] == record["variants"]  # same videos again

    code, _, err = compare(capsys, monkeypatch, inputs, output, "--guidance-scale", "3")  # the world model's own is 4
    assert (code, err.strip().splitlines()[-1]) == (
        2,
        f"error: {output} holds videos made with another guidance_scale (4.0); pass --overwrite or another --output",
    )
    adapters = inputs["custom"] / "spatial_adapters.safetensors"
    os.utime(adapters, ns=(adapters.stat().st_atime_ns, adapters.stat().st_mtime_ns + 10**9))  # as if retrained
    code, _, err = compare(capsys, monkeypatch, inputs, output)
    assert code == 2 and "holds videos made with another spatial_adapters_files" in err


def test_compare_with_base_t2i_adds_delta_injection_which_is_naive_where_v_is_m(inputs, tmp_path, capsys, monkeypatch):
    """The world model's spatial layers are the T2I M the customization was made from: its delta injection,
    V + (M1 - M), is naive injection, video for video and frame for frame."""
    import numpy as np
    from PIL import Image

    output = tmp_path / "report"
    code, _, err = compare(capsys, monkeypatch, inputs, output)
    assert code == 0, err
    code, _, err = compare(capsys, monkeypatch, inputs, output, "--base-t2i", shipped_model())  # added afterwards
    assert code == 0, err
    assert err.count("all videos on disk") == 5  # only the new variant's videos are made
    record = json.loads((output / "metrics.json").read_text())
    assert list(record["variants"]) == VARIANTS[:4] + ["delta injection"] + VARIANTS[4:]
    code, _, err = compare(capsys, monkeypatch, inputs, output)  # left out: it keeps what its videos were made with
    assert code == 0, err
    assert list(json.loads((output / "metrics.json").read_text())["variants"]) == VARIANTS
    code, _, err = compare(capsys, monkeypatch, inputs, output, "--base-t2i", inputs["m1"])
    assert code == 2 and f"holds videos made with another base_t2i ('{shipped_model()}')" in err
    videos = {name: sorted((output / "videos" / name).iterdir()) for name in ("naive_injection", "delta_injection")}
    assert [v.name for v in videos["naive_injection"]] == [v.name for v in videos["delta_injection"]]
    frames = [sorted(v.glob("*.png")) for pair in zip(*videos.values()) for v in pair]
    assert len(frames) == 8 and all(len(f) == 8 for f in frames)
    for naive, delta in zip(frames[0::2], frames[1::2]):
        assert all(np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b))) for a, b in zip(naive, delta))


def test_weight_interpolation_is_the_base_at_0_the_customized_at_1_and_linear_between():
    base = {"w": torch.zeros(2, 3), "ids": torch.arange(3)}
    customized = {"w": torch.ones(2, 3) * 4, "ids": torch.arange(3) + 1}
    assert torch.equal(interpolate_weights(base, customized, 0.0)["w"], base["w"])
    assert torch.equal(interpolate_weights(base, customized, 1.0)["w"], customized["w"])
    halfway = interpolate_weights(base, customized, 0.25)
    assert torch.equal(halfway["w"], torch.ones(2, 3)) and torch.equal(halfway["ids"], customized["ids"])
    with pytest.raises(StillMovingError, match="'extra' is in one model only"):
        interpolate_weights(base, {**customized, "extra": torch.zeros(1)}, 0.5)


BASE_ARGS = ["--customization", "{custom}", "--prompt", PROMPTS[0]]
COMPARE_BAD_INPUTS = [  # (id, arguments, expected message); exit 2 and nothing written, before any model loads
    (
        "not-a-customization",
        ["--customization", "{tmp}", "--prompt", PROMPTS[0]],
        "error: {tmp} is not a customization folder (no customization.json)",
    ),
    ("no-prompt", ["--customization", "{custom}"], "Missing option '--prompt'"),
    (
        "weight-above-1",
        [*BASE_ARGS, "--interpolation-weight", "1.5"],
        "error: --interpolation-weight must be between 0 and 1, not 1.5",
    ),
    ("zero-seeds", [*BASE_ARGS, "--seeds", "0"], "error: --seeds must be at least 1, not 0"),
    (
        "height-not-a-multiple",
        [*BASE_ARGS, "--height", "31"],
        "error: --height 31 is not a multiple of the VAE's factor",
    ),
    ("clip-is-dino", [*BASE_ARGS, "--clip-model", "{dino}"], "expected model_type clip"),
    (
        "another-sampler",
        [*BASE_ARGS, "--scheduler", "lightning"],
        "error: customization {custom} was trained with the model's own scheduler, no LCM LoRA, 2 steps, guidance "
        "4; compare would use scheduler lightning, no LCM LoRA, 2 steps, guidance 4. Use the recorded setting, or "
        "pass --allow-sampler-mismatch to use this one anyway",  # the world model's own guidance, recorded with 2 steps
    ),
    ("unknown-scheduler", [*BASE_ARGS, "--scheduler", "turbo"], "error: unknown scheduler 'turbo'"),
    ("missing-base-t2i", [*BASE_ARGS, "--base-t2i", "nowhere"], "error: --base-t2i nowhere: no such file or folder"),
]


@pytest.mark.parametrize("args,message", [r[1:] for r in COMPARE_BAD_INPUTS], ids=[r[0] for r in COMPARE_BAD_INPUTS])
def test_compare_bad_inputs_fail_before_any_model_loads(inputs, tmp_path, capsys, monkeypatch, args, message):
    from stillmoving import loading

    monkeypatch.setattr(loading, "load_t2v", lambda *_, **__: pytest.fail("a model was loaded"))
    fill = dict(tmp=tmp_path, custom=inputs["custom"], dino=inputs["dino"])
    code, _, err = run(
        capsys, monkeypatch, "compare", "-o", tmp_path / "out", *WORLD, *[a.format(**fill) for a in args]
    )
    assert code == 2 and message.format(**fill) in err, err
    assert not (tmp_path / "out").exists()


def few_step_customization(inputs, folder, sampler: dict):
    """The fixture's customization with a sampling setting in its record, as `customize --scheduler ...` writes it
    (the adapters' file is named relative to the folder, the rest absolute)."""
    shutil.copytree(inputs["custom"], folder)
    record = json.loads((folder / "customization.json").read_text())
    (folder / "customization.json").write_text(json.dumps({**record, "sampler": sampler}))
    return folder


def test_compare_makes_the_video_model_s_own_clip_length_unless_told(inputs, tmp_path):
    from stillmoving.evaluation.compare import CompareConfig, check_compare

    given = dict(customization=str(inputs["custom"]), output_dir=str(tmp_path / "out"), prompts=[PROMPTS[0]])
    assert check_compare(CompareConfig(**given))[0].num_frames == 8  # the shipped world's generation_defaults.json
    assert check_compare(CompareConfig(**given, num_frames=4))[0].num_frames == 4


def test_compare_samples_with_the_recorded_setting_and_refuses_another(inputs, tmp_path, capsys, monkeypatch):
    """As `generate --customization`: the recorded scheduler, steps and guidance by default; another setting refused in
    one line before any model loads, unless --allow-sampler-mismatch."""
    from stillmoving import loading
    from stillmoving.evaluation import compare as comparing

    sampler = {"scheduler": "lightning", "lcm_lora": None, "steps": 2, "guidance_scale": 1.0}
    custom = few_step_customization(inputs, tmp_path / "custom", sampler)
    seen = []
    real = comparing._sample

    def spy(pipe, kind, cfg, key):
        scheduler = pipe.scheduler
        seen.append(
            (kind.label, type(scheduler).__name__, scheduler.config.timestep_spacing, cfg.steps, cfg.guidance_scale)
        )
        return real(pipe, kind, cfg, key)

    monkeypatch.setattr(comparing, "_sample", spy)
    args = ["compare", "--customization", custom, "--prompt", PROMPTS[0], "--seeds", "1", "--device", "cpu", *WORLD]
    args += ["--clip-model", inputs["clip"], "--dino-model", inputs["dino"]]
    real_load = loading.load_t2v
    monkeypatch.setattr(loading, "load_t2v", lambda *_, **__: pytest.fail("a model was loaded"))
    code, _, err = run(capsys, monkeypatch, *args, "--steps", "4", "-o", tmp_path / "refused")
    assert (code, err.strip().splitlines()) == (
        2,
        [
            f"error: customization {custom} was trained with scheduler lightning, no LCM LoRA, 2 steps, guidance 1; "
            "compare would use scheduler lightning, no LCM LoRA, 4 steps, guidance 1. Use the recorded setting, or "
            "pass --allow-sampler-mismatch to use this one anyway"
        ],
    )
    assert not (tmp_path / "refused").exists()
    monkeypatch.setattr(loading, "load_t2v", real_load)

    code, _, err = run(capsys, monkeypatch, *args, "-o", tmp_path / "recorded")
    assert code == 0, err
    assert [s[0] for s in seen] == VARIANTS  # every variant, the customized T2I's image too, samples so
    assert set(seen) == {(v, "EulerDiscreteScheduler", "trailing", 2, 1.0) for v in VARIANTS}
    settings = json.loads((tmp_path / "recorded" / "compare.json").read_text())["video_settings"]
    assert (settings["sampler"], settings["steps"], settings["guidance_scale"]) == (sampler, 2, 1.0)

    seen.clear()
    code, _, err = run(capsys, monkeypatch, *args, "--steps", "3", "--allow-sampler-mismatch", "-o", tmp_path / "other")
    assert code == 0, err
    assert set(seen) == {(v, "EulerDiscreteScheduler", "trailing", 3, 1.0) for v in VARIANTS}


def test_compare_refuses_an_exported_folder_before_any_model_loads(inputs, tmp_path, capsys, monkeypatch):
    """An exported folder's video model has the customized T2I injected: no base T2V, no customized T2I to load."""
    from stillmoving import loading
    from stillmoving.run_folder import exported_customization, read_customization

    shutil.copytree(inputs["custom"], tmp_path / "exported")
    record = exported_customization(read_customization(inputs["custom"]), motion_adapter=False)
    (tmp_path / "exported" / "customization.json").write_text(json.dumps(record))  # "model": "." (itself)
    monkeypatch.setattr(loading, "load_t2v", lambda *_, **__: pytest.fail("a model was loaded"))
    code, _, err = run(
        capsys,
        monkeypatch,
        "compare",
        "--customization",
        tmp_path / "exported",
        "--prompt",
        PROMPTS[0],
        "-o",
        tmp_path / "out",
    )
    assert (code, err.strip().splitlines()) == (
        2,
        [
            f"error: {tmp_path / 'exported'} records no customized T2I (an exported folder: its video model has the "
            "customized T2I injected); compare the folder `customize` wrote, which names the video model and the "
            "customized T2I"
        ],
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("blocks", [None, "down,mid"])
def test_compares_still_moving_on_the_blocks_its_customization_records(monkeypatch, blocks):
    """`compare`'s Still-Moving is what `generate --customization` makes: the recorded blocks' adapters only."""
    from stillmoving import loading
    from stillmoving.evaluation.compare import CompareConfig, variant_builders

    built = []
    monkeypatch.setattr(loading, "assemble_pipeline", lambda *args, **kwargs: built.append(kwargs))
    sources = {"model": "v", "customized": "m1", "spatial_adapters": "a.safetensors"}
    sources |= {"spatial_blocks": blocks} if blocks else {}
    description, build = variant_builders(CompareConfig("c", "out"), sources, "cpu", None)[OURS]
    build()
    assert built[0]["spatial_adapters"] == "a.safetensors" and built[0]["spatial_blocks"] == blocks
    assert ("(on the UNet's down,mid blocks only, as it records)" in description) == bool(blocks)
