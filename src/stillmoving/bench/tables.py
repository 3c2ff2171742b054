"""The tables `stillmoving bench` prints."""

from __future__ import annotations

from rich.table import Table

from stillmoving.bench.run import PresetResult


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{suffix}"


def training_table(results: list[PresetResult]) -> Table:
    table = Table(
        "preset",
        "stage",
        "batches",
        "trained params",
        "s/step",
        "first step s",
        "peak MiB",
        "GFLOP/step",
        "MFU",
        "ratio",
        title="training step, median of interleaved rounds (floor: fwd + input-grad bwd of V)",
    )
    vs = {
        "motion": ("motion_over_floor", "x floor"),
        "spatial": ("spatial_over_floor", "x floor"),
        "straightforward": ("straightforward_over_spatial", "x spatial"),
    }
    for result in results:
        for stage in result.stages.values():
            key, label = vs.get(stage.stage, (None, ""))
            ratio = _fmt(result.ratios[key], ".2f", label) if key else ""
            table.add_row(
                result.preset,
                stage.stage,
                str(stage.batches_per_step),
                f"{stage.trainable_parameters:,}",
                stage.error or _fmt(stage.seconds_per_step, ".4f"),
                _fmt(stage.first_step_seconds, ".2f"),
                _fmt(stage.peak_memory_mb, ".0f"),
                _fmt(stage.flops_per_step and stage.flops_per_step / 1e9, ".2f"),
                _fmt(stage.mfu and 100 * stage.mfu, ".1f", "%"),
                ratio,
            )
    return table


def generation_table(results: list[PresetResult]) -> Table:
    table = Table(
        "preset",
        "denoising steps",
        "s/video",
        "s/video + spatial adapters",
        "overhead",
        title="generation (one pipeline call, classifier-free guidance; medians)",
    )
    for result in results:
        gen = result.generation
        table.add_row(
            result.preset,
            str(gen.denoising_steps),
            gen.error or _fmt(gen.seconds_per_video, ".3f"),
            _fmt(gen.seconds_per_video_with_spatial_adapters, ".3f"),
            _fmt(gen.spatial_overhead_percent, "+.1f", "%"),
        )
    return table


def customize_table(results: list[PresetResult]) -> Table | None:
    """The whole-command comparison, when it ran."""
    rows = [r for r in results if r.customize]
    if not rows:
        return None
    table = Table(
        "preset",
        "implementation",
        "sampling s",
        "training s",
        "total s",
        "peak MiB",
        "speed-up",
        title="whole customization (sample images and prior videos, then train the spatial adapters)",
    )
    for result in rows:
        c = result.customize
        speedups = {"stillmoving": c["speedup"], "stillmoving_cached_priors": c["speedup_cached_priors"]}
        for name in ("stillmoving", "stillmoving_cached_priors", "straightforward"):
            run = c[name]
            speedup = f"{speedups[name]:.2f}x" if name in speedups else ""
            table.add_row(
                result.preset,
                name.replace("_", " "),
                f"{run['sampling_seconds']:.1f}",
                f"{run['training_seconds']:.1f}",
                f"{run['total_seconds']:.1f}",
                _fmt(run.get("peak_memory_mb"), ".0f"),
                speedup,
            )
    return table
