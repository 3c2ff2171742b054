"""What the web app may read and where it writes: the user's configured folders, nothing else.

Every path typed or chosen in the page goes through `readable()`: it must lie inside a configured folder,
the app's output folder or the shipped world, and hold no pickle (the app never unpickles, not even with
`torch.load(weights_only=True)`); anything else is one message in the page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from stillmoving.errors import StillMovingError
from stillmoving.formats.safety import PICKLES
from stillmoving.run_folder import CUSTOMIZATION
from stillmoving.world.weights import HERE as SHIPPED
from stillmoving.world.weights import VIDEO_MODELS, shipped_model, shipped_motion_adapter

WORLD_PREFIX = "world:"  # a video model choice naming one of the shipped world's models
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # a customization's name: one folder, no path


@dataclass
class Folders:
    """The folders the app reads (`readable`) and the one it writes (`output`)."""

    output: Path  # customizations, uploaded images and generated videos go here
    readable: list[Path] = field(default_factory=list)  # the user's model folders (`--folder`)

    def roots(self) -> list[Path]:
        return [self.output.resolve(), SHIPPED.resolve(), *(p.resolve() for p in self.readable)]

    def customizations_dir(self) -> Path:
        return self.output / "customizations"

    def videos_dir(self) -> Path:
        return self.output / "videos"

    def images_dir(self) -> Path:
        return self.output / "images"


def check_folders(output: Path, readable: list[Path]) -> Folders:
    """`--output` can be made and written; every `--folder` is an existing folder."""
    from stillmoving.validation import check_writable

    for folder in readable:
        if not folder.is_dir():
            raise StillMovingError(f"--folder {folder}: no such folder")
    check_writable(output / "videos")
    return Folders(output=output, readable=list(readable))


def _inside(path: Path, roots: list[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def _pickles(path: Path) -> list[Path]:
    """Pickle files at `path` (a file) or anywhere under it (a folder), but for training checkpoints: accelerate's
    state that only `--resume` of the run that wrote it reads back."""
    candidates = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return [p for p in candidates if p.suffix.lower() in PICKLES and "checkpoints" not in p.relative_to(path).parts]


def readable(folders: Folders, text: str, what: str) -> str:
    """A path the user gave: inside a configured folder, existing, and free of pickles; returned absolute."""
    path = Path(text.strip()).expanduser().resolve()
    if not _inside(path, folders.roots()):
        allowed = ", ".join(str(r) for r in folders.roots())
        raise StillMovingError(
            f"{what} {text.strip()} is outside the folders this app may read ({allowed}); "
            f"start it with --folder to add one"
        )
    if not path.exists():
        raise StillMovingError(f"{what} {text.strip()}: no such file or folder")
    if found := _pickles(path):
        raise StillMovingError(
            f"{what} {text.strip()} holds pickle files ({found[0].name}), which this app never "
            f"loads; convert them to safetensors (`stillmoving info` tells what they hold)"
        )
    return str(path)


def check_name(name: str) -> str:
    """A customization's name becomes one folder under the output folder."""
    if not NAME.fullmatch(name.strip()):
        raise StillMovingError(f"customization name {name!r}: use letters, digits, '.', '_' or '-' (e.g. sks-star)")
    return name.strip()


# ----------------------------------------------------------------------------- the choices the page offers


def video_model_choices(folders: Folders) -> list[tuple[str, str]]:
    """(label, value) of every video model: the shipped world's (marked when not installed), then the
    AnimateDiff folders found in the configured folders."""
    choices = []
    for name in VIDEO_MODELS:
        installed = (SHIPPED / VIDEO_MODELS[name][0]).is_dir()
        choices.append((f"world: {name}" + ("" if installed else " (not installed)"), WORLD_PREFIX + name))
    for index in _found(folders.readable, "model_index.json"):
        if '"UNetMotionModel"' in index.read_text():
            choices.append((str(index.parent), str(index.parent)))
    return choices


def customization_choices(folders: Folders) -> list[str]:
    """Folders written by `customize` in the output folder and the configured ones."""
    roots = [folders.customizations_dir(), *folders.readable]
    return ["(none)"] + [str(record.parent) for record in _found(roots, CUSTOMIZATION)]


def _found(roots: list[Path], file_name: str, depth: int = 3) -> list[Path]:
    """`file_name` at most `depth` folders below each root, sorted."""
    hits = set()
    for root in filter(Path.is_dir, roots):
        for level in range(depth + 1):
            hits.update(p.resolve() for p in root.glob("/".join(["*"] * level + [file_name])))
    return sorted(hits)


@dataclass
class VideoModel:
    """A chosen video model's folder, its motion adapter (if any) and whether it is the embedded world."""

    model: str
    motion_adapter: str | None
    world: bool


def video_model(folders: Folders, choice: str, motion_adapter: str = "") -> VideoModel:
    """The page's video model choice resolved; a world model that is not installed is one message."""
    if choice.startswith(WORLD_PREFIX):
        name = choice.removeprefix(WORLD_PREFIX)
        return VideoModel(str(shipped_model(name)), str(shipped_motion_adapter(name)), world=True)
    adapter = readable(folders, motion_adapter, "motion adapter") if motion_adapter.strip() else None
    return VideoModel(readable(folders, choice, "video model"), adapter, world=False)
