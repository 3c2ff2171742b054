"""`stillmoving bench`: what one training step of each Still-Moving stage costs, against a floor.

For each preset (a model size) one run measures, on the same cached batch, seconds per step, peak memory
and model FLOPs (forward + backward, torch's FlopCounterMode) of

  motion           stage 1: MotionLoRA on the temporal q/k/v, a frozen video of cached latents at alpha 1
  spatial          stage 2: spatial adapters, one frozen-video batch at alpha 1 + one prior batch at alpha 0
  floor            forward + input-gradient backward of the frozen video model on one batch: no adapter
                   inside the UNet trains for less, since its gradient must cross the whole video model
  straightforward  stage 2 written the easy way: every frame VAE-encoded and every prompt text-encoded each
                   step, fp32, every frozen weight left with requires_grad (gradients computed, never used)

and seconds per generated video with and without spatial adapters attached. On CUDA, MFU is FLOPs per
step / seconds per step / the GPU's peak dense bf16 FLOP/s. All models are random or shipped: nothing is
downloaded. The sd15 presets are SD1.5 + AnimateDiff mm_sd_v15_v2 shapes; they are meant for a GPU.
"""

from __future__ import annotations

import ctypes
import gc
import json
import resource
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from diffusers import (AnimateDiffPipeline, AutoencoderKL, DDIMScheduler, MotionAdapter,
                       UNet2DConditionModel)
from diffusers.training_utils import cast_training_params
from rich.table import Table
from torch.utils.flop_counter import FlopCounterMode
from transformers import CLIPTextConfig, CLIPTextModel

from stillmoving.adapters.motion import MotionLoRA
from stillmoving.adapters.spatial import SpatialAdapters
from stillmoving.data.frozen import encode_pixels, encode_prompts, frozen_video, random_frozen_frames
from stillmoving.errors import StillMovingError
from stillmoving.files import write_text
from stillmoving.formats import SHIPPED_CONFIGS
from stillmoving.loading import load_t2v
from stillmoving.pipeline import attach_spatial_adapters
from stillmoving.training.common import training_scheduler
from stillmoving.training.config import CustomizeConfig, MotionAdapterConfig
from stillmoving.training.loop import VideoDenoiser, freeze, video_loss
from stillmoving.world.architectures import build_pipeline
from stillmoving.world.tokenizer import build_tokenizer
from stillmoving.world.weights import shipped_model


@dataclass(frozen=True)
class Preset:
    """A model size to benchmark and the clips it trains on."""

    model: str  # "tiny": the tests' architecture; "world": the shipped weights; "sd15": random SD1.5 + mm_sd_v15_v2
    num_frames: int  # frames per training video
    resolution: int  # square frames, in pixels


PRESETS: dict[str, Preset] = {
    "tiny": Preset("tiny", num_frames=4, resolution=32),  # the shapes tests/conftest.py generates at
    "world": Preset("world", num_frames=8, resolution=32),  # the shipped world T2V as it was trained
    "sd15-256": Preset("sd15", num_frames=16, resolution=256),
    "sd15-512": Preset("sd15", num_frames=16, resolution=512),  # AnimateDiff v2's own training size
}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
WORDS = ["a", "sks", "dog", "running", "on", "the", "beach", "photo", "of"]  # tokenizer vocabulary of random models
IMAGE_PROMPT, PRIOR_PROMPT = "a photo of a sks dog", "a dog running on the beach"
MOTION_RANK = MotionAdapterConfig.motion_rank  # the training commands' defaults
SPATIAL_RANK = CustomizeConfig.spatial_rank
PRIOR_LOSS_WEIGHT = CustomizeConfig.prior_loss_weight
LEARNING_RATE, MAX_GRAD_NORM = 1e-4, 1.0
GENERATION_STEPS = 4  # denoising steps per generated video
# Dense bf16 tensor-core peaks (NVIDIA data sheets), matched in this order against the CUDA device name.
PEAK_BF16_FLOPS = {"H100 PCIe": 756e12, "H100 NVL": 835e12, "H100": 989e12, "H200": 989e12, "A100": 312e12}


@dataclass
class BenchSettings:
    """One `stillmoving bench` run; the same settings apply to every preset."""

    presets: list[str]  # keys of PRESETS
    steps: int = 5  # timed steps per stage, after two warm-up steps (the second one counts FLOPs)
    batch_size: int = 1  # videos per batch; the spatial step takes two batches (frozen + prior)
    device: str = "cpu"  # cpu or cuda[:i]
    dtype: str = "float32"  # frozen weights and autocast of motion/spatial/floor; straightforward stays fp32
    gradient_checkpointing: bool = False  # in the video UNet, for every stage
    seed: int = 0  # random weights of tiny/sd15, the batch, the noise


@dataclass
class StageResult:
    """One kind of training step, timed over `steps` steps."""

    stage: str  # motion | spatial | floor | straightforward
    batches_per_step: int  # batches of batch_size videos one step processes
    trainable_parameters: int  # parameters the optimizer steps (0 for the floor)
    seconds_per_step: float | None  # None when the stage failed (see error)
    peak_memory_mb: float | None  # see BenchReport.memory_measure
    flops_per_step: float | None  # forward + backward, counted by FlopCounterMode
    mfu: float | None  # model FLOPs utilisation; None on CPU or an unknown GPU
    error: str | None = None  # "out of memory" when the step does not fit the device


@dataclass
class GenerationResult:
    """Seconds per generated video (one pipeline call), without and with spatial adapters attached."""

    denoising_steps: int
    videos: int  # timed calls of each kind, after one warm-up call of each
    seconds_per_video: float
    seconds_per_video_with_spatial_adapters: float
    spatial_overhead_percent: float


@dataclass
class PresetResult:
    preset: str
    num_frames: int
    height: int
    width: int
    unet_parameters: int  # the video UNet's own parameters, adapters excluded
    stages: dict[str, StageResult]
    ratios: dict[str, float | None]  # motion/spatial over the floor of as many batches; straightforward over spatial
    generation: GenerationResult


@dataclass
class BenchReport:
    settings: BenchSettings
    environment: dict[str, str | float | int | None]
    memory_measure: str  # what peak_memory_mb means on this device
    presets: list[PresetResult] = field(default_factory=list)


def parse_presets(specs: list[str]) -> list[str]:
    """Preset names from repeated and comma-separated options, in order, without repeats."""
    names = list(dict.fromkeys(name.strip() for spec in specs for name in spec.split(",") if name.strip()))
    unknown = [name for name in names if name not in PRESETS]
    if unknown or not names:
        raise StillMovingError(f"unknown preset {(unknown or [''])[0]!r}; choose from {', '.join(PRESETS)}")
    return names


def check_settings(settings: BenchSettings) -> None:
    """Refuse impossible settings before any model is built."""
    parse_presets(settings.presets)
    if settings.dtype not in DTYPES:
        raise StillMovingError(f"--dtype must be float32, bfloat16 or float16, not {settings.dtype!r}")
    if settings.steps < 1 or settings.batch_size < 1:
        raise StillMovingError("--steps and --batch-size must be at least 1")
    if not (settings.device == "cpu" or settings.device.startswith("cuda")):
        raise StillMovingError(f"--device must be cpu or cuda, not {settings.device!r}")
    if settings.device.startswith("cuda") and not torch.cuda.is_available():
        raise StillMovingError("--device cuda: no CUDA device is available")


# ---- models and data ------------------------------------------------------------------------------------

def sd15_pipeline(tokenizer_dir: str) -> AnimateDiffPipeline:
    """SD1.5 (shipped configs) inflated with mm_sd_v15_v2-shaped motion modules, random weights.

    v2, not v1: a 32-frame positional table and a motion mid block (mm_sd_v15 has 24 and no mid block).
    The tokenizer is a small offline CLIPTokenizer; its ids index the full 49408-token embedding.
    """
    def config(cls, name):
        return cls.load_config(str(SHIPPED_CONFIGS / name))

    return AnimateDiffPipeline(
        vae=AutoencoderKL.from_config(config(AutoencoderKL, "vae")),
        text_encoder=CLIPTextModel(CLIPTextConfig.from_pretrained(str(SHIPPED_CONFIGS / "text_encoder"))),
        tokenizer=build_tokenizer(WORDS, tokenizer_dir, max_length=77),
        unet=UNet2DConditionModel.from_config(config(UNet2DConditionModel, "unet")),
        motion_adapter=MotionAdapter.from_config(config(MotionAdapter, "motion_adapter")),
        scheduler=DDIMScheduler.from_config(config(DDIMScheduler, "scheduler")),
    )


def build_video_model(preset: Preset, device: torch.device, seed: int) -> AnimateDiffPipeline:
    """The preset's T2V in fp32 on `device` (random weights are initialised there, which is fast on a GPU)."""
    torch.manual_seed(seed)
    if preset.model == "world":
        pipe = load_t2v(shipped_model())
    else:
        with tempfile.TemporaryDirectory() as tokenizer_dir, torch.device(device):
            if preset.model == "tiny":
                pipe = build_pipeline("tiny", WORDS, tokenizer_dir, resolution=preset.resolution, seed=seed)
            else:
                pipe = sd15_pipeline(tokenizer_dir)
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@dataclass
class Batch:
    """One step's inputs, on the device: pixels for the straightforward step, cached latents for ours."""

    images: torch.Tensor  # (b, 3, H, W) in [-1, 1]: the customized T2I's images
    prior_pixels: torch.Tensor  # (b, f, 3, H, W): prior-preservation videos
    image_latents: torch.Tensor  # (b, c, h, w), encoded once
    prior_latents: torch.Tensor  # (b, c, f, h, w), encoded once
    prompts: list[str]  # one per video
    text: torch.Tensor  # (b, seq, dim), encoded once


def make_batch(pipe: AnimateDiffPipeline, preset: Preset, batch_size: int, device: torch.device) -> Batch:
    """Random pixels, encoded once into the latent and text caches the training stages read."""
    size, frames = preset.resolution, preset.num_frames
    images = torch.rand(batch_size, 3, size, size) * 2 - 1
    prior_pixels = torch.rand(batch_size, frames, 3, size, size) * 2 - 1
    prior_latents = encode_pixels(pipe.vae, prior_pixels.flatten(0, 1)).unflatten(0, (batch_size, frames))
    prompts = [IMAGE_PROMPT] * batch_size
    return Batch(images=images.to(device), prior_pixels=prior_pixels.to(device),
                 image_latents=encode_pixels(pipe.vae, images).to(device),
                 prior_latents=prior_latents.transpose(1, 2).contiguous().to(device),  # (b, c, f, h, w)
                 prompts=prompts, text=encode_prompts(pipe.tokenizer, pipe.text_encoder, prompts).to(device))


# ---- measuring ------------------------------------------------------------------------------------------

def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _status_kb(key: str) -> int | None:
    """A `kB` line of /proc/self/status (VmRSS, VmHWM), or None off Linux."""
    try:
        with open("/proc/self/status") as status:
            line = next((line for line in status if line.startswith(key + ":")), None)
    except OSError:
        return None
    return int(line.split()[1]) if line else None


def _reset_rss_peak() -> bool:
    """Free what can be freed, then reset the kernel's peak-RSS mark (Linux >= 4.0); False if not possible."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed heap back, so the next stage starts from its real RSS
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def memory_measure(device: torch.device) -> str:
    if device.type == "cuda":
        return "CUDA max_memory_allocated during the stage, weights included (MiB)"
    return "peak resident memory during the stage above its level at the start (MiB, CPU)"


class PeakMemory:
    """Peak memory while the block runs, in MiB (see `memory_measure`)."""

    def __init__(self, device: torch.device):
        self.device, self.peak_mb, self.start_kb = device, None, None

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            gc.collect()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self.resettable = _reset_rss_peak()
            self.start_kb = _status_kb("VmRSS") if self.resettable else self._lifetime_peak_kb()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            self.peak_mb = torch.cuda.max_memory_allocated(self.device) / 2**20
            return
        # Without a resettable mark, the growth of the process-lifetime peak: a lower bound of the stage's own.
        peak = _status_kb("VmHWM") if self.resettable else self._lifetime_peak_kb()
        if self.start_kb is not None and peak is not None:
            self.peak_mb = max(0, peak - self.start_kb) / 1024

    @staticmethod
    def _lifetime_peak_kb() -> int:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux


def peak_flops(device: torch.device) -> float | None:
    """The GPU's peak dense bf16 FLOP/s from PEAK_BF16_FLOPS, or None (CPU, unknown GPU)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((flops for key, flops in PEAK_BF16_FLOPS.items() if key in name), None)


def count_flops(step: Callable[[], None]) -> float:
    """FLOPs of one call of `step`, forward and backward (matmuls, convolutions, attention)."""
    with FlopCounterMode(display=False) as counter:
        step()
    return float(counter.get_total_flops())


def measure(stage: str, step: Callable[[], None], settings: BenchSettings, device: torch.device,
            batches_per_step: int, trainable: list[torch.nn.Parameter]) -> StageResult:
    """Warm up (plain, then FLOP-counted), then time `settings.steps` steps; peak memory over all of them."""
    parameters = sum(p.numel() for p in trainable)
    try:
        with PeakMemory(device) as memory:
            step()
            flops = count_flops(step)
            _sync(device)
            start = time.perf_counter()
            for _ in range(settings.steps):
                step()
            _sync(device)
            seconds = (time.perf_counter() - start) / settings.steps
    except torch.cuda.OutOfMemoryError:  # the step does not fit: say so, go on with the next
        gc.collect()
        torch.cuda.empty_cache()
        return StageResult(stage, batches_per_step, parameters, None, None, None, None, error="out of memory")
    peak = peak_flops(device)
    mfu = flops / seconds / peak if peak else None
    return StageResult(stage, batches_per_step, parameters, seconds, memory.peak_mb, flops, mfu)


# ---- the steps ------------------------------------------------------------------------------------------

def _precision(device: torch.device, dtype: torch.dtype):
    """Autocast as accelerate's mixed precision applies it to the training stages."""
    return torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)


def _optimizer_step(params: list[torch.nn.Parameter], optimizer: torch.optim.Optimizer) -> None:
    """What the training loop does after backward: clip, step, clear."""
    torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def spatial_loss(model: VideoDenoiser, scheduler, motion: MotionLoRA, frozen: torch.Tensor, prior: torch.Tensor,
                 text: torch.Tensor) -> torch.Tensor:
    """Stage 2's loss (training/spatial_stage.py): frozen videos at alpha 1, prior videos at alpha 0."""
    motion.set_scale(1.0)
    loss = video_loss(model, scheduler, frozen, text)
    motion.set_scale(0.0)
    return loss + PRIOR_LOSS_WEIGHT * video_loss(model, scheduler, prior, text)


def floor_step(model: VideoDenoiser, scheduler, batch: Batch, precision) -> Callable[[], None]:
    """Forward and backward to the input latents; no parameter requires grad."""
    def step():
        latents = batch.prior_latents.detach().requires_grad_(True)
        with precision():
            loss = video_loss(model, scheduler, latents, batch.text)
        loss.backward()
    return step


def motion_step(model: VideoDenoiser, scheduler, batch: Batch, num_frames: int, params, precision) -> Callable[[], None]:
    """Stage 1 (training/motion_stage.py): one random frame of each cached video, repeated, at alpha 1."""
    optimizer = torch.optim.AdamW(params, lr=LEARNING_RATE)

    def step():
        frozen = random_frozen_frames(batch.prior_latents, num_frames)  # (b, c, f, h, w)
        with precision():
            loss = video_loss(model, scheduler, frozen, batch.text)
        loss.backward()
        _optimizer_step(params, optimizer)
    return step


def ours_spatial_step(model: VideoDenoiser, scheduler, motion: MotionLoRA, batch: Batch, num_frames: int,
                      params, precision) -> Callable[[], None]:
    """Stage 2 on the caches: image latents repeated into frozen videos, prompts encoded once."""
    optimizer = torch.optim.AdamW(params, lr=LEARNING_RATE)
    frozen = frozen_video(batch.image_latents, num_frames)  # (b, c, f, h, w)

    def step():
        with precision():
            loss = spatial_loss(model, scheduler, motion, frozen, batch.prior_latents, batch.text)
        loss.backward()
        _optimizer_step(params, optimizer)
    return step


def _encode_frames(vae: AutoencoderKL, pixels: torch.Tensor) -> torch.Tensor:
    """(b, f, 3, H, W) -> (b, c, f, h, w), every frame through the VAE, with autograd."""
    latents = vae.encode(pixels.flatten(0, 1)).latent_dist.sample() * vae.config.scaling_factor
    return latents.unflatten(0, pixels.shape[:2]).transpose(1, 2)


def straightforward_step(pipe: AnimateDiffPipeline, model: VideoDenoiser, scheduler, motion: MotionLoRA,
                         batch: Batch, num_frames: int, params) -> Callable[[], None]:
    """Stage 2 as it is easy to write: no caches, fp32, nothing frozen for autograd; only the adapters step."""
    optimizer = torch.optim.AdamW(params, lr=LEARNING_RATE)

    def step():
        tokens = pipe.tokenizer(batch.prompts, padding="max_length", max_length=pipe.tokenizer.model_max_length,
                                truncation=True, return_tensors="pt").input_ids.to(batch.text.device)
        text = pipe.text_encoder(tokens)[0]
        images = batch.images.unsqueeze(1).expand(-1, num_frames, -1, -1, -1)  # the frozen video, frame by frame
        frozen, prior = _encode_frames(pipe.vae, images), _encode_frames(pipe.vae, batch.prior_pixels)
        spatial_loss(model, scheduler, motion, frozen, prior, text).backward()
        _optimizer_step(params, optimizer)
    return step


def _timed_call(pipe: AnimateDiffPipeline, preset: Preset, device: torch.device, seed: int) -> float:
    """Seconds of one pipeline call, decoding included."""
    _sync(device)
    start = time.perf_counter()
    pipe(PRIOR_PROMPT, num_frames=preset.num_frames, height=preset.resolution, width=preset.resolution,
         num_inference_steps=GENERATION_STEPS, generator=torch.Generator().manual_seed(seed), output_type="np")
    _sync(device)
    return time.perf_counter() - start


def bench_generation(pipe: AnimateDiffPipeline, preset: Preset, spatial: SpatialAdapters, device: torch.device,
                     videos: int) -> GenerationResult:
    """Pipeline calls of the bare video model and with `spatial` attached (METHOD.md, stage 3), alternated so
    that a machine slowing down or speeding up weighs on both alike; one warm-up call of each first."""
    plain, adapted = [], []
    for seed in range(videos + 1):
        plain.append(_timed_call(pipe, preset, device, seed))
        attach_spatial_adapters(pipe, spatial)
        adapted.append(_timed_call(pipe, preset, device, seed))
        spatial.detach()
    plain_s, adapted_s = sum(plain[1:]) / videos, sum(adapted[1:]) / videos
    return GenerationResult(GENERATION_STEPS, videos, plain_s, adapted_s, 100 * (adapted_s - plain_s) / plain_s)


# ---- one preset, one run --------------------------------------------------------------------------------

def _ratio(numerator: StageResult, denominator: StageResult, batches: int = 1) -> float | None:
    if numerator.seconds_per_step is None or denominator.seconds_per_step is None:
        return None
    return numerator.seconds_per_step / (batches * denominator.seconds_per_step)


def bench_preset(name: str, settings: BenchSettings) -> PresetResult:
    """Every stage of one preset on one model, in an order that only ever adds to it: floor, motion, spatial,
    straightforward (fp32, all weights requiring grad), then generation without the motion adapter."""
    preset, device, dtype = PRESETS[name], torch.device(settings.device), DTYPES[settings.dtype]
    pipe = build_video_model(preset, device, settings.seed)
    batch = make_batch(pipe, preset, settings.batch_size, device)
    unet_parameters = sum(p.numel() for p in pipe.unet.parameters())
    freeze(pipe.unet, pipe.vae, pipe.text_encoder)
    pipe.to(dtype=dtype)  # frozen weights in the training precision, as training/common.py loads them
    if settings.gradient_checkpointing:
        pipe.unet.enable_gradient_checkpointing()
    scheduler, precision = training_scheduler(pipe), lambda: _precision(device, dtype)
    run = lambda stage, step, batches, params: measure(stage, step, settings, device, batches, params)  # noqa: E731

    floor = run("floor", floor_step(VideoDenoiser(pipe.unet), scheduler, batch, precision), 1, [])
    motion = MotionLoRA.inject(pipe.unet, rank=MOTION_RANK)
    cast_training_params(pipe.unet)  # the adapter in fp32, as stage 1 trains it
    params = motion.trainable_parameters()
    motion_result = run("motion", motion_step(VideoDenoiser(pipe.unet), scheduler, batch, preset.num_frames,
                                              params, precision), 1, params)
    freeze(pipe.unet)  # stage 2 keeps the motion adapter frozen
    spatial = SpatialAdapters.for_unet(pipe.unet, SPATIAL_RANK).to(device).attach(pipe.unet)
    model, params = VideoDenoiser(pipe.unet, spatial), spatial.trainable_parameters()
    spatial_result = run("spatial", ours_spatial_step(model, scheduler, motion, batch, preset.num_frames,
                                                      params, precision), 2, params)
    pipe.to(dtype=torch.float32)
    for module in (pipe.unet, pipe.vae, pipe.text_encoder):
        module.requires_grad_(True)
    straightforward = run("straightforward", straightforward_step(pipe, model, scheduler, motion, batch,
                                                                  preset.num_frames, params), 2, params)
    for module in (pipe.unet, pipe.vae, pipe.text_encoder):
        module.requires_grad_(False)
        module.zero_grad(set_to_none=True)  # the straightforward step's unused gradients: a model's worth of memory
    pipe.unet.delete_adapters(motion.name)  # inference: the motion adapter removed (alpha = 0)
    spatial.detach()
    pipe.to(dtype=dtype)
    generation = bench_generation(pipe, preset, spatial, device, videos=max(2, settings.steps))
    stages = {r.stage: r for r in (floor, motion_result, spatial_result, straightforward)}
    ratios = {"motion_over_floor": _ratio(motion_result, floor), "spatial_over_floor": _ratio(spatial_result, floor, 2),
              "straightforward_over_spatial": _ratio(straightforward, spatial_result)}
    return PresetResult(name, preset.num_frames, preset.resolution, preset.resolution, unet_parameters, stages,
                        ratios, generation)


def environment(device: torch.device) -> dict:
    import diffusers

    return {"torch": torch.__version__, "diffusers": diffusers.__version__, "cpu_threads": torch.get_num_threads(),
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "peak_bf16_flops": peak_flops(device)}


def run_bench(settings: BenchSettings, on_preset: Callable[[PresetResult], None] | None = None) -> BenchReport:
    """Benchmark every preset in turn; `on_preset` sees each result as it is done."""
    check_settings(settings)
    settings.presets = parse_presets(settings.presets)
    device = torch.device(settings.device)
    report = BenchReport(settings, environment(device), memory_measure(device))
    for name in settings.presets:
        report.presets.append(bench_preset(name, settings))
        if on_preset:
            on_preset(report.presets[-1])
        gc.collect()
    return report


def write_report(report: BenchReport, path) -> None:
    write_text(path, json.dumps(asdict(report), indent=2) + "\n")


# ---- the tables the CLI prints --------------------------------------------------------------------------

def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{suffix}"


def training_table(results: list[PresetResult]) -> Table:
    table = Table("preset", "stage", "batches", "trained params", "s/step", "peak MiB", "GFLOP/step", "MFU",
                  "ratio", title="training step (motion, spatial: ours; floor: fwd + input-grad bwd)")
    for result in results:
        vs = {"motion": ("motion_over_floor", "x floor"), "spatial": ("spatial_over_floor", "x floor"),
              "straightforward": ("straightforward_over_spatial", "x spatial")}
        for stage in result.stages.values():
            key, label = vs.get(stage.stage, (None, ""))
            ratio = _fmt(result.ratios[key], ".2f", label) if key else ""
            table.add_row(result.preset, stage.stage, str(stage.batches_per_step), f"{stage.trainable_parameters:,}",
                          stage.error or _fmt(stage.seconds_per_step, ".4f"), _fmt(stage.peak_memory_mb, ".0f"),
                          _fmt(stage.flops_per_step and stage.flops_per_step / 1e9, ".2f"),
                          _fmt(stage.mfu and 100 * stage.mfu, ".1f", "%"), ratio)
    return table


def generation_table(results: list[PresetResult]) -> Table:
    table = Table("preset", "denoising steps", "s/video", "s/video + spatial adapters", "overhead",
                  title="generation (one pipeline call, classifier-free guidance)")
    for result in results:
        gen = result.generation
        table.add_row(result.preset, str(gen.denoising_steps), f"{gen.seconds_per_video:.3f}",
                      f"{gen.seconds_per_video_with_spatial_adapters:.3f}", f"{gen.spatial_overhead_percent:+.1f}%")
    return table
