"""`customize --loss-guidance-scale G`: the frozen videos' loss fits classifier-free guidance's combination
eps(empty) + G (eps(prompt) - eps(empty)) of the adapted model, what sampling at guidance G uses (docs/method.md,
"Fitting what sampling uses: the loss at the guidance scale")."""

import pytest
import torch
from conftest import customized_with, differ
from test_guidance_preservation import TextModel, inputs, loss_inputs

from stillmoving.errors import StillMovingError
from stillmoving.losses import guided_prediction, video_loss
from stillmoving.training.config import CustomizeConfig
from stillmoving.training.spatial_stage import check_customize_inputs


def test_the_guided_prediction_is_the_combination_of_both_branches_in_one_batch():
    noisy, t, text, empty = inputs()
    model = TextModel(pull=1.5)
    calls = []
    model.register_forward_hook(lambda m, args, out: calls.append(len(args[0])))
    conditional, prediction = guided_prediction(model, noisy, t, text, (4.0, empty))
    cond, uncond = model(noisy, t, text), model(noisy, t, empty.expand(2, -1, -1))
    assert calls[0] == 4  # both branches in one batch of 2 + 2
    assert torch.equal(conditional, cond)
    assert torch.allclose(prediction, uncond + 4.0 * (cond - uncond))
    # at G = 1 the combination is the conditional prediction: the same loss as without guidance, to rounding
    _, one = guided_prediction(model, noisy, t, text, (1.0, empty))
    assert torch.allclose(one, cond)
    plain_conditional, plain = guided_prediction(model, noisy, t, text)
    assert plain is plain_conditional and torch.equal(plain, cond)


def test_video_loss_fits_the_guided_prediction_and_its_gradient_reaches_both_branches():
    s, clean, text, empty, draw = loss_inputs()
    model = TextModel(pull=1.5)
    guided = video_loss(model, s, clean, text, generators=draw(), guided=(4.0, empty))
    generators = draw()  # the same noise and timesteps as video_loss draws, item by item
    noise = torch.stack([torch.randn(clean.shape[1:], generator=g) for g in generators])
    timesteps = torch.cat([torch.randint(0, 1000, (1,), generator=g) for g in generators])
    noisy = s.add_noise(clean, noise, timesteps)
    with torch.no_grad():
        cond, uncond = model(noisy, timesteps, text), model(noisy, timesteps, empty.expand(2, -1, -1))
    assert torch.allclose(guided, (uncond + 4.0 * (cond - uncond) - noise).pow(2).mean())
    guided.backward()
    assert model.pull.grad is not None and model.pull.grad != 0


def test_bad_loss_guidance_settings_are_refused(tmp_path):
    base = dict(model="m", output=str(tmp_path), prompt=["a sks dog"])
    with pytest.raises(StillMovingError, match="--loss-guidance-scale"):
        check_customize_inputs(CustomizeConfig(**base, loss_guidance_scale=-1.0))
    with pytest.raises(StillMovingError, match="does not combine with --frozen-target t2i"):
        check_customize_inputs(CustomizeConfig(**base, loss_guidance_scale=4.0, frozen_target="t2i"))


def test_customize_with_a_loss_guidance_trains_other_adapters_and_records_it(tiny_dir, stage2_inputs, tmp_path):
    (plain, _), (guided, config) = (
        customized_with(tiny_dir, stage2_inputs, tmp_path / str(scale), loss_guidance_scale=scale) for scale in (1, 4)
    )
    assert config["loss_guidance_scale"] == 4 and differ(plain, guided)
