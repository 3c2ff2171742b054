"""Is the uneven path of Still-Moving's videos (lower `smoothness` than naive injection's) made by the trained
adapters' direction, and does it grow with their size? The demo's trained adapters are scaled by s (A_up * s:
s = 0 is naive injection, 1 the trained adapters) and the demo's videos of the section regenerated and scored.

python studies/smoothness/adapter_scale.py DEMO_DIR TARGET OUT S...
  e.g. python studies/smoothness/adapter_scale.py demo14 star runs/scale_star 0 0.5 1 1.5
GUIDANCE=1 generates without classifier-free guidance (the demo: 4); PROMPT="" with the empty prompt.
"""

import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
from recipes import section

from stillmoving.loading import assemble_pipeline
from stillmoving.run_folder import SPATIAL_ADAPTERS
from stillmoving.world.claims import OURS
from stillmoving.world.demo import Generation
from stillmoving.world.phases import generate, score, section_prompts
from stillmoving.world.variants import VariantKind

KEYS = ("speed", "fidelity", "shape_consistency", "color_consistency", "smoothness", "consistency", "artifact")


def main(demo: Path, target: str, out: Path, scales: list[float]) -> None:
    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    cfg, m1 = section(demo, target, "animatediff", 1.0)  # the demo's first section: 12 pairs (FULL=1: 32)
    prompts, _ = section_prompts(cfg, target)
    gen = Generation(cfg.num_frames, cfg.resolution, cfg.sample_steps, float(os.environ.get("GUIDANCE", 4)))
    if "PROMPT" in os.environ:
        prompts = [os.environ["PROMPT"]] * len(prompts)
    trained = demo / "work" / target / "animatediff" / OURS.id / SPATIAL_ADAPTERS
    rows = []
    for s in scales:
        pipe = assemble_pipeline(
            cfg.model, customized=m1["customized"], loras=m1["loras"], spatial_adapters=str(trained), spatial_scale=s
        )
        variant = score(generate(pipe, prompts, gen, cfg.seeds), target, VariantKind("v", "v"), "")
        row = {"scale": s, **{k: float(np.nanmean([m[k] for m in variant.metrics])) for k in KEYS}}
        row["per_video_smoothness"] = [round(m["smoothness"], 3) for m in variant.metrics]
        rows.append(row)
        print(json.dumps(row), flush=True)
    (out / "adapter_scale.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), [float(s) for s in sys.argv[4:]])
