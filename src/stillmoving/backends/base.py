"""What every family's backend answers (`backends/__init__.py`); the defaults are AnimateDiff's (a
`UNetMotionModel`: spatial layers named as in the T2I's UNet2DConditionModel, motion modules beside them)."""

from __future__ import annotations

import torch

from stillmoving.adapters.motion import motion_target_modules
from stillmoving.adapters.spatial import spatial_placements
from stillmoving.errors import StillMovingError
from stillmoving.injection import check_t2i_fits, spatial_state_dict, t2i_config, t2i_unet_from_t2v


class Backend:
    """One video model's family, bound to a loaded pipeline (`pipe`)."""

    name = "base"
    label = "base"  # what messages call the family

    def __init__(self, pipe):
        self.pipe = pipe

    @classmethod
    def matches(cls, pipe) -> bool:
        raise NotImplementedError

    @classmethod
    def matches_index(cls, model_index: dict) -> bool:
        raise NotImplementedError

    @classmethod
    def pipeline_class(cls) -> type:
        """The StillMoving pipeline that loads this family's folders and generates."""
        raise NotImplementedError

    @classmethod
    def diffusers_pipeline(cls) -> type:
        """The plain diffusers pipeline the StillMoving one extends (same frames for fresh adapters)."""
        raise NotImplementedError

    # The layers the adapters go on.
    def spatial_layers(self, unet: torch.nn.Module) -> dict[str, int]:
        """Spatial-adapter placements: each ResNet block and spatial transformer, with its output channels."""
        return spatial_placements(unet)

    def temporal_attentions(self, unet: torch.nn.Module) -> list[str]:
        """Motion-adapter targets: the q/k/v projections of every temporal attention."""
        return motion_target_modules(unet)

    # Injection.
    def map_t2i_state(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A customized T2I UNet's state dict (diffusers layout) in V's names: the same names for AnimateDiff."""
        return state

    def check_fits(self, unet: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
        """Refuse, naming the key and shapes, a customized T2I that does not map onto V's spatial layers."""
        check_t2i_fits(unet, self.map_t2i_state(state))

    def t2i_config(self, unet: torch.nn.Module) -> dict:
        """The UNet2DConditionModel config of V's spatial part (what V's own T2I, or a single-file M1, is built as)."""
        return t2i_config(unet)

    def t2i_unet(self, unet: torch.nn.Module) -> torch.nn.Module:
        """V's own T2I M, rebuilt from V's spatial weights."""
        return t2i_unet_from_t2v(unet)

    # Text and conditioning for training.
    def text_encoders(self) -> dict[str, torch.nn.Module]:
        raise NotImplementedError

    def encode_prompts(self, prompts: list[str]) -> torch.Tensor:
        """One row per prompt (float32, CPU): everything the video UNet needs of the text, in one tensor."""
        raise NotImplementedError

    def unet_inputs(self, text: torch.Tensor, noisy: torch.Tensor) -> dict:
        """Keyword arguments of the video UNet besides (noisy, timesteps), for `encode_prompts` rows `text` (b, ...)
        and noisy latents (b, c, f, h, w)."""
        raise NotImplementedError

    # Sampling and saving.
    def plain_pipeline(self):
        """The plain diffusers pipeline (`diffusers_pipeline`) on V's modules, no motion adapter: what `export`
        saves, and what plain diffusers loads back."""
        raise NotImplementedError

    def image_pipeline(self, unet, text_encoder=None, text_encoder_2=None):
        """A T2I pipeline sharing V's VAE, tokenizers, text encoders and scheduler, with the given UNet (and text
        encoders where M1 has its own)."""
        raise NotImplementedError


def refuse_other_generation(
    label: str, unet: torch.nn.Module, state: dict[str, torch.Tensor], width_only: bool = False
) -> None:
    """Refuse a UNet of another Stable Diffusion generation (SD1.x, SD2.x, SDXL) by its cross-attention width, in one
    line naming the key, both shapes and both families. `width_only`: only a different text width counts (another
    shape of the same key is left to `check_t2i_fits`'s message); otherwise any other shape of the key does."""
    from stillmoving.describe import CROSS_ATTENTION_KEY, sd_family

    target = spatial_state_dict(unet)
    position = -1 if width_only else slice(None)
    for key, value in state.items():
        if key.endswith(CROSS_ATTENTION_KEY) and key in target and target[key].shape[position] != value.shape[position]:
            raise StillMovingError(
                f"customized UNet does not fit the {label} video model: it is {sd_family(state)}, "
                f"the video model {sd_family(target)}; {key} has shape {tuple(value.shape)}, "
                f"the video model expects {tuple(target[key].shape)}"
            )
