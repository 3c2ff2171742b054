"""`customize --guidance-preservation W`: a term that keeps the prompt's pull, eps(prompt) - eps(empty prompt), as it
is without the spatial adapters (docs/method.md, "What Still-Moving's adapters do to a mildly drifted subject")."""

import contextlib

import pytest
import torch
from conftest import customized_with, differ
from diffusers import DDPMScheduler

from stillmoving.errors import StillMovingError
from stillmoving.losses import guidance_change, video_loss
from stillmoving.training.config import CustomizeConfig
from stillmoving.training.spatial_stage import check_customize_inputs


class TextModel(torch.nn.Module):
    """eps = a * x + b * mean(text), with a switch that plays the adapters' part: `adapted` scales the text's pull."""

    def __init__(self, pull: float = 1.0):
        super().__init__()
        self.pull = torch.nn.Parameter(torch.tensor(pull))
        self.adapted = True

    def forward(self, noisy, timesteps, text):
        scale = self.pull if self.adapted else torch.tensor(1.0)
        return 0.5 * noisy + scale * text.mean(dim=(1, 2)).view(-1, 1, 1, 1, 1)


def unadapted_of(model):
    @contextlib.contextmanager
    def unadapted():
        model.adapted = False
        try:
            yield
        finally:
            model.adapted = True

    return unadapted


def inputs():
    gen = torch.Generator().manual_seed(0)
    noisy = torch.randn(2, 4, 3, 4, 4, generator=gen)
    text = torch.randn(2, 5, 6, generator=gen) + 1.0
    empty = torch.randn(1, 5, 6, generator=gen)
    return noisy, torch.tensor([10, 700]), text, empty


def test_the_term_is_zero_when_the_adapters_keep_the_pull_and_exact_otherwise():
    noisy, t, text, empty = inputs()
    model = TextModel(pull=1.0)
    prediction = model(noisy, t, text)
    assert guidance_change(model, noisy, t, text, prediction, empty, unadapted_of(model)) == 0
    model = TextModel(pull=1.5)  # the adapters scale the pull by 1.5: the change is 0.5 * (mean(text) - mean(empty))
    got = guidance_change(model, noisy, t, text, model(noisy, t, text), empty, unadapted_of(model))
    pull = text.mean(dim=(1, 2)) - empty.mean()
    assert torch.allclose(got, (0.5 * pull).pow(2).mean())
    got.backward()
    assert model.pull.grad is not None and model.pull.grad != 0
    assert model.adapted  # the context put the adapters back


def loss_inputs():
    """A scheduler, two frozen videos (b, c, f, h, w), their text and the empty text, and per-item generators."""
    s = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    _, _, text, empty = inputs()
    clean = torch.randn(2, 4, 1, 4, 4, generator=torch.Generator().manual_seed(1)).expand(2, 4, 3, 4, 4)
    return s, clean, text, empty, lambda: [torch.Generator().manual_seed(7), torch.Generator().manual_seed(8)]


def test_video_loss_adds_the_weighted_term():
    s, clean, text, empty, draw = loss_inputs()
    model = TextModel(pull=1.5)
    plain = video_loss(model, s, clean, text, generators=draw())
    one = video_loss(model, s, clean, text, generators=draw(), guidance=(1.0, empty, unadapted_of(model)))
    three = video_loss(model, s, clean, text, generators=draw(), guidance=(3.0, empty, unadapted_of(model)))
    assert one > plain
    assert torch.allclose(three - plain, 3 * (one - plain), rtol=1e-5)


def test_a_negative_weight_is_refused(tmp_path):
    cfg = CustomizeConfig(model="m", output=str(tmp_path), prompt=["a sks dog"], guidance_preservation=-1.0)
    with pytest.raises(StillMovingError, match="--guidance-preservation"):
        check_customize_inputs(cfg)


def test_customize_with_the_term_trains_other_adapters_and_records_it(tiny_dir, tmp_path, stage2_inputs):
    (plain, _), (kept, config) = (
        customized_with(tiny_dir, stage2_inputs, tmp_path / str(weight), guidance_preservation=weight)
        for weight in (0.0, 100.0)
    )
    assert config["guidance_preservation"] == 100.0 and differ(plain, kept)
