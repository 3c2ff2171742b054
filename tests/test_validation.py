"""The checks every verb makes before loading a model: devices and dtypes chosen for the machine, the VAE's
factor read from a folder's config, sizes, counts. (Through the CLI: the bad-input tables in test_cli.py and
test_faults.py.)"""

import json

import pytest
import torch

from stillmoving.errors import StillMovingError
from stillmoving.validation import (
    check_device,
    check_dtype,
    check_size,
    native_frames,
    native_sampling,
    native_size,
    vae_factor,
)


def machine(monkeypatch, cuda: int = 0, bf16: bool = False, mps: bool = False) -> None:
    """Pretend this machine has `cuda` CUDA devices (bf16 or not) and MPS or not."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *_, **__: bf16)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)


def test_native_size_is_diffusers_default(tiny_dir, tiny_pipe, tmp_path):
    native = tiny_pipe.unet.config.sample_size * tiny_pipe.vae_scale_factor  # what the pipeline uses for height=None
    assert native_size(tiny_dir) == native and native != 512
    assert native_size(tmp_path / "model.safetensors", tiny_dir) == native  # its --config-dir
    assert native_size(tmp_path / "model.safetensors", None) == 512 and native_size(None) == 512  # SD1.5's


def test_training_verbs_default_to_the_model_s_own_size(tiny_dir, tiny_pipe):
    """Every training verb trains at the size `generate` samples at unless told: the model's own."""
    from stillmoving.training.config import CustomizeConfig, DreamBoothConfig, MotionAdapterConfig, make_config

    native = tiny_pipe.unet.config.sample_size * tiny_pipe.vae_scale_factor
    given = dict(model=str(tiny_dir), output="o")
    configs = [
        make_config(CustomizeConfig, {**given, "motion_adapter": "m", "customized": "c", "prompt": "a sks dog"}),
        make_config(MotionAdapterConfig, given),
        make_config(DreamBoothConfig, {**given, "images": "i", "prompt": "a sks dog"}),
    ]
    assert [(c.height, c.width) for c in configs] == [(native, native)] * 3
    one_side = make_config(MotionAdapterConfig, {**given, "height": 64})
    assert (one_side.height, one_side.width) == (64, native)
    assert make_config(MotionAdapterConfig, {**given, "model": "absent"}).height == 512  # no configs: SD1.5's
    assert [c.num_frames for c in configs[:2]] == [16, 16]  # no generation_defaults.json: AnimateDiff's


def test_the_model_s_own_clip_length(tiny_dir, tmp_path):
    """A video model folder's generation_defaults.json sets the verbs' default frame count; the embedded world's say
    8, what their motion modules trained at; anything but a positive count there is one error naming the file."""
    from stillmoving.training.config import CustomizeConfig, make_config
    from stillmoving.world.weights import shipped_model

    assert native_frames(tiny_dir) == 16 and native_frames(None) == 16 and native_frames(tmp_path / "absent") == 16
    assert native_frames(shipped_model()) == native_frames(shipped_model("joint")) == 8
    (tmp_path / "generation_defaults.json").write_text(json.dumps({"num_frames": 12}))
    assert native_frames(tmp_path) == 12
    given = dict(model=str(tmp_path), output="o", motion_adapter="m", customized="c", prompt="a sks dog")
    assert make_config(CustomizeConfig, given).num_frames == 12
    assert make_config(CustomizeConfig, {**given, "num_frames": 4}).num_frames == 4
    for bad in ("{", json.dumps({"num_frames": 0}), json.dumps({"num_frames": "8"}), json.dumps({"num_frames": True})):
        (tmp_path / "generation_defaults.json").write_text(bad)
        with pytest.raises(StillMovingError, match="generation_defaults.json"):
            native_frames(tmp_path)


def test_the_model_s_own_sampling(tiny_dir, tmp_path):
    """generation_defaults.json's num_inference_steps and guidance_scale are the verbs' default steps and guidance
    (the embedded world's: 15 and 4, the setting its model card and demo measure at), else 25 and 7.5; the training
    verbs sample their data at them unless told; a bad value is one error naming the file."""
    from stillmoving.describe import describe_file
    from stillmoving.training.config import CustomizeConfig, DreamBoothConfig, MotionAdapterConfig, make_config
    from stillmoving.world.weights import shipped_model

    assert native_sampling(tiny_dir) == native_sampling(None) == native_sampling(tmp_path / "absent") == (25, 7.5)
    assert native_sampling(shipped_model()) == native_sampling(shipped_model("joint")) == (15, 4.0)
    info = "32 px, 8 frames, 15 steps, guidance 4 (generation_defaults.json)"  # what `stillmoving info` says
    assert describe_file(shipped_model())["generation defaults"] == info
    world = "the embedded world's (cross-attention 64: SD1.x-shaped, its own small CLIP text encoder)"
    assert describe_file(shipped_model())["spatial layers"] == describe_file(shipped_model("joint"))["spatial layers"]
    assert describe_file(shipped_model())["spatial layers"] == world  # not "unknown (cross-attention 64)"
    info = "32 px, 16 frames, 25 steps, guidance 7.5 (no generation_defaults.json)"
    assert describe_file(tiny_dir)["generation defaults"] == info
    (tmp_path / "generation_defaults.json").write_text(json.dumps({"num_inference_steps": 10}))
    assert native_sampling(tmp_path) == (10, 7.5) and native_frames(tmp_path) == 16  # each key on its own
    (tmp_path / "generation_defaults.json").write_text(json.dumps({"num_inference_steps": 10, "guidance_scale": 2}))
    assert native_sampling(tmp_path) == (10, 2.0)
    given = dict(model=str(tmp_path), output="o")
    configs = [
        make_config(CustomizeConfig, {**given, "motion_adapter": "m", "customized": "c", "prompt": "a sks dog"}),
        make_config(MotionAdapterConfig, given),
        make_config(DreamBoothConfig, {**given, "images": "i", "prompt": "a sks dog"}),
    ]
    assert [(c.sample_steps, c.guidance_scale) for c in configs] == [(10, 2.0)] * 3
    told = make_config(MotionAdapterConfig, {**given, "guidance_scale": 6})
    assert (told.sample_steps, told.guidance_scale) == (10, 6)
    assert make_config(MotionAdapterConfig, {**given, "model": str(tiny_dir)}).sample_steps == 25
    for bad, key in (
        ({"num_inference_steps": 0}, "num_inference_steps"),
        ({"num_inference_steps": 2.5}, "num_inference_steps"),
        ({"guidance_scale": -1}, "guidance_scale"),
        ({"guidance_scale": "4"}, "guidance_scale"),
        ({"guidance_scale": float("inf")}, "guidance_scale"),
        ([8], "must be a JSON object"),
    ):
        (tmp_path / "generation_defaults.json").write_text(json.dumps(bad))
        with pytest.raises(StillMovingError, match=f"generation_defaults.json: {key}"):
            native_sampling(tmp_path)


@pytest.mark.parametrize(
    "cuda,bf16,mps,device,dtype",
    [
        (2, True, False, "cuda", torch.bfloat16),
        (1, False, False, "cuda", torch.float16),
        (0, False, True, "mps", torch.float16),
        (0, False, False, "cpu", torch.float32),
    ],
)
def test_auto_picks_the_best_device_and_its_precision(monkeypatch, cuda, bf16, mps, device, dtype):
    machine(monkeypatch, cuda, bf16, mps)
    assert check_device("auto") == device
    assert check_dtype("auto", device) == dtype


def test_named_devices_and_dtypes_are_kept_when_present(monkeypatch):
    machine(monkeypatch, cuda=2)
    assert [check_device(d) for d in ("cpu", "cuda", "cuda:1")] == ["cpu", "cuda", "cuda:1"]
    assert check_dtype("float32", "cuda:1") == torch.float32 and check_dtype("bfloat16", "cpu") == torch.bfloat16


@pytest.mark.parametrize(
    "cuda,mps,name,message",
    [
        (2, False, "cuda:2", "--device cuda:2: no such CUDA device (available: cuda:0, cuda:1, cpu)"),
        (0, True, "cuda", "--device cuda: CUDA is not available on this machine (available: mps, cpu)"),
        (1, False, "mps", "--device mps: MPS is not available on this machine (available: cuda:0, cpu)"),
        (0, False, "gpu", "--device gpu: not a device name (available: cpu)"),
    ],
)
def test_absent_devices_are_refused_naming_the_present_ones(monkeypatch, cuda, mps, name, message):
    machine(monkeypatch, cuda, mps=mps)
    with pytest.raises(StillMovingError) as error:
        check_device(name)
    assert str(error.value) == message


def test_vae_factor_is_read_from_the_folder_config(tiny_dir, tiny_pipe, tmp_path):
    assert vae_factor(tiny_dir) == tiny_pipe.vae_scale_factor  # what diffusers computes from the loaded VAE
    assert vae_factor(tiny_dir) != 8  # the tiny VAE has fewer blocks than SD's: the config was read
    assert vae_factor(tmp_path / "model.safetensors", tiny_dir) == tiny_pipe.vae_scale_factor  # its --config-dir
    assert vae_factor(tmp_path / "model.safetensors", None) == 8 and vae_factor(None) == 8  # SD's, for the rest


@pytest.mark.parametrize(
    "height,width,message",
    [
        (33, 64, "--height 33 is not a multiple of the VAE's factor 8; use e.g. 32 or 40"),
        (64, 4, "--width 4 is not a multiple of the VAE's factor 8; use e.g. 8 or 16"),
        (0, 64, "--height 0 is not a multiple of the VAE's factor 8; use e.g. 8 or 16"),
    ],
)
def test_sizes_must_be_positive_multiples_of_the_factor(height, width, message):
    check_size(64, 512, 8)
    with pytest.raises(StillMovingError) as error:
        check_size(height, width, 8)
    assert str(error.value) == message
