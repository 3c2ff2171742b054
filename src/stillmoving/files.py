"""Atomic file writes: a reader never sees a half-written file, and a crash keeps the previous one."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

from stillmoving.errors import StillMovingError


def temporary_sibling(target: Path, tag: str) -> Path:
    """A hidden, unique name next to `target` that keeps its suffix (ffmpeg and Pillow read it)."""
    return target.parent / f".{target.stem}.{secrets.token_hex(4)}.{tag}{target.suffix}"


def atomic_write(target: str | Path, write: Callable[[Path], object]) -> Path:
    """Run `write(temporary_path)`, then move the result onto `target` in one `os.replace`."""
    target = Path(target)
    if target.is_dir():
        raise StillMovingError(f"cannot write {target}: a folder with that name exists")
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_sibling(target, "tmp")
    try:
        write(temporary)
        os.replace(temporary, target)
    except OSError as error:
        raise StillMovingError(f"cannot write {target}: {error.strerror or error}") from error
    finally:
        temporary.unlink(missing_ok=True)  # only still there if something failed
    return target


def write_text(target: str | Path, text: str) -> Path:
    return atomic_write(target, lambda tmp: tmp.write_text(text))
