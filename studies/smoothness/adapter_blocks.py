"""Where in the UNet do the trained adapters repair and where do they cost? The demo's trained adapters are kept on
a group of blocks only (the others' A_up set to zero: those adapters are the identity) and the section's videos
regenerated and scored against naive injection, paired by (prompt, seed), as `recipes.py` does. The groups:
high resolution (down_blocks.0 and up_blocks.1, the blocks at the latent's full size), low resolution (down_blocks.1,
mid_block, up_blocks.0), the encoder side (down blocks and mid block) and the decoder side (up blocks).

python studies/smoothness/adapter_blocks.py DEMO_DIR OUT SECTION...
  SECTION: TARGET:VIDEO_MODEL:LORA_WEIGHT:RUN, RUN the demo's work folder of the trained adapters, e.g.
  star:animatediff:1:star/animatediff/still_moving  crayon:animatediff:2:crayon/drift_2
  crayon:joint:1:crayon/joint/still_moving
FULL=1: the demo's 8 prompts x 4 seeds (default 12 pairs). ONLY="encoder side" keeps that one group (and every block).
"""

import json
import os
import sys
from pathlib import Path

import torch
from recipes import compared, section, videos
from safetensors import safe_open
from safetensors.torch import save_file

from stillmoving.run_folder import SPATIAL_ADAPTERS

GROUPS = {
    "high resolution": ("down_blocks.0.", "up_blocks.1."),
    "low resolution": ("down_blocks.1.", "mid_block.", "up_blocks.0."),
    "encoder side": ("down_blocks.", "mid_block."),
    "decoder side": ("up_blocks.",),
}


def kept_on(trained: Path, prefixes: tuple[str, ...], out: Path) -> Path:
    """The adapter file with every adapter outside `prefixes` made the identity (its A_up zero)."""
    with safe_open(trained, "pt") as f:
        metadata, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    for key, value in tensors.items():
        if key.endswith(".up") and not key.startswith(prefixes):
            tensors[key] = torch.zeros_like(value)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, out, metadata)
    return out


def main(demo: Path, out: Path, sections: list[str]) -> None:
    torch.set_num_threads(2)
    for spec in sections:
        target, video_model, weight, run = spec.split(":")
        cfg, m1 = section(demo, target, video_model, float(weight))
        trained = demo / "work" / run / SPATIAL_ADAPTERS
        here = out / run.replace("/", "_")
        naive = videos(cfg, target, m1, None)
        rows = [{"section": spec, "blocks": "every block", **compared(videos(cfg, target, m1, str(trained)), naive)}]
        for name, prefixes in GROUPS.items():
            if os.environ.get("ONLY", name) != name:
                continue
            adapters = kept_on(trained, prefixes, here / name.replace(" ", "_") / SPATIAL_ADAPTERS)
            rows.append({"section": spec, "blocks": name, **compared(videos(cfg, target, m1, str(adapters)), naive)})
        for row in rows:
            print(json.dumps(row), flush=True)
        (here / "blocks.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:])
