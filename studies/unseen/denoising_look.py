"""The customized T2I as the judge of its own look (session 30): a reading of `customize`'s validation videos that
needs no oracle and no colour histogram.

Session 28 found the check's colour readings ordering every block's and the down and mid blocks' adapters against
the world's oracle no better than chance on held-out runs (a style of outlines and glow lost its look unseen). This
reads each frame with the two T2Is a user already has: the customized T2I M1 and the video model's own T2I (what
naive injection replaces). Noised at a few timesteps with fixed noise (the same for every set, so the sets are
paired), each frame is denoised by both; the reading is how much better M1 predicts the noise than V's T2I does,

    look(frame) = mean over t, noise of  |eps_V(x_t, t, text) - eps|^2 - |eps_M1(x_t, t, text) - eps|^2,

with the frame's prompt through each model's own text encoder ("prompt"), and with the empty prompt ("empty").
Positive: the frame is more M1's than V's. A diffusion classifier between two models (Li et al., "Your Diffusion
Model is Secretly a Zero-Shot Classifier", 2023), here used as a difference of two denoising errors.

For each run folder (a `customize` output whose `validation/` holds the three sets' GIFs) it prints one JSON line:
per set the reading's means, the world's oracle fidelity on the same videos (target from the customization) and
the check's colour readings from `validation.json`.

    .venv/bin/python studies/unseen/denoising_look.py read OUT.jsonl RUN [RUN ...]   # ~25 s a run, one thread
    .venv/bin/python studies/unseen/denoising_look.py summary OUT.jsonl [...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from stillmoving.adapters.spatial import ALL_BLOCKS
from stillmoving.backends import backend_of
from stillmoving.data.video_io import read_video
from stillmoving.loading import load_customized, load_t2v, t2i_pipeline
from stillmoving.training import naive_check
from stillmoving.video_metrics import colour_agreement, subject_agreement
from stillmoving.world.metrics import video_metrics
from stillmoving.world.weights import shipped_model

SETS = {"naive injection": "naive_injection", "Still-Moving": "still_moving", "down,mid": "still_moving_down_mid"}
TIMESTEPS = (100, 300, 500, 700, 900)
WRITTEN_FIRST = TIMESTEPS[:4]  # the reading as predicted before the runs; 900 was added after, to read each timestep
NOISES = 2  # draws per timestep; the same for every set and frame position
PAIRS = (("Still-Moving", "naive injection"), ("down,mid", "Still-Moving"), ("down,mid", "naive injection"))
ORACLE_GAP = 0.02  # pairs of sets the oracle tells apart by less are not counted


def shipped(path: str) -> str:
    """A run's model path, mapped to this checkout's shipped weights (the runs' snapshots are gone)."""
    name = Path(path).name
    return str(shipped_model("joint") if name == "t2v_joint" else shipped_model()) if name.startswith("t2v") else path


def target_of(record: dict) -> str | None:
    """The world's look the oracle scores: star for a DreamBooth of the star, crayon or neon for their LoRAs."""
    where = " ".join([record.get("customized") or ""] + [lora for lora, _ in record["loras"]])
    if "neon" in where:
        return "neon"
    if "crayon" in where:
        return "crayon"
    return None if "unseen" in where or "gem" in where else "star"


@torch.no_grad()
def text(pipe, prompt: str) -> torch.Tensor:
    return pipe.encode_prompt(prompt, "cpu", 1, False)[0]


@torch.no_grad()
def readings(v_t2i, m1_t2i, video: np.ndarray, prompt: str) -> dict[str, float]:
    """The reading of one video (uint8 (F, H, W, 3)), with its prompt and with the empty prompt; frame means."""
    vae, scheduler = v_t2i.vae, v_t2i.scheduler
    pixels = torch.from_numpy(video).permute(0, 3, 1, 2).float() / 127.5 - 1
    latents = vae.encode(pixels).latent_dist.mean * vae.config.scaling_factor
    frames = latents.shape[0]
    out = {}
    for name, words in (("prompt", prompt), ("empty", "")):
        v_text, m1_text = text(v_t2i, words).expand(frames, -1, -1), text(m1_t2i, words).expand(frames, -1, -1)
        for t in TIMESTEPS:
            at_t = []
            for k in range(NOISES):
                noise = torch.randn(latents.shape[1:], generator=torch.Generator().manual_seed(1000 * t + k))
                noise = noise.expand_as(latents)
                steps = torch.full((frames,), t, dtype=torch.long)
                noisy = scheduler.add_noise(latents, noise, steps)
                err_v = (v_t2i.unet(noisy, steps, v_text).sample - noise).pow(2).mean(dim=(1, 2, 3))
                err_m1 = (m1_t2i.unet(noisy, steps, m1_text).sample - noise).pow(2).mean(dim=(1, 2, 3))
                at_t.append(err_v - err_m1)
            out[f"{name}@{t}"] = float(torch.stack(at_t).mean())
        out[name] = float(np.mean([out[f"{name}@{t}"] for t in WRITTEN_FIRST]))
    return out


def run(folder: Path) -> dict:
    """One run's three sets: per video the reading at each timestep and averaged ("prompt", "empty": the first four
    timesteps, the reading as written before the runs), the check's two colour readings against the customized T2I's
    image of the prompt and seed ("whole", "subject"), and the oracle's fidelity on the same video."""
    record = json.loads((folder / "customization.json").read_text())
    prompts = json.loads((folder / naive_check.REPORT_FILE).read_text())["prompts"]
    pipe = load_t2v(shipped(record["model"]))
    m1 = load_customized(pipe, record.get("customized"), [tuple(x) for x in record["loras"]])
    v_t2i = t2i_pipeline(pipe, backend_of(pipe).t2i_unet(pipe.unet))
    m1_t2i = t2i_pipeline(pipe, m1.unet, m1.text_encoder)
    target = target_of(record)
    validation = folder / "validation"
    images = [
        np.asarray(Image.open(validation / f"customized_t2i_{i:03d}.png").convert("RGB")) for i in range(len(prompts))
    ]
    result = {"run": str(folder), "target": target, "recorded": record.get("spatial_blocks", ALL_BLOCKS)}
    for name, stem in SETS.items():
        videos = [read_video(validation / f"{stem}_{i:03d}.gif") for i in range(len(prompts))]
        read = [readings(v_t2i, m1_t2i, v, p) for v, p in zip(videos, prompts)]
        result[name] = {key: [r[key] for r in read] for key in read[0]}
        for key, agreement in (("whole", colour_agreement), ("subject", subject_agreement)):
            result[name][key] = naive_check.look_kept({name: videos}, images, agreement)["per_video"][name]
        if target:
            result[name]["oracle"] = [
                video_metrics(v, prompt=p, target=target)["fidelity"] for v, p in zip(videos, prompts)
            ]
    return result


def read(out: str, *runs: str) -> None:
    torch.set_num_threads(1)
    with open(out, "a") as sink:
        for folder in map(Path, runs):
            if (folder / "validation" / "still_moving_down_mid_000.gif").exists():
                sink.write(json.dumps(run(folder)) + "\n")
                sink.flush()
                print(folder, flush=True)


def draws(row: dict) -> bool:
    """Whether the customized T2I draws its look: the oracle's mean fidelity of its validation images >= 0.3 (a
    heavily drifted DreamBooth of the star often draws a blob of its colours instead, docs/method.md)."""
    folder = Path(row["run"])
    prompts = json.loads((folder / naive_check.REPORT_FILE).read_text())["prompts"]
    paths = [folder / "validation" / f"customized_t2i_{i:03d}.png" for i in range(len(prompts))]
    images = [np.asarray(Image.open(path).convert("RGB")) for path in paths]
    fidelity = [
        video_metrics(np.stack([im, im]), prompt=p, target=row["target"])["fidelity"] for im, p in zip(images, prompts)
    ]
    return float(np.mean(fidelity)) >= 0.3


def summary(*files: str) -> None:
    """Per reading, how often the sign of a set-minus-set difference of its means is the oracle's, over the pairs
    of sets whose oracle difference is at least ORACLE_GAP, by target; and per timestep."""
    rows = [json.loads(line) for f in files for line in open(f)]
    rows = [r for r in rows if r["target"]]  # the unseen subject has no oracle
    for r in rows:  # the written-first reading from each timestep's (files written before it was its own key)
        for name, way in ((name, way) for name in SETS for way in ("prompt", "empty")):
            r[name][way] = list(np.mean([r[name][f"{way}@{t}"] for t in WRITTEN_FIRST], axis=0))
    keys = ["prompt", "empty", "whole", "subject"] + [f"{w}@{t}" for w in ("prompt", "empty") for t in TIMESTEPS]
    agree: dict[str, dict[str, list[bool]]] = {key: {} for key in keys}
    for r in rows:
        for a, b in PAIRS:
            gap = np.mean(r[a]["oracle"]) - np.mean(r[b]["oracle"])
            if abs(gap) < ORACLE_GAP:
                continue
            group = r["target"] if r["target"] != "star" else f"star, M1 {'draws' if draws(r) else 'misses'} it"
            for key in keys:
                differs = np.mean(r[a][key]) - np.mean(r[b][key])
                agree[key].setdefault(group, []).append(bool(np.sign(differs) == np.sign(gap)))
    print(f"{len(rows)} runs; pairs of sets whose oracle fidelity differs by >= {ORACLE_GAP}")
    for key, by_target in agree.items():
        every = sum(by_target.values(), [])
        per = ", ".join(f"{t} {sum(v)}/{len(v)}" for t, v in sorted(by_target.items()))
        print(f"{key:11s} agrees with the oracle's sign on {sum(every)}/{len(every)} ({per}); {per_video(rows, key)}")


def per_video(rows: list[dict], key: str) -> str:
    """Spearman's correlation, over every video of both adapter sets, of the reading's and the oracle's difference
    from naive injection's video of the same prompt and seed."""
    ours, oracle = [], []
    for r in rows:
        for name in ("Still-Moving", "down,mid"):
            ours += list(np.subtract(r[name][key], r["naive injection"][key]))
            oracle += list(np.subtract(r[name]["oracle"], r["naive injection"]["oracle"]))
    ranks = [np.argsort(np.argsort(values)) for values in (ours, oracle)]
    return f"per video Spearman {np.corrcoef(*ranks)[0, 1]:+.2f}"


if __name__ == "__main__":
    {"read": read, "summary": summary}[sys.argv[1]](*sys.argv[2:])
