"""customize's end-of-run look check, rescored on finished runs against a pooled reference (session 17).

The check compares each validation video with the customized T2I's one image of the same prompt and seed
(`naive_check.look_kept`), and calls the adapters worse when Still-Moving's mean agreement is LOOK_DROP below
naive injection's. One image per video is a noisy reference (a video's frames and an image of the same seed start
from different noise). For each run folder given (a `customize` output with `validation/`), this prints Still-Moving
minus naive injection three ways: as recorded (A); each video against K more images of M1 for its prompt, the mean
of the K agreements (C: the same quantity, less noisy); and against the mean histogram of those K images (B, as
`reference.py` scores the study's videos). M1 is rebuilt from the run's own record, as customize built it.

    K=8 .venv/bin/python studies/unseen/check_reference.py runs/unseen/*/*/default runs/unseen_style/*/*/default
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from score import load  # noqa: E402

from stillmoving.loading import load_customized, t2i_pipeline  # noqa: E402
from stillmoving.run_folder import CUSTOMIZE_RUN  # noqa: E402
from stillmoving.training.config import CustomizeConfig, current_keys  # noqa: E402
from stillmoving.training.monitor import render_image  # noqa: E402
from stillmoving.training.setup import make_accelerator  # noqa: E402
from stillmoving.training.spatial_stage import frozen_video_model  # noqa: E402
from stillmoving.video_metrics import colour_agreement, colour_histograms  # noqa: E402

K = int(os.environ.get("K", "8"))  # reference images per prompt
FIRST_SEED = 1000  # their seeds: FIRST_SEED ... FIRST_SEED + K - 1, none of the videos'


def run_config(run: Path) -> CustomizeConfig:
    """The run's customize settings from its record, in today's option names (any version's record)."""
    return CustomizeConfig(**current_keys(CustomizeConfig, json.loads((run / CUSTOMIZE_RUN).read_text())["config"]))


def agreements(video: np.ndarray, images: np.ndarray) -> tuple[float, float]:
    """(B, C) of one video against a prompt's reference images."""
    look = colour_histograms(images).mean(axis=0)
    pooled = float(np.minimum(colour_histograms(video), look).sum(axis=1).mean())
    each = float(np.mean([colour_agreement(video, np.broadcast_to(image, video.shape)) for image in images]))
    return pooled, each


def main(runs: list[str]) -> None:
    torch.set_num_threads(2)
    t2i, key, references = None, None, {}
    for run in map(Path, runs):
        cfg = run_config(run)
        record = json.loads((run / "validation.json").read_text())
        prompts = record["prompts"]
        if key != (run_key := (cfg.model, cfg.customized, json.dumps(cfg.lora), cfg.sample_steps, cfg.guidance_scale)):
            pipe = frozen_video_model(make_accelerator(cfg), cfg)
            m1 = load_customized(pipe, cfg.customized, cfg.lora)
            t2i = t2i_pipeline(pipe, m1.unet, m1.text_encoder, m1.text_encoder_2)
            t2i.set_progress_bar_config(disable=True)
            key, references = run_key, {}
        for prompt in prompts:
            if prompt not in references:
                references[prompt] = np.stack([render_image(t2i, prompt, FIRST_SEED + s, cfg) for s in range(K)])
        means = {}
        for variant, stem in (("naive injection", "naive_injection"), ("Still-Moving", "still_moving")):
            videos = [load(run / "validation" / f"{stem}_{i:03d}.gif") for i in range(len(prompts))]
            means[variant] = np.mean([agreements(v, references[p]) for v, p in zip(videos, prompts)], axis=0)
        recorded = record.get("t2i_agreement", {}).get("means", {})
        a = recorded.get("Still-Moving", np.nan) - recorded.get("naive injection", np.nan)
        b, c = means["Still-Moving"] - means["naive injection"]
        print(
            f"{'/'.join(run.parts[-3:])}: Still-Moving minus naive injection, recorded (one image per video) {a:+.3f}, "
            f"{K} images per prompt: mean of agreements {c:+.3f}, against their mean histogram {b:+.3f}; "
            f"worse by the check: {record['worse_than_naive']}",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:])
