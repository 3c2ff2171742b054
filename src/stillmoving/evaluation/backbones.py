"""The image and text encoders the field's metrics are computed with, loaded through transformers.

CLIP (`CLIPModel` + `CLIPProcessor`) gives CLIP-T, CLIP-I and temporal consistency; a self-supervised ViT
(`AutoModel`: DINO's ViT checkpoints or DINOv2) gives DINO-I. Each takes a local folder, or a Hub id for a
user who is online; the folder's config is read first, so a wrong kind of model is refused before it loads.
Features are L2-normalised, so a dot product is a cosine similarity.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from stillmoving.errors import StillMovingError
from stillmoving.validation import local_or_hub

CLIP_TYPES = ("clip",)
DINO_TYPES = ("vit", "dinov2", "dinov2_with_registers", "dinov3_vit")  # ViTs whose token 0 is the [CLS] token
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
DINO_PREPROCESS = ("dreamvideo", "processor")
BATCH = 32  # frames per forward pass


def model_type(flag: str, path: str) -> str:
    """`model_type` of a model folder's config.json (or, online, of a Hub id's config)."""
    source = local_or_hub(path)
    config = Path(source) / "config.json"
    if Path(source).is_dir():
        if not config.is_file():
            raise StillMovingError(f"{flag} {path}: not a transformers model folder (no config.json)")
        return str(json.loads(config.read_text()).get("model_type", ""))
    if Path(source).exists():
        raise StillMovingError(f"{flag} {path}: expected a model folder or a Hub id, not a file")
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(source).model_type


def check_backbone(flag: str, path: str | None, accepted: tuple[str, ...]) -> None:
    """The model at `path` is of an accepted kind (no weights are read)."""
    if path is None:
        return
    kind = model_type(flag, path)
    if kind not in accepted:
        raise StillMovingError(
            f"{flag} {path}: is a {kind or 'untyped'!r} model; expected model_type {' or '.join(accepted)}"
        )


def _features(output) -> torch.Tensor:
    """transformers 5 returns a model output whose pooler_output holds the projected features; 4.x a tensor."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def _normalised(features: torch.Tensor) -> np.ndarray:
    return torch.nn.functional.normalize(features.float(), dim=-1).cpu().numpy()


class ClipBackbone:
    """A CLIP model and its processor: the processor's resize and centre crop are OpenAI's `clip.load`
    preprocessing, the one DreamVideo's and VBench's scripts use."""

    def __init__(self, path: str, device: str = "cpu"):
        from transformers import CLIPModel, CLIPProcessor

        source = local_or_hub(path)
        self.model = CLIPModel.from_pretrained(source).to(device).eval()
        self.processor = CLIPProcessor.from_pretrained(source)
        self.device = device

    @torch.no_grad()
    def image_features(self, frames: np.ndarray) -> np.ndarray:
        """(N, D) unit vectors of uint8 (N, H, W, 3) images."""
        out = []
        for start in range(0, len(frames), BATCH):
            pixels = self.processor(images=list(frames[start : start + BATCH]), return_tensors="pt")["pixel_values"]
            out.append(_features(self.model.get_image_features(pixel_values=pixels.to(self.device))))
        return _normalised(torch.cat(out))

    @torch.no_grad()
    def text_features(self, prompts: list[str]) -> np.ndarray:
        """(N, D) unit vectors of the prompts (truncated to the text model's length, as `clip.tokenize` does)."""
        tokens = self.processor(text=prompts, return_tensors="pt", padding=True, truncation=True)
        tokens = {k: v.to(self.device) for k, v in tokens.items() if k in ("input_ids", "attention_mask")}
        return _normalised(_features(self.model.get_text_features(**tokens)))


class DinoBackbone:
    """A self-supervised ViT; an image's feature is its final [CLS] token, as DINO's `vit_small` returns it.

    `preprocess="dreamvideo"` is DreamVideo's transform (resize the short side to 256/224 of the model's input
    size, bicubic, centre crop to the input size, ImageNet normalisation): for DINO ViT-S/16, 256 then 224.
    `"processor"` uses the folder's own image processor instead (DINO's resizes to 224 x 224 without cropping).
    """

    def __init__(self, path: str, device: str = "cpu", preprocess: str = "dreamvideo"):
        from transformers import AutoImageProcessor, AutoModel

        source = local_or_hub(path)
        self.model = AutoModel.from_pretrained(source).to(device).eval()
        self.processor = AutoImageProcessor.from_pretrained(source) if preprocess == "processor" else None
        size = self.model.config.image_size
        self.crop = size if isinstance(size, int) else size[0]
        self.device = device

    def _dreamvideo(self, image: np.ndarray) -> np.ndarray:
        """(3, crop, crop) float32: Resize(256 * crop / 224, bicubic), CenterCrop(crop), ImageNet normalisation."""
        picture = Image.fromarray(image)
        short = round(self.crop * 256 / 224)
        w, h = picture.size
        scale = short / min(w, h)
        size = (max(short, int(w * scale)), max(short, int(h * scale)))  # torchvision's Resize truncates the long side
        picture = picture.resize(size, Image.BICUBIC)
        w, h = picture.size
        left, top = round((w - self.crop) / 2), round((h - self.crop) / 2)
        array = np.asarray(picture.crop((left, top, left + self.crop, top + self.crop)), np.float32) / 255
        return ((array - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1).astype(np.float32)

    def _pixels(self, frames: np.ndarray) -> torch.Tensor:
        if self.processor is not None:
            return self.processor(images=list(frames), return_tensors="pt")["pixel_values"]
        return torch.from_numpy(np.stack([self._dreamvideo(f) for f in frames]))

    @torch.no_grad()
    def image_features(self, frames: np.ndarray) -> np.ndarray:
        """(N, D) unit vectors of uint8 (N, H, W, 3) images."""
        out = []
        for start in range(0, len(frames), BATCH):
            pixels = self._pixels(frames[start : start + BATCH]).to(self.device)
            out.append(self.model(pixel_values=pixels).last_hidden_state[:, 0])
        return _normalised(torch.cat(out))
