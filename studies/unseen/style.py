"""A style nobody here has seen, through the user's commands, scored by measures the project does not contain.

The style half of issue 13's check (`run.py` is the subject half): someone else draws a style as a folder of
images, here "soft style" (PIL shapes in bright colours on the world's backgrounds, Gaussian-blurred by 2 px at
32 px: the world renders every edge sharp), trains a style LoRA with `stillmoving t2i lora` (the demo's style
recipe: rank 16, 400 steps, lr 1e-3), runs `stillmoving customize` with its defaults, the LoRA fused at weight 1
(mild) and 2 (heavy: the LoRA's strength is the drift knob a user turns, as in the demo's drift study), and
`generate` makes the same prompts and seeds with the adapters and at `--spatial-scale 0` (naive injection,
exactly). Why blur: the world's VAE keeps it (31.5 dB; a grey "mono" style and a hard drop shadow, tried first,
came back coloured and without the shadow, and a LoRA on the T2I's attention did not learn the grey style).

    .venv/bin/python studies/unseen/style.py runs/unseen_style [mild heavy] [animatediff joint NAME=...]
    GUIDANCE=4 .venv/bin/python studies/unseen/style.py reference runs/unseen_style   # the T2I's images as reference

Scores (per video, 32 x 32 RGB frames; means and paired 95% intervals over 16 (prompt, seed) pairs):
- edge steepness: per frame, the 99th percentile of the luminance's steps between neighbouring pixels over the
  frame's luminance range (2nd to 98th percentile), mean over frames: lower is softer, the style. The drawn renders
  0.21 (0.29 through the world's VAE), the same scenes drawn sharp 0.66 (0.43). Noise and fragments raise it too.
- consistency: histogram intersection of consecutive frames' colour histograms, as `score.py`'s.
- tint change: mean |change| of the frame's mean colour between consecutive frames, grey levels (unbinned).
- speed: mean displacement of the object's centroid, px/frame; the object is every pixel farther than OBJECT from
  the frame's median colour (the background).
Environment: as `run.py` (SEEDS, TAG, CUSTOMIZE, GENERATE, FROM, GUIDANCE), and SCENES=eval: customize's prompts
are the evaluation prompts' own scenes (motion words dropped) instead of four others.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

sys.path.insert(0, str(Path(__file__).parent))
from reference import print_agreements, video_seed_images  # noqa: E402
from run import SIZE, cli, compare, plan, repeated, sampling  # noqa: E402
from score import centroid_speed, histogram_consistency, load  # noqa: E402

from stillmoving.world.weights import shipped_model  # noqa: E402

WEIGHTS = {"mild": "1", "heavy": "2"}  # the LoRA's weight when fused into the T2I
IDENTIFIER = "in soft style"
BLUR = 8  # px at 128 (2 px at 32): the Gaussian blur of the soft style
LORA = "pytorch_lora_weights.safetensors"  # what `t2i lora` writes
COLOURS = {"red": (225, 50, 40), "orange": (240, 140, 30), "yellow": (240, 220, 60), "green": (60, 185, 70)}
BACKGROUNDS = {"black": ((0, 0, 0), (0, 0, 0)), "blue": ((25, 35, 110),) * 2, "dusk": ((40, 20, 70), (110, 50, 50))}
SHAPES = ("circle", "square", "triangle", "diamond")
PROMPTS = [
    "a red circle moving left quickly on a blue background in soft style",
    "a yellow square moving up slowly on a dusk background in soft style",
    "a green triangle moving right slowly on a blue background in soft style",
    "a orange diamond moving down quickly on a dusk background in soft style",
]
LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R 601
OBJECT = 40.0  # RGB distance from the frame's median colour beyond which a pixel is the object
METRICS = ("edge steepness", "consistency", "tint change", "speed")


def outline(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    corners = {"square": [(-1, -1), (1, -1), (1, 1), (-1, 1)], "diamond": [(0, -1), (1, 0), (0, 1), (-1, 0)]}
    corners["triangle"] = [(0, -1), (1, 0.8), (-1, 0.8)]
    return [(cx + r * x, cy + r * y) for x, y in corners[shape]]


def draw_scenes(folder: Path, count: int = 24, style: bool = True) -> Path:
    """Bright shapes at random places and sizes on the three backgrounds, drawn at 4x and downsampled, in soft
    style (or sharp: `style=False`, the same scenes), captioned with what they show and the style's name."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2027)
    lines = []
    for i in range(count):
        colour, shape, background = list(COLOURS)[i % 4], SHAPES[(i // 4) % 4], list(BACKGROUNDS)[i % 3]
        top, bottom = BACKGROUNDS[background]
        rows = np.linspace(0, 1, 128)[:, None, None]
        pixels = (np.array(top) * (1 - rows) + np.array(bottom) * rows) * np.ones((1, 128, 1))
        image = Image.fromarray(pixels.round().astype(np.uint8))
        draw = ImageDraw.Draw(image)
        r = float(rng.uniform(17, 22))  # 9-11 px across at 32 px, the world's object sizes
        cx, cy = rng.uniform(8 + r, 120 - r, size=2)
        if shape == "circle":
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=COLOURS[colour])
        else:
            draw.polygon(outline(shape, cx, cy, r), fill=COLOURS[colour])
        image = image.filter(ImageFilter.GaussianBlur(BLUR)) if style else image
        image.resize((32, 32), Image.LANCZOS).save(folder / f"scene_{i:02d}.png")
        text = f"a {colour} {shape} on a {background} background" + (f" {IDENTIFIER}" if style else "")
        lines.append(json.dumps({"file_name": f"scene_{i:02d}.png", "text": text}))
    (folder / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def steepness(frame: np.ndarray) -> float:
    """The 99th percentile of the luminance's steps between neighbouring pixels over its 2-98% range."""
    y = frame.astype(np.float64) @ LUMA
    steps = np.concatenate([np.abs(np.diff(y, axis=0)).ravel(), np.abs(np.diff(y, axis=1)).ravel()])
    low, high = np.percentile(y, [2, 98])
    return float(np.percentile(steps, 99) / max(high - low, 1.0))


def video_scores(frames: np.ndarray) -> dict[str, float]:
    means = frames.reshape(len(frames), -1, 3).astype(np.float64).mean(axis=1)
    median = np.median(frames.reshape(len(frames), -1, 3), axis=1)[:, None, None]
    obj = np.linalg.norm(frames.astype(np.float64) - median, axis=-1) > OBJECT
    return {
        "edge steepness": float(np.mean([steepness(f) for f in frames])),
        "consistency": histogram_consistency(frames),
        "tint change": float(np.abs(np.diff(means, axis=0)).mean()),
        "speed": centroid_speed(obj),
    }


def score_folder(folder: Path) -> list[dict[str, float]]:
    """Scores of every GIF in `folder`, in name order (the pairing order)."""
    return [video_scores(load(p)) for p in sorted(Path(folder).glob("*.gif"))]


def style_lora(root: Path, images: Path) -> Path:
    """Train the style LoRA the way a user does, once; its weights file."""
    t2i = root / "t2i"
    if not (t2i / LORA).exists():
        took = cli(
            root / "t2i.log", "t2i", "lora", "--model", str(shipped_model()), "-o", str(t2i), "--images", str(images),
            "--rank", "16", "--steps", "400", "--lr", "1e-3", "--batch-size", "4", *SIZE,
        )  # fmt: skip
        print(f"# style LoRA: {took:.0f} s", flush=True)
    return t2i / LORA


def reference(out: str) -> None:
    """The T2I's own images of the evaluation prompts (seeds as the videos'), with the LoRA at weight 0 (the base),
    1 and 2, at the videos' sampling (GUIDANCE=G: 15 steps, guidance G; unset: 25 steps, 7.5): their edge
    steepness, what the videos aim at; then, for every run of that drift, how close each video's colours come to M1's
    images of its prompt (`reference.print_agreement`, naive injection and Still-Moving)."""
    import torch

    from stillmoving.loading import load_customized, load_t2v, t2i_pipeline

    torch.set_num_threads(2)
    root = Path(out)
    steps, guidance, evaluation = sampling()
    t2v = load_t2v(str(shipped_model()))
    for drift, weight in {"base": "0", **WEIGHTS}.items():
        m1 = load_customized(t2v, None, [(str(root / "t2i" / LORA), float(weight))])  # at weight 0: the base
        t2i = t2i_pipeline(t2v, m1.unet, m1.text_encoder)
        t2i.set_progress_bar_config(disable=True)
        steep = np.mean([steepness(f) for f in video_seed_images(t2i, PROMPTS, steps, guidance)])
        print(f"LoRA weight {weight}, {steps} steps, guidance {guidance:g}: edge steepness {steep:.3f}", flush=True)
        print_agreements(drift, sorted(root.glob(f"{drift}/*/*/{evaluation}")), t2i, PROMPTS, steps, guidance)


def main(out: str, *which: str) -> None:
    if out == "reference":
        return reference(*which)
    root = Path(out)
    drifts, models, prompts = plan(which, WEIGHTS, PROMPTS)
    images = root / "images"
    if not images.exists():
        draw_scenes(images)
    lora = style_lora(root, images)
    scenes = [f"a {c} {s} on a {b} background {IDENTIFIER}" for c, s, b in zip(COLOURS, SHAPES, ("blue", "dusk") * 2)]
    if os.environ.get("SCENES") == "eval":  # M1's images of the evaluation prompts' own scenes, motion words dropped
        scenes = [re.sub(r" moving \w+ \w+", "", p) for p in PROMPTS]
    for drift in drifts:
        customized = ["--lora", f"{lora}:{WEIGHTS[drift]}", "--identifier", IDENTIFIER]
        customized += repeated("--prompt", scenes)
        for model, paths in models.items():
            compare(root, drift, model, paths, customized, prompts, score_folder, METRICS)


if __name__ == "__main__":
    main(*sys.argv[1:])
