"""`stillmoving bench` on issue 17's families at tiny size on the CPU: AnimateDiff-SDXL and ModelScope/ZeroScope
built from the family tests' tiny models (sdxl_models.py, zeroscope_models.py) in the place of the real-size presets'
random ones (`bench.models.BUILDERS`), then every stage, generation and the whole `customize` comparison through the
CLI, through the same code the real-size presets run on a GPU. The report has every field the SD1.5 path's has."""

import json

import pytest
from diffusers import AnimateDiffSDXLPipeline
from sdxl_models import sdxl_motion_adapter, sdxl_t2i
from test_bench import check_preset_result, one_thread  # noqa: F401 (a fixture)
from test_cli import run
from zeroscope_models import zeroscope_pipeline

from stillmoving.backends import SDXL, ZeroScope
from stillmoving.bench.models import BUILDERS, PRESETS, Preset


def tiny_sdxl(preset: Preset, folder: str, seed: int) -> AnimateDiffSDXLPipeline:
    t2i = sdxl_t2i(folder, seed)
    return AnimateDiffSDXLPipeline(**t2i.components, motion_adapter=sdxl_motion_adapter(seed))


TINY = {  # preset name: (its frames and size, its builder, its family's backend)
    "tiny-sdxl": (Preset("tiny-sdxl", num_frames=4, resolution=32), tiny_sdxl, SDXL),
    # frames not square, as zeroscope-576w's (the tiny VAE halves them: 16 x 24 latents)
    "tiny-modelscope": (
        Preset("tiny-modelscope", num_frames=4, resolution=32, width=48),
        lambda preset, folder, seed: zeroscope_pipeline(folder, seed),
        ZeroScope,
    ),
}


@pytest.fixture
def tiny_families(monkeypatch):
    for name, (preset, builder, _) in TINY.items():
        monkeypatch.setitem(PRESETS, name, preset)
        monkeypatch.setitem(BUILDERS, preset.model, builder)


@pytest.mark.usefixtures("tiny_families", "one_thread")
@pytest.mark.parametrize("name", TINY)
def test_bench_runs_every_stage_of_a_family_at_tiny_size(name, capsys, monkeypatch, tmp_path):
    """Each stage's step runs for real (seconds, memory, FLOPs), conditioned through the family's backend: the
    cached text rows (SDXL's with the pooled embedding) are `Backend.unet_inputs`' to unpack, as in training."""
    backend = TINY[name][2]
    calls = []
    unet_inputs = backend.unet_inputs
    monkeypatch.setattr(backend, "unet_inputs", lambda self, *a: calls.append(1) or unet_inputs(self, *a))
    out = tmp_path / "bench.json"
    options = ["--steps", "1", "--customize-steps", "2", "--customize-items", "1", "-o", out]
    code, stdout, err = run(capsys, monkeypatch, "bench", "--preset", name, *options)
    assert code == 0, err
    assert "straightforward" in stdout and "spatial adapters" in stdout and "whole customization" in stdout
    report = json.loads(out.read_text())
    (result,) = report["presets"]
    check_preset_result(result, name, customize=(2, 1))
    assert calls  # the bench's steps and customize's training went through the backend


@pytest.mark.usefixtures("tiny_families")
def test_gradient_checkpointing_on_modelscope_is_refused_in_one_line(capsys, monkeypatch):
    """diffusers' UNet3DConditionModel has no gradient checkpointing: refused as the training commands refuse it."""
    code, _, err = run(capsys, monkeypatch, "bench", "--preset", "tiny-modelscope", "--gradient-checkpointing")
    assert code == 2 and "--gradient-checkpointing:" in err and "Drop the flag" in err, err
    assert len(err.strip().splitlines()) == 1, err
