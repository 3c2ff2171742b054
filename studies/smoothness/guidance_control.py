"""Is what Still-Moving's adapters repair something a lower guidance scale repairs too? Naive injection at each
guidance scale G, against Still-Moving (ADAPTERS) at the demo's guidance 4, on the demo's videos of a section; one
JSON line per G with the means and Still-Moving minus naive injection (paired 95% intervals).

python studies/smoothness/guidance_control.py DEMO_DIR TARGET VIDEO_MODEL LORA_WEIGHT ADAPTERS G...
  e.g. python studies/smoothness/guidance_control.py runs/demo14 crayon animatediff 2 \
         runs/demo14/work/crayon/drift_2/still_moving/spatial_adapters.safetensors 4 3 2
"""

import json
import os
import sys
from dataclasses import replace
from pathlib import Path

import torch
from recipes import compared, means, section, videos


def main(demo: Path, target: str, video_model: str, weight: float, adapters: str, scales: list[float]) -> None:
    torch.set_num_threads(int(os.environ.get("THREADS", 2)))
    cfg, m1 = section(demo, target, video_model, weight)
    ours = videos(cfg, target, m1, adapters)
    for scale in scales:
        naive = videos(replace(cfg, guidance_scale=scale), target, m1, None)
        row = {"naive_guidance": scale, "still_moving_guidance": cfg.guidance_scale, "naive": means(naive)}
        print(json.dumps({**row, **compared(ours, naive)}), flush=True)


if __name__ == "__main__":
    a = sys.argv
    main(Path(a[1]), a[2], a[3], float(a[4]), a[5], [float(s) for s in a[6:]])
