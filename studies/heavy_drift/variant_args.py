"""What evalv.py and temporal_attention.py share: a variant's arguments (NAME M1DIR [ADAPTERS] and the options of
the world, the video model and the adapters), its pipeline, and its videos of the target's evaluation prompts at the
world's sampling (8 frames, 32 px, 15 steps), scored by the world's oracle."""

import argparse

import motion_branch

from stillmoving.loading import assemble_pipeline
from stillmoving.training.config import parse_lora
from stillmoving.world.demo import Generation
from stillmoving.world.phases import evaluation_prompts, generate, score
from stillmoving.world.variants import Variant, VariantKind
from stillmoving.world.weights import shipped_model, shipped_motion_adapter


def parser(seeds: int) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    p.add_argument("name")
    p.add_argument("m1")
    p.add_argument("adapters", nargs="?")
    p.add_argument("--alpha", type=float, default=0.0, help="the motion adapter's scale (generate --motion-scale)")
    p.add_argument("--prompts", type=int, default=8)
    p.add_argument("--seeds", type=int, default=seeds)
    p.add_argument("--guidance", type=float, default=4.0)
    p.add_argument("--model", default=str(shipped_model()))
    p.add_argument("--motion-adapter", default=str(shipped_motion_adapter()))
    p.add_argument(
        "--spatial-blocks", default=None, help="generate --spatial-blocks: the adapters of these blocks only"
    )
    p.add_argument("--target", default="star", help="the world's customization target whose prompts and oracle score")
    p.add_argument("--lora", action="append", default=[], help="a style LoRA fused into M, PATH[:WEIGHT] (M1DIR: none)")
    return p


def pipeline(a: argparse.Namespace):
    """V with M1 (none: the base T2V) injected, the adapters (either kind, `motion_branch`) and the motion adapter."""
    motion_branch.use("load")
    return assemble_pipeline(
        a.model,
        customized=None if a.m1 == "none" else a.m1,
        loras=[parse_lora(x) for x in a.lora],
        spatial_adapters=a.adapters,
        motion_adapter=a.motion_adapter,
        spatial_blocks=a.spatial_blocks,
    )


def videos(pipe, a: argparse.Namespace) -> Variant:
    """The target's evaluation prompts x seeds, generated at `a.alpha` and scored."""
    prompts = evaluation_prompts(a.target, a.prompts, 2, 32, 8)
    made = generate(pipe, prompts, Generation(8, 32, 15, a.guidance), a.seeds, motion_scale=a.alpha)
    return score(made, a.target, VariantKind(a.name, a.name), "")
