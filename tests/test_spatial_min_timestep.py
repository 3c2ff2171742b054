"""`--spatial-min-timestep T`: the spatial adapters train on, and act at, timesteps >= T only (docs/method.md, "Where
in denoising the adapters repair and where they cost")."""

import sys

import pytest
import torch
from conftest import CALL, PROMPT, perturb, tiny_customize
from diffusers import DDPMScheduler
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from stillmoving import cli
from stillmoving.adapters.spatial import MIN_TIMESTEP_KEY, SpatialAdapters
from stillmoving.cli import app
from stillmoving.errors import StillMovingError
from stillmoving.losses import video_loss
from stillmoving.training.spatial_stage import train_spatial_adapters


def trained_adapters(unet, min_timestep: int = 0) -> SpatialAdapters:
    adapters = SpatialAdapters.for_unet(unet, rank=2, generator=torch.Generator().manual_seed(0))
    perturb([layer.up for layer in adapters.layers], seed=1, scale=0.5)
    adapters.min_timestep = min_timestep
    return adapters


def unet_call(pipe) -> tuple[tuple, dict]:
    """The arguments of the UNet's first call in a generation (the latents and text of CALL's video)."""
    seen = []
    handle = pipe.unet.register_forward_pre_hook(lambda m, a, k: seen.append((a, k)) or None, with_kwargs=True)
    try:
        pipe(PROMPT, generator=torch.Generator().manual_seed(0), **{**CALL, "num_inference_steps": 1})
    finally:
        handle.remove()
    return seen[0]


def unet_output(unet, call, t: int) -> torch.Tensor:
    (sample, _, *rest), kwargs = call
    with torch.no_grad():
        return unet(sample, torch.tensor(t), *rest, **kwargs).sample


def test_the_adapters_act_exactly_at_timesteps_from_min_timestep_up(tiny_pipe):
    unet, call = tiny_pipe.unet, unet_call(tiny_pipe)
    plain = {t: unet_output(unet, call, t) for t in (10, 499, 500, 900)}
    adapters = trained_adapters(unet).attach(unet)
    adapted = {t: unet_output(unet, call, t) for t in plain}
    assert all(not torch.equal(adapted[t], plain[t]) for t in plain)  # the adapters change every call at T = 0
    adapters.min_timestep = 500
    gated = {t: unet_output(unet, call, t) for t in plain}
    for t in (10, 499):
        assert torch.equal(gated[t], plain[t])  # below T: the UNet's own output, bit for bit
    for t in (500, 900):
        assert torch.equal(gated[t], adapted[t])  # from T up: the adapters as without a gate
    with adapters.detached(unet):
        assert torch.equal(unet_output(unet, call, 900), plain[900])
    assert torch.equal(unet_output(unet, call, 900), adapted[900])  # re-attached with the gate's pre-hook


def test_generation_with_the_gate_lies_between_naive_injection_and_the_adapters(tiny_pipe):
    """With T above every sampling timestep the video is naive injection's exactly; at T = 0 the adapters'."""

    def video(min_timestep):
        if min_timestep is not None:
            tiny_pipe.load_spatial_adapters(trained_adapters(tiny_pipe.unet), min_timestep=min_timestep)
        return tiny_pipe(PROMPT, generator=torch.Generator().manual_seed(0), **CALL).frames

    naive = video(None)
    assert torch.equal(video(999), naive)  # both sampling timesteps are below 999
    full = video(0)
    assert not torch.equal(full, naive)
    between = video(200)  # the first step adapted, the last not
    assert not torch.equal(between, naive) and not torch.equal(between, full)


def test_min_timestep_is_saved_and_read_back_and_old_files_mean_every_timestep(tiny_pipe, tmp_path):
    adapters = trained_adapters(tiny_pipe.unet, min_timestep=250)
    path = adapters.save(tmp_path / "a.safetensors")
    assert SpatialAdapters.load(path).min_timestep == 250
    with safe_open(str(path), "pt") as f:
        metadata = f.metadata()
    assert metadata[MIN_TIMESTEP_KEY] == "250"
    tensors = load_file(str(path))
    old = {k: v for k, v in metadata.items() if k != MIN_TIMESTEP_KEY}
    save_file(tensors, str(tmp_path / "old.safetensors"), metadata=old)
    assert SpatialAdapters.load(tmp_path / "old.safetensors").min_timestep == 0
    save_file(tensors, str(tmp_path / "bad.safetensors"), metadata={**old, MIN_TIMESTEP_KEY: "late"})
    with pytest.raises(StillMovingError, match="min_timestep is not an integer"):
        SpatialAdapters.load(tmp_path / "bad.safetensors")


def test_video_loss_draws_timesteps_from_min_timestep_up():
    seen = []

    def model(noisy, timesteps, text):
        seen.append(timesteps.clone())
        return torch.zeros_like(noisy)

    s = DDPMScheduler(num_train_timesteps=1000)
    clean = torch.zeros(64, 4, 2, 2, 2)
    video_loss(model, s, clean, torch.zeros(64, 3, 4), min_timestep=900)
    drawn = lambda: [torch.Generator().manual_seed(i) for i in range(8)]  # noqa: E731
    video_loss(model, s, clean[:8], torch.zeros(8, 3, 4), generators=drawn())
    video_loss(model, s, clean[:8], torch.zeros(8, 3, 4), generators=drawn(), min_timestep=990)
    assert seen[0].min() >= 900 and seen[0].max() <= 999
    assert seen[1].min() < 900  # the default: every timestep
    assert seen[2].min() >= 990


def test_customize_trains_with_it_and_records_it_for_generate(tiny_dir, stage2_inputs, tmp_path, monkeypatch):
    drawn = []
    import stillmoving.training.spatial_stage as stage

    real = stage.video_loss

    def spy(*args, **kwargs):
        drawn.append(kwargs.get("min_timestep"))
        return real(*args, **kwargs)

    monkeypatch.setattr(stage, "video_loss", spy)
    path = train_spatial_adapters(tiny_customize(tiny_dir, stage2_inputs, tmp_path / "run", spatial_min_timestep=400))
    assert drawn and set(drawn) == {400}
    assert SpatialAdapters.load(path).min_timestep == 400
    summary = CliRunner().invoke(app, ["info", str(path)])
    assert summary.exit_code == 0 and "min_timestep" in summary.output


@pytest.mark.parametrize(
    "value, message",
    [
        ("-1", "error: --spatial-min-timestep must be at least 0, not -1"),
        ("1000", "error: --spatial-min-timestep 1000: the scheduler has 1000 timesteps; give a lower one"),
    ],
)
def test_customize_refuses_impossible_values_in_one_line(
    tiny_dir, stage2_inputs, tmp_path, capsys, monkeypatch, value, message
):
    """Below 0 before any model loads; at or above the scheduler's timesteps once V's scheduler is read, before any
    sampling or writing (generate's cases: tests/test_cli.py)."""
    args = ["customize", "--model", str(tiny_dir), "-o", str(tmp_path / "run"), "--prompt", "a sks dog"]
    args += ["--motion-adapter", str(stage2_inputs["motion_adapter"]), "--customized", str(stage2_inputs["customized"])]
    args += ["--spatial-min-timestep", value]
    monkeypatch.setattr(sys, "argv", ["stillmoving", *args])
    with pytest.raises(SystemExit) as exit:
        cli.main()
    err = capsys.readouterr().err
    assert exit.value.code == 2
    (line,) = [line for line in err.splitlines() if "error:" in line]
    assert line == message and "Traceback" not in err
    assert not (tmp_path / "run" / "spatial_adapters.safetensors").exists()
