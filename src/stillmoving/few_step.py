"""Few-step motion modules: AnimateLCM and AnimateDiff-Lightning, and the sampling setting they need.

Both are AnimateDiff motion modules distilled to sample in a few steps, and both only do so with their own
scheduler, steps and guidance:

- AnimateLCM (`wangfuyun/AnimateLCM`: a MotionAdapter folder, or `AnimateLCM_sd15_t2v.ckpt`) samples with diffusers'
  `LCMScheduler` on linear betas, 4-8 steps, guidance 1-2, with its spatial LCM LoRA
  (`AnimateLCM_sd15_t2v_lora.safetensors`) on the UNet's spatial layers (diffusers' docs: `load_lora_weights`, weight
  0.8). The LoRA is made to plug into personalized T2Is, so it is fused into V (for prior videos and stage 1) and into
  the customized T2I M1 too, after M1's own LoRAs (for its images); injecting M1 then puts M1 + LCM LoRA into V. A
  customization made of LoRAs alone starts from V's T2I as it was before the LCM LoRA (`FusedLCMLoRA.original`).
- AnimateDiff-Lightning (`ByteDance/AnimateDiff-Lightning`, `animatediff_lightning_{1,2,4,8}step_diffusers.safetensors`:
  a motion-module file in diffusers' MotionAdapter layout, loaded by `--motion-modules FILE`) samples with
  `EulerDiscreteScheduler(timestep_spacing="trailing", beta_schedule="linear")` in the number of steps it was
  distilled for, guidance 1 (no classifier-free guidance).

`--scheduler lcm|lightning` (or any diffusers scheduler class) and `--lcm-lora PATH[:WEIGHT]` name the setting on
every verb that loads V. V's scheduler is swapped in at load, so prior videos, M1's images, validation videos and the
training noise (its betas) all follow it. A `Sampler` (scheduler, LCM LoRA with its file's fingerprint, steps,
guidance) is recorded in the motion adapter's run record and in `customization.json`; `customize` refuses a motion
adapter trained with another setting, and `generate --customization` takes the recorded setting by default and
refuses another, each in one line, unless `--allow-sampler-mismatch`. Only a few-step setting (a scheduler preset or
an LCM LoRA) constrains steps and guidance; runs without one record nothing new and behave as before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import diffusers
import torch

from stillmoving.errors import StillMovingError
from stillmoving.validation import SD_GUIDANCE, SD_STEPS

# --scheduler presets: the diffusers class and what changes in V's scheduler config (diffusers' own recipes).
PRESETS = {
    "lcm": ("LCMScheduler", {"beta_schedule": "linear"}),
    "lightning": ("EulerDiscreteScheduler", {"timestep_spacing": "trailing", "beta_schedule": "linear"}),
}
LORA_FLAG = "--lcm-lora"
OVERRIDE = "--allow-sampler-mismatch"
ADAPTER_NAME = "lcm_lora"  # the peft adapter name while it is loaded, before fusing


def scheduler_from(name: str, config) -> diffusers.SchedulerMixin:
    """A preset (`lcm`, `lightning`) or any diffusers scheduler class by name, on V's noise schedule `config`."""
    if name in PRESETS:
        class_name, overrides = PRESETS[name]
        return getattr(diffusers, class_name).from_config(config, **overrides)
    cls = getattr(diffusers, name, None)
    if cls is None or not hasattr(cls, "from_config") or not name.endswith("Scheduler"):
        raise StillMovingError(
            f"unknown scheduler {name!r} ({', '.join(PRESETS)}, or a diffusers class, e.g. DDIMScheduler, "
            "DPMSolverMultistepScheduler)"
        )
    return cls.from_config(config)


def check_scheduler(name: str | None) -> None:
    """Before any model loads: the name is a preset or a diffusers scheduler class."""
    if name is not None and name not in PRESETS:
        scheduler_from(name, diffusers.DDIMScheduler().config)


# ---- the LCM LoRA --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LCMLoRA:
    """AnimateLCM's spatial LoRA as asked for: a file fused at `weight`; `fingerprint` when read from a record, which
    the file must still have; `fused` when it already is in the weights (an exported folder), with no file."""

    path: str | None
    weight: float = 1.0
    fingerprint: str | None = None
    fused: bool = False

    def record(self) -> dict:
        """The absolute path, the weight and the file's fingerprint (an exported folder: `fused`, no path)."""
        if self.fused:
            return {"path": None, "weight": self.weight, "fingerprint": self.fingerprint, "fused": True}
        from stillmoving.fingerprint import file_fingerprint

        path = lora_path(self.path)
        return {"path": str(path.resolve()), "weight": self.weight, "fingerprint": file_fingerprint(path)}


def parse_lcm_lora(spec) -> LCMLoRA | None:
    """`PATH` or `PATH:WEIGHT` (weight 1 by default), a record's dict, an LCMLoRA, or None."""
    if spec is None or spec == "" or isinstance(spec, LCMLoRA):
        return spec or None
    if isinstance(spec, dict):
        weight = _weight(str(spec.get("weight", 1.0)), str(spec))
        return LCMLoRA(spec.get("path"), weight, spec.get("fingerprint"), bool(spec.get("fused", False)))
    spec = str(spec)
    path, colon, weight = spec.rpartition(":")
    if not colon or Path(spec).exists():
        return LCMLoRA(spec)
    return LCMLoRA(path, _weight(weight, spec))


def _weight(text: str, spec: str) -> float:
    try:
        weight = float(text)
    except ValueError:
        raise StillMovingError(f"bad {LORA_FLAG} {spec!r}: WEIGHT must be a number (PATH or PATH:WEIGHT)") from None
    if not math.isfinite(weight):
        raise StillMovingError(f"bad {LORA_FLAG} {spec!r}: WEIGHT must be a finite number, not {text}")
    return weight


def lora_path(path: str | Path) -> Path:
    """The LoRA file: the path itself, or the one LoRA file in a diffusers or peft folder."""
    from stillmoving.formats.lora_files import lora_file

    if not Path(path).exists():
        raise StillMovingError(f"no such LCM LoRA file: {path}")
    return lora_file(Path(path))


def read_lcm_lora(path: str | Path):
    """The file read and checked (`domain_adapter.AdapterLayers`): a LoRA on UNet layers outside the motion modules,
    in diffusers', peft's or kohya's layout; its state dict is what `load_lora_weights` is given."""
    from stillmoving.formats.domain_adapter import AdapterLayers, layers_of
    from stillmoving.formats.lora_files import is_peft_layout, read_lora
    from stillmoving.formats.safety import read_state_dict

    file = lora_path(path)
    peft = is_peft_layout(read_state_dict(file))
    file, state = read_lora(file)
    layout, layers, state = layers_of(state, file, what="an LCM LoRA")
    return AdapterLayers(file, "peft" if peft else layout, state, layers)


def check_lcm_fits(unet: torch.nn.Module, adapter) -> None:
    """Every layer names a linear or convolution layer of the UNet with the LoRA's input and output widths; else one
    line naming the layer and the shapes."""
    modules = dict(unet.named_modules())
    for module, (down, up) in adapter.layers.items():
        weight = getattr(modules.get(module), "weight", None)
        if weight is None or weight.ndim not in (2, 4):
            raise StillMovingError(
                f"LCM LoRA {adapter.path} does not fit the video model: its layer {module!r} "
                f"{tuple(down.shape)} names no linear or convolution layer of the UNet"
            )
        if down.shape[1] != weight.shape[1] or up.shape[0] != weight.shape[0]:
            raise StillMovingError(
                f"LCM LoRA {adapter.path} does not fit the video model: {module} has down {tuple(down.shape)} and "
                f"up {tuple(up.shape)}, the model's layer is {weight.shape[1]} -> {weight.shape[0]}"
            )


def fuse_lcm_lora(pipe, lora: LCMLoRA, adapter=None) -> dict[str, torch.Tensor]:
    """Fuse the LoRA into `pipe`'s UNet at its weight with diffusers' own `load_lora_weights` + `fuse_lora` +
    `unload_lora_weights` (a video pipeline or a T2I one: the spatial names are the same); returns the weights it
    replaced (on the CPU)."""
    from peft.tuners.lora import LoraLayer

    adapter = adapter or read_lcm_lora(lora.path)
    check_lcm_fits(pipe.unet, adapter)
    original = {f"{m}.weight": pipe.unet.get_submodule(m).weight.detach().to("cpu", copy=True) for m in adapter.layers}
    try:
        pipe.load_lora_weights(dict(adapter.state), adapter_name=ADAPTER_NAME)
    except (ValueError, RuntimeError, KeyError, AttributeError) as error:
        raise StillMovingError(
            f"LCM LoRA {adapter.path} does not fit the video model: {str(error).strip().splitlines()[0][:200]}"
        ) from None
    loaded = sum(isinstance(m, LoraLayer) and ADAPTER_NAME in m.lora_A for m in pipe.unet.modules())
    if loaded != len(adapter.layers):
        pipe.unload_lora_weights()
        raise StillMovingError(
            f"LCM LoRA {adapter.path}: diffusers loaded {loaded} of its {len(adapter.layers)} layers"
        )
    pipe.fuse_lora(components=["unet"], lora_scale=lora.weight, adapter_names=[ADAPTER_NAME])
    pipe.unload_lora_weights()
    return original


@dataclass
class FusedLCMLoRA:
    """The LCM LoRA fused into V: what it was, and V's weights it replaced (to rebuild V's T2I as it was before)."""

    spec: LCMLoRA
    adapter: object  # domain_adapter.AdapterLayers, read once
    original: dict[str, torch.Tensor]

    def restore(self, t2i: torch.nn.Module) -> None:
        target = t2i.state_dict()
        with torch.no_grad():
            for key, value in self.original.items():
                target[key].copy_(value)

    def fuse_into(self, t2i_pipe) -> None:
        """The same LoRA, at the same weight, into a T2I pipeline's UNet (M1)."""
        fuse_lcm_lora(t2i_pipe, self.spec, self.adapter)


# ---- the sampling setting -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sampler:
    """How V samples: a scheduler (preset or class; None: the model's own), an LCM LoRA, steps and guidance."""

    scheduler: str | None = None
    lcm_lora: LCMLoRA | None = None
    steps: int | None = None
    guidance_scale: float | None = None

    @property
    def few_step(self) -> bool:
        return self.scheduler in PRESETS or self.lcm_lora is not None

    @property
    def used(self) -> bool:
        """Anything other than the model's own scheduler without an LCM LoRA: worth recording."""
        return self.scheduler is not None or self.lcm_lora is not None

    def record(self) -> dict:
        lora = self.lcm_lora
        return {
            "scheduler": self.scheduler,
            "lcm_lora": (lora.record() if lora.fingerprint is None else _record_of(lora)) if lora else None,
            "steps": self.steps,
            "guidance_scale": self.guidance_scale,
        }

    def describe(self) -> str:
        """One phrase: 'scheduler lcm, LCM LoRA <path> at 0.8, 4 steps, guidance 1.5'."""
        parts = [f"scheduler {self.scheduler}" if self.scheduler else "the model's own scheduler"]
        lora = self.lcm_lora
        if lora is None:
            parts.append("no LCM LoRA")
        else:
            where = "fused into the folder" if lora.fused else lora.path
            stamp = f" ({lora.fingerprint})" if lora.fingerprint else ""
            parts.append(f"LCM LoRA {where} at {lora.weight:g}{stamp}")
        if self.steps is not None:
            parts.append(f"{self.steps} steps")
        if self.guidance_scale is not None:
            parts.append(f"guidance {self.guidance_scale:g}")
        return ", ".join(parts)


def _record_of(lora: LCMLoRA) -> dict:
    if lora.fused:
        return {"path": None, "weight": lora.weight, "fingerprint": lora.fingerprint, "fused": True}
    return {"path": lora.path, "weight": lora.weight, "fingerprint": lora.fingerprint}


def sampler_of(cfg) -> Sampler:
    """A training config's setting (`--scheduler`, `--lcm-lora`, `--sample-steps`, `--guidance-scale`)."""
    return Sampler(
        getattr(cfg, "scheduler", None),
        parse_lcm_lora(getattr(cfg, "lcm_lora", None)),
        cfg.sample_steps,
        cfg.guidance_scale,
    )


def parse_sampler(record) -> Sampler | None:
    """A record's dict (`customization.json`'s "sampler", a run record's), a Sampler, or None."""
    if record is None or isinstance(record, Sampler):
        return record
    return Sampler(
        record.get("scheduler"),
        parse_lcm_lora(record.get("lcm_lora")),
        record.get("steps"),
        record.get("guidance_scale"),
    )


def with_fingerprint(sampler: Sampler) -> Sampler:
    """The setting with its LCM LoRA's path made absolute and the file's fingerprint read (what records hold)."""
    lora = sampler.lcm_lora
    if lora is None or lora.fused or lora.fingerprint is not None:
        return sampler
    record = lora.record()
    return replace(sampler, lcm_lora=replace(lora, path=record["path"], fingerprint=record["fingerprint"]))


def check_sampler(sampler: Sampler | None) -> None:
    """Before any model loads: the scheduler name, the LCM LoRA file (there, a spatial LoRA) and its pairing."""
    if sampler is None:
        return
    check_scheduler(sampler.scheduler)
    lora = sampler.lcm_lora
    if lora is not None and not lora.fused:
        if sampler.scheduler != "lcm":
            raise StillMovingError(
                f"{LORA_FLAG} is AnimateLCM's spatial LoRA: it samples with --scheduler lcm, not "
                + (sampler.scheduler or "the model's own scheduler")
                + "; add --scheduler lcm"
            )
        read_lcm_lora(lora.path)


def _kind(sampler: Sampler | None) -> str:
    return sampler.scheduler if sampler is not None and sampler.scheduler in PRESETS else "full"


def _same_lora(a: LCMLoRA | None, b: LCMLoRA | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.weight == b.weight and a.fingerprint == b.fingerprint


def differs(recorded: Sampler | None, used: Sampler) -> bool:
    """Whether `used` samples otherwise than `recorded`: another scheduler kind (lcm, lightning, any other), another
    LCM LoRA file or weight, or, for a few-step setting, other steps or guidance. `used` is fingerprinted."""
    if _kind(recorded) != _kind(used):
        return True
    if not _same_lora(recorded.lcm_lora if recorded else None, used.lcm_lora):
        return True
    if recorded is not None and recorded.few_step:
        return recorded.steps != used.steps or recorded.guidance_scale != used.guidance_scale
    return False


def check_same_sampler(recorded: Sampler | None, used: Sampler, what: str, verb: str, allow: bool = False) -> None:
    """Refuse, in one line, a run whose sampling setting differs from the one `what` was trained with."""
    recorded = recorded or Sampler()
    if allow or not differs(recorded, used):
        return
    raise StillMovingError(
        f"{what} was trained with {recorded.describe()}; {verb} would use {used.describe()}. "
        f"Use the recorded setting, or pass {OVERRIDE} to use this one anyway"
    )


def merged(
    recorded: Sampler | None,
    scheduler: str | None,
    lcm_lora,
    steps: int | None,
    guidance: float | None,
    defaults: tuple[int, float] = (SD_STEPS, SD_GUIDANCE),
):
    """`generate`'s setting: each value given, else the recorded one, else `defaults` (the video model's own,
    `validation.native_sampling`: its generation_defaults.json's, else 25 steps and guidance 7.5)."""
    recorded = recorded or Sampler()
    lora = parse_lcm_lora(lcm_lora)
    if lora is not None and recorded.lcm_lora is not None and recorded.lcm_lora.fused:
        raise StillMovingError(
            f"the LCM LoRA is already fused into this exported folder (weight {recorded.lcm_lora.weight:g}); "
            f"drop {LORA_FLAG}"
        )
    return Sampler(
        scheduler or recorded.scheduler,
        lora or recorded.lcm_lora,
        steps if steps is not None else recorded.steps if recorded.steps is not None else defaults[0],
        guidance
        if guidance is not None
        else recorded.guidance_scale
        if recorded.guidance_scale is not None
        else defaults[1],
    )


def resolved_sampler(
    recorded,
    scheduler: str | None,
    lcm_lora,
    steps: int | None,
    guidance: float | None,
    *,
    what: str | None,
    verb: str,
    allow: bool = False,
    defaults: tuple[int, float] = (SD_STEPS, SD_GUIDANCE),
) -> Sampler:
    """A generating verb's setting, before any model loads: each value given, else the `recorded` one (a record's
    dict or a Sampler), else `defaults`, the video model's own (`merged`), checked (`check_sampler`); where `what`
    names the run it was recorded by (a customization), fingerprinted and refused in one line if it differs
    (`check_same_sampler`) unless `allow`."""
    recorded = parse_sampler(recorded)
    sampler = merged(recorded, scheduler, lcm_lora, steps, guidance, defaults)
    check_sampler(sampler)
    if what is None:
        return sampler
    sampler = with_fingerprint(sampler)
    check_same_sampler(recorded, sampler, what, verb, allow)
    return sampler


# ---- on a loaded pipeline ---------------------------------------------------------------------------------------


def apply_sampler(pipe, sampler: Sampler | None) -> None:
    """Swap V's scheduler in (the preset or class), and fuse the LCM LoRA into V's UNet (`pipe.lcm_lora` keeps what
    it replaced). None, or a setting naming neither, does nothing; a record's dict is read first."""
    sampler = parse_sampler(sampler)
    if sampler is None:
        return
    if sampler.scheduler is not None:
        pipe.scheduler = scheduler_from(sampler.scheduler, pipe.scheduler.config)
    lora = sampler.lcm_lora
    if lora is None or lora.fused:
        return
    from stillmoving.backends import ZeroScope, backend_of

    if isinstance(backend_of(pipe), ZeroScope):
        raise StillMovingError(f"{LORA_FLAG}: AnimateLCM's LoRA is for AnimateDiff, not ModelScope/ZeroScope")
    adapter = read_lcm_lora(lora.path)
    record = lora.record()
    if lora.fingerprint is not None and lora.fingerprint != record["fingerprint"]:
        raise StillMovingError(
            f"LCM LoRA {adapter.path} changed since it was recorded (fingerprint {record['fingerprint']}, recorded "
            f"{lora.fingerprint}); put the recorded file back, or pass {LORA_FLAG} PATH and {OVERRIDE} to use this one"
        )
    pipe.lcm_lora = FusedLCMLoRA(lora, adapter, fuse_lcm_lora(pipe, lora, adapter))


def motion_adapter_sampler(motion_adapter: str | Path | None) -> tuple[Path, Sampler | None] | None:
    """The setting a motion adapter was trained with, from the run record `motion-adapter train` wrote beside it
    (None where there is none: an adapter from elsewhere is not checked)."""
    import json

    from stillmoving.adapters.motion import split_adapter_path
    from stillmoving.run_folder import MOTION_ADAPTER_RUN

    if not motion_adapter or not Path(motion_adapter).exists():
        return None
    folder, _ = split_adapter_path(motion_adapter)
    run = folder.parent / MOTION_ADAPTER_RUN
    if not run.is_file():
        return None
    return run, parse_sampler(json.loads(run.read_text()).get("sampler"))
