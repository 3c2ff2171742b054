"""Does training the spatial adapters on frozen videos WITHOUT the motion adapter freeze the videos, given more
training? The paper's ablation says it does (the adapters learn "static"); the demo's ablation (120 steps) is
not static. For each step budget this trains the ablation with the demo's sizes on the demo's own customized T2I,
then measures
- the videos: static share and speed (px/frame), the demo's 4 prompts x 2 seeds;
- the frozen-video loss the ablation minimises (V+M1+adapters, V's temporal layers as they are = alpha 0), next
  to the same loss with the motion adapter at alpha 1, which makes static videos (the demo's sweep: 0.1 px).
  The gap between the two is what freezing the videos would gain the ablation.

python studies/no_motion_adapter/freeze.py DEMO_DIR TARGET OUT STEPS...
  DEMO_DIR: a `stillmoving demo -o DEMO_DIR` report (its work/TARGET/t2i is the customized T2I)
  e.g. python studies/no_motion_adapter/freeze.py demo13 star runs/freeze_star 0 120 480 1920
Step budget 0 is the customized T2I injected without adapters (naive injection). MOTION=1 trains Still-Moving
itself (the motion adapter on) at the same budgets, the control. LR=1e-4 trains at that learning rate instead of
the demo's fast recipe's 1e-3 (customize's own is 1e-4).
"""

import json
import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from score import measures  # this folder, on the path when run as a script

from stillmoving.adapters.motion import MotionLoRA
from stillmoving.adapters.spatial import SpatialAdapters
from stillmoving.data.frozen import encode_pixels, encode_prompts, to_pixels
from stillmoving.loading import load_customized, load_t2v
from stillmoving.training.setup import training_scheduler
from stillmoving.world.demo import DemoConfig
from stillmoving.world.phases import customized_args, section_prompts, spatial_run
from stillmoving.world.weights import shipped_model, shipped_motion_adapter

TIMESTEPS = torch.tensor([50, 150, 300, 500, 700, 900])


@torch.no_grad()
def frozen_losses(run: Path, m1: dict, adapters: Path | None) -> dict[str, float]:
    """Mean denoising error on the run's own frozen videos (its M1 images repeated over 8 frames), fixed noise,
    at alpha 0 (what the ablation trains) and alpha 1 (static videos)."""
    pipe = load_t2v(str(shipped_model()))
    custom = load_customized(pipe, m1["customized"], m1["loras"])
    pipe.inject_customized(custom.unet, custom.text_encoder)
    if adapters is not None:
        SpatialAdapters.load(adapters).attach(pipe.unet)
    motion = MotionLoRA.load(pipe.unet, str(shipped_motion_adapter()))
    record = json.loads((run / "customize_run.json").read_text())["config"]
    paths = sorted((run / "images").glob("*.png"))
    latents = encode_pixels(pipe.vae, torch.cat([to_pixels(np.array(Image.open(p)), 32, 32) for p in paths]))
    prompts = [record["prompt"][i % len(record["prompt"])] for i in range(len(paths))]
    text = encode_prompts(pipe.tokenizer, custom.text_encoder or pipe.text_encoder, prompts).repeat_interleave(8, 0)
    frozen = latents[:, :, None].expand(-1, -1, 8, -1, -1)  # (n, c, f, h, w)
    noise = torch.randn((len(TIMESTEPS), *frozen.shape), generator=torch.Generator().manual_seed(0))
    scheduler, n, out = training_scheduler(pipe), len(paths), {}
    for alpha in (0.0, 1.0):
        motion.set_scale(alpha)
        errors = []
        for eps, t in zip(noise, TIMESTEPS):
            noisy = scheduler.add_noise(frozen, eps, t.repeat(n))
            errors.append(((pipe.unet(noisy, t.repeat(n), encoder_hidden_states=text).sample - eps) ** 2).mean())
        out[f"loss_alpha_{alpha:g}"] = float(torch.stack(errors).mean())
    return out


def videos(cfg: DemoConfig, target: str, m1: dict, adapters: Path | None) -> dict[str, float]:
    found = measures(cfg, target, m1, adapters)
    mean = lambda key: float(np.nanmean(found[key]))  # noqa: E731
    return {"static_share": mean("is_static"), "speed": mean("speed"), "fidelity": mean("fidelity")}


def main(demo: Path, target: str, out: Path, budgets: list[int]) -> None:
    torch.set_num_threads(1)
    cfg = replace(
        DemoConfig(),
        model=str(shipped_model()),
        motion_adapter=str(shipped_motion_adapter()),
        eval_prompts=4,  # 12 pairs: the demo's size through session 16, which this study's figures use
        seeds=3,
        spatial_lr=float(os.environ.get("LR", DemoConfig().spatial_lr)),
    )
    m1 = customized_args(target, demo / "work" / target / "t2i")
    _, train_prompts = section_prompts(cfg, target)
    with_motion = os.environ.get("MOTION") == "1"
    changes = {} if with_motion else {"motion_adapter": ""}
    rows = []
    for steps in budgets:
        run = out / f"steps_{steps}"
        trained = spatial_run(replace(cfg, spatial_steps=max(steps, 1)), m1, train_prompts, run, **changes)
        adapters = Path(trained) if steps else None  # budget 0: only the run's images are used
        row = {
            "steps": steps,
            "motion_adapter": with_motion,
            "lr": cfg.spatial_lr,
            **videos(cfg, target, m1, adapters),
            **frozen_losses(run, m1, adapters),
        }
        if adapters is not None:
            tensors = SpatialAdapters.load(adapters).named_tensors()
            row["adapter_norm"] = float(sum(v.float().norm() ** 2 for v in tensors.values()) ** 0.5)
        rows.append(row)
        print(json.dumps(row), flush=True)
    (out / "freeze.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), [int(s) for s in sys.argv[4:]])
