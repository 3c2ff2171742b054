"""One `stillmoving bench` run: every preset's stages in interleaved rounds, generation, and the report."""

from __future__ import annotations

import gc
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from diffusers import DiffusionPipeline
from diffusers.models.attention_processor import AttnProcessor

from stillmoving.adapters.spatial import SpatialAdapters
from stillmoving.bench.measure import Contender, Measured, measure_interleaved, memory_measure, peak_flops, sync
from stillmoving.bench.models import PRESETS, PRIOR_PROMPT, Preset, build_video_model, make_batch
from stillmoving.bench.steps import Rig, floor_step, motion_step, spatial_step, straightforward_step
from stillmoving.errors import StillMovingError
from stillmoving.files import write_text
from stillmoving.pipeline import attach_spatial_adapters
from stillmoving.validation import DTYPES, check_device, one_of

GENERATION_STEPS = 4  # denoising steps per generated video


@dataclass
class BenchSettings:
    """One `stillmoving bench` run; the same settings apply to every preset."""

    presets: list[str]  # keys of PRESETS
    steps: int = 5  # timing rounds (one step of every stage each), after a warm-up and a FLOP-counted step
    batch_size: int = 1  # videos per batch; the spatial step takes two batches (frozen + prior)
    device: str = "cpu"  # cpu or cuda[:i]
    dtype: str = "float32"  # frozen weights and autocast of motion/spatial/floor; straightforward stays fp32
    gradient_checkpointing: bool = False  # in the video UNet, for every stage
    seed: int = 0  # random weights of tiny/sd15, the batch, the noise
    customize_steps: int = 0  # > 0: also time the whole `customize` command against a straightforward one
    customize_items: int = 8  # images sampled from M1 and prior videos sampled from V in that comparison
    attention: str = "sdpa"  # sdpa: diffusers' default AttnProcessor2_0; classic: AttnProcessor (bmm + softmax)


@dataclass
class StageResult:
    """One kind of training step: the median over the timing rounds."""

    stage: str  # motion | spatial | floor | straightforward
    batches_per_step: int  # batches of batch_size videos one step processes
    trainable_parameters: int  # parameters the optimizer steps (0 for the floor)
    seconds_per_step: float | None  # None when the stage failed (see error)
    peak_memory_mb: float | None  # see BenchReport.memory_measure
    flops_per_step: float | None  # forward + backward, counted by FlopCounterMode
    mfu: float | None  # model FLOPs utilisation; None on CPU or an unknown GPU
    first_step_seconds: float | None = None  # the untimed warm-up step
    error: str | None = None  # "out of memory" when the step does not fit the device


@dataclass
class GenerationResult:
    """Seconds per generated video (one pipeline call), without and with spatial adapters attached."""

    denoising_steps: int
    videos: int  # timed calls of each kind, alternated, after one warm-up call of each
    seconds_per_video: float | None  # median; None when a call did not fit (see error)
    seconds_per_video_with_spatial_adapters: float | None  # median
    spatial_overhead_percent: float | None  # median over the pairs of (with / without - 1), in percent
    seconds: list[float] = field(default_factory=list)  # every timed call without adapters, in order
    seconds_with_spatial_adapters: list[float] = field(default_factory=list)  # and with, each right after
    error: str | None = None  # "out of memory" when a call does not fit the device


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
    customize: dict | None = None  # whole-command comparison (bench/whole.py), when customize_steps > 0


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
    one_of("--dtype", settings.dtype, tuple(DTYPES))
    if settings.steps < 1 or settings.batch_size < 1 or settings.customize_steps < 0 or settings.customize_items < 1:
        raise StillMovingError(
            "--steps, --batch-size and --customize-items must be at least 1, --customize-steps 0 or more"
        )
    if not (settings.device == "cpu" or settings.device.startswith("cuda")):
        raise StillMovingError(f"--device must be cpu or cuda, not {settings.device!r}")
    if settings.attention not in ("sdpa", "classic"):
        raise StillMovingError(f"--attention must be sdpa or classic, not {settings.attention!r}")
    check_device(settings.device)


def _timed_call(pipe: DiffusionPipeline, preset: Preset, device: torch.device, seed: int) -> float:
    """Seconds of one pipeline call, decoding included."""
    sync(device)
    start = time.perf_counter()
    pipe(
        PRIOR_PROMPT,
        num_frames=preset.num_frames,
        height=preset.resolution,
        width=preset.frame_width,
        num_inference_steps=GENERATION_STEPS,
        generator=torch.Generator().manual_seed(seed),
        output_type="np",
    )
    sync(device)
    return time.perf_counter() - start


def bench_generation(
    pipe: DiffusionPipeline, preset: Preset, spatial: SpatialAdapters, device: torch.device, videos: int
) -> GenerationResult:
    """Pipeline calls of the bare video model and with `spatial` attached (docs/method.md, stage 3), alternated so
    that a machine slowing down or speeding up weighs on both alike; the overhead is the median of each pair's
    ratio, which a slow moment of the machine moves less than a ratio of two medians. A call that runs out of GPU
    memory is reported so, and the training figures measured before it are kept."""
    plain, adapted = [], []
    try:
        for seed in range(videos + 1):
            plain.append(_timed_call(pipe, preset, device, seed))
            attach_spatial_adapters(pipe, spatial)
            adapted.append(_timed_call(pipe, preset, device, seed))
            spatial.detach()
    except torch.cuda.OutOfMemoryError:
        spatial.detach()
        gc.collect()
        torch.cuda.empty_cache()
        return GenerationResult(GENERATION_STEPS, videos, None, None, None, error="out of memory")
    plain, adapted = plain[1:], adapted[1:]
    overhead = 100 * statistics.median(a / p - 1 for p, a in zip(plain, adapted))
    return GenerationResult(
        GENERATION_STEPS, videos, statistics.median(plain), statistics.median(adapted), overhead, plain, adapted
    )


def _stage_result(stage: str, measured: Measured, batches: int, trainable: int, device: torch.device) -> StageResult:
    peak = peak_flops(device)
    mfu = measured.flops / measured.seconds / peak if peak and measured.seconds else None
    return StageResult(
        stage,
        batches,
        trainable,
        measured.seconds,
        measured.peak_memory_mb,
        measured.flops,
        mfu,
        measured.first_step_seconds,
        measured.error,
    )


def _ratio(numerator: StageResult, denominator: StageResult, batches: int = 1) -> float | None:
    if numerator.seconds_per_step is None or denominator.seconds_per_step is None:
        return None
    return numerator.seconds_per_step / (batches * denominator.seconds_per_step)


def bench_preset(name: str, settings: BenchSettings) -> PresetResult:
    """Every stage of one preset on one shared model, timed in interleaved rounds; then generation."""
    preset, device, dtype = PRESETS[name], torch.device(settings.device), DTYPES[settings.dtype]
    pipe = build_video_model(preset, device, settings.seed)
    batch = make_batch(pipe, preset, settings.batch_size, device)
    unet_parameters = sum(p.numel() for p in pipe.unet.parameters())
    rig = Rig(pipe, batch, preset.num_frames, dtype, settings.gradient_checkpointing)
    if settings.attention == "classic":
        pipe.unet.set_attn_processor(AttnProcessor())
    contenders = [
        Contender("floor", rig.enter_floor, floor_step(rig)),
        Contender("motion", rig.enter_motion, motion_step(rig)),
        Contender("spatial", rig.enter_spatial, spatial_step(rig)),
        Contender("straightforward", rig.enter_straightforward, straightforward_step(rig)),
    ]
    measured = measure_interleaved(contenders, settings.steps, device)
    motion_params = sum(p.numel() for p in rig.motion.trainable_parameters())
    spatial_params = sum(p.numel() for p in rig.spatial.trainable_parameters())
    shape = {
        "floor": (1, 0),
        "motion": (1, motion_params),
        "spatial": (2, spatial_params),
        "straightforward": (2, spatial_params),
    }
    stages = {stage: _stage_result(stage, measured[stage], *shape[stage], device) for stage in shape}
    ratios = {
        "motion_over_floor": _ratio(stages["motion"], stages["floor"]),
        "spatial_over_floor": _ratio(stages["spatial"], stages["floor"], 2),
        "straightforward_over_spatial": _ratio(stages["straightforward"], stages["spatial"]),
    }
    rig.for_generation()
    generation = bench_generation(pipe, preset, rig.spatial, device, videos=max(2, settings.steps))
    del rig, pipe, batch
    gc.collect()
    customize = None
    if settings.customize_steps:
        from stillmoving.bench.whole import compare_customize

        customize = compare_customize(preset, settings)
    return PresetResult(
        name,
        preset.num_frames,
        preset.resolution,
        preset.frame_width,
        unet_parameters,
        stages,
        ratios,
        generation,
        customize,
    )


def environment(device: torch.device) -> dict:
    import diffusers

    return {
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "cpu_threads": torch.get_num_threads(),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "peak_bf16_flops": peak_flops(device),
    }


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
