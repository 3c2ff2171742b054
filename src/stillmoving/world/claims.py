"""The paper's claims judged on the demo's videos: holds, does not hold, or cannot be judged.

Every verdict follows from a 95% paired bootstrap interval (stats.py), so a reader can redo it:
  - "better than": the interval of the difference lies wholly on the good side of zero;
  - "no worse than": the issue's non-inferiority reading, it fails only when an interval lies wholly
    on the bad side;
  - "keeps at least" a share (90% of the fidelity or of the motion, half the videos static): holds
    when the whole interval is at or above the share, fails when the whole interval is below it, and
    cannot be judged when the interval contains it (more videos would decide);
  - fewer than MIN_PAIRS (prompt, seed) pairs cannot be judged at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from stillmoving.world.legend import ARTIFACT, CONSISTENCY, FIDELITY, Metric
from stillmoving.world.stats import LEVEL, Interval, bootstrap_mean, paired_bootstrap, paired_ratio_bootstrap
from stillmoving.world.variants import Variant, VariantKind, paired

HOLDS, FAILS, UNJUDGED = "holds", "does not hold", "cannot be judged"
MIN_PAIRS = 4  # a percentile interval from fewer pairs is too narrow to mean anything
KEEP = 0.9  # Still-Moving keeps at least this share of the customized T2I's fidelity and the base T2V's motion
STATIC_SHARE = 0.5  # "near-static": at least this share of the no-motion-adapter videos is static
FIDELITY_FLOOR = 0.1  # below this the customized T2I does not show its look, and a share of it is noise
# The compared variants: a stable id that lookups and records use, and the label the page shows.
BASE = VariantKind("base_t2v", "base T2V")
T2I = VariantKind("t2i", "customized T2I (image)")
NAIVE = VariantKind("naive", "naive injection")
DELTA = VariantKind("delta", "delta injection")  # V + (M1 - M): generate --base-t2i; where V's T2I part is not M
INTERPOLATION = VariantKind("interpolation", "weight interpolation")  # V's T2I part at V's T2I + w (M1 - V's T2I)
NO_MOTION = VariantKind("no_motion_adapter", "no motion adapter")
NO_PRIOR = VariantKind("no_prior", "no prior preservation")
WITH_PRIOR = VariantKind("with_prior", "with the paper's prior videos")
OURS = VariantKind("still_moving", "Still-Moving")
# Still-Moving as `generate --customization` applies it where customize's end-of-run check recorded blocks (the drift
# study's subject, world/drift.py): the same adapters on those blocks only
RECORDED = VariantKind("still_moving_recorded_blocks", "Still-Moving, customize's blocks")
COMPARED = (BASE, T2I, NAIVE, NO_MOTION, OURS)  # what a customization's claims compare
MOTION_SCALE = "motion scale"  # the scope of the sweep's claim
GAP = f"{OURS.label} minus {NAIVE.label}"


@dataclass
class Claim:
    """One claim of the paper, its verdict and the numbers behind it."""

    scope: str  # the customization ("star", "crayon") or MOTION_SCALE
    name: str  # a key for machines, e.g. "better_than_naive"
    statement: str  # the claim in words
    rule: str  # how the verdict follows from the numbers
    verdict: str  # HOLDS, FAILS or UNJUDGED
    measured: str  # one sentence: what was measured and what came out
    intervals: dict[str, Interval] = field(default_factory=dict)
    values: dict[str, float] = field(default_factory=dict)  # other figures the sentence quotes

    def line(self) -> str:
        return f"{self.scope}: {self.statement}: {self.verdict}. {self.measured}"

    def as_dict(self) -> dict:
        return {
            "statement": self.statement,
            "verdict": self.verdict,
            "measured": self.measured,
            "rule": self.rule,
            "intervals": {k: v.as_dict() for k, v in self.intervals.items()},
            "values": {k: (float(v) if np.isfinite(v) else None) for k, v in self.values.items()},
        }


def signed(x: float) -> str:
    """'+0.012'; a value that would round to +-0.000 keeps two significant digits ('-4.2e-04'), so an
    interval that excludes zero never reads as touching it."""
    x += 0.0  # -0.0 reads as +0.000
    return f"{x:+.1e}" if 0 < abs(x) < 5e-4 else f"{x:+.3f}"


def describe(interval: Interval, percent: bool = False) -> str:
    """'+0.012 [-0.020, +0.041]' or '97% [80%, 110%]' for a sentence; 'n/a' without finite pairs."""
    if not interval.n or not np.isfinite([interval.estimate, interval.low, interval.high]).all():
        return "n/a"
    if percent:
        return f"{interval.estimate:.0%} [{interval.low:.0%}, {interval.high:.0%}]"
    return f"{signed(interval.estimate)} [{signed(interval.low)}, {signed(interval.high)}]"


def judgeable(interval: Interval) -> bool:
    return interval.n >= MIN_PAIRS and bool(np.isfinite([interval.low, interval.high]).all())


def side(metric: Metric, difference: Interval) -> str | None:
    """Where the interval of a difference (ours minus theirs) lies: 'good', 'bad' or 'unclear' (it
    contains zero, or the metric has no better direction); None with too few pairs."""
    if not judgeable(difference):
        return None
    low, high = sorted((metric.sign() * difference.low, metric.sign() * difference.high))
    return "good" if low > 0 else "bad" if high < 0 else "unclear"


def too_few(n: int) -> str:
    return f" Too few pairs to judge ({n}; at least {MIN_PAIRS} are needed)."


def at_least(interval: Interval, share: float) -> tuple[str, str]:
    """The verdict of 'keeps at least `share`' and, when it cannot be judged, why."""
    if not judgeable(interval):
        return UNJUDGED, too_few(interval.n)
    if interval.low >= share:
        return HOLDS, ""
    if interval.high < share:
        return FAILS, ""
    return UNJUDGED, f" The interval contains {share:.0%}: more videos would decide."


def differences(ours: Variant, theirs: Variant, columns: list[Metric], seed: int) -> dict[str, Interval]:
    """ours minus theirs for every column, paired by (prompt, seed)."""
    return {m.key: paired_bootstrap(*paired(theirs, ours, m.key), seed=seed) for m in columns}


def _pairs(gap: dict[str, Interval]) -> int:
    return max((i.n for i in gap.values()), default=0)


def better_than_naive(scope: str, gap: dict[str, Interval]) -> Claim:
    sides = [side(m, gap[m.key]) for m in (CONSISTENCY, ARTIFACT)]
    verdict = UNJUDGED if sides == [None, None] else HOLDS if "good" in sides else FAILS
    return Claim(
        scope,
        "better_than_naive",
        f"{OURS.label} is better than {NAIVE.label} on consistency or artifacts",
        "the interval of the difference lies wholly on the good side for consistency (above 0) or artifact (below 0)",
        verdict,
        f"{GAP} over {_pairs(gap)} (prompt, seed) pairs: consistency {describe(gap['consistency'])}, "
        f"artifact {describe(gap['artifact'])}." + (too_few(_pairs(gap)) if verdict == UNJUDGED else ""),
        {"consistency": gap["consistency"], "artifact": gap["artifact"]},
    )


def no_worse_than_naive(scope: str, gap: dict[str, Interval]) -> Claim:
    metrics = (FIDELITY, CONSISTENCY, ARTIFACT)
    sides = [side(m, gap[m.key]) for m in metrics]
    verdict = UNJUDGED if all(s is None for s in sides) else FAILS if "bad" in sides else HOLDS
    worse = [m.key for m, s in zip(metrics, sides) if s == "bad"]
    return Claim(
        scope,
        "no_worse_than_naive",
        f"{OURS.label} is no worse than {NAIVE.label}",
        "no interval of the difference (fidelity, consistency, artifact) lies wholly on the bad side",
        verdict,
        f"{GAP} over {_pairs(gap)} (prompt, seed) pairs: "
        + ", ".join(f"{m.key} {describe(gap[m.key])}" for m in metrics)
        + (f"; worse on {', '.join(worse)}." if worse else ".")
        + (too_few(_pairs(gap)) if verdict == UNJUDGED else ""),
        {m.key: gap[m.key] for m in metrics},
    )


def share_kept(
    scope: str, name: str, metric: str, whose: str, reference: Variant, ours: Variant, seed: int, floor: float = 0.0
) -> Claim:
    """Ours' mean `metric` over the reference's, paired: at least KEEP of it, judged only where the
    reference itself reaches `floor` (a share of almost nothing is noise)."""
    kept = paired_ratio_bootstrap(*paired(reference, ours, metric), seed=seed)
    own, theirs = (float(np.nanmean(v.values(metric))) for v in (ours, reference))
    verdict, why = at_least(kept, KEEP)
    if not theirs >= floor:
        verdict, why = (
            UNJUDGED,
            (
                f" The {reference.name} itself scores {theirs:.3f} (below {floor}): it does not "
                "show what should be kept, so a share of it says nothing."
            ),
        )
    return Claim(
        scope,
        name,
        f"{OURS.label} keeps at least {KEEP:.0%} of the {whose}",
        f"the interval of mean {metric} ({OURS.label} / {reference.name}) lies at or above {KEEP:.0%}"
        + (f", and the {reference.name} itself reaches {floor}" if floor else ""),
        verdict,
        f"Mean {metric}, {OURS.label} / {reference.name}, same prompts and seeds: "
        f"{describe(kept, True)} over {kept.n} pairs ({own:.3f} vs {theirs:.3f}).{why}",
        {"kept": kept},
        {"still_moving": own, "reference": theirs},
    )


def ablation_static(scope: str, ablation: Variant, seed: int) -> Claim:
    static = ablation.values("is_static")
    share = bootstrap_mean(static, seed=seed)
    verdict, why = at_least(share, STATIC_SHARE)
    return Claim(
        scope,
        "no_motion_adapter_static",
        "without the motion adapter the videos are near-static",
        f"the interval of the static share lies at or above {STATIC_SHARE:.0%}",
        verdict,
        f"{int(np.nansum(static))} of {share.n} videos trained without the motion adapter are static "
        f"(share {describe(share, True)}).{why}",
        {"static_share": share},
    )


def by_id(scope: str, variants: list[Variant]) -> dict[str, Variant]:
    """The section's variants by id; every one the claims compare must be there."""
    found = {v.id: v for v in variants}
    missing = [kind.label for kind in COMPARED if kind.id not in found]
    if missing:
        raise ValueError(f"section {scope!r} lacks the variants {missing} that its claims compare")
    return found


def customization_claims(scope: str, by: dict[str, Variant], gap: dict[str, Interval], seed: int) -> list[Claim]:
    """The five claims for one customization (`by_id` of its variants), in the order the report lists them."""
    t2i, base, ours = by[T2I.id], by[BASE.id], by[OURS.id]
    return [
        better_than_naive(scope, gap),
        share_kept(scope, "fidelity_kept", "fidelity", "customized T2I's fidelity", t2i, ours, seed, FIDELITY_FLOOR),
        share_kept(scope, "motion_kept", "speed", "base T2V's motion (speed)", base, ours, seed),
        ablation_static(scope, by[NO_MOTION.id], seed),
        no_worse_than_naive(scope, gap),
    ]


def motion_scale_monotone(alphas: list[float], variants: list[Variant], seed: int, scope: str = MOTION_SCALE) -> Claim:
    """Motion falls as alpha rises: no step up is significant, and the largest alpha moves less than the smallest."""
    order = sorted(range(len(alphas)), key=lambda i: alphas[i])
    step = lambda i, j: paired_bootstrap(*paired(variants[i], variants[j], "displacement"), seed=seed)
    steps = {f"alpha {alphas[j]:g} minus {alphas[i]:g}": step(i, j) for i, j in zip(order, order[1:])}
    ends = step(order[0], order[-1]) if order else Interval.empty()
    rising = [name for name, s in steps.items() if judgeable(s) and s.low > 0]
    verdict = (
        UNJUDGED if not judgeable(ends) else FAILS if rising or ends.low > 0 else HOLDS if ends.high < 0 else UNJUDGED
    )
    why = too_few(ends.n) if not judgeable(ends) else " The interval contains 0: more videos would decide."
    means = ", ".join(f"{alphas[i]:g}: {np.nanmean(variants[i].values('displacement')):.2f}" for i in order)
    return Claim(
        scope,
        "monotone",
        "motion falls monotonically as the motion scale alpha rises",
        "no step to a larger alpha has an interval of the displacement difference wholly above 0, and "
        "the largest alpha's minus the smallest's lies wholly below 0",
        verdict,
        f"Mean displacement (px over the clip) at alpha {means}; largest minus smallest alpha "
        f"{describe(ends)} over {ends.n} pairs"
        + (f"; motion rises at {', '.join(rising)}." if rising else ".")
        + (why if verdict == UNJUDGED else ""),
        {"largest minus smallest alpha": ends, **steps},
    )


@dataclass
class Findings:
    """What the demo found: the claims and, per customization, ours minus naive for every column."""

    claims: list[Claim]
    differences: dict[str, dict[str, Interval]]  # customization -> metric -> Still-Moving minus naive injection

    def __add__(self, other: Findings) -> Findings:
        """Two video models' findings on one page: claims in order, scopes kept apart."""
        return Findings([*self.claims, *other.claims], {**self.differences, **other.differences})

    def record(self) -> dict:
        """claims.json's content: one-line verdicts for people, then every number for machines."""
        grouped: dict[str, dict] = {}
        for claim in self.claims:
            grouped.setdefault(claim.scope, {})[claim.name] = claim.as_dict()
        return {
            "verdicts": [claim.line() for claim in self.claims],
            "claims": grouped,
            "still_moving_minus_naive": {
                scope: {k: v.as_dict() for k, v in gap.items()} for scope, gap in self.differences.items()
            },
            "rules": {
                "level": LEVEL,
                "min_pairs": MIN_PAIRS,
                "keep": KEEP,
                "static_share": STATIC_SHARE,
                "fidelity_floor": FIDELITY_FLOOR,
            },
        }


def judge(
    sections: dict[str, list[Variant]],
    alphas: list[float],
    sweep: list[Variant],
    columns: list[Metric],
    seed: int = 0,
    sweep_scope: str = MOTION_SCALE,
) -> Findings:
    """Every claim of one video model, from its customizations' variants and its motion-scale sweep."""
    named = {scope: by_id(scope, variants) for scope, variants in sections.items()}
    gaps = {scope: differences(by[OURS.id], by[NAIVE.id], columns, seed) for scope, by in named.items()}
    found = [claim for scope, by in named.items() for claim in customization_claims(scope, by, gaps[scope], seed)]
    return Findings([*found, motion_scale_monotone(alphas, sweep, seed, sweep_scope)], gaps)
