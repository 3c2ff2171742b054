"""What a user watches during training (issue 14, item 6): the logged banner, trackers through accelerate, and
validation videos every N steps that leave the training untouched."""

import json

import numpy as np
import pytest
import torch
from accelerate.tracking import GeneralTracker
from conftest import tiny_customize
from safetensors.torch import load_file
from test_cli import run

from stillmoving.adapters.motion import MotionLoRA
from stillmoving.data.video_io import read_video
from stillmoving.training import monitor, motion_stage, spatial_stage
from stillmoving.training.config import MotionAdapterConfig

SMALL = dict(num_frames=4, height=32, width=32, sample_steps=2, guidance_scale=1.0)
CLI_SMALL = ["--num-frames", "4", "--height", "32", "--width", "32", "--sample-steps", "2"]


def motion_cfg(tiny_dir, out, **kw):
    values = dict(sample_prompt=["a red circle moving left"], num_sampled_videos=2, rank=2, steps=2, **SMALL)
    return MotionAdapterConfig(model=str(tiny_dir), output=str(out), **{**values, **kw})


def spatial_cfg(tiny_dir, out, stage2_inputs, **kw):
    return tiny_customize(tiny_dir, stage2_inputs, out, num_prior_videos=1, prior_loss_weight=1.0, **kw)


def test_motion_adapter_train_logs_a_banner_and_writes_validation_videos_every_n_steps(
    tiny_dir, tmp_path, capsys, monkeypatch
):
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
        "a red circle moving left",
        "--num-sampled-videos",
        "2",
        "--rank",
        "2",
        "--steps",
        "4",
        "--grad-accum",
        "2",
        "--validation-every",
        "2",
        "--validation-prompt",
        "a red circle",
        "--validation-prompt",
        "a blue square!",
        *CLI_SMALL,
    )
    assert code == 0, err
    trained = load_file(str(tmp_path / "run/motion_adapter/pytorch_lora_weights.safetensors"))
    lines = err.splitlines()
    start = lines.index("***** Running training *****")
    assert lines[start + 1 : start + 7] == [
        "  Num examples (videos) = 2",
        "  Instantaneous batch size per device = 1",
        "  Total train batch size (w. parallel, distributed & accumulation) = 2",
        "  Gradient accumulation steps = 2",
        "  Total optimization steps = 4",
        f"  Trainable parameters = {sum(v.numel() for v in trained.values())}",
    ]
    validation = tmp_path / "run/validation"
    assert sorted(p.name for p in validation.iterdir()) == ["step-000002", "step-000004"]
    for step in ("step-000002", "step-000004"):
        assert sorted(p.name for p in (validation / step).iterdir()) == [
            "000_a_red_circle.gif",
            "001_a_blue_square.gif",
        ]
        assert read_video(validation / step / "000_a_red_circle.gif").shape == (4, 32, 32, 3)
        assert f"step {step[-1]}: 2 validation video(s) in {validation / step}" in lines


def test_validation_videos_use_the_prompts_seeds_and_motion_scale_given(tiny_dir, tmp_path, monkeypatch):
    made = []
    real = monitor.render_video
    scale = {}
    real_set = MotionLoRA.set_scale
    monkeypatch.setattr(MotionLoRA, "set_scale", lambda self, s: (scale.update(now=s), real_set(self, s))[1])
    monkeypatch.setattr(
        monitor,
        "render_video",
        lambda pipe, p, seed, cfg: (made.append((p, seed, scale["now"])), real(pipe, p, seed, cfg))[1],
    )
    cfg = motion_cfg(tiny_dir, tmp_path, steps=3, validation_every=1, validation_seed=7, validation_prompt=["a", "b"])
    motion_stage.train_motion_adapter(cfg)
    assert made == [("a", 7, 1.0), ("b", 8, 1.0)] * 3  # the adapter's own alpha by default for stage 1
    made.clear()
    cfg = motion_cfg(tiny_dir, tmp_path / "2", validation_every=2, validation_motion_scale=-1.0)
    motion_stage.train_motion_adapter(cfg)
    assert made == [("a red circle moving left", 0, -1.0)]  # default: the training prompts, --seed
    assert scale["now"] == 1.0  # back at alpha 1 for training after each validation


def test_validation_leaves_the_motion_adapter_bit_for_bit_as_without(tiny_dir, tmp_path):
    plain = motion_stage.train_motion_adapter(motion_cfg(tiny_dir, tmp_path / "plain", steps=3))
    watched = motion_stage.train_motion_adapter(
        motion_cfg(tiny_dir, tmp_path / "watched", steps=3, validation_every=1, validation_motion_scale=-1.0)
    )
    wa, wb = (load_file(str(p / "pytorch_lora_weights.safetensors")) for p in (plain, watched))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert len(list((tmp_path / "watched/validation").iterdir())) == 3


def test_validation_leaves_the_spatial_adapters_bit_for_bit_as_without(tiny_dir, tmp_path, stage2_inputs):
    plain = spatial_stage.train_spatial_adapters(spatial_cfg(tiny_dir, tmp_path / "plain", stage2_inputs))
    watched = spatial_stage.train_spatial_adapters(
        spatial_cfg(tiny_dir, tmp_path / "watched", stage2_inputs, validation_every=1)
    )
    wa, wb = load_file(str(plain)), load_file(str(watched))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert any(torch.count_nonzero(wa[k]) for k in wa if k.endswith(".up"))  # it trained


def test_customize_validation_folders_sit_beside_the_end_of_run_check(
    tiny_dir, tmp_path, stage2_inputs, capsys, monkeypatch
):
    code, _, err = run(
        capsys,
        monkeypatch,
        "customize",
        "--model",
        tiny_dir,
        "-o",
        tmp_path / "custom",
        "--motion-adapter",
        stage2_inputs["motion_adapter"],
        "--customized",
        stage2_inputs["customized"],
        "--prompt",
        "a sks dog",
        "--identifier",
        "sks",
        "--num-images",
        "1",
        "--prior-loss-weight",
        "1",
        "--num-prior-videos",
        "1",
        "--prior-loss-weight",
        "1",
        "--spatial-rank",
        "2",
        "--steps",
        "2",
        "--num-validation-videos",
        "1",
        "--validation-every",
        "1",
        *CLI_SMALL,
    )
    assert code == 0, err
    assert "  Num examples (frozen videos of the customized T2I's images) = 1" in err.splitlines()
    assert "  Num examples (prior videos) = 1" in err.splitlines()
    validation = tmp_path / "custom/validation"
    assert sorted(p.name for p in validation.iterdir()) == [
        "customized_t2i_000.png",
        "naive_injection_000.gif",
        "step-000001",
        "step-000002",
        "still_moving_000.gif",
        "still_moving_down_mid_000.gif",
    ]
    assert [p.name for p in (validation / "step-000002").iterdir()] == ["000_a_sks_dog.gif"]


class RecordingTracker(GeneralTracker):
    """A tracker as accelerate takes them (`log_with=[...]`), keeping what it is sent."""

    name = "recording"
    requires_logging_directory = False

    def __init__(self):
        super().__init__()
        self.config, self.scalars, self.images = None, [], []

    @property
    def tracker(self):
        return self

    def store_init_configuration(self, values):
        self.config = values

    def log(self, values, step=None, **kwargs):
        self.scalars.append((step, values))

    def log_images(self, values, step=None, **kwargs):
        self.images.append((step, {k: np.asarray(v).shape for k, v in values.items()}))


def test_the_loss_and_validation_videos_go_to_the_tracker(tiny_dir, tmp_path, monkeypatch):
    tracker = RecordingTracker()
    monkeypatch.setattr(monitor, "trackers", lambda cfg: [tracker])
    cfg = motion_cfg(tiny_dir, tmp_path, steps=4, lr=2e-4, validation_every=2, validation_prompt=["a red circle"])
    motion_stage.train_motion_adapter(cfg)
    record = json.loads((tmp_path / "motion_adapter_run.json").read_text())
    assert tracker.scalars == [(i + 1, {"loss": loss, "lr": 2e-4}) for i, loss in enumerate(record["losses"])]
    assert tracker.images == [(step, {"validation/000_a_red_circle": (4, 32, 32, 3)}) for step in (2, 4)]
    assert tracker.config["steps"] == 4 and tracker.config["lr"] == 2e-4 and "sample_prompt" not in tracker.config


@pytest.mark.parametrize(
    "tracker,message",
    [
        ("mlflow", "error: --report-to must be one of none, tensorboard, wandb, not 'mlflow'"),
        (
            "tensorboard",
            "error: --report-to tensorboard: the tensorboard package is not installed (pip install tensorboard)",
        ),
        ("wandb", "error: --report-to wandb: the wandb package is not installed (pip install wandb)"),
    ],
)
def test_report_to_an_unknown_or_missing_tracker_is_one_line_before_any_model_loads(
    tiny_dir, tmp_path, capsys, monkeypatch, tracker, message
):
    import accelerate.utils

    from stillmoving.training import setup

    monkeypatch.setattr(accelerate.utils, "is_tensorboard_available", lambda: False)
    monkeypatch.setattr(accelerate.utils, "is_wandb_available", lambda: False)
    monkeypatch.setattr(setup, "load_t2v", lambda *_, **__: pytest.fail("a model was loaded"))
    args = ["motion-adapter", "train", "--model", tiny_dir, "-o", tmp_path / "out", "--sample-prompt", "a red circle"]
    code, _, err = run(capsys, monkeypatch, *args, *CLI_SMALL, "--report-to", tracker)
    assert (code, err.strip().splitlines()) == (2, [message])
    assert list(tmp_path.iterdir()) == []
