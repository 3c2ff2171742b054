"""The frame-agreement term on frozen videos (docs/method.md, "A term that makes the frames of a frozen video
agree"): the spread over frames of the predicted clean latent, weighted by min(1, 10 * SNR)."""

import pytest
import torch
from diffusers import DDPMScheduler

from stillmoving.errors import StillMovingError
from stillmoving.losses import frame_agreement, frame_deviation, predicted_clean, video_loss
from stillmoving.training.config import CustomizeConfig
from stillmoving.training.spatial_stage import check_customize_inputs


def scheduler(kind: str = "epsilon") -> DDPMScheduler:
    return DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, prediction_type=kind)


def frozen_clip(frames: int = 4) -> torch.Tensor:
    return torch.randn(2, 4, 1, 3, 3, generator=torch.Generator().manual_seed(0)).expand(2, 4, frames, 3, 3)


@pytest.mark.parametrize("kind", ["epsilon", "v_prediction", "sample"])
def test_a_perfect_denoiser_of_a_frozen_video_agrees(kind):
    s, clean = scheduler(kind), frozen_clip()
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([10, 900])
    noisy = s.add_noise(clean, noise, t)
    exact = {"epsilon": noise, "v_prediction": s.get_velocity(clean, noise, t), "sample": clean}[kind]
    assert torch.allclose(predicted_clean(s, noisy, exact, t), clean, atol=2e-4)
    assert frame_agreement(s, noisy, exact, t) < 1e-7


def test_for_epsilon_it_is_the_frame_varying_noise_error_weighted_by_min_ratio_10():
    s, clean = scheduler(), frozen_clip()
    noise, guess = (torch.randn(clean.shape, generator=torch.Generator().manual_seed(i)) for i in (1, 2))
    t = torch.tensor([50, 950])  # (1 - a_t) / a_t: below 10, far above it
    abar = s.alphas_cumprod[t]
    ratio = ((1 - abar) / abar).clamp(max=10).view(-1, 1, 1, 1, 1)
    expected = (ratio * frame_deviation(guess - noise) ** 2).mean()
    got = frame_agreement(s, s.add_noise(clean, noise, t), guess, t)
    assert torch.allclose(got, expected, rtol=1e-4)


def test_an_error_shared_by_all_frames_costs_nothing():
    s, clean = scheduler(), frozen_clip()
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([300, 600])
    shared = torch.randn(2, 4, 1, 3, 3).expand_as(clean)
    assert frame_agreement(s, s.add_noise(clean, noise, t), noise + shared, t) < 1e-7
    assert frame_agreement(s, s.add_noise(clean, noise, t), noise + torch.randn(clean.shape), t) > 1e-2


class NoisyGuess(torch.nn.Module):
    def forward(self, noisy, timesteps, text):
        return noisy * 0.5


def test_video_loss_adds_the_weighted_term_and_weight_0_is_the_plain_loss():
    s, clean = scheduler(), frozen_clip()
    draw = lambda: [torch.Generator().manual_seed(7), torch.Generator().manual_seed(8)]  # noqa: E731
    plain = video_loss(NoisyGuess(), s, clean, None, generators=draw())
    assert torch.equal(video_loss(NoisyGuess(), s, clean, None, generators=draw(), agreement=0.0), plain)
    one = video_loss(NoisyGuess(), s, clean, None, generators=draw(), agreement=1.0)
    three = video_loss(NoisyGuess(), s, clean, None, generators=draw(), agreement=3.0)
    assert one > plain
    assert torch.allclose(three - plain, 3 * (one - plain), rtol=1e-5)


def test_a_negative_weight_is_refused(tmp_path):
    cfg = CustomizeConfig(model="m", output=str(tmp_path), prompt=["a sks dog"], identifier="sks", frame_agreement=-1.0)
    with pytest.raises(StillMovingError, match="--frame-agreement"):
        check_customize_inputs(cfg)
