"""The whole `customize` command against a straightforward customization, on one preset.

  stillmoving      `train_spatial_adapters` itself (training/spatial_stage.py): images sampled from M1 and
                   prior videos from V in batches and kept as latents, the prompts encoded once, then the
                   training steps `steps.spatial_step` times.
  straightforward  the same work written the obvious way: one pipeline call per image and per prior video,
                   decoded to pixels; then every step VAE-encodes the frames again and text-encodes the
                   prompts, in fp32, with every frozen weight requiring grad and peft's LoRA branch at both
                   motion scales (`steps.straightforward_loss`).

The first `customize` run starts with an empty prior-video cache (data/prior_cache.py); a second one, of
another customization of the same V, finds V's prior videos there, as a user's next customization does.
All start from the same folders (V, M1 = V's own T2I saved as a UNet folder, the motion adapter: the
shipped one on `world`, a fresh one otherwise) and do the same amount of work: `customize_items` images
and prior videos, 25 sampling steps at guidance 7.5, `customize_steps` training steps at batch 1.
Sampling and training seconds are timed apart; the model loads count towards the total.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import torch

from stillmoving.adapters.motion import MotionLoRA
from stillmoving.adapters.spatial import SpatialAdapters
from stillmoving.backends import backend_of
from stillmoving.bench.measure import PeakMemory, sync
from stillmoving.bench.models import IMAGE_PROMPT, PRIOR_PROMPT, Preset, build_video_model
from stillmoving.bench.steps import LEARNING_RATE, MAX_GRAD_NORM, MOTION_RANK, optimizer_step, straightforward_loss
from stillmoving.loading import load_customized, load_t2v, t2i_pipeline
from stillmoving.run_folder import CUSTOMIZE_RUN
from stillmoving.training.config import CustomizeConfig
from stillmoving.training.setup import VideoDenoiser, training_scheduler
from stillmoving.world.weights import shipped_model, shipped_motion_adapter

PRECISION = {"float32": "no", "bfloat16": "bf16", "float16": "fp16"}  # bench dtype -> accelerate mixed precision


def prepare_folders(preset: Preset, seed: int, root: Path) -> tuple[Path, Path, Path]:
    """V, M1 and the motion adapter as folders, as a user has them."""
    if preset.model == "world":
        model, adapter = shipped_model(), shipped_motion_adapter()
        pipe = load_t2v(model)
    else:
        pipe = build_video_model(preset, torch.device("cpu"), seed)
        model = root / "t2v"
        pipe.save_pretrained(model)
        adapter = MotionLoRA.inject(pipe.unet, rank=MOTION_RANK).save(root / "motion")
    m1 = root / "m1"
    backend_of(pipe).t2i_unet(pipe.unet).save_pretrained(m1)
    return Path(model), m1, Path(adapter)


def run_stillmoving(cfg: CustomizeConfig, device: torch.device) -> dict:
    from stillmoving.training import spatial_stage

    with PeakMemory(device) as memory:
        start = time.perf_counter()
        spatial_stage.train_spatial_adapters(cfg)
        sync(device)
        total = time.perf_counter() - start
    record = json.loads((Path(cfg.output) / CUSTOMIZE_RUN).read_text())
    return {
        "sampling_seconds": record["seconds"]["sampling"],
        "training_seconds": record["seconds"]["training"],
        "total_seconds": total,
        "peak_memory_mb": memory.peak_mb,
    }


def run_straightforward(cfg: CustomizeConfig, device: torch.device) -> dict:
    """One pipeline call per item, pixels kept; fp32; every step re-encodes (see the module docstring)."""
    with PeakMemory(device) as memory:
        start = time.perf_counter()
        pipe = load_t2v(cfg.model).to(device)
        pipe.set_progress_bar_config(disable=True)
        m1 = load_customized(pipe, cfg.customized)
        t2i = t2i_pipeline(pipe, m1.unet, m1.text_encoder, m1.text_encoder_2)
        t2i.set_progress_bar_config(disable=True)
        common = dict(
            height=cfg.height,
            width=cfg.width,
            num_inference_steps=cfg.sample_steps,
            guidance_scale=cfg.guidance_scale,
            output_type="pt",
        )
        priors = [
            pipe(PRIOR_PROMPT, num_frames=cfg.num_frames, generator=torch.Generator().manual_seed(i), **common).frames[
                0
            ]
            * 2
            - 1
            for i in range(cfg.num_prior_videos)
        ]  # (f, 3, H, W)
        images = [
            t2i(IMAGE_PROMPT, generator=torch.Generator().manual_seed(i), **common).images[0] * 2 - 1
            for i in range(cfg.num_images)
        ]  # (3, H, W)
        pipe.inject_customized(m1.unet, m1.text_encoder, m1.text_encoder_2)
        sync(device)
        sampled = time.perf_counter()
        motion = MotionLoRA.load(pipe.unet, cfg.motion_adapter)
        spatial = SpatialAdapters.for_unet(pipe.unet, cfg.spatial_rank).to(device).attach(pipe.unet)
        params = spatial.trainable_parameters()
        optimizer = torch.optim.AdamW(params, lr=LEARNING_RATE)
        model, scheduler = VideoDenoiser(pipe.unet, spatial, backend_of(pipe)), training_scheduler(pipe)
        for step in range(cfg.steps):
            loss = straightforward_loss(
                pipe,
                model,
                scheduler,
                motion,
                images[step % len(images)][None].to(device),
                priors[step % len(priors)][None].to(device),
                [IMAGE_PROMPT],
                cfg.num_frames,
            )
            loss.backward()
            optimizer_step(params, optimizer)
        sync(device)
        end = time.perf_counter()
    return {
        "sampling_seconds": sampled - start,
        "training_seconds": end - sampled,
        "total_seconds": end - start,
        "peak_memory_mb": memory.peak_mb,
    }


def compare_customize(preset: Preset, settings) -> dict:
    """Both customizations of `preset`, one after the other, in a scratch folder."""
    device = torch.device(settings.device)
    with tempfile.TemporaryDirectory(prefix="stillmoving-bench-") as scratch:
        root = Path(scratch)
        model, m1, adapter = prepare_folders(preset, settings.seed, root)
        cfg = CustomizeConfig(
            model=str(model),
            output=str(root / "customization"),
            motion_adapter=str(adapter),
            customized=str(m1),
            prompt=[IMAGE_PROMPT],
            prior_prompt=[PRIOR_PROMPT],
            num_images=settings.customize_items,
            num_prior_videos=settings.customize_items,
            height=preset.resolution,
            width=preset.frame_width,
            num_frames=preset.num_frames,
            steps=settings.customize_steps,
            seed=settings.seed,
            mixed_precision=PRECISION[settings.dtype],
            gradient_checkpointing=settings.gradient_checkpointing,
            lr=LEARNING_RATE,
            max_grad_norm=MAX_GRAD_NORM,
            cache_dir=str(root / "cache"),
            num_validation_videos=0,
        )  # the comparison times training; the straightforward loop has no check
        first = run_stillmoving(cfg, device)  # an empty prior-video cache: V's first customization
        cfg.output = str(root / "customization-2")
        cfg.prompt = [IMAGE_PROMPT.replace("dog", "cat")]  # another customization of the same V
        next_ = run_stillmoving(cfg, device)
        easy = run_straightforward(cfg, device)
    return {
        "steps": settings.customize_steps,
        "items": settings.customize_items,
        "stillmoving": first,
        "stillmoving_cached_priors": next_,
        "straightforward": easy,
        "speedup": easy["total_seconds"] / first["total_seconds"],
        "speedup_cached_priors": easy["total_seconds"] / next_["total_seconds"],
    }
