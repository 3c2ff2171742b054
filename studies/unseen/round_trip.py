"""What one round trip through the world's VAE does to the unseen subject's violet, and what the videos show of it
(session 19; docs/method.md, "How far the training seed moves a recipe, and what re-encoding's drift does").

For a `customize` run's images (its images/ folder: M1's images D(z) as `customize` sampled them), the share of violet
pixels and the mean colour of the pixels violet in D(z): as they are, after one round trip D(E(x)), and after the
compensated re-encoding (what `studies/smoothness/reencode.compensated` does to a latent whose image is x: E(x + (x -
D(E(x)))), decoded); then, for each video folder given, the share
of pixels within the score's radius of violet and within a wider one, and the mean colour of the latter.

python studies/unseen/round_trip.py RUN_DIR [VIDEO_FOLDER ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from score import BODY, RADIUS, load, mask  # noqa: E402

from stillmoving.data.frozen import encode_pixels, to_pixels  # noqa: E402
from stillmoving.data.sources import decode_latents  # noqa: E402
from stillmoving.loading import load_t2v  # noqa: E402
from stillmoving.world.stats import paired_bootstrap  # noqa: E402
from stillmoving.world.weights import shipped_model  # noqa: E402

WIDE = 130  # RGB distance of "near violet": the subject drawn, in whatever shade


def as_uint8(images: torch.Tensor) -> np.ndarray:
    return (images.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)


def images(run: Path) -> None:
    vae = load_t2v(str(shipped_model())).vae

    def round_trip(x: torch.Tensor) -> torch.Tensor:  # [-1, 1] pixels -> D(E(x)), [-1, 1]
        return decode_latents(vae, encode_pixels(vae, x)) * 2 - 1

    drawn = np.stack([load(p)[0] for p in sorted((run / "images").glob("*.png"))])
    x = torch.cat([to_pixels(image, *image.shape[:2]) for image in drawn])
    with torch.no_grad():
        once = round_trip(x)
        trips = {"one round trip D(E(x))": once, "compensated": round_trip((2 * x - once).clamp(-1, 1))}
    violet = mask(drawn)
    share = violet.mean(axis=(1, 2))
    print(f"{run}: {len(drawn)} images, violet share {share.mean():.4f}, colour {drawn[violet].mean(0).round(1)}")
    for name, out in trips.items():
        back = as_uint8((out + 1) / 2)
        diff = paired_bootstrap(share, mask(back).mean(axis=(1, 2)))
        error = np.abs(back.astype(float) - drawn).mean()
        print(
            f"  {name}: violet share {diff.estimate:+.4f} [{diff.low:+.4f}, {diff.high:+.4f}], the same pixels' "
            f"colour {back[violet].mean(0).round(1)}, mean |error| {error:.2f} grey levels"
        )


def videos(folder: Path) -> None:
    frames = np.concatenate([load(p) for p in sorted(folder.glob("*.gif"))]).reshape(-1, 3).astype(float)
    distance = np.linalg.norm(frames - np.array(BODY), axis=1)
    near = frames[distance < WIDE]
    print(
        f"{folder}: within {RADIUS:g} of violet {np.mean(distance < RADIUS):.4f}, within {WIDE} "
        f"{np.mean(distance < WIDE):.4f}, their colour {near.mean(0).round(1)}"
    )


if __name__ == "__main__":
    torch.set_num_threads(2)
    images(Path(sys.argv[1]))
    for folder in sys.argv[2:]:
        videos(Path(folder))
