"""Score spatial adapters that `freeze.py` trained against naive injection, paired by (prompt, seed): the demo's
video measures (static share, speed, fidelity, consistency, artifact) with Still-Moving-minus-naive 95% bootstrap
intervals, and how far each set of adapters moved from the identity (their channel maps A_down @ A_up: the
Frobenius norm over all adapters and the largest spectral norm; A_up starts at zero, so both start at 0).

python studies/no_motion_adapter/score.py DEMO_DIR TARGET RUN_DIR...
  DEMO_DIR, TARGET: as for freeze.py (the customized T2I is DEMO_DIR/work/TARGET/t2i)
  RUN_DIR: a freeze.py budget folder (OUT/steps_N), holding spatial_adapters.safetensors
FULL=1: the demo's 8 prompts x 4 seeds instead of the 12 pairs freeze.py's figures use.
"""

import json
import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from stillmoving.adapters.spatial import SpatialAdapters
from stillmoving.loading import assemble_pipeline
from stillmoving.world.demo import DemoConfig, Generation
from stillmoving.world.phases import customized_args, generate, score, section_prompts
from stillmoving.world.stats import paired_bootstrap
from stillmoving.world.variants import VariantKind
from stillmoving.world.weights import shipped_model, shipped_motion_adapter

MEASURES = ("is_static", "speed", "fidelity", "consistency", "artifact")


def channel_maps(path: Path) -> dict[str, float]:
    """How far the adapters moved: ||A_down @ A_up|| over all of them, and the largest one's spectral norm."""
    tensors = SpatialAdapters.load(path).named_tensors()
    names = sorted({k.rsplit(".", 1)[0] for k in tensors})
    maps = [tensors[f"{n}.down"].float() @ tensors[f"{n}.up"].float() for n in names]
    return {
        "map_frobenius": float(sum(m.norm() ** 2 for m in maps) ** 0.5),
        "map_spectral_max": float(max(torch.linalg.matrix_norm(m, 2) for m in maps)),
    }


def measures(cfg: DemoConfig, target: str, m1: dict, adapters: Path | None) -> dict[str, np.ndarray]:
    prompts, _ = section_prompts(cfg, target)
    gen = Generation(cfg.num_frames, cfg.resolution, cfg.sample_steps, cfg.guidance_scale)
    spatial = str(adapters) if adapters else None
    pipe = assemble_pipeline(cfg.model, customized=m1["customized"], loras=m1["loras"], spatial_adapters=spatial)
    variant = score(generate(pipe, prompts, gen, cfg.seeds), target, VariantKind("v", "v"), "")
    return {key: np.array([m[key] for m in variant.metrics], dtype=float) for key in MEASURES}


def main(demo: Path, target: str, runs: list[Path]) -> None:
    torch.set_num_threads(1)
    pairs = dict(eval_prompts=8, seeds=4) if os.environ.get("FULL") == "1" else dict(eval_prompts=4, seeds=3)
    cfg = replace(DemoConfig(), model=str(shipped_model()), motion_adapter=str(shipped_motion_adapter()), **pairs)
    m1 = customized_args(target, demo / "work" / target / "t2i")
    naive = measures(cfg, target, m1, None)
    print(json.dumps({"run": "naive injection", **{k: float(np.nanmean(v)) for k, v in naive.items()}}), flush=True)
    for run in runs:
        adapters = run / "spatial_adapters.safetensors"
        found = measures(cfg, target, m1, adapters)
        row = {"run": str(run), **channel_maps(adapters), **{k: float(np.nanmean(v)) for k, v in found.items()}}
        for key in MEASURES:
            gap = paired_bootstrap(naive[key], found[key])  # found minus naive
            row[f"{key}_minus_naive"] = [round(gap.estimate, 4), round(gap.low, 4), round(gap.high, 4)]
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], [Path(p) for p in sys.argv[3:]])
