"""`compare` refuses more frames than the motion modules' positional table holds, as `generate` does, for every
family and every way V is given, before any model loads: the limit is read from the files (a motion-modules folder's
config, a motion-module file's table, an AnimateDiff folder's UNet config) and equals the loaded model's. ModelScope/
ZeroScope has no positional table: no limit."""

import json

import pytest
import torch
from safetensors.torch import save_file
from sdxl_models import save_sdxl_models
from test_cli import run
from test_formats import to_animatediff
from zeroscope_models import save_zeroscope_models

from stillmoving.adapters.spatial import FORMAT, FORMAT_VERSION
from stillmoving.evaluation.compare import CompareConfig, check_compare
from stillmoving.loading import load_t2v, motion_frames_limit
from stillmoving.run_folder import CUSTOMIZATION, SPATIAL_ADAPTERS


@pytest.fixture(scope="module")
def families(tmp_path_factory, tiny_dir):
    root = tmp_path_factory.mktemp("compare_frames")
    sdxl = save_sdxl_models(root / "sdxl")
    zeroscope = save_zeroscope_models(root / "zeroscope")
    motion = {k: v for k, v in load_t2v(tiny_dir).unet.state_dict().items() if "motion_modules" in k}
    torch.save({"state_dict": to_animatediff(motion)}, root / "mm.ckpt")  # the original layout, as a pickle
    save_file(to_animatediff(motion), root / "mm.safetensors")
    return {
        "sd15-folder": (dict(model=tiny_dir), load_t2v(tiny_dir)),
        "sd15-mm-ckpt": (dict(model=tiny_dir, motion_modules=root / "mm.ckpt"), load_t2v(tiny_dir)),
        "sd15-mm-safetensors": (dict(model=tiny_dir, motion_modules=root / "mm.safetensors"), load_t2v(tiny_dir)),
        "sdxl-folder": (dict(model=sdxl / "t2v"), load_t2v(sdxl / "t2v")),
        "sdxl-t2i-mm-folder": (
            dict(model=sdxl / "t2i", motion_modules=sdxl / "motion_modules"),
            load_t2v(sdxl / "t2i", sdxl / "motion_modules"),
        ),
        "zeroscope": (dict(model=zeroscope / "t2v"), load_t2v(zeroscope / "t2v")),
    }


def customization(folder, files: dict):
    """A customization record naming `files` (what `compare` reads before loading anything)."""
    folder.mkdir()
    # Its header is all that is read before loading (the format check); tensors are read only with a model
    save_file({}, folder / SPATIAL_ADAPTERS, metadata={"format": FORMAT, "format_version": FORMAT_VERSION})
    record = {"customized": str(files["model"]), "loras": [], "spatial_adapters": SPATIAL_ADAPTERS}
    record.update({k: str(v) for k, v in files.items()})
    (folder / CUSTOMIZATION).write_text(json.dumps(record))
    return folder


CASES = ["sd15-folder", "sd15-mm-ckpt", "sd15-mm-safetensors", "sdxl-folder", "sdxl-t2i-mm-folder", "zeroscope"]


@pytest.mark.parametrize("case", CASES)
def test_the_limit_read_from_the_files_is_the_loaded_models(families, case):
    files, pipe = families[case]
    assert motion_frames_limit(files["model"], files.get("motion_modules")) == pipe.unet.config.get(
        "motion_max_seq_length"
    )


@pytest.mark.parametrize("case", CASES[:-1])
def test_compare_refuses_one_frame_more_than_the_table_in_one_line(families, case, tmp_path, capsys, monkeypatch):
    files, pipe = families[case]
    limit = pipe.unet.config.motion_max_seq_length
    custom = customization(tmp_path / "custom", files)

    def no_loading(*args, **kwargs):
        raise AssertionError("a model loaded")

    monkeypatch.setattr("stillmoving.loading.load_t2v", no_loading)
    args = ["compare", "--customization", custom, "--prompt", "a sks dog", "--seeds", "1", "-o", tmp_path / "out"]
    code, out, err = run(capsys, monkeypatch, *args, "--num-frames", limit + 1)
    assert code == 2 and err.strip() == (
        f"error: --num-frames {limit + 1} is more than the motion modules' positional table holds ({limit} frames); "
        f"ask for at most {limit}"
    ), err
    assert not (tmp_path / "out").exists()
    checked, _ = check_compare(CompareConfig(str(custom), str(tmp_path / "out"), ["a sks dog"], num_frames=limit))
    assert checked.num_frames == limit  # the table's length itself is fine


def test_zeroscope_has_no_table_and_no_limit(families, tmp_path):
    files, _ = families["zeroscope"]
    custom = customization(tmp_path / "custom", files)
    checked, _ = check_compare(CompareConfig(str(custom), str(tmp_path / "out"), ["a sks dog"], num_frames=64))
    assert checked.num_frames == 64
