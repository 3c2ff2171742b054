"""Inference: diffusers' AnimateDiff pipelines plus Still-Moving's adapters (docs/method.md, stage 3).

`StillMovingPipeline` is an `AnimateDiffPipeline` (it loads any AnimateDiff folder and takes every
argument, scheduler and option of its parent) with three verbs: inject a customized T2I, attach spatial
adapters, load a motion adapter; and one extra call argument, `motion_scale` (alpha). The default
alpha = 0 removes the motion adapter, as the method prescribes; positive values dial motion down and
negative values up.

Conditional generation (the paper's third application) uses diffusers' own pipelines the same way, each with the
same verbs and `motion_scale` (`StillMovingMixin`): `StillMovingControlNetPipeline` (an
`AnimateDiffControlNetPipeline`: one or several 2D ControlNets, one conditioning frame per output frame),
`StillMovingVideoToVideoPipeline` and `StillMovingVideoToVideoControlNetPipeline`. `pipe.conditional(controlnet,
video_to_video)` turns an assembled pipeline into the one that fits, sharing its modules (the customization, the
spatial adapters and the motion adapter come along unchanged). Long videos: diffusers' FreeNoise
(`enable_free_noise`, context windows) and FreeInit (`enable_free_init`) work on all of them, the motion adapter
included (`MotionLoRA.lifted`).

AnimateDiff-SDXL: `StillMovingSDXLPipeline` (an `AnimateDiffSDXLPipeline`) with the same verbs and `motion_scale`;
diffusers has no ControlNet, video-to-video or FreeNoise variant of it, so those are refused.

ModelScope / ZeroScope: `StillMovingTextToVideoPipeline` (a `TextToVideoSDPipeline` on a `UNet3DConditionModel`)
with the same verbs and `motion_scale`; its customized T2I is an SD2.x-shaped UNet (`backends.ZeroScope`). No
ControlNet, FreeNoise or FreeInit there either.
"""

from __future__ import annotations

import json
import math
from contextlib import nullcontext
from pathlib import Path
from types import SimpleNamespace

import torch
from diffusers import (
    AnimateDiffControlNetPipeline,
    AnimateDiffPipeline,
    AnimateDiffSDXLPipeline,
    AnimateDiffVideoToVideoControlNetPipeline,
    AnimateDiffVideoToVideoPipeline,
    ControlNetModel,
    MotionAdapter,
    MultiControlNetModel,
    TextToVideoSDPipeline,
    UNet2DConditionModel,
    UNetMotionModel,
)

from stillmoving.adapters.motion import ADAPTER_NAME, WEIGHT_NAME, MotionLoRA
from stillmoving.adapters.spatial import SpatialAdapters, check_fingerprint
from stillmoving.errors import StillMovingError
from stillmoving.injection import inject_t2i_weights
from stillmoving.run_folder import CUSTOMIZATION, MOTION_ADAPTER, SPATIAL_ADAPTERS, SPATIAL_BLOCKS, load_record


def attach_spatial_adapters(pipe: AnimateDiffPipeline, adapters: SpatialAdapters | str | Path) -> SpatialAdapters:
    """Attach spatial adapters (an object or a file) to any AnimateDiff pipeline's UNet, plain diffusers too."""
    if not isinstance(adapters, SpatialAdapters):
        adapters = SpatialAdapters.load(adapters)
    adapters.to(device=pipe.unet.device)
    check_fingerprint(adapters, pipe.unet)
    return adapters.attach(pipe.unet)


def diffusers_pipeline_class(cls: type) -> type:
    """The diffusers pipeline a Still-Moving pipeline class extends (`StillMovingPipeline` -> `AnimateDiffPipeline`)."""
    return next(base for base in cls.__mro__ if base.__module__.startswith("diffusers."))


class StillMovingMixin:
    """Still-Moving's verbs and `motion_scale`, on top of any diffusers AnimateDiff pipeline (first in the bases)."""

    spatial_adapters: SpatialAdapters | None = None
    motion_lora: MotionLoRA | None = None

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, adapters: bool = True, **kwargs):
        """diffusers' `from_pretrained`; from a local folder that holds them (written by `save_pretrained`, or by
        `stillmoving export`), the spatial adapters and the motion adapter are attached too, the adapters only in the
        blocks the folder's customization record names, as `generate` applies them. `adapters=False` loads the
        video model alone."""
        pipe = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        folder = Path(pretrained_model_name_or_path)
        if not adapters or not folder.is_dir():
            return pipe
        if (folder / SPATIAL_ADAPTERS).is_file():
            record = load_record(folder) if (folder / CUSTOMIZATION).is_file() else {}
            pipe.load_spatial_adapters(folder / SPATIAL_ADAPTERS, blocks=record.get(SPATIAL_BLOCKS))
        if (folder / MOTION_ADAPTER / WEIGHT_NAME).is_file():
            pipe.load_motion_adapter(folder / MOTION_ADAPTER)
        return pipe

    def to_json_string(self) -> str:
        """The config as diffusers writes it, naming the diffusers pipeline this one extends: a saved folder's
        model_index.json, from which `DiffusionPipeline.from_pretrained` picks the class to load it with."""
        config = json.loads(super().to_json_string())
        config["_class_name"] = diffusers_pipeline_class(type(self)).__name__
        return json.dumps(config, indent=2, sort_keys=True) + "\n"

    def save_pretrained(self, save_directory: str | Path, *args, **kwargs) -> None:
        """diffusers' `save_pretrained`, as a folder plain diffusers loads (its model_index.json names the diffusers
        pipeline; the motion modules' weights under their own names, the motion adapter lifted off them while they
        are written), and the adapters beside it under `export`'s names: `spatial_adapters.safetensors` as they act
        now (their scale and blocks in its tensors, their min_timestep in its header) and `motion_adapter/` (diffusers'
        LoRA format). `from_pretrained` attaches them again; a file of that name left from an earlier save of a
        pipeline that has no such adapter is removed, so the folder holds what this pipeline is."""
        with self.motion_lora.lifted() if self.motion_lora is not None else nullcontext():
            super().save_pretrained(save_directory, *args, **kwargs)
        folder = Path(save_directory)
        if self.spatial_adapters is not None:
            self.spatial_adapters.save(folder / SPATIAL_ADAPTERS, self.spatial_adapters.metadata)
        else:
            (folder / SPATIAL_ADAPTERS).unlink(missing_ok=True)
        if self.motion_lora is not None:
            self.motion_lora.save(folder / MOTION_ADAPTER)
        else:
            (folder / MOTION_ADAPTER / WEIGHT_NAME).unlink(missing_ok=True)

    def inject_customized(
        self, unet, text_encoder: torch.nn.Module | None = None, text_encoder_2: torch.nn.Module | None = None
    ) -> None:
        """Put a customized T2I (its UNet, and its text encoders if it has its own) into the video model."""
        inject_t2i_weights(self.unet, unet)
        if text_encoder is not None:
            self.text_encoder.load_state_dict(text_encoder.state_dict())
        if text_encoder_2 is not None:  # SDXL's second text encoder
            self.text_encoder_2.load_state_dict(text_encoder_2.state_dict())

    def load_spatial_adapters(
        self,
        adapters: SpatialAdapters | str | Path,
        scale: float = 1.0,
        min_timestep: int | None = None,
        blocks: str | None = None,
    ) -> SpatialAdapters:
        """Attach stage 2's adapters (a file, or an object, which `scale`, `min_timestep` and `blocks` change in place)
        at strength `scale`, acting at timesteps >= `min_timestep` (default: as they trained, the file's record) and
        in the UNet's `blocks` only ("down,mid" etc.; default: every adapter of the file)."""
        if self.spatial_adapters is not None:
            self.spatial_adapters.detach()
        self.spatial_adapters = attach_spatial_adapters(self, adapters)
        if blocks is not None:
            self.spatial_adapters.keep_blocks_(blocks)
        if scale != 1.0:
            self.spatial_adapters.scale_(scale)
        if min_timestep is not None:
            self.spatial_adapters.min_timestep = min_timestep
        return self.spatial_adapters

    def load_motion_adapter(self, path: str | Path) -> MotionLoRA:
        if self.motion_lora is not None:
            self.unet.delete_adapters(self.motion_lora.name)
        self.motion_lora = MotionLoRA.load(self.unet, path, name=ADAPTER_NAME)
        self.motion_lora.set_scale(0.0)
        return self.motion_lora

    def set_motion_scale(self, scale: float) -> None:
        """alpha for the next calls: 1 frozen, 0 the video model's own motion, < 0 more motion."""
        if not math.isfinite(scale):  # NaN would reach every temporal projection and sample noise
            raise StillMovingError(f"motion_scale must be a finite number, not {scale}")
        if self.motion_lora is None:
            if scale != 0:
                raise StillMovingError("motion_scale other than 0 needs a motion adapter (load_motion_adapter)")
            return
        self.motion_lora.set_scale(scale)

    def conditional(
        self, controlnet: ControlNetModel | list[ControlNetModel] | None = None, video_to_video: bool = False
    ) -> StillMovingMixin:
        """This pipeline's modules (customization, spatial adapters and motion adapter included) in the variant
        that takes `controlnet` (one, or several: a MultiControlNetModel) and/or an input video."""
        if isinstance(controlnet, (list, tuple)):
            controlnet = controlnet[0] if len(controlnet) == 1 else MultiControlNetModel(list(controlnet))
        cls = VARIANTS[(controlnet is not None, video_to_video)]
        extra = {"controlnet": controlnet} if controlnet is not None else {}
        pipe = cls.from_pipe(self, motion_adapter=None, **extra)
        pipe.spatial_adapters, pipe.motion_lora = self.spatial_adapters, self.motion_lora
        return pipe

    def enable_free_noise(self, *args, **kwargs) -> None:
        """diffusers' FreeNoise (long videos in sliding context windows), with the motion adapter lifted off the
        motion modules while diffusers rebuilds them, then put back (`MotionLoRA.lifted`)."""
        stand_in = self.motion_adapter is None  # an AnimateDiff folder stores its motion modules inside the UNet
        if stand_in:  # enable_free_noise reads the table length from the (absent) MotionAdapter's config
            length = self.unet.config.get("motion_max_seq_length") or 32
            self.motion_adapter = SimpleNamespace(config=SimpleNamespace(motion_max_seq_length=length))
        try:
            with self.motion_lora.lifted() if self.motion_lora is not None else nullcontext():
                super().enable_free_noise(*args, **kwargs)
        finally:
            if stand_in:
                self.motion_adapter = None

    def disable_free_noise(self) -> None:
        with self.motion_lora.lifted() if self.motion_lora is not None else nullcontext():
            super().disable_free_noise()

    def to(self, *args, **kwargs):
        pipe = super().to(*args, **kwargs)
        if self.spatial_adapters is not None:
            self.spatial_adapters.to(device=self.unet.device)
        return pipe

    def __call__(self, *args, motion_scale: float = 0.0, **kwargs):
        """The diffusers pipeline's __call__ with the motion adapter at `motion_scale` (default 0: removed)."""
        self.set_motion_scale(motion_scale)
        return super().__call__(*args, **kwargs)


class StillMovingPipeline(StillMovingMixin, AnimateDiffPipeline):
    """AnimateDiff + customized T2I weights + spatial adapters + a motion-scale knob."""


class StillMovingControlNetPipeline(StillMovingMixin, AnimateDiffControlNetPipeline):
    """The same on diffusers' AnimateDiff + ControlNet pipeline (`conditioning_frames`, one per output frame)."""


class StillMovingVideoToVideoPipeline(StillMovingMixin, AnimateDiffVideoToVideoPipeline):
    """The same on diffusers' AnimateDiff video-to-video pipeline (`video`, `strength`)."""


class StillMovingVideoToVideoControlNetPipeline(StillMovingMixin, AnimateDiffVideoToVideoControlNetPipeline):
    """The same on diffusers' AnimateDiff video-to-video + ControlNet pipeline."""


def inflate(unet: UNet2DConditionModel, motion_adapter: MotionAdapter | None) -> UNetMotionModel:
    """diffusers' `UNetMotionModel.from_unet2d`, then every spatial weight of `unet` loaded by name (checked: all of
    them, nothing else). from_unet2d copies the blocks, conv_in/out and the time embedding but not SDXL's added
    embedding (`add_embedding`, which maps the pooled text embedding and the time ids): diffusers leaves it random
    (its AnimateDiff-SDXL pull request #6721 left this for later), so an SDXL + motion modules pipeline built by plain
    diffusers ignores the T2I's size and pooled-text conditioning."""
    motion = UNetMotionModel.from_unet2d(unet, motion_adapter)
    inject_t2i_weights(motion, unet)
    return motion


class StillMovingSDXLPipeline(StillMovingMixin, AnimateDiffSDXLPipeline):
    """AnimateDiff-SDXL (diffusers' `AnimateDiffSDXLPipeline`: two text encoders, pooled text and time ids as added
    conditioning) with the same verbs and `motion_scale`. Built from an SDXL UNet and motion modules, its video UNet
    carries the SDXL UNet's `add_embedding` too (`inflate`). No ControlNet, video-to-video or FreeNoise variant:
    diffusers has none for SDXL."""

    def __init__(
        self,
        vae,
        text_encoder,
        text_encoder_2,
        tokenizer,
        tokenizer_2,
        unet,
        motion_adapter,
        scheduler,
        image_encoder=None,
        feature_extractor=None,
        force_zeros_for_empty_prompt: bool = True,
    ):
        if isinstance(unet, UNet2DConditionModel):
            unet = inflate(unet, motion_adapter)
        super().__init__(
            vae=vae,
            text_encoder=text_encoder,
            text_encoder_2=text_encoder_2,
            tokenizer=tokenizer,
            tokenizer_2=tokenizer_2,
            unet=unet,
            motion_adapter=motion_adapter,
            scheduler=scheduler,
            image_encoder=image_encoder,
            feature_extractor=feature_extractor,
            force_zeros_for_empty_prompt=force_zeros_for_empty_prompt,
        )

    def inject_customized(
        self, unet, text_encoder: torch.nn.Module | None = None, text_encoder_2: torch.nn.Module | None = None
    ) -> None:
        """As for SD1.5; an SD1.x/SD2.x UNet is refused by its cross-attention width, naming the key and shapes."""
        from stillmoving.backends import SDXL

        SDXL(self).check_fits(self.unet, unet.state_dict() if isinstance(unet, torch.nn.Module) else unet)
        super().inject_customized(unet, text_encoder, text_encoder_2)

    def conditional(self, controlnet=None, video_to_video: bool = False) -> StillMovingMixin:
        if controlnet is None and not video_to_video:
            return self
        raise StillMovingError(
            "AnimateDiff-SDXL has no ControlNet or video-to-video pipeline in diffusers; "
            "generate from the prompt alone (no --controlnet, --control-video or --video)"
        )

    def enable_free_noise(self, *args, **kwargs) -> None:
        raise StillMovingError(
            "AnimateDiff-SDXL has no FreeNoise in diffusers (long videos in context windows); "
            "drop --context-length and ask for at most the motion modules' frames"
        )


class StillMovingTextToVideoPipeline(StillMovingMixin, TextToVideoSDPipeline):
    """ModelScope / ZeroScope (diffusers' `TextToVideoSDPipeline`: a `UNet3DConditionModel`, spatial layers with
    temporal convolutions and attentions beside them) with the same verbs and `motion_scale`. The customized T2I is an
    SD2.x-shaped UNet, mapped onto V's spatial keys and refused, naming the key and shapes, where it does not map. No
    ControlNet, video-to-video, FreeNoise or FreeInit variant here (diffusers' VideoToVideoSDPipeline is not wired)."""

    def inject_customized(
        self, unet, text_encoder: torch.nn.Module | None = None, text_encoder_2: torch.nn.Module | None = None
    ) -> None:
        """As for SD1.5, through `backends.ZeroScope`'s mapping; an SD1.x or SDXL UNet is refused by its
        cross-attention width, naming the key and shapes."""
        from stillmoving.backends import ZeroScope

        backend = ZeroScope(self)
        state = unet.state_dict() if isinstance(unet, torch.nn.Module) else unet
        backend.check_fits(self.unet, state)
        super().inject_customized(backend.map_t2i_state(state), text_encoder, text_encoder_2)

    def conditional(self, controlnet=None, video_to_video: bool = False) -> StillMovingMixin:
        if controlnet is None and not video_to_video:
            return self
        raise StillMovingError(
            "ModelScope/ZeroScope has no ControlNet pipeline in diffusers, and its video-to-video pipeline is not "
            "supported here; generate from the prompt alone (no --controlnet, --control-video or --video)"
        )

    def enable_free_noise(self, *args, **kwargs) -> None:
        raise StillMovingError(
            "ModelScope/ZeroScope has no FreeNoise in diffusers (long videos in context windows); "
            "drop --context-length and ask for the frames in one pass"
        )

    def enable_free_init(self, *args, **kwargs) -> None:
        raise StillMovingError("ModelScope/ZeroScope has no FreeInit in diffusers; drop --free-init")


VARIANTS = {  # (with a ControlNet, video-to-video) -> class
    (False, False): StillMovingPipeline,
    (True, False): StillMovingControlNetPipeline,
    (False, True): StillMovingVideoToVideoPipeline,
    (True, True): StillMovingVideoToVideoControlNetPipeline,
}
