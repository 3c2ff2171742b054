"""`stillmoving eval`: score videos with the field's metrics, and the world's oracle where they are of the world.

Every video gets dynamic degree (optical flow, no model needed); a CLIP model adds CLIP-T (for captioned
videos), temporal consistency and, with reference images, CLIP-I; a DINO model adds DINO-I. Videos of the
embedded world (captions naming its directions and backgrounds, square frames) also get its oracle metrics
(`stillmoving.world.metrics`). Every input is checked before a model loads.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from stillmoving.data.video_io import check_images, list_videos, read_captions, read_image, read_video
from stillmoving.errors import StillMovingError
from stillmoving.evaluation import dynamic_degree as flow
from stillmoving.evaluation import metrics
from stillmoving.evaluation.backbones import (
    CLIP_TYPES,
    DINO_PREPROCESS,
    DINO_TYPES,
    ClipBackbone,
    DinoBackbone,
    check_backbone,
)
from stillmoving.files import write_text
from stillmoving.validation import check_device, one_of
from stillmoving.world.legend import HIGHER, NEITHER, Metric
from stillmoving.world.variants import summarize

CLIP_T = Metric(
    "clip_t",
    "Text alignment: CLIP cosine of the prompt and each frame, averaged over the frames (DreamVideo's CLIP-T).",
    "-1 to 1; about 0.2 to 0.35 for real CLIP ViT-B/32",
    HIGHER,
)
CLIP_I = Metric(
    "clip_i",
    "Likeness to the reference images: CLIP cosine of every reference and every frame, averaged (DreamVideo's CLIP-I).",
    "-1 to 1",
    HIGHER,
)
DINO_I = Metric(
    "dino_i",
    "Identity: the same with DINO ViT-S/16 features, which separate instances better than "
    "CLIP's (DreamVideo's DINO-I).",
    "-1 to 1",
    HIGHER,
)
TEMPORAL_CONSISTENCY = Metric(
    "temporal_consistency",
    "CLIP cosine of consecutive frames, averaged (DreamVideo's T. Cons.).",
    "-1 to 1; 1 for a still video",
    HIGHER,
    temporal=True,
)
DYNAMIC_DEGREE = Metric(
    "dynamic_degree",
    "Share of videos that move by VBench's rule: enough frame pairs whose "
    "top 5% optical-flow magnitudes exceed 6 px at a 256 px short side.",
    "0 to 1",
    NEITHER,
    "close to the base T2V's: customizing should keep the video model's motion",
    temporal=True,
    share=True,
)
FLOW_MAGNITUDE = Metric(
    "flow_magnitude",
    "VBench's per-pair flow score (mean of the top 5% magnitudes), averaged over the video's frame pairs.",
    "px per 1/8 s, 0 and up",
    NEITHER,
    "close to the base T2V's",
    temporal=True,
)
COLUMNS: tuple[Metric, ...] = (CLIP_T, CLIP_I, DINO_I, TEMPORAL_CONSISTENCY, DYNAMIC_DEGREE, FLOW_MAGNITUDE)
WORLD_TARGETS = ("star", "crayon", "neon")  # the held-out looks the world's oracle scores fidelity on


@dataclass
class EvalSettings:
    """How videos are scored; each field is an `eval` / `compare` option of the same name."""

    clip_model: str | None = None  # CLIP folder or Hub id (published: openai/clip-vit-base-patch32)
    dino_model: str | None = None  # DINO/DINOv2 folder or Hub id (published: facebook/dino-vits16)
    reference_images: str | None = None  # folder of the subject/style images, for CLIP-I and DINO-I
    dino_preprocess: str = "dreamvideo"  # dreamvideo (resize 256, crop 224) | processor (the folder's own)
    flow: str = "farneback"  # optical-flow estimator of dynamic degree: farneback | dis
    fps: float = 8.0  # frames per second of the videos; VBench samples 8 fps (generate writes 8)
    world_metrics: bool | None = None  # the world's oracle metrics: None = for videos of the world
    target: str | None = None  # world look to score fidelity on: star, crayon, neon
    device: str = "auto"  # where the backbones run


def check_settings(settings: EvalSettings) -> None:
    """Every problem as one line, before any model loads."""
    check_backbone("--clip-model", settings.clip_model, CLIP_TYPES)
    check_backbone("--dino-model", settings.dino_model, DINO_TYPES)
    if settings.reference_images is not None:
        if not (settings.clip_model or settings.dino_model):
            raise StillMovingError("--reference-images needs --clip-model or --dino-model to compare them with")
        check_images(settings.reference_images)
    one_of("--flow", settings.flow, flow.FLOW_ESTIMATORS)
    one_of("--dino-preprocess", settings.dino_preprocess, DINO_PREPROCESS)
    if not settings.fps > 0:
        raise StillMovingError(f"--fps must be above 0, not {settings.fps}")
    if settings.target is not None:
        one_of("--target", settings.target, WORLD_TARGETS)
    check_device(settings.device)


def is_world_video(frames: np.ndarray, caption: str | None) -> bool:
    """Square frames and a caption in the world's grammar ("... moving left ... on a gray background")."""
    from stillmoving.world.metrics import parse_prompt

    info = parse_prompt(caption) if caption else None
    return frames.shape[1] == frames.shape[2] and info is not None and None not in (info.direction, info.background)


class VideoScorer:
    """The backbones and the reference images' features, loaded once; `score` rates one video."""

    def __init__(self, settings: EvalSettings):
        check_settings(settings)
        self.settings = settings
        device = check_device(settings.device)
        self.clip = ClipBackbone(settings.clip_model, device) if settings.clip_model else None
        self.dino = DinoBackbone(settings.dino_model, device, settings.dino_preprocess) if settings.dino_model else None
        references = (
            np.stack([read_image(p) for p in check_images(settings.reference_images)])
            if settings.reference_images
            else None
        )
        self.clip_references = self.clip.image_features(references) if self.clip and references is not None else None
        self.dino_references = self.dino.image_features(references) if self.dino and references is not None else None

    def _backbone_metrics(self, frames: np.ndarray, caption: str | None) -> dict[str, float]:
        out: dict[str, float] = {}
        if self.clip:
            features = self.clip.image_features(frames)
            if caption:
                out["clip_t"] = metrics.clip_t(self.clip.text_features([caption])[0], features)
            if self.clip_references is not None:
                out["clip_i"] = metrics.image_similarity(self.clip_references, features)
            if (consistency := metrics.temporal_consistency(features)) is not None:
                out["temporal_consistency"] = consistency
        if self.dino and self.dino_references is not None:
            out["dino_i"] = metrics.image_similarity(self.dino_references, self.dino.image_features(frames))
        return out

    def _world(self, frames: np.ndarray, caption: str | None) -> bool:
        forced = self.settings.world_metrics
        if forced is not None:
            return forced and frames.shape[1] == frames.shape[2]
        return self.settings.target is not None or is_world_video(frames, caption)

    def score(self, frames: np.ndarray, caption: str | None) -> dict[str, float]:
        """Every metric that applies to one uint8 (F, H, W, 3) video; a still image (F = 1) gets no motion."""
        out = self._backbone_metrics(frames, caption)
        if len(frames) > 1:
            out |= flow.dynamic_degree(frames, self.settings.fps, self.settings.flow)
        if self._world(frames, caption):
            from stillmoving.world.metrics import video_metrics

            with warnings.catch_warnings():  # figures that do not apply (a still's motion) are NaN, and say so
                warnings.simplefilter("ignore", RuntimeWarning)
                out |= video_metrics(frames, prompt=caption, target=self.settings.target)
        return out


def evaluation_record(settings: EvalSettings) -> dict:
    """The settings and the dynamic-degree rule, for the JSON next to the numbers."""
    return {
        **asdict(settings),
        "dynamic_degree_rule": (
            f"VBench: frames at 8 fps; a pair scores the mean of its top {flow.TOP_SHARE:.0%} flow magnitudes "
            f"({settings.flow}); dynamic when at least max(1, round(4 F / 16)) pairs exceed "
            f"{flow.THRESHOLD_PX_AT_256:g} * min(H, W) / 256 px"
        ),
    }


def evaluate_folder(folder: str | Path, settings: EvalSettings, prompt: str | None = None) -> dict:
    """Per-video metrics and their mean/std/n for every video of `folder`; captions from metadata.jsonl or .txt
    sidecars, else `prompt`."""
    videos, captions = list_videos(folder), read_captions(folder)  # before any model loads
    scorer = VideoScorer(settings)
    per_video = {p.name: scorer.score(read_video(p), captions.get(p.name, prompt)) for p in videos}
    return {
        "settings": evaluation_record(settings),
        "summary": summarize(list(per_video.values())),
        "per_video": per_video,
    }


def write_evaluation(result: dict, path: str | Path) -> Path:
    from stillmoving.world.report import json_safe

    return write_text(path, json.dumps(json_safe(result), indent=2, allow_nan=False) + "\n")
