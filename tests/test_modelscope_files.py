"""ModelScope/ZeroScope's own files (ModelScope's release, A1111 text2video's) and a UNet3DConditionModel weights
file alone, as `--model`: diffusers has no converter for them, so each is refused in one `error:` line naming the
layout needed and where to get it, before any model loads; `info` still names them and says the same."""

import pytest
import torch
from diffusers import UNet3DConditionModel
from diffusers.loaders.single_file_model import SINGLE_FILE_LOADABLE_CLASSES
from safetensors.torch import save_file
from test_cli import run

from stillmoving.errors import StillMovingError
from stillmoving.loading import load_t2v

ORIGINAL = {  # ModelScope's own key layout (text2video_pytorch_model.pth): "temopral_conv" (sic)
    "input_blocks.1.0.temopral_conv.conv1.0.weight": torch.zeros(8, 8, 3, 1, 1),
    "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": torch.zeros(320, 1024),
}
DIFFUSERS = {  # unet/diffusion_pytorch_model.safetensors of a diffusers ModelScope/ZeroScope folder
    "down_blocks.0.temp_convs.0.conv1.0.weight": torch.zeros(8, 8, 3, 1, 1),
    "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight": torch.zeros(320, 1024),
}
GENERATE = ["--prompt", "a dog", "--num-frames", "4", "--height", "32", "--width", "32", "--steps", "1"]


def test_diffusers_has_no_converter_for_the_original_unet3d():
    """The premise of the refusals: when diffusers gains one, load through it instead."""
    assert "UNet3DConditionModel" not in SINGLE_FILE_LOADABLE_CLASSES
    assert not hasattr(UNet3DConditionModel, "from_single_file")


def _inputs(tmp_path):
    save_file(ORIGINAL, tmp_path / "zeroscope_v2_576w.safetensors")
    torch.save(ORIGINAL, tmp_path / "text2video_pytorch_model.pth")  # as ModelScope ships it: a (zip) pickle
    save_file(DIFFUSERS, tmp_path / "diffusion_pytorch_model.safetensors")
    release = tmp_path / "modelscope-damo-text-to-video-synthesis"
    release.mkdir()
    torch.save(ORIGINAL, release / "text2video_pytorch_model.pth")
    (release / "configuration.json").write_text("{}")
    return {
        "original-safetensors": (tmp_path / "zeroscope_v2_576w.safetensors", "UNet in the original ModelScope layout"),
        "original-pth": (tmp_path / "text2video_pytorch_model.pth", "UNet in the original ModelScope layout"),
        "diffusers-unet-alone": (tmp_path / "diffusion_pytorch_model.safetensors", "(UNet3DConditionModel) alone"),
        "original-release-folder": (release, "is ModelScope's original release (text2video_pytorch_model.pth)"),
    }


@pytest.mark.parametrize("extra", [[], ["--motion-modules", "{mm}"]], ids=["alone", "with-motion-modules"])
def test_as_model_each_is_one_error_line_naming_the_layout_needed(tmp_path, capsys, monkeypatch, tiny_dir, extra):
    mm = tiny_dir / "motion_adapter" if (tiny_dir / "motion_adapter").is_dir() else tiny_dir
    for name, (path, what) in _inputs(tmp_path).items():
        args = [str(mm) if a == "{mm}" else a for a in extra]
        code, out, err = run(capsys, monkeypatch, "generate", "--model", path, *args, *GENERATE, "-o", tmp_path / "v")
        assert code == 2, (name, err)
        assert err.startswith("error:") and len(err.strip().splitlines()) == 1, (name, err)  # before any model loads
        assert what in err, (name, err)
        assert "damo-vilab/text-to-video-ms-1.7b" in err and "cerspense/zeroscope_v2_576w" in err, err
        if name != "diffusers-unet-alone":
            assert "diffusers cannot convert" in err and "model_index.json with unet/, vae/" in err, err
        assert not (tmp_path / "v").exists() and out == ""
    code, _, err = run(
        capsys,
        monkeypatch,
        "motion-adapter",
        "train",
        "--model",
        tmp_path / "zeroscope_v2_576w.safetensors",
        "-o",
        tmp_path / "m",
    )
    assert code == 2 and "original ModelScope layout" in err and len(err.strip().splitlines()) == 1, err


def test_load_t2v_refuses_them_too(tmp_path):
    for path, what in _inputs(tmp_path).values():
        with pytest.raises(StillMovingError, match="zeroscope_v2_576w") as refused:
            load_t2v(path)
        assert what in str(refused.value)


def test_info_names_the_layout_and_what_to_load_instead(tmp_path, capsys, monkeypatch):
    inputs = _inputs(tmp_path)
    code, out, _ = run(capsys, monkeypatch, "info", inputs["original-pth"][0])
    text = " ".join(out.split())
    assert code == 0 and "original ModelScope layout" in text and "SD2.x" in text
    assert "as --model" in text and "diffusers cannot convert" in out.replace("│", " ").replace("\n", " ")
