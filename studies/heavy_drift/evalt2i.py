import os

os.makedirs(os.environ.get("STUDY_DIR", "runs/heavy_drift"), exist_ok=True)
os.chdir(os.environ.get("STUDY_DIR", "runs/heavy_drift"))  # every path below is relative to the study folder
import json
import sys
from pathlib import Path

import numpy as np
import torch

from stillmoving.world.demo import DemoConfig, Generation
from stillmoving.world.phases import evaluation_prompts, score, t2i_reference
from stillmoving.world.variants import VariantKind
from stillmoving.world.weights import shipped_model

torch.set_num_threads(1)
name, m1 = sys.argv[1:3]
model = sys.argv[3] if len(sys.argv) > 3 else str(shipped_model())  # a video model folder: its VAE decodes
cfg = DemoConfig(model=model, seeds=4)
prompts = evaluation_prompts("star", 8, 2, 32, 8)
v = score(
    t2i_reference(cfg, {"customized": m1, "loras": []}, prompts, Generation(8, 32, 15, 4.0)),
    "star",
    VariantKind(name, name),
    "",
)
Path(f"results/{name}.json").write_text(json.dumps({"captions": v.captions, "metrics": v.metrics}))
np.save(f"results/{name}.npy", np.stack(v.videos))
print(name, " ".join(f"{k}={np.nanmean([m[k] for m in v.metrics]):.3f}" for k in ["fidelity", "artifact"]))
print(prompts)
