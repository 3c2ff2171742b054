"""AnimateDiff over Stable Diffusion 1.5 (`AnimateDiffPipeline`): one CLIP text encoder, no added conditioning."""

from __future__ import annotations

import torch
from diffusers import AnimateDiffPipeline, StableDiffusionPipeline

from stillmoving.backends.base import Backend
from stillmoving.data.frozen import encode_prompts


class SD15(Backend):
    name = "sd15"
    label = "AnimateDiff (SD1.5)"

    @classmethod
    def matches(cls, pipe) -> bool:
        return True  # the default family

    @classmethod
    def matches_index(cls, model_index: dict) -> bool:
        return True

    @classmethod
    def pipeline_class(cls) -> type:
        from stillmoving.pipeline import StillMovingPipeline

        return StillMovingPipeline

    @classmethod
    def diffusers_pipeline(cls) -> type:
        return AnimateDiffPipeline

    def text_encoders(self) -> dict[str, torch.nn.Module]:
        return {"text_encoder": self.pipe.text_encoder}

    def encode_prompts(self, prompts: list[str]) -> torch.Tensor:
        """CLIP's last hidden states (P, seq, dim)."""
        return encode_prompts(self.pipe.tokenizer, self.pipe.text_encoder, prompts)

    def unet_inputs(self, text: torch.Tensor, noisy: torch.Tensor) -> dict:
        # (b*f, seq, dim), as UNetMotionModel wants
        return {"encoder_hidden_states": text.repeat_interleave(noisy.shape[2], dim=0)}

    def plain_pipeline(self) -> AnimateDiffPipeline:
        t2v = self.pipe
        return AnimateDiffPipeline(
            vae=t2v.vae,
            text_encoder=t2v.text_encoder,
            tokenizer=t2v.tokenizer,
            unet=t2v.unet,
            motion_adapter=None,
            scheduler=t2v.scheduler,
        )

    def image_pipeline(self, unet, text_encoder=None, text_encoder_2=None) -> StableDiffusionPipeline:
        t2v = self.pipe
        pipe = StableDiffusionPipeline(
            vae=t2v.vae,
            text_encoder=text_encoder or t2v.text_encoder,
            tokenizer=t2v.tokenizer,
            unet=unet,
            scheduler=t2v.scheduler,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
        pipe.set_progress_bar_config(leave=False)
        return pipe
