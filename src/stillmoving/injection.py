"""Weight injection: put a customized T2I UNet's weights into the T2V's spatial layers.

An AnimateDiff `UNetMotionModel` is an SD1.5-shaped `UNet2DConditionModel` with motion modules inserted;
its spatial parameters carry the same names, so the customized UNet's state dict loads into it directly.
Everything is checked first: a UNet of another architecture is refused with the first key that does
not fit, and the only keys of the video model left untouched are the motion-module keys.
"""

from __future__ import annotations

import inspect

import torch
from diffusers import UNet2DConditionModel, UNetMotionModel

from stillmoving.errors import StillMovingError

MOTION_KEY = "motion_modules."
# A ModelScope/ZeroScope UNet3DConditionModel's temporal layers: convolutions and attentions beside each spatial
# layer, and the temporal transformer after conv_in. A UNetMotionModel has none of them.
TEMPORAL_3D_KEYS = (".temp_convs.", ".temp_attentions.")
TEMPORAL_3D_INPUT = "transformer_in."


def is_motion_key(key: str) -> bool:
    """A temporal layer's key (AnimateDiff's motion modules, a UNet3D's temporal layers): not the T2I's."""
    return MOTION_KEY in key or key.startswith(TEMPORAL_3D_INPUT) or any(t in key for t in TEMPORAL_3D_KEYS)


def spatial_state_dict(unet: UNetMotionModel) -> dict[str, torch.Tensor]:
    """The video UNet's T2I part: every parameter and buffer outside the motion modules."""
    return {k: v for k, v in unet.state_dict().items() if not is_motion_key(k)}


ADDED_EMBEDDING = "add_embedding.linear_1.weight"  # SDXL's embedding of the pooled text and the time ids
CROSS_ATTENTION = "attn2.to_k.weight"  # its input width is the text's: 768 SD1.x, 1024 SD2.x, 2048 SDXL
WIDTHS = {768: "SD1.x", 1024: "SD2.x", 2048: "SDXL"}


def family_name(width: int | None, sdxl: bool | None = None) -> str:
    """A Stable Diffusion family in words, from its text width (cross-attention input) where it is a released one's,
    else from `sdxl` (SDXL-shaped or not; None: unknown): "SDXL (cross-attention 2048)"."""
    name = WIDTHS.get(width) or {True: "SDXL", False: "SD1.x/SD2.x", None: "another family"}[sdxl]
    return f"{name} (cross-attention {width})" if width else name


def _family(state: dict[str, torch.Tensor]) -> str:
    width = next((int(v.shape[-1]) for k, v in state.items() if k.endswith(CROSS_ATTENTION)), None)
    return family_name(width, ADDED_EMBEDDING in state)


def check_same_family(unet: torch.nn.Module, t2i_state: dict[str, torch.Tensor], label: str = "") -> None:
    """Refuse, in one line naming both families, a customized UNet of SDXL (with its added embedding of the pooled
    text and time ids) for a video model whose T2I is SD1.x/SD2.x, or the reverse; with the first cross-attention
    key whose shape differs, or the added embedding's key."""
    target = spatial_state_dict(unet)
    if (ADDED_EMBEDDING in t2i_state) == (ADDED_EMBEDDING in target):
        return
    theirs, ours = _family(t2i_state), _family(target)
    key = next(
        (k for k, v in t2i_state.items() if k.endswith(CROSS_ATTENTION) and k in target and target[k].shape != v.shape),
        None,
    )
    if key is not None:
        detail = f"{key} has shape {tuple(t2i_state[key].shape)}, the video model expects {tuple(target[key].shape)}"
    elif ADDED_EMBEDDING in t2i_state:
        detail = f"it has {ADDED_EMBEDDING} {tuple(t2i_state[ADDED_EMBEDDING].shape)}, which the video model lacks"
    else:
        detail = f"it lacks {ADDED_EMBEDDING} {tuple(target[ADDED_EMBEDDING].shape)}"
    video = f"the {label} video model" if label else "the video model"
    raise StillMovingError(
        f"customized UNet does not fit {video}: it is {theirs}, the video model's T2I {ours}; {detail}. "
        f"Give a customization made for {ours.split(' (')[0]}"
    )


def check_t2i_fits(unet: UNetMotionModel, t2i_state: dict[str, torch.Tensor]) -> None:
    """Raise, naming the first mismatching key and shapes, unless `t2i_state` covers exactly the spatial keys
    (a UNet of the other family, SDXL or SD1.x/SD2.x, first: `check_same_family`)."""
    check_same_family(unet, t2i_state)
    target = spatial_state_dict(unet)
    for key, value in t2i_state.items():
        if key not in target:
            raise StillMovingError(
                f"customized UNet does not fit the video model: it has key {key!r} "
                f"{tuple(value.shape)}, which the video model lacks (another architecture?)"
            )
        if target[key].shape != value.shape:
            raise StillMovingError(
                f"customized UNet does not fit the video model: {key} has shape "
                f"{tuple(value.shape)}, the video model expects {tuple(target[key].shape)}"
            )
    missing = [key for key in target if key not in t2i_state]
    if missing:
        raise StillMovingError(
            f"customized UNet does not fit the video model: it lacks {missing[0]!r} "
            f"{tuple(target[missing[0]].shape)} ({len(missing)} keys missing)"
        )


def inject_t2i_weights(unet: UNetMotionModel, t2i: UNet2DConditionModel | dict[str, torch.Tensor]) -> None:
    """Overwrite the video UNet's spatial weights with the customized T2I's (in place, same dtype/device)."""
    state = t2i.state_dict() if isinstance(t2i, torch.nn.Module) else t2i
    check_t2i_fits(unet, state)
    result = unet.load_state_dict(state, strict=False)
    untouched = [k for k in result.missing_keys if not is_motion_key(k)]
    if untouched or result.unexpected_keys:  # check_t2i_fits makes this unreachable; keep the promise explicit
        raise StillMovingError(f"injection left spatial keys untouched: {(untouched + result.unexpected_keys)[:3]}")


def t2i_config(unet: UNetMotionModel) -> dict:
    """UNet2DConditionModel config equivalent to the video UNet's spatial part (inverse of `from_unet2d`)."""
    config = dict(unet.config)
    config["down_block_types"] = [
        "CrossAttnDownBlock2D" if "CrossAttn" in t else "DownBlock2D" for t in config["down_block_types"]
    ]
    config["up_block_types"] = [
        "CrossAttnUpBlock2D" if "CrossAttn" in t else "UpBlock2D" for t in config["up_block_types"]
    ]
    # SD1.5 configs store the head count under `attention_head_dim`; from_unet2d renamed it.
    config["attention_head_dim"] = config.pop("num_attention_heads")
    accepted = inspect.signature(UNet2DConditionModel.__init__).parameters
    return {k: v for k, v in config.items() if k in accepted}


def t2i_unet_from_t2v(unet: UNetMotionModel) -> UNet2DConditionModel:
    """The T2I UNet M that the video model was inflated from, rebuilt from its spatial weights."""
    t2i = UNet2DConditionModel(**t2i_config(unet))
    state = spatial_state_dict(unet)
    result = t2i.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise StillMovingError(
            f"cannot rebuild the T2I UNet of this video model: {(result.missing_keys + result.unexpected_keys)[:3]}"
        )
    return t2i.to(device=unet.device, dtype=unet.dtype)


def relative_distance(base: dict[str, torch.Tensor], other: dict[str, torch.Tensor]) -> float:
    """||W_other - W_base|| / ||W_base|| over `base`'s tensors (Frobenius norms, in float32): how far a
    customization (or a further-trained video model) moved from the weights it started from."""
    change = sum(float((other[k].float() - w.float()).pow(2).sum()) for k, w in base.items())
    return (change / sum(float(w.float().pow(2).sum()) for w in base.values())) ** 0.5


def _check_same_layout(base: dict[str, torch.Tensor], customized: dict[str, torch.Tensor], what: str) -> None:
    """Both state dicts have the same keys and shapes, or one line naming the first that differs."""
    if base.keys() != customized.keys():
        odd = sorted(base.keys() ^ customized.keys())
        raise StillMovingError(f"cannot {what}: {odd[0]!r} is in one model only ({len(odd)} keys differ)")
    for key, theta in customized.items():
        if theta.shape != base[key].shape:
            raise StillMovingError(
                f"cannot {what}: {key} is {tuple(base[key].shape)} in the base "
                f"and {tuple(theta.shape)} in the customized model"
            )


def interpolate_weights(
    base: dict[str, torch.Tensor], customized: dict[str, torch.Tensor], weight: float
) -> dict[str, torch.Tensor]:
    """Weight interpolation, the paper's baseline between naive injection and the base T2V:
    theta = theta_M + w (theta_M1 - theta_M) for every floating-point tensor (w = 0: the base T2I M, w = 1: the
    customized M1); integer buffers (position ids) are M1's. Both state dicts must have the same keys and shapes."""
    _check_same_layout(base, customized, "interpolate weights")
    return {
        key: torch.lerp(base[key].to(theta), theta, weight) if theta.is_floating_point() else theta
        for key, theta in customized.items()
    }


def delta_weights(
    own: dict[str, torch.Tensor], base: dict[str, torch.Tensor], customized: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Delta injection: the customization M1 - M added to V's own T2I part, theta_V + (theta_M1 - theta_M), for
    every floating-point tensor (integer buffers are M1's); where V's spatial layers are M (an inflated model) it is
    M1 exactly, naive injection. For a video model whose spatial layers trained further on videos (docs/method.md,
    "Delta injection on the jointly trained model"). The three state dicts must have the same keys and shapes."""
    _check_same_layout(base, customized, "inject the difference from --base-t2i")
    _check_same_layout(own, customized, "inject the difference from --base-t2i into the video model")
    return {
        key: theta + (own[key].to(theta) - base[key].to(theta)) if theta.is_floating_point() else theta
        for key, theta in customized.items()
    }
