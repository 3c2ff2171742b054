"""What the world's VAE can draw: reconstruction PSNR and how much of a look survives encode-decode, for the world's
own frames and looks and for looks drawn outside it (the model card's "What the world's VAE can draw").

    .venv/bin/python studies/unseen/codec.py
"""

from __future__ import annotations

import math
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).parent))
from run import BACKGROUNDS, draw_gems  # noqa: E402
from score import BODY, load, mask  # noqa: E402
from style import LUMA, draw_scenes, steepness  # noqa: E402

from stillmoving.world.synthetic import COLORS, generic_images, make_image_dataset  # noqa: E402
from stillmoving.world.weights import shipped_model  # noqa: E402

COUNT = 24
WHITE = 190  # a rim pixel: every channel at least this
GREY = 20  # a grey pixel: its channels within this of each other
DARK = 25  # a shadow pixel: every channel below this
PASTEL = 0.55  # the pastel style washes every colour this far towards white
PALE = 125  # a pixel is pale (in that style) when its darkest channel is at least this; the world's colours are not


def drawn(paint, seed: int = 0) -> np.ndarray:
    """(COUNT, 32, 32, 3) uint8: `paint(draw, cx, cy, r, index)` on the world's plain backgrounds at 4x, downsampled."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(COUNT):
        image = Image.new("RGB", (128, 128), list(BACKGROUNDS.values())[i % 3])
        r = float(rng.uniform(20, 24))
        cx, cy = rng.uniform(16 + r, 112 - r, size=2)
        paint(ImageDraw.Draw(image), cx, cy, r, i)
        out.append(np.asarray(image.resize((32, 32), Image.LANCZOS)))
    return np.stack(out)


def hexagon(cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    return [(cx + r * math.cos(k * math.pi / 3), cy + r * math.sin(k * math.pi / 3)) for k in range(6)]


def ring(draw, cx, cy, r, i):  # lime with a magenta core half its diameter
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(170, 255, 0))
    draw.ellipse([cx - r / 2, cy - r / 2, cx + r / 2, cy + r / 2], fill=(210, 0, 140))


def two_tone(draw, cx, cy, r, i):  # the study's violet hexagon with an orange core about 7 px across
    draw.polygon(hexagon(cx, cy, r), fill=BODY)
    draw.polygon(hexagon(cx, cy, 0.6 * r), fill=(255, 150, 0))


def rim(draw, cx, cy, r, i):  # a world-coloured disc inside a white rim about 2 px wide
    draw.ellipse([cx - r - 9, cy - r - 9, cx + r + 9, cy + r + 9], fill=(245, 245, 245))
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=list(COLORS.values())[i % 6])


def shadow(draw, cx, cy, r, i):  # a world-coloured disc over a hard black shadow 3.5 px right and down
    draw.ellipse([cx - r + 14, cy - r + 14, cx + r + 14, cy + r + 14], fill=(0, 0, 0))
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=list(COLORS.values())[i % 6])


def world_frames(seed: int, **look) -> np.ndarray:
    return np.stack([s.pixels for s in make_image_dataset(COUNT, seed, 32, **look)])


def main() -> None:
    torch.set_num_threads(2)
    vae = AutoencoderKL.from_pretrained(str(shipped_model()), subfolder="vae").eval()
    with tempfile.TemporaryDirectory() as tmp:
        gems, soft, sharp = (
            np.stack([load(p)[0] for p in sorted(folder.glob("*.png"))])
            for folder in (
                draw_gems(Path(tmp) / "g"),
                draw_scenes(Path(tmp) / "s"),
                draw_scenes(Path(tmp) / "t", style=False),
            )
        )
    world = world_frames(3)
    pastel = (world.astype(np.float32) * (1 - PASTEL) + 255 * PASTEL).round().astype(np.uint8)
    mono = np.repeat((world @ LUMA)[..., None], 3, -1).round().astype(np.uint8)
    warm = np.clip(world * np.array([1.15, 1.0, 0.55]), 0, 255).round().astype(np.uint8)
    violet = lambda x: mask(x).mean()
    lime = lambda x: (np.abs(x.astype(int) - (170, 255, 0)).sum(-1) < 120).mean()
    warmth = lambda x: ((x[..., 0].astype(int) - x[..., 2]) >= 25).mean()
    grey = lambda x: ((x.max(-1).astype(int) - x.min(-1)) < GREY).mean()
    dark = lambda x: (x[[i for i in range(COUNT) if i % 3]].max(-1) < DARK).mean()  # not on the black background
    steep = lambda x: np.mean([steepness(f) for f in x])
    looks = {  # name: (images, the share of the look's pixels, what that share counts)
        "world frames": (world_frames(0), None, ""),
        "star renders": (world_frames(0, subject="star"), None, ""),
        "crayon renders": (world_frames(0, style="crayon"), None, ""),
        "random looks (the decoder's kind)": (generic_images(128, 5, 32), None, ""),
        "violet hexagon (studies/unseen)": (gems, violet, "violet pixels"),
        "violet hexagon, orange core": (drawn(two_tone), violet, "violet pixels"),
        "lime ring, magenta core": (drawn(ring), lime, "lime pixels"),
        "world scenes washed to pastel": (pastel, lambda x: (x.min(-1) >= PALE).mean(), "pale pixels"),
        "world scenes, warm colour grade": (warm, warmth, "warm pixels"),
        "world discs in a white rim": (drawn(rim), lambda x: (x.min(-1) >= WHITE).mean(), "white pixels"),
        "world scenes in grey (a mono style)": (mono, grey, "grey pixels"),
        "world discs over a hard black shadow": (drawn(shadow), dark, "shadow pixels"),
        "drawn shapes, sharp (style.py, style=False)": (sharp, steep, "edge steepness"),
        "drawn shapes blurred 2 px (style.py's soft style)": (soft, steep, "edge steepness"),
    }  # fmt: skip
    print("| images | PSNR, dB: mean (lowest) | the look's pixels: drawn -> through the VAE |")
    print("| --- | --- | --- |")
    for name, (images, share, what) in looks.items():
        pixels = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
        with torch.no_grad():
            back = vae.decode(vae.encode(pixels).latent_dist.mean).sample.clamp(-1, 1)
        psnr = 10 * torch.log10(4 / ((back - pixels) ** 2).mean(dim=(1, 2, 3)))
        back = ((back + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
        kept = f"{what} {share(images):.3f} -> {share(back):.3f}" if share else ""
        print(f"| {name} | {psnr.mean():.1f} ({psnr.min():.1f}) | {kept} |", flush=True)


if __name__ == "__main__":
    main()
