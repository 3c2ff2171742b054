"""Many customizations at once: `stillmoving customize-batch LIST` spreads them over the launched processes.

Each process takes every N-th entry of the list and trains it on its own (one spatial-adapter set per
entry, no gradient exchange between processes), so N GPUs customize N subjects at the speed of one. The
launcher's rank is read from the environment (torchrun / `accelerate launch` set RANK, WORLD_SIZE and
LOCAL_RANK) and then removed, so each run's accelerator sees one process; on CUDA each process keeps
its own local GPU.
"""

from __future__ import annotations

import os
from pathlib import Path

from stillmoving.errors import StillMovingError
from stillmoving.training.config import CustomizeConfig, make_config, read_config_file
from stillmoving.validation import check_training

LAUNCHER_VARIABLES = (
    "RANK",
    "WORLD_SIZE",
    "LOCAL_RANK",
    "LOCAL_WORLD_SIZE",
    "GROUP_RANK",
    "ROLE_RANK",
    "ROLE_WORLD_SIZE",
    "MASTER_ADDR",
    "MASTER_PORT",
    "TORCHELASTIC_RUN_ID",
)


def read_batch(path: str | Path, shared: dict | None = None) -> list[CustomizeConfig]:
    """The list file (JSON or YAML: a list of `customize` configs, or {"defaults": {...}, "runs": [...]}),
    each entry on top of the shared values; output folders must differ."""
    data = read_config_file(path, "batch list")
    if isinstance(data, dict):
        shared, data = {**(shared or {}), **data.get("defaults", {})}, data.get("runs")
    if not isinstance(data, list) or not data or not all(isinstance(entry, dict) for entry in data):
        raise StillMovingError(f"{path}: expected a non-empty list of customize configs (or defaults + runs)")
    configs = [make_config(CustomizeConfig, {**(shared or {}), **entry}) for entry in data]
    for config in configs:
        check_training(config)
    outputs = [str(Path(c.output).resolve()) for c in configs]
    duplicate = next((o for o in outputs if outputs.count(o) > 1), None)
    if duplicate:
        raise StillMovingError(f"{path}: two runs write to {duplicate}; give each its own output")
    return configs


def take_launcher_rank() -> tuple[int, int]:
    """(rank, world size) of this process under torchrun / accelerate launch, then hide them from accelerate.

    The variables are the ones torchrun sets and accelerate reads, tested with torch 2.13.0 and accelerate
    1.15.0 (tests/test_private_apis.py fails when accelerate still sees the launcher's processes).
    """
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    local = os.environ.get("LOCAL_RANK")
    for name in LAUNCHER_VARIABLES:
        os.environ.pop(name, None)
    if local is not None and world > 1 and "CUDA_VISIBLE_DEVICES" not in os.environ:
        os.environ["CUDA_VISIBLE_DEVICES"] = local  # this process's GPU becomes its cuda:0
    return rank, world


def reset_accelerate_state() -> None:
    """Forget this process's accelerate state, so the next run's `Accelerator` starts afresh (its precision
    may differ). accelerate's private API, tested with accelerate 1.15.0 (tests/test_private_apis.py fails
    when it changes); accelerate's own tests reset the state so between runs."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)


def customize_many(configs: list[CustomizeConfig]) -> list[Path]:
    """Train this process's share of `configs` (entries rank, rank + N, ...); returns their adapter files."""
    from stillmoving.training.spatial_stage import train_spatial_adapters

    rank, world = take_launcher_rank()
    written = []
    for cfg in configs[rank::world]:
        written.append(train_spatial_adapters(cfg))
        reset_accelerate_state()  # the next run may differ in precision
    return written
