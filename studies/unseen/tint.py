"""Where the heavy drift's flicker sits and what the frames draw (docs/method.md, "The unseen subject's flicker, read
without bins").

For one run of `run.py` (its eval_g4 videos): Still-Moving minus naive injection in consistency for every (prompt,
seed), one row per prompt; for the gray-background prompts, each variant's background colour (pixels at least
`score.MARGIN` px from the violet in every frame) in the first frames and its spread within a video (standard deviation
over frames, mean over channels and videos); then the customized T2I's own images of the first gray prompt, 16 seeds at
the videos' 15 steps, unguided and at guidance 4: their background colour and its spread between seeds.

    .venv/bin/python studies/unseen/tint.py runs/unseen heavy animatediff
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from mixed_noise import SEEDS_PER_PROMPT, SIZE, STEPS  # noqa: E402
from run import PROMPTS  # noqa: E402
from score import background_colours, load, score_folder  # noqa: E402

from stillmoving.inference import sampling_arguments  # noqa: E402
from stillmoving.loading import load_customized, load_t2v, t2i_pipeline  # noqa: E402
from stillmoving.world.weights import shipped_model  # noqa: E402

GRAY = [i for i, p in enumerate(PROMPTS) if "gray" in p]


def main(out: str, drift: str = "heavy", model: str = "animatediff") -> None:
    torch.set_num_threads(2)
    root = Path(out)
    videos = root / drift / model / "default" / "eval_g4"
    naive, ours = (score_folder(videos / v) for v in ("naive", "still_moving"))
    gaps = np.array([b["consistency"] - a["consistency"] for a, b in zip(naive, ours)]).reshape(len(PROMPTS), -1)
    for prompt, row in zip(PROMPTS, gaps):
        print(f"{prompt}: consistency, Still-Moving minus naive injection {np.round(row, 3).tolist()}")
    for variant in ("naive", "still_moving"):
        files = sorted((videos / variant).glob("*.gif"))
        colours = [background_colours(load(f)) for i, f in enumerate(files) if i // SEEDS_PER_PROMPT in GRAY]
        first = np.stack([c[0] for c in colours]).mean(axis=0)
        within = np.mean([c.std(axis=0).mean() for c in colours])
        print(f"{variant}, gray prompts: first frames' background {np.round(first).astype(int).tolist()}, "
              f"spread within a video {within:.1f} levels")  # fmt: skip
    t2v = load_t2v(str(shipped_model()))
    m1 = load_customized(t2v, str(root / drift / "t2i"), [])
    t2i = t2i_pipeline(t2v, m1.unet, m1.text_encoder)
    t2i.set_progress_bar_config(disable=True)
    for guidance in (1.0, 4.0):
        images = np.stack([
            (t2i(PROMPTS[GRAY[0]], **sampling_arguments(SIZE, SIZE, STEPS, guidance, seed)).images[0] * 255).round()
            for seed in range(16)
        ]).astype(np.uint8)  # fmt: skip
        colours = np.stack([background_colours(image[None])[0] for image in images])
        mean, spread = np.round(colours.mean(axis=0)).astype(int).tolist(), np.round(colours.std(axis=0), 1).tolist()
        print(f"the customized T2I, guidance {guidance:g}: background {mean}, spread between seeds {spread}")


if __name__ == "__main__":
    main(*sys.argv[1:])
