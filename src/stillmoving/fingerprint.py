"""What identifies a model's weights, cheaply: recorded in the spatial-adapter file (the UNet they trained with)
and in the prior-video cache's key (the V that sampled the videos)."""

from __future__ import annotations

import hashlib

import torch


def weights_fingerprint(model: torch.nn.Module) -> str:
    """A cheap fingerprint of a model's weights: every tensor's name and shape and a few of its values (the
    first and last 8), LoRA adapters left out. Different checkpoints of one architecture differ in it; it is
    not a cryptographic hash of every byte."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        if "lora_" in name:
            continue
        name = name.replace(".base_layer", "")  # the same weight, wrapped by peft or not
        flat = tensor.detach().reshape(-1)
        sample = torch.cat([flat[:8], flat[-8:]]).float().cpu().numpy().round(6)  # dtype-independent
        digest.update(f"{name}{tuple(tensor.shape)}".encode())
        digest.update(sample.tobytes())
    return digest.hexdigest()[:16]


def file_fingerprint(path) -> str:
    """sha256 of a file's bytes (first 16 hex digits): a recorded file that changed is another file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]
