"""The CLI end to end on the tiny model: 2-step runs of each stage, generate, info, and errors."""

import json
import shutil
import sys

import numpy as np
import pytest
import torch
from conftest import save_customized_unet
from diffusers import UNet2DConditionModel
from PIL import Image
from safetensors import safe_open

from stillmoving import cli

SMALL = ["--num-frames", "4", "--height", "32", "--width", "32", "--steps", "2", "--sample-steps", "2"]
GENERATE_SMALL = ["--num-frames", "4", "--height", "32", "--width", "32", "--steps", "2"]  # generate's size


def run(capsys, monkeypatch, *args) -> tuple[int, str, str]:
    """Run `stillmoving ARGS` in-process; returns (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["stillmoving", *map(str, args)])
    try:
        cli.main()
        code = 0
    except SystemExit as exit:
        code = exit.code or 0
    out, err = capsys.readouterr()
    return code, out, err


def invoke(*args):
    """Run a verb that must succeed (for module fixtures, where capsys is not available)."""
    from typer.testing import CliRunner

    result = CliRunner().invoke(cli.app, list(map(str, args)))
    if result.exit_code != 0:
        raise AssertionError(f"stillmoving {' '.join(map(str, args))} failed: {result.exception!r}\n{result.output}")
    return result


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def motion_run(tiny_dir, workdir):
    invoke(
        "motion-adapter",
        "train",
        "--model",
        tiny_dir,
        "-o",
        workdir / "motion",
        "--sample-prompt",
        "a red circle moving left",
        "--num-sampled-videos",
        "2",
        "--rank",
        "4",
        *SMALL,
    )
    return workdir / "motion"


@pytest.fixture(scope="module")
def custom_run(tiny_dir, workdir, customized, motion_run):
    invoke(
        "customize",
        "--model",
        tiny_dir,
        "-o",
        workdir / "custom",
        "--motion-adapter",
        motion_run / "motion_adapter",
        "--customized",
        customized,
        "--prompt",
        "a sks dog",
        "--identifier",
        "sks",
        "--num-images",
        "2",
        "--num-prior-videos",
        "2",
        "--spatial-rank",
        "2",
        "--num-validation-videos",  # no end-of-run check, so nothing recorded: generate applies every block
        "0",
        *SMALL,
    )
    return workdir / "custom"


@pytest.fixture(scope="module")
def customized(tiny_dir, workdir):
    return save_customized_unet(tiny_dir, workdir / "m1")


def test_motion_adapter_train_writes_diffusers_lora(motion_run):
    weights = motion_run / "motion_adapter/pytorch_lora_weights.safetensors"
    with safe_open(str(weights), "pt") as f:
        keys = list(f.keys())
    assert len(keys) == 84 and all(k.startswith("unet.") and ".motion_modules." in k for k in keys)
    record = json.loads((motion_run / "motion_adapter_run.json").read_text())
    assert len(record["losses"]) == 2 and record["config"]["rank"] == 4


def test_customize_writes_spatial_adapters_and_record(custom_run, customized):
    with safe_open(str(custom_run / "spatial_adapters.safetensors"), "pt") as f:
        keys, meta = set(f.keys()), f.metadata()
    assert len(keys) == 24 and {k.rsplit(".", 1)[1] for k in keys} == {"down", "up"}
    assert meta["rank"] == "2" and json.loads(meta["customized"]) == str(customized.resolve())
    record = json.loads((custom_run / "customization.json").read_text())
    assert record["spatial_adapters"] == "spatial_adapters.safetensors"


def test_customize_spatial_blocks_trains_and_saves_those_blocks_adapters_and_generate_attaches_them(
    tiny_dir, workdir, customized, motion_run, capsys, monkeypatch
):
    out = workdir / "custom_down_mid"
    args = ["--motion-adapter", motion_run / "motion_adapter", "--customized", customized, "--prompt", "a sks dog"]
    blocks = ["--spatial-blocks", "down,mid", "--num-validation-videos", "0"]
    invoke("customize", "--model", tiny_dir, "-o", out, *args, "--num-images", "2", *blocks, *SMALL)
    with safe_open(str(out / "spatial_adapters.safetensors"), "pt") as f:
        layers = {k.rsplit(".", 1)[0] for k in f.keys()}
        trained = [f.get_tensor(k) for k in f.keys() if k.endswith(".up")]
    assert layers and all(k.startswith(("down_blocks.", "mid_block.")) for k in layers)
    assert any(bool(up.any()) for up in trained)  # they trained
    record = json.loads((out / "customize_run.json").read_text())
    assert record["config"]["spatial_blocks"] == "down,mid"
    video = workdir / "down_mid.gif"
    args = ["--customization", out, "--prompt", "a sks dog", "-o", video, *GENERATE_SMALL, "--device", "cpu"]
    code, _, err = run(capsys, monkeypatch, "generate", *args)
    assert code == 0 and video.is_file(), err


@pytest.mark.parametrize("output", ["video.mp4", "video.gif"])
def test_generate_from_a_customization_folder(custom_run, workdir, capsys, monkeypatch, output):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # --device auto: the CPU, also on a GPU machine
    code, _, err = run(
        capsys,
        monkeypatch,
        "generate",
        "--customization",
        custom_run,
        "--prompt",
        "a sks dog",
        "-o",
        workdir / output,
        *GENERATE_SMALL,
        "--motion-scale",
        "-1",
    )
    assert code == 0, err
    assert (workdir / output).stat().st_size > 0
    assert "device: cpu, dtype: float32" in err.splitlines()  # what --device auto and --dtype auto chose


def test_generate_spatial_scale_zero_is_naive_injection(custom_run, tiny_dir, customized, workdir, capsys, monkeypatch):
    size = ["--prompt", "a sks dog", *GENERATE_SMALL]
    frames = {}
    for name, source in (
        ("scale 0", ["--customization", custom_run, "--spatial-scale", "0"]),
        ("naive", ["--model", tiny_dir, "--customized", customized]),
        ("scale 1", ["--customization", custom_run]),
    ):
        code, _, err = run(capsys, monkeypatch, "generate", *source, *size, "--device", "cpu", "-o", workdir / name)
        assert code == 0, err
        frames[name] = [np.asarray(Image.open(f)) for f in sorted((workdir / name).rglob("*.png"))]
    assert len(frames["naive"]) == 4 and all(np.array_equal(a, b) for a, b in zip(frames["scale 0"], frames["naive"]))
    assert not all(np.array_equal(a, b) for a, b in zip(frames["scale 1"], frames["naive"]))


def test_generate_with_base_t2i_injects_the_difference(tiny_dir, customized, custom_run, workdir, capsys, monkeypatch):
    """--base-t2i: V's own T2I as the base is naive injection to the pixel (also from a customization folder with its
    adapters at --spatial-scale 0); another base changes the videos."""
    from stillmoving.injection import t2i_unet_from_t2v
    from stillmoving.loading import load_t2v

    t2i_unet_from_t2v(load_t2v(str(tiny_dir)).unet).save_pretrained(workdir / "own_t2i")
    other = save_customized_unet(tiny_dir, workdir / "other_t2i", seed=7)
    frames = {}
    given = ["--model", tiny_dir, "--customized", customized]
    folder = ["--customization", custom_run, "--spatial-scale", "0"]
    for name, source in (
        ("naive", given),
        ("own", [*given, "--base-t2i", workdir / "own_t2i"]),
        ("folder", [*folder, "--base-t2i", workdir / "own_t2i"]),
        ("other", [*given, "--base-t2i", other]),
    ):
        code, _, err = run(
            capsys, monkeypatch, "generate", *source,
            "--prompt", "a sks dog", *GENERATE_SMALL, "--device", "cpu", "-o", workdir / f"base_{name}",
        )  # fmt: skip
        assert code == 0, err
        frames[name] = [np.asarray(Image.open(f)) for f in sorted((workdir / f"base_{name}").rglob("*.png"))]
    for name in ("own", "folder"):
        assert len(frames[name]) == 4 and all(np.array_equal(a, b) for a, b in zip(frames[name], frames["naive"]))
    assert not all(np.array_equal(a, b) for a, b in zip(frames["other"], frames["naive"]))


def test_generate_makes_the_model_s_own_clip_length_unless_told(tiny_dir, workdir, capsys, monkeypatch):
    from stillmoving import loading

    model = workdir / "model"
    shutil.copytree(tiny_dir, model)
    (model / "generation_defaults.json").write_text(json.dumps({"num_frames": 3}))
    small = ["--prompt", "a dog", "--height", "32", "--width", "32", "--steps", "2", "--device", "cpu"]
    for name, frames in (("own", []), ("told", ["--num-frames", "5"])):
        code, _, err = run(capsys, monkeypatch, "generate", "--model", model, *small, *frames, "-o", workdir / name)
        assert code == 0, err
    assert len(list((workdir / "own").rglob("*.png"))) == 3 and len(list((workdir / "told").rglob("*.png"))) == 5
    (model / "generation_defaults.json").write_text(json.dumps({"num_frames": 0}))  # refused before any model loads
    monkeypatch.setattr(loading, "load_t2v", lambda *_, **__: pytest.fail("a model was loaded"))
    code, _, err = run(capsys, monkeypatch, "generate", "--model", model, *small, "-o", workdir / "bad")
    assert (code, err.strip().splitlines()) == (
        2,
        [f"error: {model / 'generation_defaults.json'}: num_frames must be a positive whole number, not 0"],
    )
    assert not (workdir / "bad").exists()


def test_generate_applies_the_blocks_a_customization_records_unless_told_otherwise(
    custom_run, workdir, capsys, monkeypatch
):
    from stillmoving.describe import describe_file
    from stillmoving.loading import assemble_pipeline
    from stillmoving.run_folder import model_files, read_customization, record_spatial_blocks

    recorded = workdir / "custom_recorded"
    shutil.copytree(custom_run, recorded)
    record_spatial_blocks(recorded, "down,mid", "a test's reason")
    pipe = assemble_pipeline(**model_files(read_customization(recorded)))  # what generate --customization builds
    ups = {n: layer.up for n, layer in zip(pipe.spatial_adapters.placements, pipe.spatial_adapters.layers)}
    assert all(not up.any() for n, up in ups.items() if n.startswith("up_blocks."))
    assert any(up.any() for n, up in ups.items() if not n.startswith("up_blocks."))
    trained = read_customization(custom_run)
    assert model_files(trained)["spatial_blocks"] is None and "spatial_blocks" not in trained
    frames, size = {}, ["--prompt", "a sks dog", *GENERATE_SMALL, "--device", "cpu"]
    for name, source in (
        ("recorded", ["--customization", recorded]),
        ("told down,mid", ["--customization", custom_run, "--spatial-blocks", "down,mid"]),
        ("told every block", ["--customization", recorded, "--spatial-blocks", "down,mid,up"]),
        ("every block", ["--customization", custom_run]),
    ):
        code, _, err = run(capsys, monkeypatch, "generate", *source, *size, "-o", workdir / name)
        assert code == 0, err
        said = f"spatial adapters: the UNet's down,mid blocks only (recorded by {recorded}: a test's reason; "
        assert (said in " ".join(err.split())) == (name == "recorded")  # the console wraps long lines
        frames[name] = [np.asarray(Image.open(f)) for f in sorted((workdir / name).rglob("*.png"))]
    described = describe_file(recorded)["generate applies"]
    assert described == "the adapters of the UNet's down,mid blocks only (a test's reason)"
    assert "generate applies" not in describe_file(custom_run)
    code, out, _ = run(capsys, monkeypatch, "info", recorded)
    assert code == 0 and "generate applies" in out
    for a, b in (("recorded", "told down,mid"), ("told every block", "every block")):
        assert len(frames[a]) == 4 and all(np.array_equal(x, y) for x, y in zip(frames[a], frames[b]))
    assert not all(np.array_equal(x, y) for x, y in zip(frames["recorded"], frames["every block"]))


def test_info_describes_both_adapter_kinds(custom_run, motion_run, capsys, monkeypatch):
    code, out, _ = run(capsys, monkeypatch, "info", custom_run)
    assert code == 0 and "spatial adapters" in out and "up_blocks.1.attentions.1 (32 ch)" in out
    code, out, _ = run(capsys, monkeypatch, "info", motion_run / "motion_adapter")
    assert code == 0 and "motion adapter" in out and "rank" in out


def test_mismatched_customized_unet_is_refused(tiny_dir, workdir, motion_run, capsys, monkeypatch):
    other = UNet2DConditionModel(
        block_out_channels=(32, 48),
        layers_per_block=1,
        norm_num_groups=8,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=2,
        sample_size=16,
    )
    other.save_pretrained(workdir / "other")
    code, _, err = run(
        capsys,
        monkeypatch,
        "customize",
        "--model",
        tiny_dir,
        "-o",
        workdir / "refused",
        "--motion-adapter",
        motion_run / "motion_adapter",
        "--customized",
        workdir / "other",
        "--prompt",
        "a sks dog",
        "--prior-loss-weight",
        "0",
        *SMALL,
    )
    assert code == 2
    (line,) = [line for line in err.splitlines() if "error:" in line]  # progress bars aside, one line
    assert "customized UNet does not fit the video model" in line and "(48," in line
    assert not (workdir / "refused").exists()


@pytest.mark.parametrize(
    "args,message",
    [
        (["generate", "--model", "no/such/folder", "--prompt", "x", "-o", "x.gif"], "no such model folder"),
        (["info", "missing.safetensors"], "no such file"),
        (["generate", "--prompt", "x", "-o", "x.gif"], "missing --model or --customization"),
        (["eval", "missing"], "missing: no such folder"),
        (["eval", ".", "--clip-model", "no_such_clip"], "no videos found in ."),
        (["compare", "--customization", "missing", "--prompt", "x"], "missing is not a customization folder"),
        (["demo", "--prior-loss-weight", "nan", "-o", "d"], "--prior-loss-weight must be at least 0, not nan"),
        (["demo", "--image-guidance-scale", "-1", "-o", "d"], "--image-guidance-scale must be at least 0, not -1.0"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, monkeypatch, tmp_path, args, message):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, monkeypatch, *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


BROKEN_FIELDS = {  # a record cut short or edited by hand: the field, and the reason the error gives
    "no-adapters": ({"spatial_adapters": None}, "no 'spatial_adapters'"),
    "no-model": ({"model": ""}, "no 'model'"),
    "motion-adapter-a-number": ({"motion_adapter": 3}, "'motion_adapter' is not a path"),
    "loras-a-string": ({"loras": "style.safetensors"}, "'loras' is not a list of [path, weight]"),
    "lora-weight-a-string": ({"loras": [["style.safetensors", "0.8"]]}, "'loras' is not a list of [path, weight]"),
}


@pytest.mark.parametrize("text", ["{not json", "[1]", "left", *BROKEN_FIELDS])
@pytest.mark.parametrize("verb", ["generate", "info"])
def test_a_broken_customization_record_is_one_line_and_exit_2(custom_run, tmp_path, capsys, monkeypatch, verb, text):
    broken = tmp_path / "broken"
    shutil.copytree(custom_run, broken)
    record = json.loads((broken / "customization.json").read_text())
    why = ""
    if text in BROKEN_FIELDS:
        fields, why = BROKEN_FIELDS[text]
        text = json.dumps({**record, **fields})
    text = json.dumps({**record, "spatial_blocks": "left"}) if text == "left" else text  # blocks no UNet has
    (broken / "customization.json").write_text(text)
    args = ["--customization", broken, "--prompt", "x", "-o", tmp_path / "x.gif"] if verb == "generate" else [broken]
    code, _, err = run(capsys, monkeypatch, verb, *args)
    record_path = broken / "customization.json"
    expected = f"{record_path}: spatial_blocks 'left'" if "left" in text else f"{record_path} is not a valid record"
    if verb == "info" and text.startswith('{"'):  # info reports the record's fields, as written
        assert code == 0
        return
    assert code == 2 and expected in err and why in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "x.gif").exists()


GENERATE_BAD_INPUTS = [  # (id, arguments, expected message); every row: one line, exit 2, nothing loaded or written
    (
        "cuda-on-a-cpu-machine",
        ["--device", "cuda"],
        "error: --device cuda: CUDA is not available on this machine (available: cpu)",
    ),
    (
        "height-not-a-multiple",
        ["--height", "33"],
        "error: --height 33 is not a multiple of the VAE's factor {f}; use e.g. {below} or {above}",
    ),
    ("zero-steps", ["--steps", "0"], "error: --steps must be at least 1, not 0"),
    ("zero-frames", ["--num-frames", "0"], "error: --num-frames must be at least 1, not 0"),
    ("negative-guidance", ["--guidance-scale", "-1"], "error: --guidance-scale must be at least 0, not -1.0"),
    ("infinite-guidance", ["--guidance-scale", "inf"], "error: --guidance-scale must be a finite number, not inf"),
    ("negative-spatial-scale", ["--spatial-scale", "-1"], "error: --spatial-scale must be at least 0, not -1.0"),
    (
        "spatial-scale-without-adapters",
        ["--spatial-scale", "0.5"],
        "error: --spatial-scale needs spatial adapters (--spatial-adapters or --customization)",
    ),
    (
        "negative-spatial-min-timestep",
        ["--spatial-min-timestep", "-5"],
        "error: --spatial-min-timestep must be at least 0, not -5",
    ),
    (
        "spatial-min-timestep-without-adapters",
        ["--spatial-min-timestep", "100"],
        "error: --spatial-min-timestep needs spatial adapters (--spatial-adapters or --customization)",
    ),
    (
        "unknown-spatial-blocks",
        ["--spatial-blocks", "down,left"],
        "error: --spatial-blocks 'down,left': give one or more of down, mid, up, comma-separated, each once "
        "(e.g. down,mid,up, the paper's, or down,mid)",
    ),
    (
        "spatial-blocks-without-adapters",
        ["--spatial-blocks", "down,mid"],
        "error: --spatial-blocks needs spatial adapters (--spatial-adapters or --customization)",
    ),
    (
        "unknown-suffix",
        ["-o", "video.xyz"],
        "error: cannot write video video.xyz: unknown suffix '.xyz' (use .mp4, .gif, or a folder path for PNG frames)",
    ),
    ("nan-motion-scale", ["--motion-scale", "nan"], "error: --motion-scale must be a finite number, not nan"),
    (
        "motion-scale-without-motion-adapter",
        ["--motion-scale", "0.5"],
        "error: --motion-scale 0.5 needs a motion adapter (--motion-adapter, or a --customization that records one)",
    ),
    (
        "missing-spatial-adapters",
        ["--spatial-adapters", "none.safetensors"],
        "error: --spatial-adapters none.safetensors: no such file or folder",
    ),
    (
        "base-t2i-without-customized-t2i",
        ["--base-t2i", "."],
        "error: --base-t2i needs the customized T2I made from it: give --customized or --lora",
    ),
    (
        "base-t2i-with-spatial-adapters",
        ["--base-t2i", ".", "--customized", ".", "--spatial-adapters", "s.safetensors"],
        "error: --base-t2i (delta injection) takes no spatial adapters: they trained with the customized T2I in place "
        "of the video model's spatial weights; give --customized or --lora without --spatial-adapters or "
        "--customization, or --spatial-scale 0",
    ),
    (
        "missing-base-t2i",
        ["--base-t2i", "nowhere", "--customized", "."],
        "error: --base-t2i nowhere: no such file or folder",
    ),
]


@pytest.mark.parametrize("args,message", [r[1:] for r in GENERATE_BAD_INPUTS], ids=[r[0] for r in GENERATE_BAD_INPUTS])
def test_generate_bad_inputs_fail_before_any_model_loads(
    tiny_dir, tiny_pipe, tmp_path, capsys, monkeypatch, args, message
):
    """On a CPU-only machine (also when the test runs on a GPU one): refused before V is loaded, which would fail."""
    from stillmoving import loading

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    monkeypatch.setattr(loading, "load_t2v", lambda *_, **__: pytest.fail("a model was loaded"))
    factor = tiny_pipe.vae_scale_factor
    output = [] if "-o" in args else ["-o", "video.gif"]
    code, _, err = run(
        capsys,
        monkeypatch,
        "generate",
        "--model",
        tiny_dir,
        "--prompt",
        "x",
        "--height",
        "32",
        "--width",
        "32",
        *output,
        *args,
    )
    expected = message.format(f=factor, below=33 // factor * factor, above=33 // factor * factor + factor)
    assert (code, err.strip().splitlines()) == (2, [expected])
    assert list(tmp_path.iterdir()) == []


def _garbage_file(folder, name: str):
    (folder / name).write_bytes(b"not a safetensors file")
    return folder / name


def _tensors_file(folder, name: str, key: str):
    from safetensors.torch import save_file

    save_file({key: torch.zeros(2)}, folder / name)
    return folder / name


def _garbage_motion_adapter_folder(folder):
    (folder / "ma").mkdir()
    _garbage_file(folder / "ma", "pytorch_lora_weights.safetensors")
    return folder / "ma"


WEIGHTS_FILE_BAD_INPUTS = [  # (id, flag, making the file in the folder, expected message)
    (
        "customized-corrupt",
        "--customized",
        lambda t: _garbage_file(t, "c.safetensors"),
        "error: cannot read c.safetensors: not a complete safetensors file",
    ),
    (
        "lora-corrupt",
        "--lora",
        lambda t: _garbage_file(t, "l.safetensors"),
        "error: cannot read l.safetensors: not a complete safetensors file",
    ),
    (
        "spatial-adapters-corrupt",
        "--spatial-adapters",
        lambda t: _garbage_file(t, "s.safetensors"),
        "error: s.safetensors is not a readable safetensors file",
    ),
    (
        "spatial-adapters-of-another-kind",
        "--spatial-adapters",
        lambda t: _tensors_file(t, "s.safetensors", "down_blocks.0.resnets.0.conv1.weight"),
        "error: s.safetensors is not a Still-Moving spatial-adapter file",
    ),
    (
        "motion-adapter-corrupt",
        "--motion-adapter",
        _garbage_motion_adapter_folder,
        "error: ma/pytorch_lora_weights.safetensors is not a readable safetensors file",
    ),
    (
        "motion-adapter-of-another-kind",
        "--motion-adapter",
        lambda t: _tensors_file(t, "m.safetensors", "unet.down_blocks.0.attentions.0.proj_in.lora_A.weight"),
        "error: m.safetensors is not a motion adapter (no LoRA weights of temporal attention)",
    ),
]


@pytest.mark.parametrize(
    "flag,make,message", [r[1:] for r in WEIGHTS_FILE_BAD_INPUTS], ids=[r[0] for r in WEIGHTS_FILE_BAD_INPUTS]
)
def test_generate_refuses_unreadable_or_foreign_weights_files_before_any_model_loads(
    tiny_dir, tmp_path, capsys, monkeypatch, flag, make, message
):
    """Judged from the file's header: one line, exit 2, no model loaded, no video written."""
    from stillmoving import loading

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(loading, "load_t2v", lambda *_, **__: pytest.fail("a model was loaded"))
    made = make(tmp_path).relative_to(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    code, _, err = run(capsys, monkeypatch, "generate", "--model", tiny_dir, "--prompt", "x", "-o", "v.gif", flag, made)
    assert code == 2
    (line,) = err.strip().splitlines()
    assert line.startswith(message), line
    assert sorted(tmp_path.rglob("*")) == before


def test_customize_batch_checks_every_run_before_training(tiny_dir, tmp_path, capsys, monkeypatch):
    runs = [
        {
            "model": str(tiny_dir),
            "output": str(tmp_path / name),
            "height": 32,
            "width": 32,
            "steps": steps,
        }
        for name, steps in (("a", 1), ("b", 0))
    ]
    (tmp_path / "runs.json").write_text(json.dumps(runs))
    code, _, err = run(capsys, monkeypatch, "customize-batch", tmp_path / "runs.json")
    assert (code, err.strip().splitlines()) == (2, ["error: --steps must be at least 1, not 0"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.json"]


def test_every_verb_has_help(capsys, monkeypatch):
    for verb in (
        ["motion-adapter", "train"],
        ["customize"],
        ["generate"],
        ["info"],
        ["demo"],
        ["eval"],
        ["compare"],
        ["t2i", "dreambooth"],
        ["t2i", "lora"],
    ):
        code, out, _ = run(capsys, monkeypatch, *verb, "--help")
        assert code == 0 and "Usage" in out


def test_trained_motion_adapter_changes_frames_at_1_and_minus_1(tiny_dir, motion_run):
    from stillmoving.loading import assemble_pipeline

    pipe = assemble_pipeline(str(tiny_dir), motion_adapter=str(motion_run / "motion_adapter"))
    pipe.set_progress_bar_config(disable=True)

    def frames(scale):
        return pipe(
            "a red circle moving left",
            num_frames=4,
            height=32,
            width=32,
            num_inference_steps=2,
            motion_scale=scale,
            generator=torch.Generator().manual_seed(0),
            output_type="pt",
        ).frames

    base = frames(0.0)
    assert not torch.equal(frames(1.0), base)
    assert not torch.equal(frames(-1.0), base)
    assert torch.equal(frames(0.0), base)


def test_t2i_verbs_make_customizations_that_customize_accepts(tiny_dir, tmp_path):
    from stillmoving.data.video_io import write_image
    from stillmoving.loading import load_customized, load_t2v
    from stillmoving.world.synthetic import make_image_dataset

    for i, (image, _, _) in enumerate(make_image_dataset(2, seed=0, resolution=32, subject="star")):
        write_image(image, tmp_path / "subject" / f"{i}.png")
    size = ["--height", "32", "--width", "32", "--steps", "2"]
    invoke(
        "t2i",
        "dreambooth",
        "--model",
        tiny_dir,
        "-o",
        tmp_path / "db",
        "--images",
        tmp_path / "subject",
        "--prompt",
        "a sks star",
        *size,
    )
    invoke(
        "t2i",
        "lora",
        "--model",
        tiny_dir,
        "-o",
        tmp_path / "lora",
        "--images",
        tmp_path / "subject",
        "--prompt",
        "a star in crayon style",
        "--rank",
        "2",
        *size,
    )
    t2v = load_t2v(tiny_dir)
    assert load_customized(t2v, tmp_path / "db").unet is not None
    assert load_customized(t2v, loras=[(str(tmp_path / "lora/pytorch_lora_weights.safetensors"), 1.0)]).unet is not None


def test_error_text_is_printed_as_written_not_as_markup(capsys, monkeypatch):
    """A message holding square brackets ("stillmoving[ui]", "[-1, 1]") reaches the user whole."""
    from stillmoving.errors import StillMovingError

    def fail():
        raise StillMovingError('install it: pip install "stillmoving[ui]" (scale in [-1, 1])')

    monkeypatch.setattr(cli, "app", fail)
    code, _, err = run(capsys, monkeypatch)
    assert code == 2 and 'pip install "stillmoving[ui]" (scale in [-1, 1])' in err
