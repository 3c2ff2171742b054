"""95% bootstrap intervals for the demo's claims, paired by (prompt, seed).

The demo generates every variant with the same prompts and seeds, so two variants' per-video figures
come in pairs. Resampling pairs, not each side on its own, keeps what a prompt and a seed share
(an easy scene, a lucky noise draw) out of the interval of the difference, which is what lets a few
dozen videos show a real difference. Percentile intervals, numpy only (scipy is not a dependency).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LEVEL = 0.95  # two-sided coverage of every interval
RESAMPLES = 10_000  # enough for the 2.5 / 97.5 percentiles to settle to ~3 decimals


@dataclass(frozen=True)
class Interval:
    """A statistic over `n` finite pairs and its bootstrap interval [low, high]; NaN when n == 0."""

    estimate: float
    low: float
    high: float
    n: int

    @classmethod
    def empty(cls) -> Interval:
        return cls(float("nan"), float("nan"), float("nan"), 0)

    def as_dict(self) -> dict[str, float | int | None]:
        """JSON-ready: NaN becomes null (strict JSON has no NaN)."""
        clean = lambda x: float(x) if np.isfinite(x) else None
        return {"estimate": clean(self.estimate), "low": clean(self.low), "high": clean(self.high), "n": self.n}


def _resample_rows(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """(n_resamples, n) indices: each row draws n of the n pairs with replacement."""
    return np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))


def _percentiles(estimate: float, resampled: np.ndarray, n: int) -> Interval:
    tail = 100 * (1 - LEVEL) / 2
    low, high = np.percentile(resampled, [tail, 100 - tail])
    return Interval(float(estimate), float(low), float(high), n)


def bootstrap_mean(values, n_resamples: int = RESAMPLES, seed: int = 0) -> Interval:
    """Mean of the finite `values` and its percentile interval.

    The values are shifted by the first one before averaging and shifted back after: a constant
    sample then gives exactly its value (not a rounding of a sum of it), and the means lose no
    precision to a large common offset."""
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    if not x.size:
        return Interval.empty()
    centre = x[0]
    shifted = x - centre
    means = shifted[_resample_rows(x.size, n_resamples, seed)].mean(axis=1) + centre
    return _percentiles(shifted.mean() + centre, means, x.size)


def _finite_pairs(a, b) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired values need equal lengths, got {a.size} and {b.size}")
    keep = np.isfinite(a) & np.isfinite(b)
    return a[keep], b[keep]


def paired_bootstrap(a, b, n_resamples: int = RESAMPLES, seed: int = 0) -> Interval:
    """Mean of b - a over the pairs where both are finite, and its 95% interval (n: pairs kept)."""
    a, b = _finite_pairs(a, b)
    return bootstrap_mean(b - a, n_resamples, seed)


def paired_ratio_bootstrap(a, b, n_resamples: int = RESAMPLES, seed: int = 0) -> Interval:
    """mean(b) / mean(a) over the finite pairs, and its 95% interval: how much of a's figure b keeps.
    Resamples whose mean(a) is 0 give inf or NaN and widen (or void) the interval, as they should."""
    a, b = _finite_pairs(a, b)
    if not a.size:
        return Interval.empty()
    rows = _resample_rows(a.size, n_resamples, seed)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = b[rows].mean(axis=1) / a[rows].mean(axis=1)
        return _percentiles(b.mean() / a.mean(), ratios, a.size)
