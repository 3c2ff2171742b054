"""python evalprompts.py NAME M1 ADAPTERS|none PROMPT... : 4 seeds per prompt, guidance from $G (default 4)
-> results/NAME.npy"""

import os

os.makedirs(os.environ.get("STUDY_DIR", "runs/heavy_drift"), exist_ok=True)
os.chdir(os.environ.get("STUDY_DIR", "runs/heavy_drift"))  # every path below is relative to the study folder
import json
import sys

import numpy as np
import torch

from stillmoving.loading import assemble_pipeline
from stillmoving.world.weights import shipped_model, shipped_motion_adapter

torch.set_num_threads(1)
name, m1, ad, prompts = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
model = os.environ.get("MODEL", str(shipped_model()))
pipe = assemble_pipeline(
    model,
    customized=None if m1 == "none" else m1,
    spatial_adapters=None if ad == "none" else ad,
    motion_adapter=os.environ.get("MOTION_ADAPTER", str(shipped_motion_adapter())),
)
vids = []
for p in prompts:
    for s in range(4):
        out = pipe(
            p,
            num_frames=8,
            height=32,
            width=32,
            num_inference_steps=15,
            guidance_scale=float(os.environ.get("G", 4)),
            generator=torch.Generator().manual_seed(s),
            output_type="np",
        ).frames[0]
        vids.append((out * 255).round().astype(np.uint8))
np.save(f"results/{name}.npy", np.stack(vids))
json.dump({"captions": [p for p in prompts for _ in range(4)]}, open(f"results/{name}.json", "w"))
