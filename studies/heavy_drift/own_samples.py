"""python own_samples.py: the noise-prediction error per timestep of the base T2I M and of the heavy M1, on their
own samples (15 and 50 DDIM steps, guidance 4, and 15 steps at guidance 1) and on the rendered star images M1 was
trained on, with the latents' high-frequency energy (docs/method.md, "Why the paper's target erases the subject")."""

import os

os.makedirs(os.environ.get("STUDY_DIR", "runs/heavy_drift"), exist_ok=True)
os.chdir(os.environ.get("STUDY_DIR", "runs/heavy_drift"))  # every path below is relative to the study folder
import torch

from stillmoving.data.frozen import encode_prompts
from stillmoving.data.sources import images_from_folder, sample_images
from stillmoving.injection import t2i_unet_from_t2v
from stillmoving.loading import load_customized, load_t2v
from stillmoving.training.setup import t2i_pipeline, training_scheduler
from stillmoving.world.phases import evaluation_scenes, image_prompts
from stillmoving.world.weights import shipped_model

torch.set_num_threads(2)
pipe = load_t2v(str(shipped_model()))
m1 = load_customized(pipe, "m1_heavy", [])
scheduler = training_scheduler(pipe)
T = [20, 50, 150, 300, 500, 700, 900]
prompts = image_prompts(evaluation_scenes("star", 16, 4, 32, 8))
renders, render_prompts = images_from_folder("star_images", pipe.vae, 32, 32, "a sks star")
renders = torch.stack(renders[:16])
g = torch.Generator().manual_seed(0)


def high_frequency(latents):
    return float((latents - torch.nn.functional.avg_pool2d(latents, 3, 1, 1)).pow(2).mean())


def errors(unet, text_encoder, latents, texts):
    text = encode_prompts(pipe.tokenizer, text_encoder, texts)
    out = []
    for t in T:
        noise, steps = torch.randn(latents.shape, generator=g), torch.full((len(latents),), t)
        with torch.no_grad():
            prediction = unet(scheduler.add_noise(latents, noise, steps), steps, encoder_hidden_states=text).sample
        out.append(f"{((prediction - noise) ** 2).mean().item():.4f}")
    return " ".join(out) + f" | high-frequency energy {high_frequency(latents):.4f}"


print("t:", T)
models = [("M", t2i_unet_from_t2v(pipe.unet), pipe.text_encoder), ("M1", m1.unet, m1.text_encoder)]
for label, unet, text_encoder in models:
    t2i = t2i_pipeline(pipe, unet, text_encoder, None)
    t2i.set_progress_bar_config(disable=True)
    for steps, guidance in ((15, 4.0), (50, 4.0), (15, 1.0)):
        latents = torch.stack(sample_images(t2i, prompts, 32, 32, 0, steps, guidance))
        what = f"{label} own samples, {steps} steps, guidance {guidance:g}:"
        print(what, errors(unet, text_encoder, latents, prompts))
    print(f"{label} star renders:", errors(unet, text_encoder, renders, render_prompts[:16]), flush=True)
