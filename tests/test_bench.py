"""`stillmoving bench` end to end on the tiny preset: every field of every stage, ratios from the timings."""

import json
import statistics

import pytest
import torch
from test_cli import run

from stillmoving.bench import PRESETS, parse_presets
from stillmoving.errors import StillMovingError

STAGES = {"floor", "motion", "spatial", "straightforward"}
STAGE_FIELDS = {
    "stage",
    "batches_per_step",
    "trainable_parameters",
    "seconds_per_step",
    "peak_memory_mb",
    "flops_per_step",
    "mfu",
    "first_step_seconds",
    "error",
}
PRESET_FIELDS = {
    *("preset", "num_frames", "height", "width", "unet_parameters"),
    *("stages", "ratios", "generation", "customize"),
}
RATIOS = {"motion_over_floor", "spatial_over_floor", "straightforward_over_spatial"}
GENERATION_FIELDS = {
    *("denoising_steps", "videos", "seconds_per_video", "seconds_per_video_with_spatial_adapters"),
    *("spatial_overhead_percent", "seconds", "seconds_with_spatial_adapters", "error"),
}
WHOLE_FIELDS = {"steps", "items", "stillmoving", "stillmoving_cached_priors", "straightforward", "speedup"}
WHOLE_FIELDS |= {"speedup_cached_priors"}
RUN_FIELDS = {"sampling_seconds", "training_seconds", "total_seconds", "peak_memory_mb"}


@pytest.fixture
def one_thread():
    """The bench on one thread: two threads on a core another process is using run it ten times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_bench_tiny_writes_every_field(capsys, monkeypatch, tmp_path, one_thread):
    out = tmp_path / "bench.json"
    code, stdout, err = run(
        capsys,
        monkeypatch,
        "bench",
        "--preset",
        "tiny",
        "--steps",
        "1",
        "--customize-steps",
        "2",
        "--customize-items",
        "1",
        "-o",
        out,
    )
    assert code == 0, err
    assert "straightforward" in stdout and "spatial adapters" in stdout and "whole customization" in stdout
    report = json.loads(out.read_text())
    assert report["settings"]["presets"] == ["tiny"] and report["settings"]["steps"] == 1
    assert report["environment"]["device_name"] == "cpu" and report["memory_measure"]
    (result,) = report["presets"]
    check_preset_result(result, "tiny", customize=(2, 1))


def check_preset_result(result: dict, preset: str, customize: tuple[int, int] | None) -> None:
    """Every field of one preset's report (CPU), the ratios from the timings; `customize`: (steps, items) of the
    whole-command comparison, or None when it did not run."""
    size = PRESETS[preset]
    assert (result["preset"], result["num_frames"]) == (preset, size.num_frames)
    assert (result["height"], result["width"]) == (size.resolution, size.frame_width)
    assert set(result) == PRESET_FIELDS and result["unet_parameters"] > 0
    stages = result["stages"]
    assert set(stages) == STAGES
    for name, stage in stages.items():
        assert set(stage) == STAGE_FIELDS and stage["stage"] == name and stage["error"] is None
        assert stage["seconds_per_step"] > 0 and stage["flops_per_step"] > 0 and stage["first_step_seconds"] > 0
        assert stage["peak_memory_mb"] is not None and stage["peak_memory_mb"] >= 0
        assert stage["mfu"] is None  # CPU: no peak to compare with
    assert stages["floor"]["trainable_parameters"] == 0
    assert stages["spatial"]["trainable_parameters"] == stages["straightforward"]["trainable_parameters"] > 0
    assert stages["motion"]["trainable_parameters"] > 0
    assert (stages["spatial"]["batches_per_step"], stages["motion"]["batches_per_step"]) == (2, 1)
    # The straightforward step differentiates through the VAE and text encoder too: strictly more FLOPs.
    assert stages["straightforward"]["flops_per_step"] > stages["spatial"]["flops_per_step"]

    seconds = {name: stage["seconds_per_step"] for name, stage in stages.items()}
    ratios = result["ratios"]
    assert set(ratios) == RATIOS
    assert ratios["motion_over_floor"] == pytest.approx(seconds["motion"] / seconds["floor"])
    assert ratios["spatial_over_floor"] == pytest.approx(seconds["spatial"] / (2 * seconds["floor"]))
    assert ratios["straightforward_over_spatial"] == pytest.approx(seconds["straightforward"] / seconds["spatial"])

    gen = result["generation"]
    assert set(gen) == GENERATION_FIELDS and gen["error"] is None
    assert gen["seconds_per_video"] > 0 and gen["seconds_per_video_with_spatial_adapters"] > 0
    assert len(gen["seconds"]) == len(gen["seconds_with_spatial_adapters"]) == gen["videos"]
    assert gen["seconds_per_video"] == statistics.median(gen["seconds"])
    overhead = 100 * statistics.median(a / p - 1 for p, a in zip(gen["seconds"], gen["seconds_with_spatial_adapters"]))
    assert gen["spatial_overhead_percent"] == pytest.approx(overhead)

    whole = result["customize"]
    if customize is None:
        assert whole is None
        return
    assert set(whole) == WHOLE_FIELDS and (whole["steps"], whole["items"]) == customize
    for name in ("stillmoving", "stillmoving_cached_priors", "straightforward"):
        run_ = whole[name]
        assert set(run_) == RUN_FIELDS
        assert run_["sampling_seconds"] > 0 and run_["training_seconds"] > 0
        assert run_["total_seconds"] >= run_["sampling_seconds"] + run_["training_seconds"] - 1e-6
    assert whole["speedup"] == pytest.approx(
        whole["straightforward"]["total_seconds"] / whole["stillmoving"]["total_seconds"]
    )
    cached = whole["stillmoving_cached_priors"]
    assert whole["speedup_cached_priors"] == pytest.approx(
        whole["straightforward"]["total_seconds"] / cached["total_seconds"]
    )


def test_stages_are_timed_in_interleaved_rounds_and_reported_as_medians(monkeypatch):
    """One warm-up and one FLOP-counted step per stage, then rounds of one step each; an outlier round does not
    move the median. The clock is fake: each step advances it by a set amount."""
    from stillmoving.bench import measure

    clock, calls = {"now": 0.0}, []
    monkeypatch.setattr(measure.time, "perf_counter", lambda: clock["now"])

    def contender(name, durations):
        durations = iter(durations)

        def step():
            calls.append(name)
            clock["now"] += next(durations)

        return measure.Contender(name, lambda: calls.append(f"enter {name}"), step)

    def out_of_memory():
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    stages = [
        contender("a", [0, 0, 1.0, 1.0, 50.0]),
        contender("b", [0, 0, 3.0, 2.0, 3.0]),
        measure.Contender("c", lambda: None, out_of_memory),
    ]
    results = measure.measure_interleaved(stages, rounds=3, device=torch.device("cpu"))
    assert calls == ["enter a", "a", "a", "enter b", "b", "b"] + ["enter a", "a", "enter b", "b"] * 3
    assert (results["a"].seconds, results["b"].seconds) == (1.0, 3.0)
    assert results["a"].flops == 0 and results["a"].error is None
    assert results["c"].error == "out of memory" and results["c"].seconds is None


def test_generation_out_of_gpu_memory_is_reported_and_keeps_the_training_figures(monkeypatch):
    """A video that does not fit the GPU (AnimateDiff-SDXL decodes 16 frames of 1024 px at once) is reported as
    "out of memory" in the generation row, as a training step that does not fit is in its own, instead of ending
    the run before any figure is written."""
    from stillmoving.adapters.spatial import SpatialAdapters
    from stillmoving.bench import run as bench_run
    from stillmoving.bench import tables

    def out_of_memory(*args):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(bench_run, "_timed_call", out_of_memory)
    spatial = SpatialAdapters({"down_blocks.0.resnets.0": 8}, rank=2)
    gen = bench_run.bench_generation(None, PRESETS["tiny"], spatial, torch.device("cpu"), videos=2)
    assert (gen.error, gen.seconds_per_video, gen.spatial_overhead_percent, gen.seconds) == (
        "out of memory",
        None,
        None,
        [],
    )
    result = bench_run.PresetResult("tiny", 4, 32, 32, 1, {}, {}, gen)
    row = next(iter(tables.generation_table([result]).columns[2].cells))
    assert row == "out of memory"


def test_bench_unknown_preset_is_one_line_error(capsys, monkeypatch, tmp_path):
    out = tmp_path / "bench.json"
    code, stdout, err = run(capsys, monkeypatch, "bench", "--preset", "tiny,sd21", "-o", out)
    assert code == 2
    assert err.strip().startswith("error:") and "sd21" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_bench_on_an_absent_gpu_is_one_line_error_naming_the_devices(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    code, _, err = run(capsys, monkeypatch, "bench", "--preset", "tiny", "--device", "cuda", "-o", tmp_path / "b.json")
    assert (code, err.strip().splitlines()) == (
        2,
        ["error: --device cuda: CUDA is not available on this machine (available: cpu)"],
    )
    assert list(tmp_path.iterdir()) == []


def test_parse_presets_accepts_repeats_and_comma_lists():
    assert parse_presets(["tiny,world", "tiny", " sd15-256 "]) == ["tiny", "world", "sd15-256"]
    with pytest.raises(StillMovingError):
        parse_presets([","])
