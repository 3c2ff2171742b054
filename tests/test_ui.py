"""`stillmoving ui` through gradio_client (no browser): generate and the motion scale, the exact command that
reproduces a video, a customization cancelled, left clean and resumed, compare, and bad inputs as messages."""

import json
import shlex
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from test_cli import run
from test_cli import run as cli  # where a test's `run` is its customization folder
from ui_server import start_server

WORLD = "world:animatediff"
PROMPT = "a red circle moving left quickly on a gray background"
SMALL = dict(seed=0, num_frames=8, height=32, width=32, steps=4, guidance_scale=4.0)


def settings(prompt=PROMPT, motion_scale=0.0, customization="(none)", video_model=WORLD, base_t2i="(none)", **changes):
    """/generate and /compare's inputs in the page's order."""
    s = {**SMALL, **changes}
    return [
        video_model,
        customization,
        "",
        prompt,
        "",
        s["seed"],
        s["num_frames"],
        s["height"],
        s["width"],
        s["steps"],
        s["guidance_scale"],
        motion_scale,
        base_t2i,
    ]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("ui")
    (root / "models").mkdir()
    page, app, url = start_server(root / "out", [root / "models"])
    from gradio_client import Client

    yield Client(url, verbose=False), app, root, url
    page.close()


def frames(path):
    from stillmoving.data.video_io import read_video

    return read_video(path).astype(np.int16)


def test_generate_motion_scale_and_the_command_that_reproduces_it(server, tmp_path, capsys, monkeypatch):
    client, _, _, _ = server
    still = client.predict(*settings(motion_scale=0.0), api_name="/generate")
    moving = client.predict(*settings(motion_scale=1.0), api_name="/generate")
    for video, files, _command, status in (still, moving):
        assert video.endswith(".mp4") and status.startswith("made"), status
        assert sorted(p.rsplit(".", 1)[1] for p in files) == ["gif", "mp4"]
    assert "--motion-scale 1" in moving[2] and "--motion-adapter" in moving[2]
    assert np.abs(frames(still[0]) - frames(moving[0])).mean() > 1  # the knob changes the video
    args = shlex.split(moving[2])
    args[args.index("-o") + 1] = str(tmp_path / "again.mp4")
    code, _, err = run(capsys, monkeypatch, *args[1:])
    assert code == 0, err
    assert np.array_equal(frames(tmp_path / "again.mp4"), frames(moving[0]))


def test_bad_inputs_are_messages(server, monkeypatch):
    client, _, root, _ = server
    (root / "models" / "dreambooth.ckpt").write_bytes(b"\x80\x04not really")
    (root / "models" / "empty").mkdir(exist_ok=True)
    cases = {
        "write a prompt": settings(prompt="  "),
        "not a multiple of the VAE's factor": settings(height=30),
        "--num-frames must be at least 1": settings(num_frames=0),
        "outside the folders this app may read": settings(customization="/etc"),
        "not a customization folder": settings(customization=str(root / "models" / "empty")),
        "holds pickle files": settings(customization=str(root / "models")),
    }
    for expected, values in cases.items():
        video, files, command, status = client.predict(*values, api_name="/generate")
        assert video is None and status.startswith("**error:**") and expected in status, (expected, status)
        assert "Traceback" not in status
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="greater than maximum value 1"):  # the slider's bounds: gradio's own message
        client.predict(*settings(motion_scale=3.0), api_name="/generate")
    job, status = client.predict(
        "bad name/..",
        WORLD,
        "",
        "a sks star",
        "sks",
        [],
        "",
        "dreambooth",
        3,
        "",
        "",
        4,
        2,
        1,
        2,
        8,
        32,
        32,
        2,
        api_name="/customize",
    )
    assert "customization name" in status
    job, status = client.predict(
        "pickled",
        WORLD,
        "",
        "a sks star",
        "sks",
        [],
        "",
        "dreambooth",
        3,
        str(root / "models" / "dreambooth.ckpt"),
        "",
        4,
        2,
        1,
        2,
        8,
        32,
        32,
        2,
        api_name="/customize",
    )
    assert "pickle files" in status and "never loads" in status
    from stillmoving.world import weights

    monkeypatch.setitem(weights.VIDEO_MODELS, "joint", ("t2v_not_built_yet", "motion_adapter_not_built_yet"))
    status = client.predict(*settings(video_model="world:joint"), api_name="/generate")[3]
    assert "not in this install" in status


def test_only_the_output_folder_is_served(server):
    _, _, root, url = server
    for path in ("/etc/passwd", str(root / "models" / "dreambooth.ckpt"), __file__):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{url}gradio_api/file={path}")
        assert refused.value.code in (403, 404)


def wait_for(client, job_id, done):
    """Poll /job until `done(job)` (each poll is a request: no sleeping on a clock)."""
    while not done(job := client.predict(int(job_id), api_name="/job")):
        pass
    return job


def test_customize_cancelled_leaves_nothing_half_written_and_resumes(server, capsys, monkeypatch):
    client, app, root, _ = server
    images, prompt, identifier, _ = client.predict(api_name="/example")
    values = ["star", WORLD, "", prompt, identifier, [], images, "dreambooth", 2, "", "", 40, 2, 1, 2, 8, 32, 32, 2]
    job_id, status = client.predict(*values, api_name="/customize")
    assert "queued" in status
    # The cancel must land mid-run: step 3 is watched on the queue itself (polling /job over HTTP on a loaded
    # machine saw it too late: twice in CI the 12-, then 40-step run had saved its adapters before the cancel)
    running = app.queue.get(int(job_id))
    while running.state in ("queued", "running") and not (
        running.phase == "training (spatial adapters)" and running.step >= 3
    ):
        time.sleep(0.01)
    assert running.state == "running", running
    client.predict(job_id, api_name="/cancel")
    job = wait_for(client, job_id, lambda j: j["state"] in ("done", "failed", "cancelled"))
    assert job["state"] == "cancelled" and job["losses"]
    run = root / "out" / "customizations" / "star"
    written = sorted(p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file())
    assert not (run / "spatial_adapters.safetensors").exists() and not (run / "customization.json").exists()
    assert not [p for p in written if "partial" in p or p.endswith(".tmp") or "/." in p], written
    assert (run / "t2i" / "dreambooth_run.json").is_file() and (run / "checkpoints").is_dir()

    job_id, status = client.predict(*values, api_name="/customize")  # the same settings again: it resumes
    job = wait_for(client, job_id, lambda j: j["state"] in ("done", "failed", "cancelled"))
    assert job["state"] == "done", job
    assert len(job["commands"]) == 1 and job["commands"][0].endswith("--resume")  # the T2I is not trained again
    record = json.loads((run / "customize_run.json").read_text())
    assert 0 < len(record["losses"]) < 40  # only the steps after the checkpoint
    assert str(run) in app.refreshed_choices(None)["choices"]

    naive, ours, minus, zero, plus, commands, status = client.predict(
        *settings(prompt="a sks star moving right slowly on a black background", customization=str(run)),
        api_name="/compare",
    )
    assert status.startswith("compared 4 videos"), status
    assert np.abs(frames(naive) - frames(ours)).mean() > 0  # the spatial adapters change the video
    assert np.abs(frames(minus) - frames(plus)).mean() > 1
    assert commands.count("stillmoving generate") == 4 and f"--customization {run}" in commands

    # Delta injection of the customization's T2I (a base T2I chosen), in Still-Moving's place: on the first world
    # model, whose spatial layers are M, it is naive injection to the pixel; its command reproduces it through the CLI
    from stillmoving.world.weights import shipped_model

    star = dict(prompt="a sks star moving right slowly on a black background", customization=str(run))
    naive, delta, *_, commands, status = client.predict(
        *settings(**star, base_t2i=str(shipped_model())), api_name="/compare"
    )
    assert status.startswith("compared 4 videos: naive injection and delta injection"), status
    assert np.array_equal(frames(delta), frames(naive))
    assert commands.count(f"--base-t2i {shipped_model()} --spatial-scale 0") == 3, commands
    assert "# delta injection, motion scale -1" in commands
    video, _, command, status = client.predict(*settings(**star, base_t2i=str(shipped_model())), api_name="/generate")
    assert status.startswith("made") and "--base-t2i" in command, status
    args = shlex.split(command)
    args[args.index("-o") + 1] = str(root / "again.mp4")
    code, _, err = cli(capsys, monkeypatch, *args[1:])
    assert code == 0, err
    assert np.array_equal(frames(root / "again.mp4"), frames(video))
    status = client.predict(*settings(base_t2i=str(shipped_model())), api_name="/generate")[3]
    assert "delta injection (a base T2I) needs a customization" in status


def test_ui_without_gradio_is_one_error_line(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio raises ImportError
    code, _, err = run(capsys, monkeypatch, "ui")
    assert code == 2
    assert err.strip().count("\n") == 0 and 'pip install "gradio>=6.31"' in err


def test_the_page_adds_the_paper_prior_term_only_with_prior_videos(tmp_path):
    from stillmoving.errors import StillMovingError
    from stillmoving.ui.folders import Folders
    from stillmoving.ui.work import CustomizePlan, check_plan, customize_commands

    m1 = tmp_path / "m1"
    m1.mkdir()
    folders = Folders(tmp_path / "out", [tmp_path])
    plan = dict(name="x", prompt="a sks star", customized=str(m1))
    none = customize_commands(folders, CustomizePlan(**plan))[-1]  # the default: 0, customize's no prior term
    assert not [a for a in none if "prior" in a]
    three = customize_commands(folders, CustomizePlan(**plan, num_prior_videos=3))[-1]
    start = three.index("--prior-loss-weight")
    assert three[start : start + 4] == ["--prior-loss-weight", "1", "--num-prior-videos", "3"]
    with pytest.raises(StillMovingError, match="prior videos must be at least 0"):
        check_plan(folders, CustomizePlan(**plan, num_prior_videos=-1))


def test_video_model_choices_mark_a_missing_world_model(monkeypatch, tmp_path):
    from stillmoving.ui.folders import Folders, video_model_choices
    from stillmoving.world import weights

    monkeypatch.setitem(weights.VIDEO_MODELS, "joint", ("t2v_not_built_yet", "motion_adapter_not_built_yet"))
    labels = dict((value, label) for label, value in video_model_choices(Folders(tmp_path)))
    assert labels["world:animatediff"] == "world: animatediff"
    assert labels["world:joint"] == "world: joint (not installed)"


def test_the_page_opens_on_the_world_model_s_own_settings_and_without_the_world(monkeypatch, tmp_path, tiny_dir):
    """The Generate tab's fields start at the first world model's generation_defaults.json (8 frames, 15 steps,
    guidance 4), and either tab's fields follow its chosen video model (the Customize tab's too: a user's own model is
    not trained at the world's 32 px); an install without the world's weights still builds the page, on the
    fallbacks."""
    import shutil

    pytest.importorskip("gradio", reason='the web app is an optional extra: pip install "gradio>=6.31"')
    from stillmoving.errors import StillMovingError
    from stillmoving.ui import layout, make_app

    def field(page, label):
        return next(b.value for b in page.blocks.values() if getattr(b, "label", None) == label)

    shutil.copytree(tiny_dir, tmp_path / "models" / "own")
    page, app = make_app(tmp_path / "out", [tmp_path / "models"])
    assert (field(page, "steps"), field(page, "guidance")) == (15, 4.0)
    assert app.customize_model_changed("world:joint") == (32, 32, 8, 15, "")
    own = str(tmp_path / "models" / "own")
    assert app.customize_model_changed(own) == (32, 32, 16, 25, "")  # no generation_defaults.json: the fallbacks
    assert app.model_changed(own) == (32, 32, 16, 25, 7.5, "")

    def missing(*_):
        raise StillMovingError("the embedded world's weights are not in this install")

    monkeypatch.setattr(layout, "shipped_model", missing)
    page, _ = make_app(tmp_path / "out2", [])
    assert (field(page, "steps"), field(page, "guidance")) == (25, 7.5)


def test_cancel_reaches_a_command_even_when_the_app_ignores_ctrl_c(monkeypatch):
    """A shell starts background jobs (`stillmoving ui &`) with SIGINT ignored, and children inherit that: the
    command the app starts must take Ctrl-C again, or cancelling lets it run to its end and write its results."""
    import signal
    import subprocess

    from stillmoving.ui import jobs

    probe = [
        sys.executable,
        "-c",
        "import signal; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)",
    ]
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        inherited = subprocess.run(probe, capture_output=True, text=True, check=True).stdout.strip()
        restored = subprocess.run(
            probe, capture_output=True, text=True, check=True, preexec_fn=jobs._default_ctrl_c
        ).stdout.strip()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert (inherited, restored) == ("False", "True")

    seen = {}

    class Started(RuntimeError):
        pass

    def popen(*args, **kwargs):
        seen.update(kwargs)
        raise Started

    monkeypatch.setattr(jobs.subprocess, "Popen", popen)
    with pytest.raises(Started):
        jobs.run_command(jobs.Job(1, "customize", "a customization", lambda job: None), ["customize", "--help"])
    assert seen["preexec_fn"] is jobs._default_ctrl_c and seen["start_new_session"]
