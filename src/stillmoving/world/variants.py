"""A compared model variant: its videos, keyed by (prompt, seed), and their per-video metrics.

The key is what pairs two variants' videos for the bootstrap and what lines them up in the report's
grid, so it is kept with every video rather than inferred from the order. A variant is found by its
stable id ("still_moving"); its label ("Still-Moving") is only what a page shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

Key = tuple[str, int]  # (prompt, seed)


class VariantKind(NamedTuple):
    """What a compared variant is: `id` for lookups and records, `label` for the page."""

    id: str  # e.g. "naive"
    label: str  # e.g. "naive injection"


@dataclass
class Variant:
    """One row of the report's table and one column of its grid."""

    name: str  # the label a page shows, e.g. "naive injection"
    description: str  # one line: what the variant is
    videos: list[np.ndarray] = field(default_factory=list)  # uint8 (F, H, W, 3) each; F == 1 for a still image
    captions: list[str] = field(default_factory=list)  # the prompt of each video
    metrics: list[dict[str, float]] = field(default_factory=list)  # per video
    seeds: list[int] = field(default_factory=list)  # the generator seed of each video
    id: str = ""  # the stable id lookups use, e.g. "naive" (`VariantKind.id`)

    @classmethod
    def of(cls, kind: VariantKind, description: str) -> Variant:
        """An empty variant of this kind: its label as the name, its id for lookups."""
        return cls(kind.label, description, id=kind.id)

    def add(self, video: np.ndarray, prompt: str, seed: int) -> None:
        self.videos.append(video)
        self.captions.append(prompt)
        self.seeds.append(seed)

    def keys(self) -> list[Key]:
        if len(self.seeds) != len(self.captions):
            raise ValueError(f"{self.name}: {len(self.captions)} captions but {len(self.seeds)} seeds")
        return list(zip(self.captions, self.seeds))

    def is_still(self) -> bool:
        """True for the customized T2I's images: motion and consistency do not apply to them."""
        return bool(self.videos) and all(len(video) == 1 for video in self.videos)

    def values(self, metric: str) -> np.ndarray:
        return np.array([m.get(metric, np.nan) for m in self.metrics], dtype=np.float64)

    def record(self) -> dict:
        """Its entry in a report's metrics.json: description, summary, and every video's figures and key."""
        return {
            "description": self.description,
            "summary": summarize(self.metrics),
            "per_video": self.metrics,
            "captions": self.captions,
            "seeds": self.seeds,
        }


def summarize(metrics: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and spread (population std) of every metric over a variant's videos; NaNs ignored."""
    keys = sorted({k for m in metrics for k in m})
    summary = {}
    for key in keys:
        values = np.array([m.get(key, np.nan) for m in metrics], dtype=float)
        finite = values[np.isfinite(values)]
        summary[key] = {
            "mean": float(finite.mean()) if finite.size else float("nan"),
            "std": float(finite.std()) if finite.size else float("nan"),
            "n": int(finite.size),
        }
    return summary


def paired(a: Variant, b: Variant, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """`metric` of the videos both variants have for the same (prompt, seed), in a's order."""
    where = {key: i for i, key in enumerate(b.keys())}
    rows = [(i, where[key]) for i, key in enumerate(a.keys()) if key in where]
    first, second = a.values(metric), b.values(metric)
    return (
        np.array([first[i] for i, _ in rows], dtype=np.float64),
        np.array([second[j] for _, j in rows], dtype=np.float64),
    )
