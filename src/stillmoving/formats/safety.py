"""Reading a weights file without trusting it: safetensors, or pickles restricted to tensors.

`.ckpt`/`.pt`/`.bin` files are Python pickles, which can run arbitrary code when loaded; they are read
only with `torch.load(weights_only=True)`, and a file that needs more is refused with how to convert it.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from stillmoving.errors import StillMovingError

SAFETENSORS = (".safetensors",)
PICKLES = (".ckpt", ".pt", ".pth", ".bin")
CONVERT_HINT = (
    "if you trust its source, load it on a safe machine with torch.load(path, weights_only=False), "
    "save its tensors as safetensors (safetensors.torch.save_file), and pass that file"
)


def is_weights_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in SAFETENSORS + PICKLES


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as error:  # SafetensorError, or OSError on a short read
        raise _incomplete(path, error) from None


def _incomplete(path: Path, error: Exception) -> StillMovingError:
    return StillMovingError(
        f"cannot read {path}: not a complete safetensors file, truncated or corrupt "
        f"({str(error).splitlines()[0]}); download it again"
    )


def check_header(path: str | Path) -> None:
    """A weights file a verb will load, judged before any model loads where its format allows: a safetensors file's
    header must be readable (`read_state_dict` says the same of a damaged file after the model loaded); pickles are
    judged when read."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() in SAFETENSORS:
        try:
            with safe_open(str(path), framework="pt"):
                pass
        except (SafetensorError, OSError, ValueError) as error:
            raise _incomplete(path, error) from None


def _read_pickle(path: Path) -> dict:
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        detail = str(error).split("WeightsUnpickler error:")[-1].strip().splitlines()[0].split(". Please")[0]
        if "global" not in detail.lower():  # not a refused class or function: the bytes are no pickle
            raise StillMovingError(
                f"cannot read {path}: not a readable PyTorch checkpoint, truncated or corrupt ({detail})"
            ) from None
        raise StillMovingError(
            f"refusing to load {path}: it needs arbitrary unpickling, which can run code ({detail}); {CONVERT_HINT}"
        ) from None
    except Exception as error:  # a truncated zip, a file that is not a pickle at all
        raise StillMovingError(
            f"cannot read {path}: not a readable PyTorch checkpoint, truncated or corrupt "
            f"({str(error).splitlines()[0]})"
        ) from None


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a weights file, unwrapped from a training checkpoint's `state_dict` if needed."""
    path = Path(path)
    if not path.is_file():
        raise StillMovingError(f"no such file: {path}")
    suffix = path.suffix.lower()
    if suffix not in SAFETENSORS + PICKLES:
        raise StillMovingError(f"{path}: unknown weights format {suffix!r} (expected .safetensors, .ckpt, .pt, .bin)")
    state = _read_safetensors(path) if suffix in SAFETENSORS else _read_pickle(path)
    while isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    tensors = {k: v for k, v in state.items() if torch.is_tensor(v)} if isinstance(state, dict) else {}
    if not tensors:
        raise StillMovingError(f"{path} holds no tensors")
    return tensors


def read_adapter_file(path: str | Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """Metadata and tensors of a safetensors file, with one-line errors for missing or corrupt files."""
    return _read_adapter(path, tensors=True)


def read_adapter_header(path: str | Path) -> tuple[dict[str, str], list[str]]:
    """Metadata and tensor names of a safetensors file, from its header alone (nothing else is read), with
    `read_adapter_file`'s one-line errors: what the verbs check before any model loads."""
    return _read_adapter(path, tensors=False)


def _read_adapter(path: str | Path, tensors: bool):
    path = Path(path)
    if not path.is_file():
        raise StillMovingError(f"no such file: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            body = {k: f.get_tensor(k) for k in f.keys()} if tensors else list(f.keys())
            return dict(f.metadata() or {}), body
    except (SafetensorError, OSError, ValueError) as error:
        raise StillMovingError(f"{path} is not a readable safetensors file ({error})") from None


def weight_keys(path: str | Path) -> list[str] | None:
    """The tensor names of a weights file without reading its tensors where the format allows: a safetensors
    header, a zip-format pickle memory-mapped (weights_only); None where they cannot be read so (the loaders then
    read the file and say what is wrong in one line)."""
    path = Path(path)
    try:
        if path.suffix.lower() in SAFETENSORS:
            with safe_open(str(path), framework="pt") as f:
                return list(f.keys())
        if path.suffix.lower() in PICKLES:
            state = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
            while isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
                state = state["state_dict"]
            return [k for k, v in state.items() if torch.is_tensor(v)] if isinstance(state, dict) else None
    except Exception:  # unreadable, refused, or not a zip pickle: left to read_state_dict
        return None
    return None
