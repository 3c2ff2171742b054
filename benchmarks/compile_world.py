"""torch.compile on the world preset: the floor and the spatial-adapter step, eager then compiled.

    python benchmarks/compile_world.py [--steps 15]

Each is timed alone (median of `--steps` steps) after its first step, which for the compiled model is the
compilation. `stillmoving bench` does not offer compile: it switches one model between four stage states
every round, and each switch would send the compiled model back to recompiling.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from stillmoving.bench.models import PRESETS, build_video_model, make_batch
from stillmoving.bench.steps import Rig, floor_step, spatial_step


def timed(enter, step, steps: int) -> tuple[float, float]:
    """(seconds of the first step, median seconds of the next `steps`)."""
    enter()
    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return first, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=15)
    args = parser.parse_args()
    preset = PRESETS["world"]
    pipe = build_video_model(preset, torch.device("cpu"), 0)
    rig = Rig(pipe, make_batch(pipe, preset, 1, torch.device("cpu")), preset.num_frames, torch.float32, False)
    floor, spatial = floor_step(rig), spatial_step(rig)
    results = {"eager": [timed(rig.enter_floor, floor, args.steps), timed(rig.enter_spatial, spatial, args.steps)]}
    pipe.unet.compile()
    results["compiled"] = [timed(rig.enter_floor, floor, args.steps), timed(rig.enter_spatial, spatial, args.steps)]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; seconds")
    print(f"{'':>9} {'floor first':>12} {'floor/step':>11} {'spatial first':>14} {'spatial/step':>13}")
    for mode, ((floor_first, floor_s), (spatial_first, spatial_s)) in results.items():
        print(f"{mode:>9} {floor_first:>12.2f} {floor_s:>11.4f} {spatial_first:>14.2f} {spatial_s:>13.4f}")


if __name__ == "__main__":
    main()
