"""What an adapter file holds, for `stillmoving info`: kind, rank, layers, metadata."""

from __future__ import annotations

import json
import re
from pathlib import Path

from stillmoving.adapters.motion import TARGET_PATTERN, WEIGHT_NAME
from stillmoving.adapters.spatial import FORMAT, read_adapter_file
from stillmoving.errors import StillMovingError
from stillmoving.training.spatial_stage import ADAPTER_FILE

LORA_KEY = re.compile(r"unet\.(.+)\.lora_([AB])\.weight")


def _resolve(path: Path) -> Path:
    """A folder stands for the adapter file inside it."""
    if path.is_dir():
        for name in (ADAPTER_FILE, WEIGHT_NAME):
            if (path / name).is_file():
                return path / name
        raise StillMovingError(f"{path} holds no {ADAPTER_FILE} or {WEIGHT_NAME}")
    return path


def describe_file(path: str | Path) -> dict:
    """A summary dict of a spatial-adapter file, a motion-adapter file, or any other safetensors file."""
    path = _resolve(Path(path))
    metadata, tensors = read_adapter_file(path)
    summary = {"file": str(path), "tensors": len(tensors), "parameters": sum(t.numel() for t in tensors.values())}
    if metadata.get("format") == FORMAT:
        placements = json.loads(metadata["placements"])
        extra = {k: json.loads(v) for k, v in metadata.items()
                 if k not in ("format", "format_version", "rank", "placements")}
        return {**summary, "kind": "spatial adapters", "format_version": metadata.get("format_version"),
                "rank": int(metadata["rank"]), "layers": len(placements),
                "placements": [f"{name} ({channels} ch)" for name, channels in placements], **extra}
    lora = {m.group(1): t for k, t in tensors.items() if (m := LORA_KEY.fullmatch(k)) and m.group(2) == "A"}
    if lora and all(re.fullmatch(TARGET_PATTERN, name) for name in lora):
        ranks = sorted({t.shape[0] for t in lora.values()})
        return {**summary, "kind": "motion adapter (LoRA on temporal attention q/k/v, diffusers format)",
                "rank": ranks[0] if len(ranks) == 1 else ranks, "layers": len(lora)}
    if lora:
        return {**summary, "kind": "LoRA (diffusers format)", "layers": len(lora)}
    return {**summary, "kind": "unknown safetensors file"}
