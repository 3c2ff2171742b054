"""What the video-model family tests share (test_sdxl.py, test_zeroscope.py, and the tiny models they build,
sdxl_models.py and zeroscope_models.py): the tiny VAE, frames of one seeded call, and a saved motion adapter with
nonzero weights. Nothing touches the network."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import PROMPT, perturb
from diffusers import AutoencoderKL

RESOLUTION = 32  # pixels; the VAE halves it
CALL = dict(num_frames=4, height=RESOLUTION, width=RESOLUTION, num_inference_steps=2, output_type="pt")


def tiny_vae(seed: int) -> AutoencoderKL:
    """The families' VAE: two levels (a factor of 2), 4 latent channels, seeded."""
    torch.manual_seed(seed)
    return AutoencoderKL(
        block_out_channels=(16, 32),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=RESOLUTION,
    )


def frames(pipe, seed=0, **overrides):
    """The frames of `PROMPT` at `CALL`'s size and steps (overridable), for one seed."""
    pipe.set_progress_bar_config(disable=True)
    return pipe(PROMPT, generator=torch.Generator().manual_seed(seed), **{**CALL, **overrides}).frames


def save_motion_adapter(t2v: Path, folder: Path) -> Path:
    """A motion adapter on the video model folder `t2v` with nonzero weights (a stand-in for a trained one), saved in
    `folder`; returns its file."""
    from stillmoving.adapters.motion import MotionLoRA
    from stillmoving.loading import load_t2v

    pipe = load_t2v(t2v)
    motion = MotionLoRA.inject(pipe.unet, rank=2)
    perturb(motion.trainable_parameters(), seed=1, scale=0.3)
    return motion.save(folder / "adapter")


def motion_adapter_fixture(models: str):
    """The module fixture `motion_adapter_file`: `save_motion_adapter` on the family fixture `models`'s `t2v`."""

    @pytest.fixture(scope="module")
    def motion_adapter_file(request, tmp_path_factory):
        return save_motion_adapter(request.getfixturevalue(models) / "t2v", tmp_path_factory.mktemp(f"{models}_motion"))

    return motion_adapter_file
