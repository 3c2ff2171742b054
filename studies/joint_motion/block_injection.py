"""Where in the jointly trained model's UNet do its own spatial weights keep the motion, and where do M1's carry the
look? Delta injection, V + (M1 - M), moves as much as the base T2V and loses a third of naive injection's look
(session 31); here it is applied in one part of the UNet only, naive injection (M1) everywhere else ("delta in P"),
and the other way round ("M1 in P": delta injection everywhere but P), for each part P: down_blocks.0,
down_blocks.1, mid_block, up_blocks.0, up_blocks.1 and the rest (conv_in, the time embedding, conv_norm_out,
conv_out). The demo's videos of a section (FULL=1: 8 x 4), each against naive injection, paired 95% intervals.

Also "delta at B": M1 + B (V - M) everywhere, a share B of the video model's own change kept (B = 0 naive injection,
1 delta injection; session 32); and "delta above T" / "M1 above T": delta injection at the denoising steps whose
timestep is T or more and M1 below, or the other way round; "SM above T": M1 with the spatial adapters of the file
ADAPTERS (trained on naive injection) at timesteps T or more, delta injection without them below (session 32).

python studies/joint_motion/block_injection.py DEMO_DIR TARGET OUT.json [VARIANT ...]
  OUT: every variant's per-video values; VARIANT: e.g. "M1 in up_blocks.1", "delta in rest", "delta everywhere" or
  "delta at 0.5" (default: every one of the first two kinds); the base T2V's videos are scored too. SEED=N: a `demo
  --seed N`'s prompts and seeds with the same customized T2I (held-out pairs).
"""

import contextlib
import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "smoothness"))
from recipes import compared, figures, means, section  # noqa: E402

from stillmoving.injection import delta_weights, interpolate_weights, spatial_state_dict  # noqa: E402
from stillmoving.loading import assemble_pipeline  # noqa: E402
from stillmoving.world.weights import shipped_model  # noqa: E402

PARTS = ("down_blocks.0", "down_blocks.1", "mid_block", "up_blocks.0", "up_blocks.1", "rest")


def part(key: str) -> str:
    head = key.split(".")
    name = ".".join(head[:2]) if head[0] in ("down_blocks", "up_blocks") else head[0]
    return name if name in PARTS else "rest"


@contextlib.contextmanager
def by_timestep(unet, above: dict, below: dict, threshold: float):
    """While open, `unet` holds the spatial weights `above` at timesteps >= `threshold` and `below` under it, swapped
    in by a forward pre-hook whenever the denoising loop crosses it."""
    held = [None]

    def swap(module, args, kwargs):
        t = kwargs["timestep"] if "timestep" in kwargs else args[1]
        regime = "above" if float(torch.as_tensor(t).flatten()[0]) >= threshold else "below"
        if regime != held[0]:
            module.load_state_dict(above if regime == "above" else below, strict=False)
            held[0] = regime

    handle = unet.register_forward_pre_hook(swap, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


def main(demo: Path, target: str, out: Path, chosen: list[str]) -> None:
    torch.set_num_threads(int(os.environ.get("THREADS", 2)))
    cfg, m1 = section(demo, target, "joint", 1.0)
    v_spatial = spatial_state_dict(assemble_pipeline(cfg.model).unet)
    m_spatial = spatial_state_dict(assemble_pipeline(str(shipped_model())).unet)
    pipe = assemble_pipeline(cfg.model, customized=m1["customized"], loras=m1["loras"])
    m1_spatial = {k: w.clone() for k, w in spatial_state_dict(pipe.unet).items()}
    delta = delta_weights(v_spatial, m_spatial, m1_spatial)
    kept = {
        "base T2V": figures(assemble_pipeline(cfg.model), cfg, target),
        "naive injection": figures(pipe, cfg, target),
    }
    for name in kept:
        print(json.dumps({"variant": name, **means(kept[name])}), flush=True)
    variants = [("delta everywhere", "", m1_spatial, delta)]  # no part is named "": delta injection everywhere
    variants += [(f"delta in {p}", p, delta, m1_spatial) for p in PARTS]
    variants += [(f"M1 in {p}", p, m1_spatial, delta) for p in PARTS]
    for name in chosen:  # "delta at B": M1 + B (delta - M1) = M1 + B (V - M), in every part
        if name.startswith("delta at "):
            variants.append((name, "", m1_spatial, interpolate_weights(m1_spatial, delta, float(name.split()[-1]))))
    for name in chosen:  # "delta above T", "M1 above T": one injection at the noisier steps, the other after
        first, _, threshold = name.partition(" above ")
        if threshold:
            above, below = (delta, m1_spatial) if first == "delta" else (m1_spatial, delta)
            if first == "SM":  # the adapters act from T up (their own gate), with M1 there
                pipe.load_spatial_adapters(os.environ["ADAPTERS"], min_timestep=int(threshold))
            with by_timestep(pipe.unet, above, below, float(threshold)):
                kept[name] = figures(pipe, cfg, target)
            if first == "SM":
                pipe.spatial_adapters.detach()
                pipe.spatial_adapters = None
            print(json.dumps({"variant": name, **compared(kept[name], kept["naive injection"])}), flush=True)
            out.write_text(json.dumps(kept))
    for name, where, inside, outside in variants:
        if name not in (chosen or [v[0] for v in variants[1:]]):
            continue
        pipe.unet.load_state_dict({k: (inside if part(k) == where else outside)[k] for k in m1_spatial}, strict=False)
        kept[name] = figures(pipe, cfg, target)
        print(json.dumps({"variant": name, **compared(kept[name], kept["naive injection"])}), flush=True)
        out.write_text(json.dumps(kept))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), sys.argv[4:])
