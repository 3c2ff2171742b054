"""Per-timestep-band losses on the stage-2 data: frozen M1 videos at alpha 1/0, prior videos at alpha 0;
for V, V+M1, V+M1+adapters; and the T2I floor (M1's 2D UNet per frame).
python diag_loss.py RUN_DIR M1 [ADAPTERS]"""

import os

os.makedirs(os.environ.get("STUDY_DIR", "runs/heavy_drift"), exist_ok=True)
os.chdir(os.environ.get("STUDY_DIR", "runs/heavy_drift"))  # every path below is relative to the study folder
import glob
import json
import sys

import numpy as np
import torch
from PIL import Image

from stillmoving.adapters.motion import MotionLoRA
from stillmoving.adapters.spatial import SpatialAdapters
from stillmoving.data.frozen import encode_pixels, encode_prompts, to_pixels
from stillmoving.loading import load_customized, load_t2v
from stillmoving.training.config import CustomizeConfig, current_keys
from stillmoving.training.setup import training_scheduler
from stillmoving.world.weights import shipped_model, shipped_motion_adapter

torch.set_num_threads(1)
run, m1dir = sys.argv[1], sys.argv[2]
adapters = sys.argv[3] if len(sys.argv) > 3 else None
cfg = current_keys(CustomizeConfig, json.load(open(f"{run}/customize_run.json"))["config"])  # any version's record
pipe = load_t2v(str(shipped_model()))
paths = sorted(glob.glob(f"{run}/images/*.png"))
lat = encode_pixels(pipe.vae, torch.cat([to_pixels(np.array(Image.open(p)), 32, 32) for p in paths]))  # (n,c,h,w)
prompts = [cfg["prompt"][i % len(cfg["prompt"])] for i in range(len(paths))]
sched = training_scheduler(pipe)
g = torch.Generator().manual_seed(0)
T = torch.tensor([50, 150, 300, 500, 700, 900])
n = lat.shape[0]
noise = torch.randn((len(T), n, 4, 8, 8, 8), generator=g)
from stillmoving.world.synthetic import make_video_dataset

vids = make_video_dataset(16, 77, 8, 32)
vlat = torch.stack([encode_pixels(pipe.vae, to_pixels(v.pixels, 32, 32)).permute(1, 0, 2, 3) for v in vids])
vcap = [v.caption for v in vids]
vnoise = torch.randn((len(T),) + vlat.shape, generator=g)
m1 = load_customized(pipe, m1dir, [])
text_m1 = encode_prompts(pipe.tokenizer, m1.text_encoder or pipe.text_encoder, prompts)
m1_2d = m1.unet


@torch.no_grad()
def video_losses(unet, text):
    out = []
    for ti, t in enumerate(T):
        x0 = lat[:, :, None].expand(-1, -1, 8, -1, -1)
        noisy = sched.add_noise(x0, noise[ti], t.repeat(n))
        pred = unet(noisy, t.repeat(n), encoder_hidden_states=text.repeat_interleave(8, 0)).sample
        out.append(((pred - noise[ti]) ** 2).mean().item())
    return out


@torch.no_grad()
def moving_losses(unet, te):
    text = encode_prompts(pipe.tokenizer, te, vcap)
    out = []
    for ti, t in enumerate(T):
        noisy = sched.add_noise(vlat, vnoise[ti], t.repeat(len(vlat)))
        pred = unet(noisy, t.repeat(len(vlat)), encoder_hidden_states=text.repeat_interleave(8, 0)).sample
        out.append(((pred - vnoise[ti]) ** 2).mean().item())
    return out


@torch.no_grad()
def t2i_floor():
    out = []
    for ti, t in enumerate(T):
        eps = noise[ti].permute(0, 2, 1, 3, 4).reshape(n * 8, 4, 8, 8)
        x0 = lat.repeat_interleave(8, 0)
        noisy = sched.add_noise(x0, eps, t.repeat(n * 8))
        pred = m1_2d(noisy, t.repeat(n * 8), encoder_hidden_states=text_m1.repeat_interleave(8, 0)).sample
        out.append(((pred - eps) ** 2).mean().item())
    return out


fmt = lambda xs: " ".join(f"{x:.4f}" for x in xs) + f" | mean {np.mean(xs):.4f}"
print("t:", T.tolist())
print("T2I floor (M1 2D, per frame)  ", fmt(t2i_floor()))
motion = MotionLoRA.load(pipe.unet, str(shipped_motion_adapter()))
text_v = encode_prompts(pipe.tokenizer, pipe.text_encoder, prompts)
for a in (1.0, 0.0):
    motion.set_scale(a)
    print(f"V (M) alpha {a:g}              ", fmt(video_losses(pipe.unet, text_v)))
print("moving world videos, V alpha 0  ", fmt(moving_losses(pipe.unet, pipe.text_encoder)))
pipe.inject_customized(m1.unet, m1.text_encoder)
for a in (1.0, 0.0):
    motion.set_scale(a)
    print(f"V+M1 alpha {a:g}               ", fmt(video_losses(pipe.unet, text_m1)))
print("moving world videos, V+M1 a0    ", fmt(moving_losses(pipe.unet, pipe.text_encoder)))
if adapters:
    SpatialAdapters.load(adapters).attach(pipe.unet)
    for a in (1.0, 0.0):
        motion.set_scale(a)
        print(f"V+M1+adapters alpha {a:g}      ", fmt(video_losses(pipe.unet, text_m1)))
    print("moving world videos, +adapters a0", fmt(moving_losses(pipe.unet, pipe.text_encoder)))
