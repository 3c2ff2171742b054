"""The diffusion denoising loss every Still-Moving stage trains with (docs/method.md, stages 1 and 2).

Both adapters train with "the ordinary diffusion denoising loss": noise a clean latent x_0 to x_t with the
video model's own noise schedule, predict, and regress onto the target the scheduler's
`prediction_type` implies. Optional min-SNR-gamma weighting (Hang et al. 2023) is diffusers' recipe.
"""

from __future__ import annotations

import torch
from diffusers import DDPMScheduler
from diffusers.training_utils import compute_snr


def diffusion_target(
    scheduler: DDPMScheduler, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor
) -> torch.Tensor:
    """What the denoiser should output: eps (epsilon), v = alpha_t eps - sigma_t x_0 (v_prediction), or x_0."""
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        return noise
    if kind == "v_prediction":
        return scheduler.get_velocity(latents, noise, timesteps)
    if kind == "sample":
        return latents
    raise ValueError(f"unsupported prediction_type {kind!r}")


def snr_weights(scheduler: DDPMScheduler, timesteps: torch.Tensor, gamma: float) -> torch.Tensor:
    """Min-SNR-gamma loss weights per sample: min(SNR, gamma) / SNR (eps) or / (SNR + 1) (v)."""
    snr = compute_snr(scheduler, timesteps)
    clipped = torch.clamp(snr, max=gamma)
    if scheduler.config.prediction_type == "v_prediction":
        return clipped / (snr + 1)
    if scheduler.config.prediction_type == "sample":
        return clipped
    return clipped / snr


def frame_deviation(x: torch.Tensor) -> torch.Tensor:
    """x (b, c, f, h, w) minus its mean over frames: the part that differs from frame to frame."""
    return x - x.mean(dim=2, keepdim=True)


def denoising_loss(
    prediction: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None, motion_only: bool = False
) -> torch.Tensor:
    """Mean squared error per sample (any trailing shape), optionally weighted per sample, averaged.

    `motion_only` (videos (b, c, f, h, w)) keeps only the frame-varying part of the error,
    `frame_deviation(prediction - target)`: what the prediction gets wrong about how frames differ, with the
    part common to all frames (the appearance) left out (docs/method.md, "When the spatial stage hurts").
    """
    error = prediction.float() - target.float()
    if motion_only:
        error = frame_deviation(error)
    per_sample = error.pow(2).flatten(1).mean(1)
    if weights is not None:
        per_sample = per_sample * weights.to(per_sample)
    return per_sample.mean()
