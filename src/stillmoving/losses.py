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


AGREEMENT_SNR = 10.0  # frame_agreement weighs a step by min(1, AGREEMENT_SNR * SNR): bounded at high noise


def predicted_clean(scheduler: DDPMScheduler, noisy: torch.Tensor, prediction: torch.Tensor, timesteps: torch.Tensor):
    """x_0 implied by the denoiser's output at x_t, for the scheduler's `prediction_type`."""
    abar = scheduler.alphas_cumprod.to(device=noisy.device, dtype=torch.float32)[timesteps]
    abar = abar.view(-1, *[1] * (noisy.dim() - 1))
    noisy, prediction = noisy.float(), prediction.float()
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        return (noisy - (1 - abar).sqrt() * prediction) / abar.sqrt()
    if kind == "v_prediction":
        return abar.sqrt() * noisy - (1 - abar).sqrt() * prediction
    if kind == "sample":
        return prediction
    raise ValueError(f"unsupported prediction_type {kind!r}")


def frame_agreement(
    scheduler: DDPMScheduler, noisy: torch.Tensor, prediction: torch.Tensor, timesteps: torch.Tensor
) -> torch.Tensor:
    """How much the frames of a FROZEN video's predicted clean latent disagree (docs/method.md, "A term that
    makes the frames of a frozen video agree"): the mean square of `frame_deviation(x0_hat)` over (b, c, f, h, w),
    each sample weighted by min(1, AGREEMENT_SNR * SNR(t)). A frozen video's clean frames are equal, so this is 0
    for a perfect denoiser; for epsilon prediction it equals min((1 - a_t) / a_t, 10) times the frame-varying
    part of the noise error."""
    spread = frame_deviation(predicted_clean(scheduler, noisy, prediction, timesteps)).pow(2).flatten(1).mean(1)
    weights = torch.clamp(AGREEMENT_SNR * compute_snr(scheduler, timesteps).to(spread), max=1.0)
    return (spread * weights).mean()


def guidance_change(model, noisy, timesteps, text, prediction, empty, unadapted) -> torch.Tensor:
    """How much the adapters change the prompt's pull, the difference classifier-free guidance scales: the mean
    square of (eps_A(text) - eps_A(empty)) - (eps_0(text) - eps_0(empty)), A with the adapters (`prediction` is
    eps_A(text)), 0 without them (`unadapted()`, a context in which the model runs without its adapters)."""
    empty = empty.expand(len(text), *empty.shape[1:])
    uncond = model(noisy, timesteps, empty)
    with torch.no_grad(), unadapted():
        pull = model(noisy, timesteps, text) - model(noisy, timesteps, empty)
    return ((prediction.float() - uncond.float()) - pull.float()).pow(2).mean()


def video_loss(
    model: torch.nn.Module,
    scheduler,
    latents: torch.Tensor,
    text: torch.Tensor,
    snr_gamma: float | None = None,
    generators: list[torch.Generator] | None = None,
    motion_only: bool = False,
    agreement: float = 0.0,
    teacher=None,
    guidance: tuple | None = None,
    min_timestep: int = 0,
    guided: tuple | None = None,
) -> torch.Tensor:
    """The diffusion denoising loss of one batch of video latents (b, c, f, h, w); noise and timesteps come
    from the global RNG, or from one generator per item (`ItemRandomness`). `motion_only`: see `denoising_loss`;
    `agreement`: the weight of `frame_agreement`, for frozen videos. `teacher(noisy, timesteps)`, when given, is
    the target instead of the noise (`--frozen-target t2i`: the customized T2I's prediction, frame by frame).
    Timesteps are drawn uniformly from [min_timestep, num_train_timesteps) (`--spatial-min-timestep`). `guided`:
    (scale, empty text row), the loss fits classifier-free guidance's combination (`guided_prediction`)."""
    top = scheduler.config.num_train_timesteps
    if generators is None:
        noise = torch.randn_like(latents)
        timesteps = torch.randint(min_timestep, top, (latents.shape[0],), device=latents.device)
    else:
        noise = torch.stack([torch.randn(latents.shape[1:], generator=g) for g in generators]).to(latents)
        timesteps = torch.cat([torch.randint(min_timestep, top, (1,), generator=g) for g in generators]).to(
            latents.device
        )
    noisy = scheduler.add_noise(latents, noise, timesteps)
    conditional, prediction = guided_prediction(model, noisy, timesteps, text, guided)
    weights = snr_weights(scheduler, timesteps, snr_gamma) if snr_gamma else None
    if teacher is None:
        target = diffusion_target(scheduler, latents, noise, timesteps)
    else:
        with torch.no_grad():
            target = teacher(noisy, timesteps)
    loss = denoising_loss(prediction, target, weights, motion_only)
    if agreement:  # frozen videos only: their clean frames are equal
        loss = loss + agreement * frame_agreement(scheduler, noisy, prediction, timesteps)
    if guidance is not None:  # (weight, empty text row, unadapted context)
        weight, empty, unadapted = guidance
        loss = loss + weight * guidance_change(model, noisy, timesteps, text, conditional, empty, unadapted)
    return loss


def guided_prediction(model, noisy, timesteps, text, guided: tuple | None = None):
    """(eps(text), the prediction the loss fits): eps(text) itself, or with `guided` = (scale G, empty text row)
    classifier-free guidance's combination eps(empty) + G (eps(text) - eps(empty)), both in one batch through the
    same model, so the loss sees what sampling at guidance G uses (`--loss-guidance-scale`)."""
    if guided is None:
        prediction = model(noisy, timesteps, text)
        return prediction, prediction
    scale, empty = guided
    empty = empty.expand(len(text), *empty.shape[1:])
    both = model(torch.cat([noisy, noisy]), torch.cat([timesteps, timesteps]), torch.cat([text, empty]))
    conditional, unconditional = both.chunk(2)
    return conditional, unconditional + scale * (conditional - unconditional)
