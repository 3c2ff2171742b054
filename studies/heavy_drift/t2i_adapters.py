"""Control: spatial adapters trained on the customized T2I ALONE (no temporal layers anywhere), on the same M1
images and prompts stage 2 used, then attached to V + M1. python t2i_adapters.py NAME M1 RUN_WITH_IMAGES"""

import os

os.makedirs(os.environ.get("STUDY_DIR", "runs/heavy_drift"), exist_ok=True)
os.chdir(os.environ.get("STUDY_DIR", "runs/heavy_drift"))  # every path below is relative to the study folder
import glob
import json
import sys

import numpy as np
import torch
from PIL import Image

from stillmoving.adapters.spatial import SpatialAdapters
from stillmoving.data.frozen import encode_pixels, encode_prompts, to_pixels
from stillmoving.loading import load_customized, load_t2v
from stillmoving.training.config import CustomizeConfig, current_keys
from stillmoving.training.setup import training_scheduler
from stillmoving.world.weights import shipped_model

torch.set_num_threads(1)
torch.manual_seed(0)
name, m1dir, run = sys.argv[1:4]
cfg = current_keys(CustomizeConfig, json.load(open(f"{run}/customize_run.json"))["config"])  # any version's record
pipe = load_t2v(str(shipped_model()))
paths = sorted(glob.glob(f"{run}/images/*.png"))
lat = encode_pixels(pipe.vae, torch.cat([to_pixels(np.array(Image.open(p)), 32, 32) for p in paths]))
prompts = [cfg["prompt"][i % len(cfg["prompt"])] for i in range(len(paths))]
m1 = load_customized(pipe, m1dir, [])
text = encode_prompts(pipe.tokenizer, m1.text_encoder or pipe.text_encoder, prompts)
unet = m1.unet.requires_grad_(False)
ad = SpatialAdapters.for_unet(unet, 8).attach(unet)
opt = torch.optim.AdamW(ad.parameters(), lr=1e-4, weight_decay=0.0)
sched = training_scheduler(pipe)
g = torch.Generator().manual_seed(0)
for _step in range(int(sys.argv[4]) if len(sys.argv) > 4 else 500):
    i = torch.randint(0, len(lat), (1,), generator=g)
    x0 = lat[i].repeat(8, 1, 1, 1)  # the frozen video's 8 frames, as 8 images with their own noise (batch of 8)
    noise = torch.randn(x0.shape, generator=g)
    t = torch.randint(0, 1000, (1,), generator=g).repeat(8)
    pred = unet(sched.add_noise(x0, noise, t), t, encoder_hidden_states=text[i].repeat(8, 1, 1)).sample
    loss = ((pred - noise) ** 2).mean()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(ad.parameters(), 1.0)
    opt.step()
    opt.zero_grad()
ad.save(f"runs/{name}.safetensors")
print(name, "saved", loss.item())
