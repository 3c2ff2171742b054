"""Cross-frame attention at inference (session 17): does reading frame 0 in every frame's spatial self-attention tie
the heavy drift's flickering tint?

Text2Video-Zero's processor (diffusers' `CrossFrameAttnProcessor`): each frame's spatial self-attention (`attn1` of
the spatial transformers, not the motion modules) takes its keys and values from frame 0 of its video. For a
`run.py` run folder, naive injection and Still-Moving are generated at the world's sampling (15 steps, guidance 4;
the prompts and seeds of `run.py`'s eval_g4), with and without it, into OUT/{naive,still_moving}[_cfa], and scored
with `score.py`; prints each pair's paired differences.

    .venv/bin/python studies/unseen/cross_frame.py runs/unseen/heavy/animatediff/default runs/cfa runs/unseen/images
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from diffusers.models.attention_processor import AttnProcessor
from diffusers.pipelines.deprecated.text_to_video_synthesis.pipeline_text_to_video_zero import CrossFrameAttnProcessor

sys.path.insert(0, str(Path(__file__).parent))
from run import PROMPTS  # noqa: E402
from score import METRICS, score_folder, summarize  # noqa: E402

from stillmoving.inference import generate_videos  # noqa: E402
from stillmoving.loading import assemble_pipeline  # noqa: E402
from stillmoving.run_folder import model_files, read_customization  # noqa: E402

SEEDS = 4  # videos per prompt, seeds 0, 1, ... counting up over the prompts, as run.py's generate call


def cross_frame(unet, on: bool) -> None:
    """Every spatial self-attention reads frame 0 (on) or its own frame (off, diffusers' plain processor)."""
    for name, module in unet.named_modules():
        if name.endswith("attn1") and "motion_modules" not in name:
            module.set_processor(CrossFrameAttnProcessor(batch_size=2) if on else AttnProcessor())  # 2: guidance


def main(run: str, out: str, renders: str) -> None:
    torch.set_num_threads(2)
    files = model_files(read_customization(run))
    prompts = [p for p in PROMPTS for _ in range(SEEDS)]
    scores = {}
    for variant, scale in (("naive", 0.0), ("still_moving", 1.0)):
        pipe = assemble_pipeline(**files, device="cpu", dtype=torch.float32, spatial_scale=scale)
        pipe.set_progress_bar_config(disable=True)
        for on in (False, True):
            cross_frame(pipe.unet, on)
            folder = Path(out) / (variant + ("_cfa" if on else ""))
            if not folder.exists():
                folder.mkdir(parents=True)
                generate_videos(
                    pipe, prompts, folder / "v.gif", num_frames=8, height=32, width=32, steps=15, guidance_scale=4.0
                )
            scores[folder.name] = score_folder(folder, Path(renders))
    pairs = [("naive", "still_moving"), ("naive_cfa", "still_moving_cfa"), ("naive", "naive_cfa")]
    for a, b in [*pairs, ("still_moving", "still_moving_cfa"), ("naive", "still_moving_cfa")]:
        print(f"{b} minus {a}: {json.dumps(summarize(scores[a], scores[b], METRICS))}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
