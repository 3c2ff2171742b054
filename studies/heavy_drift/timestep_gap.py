"""python timestep_gap.py RUN... [--no-naive]: what trained spatial adapters do to the denoiser, per timestep.

On frozen videos (one latent repeated over 8 frames, independent noise per frame) of three image sets: the 16
images stage 2 samples from the heavy M1 (`train`), 16 more at other seeds (`heldout`) and 16 of the renders M1 was
trained on (`renders`). For M1 alone (frame by frame), naive injection and each run's adapters (alpha 1 and 0) it
prints the noise-prediction error, the distance to M1's own per-frame prediction, and the star fidelity of the clean
latent each predicts from t = 700, 900 and 990, decoded through the star-trained instrument (docs/method.md, "Why
the paper's target erases the subject")."""

import os

os.makedirs(os.environ.get("STUDY_DIR", "runs/heavy_drift"), exist_ok=True)
os.chdir(os.environ.get("STUDY_DIR", "runs/heavy_drift"))  # every path below is relative to the study folder
import sys

import numpy as np
import torch

from stillmoving.adapters.motion import MotionLoRA
from stillmoving.adapters.spatial import SpatialAdapters
from stillmoving.data.frozen import encode_prompts
from stillmoving.data.sources import decode_latents, images_from_folder, sample_images
from stillmoving.data.video_io import to_uint8_frames
from stillmoving.loading import load_customized, load_t2v
from stillmoving.losses import predicted_clean
from stillmoving.training.setup import t2i_pipeline, training_scheduler
from stillmoving.world.metrics import video_metrics
from stillmoving.world.phases import evaluation_scenes, image_prompts
from stillmoving.world.weights import shipped_model, shipped_motion_adapter

torch.set_num_threads(2)
runs = [r for r in sys.argv[1:] if r != "--no-naive"]
references = "--no-naive" not in sys.argv
instrument = load_t2v("runs/t2v_star_decoder").vae
pipe = load_t2v(str(shipped_model()))
m1 = load_customized(pipe, "m1_heavy", [])
t2i = t2i_pipeline(pipe, m1.unet, m1.text_encoder, None)
t2i.set_progress_bar_config(disable=True)
prompts = image_prompts(evaluation_scenes("star", 16, 4, 32, 8))  # stage 2's image prompts (customize.py)
renders, render_prompts = images_from_folder("star_images", pipe.vae, 32, 32, "a sks star")
data = {
    "train": (torch.stack(sample_images(t2i, prompts, 32, 32, 0, 15, 4.0)), prompts),
    "heldout": (torch.stack(sample_images(t2i, prompts, 32, 32, 1000, 15, 4.0)), prompts),
    "renders": (torch.stack(renders[:16]), render_prompts[:16]),
}


def fidelity(latents, prompts):
    images = decode_latents(instrument, latents)
    scores = [
        video_metrics(to_uint8_frames(x.permute(1, 2, 0).numpy()[None]), prompt=p, target="star")["fidelity"]
        for x, p in zip(images, prompts)
    ]
    return float(np.mean(scores))


for name, (latents, texts) in data.items():
    print(name, "images' star fidelity", round(fidelity(latents, texts), 3), flush=True)
teacher = m1.unet
pipe.inject_customized(m1.unet, m1.text_encoder)
scheduler = training_scheduler(pipe)
motion = MotionLoRA.load(pipe.unet, str(shipped_motion_adapter()))
T, F = [50, 150, 300, 500, 700, 900, 990], 8
g = torch.Generator().manual_seed(0)
noise = {k: torch.randn((len(T), len(v[0]), 4, F, 8, 8), generator=g) for k, v in data.items()}


@torch.no_grad()
def video_prediction(x, t, text):
    return pipe.unet(x, torch.full((len(x),), t), encoder_hidden_states=text.repeat_interleave(F, 0)).sample


@torch.no_grad()
def t2i_prediction(x, t, text):
    b, c, f, h, w = x.shape
    flat = x.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)
    out = teacher(flat, torch.full((b * f,), t), encoder_hidden_states=text.repeat_interleave(f, 0)).sample
    return out.reshape(b, f, c, h, w).permute(0, 2, 1, 3, 4)


def report(label, predict):
    for name, (latents, texts) in data.items():
        text = encode_prompts(pipe.tokenizer, pipe.text_encoder, texts)
        eps, distance, fid = [], [], []
        clean = latents[:, :, None].expand(-1, -1, F, -1, -1)
        for i, t in enumerate(T):
            steps = torch.full((len(latents),), t)
            noisy = scheduler.add_noise(clean, noise[name][i], steps)
            prediction = predict(noisy, t, text)
            eps.append(((prediction - noise[name][i]) ** 2).mean().item())
            distance.append(((prediction - t2i_prediction(noisy, t, text)) ** 2).mean().item())
            if t >= 700:
                fid.append(fidelity(predicted_clean(scheduler, noisy, prediction, steps)[:, :, 0], texts))
        row = lambda xs, fmt: " ".join(f"{x:{fmt}}" for x in xs)  # noqa: E731
        print(
            f"{label:22s} {name:7s} eps {row(eps, '.4f')} | to M1 {row(distance, '.4f')} "
            f"| fidelity of x0 from t=700,900,990 {row(fid, '.2f')}",
            flush=True,
        )


print("t:", T)
if references:
    report("M1 per frame", t2i_prediction)
for run in (["naive"] if references else []) + runs:
    adapters = None if run == "naive" else SpatialAdapters.load(f"runs/{run}/spatial_adapters.safetensors")
    if adapters is not None:
        adapters.attach(pipe.unet)
    for alpha in (1.0, 0.0):
        motion.set_scale(alpha)
        report(f"{run}@a{alpha:g}", video_prediction)
    if adapters is not None:
        adapters.detach()
