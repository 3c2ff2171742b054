"""`customize --frozen-target t2i` (the default): frozen videos fitted to the customized T2I's own prediction for
each frame instead of the noise (docs/method.md, "Why the paper's target erases the subject")."""

import json

import pytest
import torch
from conftest import tiny_customize
from diffusers import DDPMScheduler

from stillmoving.backends import backend_of
from stillmoving.errors import StillMovingError
from stillmoving.losses import denoising_loss, video_loss
from stillmoving.training.config import CustomizeConfig
from stillmoving.training.spatial_stage import check_customize_inputs, t2i_prediction, train_spatial_adapters


class HalfGuess(torch.nn.Module):
    def forward(self, noisy, timesteps, text):
        return noisy * 0.5


def test_with_a_teacher_the_loss_fits_its_prediction_not_the_noise():
    s = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    clean = torch.randn(2, 4, 1, 3, 3, generator=torch.Generator().manual_seed(0)).expand(2, 4, 4, 3, 3)
    draw = lambda: [torch.Generator().manual_seed(7), torch.Generator().manual_seed(8)]  # noqa: E731
    seen = {}

    def teacher(noisy, timesteps):
        seen["noisy"], seen["t"] = noisy, timesteps
        return noisy * 0.3

    got = video_loss(HalfGuess(), s, clean, None, generators=draw(), teacher=teacher)
    # the same noise and timesteps as without a teacher: only the target changes
    generators = draw()
    noise = torch.stack([torch.randn(clean.shape[1:], generator=g) for g in generators])
    t = torch.cat([torch.randint(0, s.config.num_train_timesteps, (1,), generator=g) for g in generators])
    noisy = s.add_noise(clean, noise, t)
    assert torch.equal(seen["noisy"], noisy) and torch.equal(seen["t"], t)
    assert torch.equal(got, denoising_loss(noisy * 0.5, noisy * 0.3))
    assert not torch.equal(got, video_loss(HalfGuess(), s, clean, None, generators=draw()))


def test_the_teacher_is_the_t2i_applied_to_each_frame_alone(tiny_pipe):
    backend = backend_of(tiny_pipe)
    unet = backend.t2i_unet(tiny_pipe.unet).eval()
    gen = torch.Generator().manual_seed(0)
    noisy = torch.randn(2, 4, 3, 4, 4, generator=gen)
    t = torch.tensor([10, 700])
    text = torch.randn(2, 8, unet.config.cross_attention_dim, generator=gen)
    with torch.no_grad():
        got = t2i_prediction(backend, unet, noisy, t, text)
        for b in range(2):
            for f in range(3):
                alone = unet(noisy[b : b + 1, :, f], t[b : b + 1], encoder_hidden_states=text[b : b + 1]).sample
                assert torch.allclose(got[b : b + 1, :, f], alone, atol=1e-5), (b, f)
    assert got.shape == noisy.shape


def test_an_unknown_target_is_refused_before_loading(tmp_path):
    base = dict(model=str(tmp_path), output=str(tmp_path / "out"), prompt=["a sks dog"], identifier="sks")
    with pytest.raises(StillMovingError, match="--frozen-target must be one of noise, t2i"):
        check_customize_inputs(CustomizeConfig(**base, frozen_target="image"))
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "AnimateDiffSDXLPipeline"}))
    for target in ("noise", "t2i"):  # both targets, every family: SDXL and ZeroScope train with them in their tests
        check_customize_inputs(CustomizeConfig(**base, frozen_target=target))


def test_customize_with_the_t2i_target_trains_other_adapters_and_records_it(tiny_dir, tmp_path, stage2_inputs, caplog):
    from safetensors.torch import load_file

    files = {}
    for target in ("noise", "t2i"):
        cfg = tiny_customize(
            tiny_dir, stage2_inputs, tmp_path / target, prior_prompt=["a dog"], frozen_target=target
        )  # prior_prompt unused: no prior term by default, and a warning says so
        files[target] = load_file(train_spatial_adapters(cfg))
        record = json.loads((tmp_path / target / "customize_run.json").read_text())
        assert record["config"]["frozen_target"] == target
        assert (record["prior_videos"], record["config"]["image_guidance_scale"]) == (0, 1.0)
    assert caplog.text.count("--prior-loss-weight is 0 (the default): no prior videos are used") == 2
    assert files["noise"].keys() == files["t2i"].keys()
    assert any(not torch.equal(files["noise"][k], files["t2i"][k]) for k in files["noise"])
