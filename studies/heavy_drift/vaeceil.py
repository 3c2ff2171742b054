import os

os.makedirs(os.environ.get("STUDY_DIR", "runs/heavy_drift"), exist_ok=True)
os.chdir(os.environ.get("STUDY_DIR", "runs/heavy_drift"))  # every path below is relative to the study folder
import glob
import sys

import numpy as np
import torch
from PIL import Image

from stillmoving.data.sources import decode_latents, images_from_folder
from stillmoving.data.video_io import to_uint8_frames
from stillmoving.loading import load_t2v
from stillmoving.world.metrics import video_metrics
from stillmoving.world.weights import shipped_model

t2v = load_t2v(sys.argv[1] if len(sys.argv) > 1 else str(shipped_model()))
lat, caps = images_from_folder("star_images", t2v.vae, 32, 32)
rec = decode_latents(t2v.vae, torch.stack(lat))
f_rec = [
    video_metrics(to_uint8_frames(x.permute(1, 2, 0).numpy()[None]), prompt=c, target="star")["fidelity"]
    for x, c in zip(rec, caps)
]
f_raw = [
    video_metrics(np.array(Image.open(p))[None], prompt=c, target="star")["fidelity"]
    for p, c in zip(sorted(glob.glob("star_images/*.png")), caps)
]
print("raw", np.mean(f_raw), "vae recon", np.mean(f_rec))
