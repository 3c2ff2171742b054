"""Loss of V+M1 (alpha 1 / 0) on frozen videos of M1's own sampled latents (as customize samples them, no pixel
round trip), without and with trained adapters, per timestep; and the star fidelity of those latents.
python diag_star.py RUN_DIR M1 MODEL (MODEL: a video model folder whose VAE can draw the star, star_decoder.py)"""

import os

os.makedirs(os.environ.get("STUDY_DIR", "runs/heavy_drift"), exist_ok=True)
os.chdir(os.environ.get("STUDY_DIR", "runs/heavy_drift"))  # every path below is relative to the study folder
import json
import sys

import numpy as np
import torch

from stillmoving.adapters.motion import MotionLoRA
from stillmoving.adapters.spatial import SpatialAdapters
from stillmoving.data.frozen import encode_prompts
from stillmoving.data.sources import decode_latents
from stillmoving.data.video_io import to_uint8_frames
from stillmoving.loading import load_customized, load_t2v
from stillmoving.training.config import CustomizeConfig, current_keys
from stillmoving.training.setup import training_scheduler
from stillmoving.training.spatial_stage import customized_images
from stillmoving.world.metrics import video_metrics
from stillmoving.world.weights import shipped_motion_adapter

torch.set_num_threads(2)
run, m1dir, model = sys.argv[1], sys.argv[2], sys.argv[3]
cfg = CustomizeConfig(
    **{k: v for k, v in current_keys(CustomizeConfig, json.load(open(f"{run}/customize_run.json"))["config"]).items()}
)
pipe = load_t2v(model)
m1 = load_customized(pipe, m1dir, [])
lat, prompts = customized_images(cfg, pipe, m1, None)
lat = torch.stack(lat)
imgs = decode_latents(pipe.vae, lat)
fid = [
    video_metrics(to_uint8_frames(x.permute(1, 2, 0).numpy()[None]), prompt=p, target="star")["fidelity"]
    for x, p in zip(imgs, prompts)
]
print("training images: n", len(prompts), "star fidelity", np.mean(fid), prompts[:2])
pipe.inject_customized(m1.unet, m1.text_encoder)
text = encode_prompts(pipe.tokenizer, pipe.text_encoder, prompts)
motion = MotionLoRA.load(pipe.unet, str(shipped_motion_adapter()))
sched = training_scheduler(pipe)
g = torch.Generator().manual_seed(0)
T = torch.tensor([50, 150, 300, 500, 700, 900])
n = len(lat)
noise = torch.randn((len(T), n, 4, 8, 8, 8), generator=g)


@torch.no_grad()
def losses():
    out = []
    for ti, t in enumerate(T):
        x0 = lat[:, :, None].expand(-1, -1, 8, -1, -1)
        noisy = sched.add_noise(x0, noise[ti], t.repeat(n))
        pred = pipe.unet(noisy, t.repeat(n), encoder_hidden_states=text.repeat_interleave(8, 0)).sample
        out.append(((pred - noise[ti]) ** 2).mean().item())
    return out


for label, adapters in [("naive", None), ("adapters", f"{run}/spatial_adapters.safetensors")]:
    if adapters:
        SpatialAdapters.load(adapters).attach(pipe.unet)
    for a in (1.0, 0.0):
        motion.set_scale(a)
        band = losses()
        print(f"{label:9s} alpha {a}: " + " ".join(f"{x:.4f}" for x in band), f"| mean {np.mean(band):.4f}", flush=True)
