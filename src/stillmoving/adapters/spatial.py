"""Still-Moving's spatial adapters: a low-rank channel map after every injected spatial layer.

    Adapter(X) = X @ (I + A_down @ A_up),   A_down in R^{C x r} random,  A_up in R^{r x C} zero
                                                         (docs/method.md, stage 2; paper eq. 2)

X holds one C-vector per pixel and frame, so the map acts on the channel dimension of the (B*F, C, H, W)
output of each ResNet block and each spatial transformer of the down, mid and up blocks: exactly where
features leave the customized T2I layers on their way to the temporal layers. A_up starts at zero, so
the adapters are the identity until trained. They attach with forward hooks, which leaves the UNet's
own parameter names untouched (the UNet still saves and loads as plain diffusers) and re-run under
gradient checkpointing, and which work on any diffusers UNet of the same architecture.

`min_timestep` T > 0 makes them act only on UNet calls whose timestep is at least T: the noisier part of denoising,
where the video model lays out the frames and their motion; below T the customized T2I renders its details alone
(`customize --spatial-min-timestep`, docs/method.md, "Where in denoising the adapters repair and where they cost").
A pre-hook on the UNet reads each call's timestep argument; 0 (the paper's adapters) leaves every call adapted.

`blocks` keeps the adapters on some of the UNet's parts only: "down", "mid" and "up" (its down_blocks, mid_block and
up_blocks; the paper's: all three). The placements saved in the file say which, and `generate` attaches those
(`customize --spatial-blocks`, docs/method.md, "Where in the UNet the adapters repair and where they cost").
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import re
import warnings
from pathlib import Path

import torch
from diffusers.models.resnet import ResnetBlock2D
from diffusers.models.transformers.transformer_2d import Transformer2DModel
from safetensors.torch import save_file

from stillmoving.errors import StillMovingError
from stillmoving.files import atomic_write
from stillmoving.fingerprint import weights_fingerprint
from stillmoving.formats.safety import read_adapter_file, read_adapter_header

FORMAT = "stillmoving.spatial_adapters"
FINGERPRINT_KEY = "unet_fingerprint"  # metadata: weights_fingerprint of the UNet (M1 injected) they trained with
MIN_TIMESTEP_KEY = "min_timestep"  # metadata: the lowest timestep the adapters trained on and act at (0: all)
SHARED_KEY = "shared_correction"  # metadata: "1" when one correction, from the frames' mean, goes to every frame
FORMAT_VERSION = "1"
PLACEMENT_PATTERN = r"(down_blocks\.\d+|mid_block|up_blocks\.\d+)\.(resnets|attentions)\.\d+"
BLOCKS = {"down": "down_blocks", "mid": "mid_block", "up": "up_blocks"}  # `--spatial-blocks` names -> UNet parts
ALL_BLOCKS = ",".join(BLOCKS)


def parse_blocks(text: str, flag: str = "--spatial-blocks") -> tuple[str, ...]:
    """`--spatial-blocks` ("down,mid,up", any non-empty subset, comma-separated) as a tuple, or refused in one line
    naming `flag`."""
    names = tuple(part.strip() for part in text.split(","))
    unknown = [n for n in names if n not in BLOCKS]
    if unknown or not text.strip() or len(set(names)) != len(names):
        raise StillMovingError(
            f"{flag} {text!r}: give one or more of {', '.join(BLOCKS)}, comma-separated, each once "
            f"(e.g. {ALL_BLOCKS}, the paper's, or down,mid)"
        )
    return names


def in_blocks(layers, blocks: str) -> list[bool]:
    """For each layer name ("down_blocks.0.resnets.0", ...), whether it lies in `blocks` (`parse_blocks`)."""
    kept = {BLOCKS[name] for name in parse_blocks(blocks)}
    return [name.split(".")[0] in kept for name in layers]


def spatial_placements(unet: torch.nn.Module) -> dict[str, int]:
    """Every ResNet block and spatial transformer of the down/mid/up blocks, mapped to its output channels."""
    placements = {}
    for name, module in unet.named_modules():
        if re.fullmatch(PLACEMENT_PATTERN, name) and isinstance(module, (ResnetBlock2D, Transformer2DModel)):
            placements[name] = module.out_channels
    return placements


def _like(weight: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """`weight` on x's device and in x's dtype; `.to()` only when needed (its call alone cost ~1% of a world
    UNet forward across the 12 adapters)."""
    if weight.dtype == x.dtype and weight.device == x.device:
        return weight
    return weight.to(device=x.device, dtype=x.dtype)


def _no_autocast(device_type: str):
    """Autocast off on `device_type` (a no-op where autocast does not exist, e.g. the meta device)."""
    if torch.amp.is_autocast_available(device_type):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()


def channel_adapter(x: torch.Tensor, down: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """X @ (I + A_down @ A_up) on the channel dimension of x (N, C, H, W), in x's dtype.

    Written as x + (x A_down) A_up so it costs O(C r) per pixel, not O(C^2), and is exactly x when A_up = 0:
    one batched matmul and one fused multiply-add (baddbmm) over the flattened pixels, as `_ChannelAdapterFn`,
    whose hand-written backward is 4 batched matmuls and no copies.
    Forward + backward on the 2-core CPU, rank 8 (`python benchmarks/channel_adapter.py`): 377 us against
    610 us through autograd at (8, 64, 8, 8), 59 ms against 119 ms at (32, 320, 32, 32); the first version's
    two 1x1 convolutions and an add took 1166 us and 202 ms.
    """
    down, up = _like(down, x), _like(up, x)
    n, c = x.shape[:2]
    with _no_autocast(x.device.type):  # x's dtype throughout, forward and backward alike
        return _ChannelAdapterFn.apply(x.reshape(n, c, -1), down, up).view_as(x)


@torch.no_grad()
def channel_adapter_(x: torch.Tensor, down: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """`channel_adapter` written into x itself, for inference: no output is allocated (x must be contiguous
    and must not be needed unadapted; the hooks pass a layer's fresh output)."""
    down, up = _like(down, x), _like(up, x)
    n, c = x.shape[:2]
    pixels = x.view(n, c, -1)
    with _no_autocast(x.device.type):  # an in-place op must stay in x's dtype
        pixels.baddbmm_(up.t().expand(n, -1, -1), _down_project(pixels, down))
    return x


def _down_project(pixels: torch.Tensor, down: torch.Tensor) -> torch.Tensor:
    """A_down^T p for p (n, C, L): (n, r, L)."""
    return torch.bmm(down.t().expand(pixels.shape[0], -1, -1), pixels)


class _ChannelAdapterFn(torch.autograd.Function):
    """out = p + A_up^T (A_down^T p) for p (n, C, L); the gradients of p, A_down and A_up by hand.

    Autograd's own backward of the same two ops copied the expanded and transposed operands (4 copies
    and 3 reductions per layer); this one is g_low = A_up g, g_p = g + A_down g_low, and the two weight
    gradients as batched matmuls summed over n, each computed only when it is needed.
    """

    @staticmethod
    def forward(ctx, pixels: torch.Tensor, down: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
        low = _down_project(pixels, down)  # (n, r, L)
        ctx.save_for_backward(pixels, low, down, up)
        return torch.baddbmm(pixels, up.t().expand(pixels.shape[0], -1, -1), low)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        pixels, low, down, up = ctx.saved_tensors
        n = pixels.shape[0]
        grad = grad.to(pixels.dtype)
        grad_low = torch.bmm(up.expand(n, -1, -1), grad)  # (n, r, L)
        need_pixels, need_down, need_up = ctx.needs_input_grad
        grad_pixels = torch.baddbmm(grad, down.expand(n, -1, -1), grad_low) if need_pixels else None
        grad_down = torch.bmm(pixels, grad_low.transpose(1, 2)).sum(0) if need_down else None  # (C, r)
        grad_up = torch.bmm(low, grad.transpose(1, 2)).sum(0) if need_up else None  # (r, C)
        return grad_pixels, grad_down, grad_up


def shared_channel_adapter(x: torch.Tensor, down: torch.Tensor, up: torch.Tensor, frames: int) -> torch.Tensor:
    """x + (mean over each video's frames of x) A_down A_up for x (B*F, C, H, W), frames contiguous per video
    (diffusers' motion UNet's layout): one correction, the same for every frame of a video, so the adapters
    cannot make the frames differ (`customize --shared-correction`; docs/method.md, "One correction for every
    frame"). Exactly x when A_up = 0; with one frame, `channel_adapter`."""
    down, up = _like(down, x), _like(up, x)
    n, c, h, w = x.shape
    mean = x.view(n // frames, frames, c, h * w).mean(dim=1)  # (B, C, L)
    with _no_autocast(x.device.type):
        correction = torch.bmm(up.t().expand(len(mean), -1, -1), _down_project(mean, down))  # (B, C, L)
    return x + correction.repeat_interleave(frames, dim=0).view_as(x)


class ChannelAdapter(torch.nn.Module):
    """One layer's adapter: A_down (C, r) random (drawn from `generator`, else the global RNG), A_up (r, C) zero."""

    def __init__(self, channels: int, rank: int, generator: torch.Generator | None = None):
        super().__init__()
        bound = 1.0 / math.sqrt(channels)  # peft's default LoRA A init, kaiming-uniform(a=sqrt 5)
        self.down = torch.nn.Parameter(torch.empty(channels, rank).uniform_(-bound, bound, generator=generator))
        self.up = torch.nn.Parameter(torch.zeros(rank, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return channel_adapter(x, self.down, self.up)


def _adapt(adapter: ChannelAdapter, x: torch.Tensor, frames: int = 0) -> torch.Tensor:
    """The hook's arithmetic: in place when nothing records gradients (the layer's output is fresh and not yet
    seen by any other module), out of place otherwise; `frames` > 0: one shared correction per video."""
    if frames:
        return shared_channel_adapter(x, adapter.down, adapter.up, frames)
    if torch.is_grad_enabled() or x.requires_grad or not x.is_contiguous():
        return adapter(x)
    return channel_adapter_(x, adapter.down, adapter.up)


def _adapt_output(adapter: ChannelAdapter, output, frames: int = 0):
    """Apply `adapter` to a spatial layer's output: a tensor, a `return_dict=False` tuple, or an output dataclass."""
    if isinstance(output, torch.Tensor):
        return _adapt(adapter, output, frames)
    if isinstance(output, tuple):
        return (_adapt(adapter, output[0], frames),) + tuple(output[1:])
    output.sample = _adapt(adapter, output.sample, frames)
    return output


def check_format(path: str | Path, metadata: dict[str, str]) -> None:
    """Refuse a file that is not a spatial-adapter file of the version this stillmoving reads."""
    if metadata.get("format") != FORMAT:
        raise StillMovingError(f"{path} is not a Still-Moving spatial-adapter file")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise StillMovingError(
            f"{path} has spatial-adapter format version {metadata.get('format_version')}, "
            f"this stillmoving reads version {FORMAT_VERSION}"
        )


def check_file(path: str | Path) -> None:
    """A spatial-adapter file judged from its header alone (readable, the format, its version), before any model
    loads; `SpatialAdapters.load` checks its tensors against its placements."""
    check_format(path, read_adapter_header(path)[0])


class SpatialAdapters(torch.nn.Module):
    """The set of per-layer channel adapters of one customization, attachable to a UNet by hooks."""

    def __init__(self, placements: dict[str, int], rank: int, generator: torch.Generator | None = None):
        super().__init__()
        self.rank = rank
        self.metadata: dict[str, str] = {}  # the file's metadata when loaded (models it was trained with)
        self.placements = dict(placements)  # layer name -> channels, in the UNet's module order
        self.layers = torch.nn.ModuleList(ChannelAdapter(c, rank, generator) for c in self.placements.values())
        self.min_timestep = 0  # act only on UNet calls at timesteps >= this (0: every call)
        self.shared = False  # one correction per video, from its frames' mean (`shared_channel_adapter`)
        self._active = True  # whether the current UNet call is adapted (set by the UNet's pre-hook)
        self._frames = 1  # frames per video of the current UNet call (set by the UNet's pre-hook)
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    @classmethod
    def for_unet(
        cls,
        unet: torch.nn.Module,
        rank: int = 4,
        generator: torch.Generator | None = None,
        blocks: str = ALL_BLOCKS,
    ) -> SpatialAdapters:
        """Fresh (identity) adapters for every spatial layer of `unet` in `blocks` (`parse_blocks`: "down,mid,up", the
        paper's, or a subset); their random A_down from `generator`, drawn for every layer in the UNet's order, so a
        layer's A_down is the same whichever blocks are kept."""
        placements = spatial_placements(unet)
        inside = in_blocks(placements, blocks)  # unknown blocks refused first
        if not placements:
            raise StillMovingError("the UNet has no ResNet blocks or spatial transformers to adapt")
        every = cls(placements, rank, generator)
        names = [name for name, keep in zip(placements, inside) if keep]
        if not names:
            raise StillMovingError(
                f"--spatial-blocks {blocks}: the UNet has no ResNet block or spatial transformer there"
            )
        if len(names) == len(placements):
            return every
        adapters = cls({name: placements[name] for name in names}, rank)
        with torch.no_grad():
            drawn = dict(zip(placements, every.layers))
            for name, layer in zip(names, adapters.layers):
                layer.down.copy_(drawn[name].down)
        return adapters

    @torch.no_grad()
    def scale_(self, scale: float) -> SpatialAdapters:
        """Every A_up times `scale`, in place: the adapters' strength at inference, as a LoRA's weight (each layer's
        output becomes x + scale * (x A_down) A_up; 0 is naive injection, 1 the adapters as trained)."""
        for layer in self.layers:
            layer.up.mul_(scale)
        return self

    @torch.no_grad()
    def keep_blocks_(self, blocks: str) -> SpatialAdapters:
        """Only the adapters in `blocks` (`parse_blocks`) act, in place: every other one's A_up is zero (the
        identity). `generate --spatial-blocks` applies part of adapters trained on more blocks (docs/method.md,
        "Where in the UNet the adapters repair and where they cost")."""
        inside = in_blocks(self.placements, blocks)
        if not any(inside):
            raise StillMovingError(f"--spatial-blocks {blocks}: these spatial adapters have none there")
        for layer, keep in zip(self.layers, inside):
            if not keep:
                layer.up.zero_()
        return self

    @contextlib.contextmanager
    def only_blocks(self, blocks: str):
        """A context in which only the adapters in `blocks` act (`keep_blocks_`); every A_up is as it was after."""
        ups = [layer.up.detach().clone() for layer in self.layers]
        self.keep_blocks_(blocks)
        try:
            yield self
        finally:
            with torch.no_grad():
                for layer, up in zip(self.layers, ups):
                    layer.up.copy_(up)

    def attach(self, unet: torch.nn.Module) -> SpatialAdapters:
        """Hook every adapter onto the output of its layer in `unet` (same architecture required)."""
        found = spatial_placements(unet)
        for name, channels in self.placements.items():
            if found.get(name) != channels:
                raise StillMovingError(
                    f"spatial adapters do not fit this UNet: layer {name} has {found.get(name)} channels, "
                    f"the adapter expects {channels}"
                )
        self.detach()
        self._handles.append(unet.register_forward_pre_hook(self._read_call, with_kwargs=True))
        modules = dict(unet.named_modules())
        for name, adapter in zip(self.placements, self.layers):
            self._handles.append(modules[name].register_forward_hook(functools.partial(self._adapt, adapter)))
        return self

    def _read_call(self, unet, args, kwargs) -> None:
        """The UNet's pre-hook: adapt this call when its timestep (every timestep of a batch) is >= min_timestep;
        note its frames per video (a video UNet's sample is (B, C, F, H, W)) for shared corrections."""
        sample = args[0] if args else kwargs.get("sample")
        self._frames = sample.shape[2] if sample is not None and sample.dim() == 5 else 1
        if self.min_timestep <= 0:
            self._active = True
            return
        timestep = args[1] if len(args) > 1 else kwargs.get("timestep")
        if timestep is None:
            raise StillMovingError("spatial adapters with a min_timestep need the UNet's timestep argument")
        self._active = bool(torch.as_tensor(timestep).min() >= self.min_timestep)

    def _adapt(self, adapter: ChannelAdapter, module, args, output):
        frames = self._frames if self.shared and self._frames > 1 else 0
        return _adapt_output(adapter, output, frames) if self._active else output

    def detach(self) -> None:
        """Remove the hooks: the UNet is back to its own outputs."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    @contextlib.contextmanager
    def detached(self, unet: torch.nn.Module):
        """A context in which `unet` runs without the adapters (naive injection); they are attached again after."""
        self.detach()
        try:
            yield
        finally:
            self.attach(unet)

    @property
    def attached(self) -> bool:
        return bool(self._handles)

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return list(self.parameters())

    def named_tensors(self) -> dict[str, torch.Tensor]:
        """`{layer}.down` / `{layer}.up` tensors, keyed by the UNet layer they follow."""
        tensors = {}
        for name, adapter in zip(self.placements, self.layers):
            tensors[f"{name}.down"] = adapter.down.detach().float().cpu().contiguous()
            tensors[f"{name}.up"] = adapter.up.detach().float().cpu().contiguous()
        return tensors

    def save(self, path: str | Path, extra_metadata: dict[str, str] | None = None) -> Path:
        """Write safetensors with metadata: format, version, rank and the placement list (layer, channels)."""
        metadata = {  # these adapters' own fields win over `extra_metadata` (e.g. the metadata they were read with)
            **(extra_metadata or {}),
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "rank": str(self.rank),
            "placements": json.dumps(list(self.placements.items())),
            MIN_TIMESTEP_KEY: str(self.min_timestep),
            SHARED_KEY: str(int(self.shared)),
        }
        tensors = self.named_tensors()
        return atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))

    @classmethod
    def load(cls, path: str | Path) -> SpatialAdapters:
        """Read adapters written by `save`; refuses files of another format or with inconsistent tensors."""
        metadata, tensors = read_adapter_file(path)
        check_format(path, metadata)
        placements = dict(json.loads(metadata["placements"]))
        adapters = cls(placements, int(metadata["rank"]))
        adapters.metadata = metadata
        try:  # files written before it have none: every timestep
            adapters.min_timestep = int(metadata.get(MIN_TIMESTEP_KEY, 0))
        except ValueError:
            raise StillMovingError(f"{path}: metadata {MIN_TIMESTEP_KEY} is not an integer") from None
        shared = metadata.get(SHARED_KEY, "0")  # files written before it have none: per-frame corrections
        if shared not in ("0", "1"):
            raise StillMovingError(f"{path}: metadata {SHARED_KEY} is {shared!r}, not 0 or 1")
        adapters.shared = shared == "1"
        expected = {k: tuple(v.shape) for k, v in adapters.named_tensors().items()}
        got = {k: tuple(v.shape) for k, v in tensors.items()}
        if expected != got:
            key = next(k for k in sorted(set(expected) | set(got)) if expected.get(k) != got.get(k))
            raise StillMovingError(
                f"{path}: tensor {key} has shape {got.get(key)}, metadata implies {expected.get(key)}"
            )
        with torch.no_grad():
            for name, adapter in zip(placements, adapters.layers):
                adapter.down.copy_(tensors[f"{name}.down"])
                adapter.up.copy_(tensors[f"{name}.up"])
        return adapters


def check_fingerprint(adapters: SpatialAdapters, unet: torch.nn.Module) -> None:
    """Warn (not fail: a user may re-inject on purpose) when the adapters were trained against other weights."""
    expected = adapters.metadata.get(FINGERPRINT_KEY)
    if not expected:
        return
    found = weights_fingerprint(unet)
    if expected != found:
        warnings.warn(
            f"spatial adapters were trained against other weights (fingerprint {expected}, this model "
            f"{found}): same architecture, different model; results may differ",
            stacklevel=3,
        )
