"""The world as a user's folders: rendered videos or images with captions in `metadata.jsonl`.

These are the folders the project's commands read (`motion-adapter train --videos`, `t2i dreambooth`,
`t2i lora`, `eval`), so the demo and the shipped motion adapter go through the same doors a user does.
"""

from __future__ import annotations

import json
from pathlib import Path

from stillmoving.data.video_io import write_image, write_video
from stillmoving.errors import StillMovingError
from stillmoving.files import write_text
from stillmoving.world.synthetic import WorldSample, make_image_dataset, make_video_dataset


def _write(folder: Path, samples: list[WorldSample], suffix: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / "metadata.jsonl").exists():
        raise StillMovingError(f"{folder} already holds a metadata.jsonl; choose an empty folder")
    lines = []
    for i, sample in enumerate(samples):
        name = f"{i:05d}{suffix}"
        if suffix == ".png":
            write_image(sample.pixels, folder / name)
        else:  # "" is a folder of PNG frames
            write_video(sample.pixels, f"{folder / name}/" if not suffix else folder / name)
        lines.append(json.dumps({"file_name": name, "text": sample.caption}))
    write_text(folder / "metadata.jsonl", "\n".join(lines) + "\n")  # last: a folder with captions is complete
    return folder


def write_video_folder(
    folder: str | Path,
    count: int,
    seed: int,
    num_frames: int = 8,
    resolution: int = 32,
    subject: str | None = None,
    style: str | None = None,
    suffix: str = "",
) -> Path:
    """`count` rendered world videos with their captions: folders of PNG frames (lossless) by default,
    or `.gif` / `.mp4` files."""
    if suffix not in ("", ".gif", ".mp4"):
        raise StillMovingError(f"videos are written as frame folders, .gif or .mp4, not {suffix!r}")
    samples = make_video_dataset(count, seed, num_frames, resolution, subject=subject, style=style)
    return _write(Path(folder), samples, suffix)


def write_image_folder(
    folder: str | Path,
    count: int,
    seed: int,
    resolution: int = 32,
    subject: str | None = None,
    style: str | None = None,
) -> Path:
    """`count` rendered still images (PNG) with captions: what a user gives DreamBooth or a style LoRA."""
    return _write(Path(folder), make_image_dataset(count, seed, resolution, subject=subject, style=style), ".png")
