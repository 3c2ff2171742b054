"""Smoke run of every stage through the CLI on an UNTRAINED tiny model (seconds, offline).

It proves the installation works end to end: build a tiny AnimateDiff-shaped model and a "customized"
T2I (its UNet nudged by noise), train a motion adapter, customize, generate at three motion scales, compare
the variants and score videos.
The videos are noise: the weights are random. The embedded, pretrained world model replaces this.
"""

import os
import subprocess
import sys
from pathlib import Path

import torch

os.environ["HF_HUB_OFFLINE"] = "1"
WORDS = ["a", "red", "circle", "moving", "left", "sks", "dog"]
SIZE = ["--num-frames", "8", "--height", "32", "--width", "32"]


def stillmoving(*args: str) -> None:
    print("$ stillmoving", " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "stillmoving", *args], check=True)


def main(root: Path) -> None:
    from stillmoving.injection import t2i_unet_from_t2v
    from stillmoving.world.architectures import build_pipeline

    pipe = build_pipeline("tiny", WORDS, root / "tokenizer", resolution=32, seed=0)
    pipe.save_pretrained(root / "t2v")
    customized = t2i_unet_from_t2v(pipe.unet)
    with torch.no_grad():
        for p in customized.parameters():
            p.add_(0.02 * torch.randn_like(p))
    customized.save_pretrained(root / "customized_unet")
    stillmoving(
        "motion-adapter",
        "train",
        "--model",
        str(root / "t2v"),
        "-o",
        str(root / "motion"),
        "--sample-prompt",
        "a red circle moving left",
        "--num-sampled-videos",
        "4",
        "--steps",
        "20",
        "--sample-steps",
        "4",
        "--overwrite",
        *SIZE,
    )  # a rerun starts afresh
    stillmoving(
        "customize",
        "--model",
        str(root / "t2v"),
        "-o",
        str(root / "customization"),
        "--motion-adapter",
        str(root / "motion/motion_adapter"),
        "--customized",
        str(root / "customized_unet"),
        "--prompt",
        "a sks dog",
        "--identifier",
        "sks",
        "--num-images",
        "4",
        "--num-prior-videos",
        "4",
        "--steps",
        "20",
        "--sample-steps",
        "4",
        "--overwrite",
        *SIZE,
    )
    for scale in ("1", "0", "-1"):
        stillmoving(
            "generate",
            "--customization",
            str(root / "customization"),
            "--prompt",
            "a sks dog",
            "--motion-scale",
            scale,
            "--steps",
            "4",
            "-o",
            str(root / f"video_alpha{scale}.gif"),
            *SIZE,
        )
    stillmoving(
        "compare",
        "--customization",
        str(root / "customization"),
        "--prompt",
        "a sks dog",
        "--seeds",
        "1",
        "--steps",
        "4",
        "-o",
        str(root / "compare"),
        "--overwrite",
        *SIZE,
    )  # no backbones: dynamic degree
    stillmoving("eval", str(root / "compare/videos/Still-Moving"), "--prompt", "a sks dog")
    stillmoving("info", str(root / "customization"))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/quickstart"))
