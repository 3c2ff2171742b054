"""Does the adapters' cost to a mildly drifted subject come from the objective itself, and does it grow with
classifier-free guidance? The demo's videos of a section with the motion adapter at MOTION_SCALE (1: the static
videos the adapters train on; 0: inference), naive injection and each adapters file, at guidance GUIDANCE (default
the demo's 4); one JSON line each, with Still-Moving minus naive injection (paired 95% intervals).

python studies/smoothness/guidance.py DEMO_DIR TARGET VIDEO_MODEL LORA_WEIGHT MOTION_SCALE ADAPTERS...
  e.g. GUIDANCE=1 python studies/smoothness/guidance.py runs/demo14 star animatediff 1 1 \
         runs/demo14/work/star/animatediff/still_moving/spatial_adapters.safetensors
"""

import json
import os
import sys
from dataclasses import replace
from pathlib import Path

import torch
from recipes import compared, means, section, videos


def main(demo: Path, target: str, video_model: str, weight: float, motion_scale: float, adapters: list[str]) -> None:
    torch.set_num_threads(int(os.environ.get("THREADS", 2)))
    cfg, m1 = section(demo, target, video_model, weight)
    cfg = replace(cfg, guidance_scale=float(os.environ.get("GUIDANCE", cfg.guidance_scale)))
    naive = None
    for path in [None, *adapters]:
        values = videos(cfg, target, m1, path, cfg.motion_adapter, motion_scale)
        row = means(values) if naive is None else compared(values, naive)
        naive = naive or values
        row = {"adapters": path or "none (naive injection)", "guidance": cfg.guidance_scale, **row}
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    a = sys.argv
    main(Path(a[1]), a[2], a[3], float(a[4]), float(a[5]), a[6:])
