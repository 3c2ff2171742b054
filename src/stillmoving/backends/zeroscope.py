"""ModelScope / ZeroScope (`TextToVideoSDPipeline`, `UNet3DConditionModel`): spatial layers fine-tuned on video
together with temporal convolutions and temporal attentions, the open model closest to Lumiere's setting.

The motion adapter wraps the q/k/v of every temporal attention (`temp_attentions`, and `transformer_in` after
conv_in); the spatial adapters follow every spatial ResNet block and spatial transformer, so each adapts a spatial
layer's output before the temporal convolution or attention after it. V's spatial part is an SD2.x-shaped
`UNet2DConditionModel` under the same names: conv_in/conv_out, the time embedding, and each level's ResNet blocks,
transformers (linear projections, 64-channel heads) and resamplers carry the 2D UNet's keys and shapes, and every
other key of V is temporal (`injection.is_motion_key`). A customized SD2.x UNet maps onto it key for key; one whose
transformers project with 1x1 convolutions (`use_linear_projection=False`) is reshaped to V's linear projections, the
same map. Anything else is refused naming the key and both shapes. The text is one CLIP encoder, as SD1.5's, and the
UNet takes it per video (it repeats it over the frames itself).
"""

from __future__ import annotations

import torch
from diffusers import StableDiffusionPipeline, TextToVideoSDPipeline, UNet2DConditionModel, UNet3DConditionModel

from stillmoving.backends.base import Backend, refuse_other_generation
from stillmoving.backends.sd15 import SD15
from stillmoving.errors import StillMovingError
from stillmoving.injection import spatial_state_dict

PIPELINES = ("TextToVideoSDPipeline", "VideoToVideoSDPipeline")
UNET_CLASS = "UNet3DConditionModel"
PROJECTIONS = ("proj_in.weight", "proj_out.weight")
SAME_CONFIG = (  # UNet3DConditionModel config entries a UNet2DConditionModel takes as they are
    "sample_size",
    "in_channels",
    "out_channels",
    "block_out_channels",
    "layers_per_block",
    "downsample_padding",
    "mid_block_scale_factor",
    "act_fn",
    "norm_num_groups",
    "norm_eps",
    "cross_attention_dim",
    "time_cond_proj_dim",
)


class ZeroScope(Backend):
    name = "zeroscope"
    label = "ModelScope/ZeroScope"

    @classmethod
    def matches(cls, pipe) -> bool:
        return isinstance(getattr(pipe, "unet", None), UNet3DConditionModel)

    @classmethod
    def matches_index(cls, model_index: dict) -> bool:
        unet = model_index.get("unet") or [None, None]
        return model_index.get("_class_name") in PIPELINES or unet[-1] == UNET_CLASS

    @classmethod
    def pipeline_class(cls) -> type:
        from stillmoving.pipeline import StillMovingTextToVideoPipeline

        return StillMovingTextToVideoPipeline

    @classmethod
    def diffusers_pipeline(cls) -> type:
        return TextToVideoSDPipeline

    # Injection: V's spatial keys are an SD2.x UNet2DConditionModel's.
    def map_t2i_state(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The customized UNet's keys as they are; a 1x1-convolution projection as V's linear one (the same map)."""
        target = spatial_state_dict(self.pipe.unet)
        mapped = {}
        for key, value in state.items():
            want = target.get(key)
            if key.endswith(PROJECTIONS) and want is not None and value.shape == (*want.shape, 1, 1):
                value = value.flatten(1)
            mapped[key] = value
        return mapped

    def check_fits(self, unet: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
        """An SD1.x or SDXL UNet is refused first by its cross-attention width, naming the key, both shapes and both
        families; then every key and shape (after `map_t2i_state`) as for SD1.5."""
        refuse_other_generation(self.label, unet, state, width_only=True)
        super().check_fits(unet, state)

    def t2i_config(self, unet: UNet3DConditionModel) -> dict:
        """The SD2.x-shaped UNet2DConditionModel config of V's spatial part: the 3D config's `attention_head_dim` is
        the channels per head (diffusers' naming), the 2D config's the heads per level; projections are linear."""
        config = unet.config
        head_dims = config.attention_head_dim
        if isinstance(head_dims, int):
            head_dims = [head_dims] * len(config.block_out_channels)
        return {
            **{key: config[key] for key in SAME_CONFIG},
            "down_block_types": [t.replace("3D", "2D") for t in config.down_block_types],
            "up_block_types": [t.replace("3D", "2D") for t in config.up_block_types],
            "attention_head_dim": [c // d for c, d in zip(config.block_out_channels, head_dims)],
            "use_linear_projection": True,
        }

    def t2i_unet(self, unet: UNet3DConditionModel) -> UNet2DConditionModel:
        """V's own T2I M: its spatial weights in an SD2.x-shaped UNet2DConditionModel (checked: all of them)."""
        t2i = UNet2DConditionModel(**self.t2i_config(unet))
        result = t2i.load_state_dict(spatial_state_dict(unet), strict=False)
        if result.missing_keys or result.unexpected_keys:
            raise StillMovingError(
                "cannot rebuild the T2I UNet of this ModelScope/ZeroScope model: "
                f"{(result.missing_keys + result.unexpected_keys)[:3]}"
            )
        return t2i.to(device=unet.device, dtype=unet.dtype)

    # Text and conditioning for training: one CLIP text encoder, as SD1.5's.
    text_encoders = SD15.text_encoders
    encode_prompts = SD15.encode_prompts

    def unet_inputs(self, text: torch.Tensor, noisy: torch.Tensor) -> dict:
        return {"encoder_hidden_states": text}  # (b, seq, dim): UNet3DConditionModel repeats it per frame itself

    # Sampling and saving.
    def plain_pipeline(self) -> TextToVideoSDPipeline:
        t2v = self.pipe
        return TextToVideoSDPipeline(
            vae=t2v.vae, text_encoder=t2v.text_encoder, tokenizer=t2v.tokenizer, unet=t2v.unet, scheduler=t2v.scheduler
        )

    def image_pipeline(self, unet, text_encoder=None, text_encoder_2=None) -> StableDiffusionPipeline:
        """An SD2.x-shaped Stable Diffusion pipeline on V's VAE, tokenizer, text encoder and scheduler."""
        return SD15.image_pipeline(self, unet, text_encoder, text_encoder_2)
