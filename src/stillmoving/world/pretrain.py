"""Pretrain the embedded world's text-to-video model with AnimateDiff's recipe, on CPU.

Three phases, each a plain loop over cached tensors, each saving a standard diffusers folder under --out:
  vae     AutoencoderKL on world frames: L1 + MSE reconstruction + a small KL; `scaling_factor` is then
          set to 1 / std of the latents, so diffusion sees unit-variance latents (the SD convention).
  t2i     UNet2DConditionModel and CLIPTextModel from scratch on single frames and their captions, the
          diffusion loss on SD's noise schedule, captions dropped 10% of the time for classifier-free
          guidance. Saved as a StableDiffusionPipeline: this is the world's T2I model M.
  motion  AnimateDiff inflation: the T2I's UNet plus a MotionAdapter whose proj_out starts at zero, so the
          video model begins as the T2I applied per frame; only the motion modules train, on videos
          whose captions name the direction. `probe.monitor` samples videos while it learns.
The result is an AnimateDiffPipeline folder (`pipeline/`) that `StillMovingPipeline.from_pretrained` loads,
plus `pretrain_log.json` (steps, wall time, losses, monitor figures).

A fourth phase, not part of `all`, makes the world's second video model from the first:
  joint   the jointly trained kind (ModelScope/ZeroScope, VideoCrafter, LaVie, AnimateDiff v3's domain
          adapter): every UNet weight of `pipeline/` (or `joint_from`), spatial layers included, trains
          on videos whose captions often leave the object's look unnamed or are empty, so the temporal
          layers must carry the look from frame to frame; writes `joint/`.
Another, not part of `all`, fine-tunes the VAE's decoder, as SD's own decoder was (sd-vae-ft-mse):
  decoder  the encoder stays as it is (so the latent space, and every UNet trained in it, stays valid); the
          decoder trains on the world's frames, on random looks that are not the world's
          (`synthetic.generic_images`) and on renders of the held-out looks, so it draws what a customized UNet
          learns, not only the base world (the first decoder drew the held-out star's latents as a white blob;
          the T2I still never sees a held-out look). Writes `vae_decoder/`.
A fifth, not part of `all` either, makes the world's ControlNet (the paper's conditional generation):
  controlnet  a diffusers ControlNetModel made from the AnimateDiff folder's T2I UNet (`ControlNetModel.from_unet`:
          its encoder's weights, zero convolutions out), trained on single frames of the world's videos
          conditioned on the object's silhouette in that frame (white on black, `synthetic.silhouette_video`),
          the T2I and text encoder frozen; used per frame by the video model, as SD1.5 ControlNets are with
          AnimateDiff. Writes `controlnet/`.

Measured limit: the motion modules learn coherent motion of the data's magnitude within ~500 steps, but
not to follow the direction word (`probe.direction_gap` stays ~0). A T2I trained on single frames has no use
for direction words, so its frozen spatial features change by ~1% between "left" and "right"; trained on one
direction only, the same motion modules do learn that direction within 600 steps.

    python -m stillmoving.world.pretrain --out /tmp/world_runs/full [--phase all] [--threads 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import (
    AnimateDiffControlNetPipeline,
    AnimateDiffPipeline,
    AutoencoderKL,
    ControlNetModel,
    StableDiffusionPipeline,
)
from diffusers.optimization import get_scheduler
from diffusers.training_utils import compute_snr
from tqdm.auto import tqdm
from transformers import CLIPTokenizer

from stillmoving.data.frozen import encode_pixels
from stillmoving.files import write_text
from stillmoving.injection import relative_distance, t2i_unet_from_t2v
from stillmoving.losses import denoising_loss, diffusion_target, snr_weights
from stillmoving.training.setup import VideoDenoiser
from stillmoving.validation import GENERATION_DEFAULTS
from stillmoving.world import metrics, probe
from stillmoving.world.architectures import (
    PRESETS,
    build_motion_modules,
    build_scheduler,
    build_text_encoder,
    build_unet,
    build_vae,
)
from stillmoving.world.synthetic import (
    caption,
    generic_images,
    make_image_dataset,
    make_video_dataset,
    object_trajectory,
    reference_track,
    silhouette_video,
    world_vocabulary,
)
from stillmoving.world.tokenizer import build_tokenizer

PHASES = ("vae", "t2i", "motion")  # `--phase all`
EXTRA_PHASES = ("joint", "controlnet", "decoder")
log = logging.getLogger("stillmoving.world.pretrain")


@dataclass
class PhaseConfig:
    """What every phase's loop needs."""

    steps: int  # optimizer steps
    batch_size: int  # frames (vae, t2i) or videos (motion) per step
    learning_rate: float  # peak AdamW learning rate, reached after the warmup
    warmup_steps: int  # linear warmup, then cosine decay to zero
    caption_dropout: float = 0.0  # fraction of captions replaced by "" so classifier-free guidance works
    snr_gamma: float = 0.0  # min-SNR-gamma loss weighting (Hang et al. 2023); 0 = plain MSE
    kl_weight: float = 0.0  # vae: weight of KL(q(z|x) || N(0, I)) per latent element
    object_weight: float = 0.0  # vae: extra reconstruction weight on object pixels (object_mask)
    static_captions: float = 0.0  # t2i: fraction of captions without the motion words, as images are captioned
    appearance_dropout: float = 0.0  # fraction of captions that leave the object's colour and texture unnamed
    train_text_encoder: bool = True  # train CLIP too (t2i: from its seeded init; motion: see train_motion)
    train_spatial: bool = True  # joint: the UNet's spatial layers train too (False: its motion modules only)
    token_identity_weight: float = 0.0  # t2i: loss for decoding each token from its CLIP state (see train_t2i)
    high_noise_cap: float = 0.0  # motion: cap of `high_noise_weights`; 0 = min-SNR-gamma / plain MSE instead
    min_timestep: int = 0  # motion: half of each batch draws timesteps from [min_timestep, T)
    monitor_every: int = 0  # sample and score a few videos/images every this many steps; 0 = at the end only


@dataclass
class PretrainConfig:
    """The whole run; `--set phase.field=value` overrides any field, unknown keys are an error."""

    preset: str = "world"  # key of architectures.PRESETS
    seed: int = 0  # seeds the data, the initialisation and every random draw of the loops
    resolution: int = 32  # frame side in pixels
    num_frames: int = 8  # frames per training video (the motion modules' clip length)
    num_videos: int = 6000  # rendered training videos; the vae and t2i phases use their frames
    monitor_videos: int = 24  # prompts sampled by the monitor (directions cycle); fewer are too noisy
    monitor_steps: int = 15  # DDIM steps of the monitor's samples
    guidance_scale: float = 4.0  # classifier-free guidance of the monitor's samples
    vae: PhaseConfig = field(
        default_factory=lambda: PhaseConfig(
            steps=2000, batch_size=16, learning_rate=2e-3, warmup_steps=50, kl_weight=1e-6, object_weight=20.0
        )
    )
    t2i: PhaseConfig = field(
        default_factory=lambda: PhaseConfig(
            steps=3000,
            batch_size=32,
            learning_rate=1e-3,
            warmup_steps=100,
            caption_dropout=0.1,
            snr_gamma=5.0,
            static_captions=0.3,
            token_identity_weight=0.1,
            monitor_every=1000,
        )
    )
    motion: PhaseConfig = field(
        default_factory=lambda: PhaseConfig(
            steps=2500,
            batch_size=8,
            learning_rate=1e-3,
            warmup_steps=100,
            caption_dropout=0.1,
            high_noise_cap=20.0,
            min_timestep=750,
            train_text_encoder=False,
            monitor_every=500,
        )
    )
    joint: PhaseConfig = field(
        default_factory=lambda: PhaseConfig(
            steps=1500,
            batch_size=8,
            learning_rate=2e-4,
            warmup_steps=50,
            caption_dropout=0.3,
            appearance_dropout=0.3,
            high_noise_cap=20.0,
            min_timestep=750,
            train_text_encoder=False,
            monitor_every=500,
        )
    )
    controlnet: PhaseConfig = field(
        default_factory=lambda: PhaseConfig(
            steps=1200, batch_size=32, learning_rate=1e-3, warmup_steps=50, caption_dropout=0.1, snr_gamma=5.0
        )
    )
    decoder: PhaseConfig = field(
        default_factory=lambda: PhaseConfig(
            steps=4000, batch_size=32, learning_rate=1e-3, warmup_steps=100, object_weight=20.0
        )
    )
    decoder_from: str = ""  # decoder: the VAE folder it fine-tunes; "" = <out>/pipeline/vae
    generic_images: int = 6000  # decoder: random looks rendered for it (with held_out_images: half of each batch)
    held_out_images: int = 3000  # decoder: renders of the held-out looks (star, crayon, neon), a third each
    joint_from: str = ""  # joint: the AnimateDiff folder it starts from; "" = <out>/pipeline
    controlnet_from: str = ""  # controlnet: the AnimateDiff folder whose T2I it conditions; "" = <out>/pipeline
    soft_silhouettes: float = 0.5  # controlnet: share of anti-aliased (not binary) silhouettes among its inputs


def override(cfg: PretrainConfig, assignment: str) -> None:
    """Apply one `key=value` or `phase.key=value`, cast to the field's type."""
    key, _, value = assignment.partition("=")
    *path, name = key.split(".")
    target = getattr(cfg, path[0]) if path else cfg
    fields = {f.name: f for f in dataclasses.fields(target)}
    if (
        len(path) > 1
        or (path and path[0] not in PHASES + EXTRA_PHASES)
        or name not in fields
        or dataclasses.is_dataclass(getattr(target, name))
    ):
        raise KeyError(f"unknown setting {key!r}")
    kind = type(getattr(target, name))
    setattr(target, name, value.lower() in ("1", "true", "yes") if kind is bool else kind(value))


# ----------------------------------------------------------------------------- data


def as_pixels(images: np.ndarray) -> torch.Tensor:
    """(n, 3, h, w) float pixels in [-1, 1] of uint8 images (n, h, w, 3)."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0


class WorldData:
    """The rendered training videos, their captions and tokens, all made once from the seed."""

    def __init__(self, cfg: PretrainConfig, tokenizer: CLIPTokenizer):
        samples = make_video_dataset(cfg.num_videos, cfg.seed, cfg.num_frames, cfg.resolution)
        self.videos = np.stack([s.pixels for s in samples])  # uint8 (n, f, h, w, 3)
        self.specs = [s.spec for s in samples]
        self.captions = [s.caption for s in samples]
        self.static_captions = [caption(s.spec, motion=False) for s in samples]
        self.unnamed_look_captions = [caption(s.spec, appearance=False) for s in samples]
        self.tokenizer = tokenizer
        self.resolution = cfg.resolution
        self._silhouettes: dict[bool, np.ndarray] = {}

    def silhouettes(self, soft: bool) -> np.ndarray:
        """uint8 (n, f, h, w) object silhouettes of every video (binary, or anti-aliased), made on first use."""
        if soft not in self._silhouettes:
            f, r = self.videos.shape[1], self.resolution
            self._silhouettes[soft] = np.stack(
                [silhouette_video(spec, object_trajectory(spec, f, r), r, soft)[..., 0] for spec in self.specs]
            )
        return self._silhouettes[soft]

    @property
    def num_frames(self) -> int:
        """Frames of all videos together."""
        return self.videos.shape[0] * self.videos.shape[1]

    def tokens(self, prompts: list[str]) -> torch.Tensor:
        return self.tokenizer(
            prompts,
            padding="max_length",
            max_length=self.tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids

    def frames(self, video_ids: torch.Tensor, frame_ids: torch.Tensor) -> torch.Tensor:
        """(b, 3, h, w) float pixels in [-1, 1] of the chosen frames."""
        return as_pixels(self.videos[video_ids.numpy(), frame_ids.numpy()])

    @torch.no_grad()
    def latents(self, vae: AutoencoderKL) -> torch.Tensor:
        """(n, 4, f, h', w') diffusion-space latents of every frame (posterior means)."""
        n, f = self.videos.shape[:2]
        chunks = []
        for start in range(0, n, 64):  # a chunk of frames at a time: all of them as floats would be large
            ids = torch.arange(start, min(start + 64, n))
            pixels = self.frames(ids.repeat_interleave(f), torch.arange(f).repeat(len(ids)))
            chunks.append(encode_pixels(vae, pixels, batch_size=256).unflatten(0, (len(ids), f)))
        return torch.cat(chunks).transpose(1, 2).contiguous()


def choose_captions(data: WorldData, video_ids: torch.Tensor, phase: PhaseConfig) -> list[str]:
    """Each item's caption, with caption dropout (""), captions that leave the look unnamed and, for the
    t2i, static captions mixed in."""
    draws = torch.rand(len(video_ids), 2)
    if phase.appearance_dropout:  # one more draw only where it is used: the other phases' streams stay as they were
        unnamed = (torch.rand(len(video_ids)) < phase.appearance_dropout).tolist()
    else:
        unnamed = [False] * len(video_ids)
    return [
        ""
        if drop < phase.caption_dropout
        else data.unnamed_look_captions[i]
        if bare
        else (data.static_captions[i] if static < phase.static_captions else data.captions[i])
        for i, (drop, static), bare in zip(video_ids.tolist(), draws.tolist(), unnamed)
    ]


# ----------------------------------------------------------------------------- the loop


def optimise(params: list[torch.nn.Parameter], step_loss, phase: PhaseConfig, name: str, on_step=None) -> dict:
    """AdamW with warmup + cosine decay, gradient clipping at 1; returns losses and timing."""
    optimizer = torch.optim.AdamW(params, lr=phase.learning_rate, weight_decay=0.0)
    schedule = get_scheduler("cosine", optimizer, num_warmup_steps=phase.warmup_steps, num_training_steps=phase.steps)
    losses, start = [], time.time()
    progress = tqdm(range(1, phase.steps + 1), desc=name, mininterval=10)
    for step in progress:
        loss = step_loss()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        progress.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}", refresh=False)
        if step % 100 == 0 or step == phase.steps:
            log.info(
                "%s step %d loss %.4f (%.2f steps/s)", name, step, np.mean(losses[-100:]), step / (time.time() - start)
            )
        if on_step is not None:
            on_step(step)
    wall = time.time() - start
    return {
        "steps": phase.steps,
        "wall_s": round(wall, 1),
        "steps_per_s": round(phase.steps / max(wall, 1e-9), 3),
        "loss_first100": float(np.mean(losses[:100])),
        "loss_last100": float(np.mean(losses[-100:])),
        "losses_every50": [round(float(np.mean(losses[i : i + 50])), 5) for i in range(0, len(losses), 50)],
    }


def random_frames(data: WorldData, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    n, f = data.videos.shape[:2]
    return torch.randint(n, (batch_size,)), torch.randint(f, (batch_size,))


# ----------------------------------------------------------------------------- phase 1: vae


OBJECT_RAMP = (30.0, 60.0)  # RGB distance from the row's median colour: object_mask 0 below, 1 above


def object_mask(frames: np.ndarray) -> np.ndarray:
    """(..., H, W) soft object mask in [0, 1] of uint8 frames (..., H, W, 3), for the VAE's loss weights: the
    distance of each pixel from its row's median colour (the world's backgrounds are constant along a row and its
    object covers at most a third of one), ramped over OBJECT_RAMP. A training weight, cheap and fixed so the
    pretraining reproduces; the world's measurements segment with the oracle (`metrics.segment`)."""
    rows = np.median(frames.astype(np.float32), axis=-2, keepdims=True)  # (..., h, 1, 3): the background
    distance = np.linalg.norm(frames.astype(np.float32) - np.broadcast_to(rows, frames.shape), axis=-1)
    low, high = OBJECT_RAMP
    return np.clip((distance - low) / (high - low), 0.0, 1.0)


def object_weights(pixels: torch.Tensor, object_weight: float) -> torch.Tensor:
    """(b, 1, h, w) reconstruction weights: 1 on the background, 1 + object_weight on the object."""
    frames = ((pixels.permute(0, 2, 3, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    return 1 + object_weight * torch.from_numpy(object_mask(frames))[:, None]


def weighted_reconstruction(error: torch.Tensor, pixels: torch.Tensor, object_weight: float) -> torch.Tensor:
    """L1 + MSE of a reconstruction's error, weighted towards the object of `pixels` (`object_weights`)."""
    weights = object_weights(pixels, object_weight)
    return (weights * (error.abs() + error**2)).mean() / weights.mean()


def vae_loss(vae: AutoencoderKL, pixels: torch.Tensor, kl_weight: float, object_weight: float) -> torch.Tensor:
    """L1 + MSE reconstruction of a posterior sample, weighted towards the object (a small part of each
    frame, which a plain mean learns last), plus the KL to N(0, I) per latent element."""
    posterior = vae.encode(pixels).latent_dist
    reconstruction = weighted_reconstruction(vae.decode(posterior.sample()).sample - pixels, pixels, object_weight)
    return reconstruction + kl_weight * posterior.kl().mean() / posterior.mean[0].numel()


@torch.no_grad()
def calibrate_scaling(vae: AutoencoderKL, data: WorldData, count: int = 2048) -> float:
    """SD's convention: scaling_factor = 1 / std of the latents, measured on (at most) `count` frames."""
    vae.register_to_config(scaling_factor=1.0)
    latents = encode_pixels(vae, data.frames(*random_frames(data, min(count, data.num_frames))))
    factor = float(1.0 / latents.std())
    vae.register_to_config(scaling_factor=factor)
    return factor


def train_vae(cfg: PretrainConfig, data: WorldData, out: Path) -> dict:
    arch = PRESETS[cfg.preset]
    torch.manual_seed(cfg.seed)
    vae = build_vae(arch, cfg.resolution)
    phase = cfg.vae
    stats = optimise(
        list(vae.parameters()),
        lambda: vae_loss(
            vae, data.frames(*random_frames(data, phase.batch_size)), phase.kl_weight, phase.object_weight
        ),
        phase,
        "vae",
    )
    vae.eval()
    stats["scaling_factor"] = calibrate_scaling(vae, data)
    stats["psnr"] = probe.reconstruction_psnr(vae, data.frames(*random_frames(data, min(512, data.num_frames))))
    stats["psnr_held_out"] = {
        look: probe.reconstruction_psnr(vae, probe.held_out_pixels(look, cfg.resolution))
        for look in probe.HELD_OUT_LOOKS
    }
    vae.save_pretrained(out / "vae")
    return stats


def decoder_source(cfg: PretrainConfig, out: Path) -> Path:
    return Path(cfg.decoder_from) if cfg.decoder_from else out / "pipeline" / "vae"


def decoder_figures(vae: AutoencoderKL, data: WorldData, generic: torch.Tensor, cfg: PretrainConfig) -> dict:
    """Reconstruction PSNR on world frames, on random looks not trained on, and on each held-out look."""
    frames = data.frames(*random_frames(data, min(512, data.num_frames)))
    return {
        "psnr": probe.reconstruction_psnr(vae, frames),
        "psnr_generic_held_out": probe.reconstruction_psnr(vae, generic),
        "psnr_held_out": {
            look: probe.reconstruction_psnr(vae, probe.held_out_pixels(look, cfg.resolution))
            for look in probe.HELD_OUT_LOOKS
        },
    }


def held_out_images(count: int, seed: int, resolution: int) -> np.ndarray:
    """uint8 (count, h, w, 3) still scenes of the held-out looks (the star subject, each held-out style), in turn."""
    looks = list(probe.HELD_OUT_LOOKS.values())
    if count == 0:
        return np.zeros((0, resolution, resolution, 3), np.uint8)
    return np.stack(
        [
            sample.pixels
            for index, (subject, style) in enumerate(looks)
            for sample in make_image_dataset(
                len(range(index, count, len(looks))), seed + index, resolution, subject=subject, style=style
            )
        ]
    )


def train_decoder(cfg: PretrainConfig, data: WorldData, out: Path) -> dict:
    """Fine-tune the decoder (and post_quant_conv) of a trained VAE on posterior means: half of each batch world
    frames, half drawn from random looks (`generic_images`) and renders of the held-out looks, with the vae phase's
    object-weighted L1 + MSE; the encoder is frozen, so the latent space is the one every UNet was trained in.

    The held-out looks are in the decoder's data on purpose: held out means the T2I never saw them (no caption, no
    frame), as a user's subject is new to SD's UNet and text encoder; SD's VAE, an image codec trained on a broad
    image set, still draws it. The first decoder saw the base world only and drew the star's latents as a white
    blob, so no customization could be measured (docs/method.md)."""
    torch.manual_seed(cfg.seed)
    vae = AutoencoderKL.from_pretrained(decoder_source(cfg, out)).eval().requires_grad_(False)
    pool = np.concatenate(
        [
            generic_images(cfg.generic_images, cfg.seed + 1, cfg.resolution),
            held_out_images(cfg.held_out_images, cfg.seed + 3, cfg.resolution),
        ]
    )
    pool = as_pixels(pool)
    unseen = as_pixels(generic_images(256, cfg.seed + 2, cfg.resolution))
    before = decoder_figures(vae, data, unseen, cfg)
    params = [*vae.decoder.parameters(), *vae.post_quant_conv.parameters()]
    for p in params:
        p.requires_grad_(True)
    phase = cfg.decoder

    def step_loss():
        half = phase.batch_size // 2
        pixels = torch.cat([data.frames(*random_frames(data, half)), pool[torch.randint(len(pool), (half,))]])
        with torch.no_grad():
            latents = vae.encode(pixels).latent_dist.mean
        return weighted_reconstruction(vae.decode(latents).sample - pixels, pixels, phase.object_weight)

    vae.decoder.train()
    stats = optimise(params, step_loss, phase, "decoder")
    vae.eval().requires_grad_(False)
    stats["before"], stats["after"] = before, decoder_figures(vae, data, unseen, cfg)
    vae.save_pretrained(out / "vae_decoder")
    return stats


# ----------------------------------------------------------------------------- phase 2: t2i


def image_loss(unet, scheduler, latents: torch.Tensor, text: torch.Tensor, snr_gamma: float) -> torch.Tensor:
    """The diffusion denoising loss (losses.py) of image latents (b, 4, h, w) given text states (b, seq, dim)."""
    noise = torch.randn_like(latents)
    timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (len(latents),))
    prediction = unet(scheduler.add_noise(latents, noise, timesteps), timesteps, text).sample
    weights = snr_weights(scheduler, timesteps, snr_gamma) if snr_gamma else None
    return denoising_loss(prediction, diffusion_target(scheduler, latents, noise, timesteps), weights)


def world_t2i_pipeline(vae, text_encoder, tokenizer, unet) -> StableDiffusionPipeline:
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=build_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def train_t2i(cfg: PretrainConfig, data: WorldData, out: Path) -> dict:
    arch, phase = PRESETS[cfg.preset], cfg.t2i
    vae = AutoencoderKL.from_pretrained(out / "vae").eval().requires_grad_(False)
    latents = data.latents(vae)  # (n, 4, f, h', w')
    torch.manual_seed(cfg.seed + 1)
    tokenizer = data.tokenizer
    text_encoder = build_text_encoder(arch, len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id)
    unet = build_unet(arch, latents.shape[-1])
    scheduler = build_scheduler()
    pipe = world_t2i_pipeline(vae, text_encoder, tokenizer, unet)
    pipe.set_progress_bar_config(disable=True)
    monitors = []
    # SD's CLIP tells every word apart; a CLIP trained only through the UNet lets the words that do not
    # change a frame (directions, speeds, unseen words) collapse. A linear head that must read each token
    # back from its state keeps them apart; it is dropped after training.
    identity_head = torch.nn.Linear(text_encoder.config.hidden_size, len(tokenizer))

    def step_loss():
        videos, frames = random_frames(data, phase.batch_size)
        tokens = data.tokens(choose_captions(data, videos, phase))
        text = text_encoder(tokens)[0]  # (b, seq, dim)
        loss = image_loss(unet, scheduler, latents[videos, :, frames], text, phase.snr_gamma)
        identity = F.cross_entropy(identity_head(text).flatten(0, 1), tokens.flatten())
        return loss + phase.token_identity_weight * identity

    def on_step(step):
        if (phase.monitor_every and step % phase.monitor_every == 0) or step == phase.steps:
            with torch.random.fork_rng():  # sampling must not shift the training's random stream
                figures = probe.monitor_images(
                    pipe, cfg.monitor_videos, cfg.resolution, cfg.monitor_steps, cfg.guidance_scale, cfg.seed
                )
            monitors.append({"step": step, **{k: round(v, 4) for k, v in figures.items()}})
            log.info("t2i monitor %s", monitors[-1])

    text_encoder.requires_grad_(phase.train_text_encoder)
    params = list(unet.parameters()) + (list(text_encoder.parameters()) if phase.train_text_encoder else [])
    params += list(identity_head.parameters()) if phase.token_identity_weight else []
    stats = optimise(params, step_loss, phase, "t2i", on_step)
    pipe.save_pretrained(out / "t2i")
    return {**stats, "monitor": monitors}


# ----------------------------------------------------------------------------- phase 3: motion


def inflate(t2i_dir: Path, cfg: PretrainConfig) -> AnimateDiffPipeline:
    """AnimateDiff's video model: the T2I's components plus fresh motion modules (seeded)."""
    t2i = StableDiffusionPipeline.from_pretrained(t2i_dir, safety_checker=None, requires_safety_checker=False)
    torch.manual_seed(cfg.seed + 2)
    pipe = AnimateDiffPipeline(
        vae=t2i.vae,
        text_encoder=t2i.text_encoder,
        tokenizer=t2i.tokenizer,
        unet=t2i.unet,
        motion_adapter=build_motion_modules(PRESETS[cfg.preset]),
        scheduler=build_scheduler(),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def high_noise_weights(scheduler, timesteps: torch.Tensor, cap: float) -> torch.Tensor:
    """Epsilon-loss weights 1 + 1/SNR, capped: what v-prediction (Salimans & Ho 2022) gives x0 errors.
    The plain epsilon loss weights an x0 error by SNR, nearly nothing at the high noise levels where a
    sample's motion direction is decided; this weighting lifts those levels up to `cap` times."""
    snr = compute_snr(scheduler, timesteps)
    return torch.clamp(1 + 1 / snr, max=cap)


def motion_loss(model, scheduler, latents: torch.Tensor, text: torch.Tensor, phase: PhaseConfig) -> torch.Tensor:
    """The video denoising loss (as losses.video_loss) of clips (b, c, f, h, w); timesteps of the
    second half of the batch come from [min_timestep, T), and the loss is weighted by `high_noise_weights`
    (or min-SNR-gamma when no cap is set)."""
    noise = torch.randn_like(latents)
    timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (len(latents),))
    high = torch.arange(len(timesteps)) >= len(timesteps) // 2
    timesteps[high] = torch.randint(phase.min_timestep, scheduler.config.num_train_timesteps, (int(high.sum()),))
    prediction = model(scheduler.add_noise(latents, noise, timesteps), timesteps, text)
    if phase.high_noise_cap:
        weights = high_noise_weights(scheduler, timesteps, phase.high_noise_cap)
    else:
        weights = snr_weights(scheduler, timesteps, phase.snr_gamma) if phase.snr_gamma else None
    return denoising_loss(prediction, diffusion_target(scheduler, latents, noise, timesteps), weights)


def look_consistency(pipe, cfg: PretrainConfig) -> dict:
    """The oracle's shape and colour consistency of the object in videos whose captions leave its look
    unnamed, and in unconditional ones: does the video model carry the object's look from frame to frame
    when the text does not pin it down? (A customized subject's look is exactly what the text does not name.)"""
    specs = probe.monitor_scenes(cfg.monitor_videos, num_frames=cfg.num_frames)
    figures = {}
    for name, prompts in (
        ("unnamed_look", [caption(s, appearance=False) for s in specs]),
        ("unconditional", [""] * len(specs)),
    ):
        videos = pipe(
            prompt=prompts,
            num_frames=cfg.num_frames,
            height=cfg.resolution,
            width=cfg.resolution,
            num_inference_steps=cfg.monitor_steps,
            guidance_scale=cfg.guidance_scale,
            output_type="np",
            generator=torch.Generator().manual_seed(cfg.seed),
        ).frames
        scores = [metrics.consistency_metrics(v, metrics.segment(v)) for v in probe.to_uint8(videos)]
        for key in ("shape_consistency", "color_consistency"):
            figures[f"{name}_{key}"] = float(np.nanmean([s[key] for s in scores]))
    return figures


def train_video(pipe, cfg: PretrainConfig, data: WorldData, phase: PhaseConfig, name: str) -> dict:
    """The video phases' loop: `motion_loss` on the cached latents of the world's videos, for the UNet's
    parameters that require grad (and the text encoder's when `phase.train_text_encoder`), monitored by
    `probe.monitor`, `probe.direction_gap` and `look_consistency`."""
    pipe.vae.requires_grad_(False)
    pipe.text_encoder.requires_grad_(phase.train_text_encoder)
    latents = data.latents(pipe.vae)  # (n, 4, f, h', w')
    model, scheduler = VideoDenoiser(pipe.unet), build_scheduler()
    monitors = []
    probe_ids = torch.arange(min(32, len(latents)))  # fixed clips for `direction_gap`
    probe_captions = [data.captions[i] for i in probe_ids]
    swapped = [
        caption(dataclasses.replace(data.specs[i], direction=probe.OPPOSITE[data.specs[i].direction]))
        for i in probe_ids
    ]

    def embed(prompts: list[str]) -> torch.Tensor:
        return pipe.text_encoder(data.tokens(prompts))[0]  # (b, seq, dim)

    def step_loss():
        videos = torch.randint(len(latents), (phase.batch_size,))
        text = embed(choose_captions(data, videos, phase))
        return motion_loss(model, scheduler, latents[videos], text, phase)

    def on_step(step):
        if step == 1 or (phase.monitor_every and step % phase.monitor_every == 0) or step == phase.steps:
            with torch.random.fork_rng(), torch.no_grad():  # sampling must not shift the training's random stream
                figures = probe.monitor(
                    pipe,
                    cfg.monitor_videos,
                    cfg.num_frames,
                    cfg.resolution,
                    cfg.monitor_steps,
                    cfg.guidance_scale,
                    cfg.seed,
                )
                figures["direction_gap"] = probe.direction_gap(
                    model, scheduler, latents[probe_ids], embed(probe_captions), embed(swapped)
                )
                figures |= look_consistency(pipe, cfg)
            monitors.append({"step": step, **{k: round(v, 4) for k, v in figures.items()}})
            log.info("%s monitor %s", name, monitors[-1])

    params = [p for p in pipe.unet.parameters() if p.requires_grad]
    params += list(pipe.text_encoder.parameters()) if phase.train_text_encoder else []
    stats = optimise(params, step_loss, phase, name, on_step)
    return {**stats, "trainable_params": sum(p.numel() for p in params), "monitor": monitors}


def train_motion(cfg: PretrainConfig, data: WorldData, out: Path) -> dict:
    pipe = inflate(out / "t2i", cfg)
    pipe.unet.freeze_unet2d_params()
    record = train_video(pipe, cfg, data, cfg.motion, "motion")
    save_world(pipe, out, cfg)
    return record


def joint_source(cfg: PretrainConfig, out: Path) -> Path:
    """The AnimateDiff folder the joint phase starts from: `joint_from`, else this run's motion phase's."""
    return Path(cfg.joint_from) if cfg.joint_from else out / "pipeline"


def train_joint(cfg: PretrainConfig, data: WorldData, out: Path) -> dict:
    source = joint_source(cfg, out)
    torch.manual_seed(cfg.seed + 3)
    pipe = AnimateDiffPipeline.from_pretrained(source)
    pipe.set_progress_bar_config(disable=True)
    spatial = {k: v.clone() for k, v in pipe.unet.state_dict().items() if "motion_modules" not in k}
    pipe.unet.requires_grad_(True)
    if not cfg.joint.train_spatial:
        pipe.unet.freeze_unet2d_params()
    record = train_video(pipe, cfg, data, cfg.joint, "joint")
    record["spatial_drift"] = round(relative_distance(spatial, pipe.unet.state_dict()), 5)  # the spatial weights
    record["source"] = str(source)
    log.info("joint: spatial weights moved by %.2f%% of their norm", 100 * record["spatial_drift"])
    save_world(pipe, out / "joint", cfg)
    return record


# ----------------------------------------------------------------------------- extra phase: controlnet

CONTROLNET_WIDTHS = (16, 32, 64, 128)  # conditioning embedding widths; one stride-2 conv between two of them


def controlnet_embedding(vae_factor: int) -> tuple[int, ...]:
    """As many stride-2 convolutions as the VAE has downsamplings (the world: 32 px -> 8x8 latents, (16, 32, 64))."""
    return CONTROLNET_WIDTHS[: int(np.log2(vae_factor)) + 1]


def controlnet_source(cfg: PretrainConfig, out: Path) -> Path:
    """The AnimateDiff folder whose T2I the ControlNet conditions: `controlnet_from`, else this run's."""
    return Path(cfg.controlnet_from) if cfg.controlnet_from else out / "pipeline"


def conditioning_pixels(silhouettes: np.ndarray) -> torch.Tensor:
    """(b, 3, h, w) in [0, 1] from uint8 (b, h, w) silhouettes: what diffusers' ControlNet pipelines feed."""
    return torch.from_numpy(silhouettes).float().div(255.0)[:, None].expand(-1, 3, -1, -1)


def controlnet_loss(controlnet, unet, scheduler, latents, text, condition, snr_gamma: float) -> torch.Tensor:
    """The denoising loss of frame latents (b, 4, h, w) with the ControlNet's residuals added to the frozen T2I."""
    noise = torch.randn_like(latents)
    timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (len(latents),))
    noisy = scheduler.add_noise(latents, noise, timesteps)
    down, mid = controlnet(noisy, timesteps, text, controlnet_cond=condition, return_dict=False)
    prediction = unet(
        noisy, timesteps, text, down_block_additional_residuals=down, mid_block_additional_residual=mid
    ).sample
    weights = snr_weights(scheduler, timesteps, snr_gamma) if snr_gamma else None
    return denoising_loss(prediction, diffusion_target(scheduler, latents, noise, timesteps), weights)


@torch.no_grad()
def track_monitor(pipe: AnimateDiffPipeline, controlnet, cfg: PretrainConfig, data: WorldData) -> dict:
    """Videos of the video model + ControlNet that follow reference silhouettes along paths the world never
    takes (`synthetic.TRACKS`), scored by the oracle (`metrics.track_following`): mask IoU and centroid error."""
    control = AnimateDiffControlNetPipeline.from_pipe(pipe, controlnet=controlnet)
    control.set_progress_bar_config(disable=True)
    results = []
    for i, spec in enumerate(probe.monitor_scenes(min(8, cfg.monitor_videos), num_frames=cfg.num_frames)):
        track = reference_track(("diagonal", "curved")[i % 2], cfg.num_frames, cfg.resolution, reverse=i % 4 >= 2)
        reference = silhouette_video(spec, track, cfg.resolution)
        frames = control(
            caption(spec),
            num_frames=cfg.num_frames,
            height=cfg.resolution,
            width=cfg.resolution,
            num_inference_steps=cfg.monitor_steps,
            guidance_scale=cfg.guidance_scale,
            conditioning_frames=list(conditioning_pixels(reference[..., 0])),
            generator=torch.Generator().manual_seed(cfg.seed + i),
            output_type="np",
        ).frames[0]
        results.append(metrics.track_following(frames, reference))
    return {key: float(np.nanmean([r[key] for r in results])) for key in results[0]}


def train_controlnet(cfg: PretrainConfig, data: WorldData, out: Path) -> dict:
    phase, source = cfg.controlnet, controlnet_source(cfg, out)
    pipe = AnimateDiffPipeline.from_pretrained(source)
    pipe.set_progress_bar_config(disable=True)
    for module in (pipe.vae, pipe.text_encoder, pipe.unet):
        module.requires_grad_(False)
    latents = data.latents(pipe.vae)  # (n, 4, f, h', w')
    t2i = t2i_unet_from_t2v(pipe.unet)
    torch.manual_seed(cfg.seed + 4)
    embedding = controlnet_embedding(pipe.vae_scale_factor)
    controlnet = ControlNetModel.from_unet(t2i, conditioning_embedding_out_channels=embedding)
    controlnet.train()
    scheduler = build_scheduler()
    binary, soft = data.silhouettes(False), data.silhouettes(True)

    def step_loss():
        videos, frames = random_frames(data, phase.batch_size)
        use_soft = (torch.rand(len(videos)) < cfg.soft_silhouettes).numpy()
        masks = np.where(use_soft[:, None, None], soft[videos, frames], binary[videos, frames])
        with torch.no_grad():
            text = pipe.text_encoder(data.tokens(choose_captions(data, videos, phase)))[0]
        condition = conditioning_pixels(masks)
        return controlnet_loss(controlnet, t2i, scheduler, latents[videos, :, frames], text, condition, phase.snr_gamma)

    stats = optimise(list(controlnet.parameters()), step_loss, phase, "controlnet")
    controlnet.eval()
    with torch.random.fork_rng():
        stats["monitor"] = {k: round(v, 4) for k, v in track_monitor(pipe, controlnet, cfg, data).items()}
    log.info("controlnet monitor %s", stats["monitor"])
    controlnet.save_pretrained(out / "controlnet")
    stats["source"] = str(source)
    stats["params"] = sum(p.numel() for p in controlnet.parameters())
    return stats


def save_world(pipe: AnimateDiffPipeline, out: Path, cfg: PretrainConfig) -> None:
    """`pipeline/`: the AnimateDiff folder (its UNetMotionModel already holds the motion modules, so the
    duplicate `motion_adapter` component is left out) with its clip length and the monitor's sampling in
    generation_defaults.json (the verbs' default --num-frames, steps and guidance); `motion_adapter/`: the motion
    modules alone."""
    pipe.unet.save_motion_modules(str(out / "motion_adapter"))
    pipe.register_modules(motion_adapter=None)
    pipe.save_pretrained(out / "pipeline")
    defaults = {
        "num_frames": cfg.num_frames,
        "num_inference_steps": cfg.monitor_steps,
        "guidance_scale": cfg.guidance_scale,
    }
    write_text(out / "pipeline" / GENERATION_DEFAULTS, json.dumps(defaults) + "\n")


# ----------------------------------------------------------------------------- driver


def run(cfg: PretrainConfig, out: str | Path, phases: tuple[str, ...] = PHASES) -> dict:
    """Run the named phases in order (later phases read the earlier ones' folders); returns the log."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(world_vocabulary(), out / "tokenizer_src", PRESETS[cfg.preset].text_max_length)
    data = WorldData(cfg, tokenizer)
    record_path = out / "pretrain_log.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    record["config"] = dataclasses.asdict(cfg)
    train = {
        "vae": train_vae,
        "t2i": train_t2i,
        "motion": train_motion,
        "joint": train_joint,
        "controlnet": train_controlnet,
        "decoder": train_decoder,
    }
    for name in phases:
        log.info("phase %s", name)
        record[name] = train[name](cfg, data, out)
        record_path.write_text(json.dumps(record, indent=1))
    if (out / "pipeline").exists():
        record["size_mb"] = round(sum(f.stat().st_size for f in (out / "pipeline").rglob("*")) / 2**20, 2)
        record_path.write_text(json.dumps(record, indent=1))
    return record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output folder (phases read and write sub-folders)")
    parser.add_argument("--phase", choices=(*PHASES, *EXTRA_PHASES, "all"), default="all")
    parser.add_argument("--steps", type=int, help="optimizer steps of every selected phase")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the machine is shared)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preset", default="world", choices=sorted(PRESETS))
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. motion.learning_rate=5e-4 or num_videos=2000",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = PretrainConfig(preset=args.preset, seed=args.seed)
    phases = PHASES if args.phase == "all" else (args.phase,)
    for assignment in args.set:
        override(cfg, assignment)
    if args.steps is not None:
        for name in phases:
            getattr(cfg, name).steps = args.steps
    source = joint_source(cfg, Path(args.out))
    if "joint" in phases and not (source / "model_index.json").is_file():
        parser.error(f"the joint phase starts from an AnimateDiff folder: {source} is not one (--set joint_from=DIR)")
    if "decoder" in phases and not (decoder_source(cfg, Path(args.out)) / "config.json").is_file():
        parser.error(f"the decoder phase fine-tunes a VAE folder: {decoder_source(cfg, Path(args.out))} is not one")
    source = controlnet_source(cfg, Path(args.out))
    if "controlnet" in phases and not (source / "model_index.json").is_file():
        parser.error(
            f"the controlnet phase conditions an AnimateDiff folder's T2I: {source} is not one "
            "(--set controlnet_from=DIR)"
        )
    Path(args.out).mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(message)s",
        handlers=[logging.StreamHandler(), logging.FileHandler(Path(args.out) / "pretrain.log")],
    )
    run(cfg, args.out, phases)


if __name__ == "__main__":
    main()
