"""A measuring instrument, not a shipped model: the world VAE's decoder fine-tuned on world frames and on renders of
the held-out star (half a batch each; the encoder, hence every latent, unchanged), so that what the UNets put in
latent space can be seen where the shipped decoder cannot draw it. `python star_decoder.py` writes
runs/star_decoder/vae_decoder and runs/t2v_star_decoder, the shipped T2V folder with this VAE (links otherwise)."""

import os

os.makedirs(os.environ.get("STUDY_DIR", "runs/heavy_drift"), exist_ok=True)
os.chdir(os.environ.get("STUDY_DIR", "runs/heavy_drift"))  # every path below is relative to the study folder
from pathlib import Path

import numpy as np
import torch

from stillmoving.world import pretrain
from stillmoving.world.synthetic import make_image_dataset
from stillmoving.world.weights import shipped_model

torch.set_num_threads(int(os.environ.get("THREADS", "1")))
# star renders with seeds far from the evaluation's, instead of the generic looks
pretrain.generic_images = lambda count, seed, resolution: np.stack(
    [s.pixels for s in make_image_dataset(count, 5000 + seed, resolution, subject="star")]
)
cfg = pretrain.PretrainConfig(
    generic_images=2048, held_out_images=0, num_videos=2000, decoder_from=str(shipped_model() / "vae")
)
cfg.decoder.steps = 1500
out = Path("runs/star_decoder")
record = pretrain.run(cfg, out, ("decoder",))["decoder"]
print({k: record[k] for k in ("before", "after", "wall_s")})
folder = Path("runs/t2v_star_decoder")
folder.mkdir(exist_ok=True)
for part in ("model_index.json", "scheduler", "text_encoder", "tokenizer", "unet"):
    if not (folder / part).exists():
        (folder / part).symlink_to(shipped_model() / part)
if not (folder / "vae").exists():
    (folder / "vae").symlink_to((out / "vae_decoder").resolve())
