"""Both stages on 2 CPU processes (torch.distributed over gloo, driven by accelerate) equal 1 process with the
same global batch and seed, within float-reduction noise; a 2-process checkpoint resumes on 1 process.

Tolerance: the trained LoRA/adapter tensors may differ by at most 1% of their largest value (measured: 0.1%,
from the all-reduce summing in another order than one process's batch mean). The random draws (frame, noise,
timestep) are per item of the global batch (`ItemRandomness`), so they are the same in both settings.
"""

import os
import subprocess
import sys
from pathlib import Path

import torch
from conftest import save_customized_unet
from safetensors.torch import load_file
from test_cli import run

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "ACCELERATE_USE_CPU": "true"}
SIZES = ["--num-frames", "4", "--height", "32", "--width", "32", "--sample-steps", "2", "--seed", "0"]


def launch(processes: int, *args) -> subprocess.Popen:
    """`stillmoving ARGS` on `processes` CPU processes (torchrun sets the env accelerate reads)."""
    head = (
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
        if processes > 1
        else [sys.executable]
    )
    return subprocess.Popen(
        [*head, "-m", "stillmoving", *map(str, args)],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait(*processes: subprocess.Popen) -> None:
    for process in processes:
        _, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-3000:]


def close(a: Path, b: Path, rtol: float = 0.01) -> None:
    wa, wb = load_file(str(a)), load_file(str(b))
    assert wa.keys() == wb.keys()
    for key in wa:
        scale = wa[key].abs().max().item()
        assert (wa[key] - wb[key]).abs().max().item() <= rtol * scale + 1e-9, key


def files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def test_motion_stage_on_2_processes_equals_1_and_resumes_on_1(tiny_dir, tmp_path):
    args = [
        "motion-adapter",
        "train",
        "--model",
        tiny_dir,
        "--sample-prompt",
        "a red circle moving left",
        "--num-sampled-videos",
        "4",
        "--rank",
        "2",
        *SIZES,
    ]
    one = launch(1, *args, "-o", tmp_path / "one", "--batch-size", "2", "--steps", "4")
    two = launch(2, *args, "-o", tmp_path / "two", "--batch-size", "1", "--steps", "4")
    cut = launch(2, *args, "-o", tmp_path / "cut", "--batch-size", "1", "--steps", "2", "--checkpoint-every", "1")
    wait(one, two, cut)
    result = "motion_adapter/pytorch_lora_weights.safetensors"
    close(tmp_path / "one" / result, tmp_path / "two" / result)
    assert files(tmp_path / "two") == files(tmp_path / "one")  # only the main process wrote
    assert (tmp_path / "cut/checkpoints/checkpoint-2/random_states_1.pkl").is_file()  # a 2-process state
    wait(launch(1, *args, "-o", tmp_path / "cut", "--batch-size", "2", "--steps", "4", "--resume"))
    close(tmp_path / "one" / result, tmp_path / "cut" / result)


def test_spatial_stage_on_2_processes_equals_1(tiny_dir, tmp_path, stage2_inputs):
    motion_adapter = stage2_inputs["motion_adapter"]
    customized = stage2_inputs["customized"]
    args = [
        "customize",
        "--model",
        tiny_dir,
        "--motion-adapter",
        motion_adapter,
        "--customized",
        customized,
        "--prompt",
        "a sks dog",
        "--identifier",
        "sks",
        "--num-images",
        "4",
        "--num-prior-videos",
        "4",
        "--prior-loss-weight",
        "1",
        "--spatial-rank",
        "2",
        "--steps",
        "3",
        *SIZES,
    ]
    one = launch(1, *args, "-o", tmp_path / "one", "--batch-size", "2")
    two = launch(2, *args, "-o", tmp_path / "two", "--batch-size", "1")
    wait(one, two)
    close(tmp_path / "one/spatial_adapters.safetensors", tmp_path / "two/spatial_adapters.safetensors")
    up = load_file(str(tmp_path / "two/spatial_adapters.safetensors"))
    assert any(torch.count_nonzero(v) for k, v in up.items() if k.endswith(".up"))  # it trained


def test_customize_batch_spreads_runs_over_processes(tiny_dir, tmp_path, stage2_inputs):
    """3 customizations on 2 processes: rank 0 trains runs 0 and 2, rank 1 run 1; each equals the same run
    made alone by `customize` (bit for bit: no gradient is exchanged)."""
    import json

    motion_adapter = stage2_inputs["motion_adapter"]
    units = [save_customized_unet(tiny_dir, tmp_path / f"m{i}", seed=i) for i in range(3)]
    defaults = dict(
        model=str(tiny_dir),
        motion_adapter=str(motion_adapter),
        num_images=1,
        num_prior_videos=1,
        prior_loss_weight=1.0,
        spatial_rank=2,
        steps=2,
        num_frames=4,
        height=32,
        width=32,
        sample_steps=2,
        identifier="sks",
    )
    runs = [
        dict(customized=str(u), output=str(tmp_path / f"out{i}"), prompt=[f"a sks dog {i}"])
        for i, u in enumerate(units)
    ]
    (tmp_path / "batch.json").write_text(json.dumps({"defaults": defaults, "runs": runs}))
    wait(launch(2, "customize-batch", tmp_path / "batch.json"))
    alone = launch(
        1,
        "customize",
        "--model",
        tiny_dir,
        "-o",
        tmp_path / "alone",
        "--motion-adapter",
        motion_adapter,
        "--customized",
        units[1],
        "--prompt",
        "a sks dog 1",
        "--identifier",
        "sks",
        "--num-images",
        "1",
        "--num-prior-videos",
        "1",
        "--prior-loss-weight",
        "1",
        "--spatial-rank",
        "2",
        "--steps",
        "2",
        *SIZES,
    )
    wait(alone)
    for i in range(3):
        assert (tmp_path / f"out{i}/spatial_adapters.safetensors").is_file()
    a, b = (load_file(str(tmp_path / d / "spatial_adapters.safetensors")) for d in ("alone", "out1"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_customize_batch_refuses_shared_outputs(tmp_path, capsys, monkeypatch):
    import json

    (tmp_path / "b.json").write_text(
        json.dumps([{"model": "m", "output": str(tmp_path / "x")}, {"model": "m", "output": str(tmp_path / "x")}])
    )
    code, _, err = run(capsys, monkeypatch, "customize-batch", tmp_path / "b.json")
    assert code == 2 and "give each its own output" in err
