"""`stillmoving export`: one self-contained folder per customization, loadable by plain diffusers.

The folder is an `AnimateDiffPipeline` (V with the customized T2I's weights injected, its text encoder
when it has one), the spatial-adapter file, the motion adapter when the customization had one, a
`customization.json` whose paths point inside the folder (so `stillmoving generate --customization`
runs from it anywhere) and a README model card. It is built beside the target and renamed into place
in one step, so a failure leaves nothing behind and an existing folder is never overwritten.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from diffusers import AnimateDiffPipeline

from stillmoving.adapters.motion import WEIGHT_NAME, split_adapter_path
from stillmoving.errors import StillMovingError
from stillmoving.files import temporary_sibling
from stillmoving.loading import assemble_pipeline
from stillmoving.run_folder import (
    MOTION_ADAPTER,
    SPATIAL_ADAPTERS,
    exported_customization,
    read_customization,
    write_customization,
)

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
attach_spatial_adapters(pipe, "{name}/{adapters}")
frames = pipe("...", num_frames=16).frames[0]
```

Without the spatial adapters the folder is the *naive injection* of the customized T2I into the video
model; with them it is Still-Moving. The motion adapter is only needed for `--motion-scale` other than 0
(`pipe.load_lora_weights("{name}/{motion_dir}")`, then `pipe.set_adapters([name], [alpha])`).
"""


def _check_target(output: Path) -> None:
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise StillMovingError(f"{output} already exists and is not empty; export into a new folder")


def export_customization(customization: str | Path, output: str | Path) -> Path:
    """Write the self-contained folder for the customization folder `customization` (written by `customize`)."""
    output = Path(output)
    _check_target(output)
    sources = read_customization(customization)
    t2v = assemble_pipeline(
        sources["model"],
        sources.get("motion_modules"),
        sources.get("customized"),
        [tuple(x) for x in sources.get("loras", [])],
        config_dir=sources.get("config_dir"),
        spatial_adapters=sources["spatial_adapters"],
    )  # refuses adapters of another shape
    adapters = t2v.spatial_adapters
    adapters.detach()  # hooks are not saved; the file is copied beside the weights

    staging = temporary_sibling(output, "export")
    try:
        plain = AnimateDiffPipeline(
            vae=t2v.vae,
            text_encoder=t2v.text_encoder,
            tokenizer=t2v.tokenizer,
            unet=t2v.unet,
            motion_adapter=None,
            scheduler=t2v.scheduler,
        )
        plain.save_pretrained(staging, safe_serialization=True)
        shutil.copy2(sources["spatial_adapters"], staging / SPATIAL_ADAPTERS)
        motion = sources.get("motion_adapter")
        if motion:
            folder, name = split_adapter_path(motion)
            (staging / MOTION_ADAPTER).mkdir()
            shutil.copy2(folder / name, staging / MOTION_ADAPTER / WEIGHT_NAME)
        write_customization(staging, exported_customization(sources, motion_adapter=bool(motion)))
        loras = ", ".join(f"`{p}` at {w}" for p, w in sources.get("loras", []))
        (staging / "README.md").write_text(
            CARD.format(
                name=output.name,
                model=sources["model"],
                motion_modules=f" + motion modules `{sources['motion_modules']}`"
                if sources.get("motion_modules")
                else "",
                customized=" + ".join(
                    x for x in (f"`{sources['customized']}`" if sources.get("customized") else "", loras) if x
                ),
                adapters=SPATIAL_ADAPTERS,
                rank=adapters.rank,
                layers=len(adapters.layers),
                motion=f"`{MOTION_ADAPTER}/` (diffusers LoRA format)" if motion else "none",
                motion_dir=MOTION_ADAPTER,
            )
        )
        if output.is_dir():
            output.rmdir()  # empty (checked above)
        os.replace(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return output
