"""`stillmoving eval`: the world's oracle metrics for videos a user generated."""

from __future__ import annotations

import json
from pathlib import Path

from stillmoving.data.video_io import list_videos, read_captions, read_video
from stillmoving.errors import StillMovingError
from stillmoving.files import write_text
from stillmoving.world.metrics import video_metrics
from stillmoving.world.report import summarize


def evaluate_folder(folder: str | Path, target: str | None = None, prompt: str | None = None) -> dict:
    """Per-video metrics and their mean/spread for every video in `folder`.

    Each video's prompt comes from the folder's captions (metadata.jsonl or .txt sidecars), else `prompt`;
    the prompt gives the expected direction and, with `target`, the customization to score fidelity on.
    """
    folder = Path(folder)
    captions = read_captions(folder)
    per_video = {}
    for path in list_videos(folder):
        caption = captions.get(path.name, prompt)
        if caption is None and target is None:
            raise StillMovingError(f"no caption for {path}: give --prompt or captions, or --target")
        per_video[path.name] = video_metrics(read_video(path), prompt=caption, target=target)
    return {"summary": summarize(list(per_video.values())), "per_video": per_video}


def write_evaluation(result: dict, path: str | Path) -> Path:
    return write_text(path, json.dumps(result, indent=2) + "\n")
