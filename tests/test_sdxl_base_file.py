"""An SDXL base as one file (sd_xl_base_1.0.safetensors, a civitai SDXL checkpoint: the original SGM layout) as
`--model`, with SDXL motion modules, shaped by `--config-dir`'s configs and tokenizers (else SDXL base 1.0's configs
shipped in formats/configs/sdxl): the tiny SDXL model written in that layout loads to the same weights and frames as
its diffusers folder, through the API and the CLI, and trains a motion adapter (stage 1), customizes (stage 2) and
generates as that folder does; what it lacks is refused in one line."""

import shutil

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL, MotionAdapter, UNet2DConditionModel
from family_cli import SMALL, STAGE2
from family_models import frames, save_motion_adapter
from safetensors.torch import load_file, save_file
from sdxl_models import ldm_clip_state, ldm_unet_state, open_clip_state, save_sdxl_models, sdxl_motion_adapter
from test_cli import run
from test_formats import _ldm_vae
from test_sdxl import SPATIAL_LAYERS, original_layout
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from stillmoving.adapters.motion import WEIGHT_NAME
from stillmoving.adapters.spatial import SpatialAdapters
from stillmoving.data.video_io import read_video
from stillmoving.formats import SHIPPED_SDXL_CONFIGS
from stillmoving.loading import load_t2v
from stillmoving.pipeline import StillMovingSDXLPipeline
from stillmoving.run_folder import MOTION_ADAPTER, SPATIAL_ADAPTERS, read_customization

COMPONENTS = ("unet", "vae", "text_encoder", "text_encoder_2")
VIDEO = ["--prompt", "a red circle", "--num-frames", "4", "--height", "32", "--width", "32", "--steps", "2"]


@pytest.fixture(scope="module")
def sdxl(tmp_path_factory):
    """The tiny SDXL folders, its T2I as one SGM-layout file, and a folder of its configs and tokenizers alone."""
    root = save_sdxl_models(tmp_path_factory.mktemp("sdxl_file"))
    t2i = load_t2v(root / "t2i", root / "motion_modules")
    state = {
        **ldm_unet_state(UNet2DConditionModel.from_pretrained(root / "t2i", subfolder="unet")),
        **_ldm_vae(t2i.vae),
        **ldm_clip_state(t2i.text_encoder),
        **open_clip_state(t2i.text_encoder_2),
    }
    save_file(state, str(root / "sdxl_base.safetensors"))
    configs = root / "configs"  # what --config-dir needs of an SDXL folder: no weights
    shutil.copytree(root / "t2i", configs, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    shutil.copytree(root / "motion_modules", configs / "motion_adapter", ignore=shutil.ignore_patterns("*.safetensors"))
    return root


def test_the_file_loads_as_the_diffusers_folder_does(sdxl):
    from_file = load_t2v(sdxl / "sdxl_base.safetensors", sdxl / "motion_modules", config_dir=sdxl / "configs")
    from_folder = load_t2v(sdxl / "t2i", sdxl / "motion_modules")
    assert isinstance(from_file, StillMovingSDXLPipeline)
    for name in COMPONENTS:
        expected = getattr(from_folder, name).state_dict()
        got = getattr(from_file, name).state_dict()
        assert got.keys() == expected.keys(), name
        assert all(torch.equal(v, expected[k]) for k, v in got.items()), name
    assert type(from_file.scheduler) is type(from_folder.scheduler)
    assert dict(from_file.scheduler.config) == dict(from_folder.scheduler.config)
    assert from_file.config.force_zeros_for_empty_prompt == from_folder.config.force_zeros_for_empty_prompt
    assert torch.equal(frames(from_file), frames(from_folder))


def test_motion_modules_in_their_original_file_with_a_config_folder_of_no_weights(sdxl, tmp_path):
    save_file(original_layout(sdxl_motion_adapter()), str(tmp_path / "mm_sdxl.safetensors"))
    pipe = load_t2v(sdxl / "sdxl_base.safetensors", tmp_path / "mm_sdxl.safetensors", config_dir=sdxl / "configs")
    expected = load_t2v(sdxl / "t2i", sdxl / "motion_modules").unet.state_dict()
    assert pipe.unet.state_dict().keys() == expected.keys()
    assert all(torch.equal(v, expected[k]) for k, v in pipe.unet.state_dict().items())


def test_generate_through_the_cli_equals_the_folder(sdxl, tmp_path, capsys, monkeypatch):
    common = ["generate", "--motion-modules", sdxl / "motion_modules", *VIDEO]
    file = ["--model", sdxl / "sdxl_base.safetensors", "--config-dir", sdxl / "configs"]
    for name, model in {"file": file, "folder": ["--model", sdxl / "t2i"]}.items():
        code, _, err = run(capsys, monkeypatch, *common, *model, "-o", tmp_path / name)
        assert code == 0, err
    assert np.array_equal(read_video(tmp_path / "file"), read_video(tmp_path / "folder"))
    assert len(list((tmp_path / "file").iterdir())) == 4
    code, out, _ = run(capsys, monkeypatch, "info", sdxl / "sdxl_base.safetensors")
    assert code == 0 and "Stable Diffusion XL checkpoint" in out and "LDM layout" in out


def test_without_its_tokenizers_or_in_other_configs_it_is_refused_in_one_line(sdxl, tmp_path, capsys, monkeypatch):
    tokenizers_only = tmp_path / "tokenizers"  # every other config falls back to SDXL base 1.0's: too big a UNet
    for name in ("tokenizer", "tokenizer_2"):
        shutil.copytree(sdxl / "t2i" / name, tokenizers_only / name)
    no_second = tmp_path / "no_tokenizer_2"
    shutil.copytree(sdxl / "configs", no_second, ignore=shutil.ignore_patterns("tokenizer_2"))
    cases = {
        (): "is an SDXL checkpoint and no --config-dir: pass --config-dir with an SDXL diffusers folder",
        ("--config-dir", no_second): f"{no_second} has no tokenizer_2/ folder",
        ("--config-dir", tokenizers_only): f"does not fit the UNet2DConditionModel config in {SHIPPED_SDXL_CONFIGS}",
    }
    for extra, expected in cases.items():
        args = ["generate", "--model", sdxl / "sdxl_base.safetensors", "--motion-modules", sdxl / "motion_modules"]
        code, out, err = run(capsys, monkeypatch, *args, *extra, *VIDEO, "-o", tmp_path / "never")
        assert code == 2 and expected in err, (extra, err)
        assert [line for line in err.splitlines() if line.startswith("error:")] == [err.strip().splitlines()[-1]], err
        assert not (tmp_path / "never").exists()


def test_the_shipped_sdxl_configs_are_sdxl_base_1_0s_sizes():
    """Parameter counts of stabilityai/stable-diffusion-xl-base-1.0's components and mm_sdxl_v10_beta, built from the
    shipped configs on the meta device."""
    with torch.device("meta"):
        built = {
            "unet": UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(SHIPPED_SDXL_CONFIGS / "unet")),
            "vae": AutoencoderKL.from_config(AutoencoderKL.load_config(SHIPPED_SDXL_CONFIGS / "vae")),
            "text_encoder": CLIPTextModel(CLIPTextConfig.from_pretrained(SHIPPED_SDXL_CONFIGS / "text_encoder")),
            "text_encoder_2": CLIPTextModelWithProjection(
                CLIPTextConfig.from_pretrained(SHIPPED_SDXL_CONFIGS / "text_encoder_2")
            ),
            "motion_adapter": MotionAdapter.from_config(
                MotionAdapter.load_config(SHIPPED_SDXL_CONFIGS / "motion_adapter")
            ),
        }
    counts = {name: sum(p.numel() for p in model.parameters()) for name, model in built.items()}
    assert counts == {
        "unet": 2_567_463_684,
        "vae": 83_653_863,
        "text_encoder": 123_060_480,
        "text_encoder_2": 694_659_840,
        "motion_adapter": 236_779_200,
    }
    assert built["vae"].config.scaling_factor == 0.13025  # SDXL's, not SD1.5's 0.18215


def test_customize_and_generate_from_the_file_equal_the_folders(sdxl, tmp_path, capsys, monkeypatch):
    """Stage 2 (`customize`, 2 steps) with the single file + SDXL motion modules as `--model`, then `generate` from
    that run: the spatial adapters equal, tensor for tensor, those of the same run on the diffusers folder (their
    random init comes from --seed, not from what loading drew), and so do the frames."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    adapter = save_motion_adapter(sdxl / "t2v", tmp_path / "motion")
    common = ["--motion-modules", sdxl / "motion_modules", "--motion-adapter", adapter, "--customized", sdxl / "m1"]
    common += [*STAGE2, "--spatial-rank", "2", "--num-validation-videos", "0", *SMALL]
    file = ["--model", sdxl / "sdxl_base.safetensors", "--config-dir", sdxl / "configs"]
    video = ["--prompt", "a sks dog", "--num-frames", "4", "--steps", "2", "--motion-scale", "0.5"]
    for name, model in {"file": file, "folder": ["--model", sdxl / "t2i"]}.items():
        code, _, err = run(capsys, monkeypatch, "customize", *model, *common, "-o", tmp_path / name)
        assert code == 0, err
        code, _, err = run(
            capsys, monkeypatch, "generate", "--customization", tmp_path / name, *video, "-o", tmp_path / f"{name}.gif"
        )
        assert code == 0, err
    record = read_customization(tmp_path / "file")
    assert (record["model"], record["config_dir"]) == (str(sdxl / "sdxl_base.safetensors"), str(sdxl / "configs"))
    adapters = SpatialAdapters.load(tmp_path / "file" / SPATIAL_ADAPTERS)
    assert adapters.placements == SPATIAL_LAYERS
    assert any(layer.up.abs().sum() > 0 for layer in adapters.layers)  # trained: A_up is zero at init
    from_file, from_folder = (load_file(tmp_path / name / SPATIAL_ADAPTERS) for name in ("file", "folder"))
    assert from_file.keys() == from_folder.keys()
    assert all(torch.equal(v, from_folder[k]) for k, v in from_file.items())
    frames_of = {name: read_video(tmp_path / f"{name}.gif") for name in ("file", "folder")}
    assert frames_of["file"].shape == (4, 32, 32, 3)
    assert np.array_equal(frames_of["file"], frames_of["folder"])


def test_motion_adapter_train_on_the_file_equals_the_folders(sdxl, tmp_path, capsys, monkeypatch):
    """Stage 1 (`motion-adapter train`, 2 steps) with the single file + SDXL motion modules as `--model`: the motion
    adapter equals, tensor for tensor, that of the same run on the diffusers folder (its random A_down comes from
    --seed, not from what loading drew from the global RNG)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    common = ["motion-adapter", "train", "--motion-modules", sdxl / "motion_modules", "--rank", "2"]
    common += ["--sample-prompt", "a red circle moving left", "--num-sampled-videos", "1", *SMALL]
    file = ["--model", sdxl / "sdxl_base.safetensors", "--config-dir", sdxl / "configs"]
    for name, model in {"file": file, "folder": ["--model", sdxl / "t2i"]}.items():
        code, _, err = run(capsys, monkeypatch, *common, *model, "-o", tmp_path / name)
        assert code == 0, err
    from_file, from_folder = (load_file(tmp_path / name / MOTION_ADAPTER / WEIGHT_NAME) for name in ("file", "folder"))
    assert from_file.keys() == from_folder.keys()
    assert any(torch.count_nonzero(v) for k, v in from_file.items() if "lora_B" in k)  # trained: A_up is zero at init
    assert all(torch.equal(v, from_folder[k]) for k, v in from_file.items())
