"""Training that survives faults: SIGKILL mid-run then --resume gives the same adapter bit for bit (both stages,
real subprocesses), a kill mid-write leaves the previous file intact, NaN stops with the last checkpoint kept
(or skips when allowed), and output folders holding another run are refused."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_cli import run

from stillmoving.training.checkpoints import checkpoints

TRAIN = [
    "--num-frames",
    "4",
    "--height",
    "32",
    "--width",
    "32",
    "--sample-steps",
    "2",
    "--seed",
    "0",
    "--checkpoint-every",
    "1",
]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}


def cli(*args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "stillmoving", *map(str, args)],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen) -> None:
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-2000:]


def kill_at_checkpoint(process: subprocess.Popen, output: Path, step: int) -> None:
    """SIGKILL the run as soon as checkpoint `step` is in place (it may be writing the next one)."""
    target = output / "checkpoints" / f"checkpoint-{step}"
    deadline = time.monotonic() + 600
    while not target.is_dir():
        assert process.poll() is None, f"the run ended before checkpoint {step}: {process.stderr.read()[-2000:]}"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL


def equal_files(a: Path, b: Path) -> None:
    wa, wb = load_file(str(a)), load_file(str(b))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert any(torch.count_nonzero(wa[k]) for k in wa)


def killed_and_resumed_equals_uninterrupted(args: list, tmp_path: Path, steps: int, result: str) -> None:
    kill_step = random.Random(os.getpid()).randint(1, 3)  # a checkpoint lives until two newer ones exist
    full = cli(*args, "-o", tmp_path / "full", "--steps", steps)
    cut = cli(*args, "-o", tmp_path / "cut", "--steps", steps)
    kill_at_checkpoint(cut, tmp_path / "cut", kill_step)
    finish(full)
    assert not (tmp_path / "cut" / result).exists()  # nothing final was written by the killed run
    finish(cli(*args, "-o", tmp_path / "cut", "--steps", steps, "--resume"))
    equal_files(tmp_path / "full" / result, tmp_path / "cut" / result)


def test_motion_stage_killed_and_resumed_equals_uninterrupted(tiny_dir, tmp_path):
    args = [
        "motion-adapter",
        "train",
        "--model",
        tiny_dir,
        "--sample-prompt",
        "a red circle moving left",
        "--num-sampled-videos",
        "2",
        "--rank",
        "2",
        *TRAIN,
    ]
    killed_and_resumed_equals_uninterrupted(args, tmp_path, 12, "motion_adapter/pytorch_lora_weights.safetensors")


def test_spatial_stage_killed_and_resumed_equals_uninterrupted(tiny_dir, tmp_path, stage2_inputs):
    motion_adapter, customized = stage2_inputs["motion_adapter"], stage2_inputs["customized"]
    args = [
        "customize",
        "--model",
        tiny_dir,
        "--motion-adapter",
        motion_adapter,
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
        "--prior-loss-weight",
        "1",
        "--spatial-rank",
        "2",
        *TRAIN,
    ]
    killed_and_resumed_equals_uninterrupted(args, tmp_path, 12, "spatial_adapters.safetensors")


WRITER = """
import sys, time
from pathlib import Path
from stillmoving.files import atomic_write

def write(temporary):
    with open(temporary, "wb") as f:
        f.write(b"new" * 1000)
        f.flush()
        Path(sys.argv[2]).touch()  # tell the test we are mid-write
        time.sleep(60)
        f.write(b"end")

atomic_write(sys.argv[1], write)
"""


def test_kill_in_the_middle_of_a_write_keeps_the_previous_file(tmp_path):
    target, started = tmp_path / "adapter.safetensors", tmp_path / "started"
    target.write_bytes(b"previous good file")
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(target), str(started)], env=ENV)
    deadline = time.monotonic() + 60
    while not started.exists():
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert target.read_bytes() == b"previous good file"
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
        "adapter.safetensors",
        "started",
    ]


def test_kill_during_a_checkpoint_save_leaves_only_complete_checkpoints(tmp_path):
    (tmp_path / "checkpoints" / "checkpoint-1").mkdir(parents=True)
    (tmp_path / "checkpoints" / ".checkpoint-2.partial").mkdir()  # what a kill mid-save leaves
    assert [p.name for p in checkpoints(tmp_path)] == ["checkpoint-1"]


def nan_after(monkeypatch, module, calls: int):
    real, count = module.video_loss, {"n": 0}

    def loss(*args, **kwargs):
        count["n"] += 1
        value = real(*args, **kwargs)
        return value * float("nan") if count["n"] > calls else value

    monkeypatch.setattr(module, "video_loss", loss)


def test_nan_loss_stops_with_one_line_exit_2_and_keeps_the_last_checkpoint(tiny_dir, tmp_path, capsys, monkeypatch):
    from stillmoving.training import motion_stage

    nan_after(monkeypatch, motion_stage, 2)
    code, _, err = run(
        capsys,
        monkeypatch,
        "motion-adapter",
        "train",
        "--model",
        tiny_dir,
        "-o",
        tmp_path / "run",
        "--sample-prompt",
        "a red circle",
        "--num-sampled-videos",
        "2",
        "--rank",
        "2",
        "--steps",
        "4",
        *TRAIN,
    )
    (line,) = [line for line in err.splitlines() if "error:" in line]
    assert code == 2 and "the loss became nan at step 3" in line and "last checkpoint is kept" in line
    assert [p.name for p in checkpoints(tmp_path / "run")] == ["checkpoint-1", "checkpoint-2"]
    state = load_file(str(tmp_path / "run/checkpoints/checkpoint-2/model.safetensors"))
    assert state and all(torch.isfinite(v).all() for v in state.values())
    assert not (tmp_path / "run/motion_adapter").exists()


def test_nan_steps_can_be_skipped_when_allowed(tiny_dir, tmp_path, capsys, monkeypatch):
    from stillmoving.training import motion_stage

    nan_after(monkeypatch, motion_stage, 2)  # every step after the second is NaN: 2 skips allowed, then stop
    code, _, err = run(
        capsys,
        monkeypatch,
        "motion-adapter",
        "train",
        "--model",
        tiny_dir,
        "-o",
        tmp_path / "run",
        "--sample-prompt",
        "a red circle",
        "--num-sampled-videos",
        "2",
        "--rank",
        "2",
        "--steps",
        "4",
        "--skip-nonfinite-steps",
        "2",
        *TRAIN[:-2],
    )
    assert code == 2 and "after skipping 2" in err and err.count("skipping step 3") == 2


@pytest.mark.parametrize("flag,code", [(None, 2), ("--overwrite", 0), ("--resume", 0)])
def test_an_output_folder_holding_another_run_is_refused_unless_asked(
    tiny_dir, tmp_path, capsys, monkeypatch, flag, code
):
    args = [
        "motion-adapter",
        "train",
        "--model",
        tiny_dir,
        "-o",
        tmp_path / "run",
        "--sample-prompt",
        "a red circle",
        "--num-sampled-videos",
        "1",
        "--rank",
        "2",
        *TRAIN,
    ]
    assert run(capsys, monkeypatch, *args, "--steps", "1")[0] == 0
    before = (tmp_path / "run/motion_adapter/pytorch_lora_weights.safetensors").read_bytes()
    got, _, err = run(capsys, monkeypatch, *args, "--steps", "2", *([flag] if flag else []))
    assert got == code, err
    after = (tmp_path / "run/motion_adapter/pytorch_lora_weights.safetensors").read_bytes()
    if flag is None:
        assert "holds another run's results" in err and after == before
    else:
        assert after != before


def test_resume_passes_over_a_damaged_checkpoint_and_refuses_when_none_can_be_restored(
    tiny_dir, tmp_path, capsys, monkeypatch
):
    """A checkpoint damaged after it was written: the one before it is restored (the run then equals an uninterrupted
    one, tensor for tensor); with every one damaged, one error line and the finished adapter left as it was."""
    args = ["motion-adapter", "train", "--model", tiny_dir, "--sample-prompt", "a red circle"]
    args += ["--num-sampled-videos", "1", "--rank", "2", *TRAIN]
    result = "motion_adapter/pytorch_lora_weights.safetensors"
    assert run(capsys, monkeypatch, *args, "-o", tmp_path / "whole", "--steps", "3")[0] == 0
    assert run(capsys, monkeypatch, *args, "-o", tmp_path / "cut", "--steps", "2")[0] == 0
    saved = tmp_path / "cut" / "checkpoints"
    (saved / "checkpoint-2" / "model.safetensors").write_bytes(b"damaged")
    code, _, err = run(capsys, monkeypatch, *args, "-o", tmp_path / "cut", "--steps", "3", "--resume")
    assert code == 0, err
    whole, resumed = load_file(tmp_path / "whole" / result), load_file(tmp_path / "cut" / result)
    assert whole.keys() == resumed.keys() and all(torch.equal(whole[k], resumed[k]) for k in whole)
    for checkpoint in saved.iterdir():
        (checkpoint / "model.safetensors").write_bytes(b"damaged")
    before = (tmp_path / "cut" / result).read_bytes()
    code, _, err = run(capsys, monkeypatch, *args, "-o", tmp_path / "cut", "--steps", "4", "--resume")
    (line,) = [line for line in err.splitlines() if "error:" in line]
    assert code == 2 and "cannot be restored" in line and "start afresh with --overwrite" in line, err
    assert (tmp_path / "cut" / result).read_bytes() == before


def test_an_output_path_that_is_a_file_is_refused(tiny_dir, tmp_path, capsys, monkeypatch):
    (tmp_path / "taken").write_text("x")
    code, _, err = run(
        capsys,
        monkeypatch,
        "motion-adapter",
        "train",
        "--model",
        tiny_dir,
        "-o",
        tmp_path / "taken",
        "--sample-prompt",
        "a",
        *TRAIN,
    )
    assert code == 2 and "is a file" in err


def test_adapters_warn_when_loaded_onto_other_weights(tiny_dir, tmp_path, capsys, monkeypatch, stage2_inputs):
    """The file records the UNet it trained against: another checkpoint of the same architecture is a warning.
    (Another architecture is an error naming the layer: tests/test_spatial_adapters.py.)"""
    import warnings

    from stillmoving.adapters.spatial import SpatialAdapters
    from stillmoving.loading import assemble_pipeline

    motion_adapter, customized = stage2_inputs["motion_adapter"], stage2_inputs["customized"]
    code, _, err = run(
        capsys,
        monkeypatch,
        "customize",
        "--model",
        tiny_dir,
        "-o",
        tmp_path / "custom",
        "--motion-adapter",
        motion_adapter,
        "--customized",
        customized,
        "--prompt",
        "a sks dog",
        "--identifier",
        "sks",
        "--num-images",
        "1",
        "--num-prior-videos",
        "1",
        "--prior-loss-weight",
        "1",
        "--spatial-rank",
        "2",
        "--steps",
        "1",
        *TRAIN[:-2],
    )
    assert code == 0, err
    file = tmp_path / "custom/spatial_adapters.safetensors"
    assert len(SpatialAdapters.load(file).metadata["unet_fingerprint"]) == 16
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the model it trained with: no warning, motion adapter loaded or not
        assemble_pipeline(str(tiny_dir), customized=str(customized), spatial_adapters=str(file))
        assemble_pipeline(
            str(tiny_dir), customized=str(customized), spatial_adapters=str(file), motion_adapter=str(motion_adapter)
        )
    with pytest.warns(UserWarning, match="trained against other weights"):
        assemble_pipeline(str(tiny_dir), spatial_adapters=str(file))  # V without the customization


def _corrupt_image_folder(tmp):
    folder = tmp / "imgs"
    folder.mkdir()
    from PIL import Image

    Image.new("RGB", (32, 32), (200, 40, 40)).save(folder / "a.png")
    (folder / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"broken" * 10)
    return folder


def _short_videos(tmp):
    from stillmoving.world.folders import write_video_folder

    return write_video_folder(tmp / "vids", 2, 0, num_frames=2, resolution=32)


def _image_folder(tmp):
    from PIL import Image

    (tmp / "imgs").mkdir()
    Image.new("RGB", (32, 32), (200, 40, 40)).save(tmp / "imgs" / "a.png")
    return tmp / "imgs"


def _corrupt_video_folder(tmp):
    from stillmoving.world.folders import write_video_folder

    folder = write_video_folder(tmp / "vids", 2, 0, num_frames=4, resolution=32)  # two good videos, a GIF that is none
    (folder / "broken.gif").write_bytes(b"GIF89a broken")
    return folder


def _uncaptioned_videos(tmp):
    from stillmoving.world.folders import write_video_folder

    folder = write_video_folder(tmp / "vids", 2, 0, num_frames=4, resolution=32)
    (folder / "metadata.jsonl").unlink()
    return folder


def _garbage_motion_adapter(tmp):
    (tmp / "ma").mkdir()
    (tmp / "ma" / "pytorch_lora_weights.safetensors").write_bytes(b"not a safetensors file")
    return tmp / "ma"


def _busy_output(tmp):
    (tmp / "out").mkdir()
    (tmp / "out" / "customize_run.json").write_text("{}")
    return tmp / "out"


MOTION = ["motion-adapter", "train", "--model", "{tiny}", "--sample-prompt", "a red circle"]
TRAIN_BAD_INPUTS = [  # (id, verb and arguments, making the input, expected message); every row: exit 2, one line
    (
        "dreambooth-corrupt-image",
        ["t2i", "dreambooth", "--model", "{tiny}", "--images", "{f}", "--prompt", "a sks dog"],
        _corrupt_image_folder,
        "cannot read image",
    ),
    (
        "style-corrupt-image",
        ["t2i", "lora", "--model", "{tiny}", "--images", "{f}", "--prompt", "x in y style"],
        _corrupt_image_folder,
        "cannot read image",
    ),
    (
        "customize-corrupt-image",
        ["customize", "--model", "{tiny}", "--motion-adapter", "x", "--images", "{f}", "--prompt", "a sks dog"],
        _corrupt_image_folder,
        "cannot read image",
    ),
    (
        "customize-corrupt-motion-adapter",
        ["customize", "--model", "{tiny}", "--motion-adapter", "{f}", "--prompt", "a sks dog"],
        _garbage_motion_adapter,
        "pytorch_lora_weights.safetensors is not a readable safetensors file",
    ),
    (
        "customize-missing-lora",
        ["customize", "--model", "{tiny}", "--lora", "{f}", "--prompt", "a sks dog"],
        lambda t: t / "none.safetensors",
        "no such LoRA file",
    ),
    (
        "videos-too-short",
        ["motion-adapter", "train", "--model", "{tiny}", "--videos", "{f}"],
        _short_videos,
        "training needs at least 4",
    ),
    (
        "videos-corrupt",
        ["motion-adapter", "train", "--model", "{tiny}", "--videos", "{f}"],
        _corrupt_video_folder,
        "is corrupt or not a .gif video",
    ),
    (
        "videos-uncaptioned",
        ["motion-adapter", "train", "--model", "{tiny}", "--videos", "{f}"],
        _uncaptioned_videos,
        "no caption for",
    ),
    (
        "prior-videos-too-short",
        ["customize", "--model", "{tiny}", "--prompt", "a sks dog", "--prior-loss-weight", "1", "--prior-videos"]
        + ["{f}"],
        _short_videos,
        "training needs at least 4",
    ),
    ("one-frame", MOTION + ["--num-frames", "1"], lambda t: None, "--num-frames must be at least 2, not 1"),
    (
        "videos-folder-missing",
        ["motion-adapter", "train", "--model", "{tiny}", "--videos", "{f}"],
        lambda t: t / "nowhere",
        "nowhere",
    ),
    ("output-holds-another-run", MOTION + ["-o", "{f}"], _busy_output, "holds another run's results"),
    ("resume-without-checkpoint", MOTION + ["-o", "{f}", "--resume"], lambda t: t / "fresh", "no checkpoint"),
    ("too-many-frames", MOTION + ["--num-frames", "17"], lambda t: None, "positional table holds (16 frames)"),
    ("zero-sample-steps", MOTION + ["--sample-steps", "0"], lambda t: None, "--sample-steps must be at least 1, not 0"),
    (
        "unknown-precision",
        MOTION + ["--mixed-precision", "fp8"],
        lambda t: None,
        "--mixed-precision must be one of no, fp16, bf16, not 'fp8'",
    ),
    ("negative-lr", MOTION + ["--lr", "-1e-4"], lambda t: None, "--lr must be a positive number, not -0.0001"),
    ("zero-lr", MOTION + ["--lr", "0"], lambda t: None, "--lr must be a positive number, not 0.0"),
    ("negative-snr-gamma", MOTION + ["--snr-gamma", "-1"], lambda t: None, "--snr-gamma must be at least 0, not -1.0"),
    ("nan-weight-decay", MOTION + ["--adam-weight-decay", "nan"], lambda t: None, "--adam-weight-decay must be at"),
    (
        "moving-stills-with-frame-agreement",
        ["customize", "--model", "{tiny}", "--prompt", "a sks dog", "--moving-stills", "1", "--frame-agreement", "1"],
        lambda t: None,
        "--frame-agreement asks a frozen video's frames to agree",
    ),
    (
        "unknown-spatial-blocks",
        ["customize", "--model", "{tiny}", "--prompt", "a sks dog", "--spatial-blocks", "down,left"],
        lambda t: None,
        "--spatial-blocks 'down,left': give one or more of down, mid, up",
    ),
    (
        "customize-zero-images",
        ["customize", "--model", "{tiny}", "--prompt", "a sks dog", "--num-images", "0"],
        lambda t: None,
        "--num-images must be at least 1, not 0",
    ),
    (
        "customize-uncaptioned-images",
        ["customize", "--model", "{tiny}", "--images", "{f}"],
        _image_folder,
        "no caption for",
    ),
    (
        "dreambooth-negative-prior-weight",
        ["t2i", "dreambooth", "--model", "{tiny}", "--images", "{f}", "--prompt", "a sks dog"]
        + ["--class-prompt", "a dog", "--prior-loss-weight", "-1"],
        _image_folder,
        "--prior-loss-weight must be at least 0, not -1.0",
    ),
    (
        "dreambooth-zero-batch",
        ["t2i", "dreambooth", "--model", "{tiny}", "--images", "{f}", "--prompt", "a sks dog", "--batch-size", "0"],
        lambda t: t / "nowhere",
        "--batch-size must be at least 1, not 0",
    ),
]


@pytest.mark.parametrize("args,make,message", [r[1:] for r in TRAIN_BAD_INPUTS], ids=[r[0] for r in TRAIN_BAD_INPUTS])
def test_training_bad_inputs_are_one_line_exit_2_and_write_nothing(
    tiny_dir, tmp_path, capsys, monkeypatch, args, make, message
):
    from stillmoving.training import setup

    monkeypatch.setattr(setup, "load_t2v", lambda *_, **__: pytest.fail("the video model was loaded"))
    made = make(tmp_path)
    values = {"tiny": tiny_dir, "f": made}
    args = [a.format(**values) for a in args]
    output = [] if "-o" in args else ["-o", tmp_path / "new"]
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    settings = ["--height", "32", "--width", "32", "--steps", "1"] + (
        ["--num-frames", "4"] if "--num-frames" not in args and args[0] != "t2i" else []
    )
    code, _, err = run(capsys, monkeypatch, *args, *output, *settings)
    (line,) = [line for line in err.splitlines() if "error:" in line]
    assert code == 2 and message in line, err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written
