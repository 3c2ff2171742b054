"""The user's command sequence on a video-model family's tiny folder, shared by the family tests (test_sdxl.py,
test_zeroscope.py): `motion-adapter train`, `customize`, `generate` and `export`, each through the CLI offline."""

import json

import torch
from test_cli import run

from stillmoving.adapters.spatial import SpatialAdapters

SMALL = ["--num-frames", "4", "--height", "32", "--width", "32", "--steps", "2", "--sample-steps", "2"]


def stages_generate_export(models, tmp_path, capsys, monkeypatch, spatial_layers, pipeline_class: str):
    """Both stages (2 steps each), a video from the customization and its export, on `models / "t2v"` with the
    customized T2I `models / "m1"`; checks each step's result and returns the exported folder. `pipeline_class`:
    the plain diffusers pipeline the export's card loads."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    motion = ["--sample-prompt", "a red circle moving left", "--num-sampled-videos", "1", "--rank", "2"]
    code, _, err = run(
        capsys,
        monkeypatch,
        "motion-adapter",
        "train",
        "--model",
        models / "t2v",
        "-o",
        tmp_path / "motion",
        *motion,
        *SMALL,
    )
    assert code == 0, err
    record = json.loads((tmp_path / "motion" / "motion_adapter_run.json").read_text())
    assert len(record["losses"]) == 2 and all(loss == loss for loss in record["losses"])
    stage2 = ["--prompt", "a sks dog", "--identifier", "sks", "--num-images", "2", "--num-prior-videos", "1"]
    code, _, err = run(
        capsys,
        monkeypatch,
        "customize",
        "--model",
        models / "t2v",
        "-o",
        tmp_path / "custom",
        "--motion-adapter",
        tmp_path / "motion" / "motion_adapter",
        "--customized",
        models / "m1",
        *stage2,
        "--spatial-rank",
        "2",
        "--num-validation-videos",
        "1",
        *SMALL,
    )
    assert code == 0, err
    adapters = SpatialAdapters.load(tmp_path / "custom" / "spatial_adapters.safetensors")
    assert adapters.placements == spatial_layers
    assert any(layer.up.abs().sum() > 0 for layer in adapters.layers)  # trained: A_up left zero
    video = ["--prompt", "a sks dog", "-o", tmp_path / "video.gif", "--num-frames", "4", "--steps", "2"]
    code, _, err = run(
        capsys, monkeypatch, "generate", "--customization", tmp_path / "custom", *video, "--motion-scale", "0.5"
    )
    assert code == 0, err
    assert (tmp_path / "video.gif").stat().st_size > 0
    code, _, err = run(capsys, monkeypatch, "export", tmp_path / "custom", "-o", tmp_path / "exported")
    assert code == 0, err
    card = (tmp_path / "exported" / "README.md").read_text()
    assert f"{pipeline_class}.from_pretrained" in card and "ControlNetModel" not in card
    return tmp_path / "exported"
