"""Where the heavily drifted subject's motion goes: what the motion modules' temporal attention does while sampling.

python temporal_attention.py NAME M1DIR|none [ADAPTERS] [--spatial-blocks B] [--alpha A] [--model M --motion-adapter MA]
-> results/attention_NAME.json and a line per motion module.

For every temporal attention of every motion module (attn1 and attn2 of its transformer block), over every denoising
step of evalv.py's sampling (the world's 15 steps, guidance 4, 8 frames) of the star's evaluation prompts:
- self: the attention mass a frame puts on itself (1/8 for uniform attention, 1 for none across frames);
- entropy: the attention's entropy over the frames, divided by log(8) (1 for uniform);
- near: the mass on the frames next to it;
- input_cos: how alike the frames are where the motion module reads them, the cosine between two frames' normalised
  features at the same place (after the module's GroupNorm), averaged over frame pairs;
- gain: the module's residual relative to its input, |out - in| / |in| (coupling.py's reading, here while sampling);
- input_cos by step: input_cos over the modules at each of the 15 steps (first: the noisiest);
- matrix: the frames-by-frames attention (row: the attending frame), averaged over every attention, call and place.
"""

import os

os.makedirs(os.environ.get("STUDY_DIR", "runs/heavy_drift"), exist_ok=True)
os.chdir(os.environ.get("STUDY_DIR", "runs/heavy_drift"))  # every path below is relative to the study folder
import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
import variant_args
from diffusers.models.attention_processor import AttnProcessor

torch.set_num_threads(1)
FRAMES, STEPS = 8, 15  # variant_args.videos' sampling: one UNet call per step (the guidance batch is one)
a = variant_args.parser(seeds=2).parse_args()
pipe = variant_args.pipeline(a)
sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
matrices: dict[str, torch.Tensor] = {}  # each attention's frames-by-frames matrix, summed over calls


class Recorder(AttnProcessor):
    """diffusers' plain processor (same maths as AttnProcessor2_0), reading the attention it computes."""

    def __init__(self, name):
        self.name = name

    def __call__(self, attn, hidden_states, *args, **kwargs):
        scores = attn.get_attention_scores

        def read(query, key, mask=None):
            probs = scores(query, key, mask)  # (batch * places * heads, frames, frames)
            f = probs.shape[-1]
            eye = torch.eye(f, dtype=torch.bool)
            near = (torch.arange(f)[:, None] - torch.arange(f)[None]).abs() == 1
            s = sums[self.name]
            s["self"] += probs[:, eye].mean().item()
            s["near"] += (probs * near).sum(-1).mean().item()
            s["entropy"] += (-(probs * probs.clamp_min(1e-12).log()).sum(-1).mean() / math.log(f)).item()
            s["n"] += 1
            matrices[self.name] = matrices.get(self.name, 0) + probs.mean(0)
            return probs

        attn.get_attention_scores = read
        try:
            return super().__call__(attn, hidden_states, *args, **kwargs)
        finally:
            del attn.get_attention_scores


def module_hook(name):
    def hook(mod, inp, out):
        x = inp[0]  # (batch * frames, c, h, w)
        f = FRAMES
        y = out[0] if isinstance(out, tuple) else out
        s = sums[name]
        s["gain"] += ((y - x).norm() / x.norm()).item()
        z = mod.norm(x.reshape(-1, f, *x.shape[1:]).permute(0, 2, 1, 3, 4))  # (batch, c, f, h, w), its GroupNorm
        z = torch.nn.functional.normalize(z, dim=1)
        cos = torch.einsum("bcfhw,bcghw->bfghw", z, z).mean((0, 3, 4))  # (f, f)
        value = ((cos.sum() - cos.diagonal().sum()) / (f * f - f)).item()
        s["input_cos"] += value
        steps[name][int(s["m"]) % STEPS].append(value)  # the denoising step this call belongs to
        s["m"] += 1

    return hook


steps: dict[str, list[list[float]]] = defaultdict(lambda: [[] for _ in range(STEPS)])
for n, m in pipe.unet.named_modules():
    if n.endswith("motion_modules.0") or n.endswith("motion_modules.1"):
        m.register_forward_hook(module_hook(n))
        for k, sub in m.named_modules():
            if k.endswith(("attn1", "attn2")):
                sub.set_processor(Recorder(f"{n}.{k.split('.')[-1]}"))
v = variant_args.videos(pipe, a)
rows = {}
for n, s in sums.items():
    if "n" in s:
        rows[n] = {k: s[k] / s["n"] for k in ("self", "near", "entropy")}
    else:
        rows[n] = {k: s[k] / s["m"] for k in ("gain", "input_cos")}
videos = {k: float(np.nanmean([m[k] for m in v.metrics])) for k in ("speed", "consistency", "fidelity")}
Path("results").mkdir(exist_ok=True)
by_step = np.mean([[np.mean(x) for x in s] for s in steps.values()], axis=0)  # over modules, per step
Path(f"results/attention_{a.name}.json").write_text(
    json.dumps(
        {
            "modules": rows,
            "videos": videos,
            "input_cos_by_step": by_step.tolist(),
            "matrix": (sum(matrices.values()) / sum(sums[n]["n"] for n in matrices)).tolist(),  # mean over all
        },
        indent=1,
    )
)
att = [r for r in rows.values() if "self" in r]
mods = [r for r in rows.values() if "gain" in r]
print(
    a.name,
    " ".join(f"{k}={v:.3f}" for k, v in videos.items()),
    "| mean self={:.3f} near={:.3f} entropy={:.3f} input_cos={:.3f} gain={:.3f}".format(
        np.mean([r["self"] for r in att]),
        np.mean([r["near"] for r in att]),
        np.mean([r["entropy"] for r in att]),
        np.mean([r["input_cos"] for r in mods]),
        np.mean([r["gain"] for r in mods]),
    ),
)
print("  input_cos by step:", " ".join(f"{x:.3f}" for x in by_step))
for n, r in rows.items():
    print(" ", n, " ".join(f"{k}={v:.3f}" for k, v in r.items()))
