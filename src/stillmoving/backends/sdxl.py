"""AnimateDiff-SDXL (`AnimateDiffSDXLPipeline`, SDXL motion modules such as mm_sdxl_v10_beta).

What differs from SD1.5: two CLIP text encoders whose penultimate hidden states are concatenated (the
cross-attention input), the second one's pooled projection, and the time ids (original size, crop corner, target
size) fed through the UNet's `add_embedding` as `added_cond_kwargs` (`text_embeds`, `time_ids`). The training
stages keep one text row per prompt: the pooled embedding rides in extra rows after the hidden states (zero-padded
to their width), and the time ids are those the pipeline uses at the training size, (H, W, 0, 0, H, W).
The spatial layers, temporal attentions and state-dict names are AnimateDiff's, as for SD1.5.
"""

from __future__ import annotations

import math

import torch
from diffusers import AnimateDiffSDXLPipeline, StableDiffusionXLPipeline

from stillmoving.backends.base import Backend, refuse_other_generation
from stillmoving.injection import check_same_family

SDXL_PIPELINES = ("AnimateDiffSDXLPipeline", "StableDiffusionXLPipeline")


class SDXL(Backend):
    name = "sdxl"
    label = "AnimateDiff-SDXL"

    def __init__(self, pipe):
        super().__init__(pipe)
        self.seq = pipe.tokenizer.model_max_length  # hidden-state rows of a text row; the pooled rows follow
        self.pooled_dim = pipe.text_encoder_2.config.projection_dim
        self.vae_scale_factor = pipe.vae_scale_factor

    @classmethod
    def matches(cls, pipe) -> bool:
        unet = getattr(pipe, "unet", None)
        added = getattr(unet, "config", {}).get("addition_embed_type") if unet is not None else None
        return added == "text_time" or getattr(pipe, "text_encoder_2", None) is not None

    @classmethod
    def matches_index(cls, model_index: dict) -> bool:
        return "text_encoder_2" in model_index or model_index.get("_class_name") in SDXL_PIPELINES

    @classmethod
    def pipeline_class(cls) -> type:
        from stillmoving.pipeline import StillMovingSDXLPipeline

        return StillMovingSDXLPipeline

    @classmethod
    def diffusers_pipeline(cls) -> type:
        return AnimateDiffSDXLPipeline

    def check_fits(self, unet: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
        """A UNet of another Stable Diffusion generation (SD1.x, SD2.x: no SDXL added embedding, another
        cross-attention width) is refused first, naming both families, the key and both shapes; then every key and
        shape as for SD1.5."""
        check_same_family(unet, state, self.label)
        refuse_other_generation(self.label, unet, state)
        super().check_fits(unet, state)

    def text_encoders(self) -> dict[str, torch.nn.Module]:
        return {"text_encoder": self.pipe.text_encoder, "text_encoder_2": self.pipe.text_encoder_2}

    @torch.no_grad()
    def encode_prompts(self, prompts: list[str]) -> torch.Tensor:
        """(P, seq + k, dim): the pipeline's own `encode_prompt` hidden states, then the pooled embedding in k rows."""
        return self.prompt_rows(prompts).float().cpu()

    def prompt_rows(self, prompts: list[str]) -> torch.Tensor:
        """`encode_prompts`' rows on the text encoders' device and dtype, with gradients where they train (the T2I
        DreamBooth with `--train-text-encoder`). The pipeline's own `encode_prompt`: AnimateDiffSDXLPipeline's or
        StableDiffusionXLPipeline's (the same arguments; the fourth is per video or per image)."""
        hidden, _, pooled, _ = self.pipe.encode_prompt(list(prompts), None, self.pipe.text_encoder_2.device, 1, False)
        width = hidden.shape[-1]
        rows = math.ceil(self.pooled_dim / width)
        padded = torch.nn.functional.pad(pooled, (0, rows * width - self.pooled_dim)).view(len(prompts), rows, width)
        return torch.cat([hidden, padded.to(hidden.dtype)], dim=1)

    def unet_inputs(self, text: torch.Tensor, noisy: torch.Tensor) -> dict:
        hidden = text[:, : self.seq]
        pooled = text[:, self.seq :].flatten(1)[:, : self.pooled_dim]
        height, width = (size * self.vae_scale_factor for size in noisy.shape[-2:])
        time_ids = torch.tensor([height, width, 0, 0, height, width], dtype=hidden.dtype, device=noisy.device)
        return {
            "encoder_hidden_states": hidden.repeat_interleave(noisy.shape[2], dim=0),  # (b*f, seq, dim)
            "added_cond_kwargs": {"text_embeds": pooled, "time_ids": time_ids.expand(len(text), -1)},  # per video
        }

    def plain_pipeline(self) -> AnimateDiffSDXLPipeline:
        t2v = self.pipe
        return AnimateDiffSDXLPipeline(
            vae=t2v.vae,
            text_encoder=t2v.text_encoder,
            text_encoder_2=t2v.text_encoder_2,
            tokenizer=t2v.tokenizer,
            tokenizer_2=t2v.tokenizer_2,
            unet=t2v.unet,
            motion_adapter=None,
            scheduler=t2v.scheduler,
            force_zeros_for_empty_prompt=t2v.config.get("force_zeros_for_empty_prompt", True),
        )

    def image_pipeline(self, unet, text_encoder=None, text_encoder_2=None) -> StableDiffusionXLPipeline:
        t2v = self.pipe
        pipe = StableDiffusionXLPipeline(
            vae=t2v.vae,
            text_encoder=text_encoder or t2v.text_encoder,
            text_encoder_2=text_encoder_2 or t2v.text_encoder_2,
            tokenizer=t2v.tokenizer,
            tokenizer_2=t2v.tokenizer_2,
            unet=unet,
            scheduler=t2v.scheduler,
            force_zeros_for_empty_prompt=t2v.config.get("force_zeros_for_empty_prompt", True),
            add_watermarker=False,
        )
        pipe.set_progress_bar_config(leave=False)
        return pipe
