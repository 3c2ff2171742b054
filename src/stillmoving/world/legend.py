"""What each column of the demo's table measures, its range, and which way is better.

The report prints this as its legend and the claims read `better` to tell a good difference from a
bad one, so the page and the verdicts cannot disagree about a metric's direction. The definitions
are those of `stillmoving.world.metrics` (its module docstring), said for a reader of the report.
"""

from __future__ import annotations

from dataclasses import dataclass

from stillmoving.world.metrics import NOISE_LEVELS, STATIC_SPEED

HIGHER, LOWER, NEITHER = "higher", "lower", "neither"
RESOLUTION = 32  # px: the world's frame size, for the px figures below


@dataclass(frozen=True)
class Metric:
    """One column: its key in `video_metrics`' dict and how to read it."""

    key: str
    measures: str  # one sentence
    scale: str  # range and unit
    better: str  # HIGHER, LOWER or NEITHER
    why: str = ""  # for NEITHER: what a good value is instead
    temporal: bool = False  # needs several frames: not applicable to a still image
    share: bool = False  # 0 or 1 per video: the table shows the share and the count

    def sign(self) -> int:
        """+1 where higher is better, -1 where lower is, 0 where neither."""
        return {HIGHER: 1, LOWER: -1, NEITHER: 0}[self.better]


SPEED = Metric(
    "speed",
    "How fast the object's centre moves (a robust straight-line fit over the frames).",
    "px per frame, 0 and up; prompts ask for 0.4 (slowly) or 1.2 (quickly)",
    NEITHER,
    "close to the base T2V's: customizing should keep the video model's motion",
    temporal=True,
)
DIRECTION_MATCH = Metric(
    "direction_match",
    "Share of videos whose object moves the way the prompt says "
    "(left, right, up, down); a static object counts as a miss.",
    "0 to 1",
    HIGHER,
    temporal=True,
    share=True,
)
IS_STATIC = Metric(
    "is_static",
    f"Share of videos whose object moves less than {STATIC_SPEED * RESOLUTION:.1f} px per frame (half the slow speed).",
    "0 to 1",
    NEITHER,
    "near 0 for videos that should move; near 1 for the no-motion-adapter ablation and alpha 1",
    temporal=True,
    share=True,
)
FIDELITY = Metric(
    "fidelity",
    "Probability, from a classifier trained on rendered frames of every look, that a "
    "frame shows the customization's target (the star subject or the crayon style); mean over frames.",
    "0 to 1",
    HIGHER,
)
CONSISTENCY = Metric(
    "consistency",
    "The object keeps its shape, its colours and a smooth path from frame to frame (mean of the three scores).",
    "0 to 1",
    HIGHER,
    temporal=True,
)
ARTIFACT = Metric(
    "artifact",
    "Per frame: noise on the background and foreground that is not one coherent object "
    f"(a second blob, ghosting, a missing object); mean over frames. Noise of {NOISE_LEVELS:g} grey "
    "levels alone gives 0.63.",
    "0 to 1",
    LOWER,
)

DEMO_METRICS: tuple[Metric, ...] = (SPEED, DIRECTION_MATCH, IS_STATIC, FIDELITY, CONSISTENCY, ARTIFACT)

TRACK_IOU = Metric(
    "track_iou",
    "Conditional generation: how well the object covers the reference silhouette it was conditioned on "
    "(intersection over union of the oracle's object region and the reference mask), mean over frames.",
    "0 to 1; rendered ground truth scores about 0.9 against its own silhouettes",
    HIGHER,
)
TRACK_DISTANCE = Metric(
    "track_distance",
    "Conditional generation: distance between the object's centre and the reference silhouette's, mean over frames.",
    "px, 0 and up",
    LOWER,
)
TRACK_METRICS: tuple[Metric, ...] = (TRACK_IOU, TRACK_DISTANCE)  # only the conditional sections have them
