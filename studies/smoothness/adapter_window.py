"""Where in sampling do the spatial adapters repair, and where do they cost? The demo's trained adapters are applied
only on part of the denoising (a window of DDIM steps) or only on one half of the classifier-free guidance batch,
the section's videos regenerated and scored against naive injection (paired 95% intervals).

python studies/smoothness/adapter_window.py DEMO_DIR TARGET VIDEO_MODEL LORA_WEIGHT ADAPTERS OUT WINDOW...
  WINDOW: all | cond | uncond | steps:A-B (adapters on DDIM steps A..B-1 of the demo's 15, 0 the noisiest) |
          scale:S (all, every A_up times S); "+random" (e.g. uncond+random): each layer's A_up replaced by a random
          matrix of the same Frobenius norm (seed 0), the control for "any perturbation would do"
  e.g. python studies/smoothness/adapter_window.py runs/demo14 star animatediff 1 \
         runs/demo14/work/star/animatediff/still_moving/spatial_adapters.safetensors runs/window_star \
         all cond uncond steps:0-5 steps:5-15
"""

import json
import os
import sys
from pathlib import Path

import torch
from recipes import compared, figures, section, videos

from stillmoving.adapters.spatial import _adapt_output
from stillmoving.loading import assemble_pipeline


class Gate:
    """The adapters' hooks, replaced by ones that adapt only the chosen half of the batch and only on chosen steps."""

    def __init__(self, pipe, window: str, steps: int):
        adapters, self.unet = pipe.spatial_adapters, pipe.unet
        adapters.detach()
        self.step, self.steps, self.half, self.per_video = -1, None, None, steps
        if window in ("cond", "uncond"):
            self.half = window
        elif window.startswith("steps:"):
            a, b = window[len("steps:") :].split("-")
            self.steps = range(int(a), int(b))
        self.unet.register_forward_pre_hook(self.count)
        modules = dict(self.unet.named_modules())
        for name, layer in zip(adapters.placements, adapters.layers):
            modules[name].register_forward_hook(lambda m, a, out, layer=layer: self.adapt(layer, out))

    def count(self, module, args):
        self.step += 1

    def adapt(self, layer, output):
        # one UNet call per DDIM step (the guidance batch is one call)
        if self.steps is not None and self.step % self.per_video not in self.steps:
            return output
        if self.half is None:
            return _adapt_output(layer, output)
        x = output if isinstance(output, torch.Tensor) else output[0] if isinstance(output, tuple) else output.sample
        n = x.shape[0] // 2  # [uncond frames, cond frames]
        part = x[n:] if self.half == "cond" else x[:n]
        part.copy_(_adapt_output(layer, part.clone()))
        return output


@torch.no_grad()
def randomize(adapters) -> None:
    generator = torch.Generator().manual_seed(0)
    for layer in adapters.layers:
        noise = torch.randn(layer.up.shape, generator=generator)
        layer.up.copy_(noise * layer.up.norm() / noise.norm())


def main(demo: Path, target: str, video_model: str, weight: float, adapters: str, out: Path, windows: list[str]):
    torch.set_num_threads(int(os.environ.get("THREADS", 2)))
    cfg, m1 = section(demo, target, video_model, weight)
    out.mkdir(parents=True, exist_ok=True)
    cache = out / "naive.json"
    if not cache.exists():
        cache.write_text(json.dumps(videos(cfg, target, m1, None)))
    naive = json.loads(cache.read_text())
    for window in windows:
        pipe = assemble_pipeline(cfg.model, customized=m1["customized"], loras=m1["loras"], spatial_adapters=adapters)
        window, _, control = window.partition("+")
        if control == "random":
            randomize(pipe.spatial_adapters)
        if window.startswith("scale:"):
            pipe.spatial_adapters.scale_(float(window[len("scale:") :]))
        elif window != "all":
            Gate(pipe, window, cfg.sample_steps)
        name = window + (f"+{control}" if control else "")
        print(json.dumps({"window": name, **compared(figures(pipe, cfg, target), naive)}), flush=True)


if __name__ == "__main__":
    a = sys.argv
    main(Path(a[1]), a[2], a[3], float(a[4]), a[5], Path(a[6]), a[7:])
