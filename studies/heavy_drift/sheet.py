"""python sheet.py out.png NAME... : rows = videos (first 8), columns = frames, names side by side, 4x upscaled."""

import os

os.chdir(os.environ.get("STUDY_DIR", "runs/heavy_drift"))
import sys

import numpy as np
from PIL import Image

out, names = sys.argv[1], sys.argv[2:]
blocks = []
for n in names:
    v = np.load(f"results/{n}.npy")[:16:2]  # (8, F, H, W, 3)
    if v.shape[1] == 1:
        v = np.repeat(v, 8, 1)
    rows = [np.concatenate(list(x), 1) for x in v]
    blocks.append(np.concatenate(rows, 0))
sep = np.full((blocks[0].shape[0], 4, 3), 255, np.uint8)
img = np.concatenate(sum([[b, sep] for b in blocks], [])[:-1], 1)
Image.fromarray(img).resize((img.shape[1] * 3, img.shape[0] * 3), Image.NEAREST).save(out)
