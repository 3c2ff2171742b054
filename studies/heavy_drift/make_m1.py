import os

os.makedirs(os.environ.get("STUDY_DIR", "runs/heavy_drift"), exist_ok=True)
os.chdir(os.environ.get("STUDY_DIR", "runs/heavy_drift"))  # every path below is relative to the study folder
import sys
import time
from pathlib import Path

import torch

from stillmoving.training.config import DreamBoothConfig
from stillmoving.training.dreambooth import train_dreambooth
from stillmoving.world.folders import write_image_folder
from stillmoving.world.weights import shipped_model

torch.set_num_threads(1)
lr, steps, out = float(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
seed = int(sys.argv[4]) if len(sys.argv) > 4 else 0  # the DreamBooth's seed (session 26: its draw moves the verdicts)
imgs = Path("star_images")
if not imgs.exists():
    write_image_folder(imgs, 24, 1, 32, subject="star")
t = time.time()
train_dreambooth(
    DreamBoothConfig(
        model=str(shipped_model()),
        output=str(out),
        height=32,
        width=32,
        batch_size=4,
        seed=seed,
        images=str(imgs),
        prompt="a sks star",
        use_captions=True,
        train_text_encoder=True,
        steps=steps,
        lr=lr,
    )
)
print("seconds", time.time() - t)
