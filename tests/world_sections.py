"""Hand-made demo sections for the claims and report tests: known figures, no model runs.

Figures are multiples of powers of two where a test compares an interval exactly.
"""

from __future__ import annotations

from itertools import product

import numpy as np

from stillmoving.world.claims import BASE, NAIVE, NO_MOTION, OURS, T2I, WITH_PRIOR
from stillmoving.world.variants import Variant, VariantKind

NAN = float("nan")
PROMPTS = (
    "a red circle moving left quickly on a gray background",
    "a blue square moving up slowly on a blue background",
    "a sks star moving right slowly on a dusk background",
    "a green cross moving down quickly on a black background",
)


def make_variant(kind: VariantKind, figures, frames: int = 4, prompts=PROMPTS, seeds=(0, 1)) -> Variant:
    """`figures(i)` gives the metrics of the i-th (prompt, seed) pair; videos are flat 8 px squares."""
    variant = Variant.of(kind, f"what {kind.label} is")
    for i, (prompt, seed) in enumerate(product(prompts, seeds)):
        variant.add(np.full((frames, 8, 8, 3), 30 * i, np.uint8), prompt, seed)
        variant.metrics.append(figures(i))
    return variant


def base_figures(i: int) -> dict[str, float]:
    return {
        "speed": 1 + i / 8,
        "direction_match": float(i % 2),
        "is_static": 0.0,
        "fidelity": 0.125,
        "consistency": 0.5 + i / 64,
        "artifact": 0.125,
        "displacement": 7 * (1 + i / 8),
    }


def section(
    consistency_gap: float = 0.125, kept_fidelity: float = 0.75, t2i_fidelity: float = 0.8, static: float = 1.0, **sizes
) -> list[Variant]:
    """Every demo variant; Still-Moving = naive injection + `consistency_gap` on consistency."""
    naive = lambda i: {**base_figures(i), "fidelity": 0.75}
    still = lambda i: {
        "speed": NAN,
        "direction_match": 0.0,
        "is_static": 0.0,
        "fidelity": t2i_fidelity,
        "consistency": NAN,
        "artifact": 0.0625,
    }
    ours = lambda i: {**naive(i), "fidelity": kept_fidelity, "consistency": naive(i)["consistency"] + consistency_gap}
    return [
        make_variant(BASE, base_figures, **sizes),
        make_variant(T2I, still, frames=1, **sizes),
        make_variant(NAIVE, naive, **sizes),
        make_variant(NO_MOTION, lambda i: {**naive(i), "is_static": static}, **sizes),
        make_variant(WITH_PRIOR, naive, **sizes),
        make_variant(OURS, ours, **sizes),
    ]


def sweep(displacements=(16.0, 8.0, 0.25), alphas=(-1.0, 0.0, 1.0), **sizes) -> tuple[list[float], list[Variant]]:
    """Motion-scale variants whose displacement is `displacements[k]` plus a per-video wobble."""
    variants = [
        make_variant(
            VariantKind(f"alpha_{a:g}", f"alpha {a:g}"),
            lambda i, d=d: {"displacement": d + (i % 3) / 4, "speed": d / 7},
            **sizes,
        )
        for a, d in zip(alphas, displacements)
    ]
    return list(alphas), variants
