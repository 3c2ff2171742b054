"""Cross-frame coupling of V + M1 (+ adapters): how much does frame 0's noisy input move the other frames'
predictions, relative to its own? And the motion modules' residual size relative to their input.
python coupling.py NAME M1 [ADAPTERS]; $MODEL, $MOTION_ADAPTER, $VIDEOS (default results/naive_heavy.npy) optional"""

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
name, m1 = sys.argv[1], sys.argv[2]
ad = sys.argv[3] if len(sys.argv) > 3 else None
pipe = assemble_pipeline(
    os.environ.get("MODEL", str(shipped_model())),
    customized=None if m1 == "none" else m1,
    spatial_adapters=ad,
    motion_adapter=os.environ.get("MOTION_ADAPTER", str(shipped_motion_adapter())),
)
vids = np.load(os.environ.get("VIDEOS", "results/naive_heavy.npy"))[:32:4]  # 8 videos (one per prompt), (n, f, h, w, 3)
caps = json.load(open(os.environ.get("VIDEOS", "results/naive_heavy.npy").replace(".npy", ".json")))["captions"][:32:4]
pipe.set_motion_scale(float(os.environ.get("ALPHA", 0)))  # $ALPHA: the motion adapter's scale (default 0)
unet, vae = pipe.unet, pipe.vae
res = {}


def hook(name):
    def h(mod, inp, out):
        x = inp[0]
        y = out[0] if isinstance(out, tuple) else out
        res.setdefault(name, []).append(((y - x).norm() / x.norm()).item())

    return h


for n, m in unet.named_modules():
    if n.endswith("motion_modules.0"):
        m.register_forward_hook(hook(n))
g = torch.Generator().manual_seed(0)
ratios = []
with torch.no_grad():
    for v, c in zip(vids, caps):
        x = torch.from_numpy(v).float().permute(0, 3, 1, 2) / 127.5 - 1
        lat = vae.encode(x).latent_dist.mean * vae.config.scaling_factor  # (f, c, h, w)
        lat = lat.permute(1, 0, 2, 3)[None]  # (1, c, f, h, w)
        emb = pipe.encode_prompt(c, "cpu", 1, False)[0]
        f = lat.shape[2]
        emb = emb.repeat_interleave(f, 0)
        for t in (200, 500, 800):
            tt = torch.tensor([t])
            noise = torch.randn(lat.shape, generator=g)
            noisy = pipe.scheduler.add_noise(lat, noise, tt)
            base = unet(noisy, tt, encoder_hidden_states=emb).sample
            d = torch.zeros_like(noisy)
            d[:, :, 0] = 0.1 * torch.randn(d[:, :, 0].shape, generator=g)
            pert = unet(noisy + d, tt, encoder_hidden_states=emb).sample
            dp = (pert - base)[0]  # (c, f, h, w)
            own = dp[:, 0].norm().item()
            other = dp[:, 1:].permute(1, 0, 2, 3).flatten(1).norm(dim=1).mean().item()
            ratios.append(other / own)
mm = {k.replace(".motion_modules.0", ""): float(np.mean(v)) for k, v in res.items()}
print(name, f"cross-frame influence {np.mean(ratios):.4f}", " ".join(f"{k}={v:.3f}" for k, v in mm.items()))
