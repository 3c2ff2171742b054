"""The user's command sequences on a video-model family's tiny folder, shared by the family tests (test_sdxl.py,
test_zeroscope.py), each through the CLI offline: `motion-adapter train`, `customize`, `generate` and `export`; then
`compare`, `eval` and `customize-batch` on a customization."""

import json

import numpy as np
import torch
from test_cli import invoke, run

from stillmoving.adapters.spatial import SpatialAdapters
from stillmoving.run_folder import SPATIAL_ADAPTERS as SPATIAL

SMALL = ["--num-frames", "4", "--height", "32", "--width", "32", "--steps", "2", "--sample-steps", "2"]
# stage 2's customization options, with the paper's prior term so that both loss terms run
STAGE2 = ["--prompt", "a sks dog", "--identifier", "sks", "--num-images", "2"]
STAGE2 += ["--num-prior-videos", "1", "--prior-loss-weight", "1"]


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
        *STAGE2,
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
    export_delta(models, tmp_path, capsys, monkeypatch, pipeline_class)
    save_round_trip(tmp_path, pipeline_class)
    return tmp_path / "exported"


def save_round_trip(tmp_path, pipeline_class: str) -> None:
    """`save_pretrained` of the customization in `tmp_path / "custom"`, both adapters loaded: model_index.json names
    the plain diffusers class, which loads the UNet's weights exactly (motion modules under their own names), and the
    family's Still-Moving class loads it back with both adapters, frame for frame."""
    import diffusers

    from stillmoving.loading import assemble_pipeline
    from stillmoving.run_folder import model_files, read_customization

    pipe = assemble_pipeline(**model_files(read_customization(tmp_path / "custom")))
    call = dict(num_frames=4, height=32, width=32, num_inference_steps=2, output_type="np", motion_scale=-1.0)
    expected = pipe("a sks dog", generator=torch.Generator().manual_seed(0), **call).frames
    weights = {k.replace(".base_layer", ""): v for k, v in pipe.unet.state_dict().items() if "lora_" not in k}
    pipe.save_pretrained(tmp_path / "saved")
    assert json.loads((tmp_path / "saved" / "model_index.json").read_text())["_class_name"] == pipeline_class
    sdxl = {"motion_adapter": None} if "SDXL" in pipeline_class else {}
    state = getattr(diffusers, pipeline_class).from_pretrained(tmp_path / "saved", **sdxl).unet.state_dict()
    assert state.keys() == weights.keys() and all(torch.equal(state[k], v) for k, v in weights.items())
    back = type(pipe).from_pretrained(tmp_path / "saved", **sdxl)
    got = back("a sks dog", generator=torch.Generator().manual_seed(0), **call).frames
    np.testing.assert_array_equal(got, expected)


def export_delta(models, tmp_path, capsys, monkeypatch, pipeline_class: str) -> None:
    """`export --base-t2i` of the customization in `tmp_path / "custom"`, with V's own T2I as the base: the plain
    diffusers class its card names loads it as the card says, and its UNet is naive injection's, weight for weight."""
    import diffusers

    from stillmoving.injection import spatial_state_dict
    from stillmoving.loading import assemble_pipeline

    out = tmp_path / "delta"
    code, _, err = run(capsys, monkeypatch, "export", tmp_path / "custom", "-o", out, "--base-t2i", models / "t2v")
    assert code == 0, err
    card = (out / "README.md").read_text()
    sdxl = "SDXL" in pipeline_class  # diffusers' SDXL pipeline needs motion_adapter=None, and the card says so
    assert f"{pipeline_class}.from_pretrained(" in card and ("motion_adapter=None" in card) == sdxl
    assert not (out / "customization.json").exists() and not (out / "spatial_adapters.safetensors").exists()
    plain = getattr(diffusers, pipeline_class).from_pretrained(out, **({"motion_adapter": None} if sdxl else {}))
    naive = spatial_state_dict(assemble_pipeline(str(models / "t2v"), customized=str(models / "m1")).unet)
    state = plain.unet.state_dict()
    assert all(torch.equal(state[k], v) for k, v in naive.items())


# ---- the comparison, its scores and the batch, on a customization of the family

CUSTOMIZE = dict(  # a 1-step customization: `customize`'s options, and a `customize-batch` run's keys
    prompt=["a sks dog"],
    identifier="sks",
    num_images=1,
    num_prior_videos=1,
    prior_loss_weight=1.0,
    spatial_rank=2,
    num_validation_videos=0,
    num_frames=4,
    height=32,
    width=32,
    steps=1,
    sample_steps=2,
)


def as_options(values: dict) -> list:
    """`--name value` for each entry (a list: the option repeated)."""
    options = []
    for name, value in values.items():
        for item in value if isinstance(value, list) else [value]:
            options += [f"--{name.replace('_', '-')}", item]
    return options


def customization(models, motion_adapter_file, folder):
    """`customize` (`CUSTOMIZE`) of `models / "m1"` for `models / "t2v"` into `folder` (for module fixtures)."""
    inputs = dict(model=models / "t2v", motion_adapter=motion_adapter_file, customized=models / "m1")
    invoke("customize", "-o", folder, *as_options(inputs), *as_options(CUSTOMIZE))
    return folder


def compare_and_eval(models, custom, tmp_path, capsys, monkeypatch, base, image):
    """`compare` on the customization `custom` at the video model's own size (one prompt, seed 0), then `eval` of its
    Still-Moving videos. Each column is what its own route makes, frame for frame: the base T2V and the customized
    T2I's image are plain diffusers' (`base()`, `image()`: the pipelines, called as compare calls them), naive
    injection is `generate` with the customized T2I and no adapters, Still-Moving is `generate --customization`;
    weight interpolation (w = 0.5) is neither end. `eval` scores the videos as compare did."""
    from evaluation_models import save_tiny_clip, save_tiny_dino

    from stillmoving.data.video_io import read_video, to_uint8_frames
    from stillmoving.evaluation.compare import video_path
    from stillmoving.world.claims import BASE, INTERPOLATION, NAIVE, OURS, T2I

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    prompt, report = "a sks dog running", tmp_path / "report"
    scoring = ["--clip-model", save_tiny_clip(tmp_path), "--dino-model", save_tiny_dino(tmp_path)]
    scoring += ["--reference-images", custom / "images", "--device", "cpu"]
    size = ["--num-frames", "4", "--steps", "2"]
    code, _, err = run(
        capsys, monkeypatch, "compare", "--customization", custom, "--prompt", prompt, "--seeds", "1", *size,
        *scoring, "-o", report,
    )  # fmt: skip
    assert code == 0, err
    settings = json.loads((report / "compare.json").read_text())["video_settings"]
    assert (settings["height"], settings["width"], settings["steps"], settings["guidance_scale"]) == (32, 32, 2, 7.5)
    assert "sampler" not in settings  # none named: the model's own scheduler
    record = json.loads((report / "metrics.json").read_text())
    labels = [BASE.label, T2I.label, NAIVE.label, INTERPOLATION.label, OURS.label]
    assert list(record["variants"]) == labels
    column = {label: read_video(video_path(report, label, (prompt, 0))) for label in labels}
    call = dict(height=32, width=32, num_inference_steps=2, guidance_scale=7.5, output_type="np")
    seeded = dict(generator=torch.Generator().manual_seed(0), **call)
    assert np.array_equal(column[BASE.label], to_uint8_frames(base()(prompt, num_frames=4, **seeded).frames[0]))
    seeded = dict(generator=torch.Generator().manual_seed(0), **call)
    assert np.array_equal(column[T2I.label], to_uint8_frames(image()(prompt, **seeded).images[0][None]))
    for label, source in (
        (NAIVE.label, ["--model", models / "t2v", "--customized", models / "m1"]),
        (OURS.label, ["--customization", custom]),
    ):
        out = tmp_path / label.replace(" ", "_")
        code, _, err = run(capsys, monkeypatch, "generate", *source, "--prompt", prompt, *size, "-o", out)
        assert code == 0, err
        assert np.array_equal(column[label], read_video(out)), label
    assert column[T2I.label].shape == (1, 32, 32, 3) and column[OURS.label].shape == (4, 32, 32, 3)
    middle = column[INTERPOLATION.label]
    assert not np.array_equal(middle, column[BASE.label]) and not np.array_equal(middle, column[NAIVE.label])
    assert not np.array_equal(column[OURS.label], column[NAIVE.label])  # the trained adapters change the frames

    scores = tmp_path / "eval.json"
    code, _, err = run(
        capsys, monkeypatch, "eval", report / "videos" / OURS.label, "--prompt", prompt, *scoring, "-o", scores
    )
    assert code == 0, err
    assert list(json.loads(scores.read_text())["per_video"].values()) == record["variants"][OURS.label]["per_video"]


def batch_equals_customize(other, mine, custom, tmp_path, capsys, monkeypatch):
    """`customize-batch` of two runs, another family's (`other`: its models folder and motion adapter) then this
    one's (`mine`), in one process: each writes its own adapters, and this family's equal, tensor for tensor, those
    `customize` wrote alone (`custom`, the same settings): nothing of the first run leaks into the second."""
    from safetensors.torch import load_file

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    runs = [
        dict(model=str(models / "t2v"), motion_adapter=str(adapter), customized=str(models / "m1"), output=str(out))
        for (models, adapter), out in ((other, tmp_path / "other"), (mine, tmp_path / "mine"))
    ]
    (tmp_path / "batch.json").write_text(json.dumps({"defaults": CUSTOMIZE, "runs": runs}))
    code, _, err = run(capsys, monkeypatch, "customize-batch", tmp_path / "batch.json")
    assert code == 0, err
    assert err.count("spatial adapters written to") == 2
    assert json.loads((tmp_path / "mine" / "customization.json").read_text())["model"] == str(mine[0] / "t2v")
    alone, batched = load_file(custom / SPATIAL), load_file(tmp_path / "mine" / SPATIAL)
    assert batched.keys() == alone.keys() and all(torch.equal(batched[k], v) for k, v in alone.items())
    assert any(layer.up.abs().sum() > 0 for layer in SpatialAdapters.load(tmp_path / "mine" / SPATIAL).layers)
    assert (tmp_path / "other" / SPATIAL).is_file()
