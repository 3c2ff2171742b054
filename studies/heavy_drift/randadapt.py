"""Adapters with the trained ones' per-layer size (||A_down A_up||_F) but a random direction.
python randadapt.py IN OUT"""

import os

os.makedirs(os.environ.get("STUDY_DIR", "runs/heavy_drift"), exist_ok=True)
os.chdir(os.environ.get("STUDY_DIR", "runs/heavy_drift"))  # every path below is relative to the study folder
import sys

import torch

from stillmoving.adapters.spatial import SpatialAdapters

a = SpatialAdapters.load(sys.argv[1])
g = torch.Generator().manual_seed(0)
with torch.no_grad():
    for layer in a.layers:
        norm = (layer.down @ layer.up).norm()
        up = torch.randn(layer.up.shape, generator=g)
        layer.up.copy_(up * norm / (layer.down @ up).norm())
        print(f"{norm:.3f}", end=" ")
a.save(
    sys.argv[2], {k: v for k, v in a.metadata.items() if k not in ("format", "format_version", "rank", "placements")}
)
