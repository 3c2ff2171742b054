"""Tiny seeded models built in-process; nothing touches the network."""

import json
import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The prior-video cache of this test process (subprocesses inherit it): never the user's ~/.cache.
os.environ["STILLMOVING_CACHE"] = tempfile.mkdtemp(prefix="stillmoving-test-cache-")

import pytest
import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)  # one test process per core

from stillmoving.world.architectures import build_pipeline

WORDS = ["a", "red", "blue", "circle", "square", "moving", "left", "right", "dog", "photo", "of"]
PROMPT = "a red circle moving left"
CALL = dict(num_frames=4, height=32, width=32, num_inference_steps=2, output_type="pt")


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    """A tiny AnimateDiff pipeline saved in the standard diffusers layout."""
    root = tmp_path_factory.mktemp("tiny")
    pipe = build_pipeline("tiny", WORDS, root / "tokenizer_src", resolution=32, seed=0)
    pipe.save_pretrained(root / "t2v")
    return root / "t2v"


@pytest.fixture
def tiny_pipe(tiny_dir):
    from stillmoving.pipeline import StillMovingPipeline

    pipe = StillMovingPipeline.from_pretrained(tiny_dir)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def generate(pipe, seed=0, **overrides):
    kwargs = {**CALL, **overrides}
    return pipe(PROMPT, generator=torch.Generator().manual_seed(seed), **kwargs).frames


def perturb(params, seed: int = 0, scale: float = 0.1, add: bool = False) -> None:
    """Seeded gaussian values in place (or added): a stand-in for training, so adapters change outputs."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in params:
            noise = torch.randn(p.shape, generator=gen) * scale
            p.add_(noise) if add else p.copy_(noise)


def save_customized_unet(tiny_dir, path, seed: int = 5):
    """The tiny T2V's own T2I with its weights nudged: a stand-in for a DreamBooth UNet folder."""
    from diffusers import UNetMotionModel

    from stillmoving.injection import t2i_unet_from_t2v

    unet = t2i_unet_from_t2v(UNetMotionModel.from_pretrained(tiny_dir, subfolder="unet"))
    perturb(unet.parameters(), seed=seed, scale=0.02, add=True)
    unet.save_pretrained(path)
    return path


def spy_gradients(module, monkeypatch, name: str = "train"):
    """Wrap `module.<name>` (the training loop) to record which parameters get gradients on one extra backward."""
    seen = {}
    real = getattr(module, name)

    def wrapper(accelerator, model, optimizer, schedule, cfg, loss_terms, *args, **kwargs):
        for term in loss_terms():
            term().backward()
        seen["grad"] = {n for n, p in model.named_parameters() if p.grad is not None}
        seen["trainable"] = {n for n, p in model.named_parameters() if p.requires_grad}
        seen["all"] = {n for n, _ in model.named_parameters()}
        optimizer.zero_grad(set_to_none=True)
        return real(accelerator, model, optimizer, schedule, cfg, loss_terms, *args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return seen


@pytest.fixture(scope="session")
def stage2_inputs(tiny_dir, tmp_path_factory):
    """What a stage-2 run needs besides V: a 1-step motion adapter of the tiny T2V and a customized UNet."""
    from stillmoving.training.config import MotionAdapterConfig
    from stillmoving.training.motion_stage import train_motion_adapter

    root = tmp_path_factory.mktemp("stage2_inputs")
    adapter = train_motion_adapter(
        MotionAdapterConfig(
            model=str(tiny_dir),
            output=str(root / "motion"),
            sample_prompt=["a red circle"],
            num_sampled_videos=1,
            rank=2,
            num_frames=4,
            height=32,
            width=32,
            steps=1,
            sample_steps=2,
        )
    )
    return {"motion_adapter": adapter, "customized": save_customized_unet(tiny_dir, root / "m1")}


def customized_with(tiny_dir, stage2_inputs, output, **changes) -> tuple[dict, dict]:
    """Train `tiny_customize`'s adapters with `changes`: their tensors and the run record's config."""
    from safetensors.torch import load_file

    from stillmoving.training.spatial_stage import train_spatial_adapters

    path = train_spatial_adapters(tiny_customize(tiny_dir, stage2_inputs, output, **changes))
    return load_file(str(path)), json.loads((Path(output) / "customize_run.json").read_text())["config"]


def differ(a: dict, b: dict) -> bool:
    """Two adapter files with the same keys, some tensor not equal."""
    assert a.keys() == b.keys()
    return any(not torch.equal(a[k], b[k]) for k in a)


def tiny_customize(tiny_dir, stage2_inputs, output, **changes):
    """A CustomizeConfig of the tiny T2V and its stage-2 inputs, sized to run in seconds; `changes` on top."""
    from stillmoving.training.config import CustomizeConfig

    sizes = dict(
        prompt=["a sks dog"],
        identifier="sks",
        num_images=1,
        spatial_rank=2,
        num_frames=4,
        height=32,
        width=32,
        steps=2,
        sample_steps=2,
        guidance_scale=1.0,
        num_validation_videos=0,
    )
    return CustomizeConfig(
        model=str(tiny_dir),
        output=str(output),
        motion_adapter=str(stage2_inputs["motion_adapter"]),
        customized=str(stage2_inputs["customized"]),
        **{**sizes, **changes},
    )
