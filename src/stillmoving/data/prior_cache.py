"""A cache of the prior-preservation videos sampled from the video model V.

Prior videos depend on V and on how they are sampled (prompts, seed, frames, size, denoising steps,
guidance, scheduler, dtype, device), never on the customization: every customization of one video model
with the same settings samples the same videos. So `customize` keeps them, as latents, in a cache folder
and the next customization of the same V reuses them instead of sampling again.

The key is every sampling setting plus what identifies V: `weights_fingerprint` of its UNet (motion modules
included), VAE and text encoder, and the size and modification time of every file it was loaded from. A
file holds the latents and the full key in its metadata; a file whose key differs, or that cannot be read,
is a miss and is sampled afresh. The folder is `--cache-dir`, else $STILLMOVING_CACHE, else
$XDG_CACHE_HOME/stillmoving (~/.cache/stillmoving); deleting it is always safe.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from stillmoving.errors import StillMovingError
from stillmoving.files import atomic_write
from stillmoving.fingerprint import weights_fingerprint

KEY_FORMAT = "stillmoving.prior_videos/1"


def cache_root(cache_dir: str | None = None) -> Path:
    """The cache folder: the argument, else $STILLMOVING_CACHE, else $XDG_CACHE_HOME/stillmoving."""
    if cache_dir:
        return Path(cache_dir)
    if os.environ.get("STILLMOVING_CACHE"):
        return Path(os.environ["STILLMOVING_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "stillmoving"


def _files_signature(source: str | None) -> list:
    """(relative path, size, mtime) of the files behind a local path; a Hub id or None as it is."""
    if not source or not Path(source).exists():
        return [source]
    path = Path(source).resolve()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return [str(path)] + [
        [str(p.relative_to(path)) if path.is_dir() else p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files
    ]


def prior_key(
    pipe,
    sources: list[str | None],
    prompts: list[str],
    num_frames: int,
    height: int,
    width: int,
    seed: int,
    steps: int,
    guidance_scale: float,
) -> str:
    """The full key (JSON text) of one set of prior videos; its sha256 names the file."""
    key = {
        "format": KEY_FORMAT,
        "weights": [weights_fingerprint(m) for m in (pipe.unet, pipe.vae, pipe.text_encoder)]
        + ([weights_fingerprint(pipe.text_encoder_2)] if getattr(pipe, "text_encoder_2", None) is not None else []),
        "sources": [_files_signature(s) for s in sources],
        "scheduler": dict(pipe.scheduler.config),
        "dtype": str(pipe.unet.dtype),
        "device": pipe.unet.device.type,
        "prompts": prompts,
        "num_frames": num_frames,
        "height": height,
        "width": width,
        "seed": seed,
        "steps": steps,
        "guidance_scale": guidance_scale,
    }
    return json.dumps(key, sort_keys=True, default=str)


def _path(root: Path, key: str) -> Path:
    return root / "prior_videos" / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.safetensors"


def load_prior_videos(root: Path, key: str) -> list[torch.Tensor] | None:
    """The cached latents (one (C, F, h, w) tensor per video) for `key`, or None."""
    path = _path(root, key)
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            if (f.metadata() or {}).get("key") != key:
                return None
            return list(f.get_tensor("latents"))
    except (SafetensorError, OSError, ValueError) as error:
        warnings.warn(f"ignoring unreadable cached prior videos {path} ({error}); sampling them again", stacklevel=2)
        return None


def store_prior_videos(root: Path, key: str, latents: list[torch.Tensor]) -> Path | None:
    """Write the latents under `key`; a cache that cannot be written is a warning, not an error."""
    tensors = {"latents": torch.stack([t.float().cpu() for t in latents]).contiguous()}
    try:
        return atomic_write(_path(root, key), lambda tmp: save_file(tensors, str(tmp), metadata={"key": key}))
    except StillMovingError as error:
        warnings.warn(f"prior videos not cached: {error}", stacklevel=2)
        return None
