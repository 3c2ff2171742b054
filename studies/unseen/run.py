"""A subject nobody here has seen, through the user's commands, scored by measures the project does not contain.

Issue 13's check, rehearsed: someone else draws a subject as a folder of images (here PIL, not the world's
renderer: a violet hexagon, "a sks gem", a shape and a colour the world never uses), makes a
customized T2I with `stillmoving t2i dreambooth` at a mild and a heavy learning rate, runs `stillmoving customize`
with its defaults (only the world's size, frame count and sampling set) on each shipped video model, and
`stillmoving generate` makes the same prompts and seeds with the adapters (Still-Moving) and with
`--spatial-scale 0` (naive injection, exactly). The videos are scored with `score.py`'s colour measures, which
know nothing of the world's oracle.

    .venv/bin/python studies/unseen/run.py runs/unseen [mild heavy] [animatediff joint NAME=MODEL,MOTION_ADAPTER]

Writes <out>/<drift>/<model>/{naive,still_moving}/*.gif, <out>/<drift>/t2i (the DreamBooth), and prints one JSON
line per (drift, model) with the means and the paired 95% intervals of Still-Moving minus naive injection.
Environment: SEEDS (videos per prompt, default 4), CUSTOMIZE='--steps 500 ...' (extra customize options),
GUIDANCE=4 (generate at 15 steps and this guidance, the world's demo setting, into eval_g4/; default: 25 steps and
guidance 7.5, generate's defaults before session 25, into eval/, given explicitly since customize records its 15
steps and guidance 4),
DEFAULTS=1 (the user's path exactly, into eval_defaults/: customize and generate are given no size, frame count,
steps or guidance, so each takes the video model's own from its generation_defaults.json; TAG names the run),
GENERATE='--spatial-min-timestep 500' (extra generate options, for both variants: with FROM=TAG, that run's
adapters are copied into TAG's folder instead of customize being run),
T2I_SEED (the DreamBooths' seed, default 0; give each seed its own output folder),
TAG (a name for those options' runs, default "default"; other tags without GENERATE reuse the default run's
naive-injection videos, which the adapters at scale 0 do not change).
"""

from __future__ import annotations

import functools
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).parent))
from score import BODY, METRICS, score_folder, summarize  # noqa: E402

from stillmoving.validation import native_sampling  # noqa: E402
from stillmoving.world.weights import shipped_model, shipped_motion_adapter  # noqa: E402

DRIFTS = {"mild": "5e-5", "heavy": "5e-4"}  # DreamBooth learning rates, 1500 steps each (issue 13's table)
BACKGROUNDS = {"black": (0, 0, 0), "gray": (110, 110, 110), "blue": (25, 35, 110)}
SIZE = ["--height", "32", "--width", "32"]
PROMPTS = [
    "a sks gem moving left quickly on a gray background",
    "a sks gem moving up slowly on a black background",
    "a sks gem moving right slowly on a blue background",
    "a sks gem moving down quickly on a gray background",
]


def draw_gems(folder: Path, count: int = 24) -> Path:
    """Violet hexagons at random places and sizes on three plain backgrounds, captioned."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2026)
    lines = []
    for i in range(count):
        name = list(BACKGROUNDS)[i % len(BACKGROUNDS)]
        image = Image.new("RGB", (128, 128), BACKGROUNDS[name])  # drawn at 4x, then downsampled: soft edges
        draw = ImageDraw.Draw(image)
        r = float(rng.uniform(20, 25))  # radius: the world's object sizes, 10-13 px across at 32 px
        cx, cy = rng.uniform(8 + r, 120 - r, size=2)
        turn = rng.uniform(0, math.pi / 3)
        angles = turn + np.arange(6) * math.pi / 3
        corners = [(x, y) for x, y in zip(cx + np.cos(angles) * r, cy + np.sin(angles) * r)]
        draw.polygon(corners, fill=BODY)
        image.resize((32, 32), Image.LANCZOS).save(folder / f"gem_{i:02d}.png")
        lines.append(json.dumps({"file_name": f"gem_{i:02d}.png", "text": f"a sks gem on a {name} background"}))
    (folder / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def cli(log: Path, *args: str) -> float:
    """Run `stillmoving ARGS` offline, its output into `log`; seconds taken. A failure stops the study."""
    start = time.time()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with log.open("w") as out:
        code = subprocess.call([sys.executable, "-m", "stillmoving", *args], stdout=out, stderr=out, env=env)
    if code:
        sys.exit(f"stillmoving {' '.join(args[:2])} failed ({code}); see {log}")
    return time.time() - start


def customized_t2i(root: Path, drift: str, images: Path) -> list[str]:
    """Make the customized T2I the way a user does, once per drift; the customize options that name it."""
    t2i = root / drift / "t2i"
    if not (t2i / "unet").exists():
        took = cli(
            root / f"{drift}_t2i.log", "t2i", "dreambooth", "--model", str(shipped_model()), "-o", str(t2i),
            "--images", str(images), "--prompt", "a sks gem", "--use-captions", "--train-text-encoder",
            "--steps", "1500", "--lr", DRIFTS[drift], "--batch-size", "4", *SIZE,
            "--seed", os.environ.get("T2I_SEED", "0"),
        )  # fmt: skip
        print(f"# {drift} DreamBooth: {took:.0f} s", flush=True)
    prompts = repeated("--prompt", [f"a sks gem on a {b} background" for b in BACKGROUNDS])
    return ["--customized", str(t2i), "--identifier", "sks", *prompts]


def repeated(option: str, values: list[str]) -> list[str]:
    """A repeatable command-line option given once per value: ["--prompt", "a", "--prompt", "b"]."""
    return [a for v in values for a in (option, v)]


def sampling() -> tuple[int, float, str]:
    """Steps, guidance and video folder of the environment's GUIDANCE=G (15 steps, guidance G, eval_gG/), DEFAULTS=1
    (none given: the video model's own, the shipped folders' 15 and 4, eval_defaults/) or, neither set, 25 steps and
    guidance 7.5 (eval/), given explicitly since customize records its 15 steps and guidance 4."""
    if os.environ.get("DEFAULTS"):
        return (*native_sampling(shipped_model()), "eval_defaults")
    given = os.environ.get("GUIDANCE")
    return (15, float(given), f"eval_g{given}") if given else (25, 7.5, "eval")


def video_models(which: tuple[str, ...]) -> dict[str, tuple[str, str]]:
    """The video models named on the command line, {name: (model folder, motion adapter folder)}: the shipped
    "animatediff" and "joint", or another as NAME=MODEL_FOLDER,MOTION_ADAPTER_FOLDER; both shipped by default."""
    named = {w: (str(shipped_model(w)), str(shipped_motion_adapter(w))) for w in which if w in ("animatediff", "joint")}
    named |= {w.split("=")[0]: tuple(w.split("=", 1)[1].split(",")) for w in which if "=" in w}
    return named or video_models(("animatediff", "joint"))


def compare(
    root: Path,
    drift: str,
    model: str,
    paths: tuple[str, str],
    customized: list[str],
    prompts: list[str],
    score,
    metrics: tuple[str, ...],
) -> dict:
    """`customize` (with the environment's CUSTOMIZE options) for one drift on one video model (its `paths`: the
    model and its motion adapter), `generate` the prompts with the adapters, at `--spatial-scale 0` and (once per
    model) with the video model alone, score each folder's videos (`score(folder)`: a list of {metric: value}, in
    the prompts' order) and append the means and Still-Moving minus naive injection, paired, to
    <root>/results.jsonl. The environment's TAG, FROM, GENERATE and GUIDANCE: the module's docstring."""
    tag = os.environ.get("TAG", "default")
    extra = shlex.split(os.environ.get("CUSTOMIZE", ""))
    generating = shlex.split(os.environ.get("GENERATE", ""))
    steps, guidance, evaluation = sampling()
    defaults = bool(os.environ.get("DEFAULTS"))  # the user's path: no size, frames, steps or guidance given
    shape = [] if defaults else [*SIZE, "--num-frames", "8", "--sample-steps", "15", "--guidance-scale", "4"]
    setting = [] if defaults else ["--num-frames", "8", "--steps", str(steps), "--guidance-scale", f"{guidance:g}"]

    def generate(log: str, folder: Path, *source: str) -> None:
        folder.mkdir(parents=True)
        cli(
            root / log, "generate", *source, *repeated("--prompt", prompts), "-o", str(folder / "v.gif"),
            "--seed", "0", "--device", "cpu", *setting,
        )  # fmt: skip

    run = root / drift / model / tag
    source = root / drift / model / os.environ.get("FROM", "")
    if os.environ.get("FROM") and not run.exists():  # the same adapters, generated otherwise
        run.mkdir(parents=True)
        for name in ("customization.json", "spatial_adapters.safetensors"):
            shutil.copyfile(source / name, run / name)
    if not (run / "spatial_adapters.safetensors").exists():
        took = cli(
            root / f"{drift}_{model}_{tag}_customize.log", "customize", "--model", paths[0], "-o", str(run),
            "--motion-adapter", paths[1], *customized, *shape, "--overwrite", *extra,
        )  # fmt: skip
        print(f"# {drift} {model} {tag} customize: {took:.0f} s", flush=True)
    for variant, scale in (("naive", "0"), ("still_moving", "1")):
        folder = run / evaluation / variant
        shared = root / drift / model / "default" / evaluation / "naive"  # the adapters at 0: the same videos
        reusable = tag != "default" and not generating  # generate options change naive injection's videos too
        if variant == "naive" and reusable and shared.exists() and not folder.exists():
            folder.parent.mkdir(parents=True, exist_ok=True)
            folder.symlink_to(shared.resolve())
        if not folder.exists():
            source = ["--customization", str(run), "--spatial-scale", scale, *generating]
            generate(f"{drift}_{model}_{tag}_{variant}.log", folder, *source)
    base = root / f"base_{model}" / evaluation  # the video model alone, once per model and setting
    if not base.exists():
        generate(f"base_{model}_{evaluation}.log", base, "--model", paths[0])
    record = {"drift": drift, "model": model, "tag": tag, "guidance": f"{guidance:g}", "defaults": defaults}
    naive, still = score(run / evaluation / "naive"), score(run / evaluation / "still_moving")
    record.update({"pairs": len(naive), **summarize(naive, still, metrics)})
    record["base T2V"] = {m: round(float(np.nanmean([v[m] for v in score(base)])), 3) for m in metrics}
    print(json.dumps(record), flush=True)
    with (root / "results.jsonl").open("a") as f:
        f.write(json.dumps(record) + "\n")
    return record


def plan(which: tuple[str, ...], drifts: dict, prompts: list[str]) -> tuple[list[str], dict, list[str]]:
    """The drifts and video models named on the command line (all by default), and every prompt repeated SEEDS
    times (`generate --seed` counts up: prompt i gets seeds i*SEEDS ... i*SEEDS + SEEDS-1)."""
    seeds = int(os.environ.get("SEEDS", "4"))
    named = [w for w in which if w in drifts] or list(drifts)
    return named, video_models(which), [p for p in prompts for _ in range(seeds)]


def prepared(out: str, which: tuple[str, ...]):
    """The output folder, the drifts, video models and prompts named (`plan`), the gem's drawings there (drawn once)
    and the scorer against them."""
    root = Path(out)
    drifts, models, prompts = plan(which, DRIFTS, PROMPTS)
    images = root / "images"
    if not images.exists():
        draw_gems(images)
    return root, drifts, models, prompts, images, functools.partial(score_folder, renders=images)


def main(out: str, *which: str) -> None:
    root, drifts, models, prompts, images, score = prepared(out, which)
    for drift in drifts:
        customized = customized_t2i(root, drift, images)
        for model, paths in models.items():
            compare(root, drift, model, paths, customized, prompts, score, METRICS)


if __name__ == "__main__":
    main(*sys.argv[1:])
