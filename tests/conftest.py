"""Tiny seeded models built in-process; nothing touches the network."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

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
