"""Stage 2: train spatial adapters for one customized T2I (docs/method.md, stage 2).

DreamBooth-style data: frozen videos of images sampled from the customized T2I M1, trained with the
motion adapter ON (alpha = 1), and prior-preservation videos of the un-customized V, trained with it
OFF (alpha = 0) and weighted by `prior_loss_weight`. M1's weights are injected into V; only the spatial
adapters train, with gradients flowing through the whole video model.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import re
import time
from pathlib import Path

import torch
from accelerate.utils import DistributedType
from diffusers.training_utils import cast_training_params

from stillmoving.adapters.motion import MotionLoRA
from stillmoving.adapters.spatial import FINGERPRINT_KEY, SpatialAdapters, parse_blocks
from stillmoving.backends import backend_of
from stillmoving.data.frozen import FrozenImageDataset, LatentClips, VideoClipDataset, reencoded
from stillmoving.data.prior_cache import cache_root, load_prior_videos, prior_key, store_prior_videos
from stillmoving.data.sources import (
    PromptBank,
    check_image_folder,
    check_video_folder,
    decode_latents,
    images_from_folder,
    sample_images,
    sample_videos,
    videos_from_folder,
)
from stillmoving.data.video_io import write_image
from stillmoving.errors import StillMovingError
from stillmoving.few_step import check_same_sampler, motion_adapter_sampler, sampler_of, with_fingerprint
from stillmoving.fingerprint import weights_fingerprint
from stillmoving.loading import CustomizedT2I, load_customized, t2i_pipeline
from stillmoving.losses import video_loss
from stillmoving.run_folder import (
    CUSTOMIZE_RUN,
    IMAGES,
    SPATIAL_ADAPTERS,
    customization_sources,
    write_customization,
)
from stillmoving.training.checkpoints import (
    check_output_dir,
    micro_batches_done,
    prepare_output_dir,
    resume_step,
    write_run_record,
)
from stillmoving.training.config import CustomizeConfig
from stillmoving.training.loop import ItemRandomness, batches, train
from stillmoving.training.monitor import logger, periodic_validation, validation_prompts
from stillmoving.training.naive_check import check_against_naive, t2i_images
from stillmoving.training.setup import (
    VideoDenoiser,
    freeze,
    frozen_video_model,
    loader,
    make_accelerator,
    make_optimizer,
    training_scheduler,
)
from stillmoving.validation import at_least, check_model_files, in_unit_interval, one_of

FROZEN_TARGETS = ("noise", "t2i")  # frozen videos fitted to the denoising target, or to M1's own prediction
PRIOR_LOSSES = ("video", "motion")  # the prior term on the whole denoising error, or on its frame-varying part


def spread(prompts: list[str], count: int) -> list[str]:
    """`count` prompts cycling through `prompts`."""
    return [prompts[i % len(prompts)] for i in range(count)]


def without_identifier(prompt: str, identifier: str) -> str:
    """`prompt` with every whole-word occurrence of `identifier` removed: "a sks dog" -> "a dog"."""
    return " ".join(re.sub(rf"(?<!\w){re.escape(identifier.strip())}(?!\w)", " ", prompt, flags=re.I).split())


def prior_prompt_list(cfg: CustomizeConfig) -> list[str]:
    """The prompts prior videos are sampled from V with: the user's, or the customization prompts without the
    identifier (DreamBooth's class prompt). Never the customization's own label: V does not know "sks", so
    such videos would teach the adapters that "a sks dog" at alpha 0, the inference setting, is un-customized."""
    identifier = (cfg.identifier or "").strip()
    prompts = list(cfg.prior_prompt)
    if not prompts and identifier:
        prompts = [without_identifier(p, identifier) for p in cfg.prompt]
    if not prompts:
        raise StillMovingError(
            "prior videos sampled from the video model need prompts without the customization: "
            "give --identifier (the word that names it, e.g. sks) to drop it from the prompts, "
            "--prior-prompt (e.g. 'a dog'), --prior-videos DIR, or --prior-loss-weight 0"
        )
    for prompt in prompts:
        if prompt in cfg.prompt or (identifier and without_identifier(prompt, identifier) != " ".join(prompt.split())):
            raise StillMovingError(
                f"prior prompt {prompt!r} names the customization; prior videos show the "
                f"un-customized model, so their prompts must not (e.g. 'a dog' for 'a sks dog')"
            )
        if not prompt.strip():
            raise StillMovingError("a prior prompt is empty")
    return prompts


def check_customize_inputs(cfg: CustomizeConfig) -> None:
    """Fail on stage-2 settings that cannot work (prior videos, validation videos), before any model is loaded."""
    at_least("--num-validation-videos", cfg.num_validation_videos, 0)
    one_of("--prior-loss", cfg.prior_loss, PRIOR_LOSSES)
    at_least("--prior-loss-weight", cfg.prior_loss_weight, 0)
    at_least("--frame-agreement", cfg.frame_agreement, 0)
    at_least("--guidance-preservation", cfg.guidance_preservation, 0)
    at_least("--spatial-min-timestep", cfg.spatial_min_timestep, 0)
    at_least("--spatial-rank", cfg.spatial_rank, 1)
    parse_blocks(cfg.spatial_blocks)
    at_least("--image-guidance-scale", cfg.image_guidance_scale, 0)
    at_least("--loss-guidance-scale", cfg.loss_guidance_scale, 0)
    if cfg.loss_guidance_scale != 1 and cfg.frozen_target == "t2i":
        raise StillMovingError("--loss-guidance-scale fits the noise; it does not combine with --frozen-target t2i")
    one_of("--frozen-target", cfg.frozen_target, FROZEN_TARGETS)
    at_least("--moving-stills", cfg.moving_stills, 0)
    in_unit_interval("--reencode-images", cfg.reencode_images)
    if cfg.reencode_images and cfg.images:
        raise StillMovingError("--reencode-images is for sampled images; the images of --images are encoded already")
    if cfg.moving_stills and cfg.reencode_images:
        raise StillMovingError("--moving-stills encodes every frame of every image already; drop --reencode-images")
    if cfg.moving_stills and cfg.frame_agreement:
        raise StillMovingError("--frame-agreement asks a frozen video's frames to agree; moving stills' frames move")
    if not cfg.images:
        at_least("--num-images", cfg.num_images, 1)
    if cfg.prior_loss_weight > 0 and not cfg.prior_videos:
        at_least("--num-prior-videos", cfg.num_prior_videos, 1)
        prior_prompt_list(cfg)
    elif cfg.prior_loss_weight > 0:  # each decoded, long enough and captioned
        check_video_folder(cfg.prior_videos, cfg.num_frames)


def t2i_prediction(backend, unet2d: torch.nn.Module, noisy: torch.Tensor, timesteps: torch.Tensor, text: torch.Tensor):
    """The customized T2I's prediction for every frame of noisy videos (b, c, f, h, w) on its own, at the videos'
    timesteps (b,) and text rows (b, ...) (`backend.encode_prompts`): (b, c, f, h, w). Each frame goes in as a
    one-frame video's conditioning (`backend.unet_inputs`), so SDXL's pooled text and time ids come per image.
    `--frozen-target t2i` fits the video model's prediction on frozen videos to it (docs/method.md, "Why the
    paper's recipe erases the subject")."""
    b, c, f, h, w = noisy.shape
    frames = noisy.permute(0, 2, 1, 3, 4).reshape(b * f, c, 1, h, w).to(unet2d.dtype)
    inputs = backend.unet_inputs(text.repeat_interleave(f, dim=0).to(unet2d.dtype), frames)
    out = unet2d(frames[:, :, 0], timesteps.repeat_interleave(f), **inputs).sample
    return out.reshape(b, f, c, h, w).permute(0, 2, 1, 3, 4)


def check_motion_adapter_sampler(cfg: CustomizeConfig) -> None:
    """Refuse, in one line, a motion adapter whose run record says it was trained with another sampling setting
    (scheduler, LCM LoRA, and for a few-step one steps and guidance) than this customization, unless
    --allow-sampler-mismatch. An adapter without a run record beside it is not checked."""
    found = motion_adapter_sampler(cfg.motion_adapter)
    if found is not None:
        run, recorded = found
        what = f"motion adapter {cfg.motion_adapter} (its {run.name})"
        check_same_sampler(recorded, with_fingerprint(sampler_of(cfg)), what, "customize", cfg.allow_sampler_mismatch)


def prior_videos(cfg: CustomizeConfig, pipe) -> tuple[list[torch.Tensor], list[str]]:
    """Non-customized videos: the user's folder, or samples of the un-customized V (call before injection)."""
    if cfg.prior_loss_weight == 0:
        return [], []
    if cfg.prior_videos:
        return videos_from_folder(cfg.prior_videos, pipe.vae, cfg.num_frames, cfg.height, cfg.width)
    prompts = spread(prior_prompt_list(cfg), cfg.num_prior_videos)
    settings = dict(
        num_frames=cfg.num_frames,
        height=cfg.height,
        width=cfg.width,
        seed=cfg.seed + 10_000,
        steps=cfg.sample_steps,
        guidance_scale=cfg.guidance_scale,
    )
    if not cfg.cache_prior_videos:
        return sample_videos(pipe, prompts, **settings), prompts
    root = cache_root(cfg.cache_dir)
    domain = getattr(pipe, "domain_adapter", None)  # path, scale and fingerprint of the adapter fused into V
    sources = [cfg.model, cfg.motion_modules, cfg.config_dir] + ([json.dumps(domain.record)] if domain else [])
    key = prior_key(pipe, sources, prompts, **settings)
    latents = load_prior_videos(root, key)
    if latents is None:
        latents = sample_videos(pipe, prompts, **settings)
        store_prior_videos(root, key, latents)
    return latents, prompts


def customized_images(cfg: CustomizeConfig, pipe, m1: CustomizedT2I, image_dir: Path | None):
    """M1's images as latents (C, h, w): the user's folder, or sampled from M1 (saved to `image_dir`)."""
    if cfg.images:
        return images_from_folder(cfg.images, pipe.vae, cfg.height, cfg.width, cfg.prompt[0] if cfg.prompt else None)
    if not cfg.prompt:
        raise StillMovingError("give customization prompts (e.g. 'a sks dog') or a folder of images")
    prompts = spread(cfg.prompt, cfg.num_images)
    t2i = t2i_pipeline(pipe, m1.unet, m1.text_encoder, m1.text_encoder_2)
    t2i.set_progress_bar_config(disable=True)
    latents = sample_images(t2i, prompts, cfg.height, cfg.width, cfg.seed, cfg.sample_steps, cfg.image_guidance_scale)
    if image_dir is not None:
        image_dir.mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(decode_latents(pipe.vae, torch.stack(latents))):
            write_image(image.permute(1, 2, 0).numpy(), image_dir / f"{i:04d}.png")
    return latents, prompts


def reencode_share(vae, latents: list[torch.Tensor], share: float) -> list[torch.Tensor]:
    """`share` of the sampled latents re-encoded (`reencoded`), spread evenly: image i is when ceil((i + 1) x share)
    passes ceil(i x share), so 0.5 re-encodes images 0, 2, 4, ... and 1 every image; the others stay as sampled."""
    chosen = [i for i in range(len(latents)) if math.ceil((i + 1) * share) > math.ceil(i * share)]
    again = dict(zip(chosen, reencoded(vae, [latents[i] for i in chosen]))) if chosen else {}
    return [again.get(i, z) for i, z in enumerate(latents)]


def attach_motion_adapter(cfg: CustomizeConfig, unet, bake: bool = True) -> MotionLoRA | None:
    """The frozen stage-1 adapter; none only for the no-motion-adapter ablation. Baked (frozen, switched
    between 1 and 0 every step: no LoRA branch in the forward) unless FSDP will shard the weights it swaps."""
    if not cfg.motion_adapter:
        return None
    motion = MotionLoRA.load(unet, cfg.motion_adapter)
    freeze(unet)
    if bake:
        motion.bake([1.0])
    return motion


def train_spatial_adapters(cfg: CustomizeConfig) -> Path:
    """Run stage 2 end to end; returns the spatial-adapter file."""
    # 1. Check inputs: the output folder, the images and the stage-2 settings, before any model is loaded
    check_output_dir(cfg)
    if cfg.images:  # each decoded and captioned (or given the first prompt), before any model is loaded
        check_image_folder(cfg.images, cfg.prompt[0] if cfg.prompt else None)
    check_customize_inputs(cfg)
    check_model_files(  # every file named is there and of its kind (adapters read from their headers)
        cfg.model,
        cfg.motion_modules,
        cfg.customized,
        cfg.config_dir,
        cfg.lora,
        motion_adapter=cfg.motion_adapter or None,
        domain_adapter=cfg.domain_adapter,
    )
    check_motion_adapter_sampler(cfg)

    # 2. Load the frozen video model V and the customized T2I M1
    accelerator = make_accelerator(cfg)
    if cfg.prior_loss_weight == 0 and (cfg.prior_videos or cfg.prior_prompt):
        logger.warning("--prior-loss-weight is 0 (the default): no prior videos are used; give a weight to use them")
    pipe = frozen_video_model(accelerator, cfg)
    m1 = load_customized(pipe, cfg.customized, cfg.lora)
    backend = backend_of(pipe)  # the family: SD1.5, SDXL
    backend.check_fits(pipe.unet, m1.unet.state_dict())  # fail before any sampling or writing
    top = pipe.scheduler.config.num_train_timesteps
    if (lowest := cfg.spatial_min_timestep) >= top:
        raise StillMovingError(f"--spatial-min-timestep {lowest}: the scheduler has {top} timesteps; give a lower one")

    # 3. Make the training data: prior videos of V, then M1's images
    output = prepare_output_dir(cfg)
    bank = PromptBank()
    started = time.perf_counter()
    prior_latents, prior_prompts = prior_videos(cfg, pipe)  # V itself: M1 is not injected yet
    image_dir = output / IMAGES if accelerator.is_main_process else None
    image_latents, image_prompts = customized_images(cfg, pipe, m1, image_dir)
    check_prompts = spread(cfg.validation_prompt or list(dict.fromkeys(image_prompts)), cfg.num_validation_videos)
    checked = accelerator.is_main_process and accelerator.distributed_type != DistributedType.FSDP  # FSDP: sharded
    # The end-of-run check's reference: M1's own image of each of its prompts, made while M1 is still a T2I
    references = []  # (the image pipeline is not kept: it would hold M1's UNet through training)
    if checked and check_prompts:
        references = t2i_images(t2i_pipeline(pipe, m1.unet, m1.text_encoder, m1.text_encoder_2), check_prompts, cfg)

    # 4. Inject M1 into V and encode the prompts
    teacher = m1.unet if cfg.frozen_target == "t2i" else None  # M1's own T2I UNet, kept as the frozen target
    pipe.inject_customized(m1.unet, m1.text_encoder, m1.text_encoder_2)
    del m1
    if teacher is not None:
        freeze(teacher)
        teacher.eval().to(accelerator.device, dtype=pipe.unet.dtype)
    if cfg.moving_stills:  # each image shifted a little more in every frame, trained at alpha 0
        shifts = torch.Generator().manual_seed(cfg.seed + 3)
        image_latents = reencoded(pipe.vae, image_latents, cfg.num_frames, cfg.moving_stills, shifts)
    elif cfg.reencode_images:
        image_latents = reencode_share(pipe.vae, image_latents, cfg.reencode_images)
    images = LatentClips(image_latents, [bank.add(p) for p in image_prompts])
    priors = LatentClips(prior_latents, [bank.add(p) for p in prior_prompts])
    empty_id = bank.add("") if cfg.guidance_preservation or cfg.loss_guidance_scale != 1 else None
    text_table = backend.encode_prompts(bank.prompts).to(accelerator.device)

    # 5. Attach the adapters: the frozen motion adapter, the trainable spatial adapters
    motion = attach_motion_adapter(cfg, pipe.unet, bake=accelerator.distributed_type != DistributedType.FSDP)
    # A_down from the seed alone: not from what loading V and M1 drew from the global RNG (a single file, a folder)
    init = torch.Generator().manual_seed(cfg.seed)
    spatial = SpatialAdapters.for_unet(pipe.unet, cfg.spatial_rank, init, cfg.spatial_blocks)
    spatial = spatial.to(accelerator.device).attach(pipe.unet)
    spatial.min_timestep = cfg.spatial_min_timestep  # saved with them; generate gates them the same way
    spatial.shared = cfg.shared_correction  # saved with them too
    cast_training_params(spatial)
    model = VideoDenoiser(pipe.unet, spatial, backend)

    # 6. Prepare the optimizer, the data loaders and the state resumed from
    optimizer, schedule = make_optimizer(cfg, spatial.trainable_parameters())
    frozen_data = loader(
        VideoClipDataset(images) if cfg.moving_stills else FrozenImageDataset(images, cfg.num_frames), cfg
    )
    prior_data = loader(VideoClipDataset(priors), cfg) if len(priors) else None
    model, optimizer, frozen_data, schedule = accelerator.prepare(model, optimizer, frozen_data, schedule)
    prior_data = accelerator.prepare(prior_data) if prior_data is not None else None
    start = resume_step(accelerator, cfg)
    done = micro_batches_done(cfg, start)
    frozen_stream = batches(accelerator, frozen_data, done)
    prior_stream = batches(accelerator, prior_data, done) if prior_data else None
    noise_scheduler = training_scheduler(pipe)

    unadapted = functools.partial(spatial.detached, pipe.unet)
    empty = None if empty_id is None else text_table[empty_id : empty_id + 1]
    guidance = (cfg.guidance_preservation, empty, unadapted) if cfg.guidance_preservation else None
    guided = (cfg.loss_guidance_scale, empty) if cfg.loss_guidance_scale != 1 else None
    frozen_random = ItemRandomness(cfg.seed, 1, accelerator, cfg.batch_size, done)
    prior_random = ItemRandomness(cfg.seed, 2, accelerator, cfg.batch_size, done)

    # 7. Define the loss terms: frozen videos with the motion adapter on, prior videos with it off
    def frozen_loss():
        batch = next(frozen_stream)
        if motion is not None:  # ON for frozen customized videos; off for moving stills, which move
            motion.set_scale(0.0 if cfg.moving_stills else 1.0)
        text = text_table[batch["prompt_id"]]
        return video_loss(
            model,
            noise_scheduler,
            batch["latents"],
            text,
            cfg.snr_gamma,
            frozen_random.next(len(batch["latents"])),
            agreement=cfg.frame_agreement,
            teacher=None if teacher is None else functools.partial(t2i_prediction, backend, teacher, text=text),
            guidance=guidance,
            min_timestep=cfg.spatial_min_timestep,
            guided=guided,
        )

    def prior_loss():
        batch = next(prior_stream)
        if motion is not None:
            motion.set_scale(0.0)  # OFF for prior-preservation videos
        return cfg.prior_loss_weight * video_loss(
            model,
            noise_scheduler,
            batch["latents"],
            text_table[batch["prompt_id"]],
            cfg.snr_gamma,
            prior_random.next(len(batch["latents"])),
            motion_only=cfg.prior_loss == "motion",
            min_timestep=cfg.spatial_min_timestep,
        )

    terms = [frozen_loss, prior_loss] if prior_stream is not None else [frozen_loss]  # back-propagated in turn

    # 8. Training loop
    validate = spatial_validation(accelerator, pipe, motion, cfg, image_prompts)
    sampled = time.perf_counter()
    losses = train(
        accelerator,
        model,
        optimizer,
        schedule,
        cfg,
        lambda: terms,
        start,
        desc="spatial adapters",
        examples={"frozen videos of the customized T2I's images": len(images), "prior videos": len(priors)},
        validate=validate,
    )
    seconds = {"sampling": sampled - started, "training": time.perf_counter() - sampled}  # this process's wall time

    # 9. Save the adapters, check them against naive injection, and write the run record
    accelerator.wait_for_everyone()
    if motion is not None:
        motion.unbake()  # the UNet's own weights again, for the fingerprint
    if accelerator.is_main_process:
        save_customization(output, cfg, spatial, weights_fingerprint(pipe.unet))
        validation = (
            check_against_naive(pipe, spatial, motion, cfg, check_prompts, output, references) if checked else None
        )
        write_run_record(
            output / CUSTOMIZE_RUN,
            cfg,
            losses,
            images=len(images),
            prior_videos=len(priors),
            seconds=seconds,
            validation=validation and {k: validation[k] for k in ("means", "difference", "worse_than_naive")},
        )
    model, optimizer = accelerator.free_memory(model, optimizer)  # before the group goes: setup.make_accelerator
    accelerator.end_training()
    return output / SPATIAL_ADAPTERS


def spatial_validation(accelerator, pipe, motion: MotionLoRA | None, cfg: CustomizeConfig, image_prompts: list[str]):
    """`--validation-every`: videos with the spatial adapters at --validation-motion-scale (default 0, the inference
    setting); the next training term sets the motion scale it needs. Not under FSDP: the UNet is sharded."""
    if cfg.validation_every and accelerator.distributed_type == DistributedType.FSDP:
        logger.warning("--validation-every: no validation videos under FSDP (the UNet is sharded)")
        return None

    @contextlib.contextmanager
    def setting():
        if motion is not None:
            motion.set_scale(cfg.validation_motion_scale)
        yield

    return periodic_validation(accelerator, pipe, cfg, validation_prompts(cfg, image_prompts), setting)


def save_customization(output: Path, cfg: CustomizeConfig, spatial: SpatialAdapters, fingerprint: str) -> None:
    """The adapter file, and a record of everything `generate --customization` needs to rebuild the model."""
    sources = customization_sources(cfg)
    spatial.save(
        output / SPATIAL_ADAPTERS,
        extra_metadata={**{k: json.dumps(v) for k, v in sources.items()}, FINGERPRINT_KEY: fingerprint},
    )
    write_customization(output, {**sources, "spatial_adapters": SPATIAL_ADAPTERS})
