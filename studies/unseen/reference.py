"""The customized T2I as the reference: its own images of the study's prompts, and how close each run's videos come
to them.

For each drift and each set of videos (`eval/`: generate's defaults, 25 steps and guidance 7.5; `eval_g4/`: 15
steps, guidance 4): M1's images of the four evaluation prompts at those settings and without guidance, seeds as
the videos' (`score.py`'s violet fidelity); then, for each run of `run.py` (both video models, every TAG found),
each video's colour-histogram intersection with the mean histogram of M1's eight images of its prompt at the
videos' settings, naive injection and Still-Moving, and their paired difference. The histogram is the whole
frame's, background included, so it says how much of M1's overall look a video has, where fidelity says how much
of the subject.

    .venv/bin/python studies/unseen/reference.py runs/unseen
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from run import PROMPTS  # noqa: E402
from score import load, reference, video_scores  # noqa: E402

from stillmoving.inference import sampling_arguments  # noqa: E402
from stillmoving.loading import load_customized, load_t2v, t2i_pipeline  # noqa: E402
from stillmoving.video_metrics import colour_histograms  # noqa: E402
from stillmoving.world.stats import paired_bootstrap  # noqa: E402
from stillmoving.world.weights import shipped_model  # noqa: E402

SEEDS = 4  # videos per prompt in run.py; the T2I's images of prompt i use the videos' seeds i*SEEDS ... + SEEDS-1
SETTINGS = {"eval": (25, 7.5), "eval_g4": (15, 4.0)}  # run.py's video folders: generate's defaults, GUIDANCE=4


def images(t2i, prompt: str, seeds, steps: int, guidance: float) -> np.ndarray:
    """uint8 (n, 32, 32, 3) images of M1 for `prompt`, one per seed."""
    out = [t2i(prompt, **sampling_arguments(32, 32, steps, guidance, seed)).images[0] for seed in seeds]
    return (np.stack(out) * 255).round().astype(np.uint8)


def video_seed_images(t2i, prompts: list[str], steps: int, guidance: float) -> np.ndarray:
    """uint8 (len(prompts) * SEEDS, 32, 32, 3): M1's images of each prompt at its videos' seeds, in their order."""
    return np.concatenate(
        [images(t2i, p, range(i * SEEDS, (i + 1) * SEEDS), steps, guidance) for i, p in enumerate(prompts)]
    )


def print_agreements(label: str, runs: list[Path], t2i, prompts: list[str], steps: int, guidance: float) -> None:
    """`print_agreement` for every run folder, against M1's mean colour histogram of eight images per prompt."""
    looks = [colour_histograms(images(t2i, p, range(8), steps, guidance)).mean(axis=0) for p in prompts]
    for run in runs:
        print_agreement(f"{label} " + "/".join(run.parts[-3:]), run, looks)


def print_agreement(name: str, run: Path, looks: list[np.ndarray]) -> None:
    """Each video's colour-histogram intersection with `looks[prompt]` (M1's mean histogram of that prompt), the
    videos of `run`/{naive,still_moving} in prompt order, SEEDS per prompt; printed with the paired difference."""
    agreement = {}
    for variant in ("naive", "still_moving"):
        files = sorted((run / variant).glob("*.gif"))
        agreement[variant] = [
            float(np.minimum(colour_histograms(load(f)), looks[i // SEEDS]).sum(axis=1).mean())
            for i, f in enumerate(files)
        ]
    d = paired_bootstrap(agreement["naive"], agreement["still_moving"])
    print(
        f"{name}: colour agreement with the T2I's images, naive {np.mean(agreement['naive']):.3f}, "
        f"Still-Moving {np.mean(agreement['still_moving']):.3f}, difference {d.estimate:+.3f} "
        f"[{d.low:+.3f}, {d.high:+.3f}]",
        flush=True,
    )


def main(out: str) -> None:
    torch.set_num_threads(2)
    root = Path(out)
    ref = reference(root / "images")
    for drift in ("mild", "heavy"):
        if not (root / drift / "t2i").exists():
            continue
        t2v = load_t2v(str(shipped_model()))
        m1 = load_customized(t2v, str(root / drift / "t2i"), [])
        t2i = t2i_pipeline(t2v, m1.unet, m1.text_encoder)
        t2i.set_progress_bar_config(disable=True)
        for folder, (steps, guidance) in SETTINGS.items():
            runs = sorted(root.glob(f"{drift}/*/*/{folder}"))
            if not runs:
                continue
            for scale in (guidance, 1.0):
                shots = video_seed_images(t2i, PROMPTS, steps, scale)
                fidelity = np.mean([video_scores(shot[None], ref)["fidelity"] for shot in shots])
                print(
                    f"{drift}: the customized T2I, {steps} steps, guidance {scale:g}: fidelity {fidelity:.3f}",
                    flush=True,
                )
            print_agreements(drift, runs, t2i, PROMPTS, steps, guidance)


if __name__ == "__main__":
    main(*sys.argv[1:])
