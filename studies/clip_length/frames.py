"""The embedded world's base T2V at 8 and 16 frames (session 24): why its folders' generation_defaults.json says 8.

    HF_HUB_OFFLINE=1 .venv/bin/python studies/clip_length/frames.py [joint]    # about 1 min on 2 cores

The first video model (or the one named) with its motion adapter loaded (alpha 0), the star's 8 evaluation prompts
x 2 seeds, 32 px, scored by the world's oracle, at the world's sampling (15 steps, guidance 4, its folders' default
since session 25) and at generate's fallback for folders that name none (25, 7.5).
"""

import sys

import numpy as np
import torch

from stillmoving.loading import assemble_pipeline
from stillmoving.world.demo import Generation
from stillmoving.world.phases import evaluation_prompts, generate, score
from stillmoving.world.variants import VariantKind
from stillmoving.world.weights import shipped_model, shipped_motion_adapter

torch.set_num_threads(2)
name = sys.argv[1] if len(sys.argv) > 1 else "animatediff"
pipe = assemble_pipeline(str(shipped_model(name)), motion_adapter=str(shipped_motion_adapter(name)))
prompts = evaluation_prompts("star", 8, 2, 32, 8)
for frames, steps, guidance in [(8, 15, 4.0), (16, 15, 4.0), (16, 25, 7.5), (8, 25, 7.5)]:
    videos = generate(pipe, prompts, Generation(frames, 32, steps, guidance), 2)
    v = score(videos, "star", VariantKind("base T2V", "base"), "")
    means = " ".join(f"{k}={np.nanmean([m[k] for m in v.metrics]):.3f}" for k in ("speed", "consistency", "artifact"))
    static = sum(bool(m["is_static"]) for m in v.metrics)
    print(f"{frames} frames, {steps} steps, guidance {guidance:g}: {means}, static {static} of {len(v.metrics)}")
