"""python layout_spread.py NAME M1DIR|none: how much the T2I's layout depends on its noise (session 29).

The customized T2I alone (none: V's own T2I), the star's 8 evaluation prompts x 8 seeds at the world's sampling;
per prompt, the spread of the object's centroid over the seeds (root mean square distance from their mean, px) and
the mean pixel difference between two seeds' images; printed as means over the prompts."""

import sys

import numpy as np
import torch

from stillmoving.backends import backend_of
from stillmoving.loading import assemble_pipeline, load_customized, t2i_pipeline
from stillmoving.world.metrics import segment
from stillmoving.world.phases import evaluation_prompts
from stillmoving.world.weights import shipped_model

torch.set_num_threads(1)
name, m1 = sys.argv[1], sys.argv[2]
t2v = assemble_pipeline(str(shipped_model()))
if m1 == "none":
    unet, text = backend_of(t2v).t2i_unet(t2v.unet), None
else:
    customized = load_customized(t2v, m1)
    unet, text = customized.unet, customized.text_encoder
pipe = t2i_pipeline(t2v, unet, text)
pipe.set_progress_bar_config(disable=True)
spreads, differences, missing = [], [], 0
for prompt in evaluation_prompts("star", 8, 2, 32, 8):
    generators = [torch.Generator().manual_seed(s) for s in range(8)]
    images = pipe([prompt] * 8, num_inference_steps=15, guidance_scale=4.0, height=32, width=32, output_type="np",
                  generator=generators).images  # fmt: skip
    images = (images * 255).round()
    centroids = segment(images).centroid
    found = centroids[~np.isnan(centroids).any(1)]
    missing += 8 - len(found)
    spreads.append(np.sqrt(((found - found.mean(0)) ** 2).sum(1).mean()))
    pairs = np.abs(images[:, None] - images[None]).mean((2, 3, 4))
    differences.append(pairs[np.triu_indices(8, 1)].mean())
print(
    name,
    f"centroid spread {np.mean(spreads):.2f} px, pixel difference between seeds {np.mean(differences):.2f},"
    f" no object in {missing} of 64",
)
