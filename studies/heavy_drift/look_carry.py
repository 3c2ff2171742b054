"""Does a video model carry the object's look from frame to frame when the text does not name it?
python look_carry.py [MODEL]: 24 monitor scenes, captions with the look named, unnamed ("a circle moving left
..."), and empty; seeds 0-1; the oracle's shape and colour consistency of consecutive frames (mean and the
paired 95% interval of unnamed - named over the 48 (scene, seed) pairs)."""

import os

os.makedirs(os.environ.get("STUDY_DIR", "runs/heavy_drift"), exist_ok=True)
os.chdir(os.environ.get("STUDY_DIR", "runs/heavy_drift"))  # every path below is relative to the study folder
import sys

import numpy as np
import torch

from stillmoving.loading import load_t2v
from stillmoving.world import metrics, probe
from stillmoving.world.stats import paired_bootstrap
from stillmoving.world.synthetic import caption
from stillmoving.world.weights import shipped_model

torch.set_num_threads(1)
model = sys.argv[1] if len(sys.argv) > 1 else str(shipped_model())
pipe = load_t2v(model)
pipe.set_progress_bar_config(disable=True)
specs = probe.monitor_scenes(24)
kinds = {
    "named": [caption(s) for s in specs],
    "unnamed": [caption(s, appearance=False) for s in specs],
    "empty": [""] * 24,
}
scores = {}
for kind, prompts in kinds.items():
    rows = []
    for seed in (0, 1):
        frames = pipe(
            prompt=prompts,
            num_frames=8,
            height=32,
            width=32,
            num_inference_steps=15,
            guidance_scale=4.0,
            output_type="np",
            generator=torch.Generator().manual_seed(seed),
        ).frames
        rows += [metrics.consistency_metrics(v, metrics.segment(v)) for v in probe.to_uint8(frames)]
    scores[kind] = {k: np.array([r[k] for r in rows]) for k in ("shape_consistency", "color_consistency")}
for kind in kinds:
    line = " ".join(f"{k.split('_')[0]} {np.nanmean(v):.3f}" for k, v in scores[kind].items())
    if kind != "named":
        line += "  minus named: " + " ".join(
            "{} {:+.3f} [{:+.3f}, {:+.3f}]".format(k.split("_")[0], i.estimate, i.low, i.high)
            for k, v in scores[kind].items()
            for i in [paired_bootstrap(scores["named"][k], v)]
        )
    print(f"{os.path.basename(model.rstrip('/'))} {kind:8s} {line}")
