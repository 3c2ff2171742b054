"""The prior term on motion only: the frame-varying part of the denoising error (docs/method.md)."""

import pytest
import torch

from stillmoving.errors import StillMovingError
from stillmoving.losses import denoising_loss, frame_deviation
from stillmoving.training.config import CustomizeConfig
from stillmoving.training.spatial_stage import check_customize_inputs


def dyadic(*shape) -> torch.Tensor:
    """Small multiples of 1/4: sums of 4 of them and their quarter are exact in float32, so the means are too."""
    return torch.randint(-16, 16, shape, generator=torch.Generator().manual_seed(len(shape))).float() / 4


def test_a_frozen_video_has_no_frame_deviation():
    still = dyadic(2, 4, 1, 3, 3).expand(2, 4, 4, 3, 3)
    assert torch.equal(frame_deviation(still), torch.zeros_like(still))


def test_motion_only_ignores_errors_shared_by_all_frames():
    target = dyadic(2, 4, 4, 3, 3)
    appearance_error = dyadic(2, 4, 1, 3, 3)  # the same wrong colour in every frame
    assert denoising_loss(target + appearance_error, target, motion_only=True) == 0
    assert denoising_loss(target + appearance_error, target) > 0


def test_motion_only_equals_the_full_loss_on_an_error_with_zero_frame_mean():
    target = torch.randn(2, 4, 6, 3, 3)
    error = frame_deviation(torch.randn(2, 4, 6, 3, 3))
    full, motion = denoising_loss(target + error, target), denoising_loss(target + error, target, motion_only=True)
    assert torch.allclose(full, motion, rtol=1e-6, atol=0)


def test_an_unknown_prior_loss_is_refused(tmp_path):
    cfg = CustomizeConfig(
        model="m", output=str(tmp_path), prompt=["a sks dog"], identifier="sks", prior_loss="appearance"
    )
    with pytest.raises(StillMovingError, match="--prior-loss must be one of video, motion"):
        check_customize_inputs(cfg)
