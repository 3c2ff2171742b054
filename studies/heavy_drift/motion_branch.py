"""Adapters where the motion modules read, not where the spatial layers write (session 29, a study switch).

The paper's adapters sit on the spatial layers' outputs, so whatever they change, the look included, flows on through
the residual stream. Here each adapter sits on the output of a motion module's GroupNorm, the input of its temporal
branch only (diffusers' AnimateDiffTransformer3D: norm -> proj_in -> temporal attention -> proj_out, added to the
unnormalised input): the motion modules read changed features, and the residual stream keeps M1's.

`use("train")` makes `SpatialAdapters.for_unet` build these placements only; `use("load")` lets a file of either kind
attach (the spatial layers' placements and these together). The same channel maps, file format and training loop.
"""

import stillmoving.adapters.spatial as spatial

_spatial = spatial.spatial_placements


def branch_placements(unet) -> dict[str, int]:
    """Every motion module's GroupNorm (the input of its temporal branch), mapped to its channels."""
    return {
        name: module.num_channels
        for name, module in unet.named_modules()
        if name.rsplit(".", 1)[-1] == "norm" and ".motion_modules." in name and hasattr(module, "num_groups")
    }


def use(mode: str) -> None:
    if mode == "train":
        spatial.spatial_placements = branch_placements
    else:
        spatial.spatial_placements = lambda unet: {**_spatial(unet), **branch_placements(unet)}
