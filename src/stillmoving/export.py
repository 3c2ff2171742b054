"""`stillmoving export`: one self-contained folder per customization, loadable by plain diffusers.

The folder is an `AnimateDiffPipeline` (an `AnimateDiffSDXLPipeline` for AnimateDiff-SDXL, a `TextToVideoSDPipeline`
for ModelScope/ZeroScope: V with the customized
T2I's weights injected, its text encoders when it has its own), the spatial-adapter file, the motion adapter when
the customization had one, a `customization.json` whose paths point inside the folder (so `stillmoving generate
--customization` runs from it anywhere) and a README model card. The card also records what a plain diffusers user
needs for conditional generation and long videos: any ControlNet given to `export --controlnet` is saved beside the
weights (diffusers layout, `controlnet/`, or `controlnet_0/`, `controlnet_1/`, ...) with its scale, and the card
shows diffusers' ControlNet, video-to-video and FreeNoise calls on this folder. It is built beside the target and
renamed into place in one step, so a failure leaves nothing behind and an existing folder is never overwritten.
With `--base-t2i` the folder holds delta injection instead (V + (M1 - M), `generate --base-t2i`): a plain video model
that `generate --model` reads, without the spatial adapters or a customization record.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from stillmoving.adapters.motion import WEIGHT_NAME, split_adapter_path
from stillmoving.backends import SDXL, ZeroScope, backend_of
from stillmoving.conditioning import ControlNetSpec, check_controlnet_source, load_controlnet
from stillmoving.errors import StillMovingError
from stillmoving.files import temporary_sibling
from stillmoving.injection import t2i_config
from stillmoving.loading import assemble_pipeline
from stillmoving.run_folder import (
    MOTION_ADAPTER,
    SPATIAL_ADAPTERS,
    SPATIAL_BLOCKS,
    exported_customization,
    read_customization,
    write_customization,
)
from stillmoving.validation import GENERATION_DEFAULTS

CARD = """# {name}

A Still-Moving customization exported by `stillmoving export`: an AnimateDiff text-to-video model with a
customized text-to-image model's weights injected, plus the spatial adapters trained for it.

- video model: `{model}`{motion_modules}
- customized T2I: {customized}
- spatial adapters: `{adapters}` (rank {rank}, {layers} layers)
- motion adapter: {motion}

## Use it

```bash
stillmoving generate --customization {name} --prompt "..." -o video.mp4 [--motion-scale -0.5]
```

or with diffusers alone plus this package's adapter hook:

```python
from diffusers import AnimateDiffPipeline
from stillmoving import attach_spatial_adapters

pipe = AnimateDiffPipeline.from_pretrained("{name}")
attach_spatial_adapters(pipe, "{name}/{adapters}"){keep_blocks}
frames = pipe("...", num_frames=16).frames[0]
```

(`stillmoving.{stillmoving_pipeline}.from_pretrained("{name}")` attaches them itself{blocks_note}, and the motion
adapter, for `motion_scale`.) Without the spatial adapters the folder is the *naive injection* of the customized T2I
into the video model; with them it is Still-Moving. The motion adapter is only needed for `--motion-scale` other than 0
(`pipe.load_lora_weights("{name}/{motion_dir}")`, then `pipe.set_adapters([name], [alpha])`).

## Conditional generation and long videos

ControlNets: {controlnets}

```bash
stillmoving generate --customization {name} --prompt "..." -o video.mp4 \\
    --controlnet {controlnet_path}:1.0 --control-video pose.mp4      # one conditioning frame per output frame
stillmoving generate --customization {name} --prompt "..." -o video.mp4 --video input.mp4 --strength 0.6
stillmoving generate --customization {name} --prompt "..." -o long.mp4 --num-frames 48 --context-length 16
```

or with diffusers alone (the adapters attach to any of its AnimateDiff pipelines' UNet):

```python
from diffusers import AnimateDiffControlNetPipeline, AnimateDiffVideoToVideoPipeline, ControlNetModel
from stillmoving import attach_spatial_adapters

controlnet = ControlNetModel.from_pretrained("{controlnet_path}")
pipe = AnimateDiffControlNetPipeline.from_pretrained("{name}", controlnet=controlnet, motion_adapter=None)
attach_spatial_adapters(pipe, "{name}/{adapters}"){keep_blocks}
frames = pipe("...", conditioning_frames=control_frames, controlnet_conditioning_scale={first_scale}).frames[0]

v2v = AnimateDiffVideoToVideoPipeline.from_pipe(pipe)  # the same modules, adapters included
frames = v2v(prompt="...", video=input_frames, strength=0.6).frames[0]

# Long videos, FreeNoise: diffusers 0.42 reads the context limit from a MotionAdapter's config, which this folder
# keeps inside the UNet, and rebuilds the motion modules' blocks with a strict load: set the limit, enable FreeNoise,
# and only then load the motion adapter (a LoRA loaded before breaks that load).
from types import SimpleNamespace
pipe.motion_adapter = SimpleNamespace(config=SimpleNamespace(motion_max_seq_length={max_frames}))
pipe.enable_free_noise(context_length={context}, context_stride=4)
pipe.motion_adapter = None
pipe.load_lora_weights("{name}/{motion_dir}", adapter_name="motion")  # optional: alpha != 0
pipe.set_adapters(["motion"], [-0.5])
```
"""


# AnimateDiff-SDXL: the same card for diffusers' SDXL pipeline, without the conditional section (no such pipelines).
SDXL_CARD = (
    CARD.split("## Conditional generation")[0]
    .replace("an AnimateDiff text-to-video model", "an AnimateDiff-SDXL text-to-video model")
    .replace("AnimateDiffPipeline", "AnimateDiffSDXLPipeline")
    .replace('from_pretrained("{name}")', 'from_pretrained("{name}", motion_adapter=None)')  # required by SDXL's
    + "diffusers 0.42 has no ControlNet, video-to-video or FreeNoise pipeline for AnimateDiff-SDXL.\n"
)

# ModelScope/ZeroScope: diffusers' TextToVideoSDPipeline, whose UNet3DConditionModel lacks diffusers' peft methods
# (its load_lora_weights fails with an AttributeError): the motion adapter loads through stillmoving.
ZEROSCOPE_CARD = (
    CARD.split("## Conditional generation")[0]
    .replace("an AnimateDiff text-to-video model", "a ModelScope/ZeroScope text-to-video model")
    .replace("AnimateDiffPipeline", "TextToVideoSDPipeline")
    .replace(
        '(`pipe.load_lora_weights("{name}/{motion_dir}")`, then `pipe.set_adapters([name], [alpha])`).',
        "(with `from stillmoving.adapters.motion import MotionLoRA`:\n"
        '`MotionLoRA.load(pipe.unet, "{name}/{motion_dir}").set_scale(alpha)`; diffusers 0.42\'s `load_lora_weights`\n'
        "fails on a UNet3DConditionModel, which lacks its peft methods).",
    )
    + "diffusers 0.42 has no ControlNet or FreeNoise pipeline for ModelScope/ZeroScope.\n"
)


CARDS = {SDXL: SDXL_CARD, ZeroScope: ZEROSCOPE_CARD}

# `export --base-t2i`: delta injection, a plain video model with no spatial adapters and no customization record.
DELTA_CARD = """# {name}

A customized text-to-image model put into a text-to-video model by *delta injection*, exported by `stillmoving export
--base-t2i`: the video model's own spatial weights plus the customization, V + (M1 - M), with M the T2I the
customized T2I M1 was made from. Where V's spatial layers trained further on videos (a jointly trained model, or a
domain adapter), this keeps what that training added, where naive injection puts M1's weights in their place. It is
a plain video model: no spatial adapters (they trained with M1 in place of V's spatial weights).

- video model: `{model}`{motion_modules}
- customized T2I: {customized}
- base T2I (M): `{base}`
- motion adapter: {motion}
- ControlNets: {controlnets}

## Use it

```bash
stillmoving generate --model {name} --prompt "..." -o video.mp4
stillmoving generate --model {name} --motion-adapter {name}/{motion_dir} --motion-scale -0.5 --prompt "..." -o more.mp4
```

or with diffusers alone:

```python
from diffusers import {pipeline}

pipe = {pipeline}.from_pretrained("{name}"{load_arguments})
frames = pipe("...").frames[0]
```
"""


def sampler_card(sampler: dict | None, name: str, record: bool = True) -> str:
    """The card's opening note on a recorded sampling setting: a few-step one (AnimateLCM, AnimateDiff-Lightning) it
    must be sampled with, or the steps and guidance its check judged; nothing without one. `record`: the folder has a
    customization record, which `generate --customization` reads (delta injection's folder has none)."""
    if not sampler:
        return ""
    from stillmoving.few_step import parse_sampler

    setting = parse_sampler(sampler)
    if not setting.few_step and not record:  # the checked steps and guidance belong to the adapters it has not
        return ""
    if not setting.few_step:  # steps and guidance only: generate's defaults for the folder, not a constraint
        return (
            f"<!-- sampling setting: {setting.describe()} -->\n"
            f"`{name}` was checked against naive injection at {setting.steps} steps and guidance "
            f"{setting.guidance_scale:g}; `stillmoving generate --customization` uses them unless told otherwise.\n\n"
        )
    lora = setting.lcm_lora
    return (
        f"<!-- sampling setting: {setting.describe()} -->\n"
        f"Sample `{name}` as it was trained: its saved scheduler ({setting.scheduler or 'its own'}), "
        f"{setting.steps} steps, guidance {setting.guidance_scale:g}"
        + (f"; AnimateLCM's LCM LoRA is fused into its UNet at {lora.weight:g}" if lora else "")
        + (". `stillmoving generate --customization` uses that setting by default and refuses another" * record)
        + ".\n\n"
    )


def _check_target(output: Path) -> None:
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise StillMovingError(f"{output} already exists and is not empty; export into a new folder")


def _controlnet_names(count: int) -> list[str]:
    return ["controlnet"] if count == 1 else [f"controlnet_{i}" for i in range(count)]


def export_customization(
    customization: str | Path, output: str | Path, controlnets: list[ControlNetSpec] = (), base_t2i: str | None = None
) -> Path:
    """Write the self-contained folder for the customization folder `customization` (written by `customize`),
    with the given ControlNets (folders or single files) saved beside it in diffusers' layout. With `base_t2i`, the T2I
    its customized T2I was made from: delta injection instead (`generate --base-t2i`), a plain video model folder
    without the spatial adapters or a customization record (`DELTA_CARD`)."""
    from stillmoving.validation import check_base_t2i

    output = Path(output)
    _check_target(output)
    for spec in controlnets:
        check_controlnet_source(spec)
    sources = read_customization(customization)
    check_base_t2i(base_t2i, sources.get("customized"), sources.get("loras"), None)
    t2v = assemble_pipeline(
        sources["model"],
        sources.get("motion_modules"),
        sources.get("customized"),
        [tuple(x) for x in sources.get("loras", [])],
        config_dir=sources.get("config_dir"),
        spatial_adapters=None if base_t2i else sources["spatial_adapters"],
        domain_adapter=sources.get("domain_adapter"),
        sampler=sources.get("sampler"),  # its scheduler is saved, its LCM LoRA fused into M1 and so into the UNet
        base_t2i=base_t2i,
    )  # refuses adapters of another shape
    backend = backend_of(t2v)
    if isinstance(backend, SDXL) and controlnets:
        raise StillMovingError("export --controlnet: diffusers has no AnimateDiff-SDXL ControlNet pipeline")
    if isinstance(backend, ZeroScope) and controlnets:
        raise StillMovingError("export --controlnet: diffusers has no ModelScope/ZeroScope ControlNet pipeline")
    adapters = t2v.spatial_adapters
    if adapters is not None:
        adapters.detach()  # hooks are not saved; the file is copied beside the weights
    nets = [load_controlnet(spec, t2i_config(t2v.unet), t2v.vae_scale_factor) for spec in controlnets]
    net_names = _controlnet_names(len(nets))

    staging = temporary_sibling(output, "export")
    try:
        plain = backend.plain_pipeline()
        plain.save_pretrained(staging, safe_serialization=True)
        defaults = Path(sources["model"]) / GENERATION_DEFAULTS  # the video model's own frames, steps and guidance
        if defaults.is_file():
            shutil.copy2(defaults, staging / GENERATION_DEFAULTS)
        if adapters is not None:
            shutil.copy2(sources["spatial_adapters"], staging / SPATIAL_ADAPTERS)
        motion = sources.get("motion_adapter")
        if motion:
            folder, name = split_adapter_path(motion)
            (staging / MOTION_ADAPTER).mkdir()
            shutil.copy2(folder / name, staging / MOTION_ADAPTER / WEIGHT_NAME)
        for net, net_name in zip(nets, net_names):
            net.save_pretrained(staging / net_name, safe_serialization=True)
        if adapters is not None:  # delta injection's folder is a plain video model: `generate --model` reads it
            write_customization(staging, exported_customization(sources, motion_adapter=bool(motion)))
        loras = ", ".join(f"`{p}` at {w}" for p, w in sources.get("loras", []))
        fields = dict(
            name=output.name,
            model=sources["model"],
            motion_modules=f" + motion modules `{sources['motion_modules']}`" if sources.get("motion_modules") else "",
            customized=" + ".join(
                x for x in (f"`{sources['customized']}`" if sources.get("customized") else "", loras) if x
            ),
            motion=f"`{MOTION_ADAPTER}/` (diffusers LoRA format)" if motion else "none",
            motion_dir=MOTION_ADAPTER,
            controlnets=", ".join(
                f"`{n}/` (from `{spec.path}`, scale {spec.scale:g})" for n, spec in zip(net_names, controlnets)
            )
            or "none exported (`stillmoving export --controlnet PATH[:SCALE]` saves one here)",
        )
        if adapters is None:
            sdxl = ", motion_adapter=None" if isinstance(backend, SDXL) else ""  # required by SDXL's (SDXL_CARD)
            card = DELTA_CARD.format(**fields, base=base_t2i, pipeline=type(plain).__name__, load_arguments=sdxl)
        else:
            blocks = sources.get(SPATIAL_BLOCKS)  # customize's check's choice, which generate applies
            card = CARDS.get(type(backend), CARD).format(
                **fields,
                keep_blocks=f'.keep_blocks_("{blocks}")  # the blocks customize\'s check recorded' if blocks else "",
                blocks_note=f", in the blocks recorded ({blocks})" if blocks else "",
                stillmoving_pipeline=backend.pipeline_class().__name__,
                adapters=SPATIAL_ADAPTERS,
                rank=adapters.rank,
                layers=len(adapters.layers),
                controlnet_path=f"{output.name}/{net_names[0]}" if nets else "path/to/controlnet",
                first_scale=f"{controlnets[0].scale:g}" if nets else "1.0",
                max_frames=t2v.unet.config.get("motion_max_seq_length") or 32,
                context=min(16, t2v.unet.config.get("motion_max_seq_length") or 32),
            )
        note = sampler_card(sources.get("sampler"), output.name, record=adapters is not None)
        (staging / "README.md").write_text(note + card)
        if output.is_dir():
            output.rmdir()  # empty (checked above)
        os.replace(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return output
