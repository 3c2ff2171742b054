"""The run folder: the names of what the trainers write into `--output`, and the customization record.

`customize` writes the spatial adapters and `customization.json`, the record of everything needed to rebuild
the customized video model (V's folder or files and its domain adapter, M1, LoRAs, the motion adapter);
`generate --customization`, `compare`, `export` and the web app read it back. `export` writes a record whose paths
lie inside its folder.
"""

from __future__ import annotations

import json
from pathlib import Path

from stillmoving.errors import StillMovingError
from stillmoving.files import write_text

SPATIAL_ADAPTERS = "spatial_adapters.safetensors"  # stage 2's adapters (adapters/spatial.py's format)
CUSTOMIZATION = "customization.json"  # the record `read_customization` reads
MOTION_ADAPTER = "motion_adapter"  # stage 1's adapter, a folder in diffusers' LoRA layout
IMAGES = "images"  # the customized T2I's images that stage 2 trained on
RUN_RECORD = "*_run.json"  # every trainer's record of a finished run (settings, losses, counts)
CUSTOMIZE_RUN = "customize_run.json"
MOTION_ADAPTER_RUN = "motion_adapter_run.json"
DREAMBOOTH_RUN = "dreambooth_run.json"
STYLE_LORA_RUN = "style_lora_run.json"
PATH_KEYS = ("model", "motion_modules", "config_dir", "customized", "motion_adapter")  # the record's paths
SPATIAL_BLOCKS = "spatial_blocks"  # the record's parts of the UNet whose adapters generate applies (absent: all)
SPATIAL_BLOCKS_WHY = "spatial_blocks_why"  # and why (customize's check), which generate and info print


def absolute(path: str | None) -> str | None:
    """Local paths recorded absolute so the record works from any folder; Hub ids and None as they are."""
    return str(Path(path).resolve()) if path and Path(path).exists() else path


def customization_sources(cfg) -> dict:
    """What rebuilds the customized model, from a `CustomizeConfig`: V (with its domain adapter's path, scale and
    file fingerprint), M1, its LoRAs and the motion adapter; and the sampling setting (`few_step.Sampler`: scheduler,
    LCM LoRA, steps, guidance) that `generate` then takes by default (and checks, for a few-step one), always: the
    end-of-run check judged the adapters at it, and a video model's own defaults (`validation.native_sampling`) may
    change after the run. A record without one (before session 25) samples at the video model's defaults."""
    from stillmoving.few_step import sampler_of, with_fingerprint
    from stillmoving.formats.domain_adapter import parse_domain_adapter

    domain = parse_domain_adapter(cfg.domain_adapter)
    return {
        "model": absolute(cfg.model),
        "motion_modules": absolute(cfg.motion_modules),
        "config_dir": absolute(cfg.config_dir),
        "domain_adapter": domain.record() if domain else None,
        "customized": absolute(cfg.customized),
        "loras": [[absolute(p), w] for p, w in cfg.lora],
        "motion_adapter": absolute(cfg.motion_adapter),
        "sampler": with_fingerprint(sampler_of(cfg)).record(),
    }


def write_customization(folder: Path, record: dict) -> Path:
    """`customization.json` in `folder` (atomically): `customization_sources` plus the adapter file's name, or
    `exported_customization`."""
    return write_text(folder / CUSTOMIZATION, json.dumps(record, indent=2) + "\n")


def load_record(folder: str | Path) -> dict:
    """`folder`'s `customization.json` as written, or one error naming it when it is not a JSON object."""
    record = Path(folder) / CUSTOMIZATION
    try:
        sources = json.loads(record.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise StillMovingError(f"{record} is not a valid record ({error})") from None
    if not isinstance(sources, dict):
        raise StillMovingError(f"{record} is not a valid record (not a JSON object)")
    return sources


def record_spatial_blocks(folder: Path, blocks: str, why: str) -> Path:
    """Add to `folder`'s `customization.json` the parts of the UNet (`--spatial-blocks`) whose adapters `generate
    --customization` applies when not told otherwise, and why (customize's end-of-run check, `naive_check`)."""
    return write_customization(Path(folder), {**load_record(folder), SPATIAL_BLOCKS: blocks, SPATIAL_BLOCKS_WHY: why})


def exported_customization(sources: dict, motion_adapter: bool) -> dict:
    """The record of an exported folder: V is the folder itself, M1 is injected into it, the adapters lie in it; a
    sampling setting stays (its scheduler is the folder's, its LCM LoRA is fused into the folder's UNet)."""
    sampler = sources.get("sampler")
    if sampler:
        lora = sampler.get("lcm_lora")
        sampler = {**sampler, "lcm_lora": {**lora, "path": None, "fused": True} if lora else None}
    return {
        "model": ".",
        "motion_modules": None,
        "config_dir": None,
        "domain_adapter": None,  # M1 injected into the folder replaced every weight the adapter changed
        "customized": None,
        "loras": [],
        "spatial_adapters": SPATIAL_ADAPTERS,
        "motion_adapter": MOTION_ADAPTER if motion_adapter else None,
        **({"sampler": sampler} if sampler else {}),
        **{k: sources[k] for k in (SPATIAL_BLOCKS, SPATIAL_BLOCKS_WHY) if sources.get(k)},  # the same adapters
        "exported_from": sources,
    }


def check_fields(record: Path, sources: dict) -> None:
    """The fields every reader of a record uses, each of its kind, or one error naming the file and the field: a
    record edited by hand, or cut short, must not end in a traceback."""

    def refuse(why: str):
        raise StillMovingError(f"{record} is not a valid record ({why}; write it again with customize)")

    for key in ("model", "spatial_adapters"):
        if not isinstance(sources.get(key), str) or not sources[key]:
            refuse(f"no {key!r}")
    for key in PATH_KEYS:
        if sources.get(key) is not None and not isinstance(sources[key], str):
            refuse(f"{key!r} is not a path")
    loras = sources.get("loras", [])
    pairs = isinstance(loras, list) and all(
        isinstance(x, list) and len(x) == 2 and isinstance(x[0], str) and type(x[1]) in (int, float) for x in loras
    )
    if not pairs:
        refuse("'loras' is not a list of [path, weight]")


def read_customization(folder: str | Path) -> dict:
    """The record `customize` writes: model, motion modules, customized T2I, LoRAs, adapters."""
    record = Path(folder) / CUSTOMIZATION
    if not record.is_file():
        raise StillMovingError(f"{folder} is not a customization folder (no {CUSTOMIZATION})")
    sources = load_record(folder)
    check_fields(record, sources)
    if sources.get(SPATIAL_BLOCKS) is not None:  # refused as the record's, not as an option the user never gave
        from stillmoving.adapters.spatial import parse_blocks  # here: it imports diffusers, slow to load

        parse_blocks(str(sources[SPATIAL_BLOCKS]), f"{record}: {SPATIAL_BLOCKS}")
    sources["spatial_adapters"] = str(Path(folder) / sources["spatial_adapters"])
    for key in PATH_KEYS:
        value = sources.get(key)  # an exported folder records paths inside itself, relative to it
        if value and not Path(value).is_absolute() and (Path(folder) / value).exists():
            sources[key] = str(Path(folder) / value)
    return sources


def model_files(sources: dict) -> dict:
    """`assemble_pipeline`'s model arguments from a record read by `read_customization`."""
    return dict(
        model=sources.get("model"),
        motion_modules=sources.get("motion_modules"),
        customized=sources.get("customized"),
        loras=[tuple(x) for x in sources.get("loras", [])],
        spatial_adapters=sources.get("spatial_adapters"),
        motion_adapter=sources.get("motion_adapter") or None,
        config_dir=sources.get("config_dir"),
        domain_adapter=sources.get("domain_adapter"),
        sampler=sources.get("sampler"),
        spatial_blocks=sources.get(SPATIAL_BLOCKS),
    )


def merge_customization(given: dict, sources: dict) -> dict:
    """`generate --customization` with flags: each of the user's files, else the record's; the record's
    `spatial_blocks` only with the record's own adapters."""
    recorded = model_files(sources)
    if given.get("spatial_adapters"):
        recorded["spatial_blocks"] = None
    return {key: given.get(key) or recorded[key] for key in recorded}
