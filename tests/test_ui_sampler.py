"""The web app samples a customization with the sampling setting it recorded (AnimateDiff-Lightning's scheduler, its
steps and guidance), as `stillmoving generate --customization` does by default: Compare in place of the page's steps
and guidance, each command it shows saying so; Generate fills them in when the customization is chosen and refuses
others in the CLI's own line."""

import json
import shlex
import shutil

import numpy as np
import pytest
from conftest import perturb
from test_cli import run
from test_ui import PROMPT, frames, settings
from ui_server import start_server

from stillmoving.adapters.spatial import SpatialAdapters
from stillmoving.loading import load_t2v
from stillmoving.run_folder import CUSTOMIZATION, SPATIAL_ADAPTERS
from stillmoving.world.weights import shipped_model, shipped_motion_adapter

RECORDED = {"scheduler": "lightning", "lcm_lora": None, "steps": 2, "guidance_scale": 1.0}


def lightning_customization(models):
    """A customization of the world model recorded as trained under the Lightning setting: M1 is the world model's own
    T2I, the spatial adapters nonzero."""
    t2v = shutil.copytree(shipped_model(), models / "t2v")
    adapter = shutil.copytree(shipped_motion_adapter().parent, models / "motion")
    folder = models / "custom"
    folder.mkdir()
    adapters = SpatialAdapters.for_unet(load_t2v(t2v).unet, rank=2)
    perturb(adapters.trainable_parameters(), seed=3, scale=0.05)
    adapters.save(folder / SPATIAL_ADAPTERS)
    record = {
        "model": str(t2v),
        "motion_modules": None,
        "customized": str(t2v),
        "loras": [],
        "spatial_adapters": SPATIAL_ADAPTERS,
        "motion_adapter": str(adapter / shipped_motion_adapter().name),
        "config_dir": None,
        "sampler": RECORDED,
    }
    (folder / CUSTOMIZATION).write_text(json.dumps(record))
    return folder


def test_compare_samples_with_the_recorded_setting(tmp_path, capsys, monkeypatch):
    (tmp_path / "models").mkdir()
    custom = lightning_customization(tmp_path / "models")
    page, _, url = start_server(tmp_path / "out", [tmp_path / "models"])
    try:
        from gradio_client import Client

        client = Client(url, verbose=False)
        page_values = settings(customization=str(custom), steps=4, guidance_scale=4.0)  # the page's own
        *videos, commands, status = client.predict(*page_values, api_name="/compare")
    finally:
        page.close()
    assert status.startswith("compared 4 videos"), status
    naive, _, minus, zero, plus = videos
    blocks = [block for block in commands.split("# ")[1:]]
    assert len(blocks) == 4
    for block in blocks:
        assert "--steps 2 " in block and "--guidance-scale 1 " in block and "--steps 4" not in block, block
    for label, video in (("naive injection", naive), ("motion scale 1", plus), ("motion scale -1", minus)):
        command = next(b for b in blocks if b.startswith(label) or f", {label}\n" in b).split("\n", 1)[1]
        args = shlex.split(command.strip())[1:]
        if "--customization" in args:  # its default is the recorded setting; naive injection names it in flags
            for flag in ("--steps", "--guidance-scale"):
                i = args.index(flag)
                del args[i : i + 2]
        else:
            assert args[args.index("--scheduler") + 1] == "lightning", args
        args[args.index("-o") + 1] = str(tmp_path / f"{label}.mp4")
        code, _, err = run(capsys, monkeypatch, *args)
        assert code == 0, err
        assert np.array_equal(frames(tmp_path / f"{label}.mp4"), frames(video)), label
    assert np.abs(frames(minus) - frames(plus)).mean() > 0


def test_generate_takes_the_recorded_setting_and_refuses_another_as_the_cli_does(tmp_path, capsys, monkeypatch):
    """The Generate view's handlers, called directly (no server, no browser)."""
    pytest.importorskip("gradio", reason='the web app is an optional extra: pip install "gradio>=6.31"')
    from stillmoving.ui.app import App
    from stillmoving.ui.folders import Folders

    (tmp_path / "models").mkdir()
    custom = lightning_customization(tmp_path / "models").resolve()
    app = App(Folders(tmp_path / "out", [tmp_path / "models"]))
    assert app.customization_changed(str(custom)) == (2, 1.0, "")  # chosen: its recorded steps and guidance
    page = dict(steps=4, guidance_scale=4.0)  # the world model's own, left in the page
    capsys.readouterr()
    refused = app.generate(*settings(customization=str(custom), **page))
    assert app.queue.jobs() == [] and capsys.readouterr() == ("", "")  # refused before any model loads
    size = ["--num-frames", "8", "--height", "32", "--width", "32", "--seed", "0"]
    cli = ["generate", "--customization", custom, "--prompt", PROMPT, *size, "-o", tmp_path / "cli.mp4"]
    code, _, err = run(capsys, monkeypatch, *cli, "--steps", "4", "--guidance-scale", "4")
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: customization "), err
    assert refused == (None, None, "", f"**error:** {err.strip().removeprefix('error: ')}")
    assert "was trained with scheduler lightning, no LCM LoRA, 2 steps, guidance 1" in refused[3]
    assert not (tmp_path / "cli.mp4").exists()
    video, _, command, status = app.generate(*settings(customization=str(custom), steps=2, guidance_scale=1.0))
    assert status.startswith("made"), status
    assert "--steps 2 " in command and "--guidance-scale 1 " in command
    code, _, err = run(capsys, monkeypatch, *cli)  # no --steps, --guidance-scale: the recorded setting
    assert code == 0, err
    assert np.array_equal(frames(tmp_path / "cli.mp4"), frames(video))
    assert app.customization_changed("(none)") == ({"__type__": "update"},) * 2 + ("",)  # none: the page's own
