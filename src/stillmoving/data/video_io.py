"""Reading and writing videos, images and folders of them, with one-line errors and atomic writes.

Videos in memory are uint8 numpy arrays shaped (F, H, W, 3), RGB. On disk a video is a file
(.mp4/.webm/.mov read through imageio-ffmpeg, .gif through imageio's Pillow plugin) or a folder
of image frames sorted naturally (frame2 before frame10). Every problem with a user's file becomes
a `StillMovingError` naming the path; every write goes to a hidden temporary name in the target's
directory and is moved into place with `os.replace`, so a crash never leaves a half-written file.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Union

import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np
from PIL import Image, ImageOps

from stillmoving.errors import StillMovingError
from stillmoving.files import atomic_write, temporary_sibling

if TYPE_CHECKING:
    import torch

VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".gif")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
CAPTION_KEYS = ("text", "caption", "prompt")  # accepted caption keys in metadata.jsonl, first wins
MP4_CRF = 16  # libx264 constant rate factor: near-lossless, tiny videos stay small anyway

PathLike = Union[str, "os.PathLike[str]"]
FramesLike = Union[np.ndarray, "torch.Tensor", Sequence[Image.Image]]


# ----------------------------------------------------------------------------- listing


def natural_key(path: Path) -> tuple:
    """Sort key that orders digit runs by value: frame2 < frame10 (case-insensitive)."""
    parts = re.split(r"(\d+)", path.name.lower())  # strings at even, digit runs at odd indices
    return (tuple(int(p) if i % 2 else p for i, p in enumerate(parts)), path.name)


def _existing_folder(folder: PathLike) -> Path:
    folder = Path(folder)
    if not folder.exists():
        raise StillMovingError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise StillMovingError(f"{folder}: is a file, expected a folder")
    return folder


def _visible(folder: Path) -> list[Path]:
    """Entries of `folder` sorted naturally, skipping hidden ones (.DS_Store, our temp files)."""
    return sorted((p for p in folder.iterdir() if not p.name.startswith(".")), key=natural_key)


def _image_files(folder: Path) -> list[Path]:
    return [p for p in _visible(folder) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]


def list_images(folder: PathLike) -> list[Path]:
    """Image files directly inside `folder`, sorted naturally; an empty result is an error."""
    folder = _existing_folder(folder)
    images = _image_files(folder)
    if not images:
        raise StillMovingError(f"no images found in {folder} (expected {', '.join(IMAGE_SUFFIXES)})")
    return images


def check_images(folder: PathLike) -> list[Path]:
    """`list_images`, each one decoded once: a corrupt file is refused before any model is loaded."""
    images = list_images(folder)
    for path in images:
        read_image(path)
    return images


def check_videos(folder: PathLike, num_frames: int) -> list[Path]:
    """`list_videos`, the first `num_frames` frames of each decoded once (`check_length`): a corrupt or short video
    is refused before any model is loaded."""
    videos = list_videos(folder)
    for path in videos:
        check_length(path, read_video(path, num_frames), num_frames)
    return videos


def check_length(path: Path, frames, num_frames: int) -> None:
    if len(frames) < num_frames:
        raise StillMovingError(f"{path} has {len(frames)} frames, training needs at least {num_frames}")


def list_videos(folder: PathLike) -> list[Path]:
    """Video files and sub-folders of image frames inside `folder`, sorted naturally."""
    folder = _existing_folder(folder)
    videos = [
        p
        for p in _visible(folder)
        if (p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES) or (p.is_dir() and _image_files(p))
    ]
    if not videos:
        raise StillMovingError(
            f"no videos found in {folder} (expected {', '.join(VIDEO_SUFFIXES)} files or sub-folders of image frames)"
        )
    return videos


# ----------------------------------------------------------------------------- reading


def _pil_to_rgb(image: Image.Image) -> np.ndarray:
    """(H, W, 3) uint8 from any PIL mode; alpha is dropped, 16-bit grey keeps its top 8 bits."""
    image = ImageOps.exif_transpose(image)  # phone photos store rotation in EXIF
    if image.mode.startswith("I;16"):
        grey = (np.asarray(image, dtype=np.uint16) >> 8).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=-1)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")  # avoids Pillow's palette-transparency warning
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def _existing_file(path: PathLike, what: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise StillMovingError(f"{path}: no such file")
    if path.is_dir():
        raise StillMovingError(f"{path}: is a folder, expected {what} file")
    return path


def read_image(path: PathLike) -> np.ndarray:
    """One image as uint8 (H, W, 3) RGB; greyscale, palette and alpha images are converted."""
    path = _existing_file(path, "an image")
    try:
        with Image.open(path) as image:
            image.load()
            return _pil_to_rgb(image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:  # Pillow on bad data
        raise StillMovingError(f"cannot read image {path}: the file is corrupt or not an image") from error


def _read_frame_folder(folder: Path, max_frames: int | None = None) -> np.ndarray:
    files = _image_files(folder)
    if not files:
        raise StillMovingError(f"cannot read video {folder}: the folder contains no image frames")
    frames = [read_image(f) for f in files[:max_frames]]
    for file, frame in zip(files, frames):
        if frame.shape != frames[0].shape:
            (h, w, _), (h0, w0, _) = frame.shape, frames[0].shape
            raise StillMovingError(
                f"cannot read video {folder}: frame {file.name} is {w}x{h} but {files[0].name} is {w0}x{h0}"
            )
    return np.stack(frames)  # (f, h, w, 3)


def _read_ffmpeg(path: Path, max_frames: int | None = None) -> np.ndarray:
    reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    try:
        width, height = next(reader)["size"]  # first item is metadata
        raws = itertools.islice(reader, max_frames)
        frames = [np.frombuffer(raw, np.uint8).reshape(height, width, 3) for raw in raws]
    finally:
        reader.close()  # stops the ffmpeg subprocess, also before the end of the file
    return np.stack(frames) if frames else np.zeros((0, height, width, 3), np.uint8)


def _read_gif(path: Path, max_frames: int | None = None) -> np.ndarray:
    if max_frames is not None:  # frame by frame, stopping early
        frames = list(itertools.islice(iio.imiter(path, plugin="pillow", mode="RGB"), max_frames))
        return np.stack(frames) if frames else np.zeros((0, 0, 0, 3), np.uint8)
    frames = iio.imread(path, index=None, plugin="pillow", mode="RGB")
    return frames[None] if frames.ndim == 3 else frames  # (f, h, w, 3)


def read_video(path: PathLike, max_frames: int | None = None) -> np.ndarray:
    """A video file or a folder of frames as uint8 (F, H, W, 3) RGB; with `max_frames`, its first `max_frames`
    frames only, decoded and held no further (training reads a clip from the start of a long video)."""
    path = Path(path)
    if not path.exists():
        raise StillMovingError(f"{path}: no such file or folder")
    if max_frames is not None and max_frames < 1:
        raise StillMovingError(f"cannot read {max_frames} frames of a video; ask for at least 1")
    if path.is_dir():
        return _read_frame_folder(path, max_frames)
    suffix = path.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise StillMovingError(
            f"cannot read video {path}: unsupported suffix '{suffix}' "
            f"(expected {', '.join(VIDEO_SUFFIXES)} or a folder of frames)"
        )
    try:
        frames = _read_gif(path, max_frames) if suffix == ".gif" else _read_ffmpeg(path, max_frames)
    except Exception as error:  # imageio/ffmpeg raise many types, with multi-line ffmpeg logs
        raise StillMovingError(f"cannot read video {path}: the file is corrupt or not a {suffix} video") from error
    if len(frames) == 0:
        raise StillMovingError(f"cannot read video {path}: it has zero frames")
    return np.ascontiguousarray(frames, dtype=np.uint8)


# ----------------------------------------------------------------------------- captions


def _jsonl_captions(path: Path) -> dict[str, str]:
    """Captions from a Hugging Face imagefolder `metadata.jsonl`: {"file_name": ..., "text": ...}."""
    captions: dict[str, str] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise StillMovingError(f"cannot read {path}: {error.__class__.__name__}") from error
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise StillMovingError(f"{path}: line {number} is not valid JSON ({error.msg})") from error
        key = next((k for k in CAPTION_KEYS if isinstance(record, dict) and k in record), None)
        if not isinstance(record, dict) or "file_name" not in record or key is None:
            raise StillMovingError(f'{path}: line {number} needs a "file_name" and one of {", ".join(CAPTION_KEYS)}')
        if not isinstance(record["file_name"], str) or not isinstance(record[key], str):
            raise StillMovingError(f'{path}: line {number}: "file_name" and "{key}" must be strings')
        captions[record["file_name"]] = record[key].strip()
    return captions


def read_captions(folder: PathLike) -> dict[str, str]:
    """Captions keyed by file name, from `metadata.jsonl` and/or sidecar `<stem>.txt` files.

    A sidecar `cat.txt` captions `cat.mp4`, `cat.png` or a frame folder `cat/`; where both
    sources caption the same file, metadata.jsonl wins. A folder without captions gives {}.
    """
    folder = _existing_folder(folder)
    captions: dict[str, str] = {}
    for entry in _visible(folder):
        is_media = entry.suffix.lower() in VIDEO_SUFFIXES + IMAGE_SUFFIXES or entry.is_dir()
        sidecar = folder / f"{entry.name if entry.is_dir() else entry.stem}.txt"
        if is_media and sidecar.is_file():
            try:
                captions[entry.name] = sidecar.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as error:
                raise StillMovingError(f"cannot read caption {sidecar}: {error.__class__.__name__}") from error
    metadata = folder / "metadata.jsonl"
    if metadata.is_file():
        captions.update(_jsonl_captions(metadata))
    return captions


# ----------------------------------------------------------------------------- conversion


def to_uint8_frames(frames: FramesLike) -> np.ndarray:
    """uint8 (F, H, W, 3) from uint8 arrays, float arrays/tensors in [0, 1] (channels last or
    (F, 3, H, W)), or a list of PIL images. Malformed input is a programming error: ValueError."""
    if isinstance(frames, (list, tuple)):
        array = np.stack([np.asarray(im.convert("RGB")) for im in frames]) if frames else np.zeros((0,))
    elif hasattr(frames, "detach"):  # a torch tensor, without importing torch here
        tensor = frames.detach().cpu()
        array = (tensor.float() if tensor.is_floating_point() else tensor).numpy()
    else:
        array = np.asarray(frames)
    if array.ndim == 4 and array.shape[-1] != 3 and array.shape[1] == 3:
        array = array.transpose(0, 2, 3, 1)  # (f, 3, h, w) -> (f, h, w, 3)
    if array.ndim != 4 or array.shape[-1] != 3 or array.shape[0] == 0:
        raise ValueError(f"expected frames shaped (F, H, W, 3) or (F, 3, H, W) with F > 0, got {array.shape}")
    if np.issubdtype(array.dtype, np.floating):
        array = np.round(np.clip(np.nan_to_num(array), 0.0, 1.0) * 255.0)
    elif array.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames or floats in [0, 1], got dtype {array.dtype}")
    return np.ascontiguousarray(array, dtype=np.uint8)


def upscale_nearest(frames: np.ndarray, factor: int) -> np.ndarray:
    """Blow up (..., H, W, C) by an integer `factor` with nearest neighbour, so tiny videos stay crisp."""
    if not isinstance(factor, int) or factor < 1:
        raise ValueError(f"factor must be a positive integer, got {factor!r}")
    return np.repeat(np.repeat(frames, factor, axis=-3), factor, axis=-2)


# ----------------------------------------------------------------------------- writing


def _replace_folder(new: Path, target: Path) -> None:
    """Swap a complete `new` folder into `target`; the old one is deleted only after the swap."""
    if not target.exists():
        os.replace(new, target)
        return
    old = temporary_sibling(target, "old")
    os.replace(target, old)
    try:
        os.replace(new, target)
    except OSError:
        os.replace(old, target)  # put the previous frames back
        raise
    shutil.rmtree(old, ignore_errors=True)


def _write_frame_folder(frames: np.ndarray, target: Path) -> Path:
    if target.exists() and not target.is_dir():
        raise StillMovingError(f"cannot write frames to {target}: a file with that name exists")
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_sibling(target, "tmp")
    digits = max(4, len(str(len(frames) - 1)))
    try:
        temporary.mkdir()
        for index, frame in enumerate(frames):
            Image.fromarray(frame).save(temporary / f"frame_{index:0{digits}d}.png")
        _replace_folder(temporary, target)
    except OSError as error:
        raise StillMovingError(f"cannot write frames to {target}: {error.strerror or error}") from error
    finally:
        shutil.rmtree(temporary, ignore_errors=True)  # only still there if something failed
    return target


def _pad_to_even(frames: np.ndarray) -> np.ndarray:
    """yuv420p stores colour at half resolution, so width and height must be even: replicate
    the last row/column where needed (a 33x17 video is stored, and read back, as 34x18)."""
    _, height, width, _ = frames.shape
    return np.pad(frames, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)), mode="edge")


def _save_mp4(frames: np.ndarray, path: Path, fps: float) -> None:
    frames = _pad_to_even(frames)
    _, height, width, _ = frames.shape
    writer = imageio_ffmpeg.write_frames(
        str(path),
        (width, height),
        fps=fps,
        codec="libx264",
        pix_fmt_out="yuv420p",
        quality=None,
        output_params=["-crf", str(MP4_CRF)],
        macro_block_size=2,  # we padded to even sizes, so imageio-ffmpeg must not rescale
        ffmpeg_log_level="error",
    )
    writer.send(None)  # start ffmpeg
    try:
        for frame in frames:
            writer.send(frame)
    finally:
        writer.close()


def _save_gif(frames: np.ndarray, path: Path, fps: float) -> None:
    """An endlessly looping GIF. Pillow merges identical consecutive frames into one longer frame,
    so playback is unchanged but a static video reads back with fewer frames."""
    images = [Image.fromarray(frame) for frame in frames]
    duration_ms = round(1000 / fps)  # GIF stores hundredths of a second
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms, loop=0)


def _video_kind(path: PathLike) -> str:
    text = os.fspath(path)
    suffix = Path(text).suffix.lower()
    if text.endswith(("/", os.sep)) or not suffix:
        return "frames"
    if suffix in (".mp4", ".gif"):
        return suffix[1:]
    raise StillMovingError(
        f"cannot write video {path}: unknown suffix '{suffix}' (use .mp4, .gif, or a folder path for PNG frames)"
    )


def write_video(frames: FramesLike, path: PathLike, fps: float = 8) -> Path:
    """Write frames (see `to_uint8_frames`) atomically as .mp4 (H.264, yuv420p), .gif, or, for a
    path ending in '/' or without a suffix, a folder of frame_0000.png, frame_0001.png, ..."""
    kind = _video_kind(path)
    array = to_uint8_frames(frames)  # (f, h, w, 3)
    target = Path(path)
    if kind == "frames":
        return _write_frame_folder(array, target)
    save = _save_mp4 if kind == "mp4" else _save_gif
    return atomic_write(target, lambda temporary: save(array, temporary, fps))


def write_image(image: np.ndarray | torch.Tensor | Image.Image, path: PathLike) -> Path:
    """Write one image ((H, W, 3) / (3, H, W) array or tensor, or PIL image) atomically; format by suffix."""
    target = Path(path)
    if target.suffix.lower() not in IMAGE_SUFFIXES:
        raise StillMovingError(
            f"cannot write image {path}: unknown suffix '{target.suffix}' (use {', '.join(IMAGE_SUFFIXES)})"
        )
    frame = to_uint8_frames([image] if isinstance(image, Image.Image) else image[None])[0]
    return atomic_write(target, lambda temporary: Image.fromarray(frame).save(temporary, quality=95))
