"""Still-Moving's motion adapter: a peft LoRA on every temporal-attention projection.

    W~ = W + alpha * A_down @ A_up          (docs/method.md, stage 1; paper eq. 1)

for W in {W_Q, W_K, W_V} of attn1 and attn2 of every AnimateDiff motion module (of a ModelScope/ZeroScope
`UNet3DConditionModel`: of every temporal attention, `temp_attentions` and `transformer_in`). A_down starts random and
A_up at zero, so the video model is unchanged before training. `alpha` is the motion scale: 1 makes the
video model produce frozen videos, 0 removes the adapter, negative values add motion. The adapter is
stored in diffusers' LoRA format, so a plain `AnimateDiffPipeline` can `load_lora_weights` it and
`set_adapters(name, alpha)`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from diffusers import AnimateDiffPipeline, UNet3DConditionModel, UNetMotionModel
from diffusers.loaders.peft import PeftAdapterMixin
from peft import LoraConfig
from peft.tuners.lora import LoraLayer
from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict

from stillmoving.errors import StillMovingError
from stillmoving.files import atomic_write
from stillmoving.formats.safety import read_adapter_header

ADAPTER_NAME = "stillmoving_motion"
WEIGHT_NAME = "pytorch_lora_weights.safetensors"
# peft matches a string target with re.fullmatch on each module name.
TARGET_PATTERN = (
    r"(down_blocks\.\d+|mid_block|up_blocks\.\d+)\.motion_modules\.\d+\.transformer_blocks\.\d+\.attn[12]\.to_[qkv]"
)

# A UNet3DConditionModel's (ModelScope, ZeroScope) temporal attentions: one per spatial transformer, and the one after
# conv_in (`transformer_in`); its temporal convolutions are not attention and stay as they are.
TEMPORAL_3D_PATTERN = (
    r"(transformer_in|(down_blocks\.\d+|mid_block|up_blocks\.\d+)\.temp_attentions\.\d+)"
    r"\.transformer_blocks\.\d+\.attn[12]\.to_[qkv]"
)
PATTERNS = (TARGET_PATTERN, TEMPORAL_3D_PATTERN)
# A motion-adapter file's tensor names ("unet.<a target>.lora_A.weight", ...), either family's targets.
FILE_KEY = re.compile(rf"(?:^|\.)(?:{'|'.join(PATTERNS)})\.lora_")
_PEFT_CLASSES: dict[type, type] = {}


def target_pattern(unet: torch.nn.Module) -> str:
    """The motion adapter's targets in `unet`: AnimateDiff's motion modules, or a UNet3D's temporal attentions."""
    return TEMPORAL_3D_PATTERN if isinstance(unet, UNet3DConditionModel) else TARGET_PATTERN


def motion_target_modules(unet: torch.nn.Module) -> list[str]:
    """Names of the temporal-attention projections the motion adapter wraps, in module order."""
    pattern = target_pattern(unet)
    return [name for name, _ in unet.named_modules() if re.fullmatch(pattern, name)]


def peft_ready(unet: torch.nn.Module) -> torch.nn.Module:
    """`unet` with diffusers' peft methods (`add_adapter`, `load_lora_adapter`, `delete_adapters`, `unload_lora`).

    diffusers 0.42's UNet3DConditionModel lacks `PeftAdapterMixin`, which every other diffusers UNet has, so
    `TextToVideoSDPipeline.load_lora_weights` fails on it with an AttributeError. This gives the instance the mixin:
    its class becomes a subclass with the same name and module, so it still saves (`_class_name`, `model_index.json`)
    and loads as plain diffusers. A UNet that has the mixin is returned untouched.
    """
    if not isinstance(unet, PeftAdapterMixin):
        cls = type(unet)
        if cls not in _PEFT_CLASSES:
            names = {"__module__": cls.__module__, "__qualname__": cls.__qualname__, "__doc__": cls.__doc__}
            _PEFT_CLASSES[cls] = type(cls.__name__, (cls, PeftAdapterMixin), names)
        unet.__class__ = _PEFT_CLASSES[cls]
    return unet


def set_base_weight(layer: LoraLayer, weight: torch.nn.Parameter, lora_branch: bool) -> None:
    """Give a peft-wrapped projection the base weight `weight`, with peft's LoRA branch on or off.

    peft's private API, tested with peft 0.21.2 (tests/test_private_apis.py fails when it changes): when
    `_disable_adapters` is set, `LoraLayer.forward` is `base_layer(x)` alone. It is what
    `BaseTunerLayer.enable_adapters` sets, without that method's side effect of marking the adapter trainable.
    """
    layer.base_layer.weight = weight
    layer._disable_adapters = not lora_branch


def split_adapter_path(path: str | Path) -> tuple[Path, str]:
    """A `.safetensors` path names the file; any other path is a folder holding WEIGHT_NAME."""
    path = Path(path)
    if path.suffix == ".safetensors":
        return path.parent, path.name
    return path, WEIGHT_NAME


def check_motion_adapter_file(path: str | Path) -> Path:
    """The motion adapter's weights file (`split_adapter_path`), judged from its header before any model loads:
    there, a readable safetensors file, and LoRA weights of temporal attention (AnimateDiff's motion modules, a
    UNet3D's temporal attentions); `MotionLoRA.load` checks that they adapt exactly this video model's."""
    directory, weight_name = split_adapter_path(path)
    file = directory / weight_name
    if not file.is_file():
        raise StillMovingError(f"no motion adapter at {file}")
    _, keys = read_adapter_header(file)
    if not any(FILE_KEY.search(key) for key in keys):
        raise StillMovingError(f"{file} is not a motion adapter (no LoRA weights of temporal attention)")
    return file


class MotionLoRA:
    """The motion adapter living inside a `UNetMotionModel` (peft keeps its weights in the UNet)."""

    def __init__(self, unet: UNetMotionModel, name: str = ADAPTER_NAME):
        if name not in getattr(unet, "peft_config", {}):
            raise StillMovingError(f"the video UNet carries no motion adapter named {name!r}")
        self.unet = unet
        self.name = name
        self.layers = [m for m in unet.modules() if isinstance(m, LoraLayer) and name in m.lora_A]
        self._scale = 1.0
        self._baked: dict[float, list[torch.nn.Parameter]] = {}  # see `bake`
        self.set_scale(1.0)

    @classmethod
    def inject(
        cls, unet: UNetMotionModel, rank: int = 16, name: str = ADAPTER_NAME, generator: torch.Generator | None = None
    ) -> MotionLoRA:
        """Add a fresh adapter (A_up = 0, so the model is unchanged) to every temporal q/k/v projection; its random
        A_down from `generator`, else from peft's draw on the global RNG."""
        if not motion_target_modules(unet):
            raise StillMovingError("the video UNet has no motion modules to adapt (is it a UNetMotionModel?)")
        # lora_alpha == r makes peft's own scaling 1, so alpha is exactly the adapter weight set below.
        config = LoraConfig(r=rank, lora_alpha=rank, target_modules=target_pattern(unet), init_lora_weights=True)
        peft_ready(unet).add_adapter(config, adapter_name=name)
        motion = cls(unet, name)
        if generator is not None:
            motion._draw_down(generator)
        return motion

    def _draw_down(self, generator: torch.Generator) -> None:
        """A_down of every wrapped projection drawn again from `generator`, in module order, as peft draws it
        (kaiming-uniform, a = sqrt 5; peft's `reset_lora_parameters` takes no generator, only the global RNG)."""
        with torch.no_grad():
            for layer in self.layers:
                down = layer.lora_A[self.name].weight  # (r, in_features)
                fresh = torch.nn.init.kaiming_uniform_(torch.empty(down.shape), a=math.sqrt(5), generator=generator)
                down.copy_(fresh)  # drawn on the CPU: the same values whatever the adapter's device and dtype

    @classmethod
    def load(cls, unet: UNetMotionModel, path: str | Path, name: str = ADAPTER_NAME) -> MotionLoRA:
        """Load an adapter saved by `save` (diffusers LoRA format) into `unet`."""
        check_motion_adapter_file(path)
        directory, weight_name = split_adapter_path(path)
        peft_ready(unet).load_lora_adapter(str(directory), weight_name=weight_name, prefix="unet", adapter_name=name)
        loaded = [n for n, m in unet.named_modules() if isinstance(m, LoraLayer) and name in m.lora_A]
        if sorted(loaded) != sorted(motion_target_modules(unet)):
            unet.delete_adapters(name)
            raise StillMovingError(f"{path} is not a motion adapter for this video model (it adapts other layers)")
        return cls(unet, name)

    @property
    def scale(self) -> float:
        """The motion scale alpha currently applied."""
        return self._scale

    def set_scale(self, scale: float) -> None:
        """alpha = 1: frozen videos; 0: the video model unchanged; < 0: more motion than the video model.

        Sets peft's per-layer scaling directly: `set_adapters` would also mark the adapter trainable,
        and stage 2 must keep it frozen while switching alpha every step. A scale that was baked swaps in
        its precomputed weights instead (see `bake`).
        """
        scale = float(scale)
        baked = self._baked.get(scale)
        for i, layer in enumerate(self.layers):
            layer.set_scale(self.name, scale)
            if self._baked:
                set_base_weight(layer, (baked or self._baked[0.0])[i], lora_branch=baked is None)
        self._scale = scale

    def bake(self, scales: list[float]) -> None:
        """For a FROZEN adapter switched between a few motion scales (stage 2 switches 1 and 0 every step):
        precompute W + alpha * A_down A_up for each scale, once. `set_scale` to a baked scale then swaps the
        projection's weight and skips peft's LoRA branch, so the forward costs what the bare video model's
        does. alpha = 0 is always the untouched base weight: scale 0 stays exactly V. The price is one copy of
        the wrapped q/k/v weights per nonzero scale. Bake after moving the model to its device and dtype;
        `unbake` before saving or fingerprinting the UNet.
        """
        self.unbake()
        base = [layer.base_layer.weight for layer in self.layers]
        baked = {0.0: base}
        with torch.no_grad():
            for scale in sorted({float(s) for s in scales} - {0.0}):
                merged = []
                for layer, weight in zip(self.layers, base):
                    layer.set_scale(self.name, scale)
                    delta = layer.get_delta_weight(self.name).to(device=weight.device, dtype=torch.float32)
                    merged.append(torch.nn.Parameter((weight.float() + delta).to(weight.dtype), requires_grad=False))
                baked[scale] = merged
        self._baked = baked
        self.set_scale(self._scale)

    def unbake(self) -> None:
        """Back to peft's LoRA branch on the base weights (any scale works again, nothing precomputed)."""
        if not self._baked:
            return
        for layer, weight in zip(self.layers, self._baked[0.0]):
            set_base_weight(layer, weight, lora_branch=True)  # peft's per-layer scaling is already self.scale's
        self._baked = {}

    @contextmanager
    def lifted(self) -> Iterator[None]:
        """The motion modules as plain diffusers modules while the body runs, then this adapter wrapped again,
        with the same weights and scale, around whatever modules are there by then.

        diffusers' `enable_free_noise` (and `disable_free_noise`) rebuild every motion-module transformer block and
        load the old block's state dict into the new one strictly; a peft-wrapped projection's keys
        (`to_q.base_layer.weight`, `to_q.lora_A...`) break that load. Lifting the adapter off first, and putting
        it back on the rebuilt blocks, keeps alpha working with long videos.
        """
        scale, config = self._scale, self.unet.peft_config[self.name]
        self.unbake()
        state = {k: v.detach().clone() for k, v in self.state_dict().items()}
        self.unet.unload_lora()  # peft's layers out, base projections back in place (the only peft adapter)
        try:
            yield
        finally:
            self.unet.add_adapter(config, adapter_name=self.name)
            set_peft_model_state_dict(self.unet, state, adapter_name=self.name)
            self.layers = [m for m in self.unet.modules() if isinstance(m, LoraLayer) and self.name in m.lora_A]
            self.set_scale(scale)

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        """A_down and A_up of every wrapped projection."""
        return [p for n, p in self.unet.named_parameters() if f".{self.name}." in n and "lora_" in n]

    def state_dict(self) -> dict[str, torch.Tensor]:
        """peft-format keys (`...to_q.lora_A.weight`), without the adapter name."""
        return get_peft_model_state_dict(self.unet, adapter_name=self.name)

    def save(self, path: str | Path) -> Path:
        """Write the adapter in diffusers' LoRA format (`unet.`-prefixed keys, safetensors)."""
        directory, weight_name = split_adapter_path(path)
        config = self.unet.peft_config[self.name]
        metadata = {"r": config.r, "lora_alpha": config.lora_alpha, "target_modules": target_pattern(self.unet)}
        state = {k: v.detach().float().cpu().contiguous() for k, v in self.state_dict().items()}
        return atomic_write(
            directory / weight_name,
            lambda tmp: AnimateDiffPipeline.save_lora_weights(
                str(tmp.parent), unet_lora_layers=state, weight_name=tmp.name, unet_lora_adapter_metadata=metadata
            ),
        )
