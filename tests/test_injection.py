"""Weight injection: only spatial keys change, and a UNet that does not fit is refused by name."""

import pytest
import torch
from conftest import generate, perturb
from diffusers import UNet2DConditionModel

from stillmoving.errors import StillMovingError
from stillmoving.injection import inject_t2i_weights, is_motion_key, t2i_unet_from_t2v


def customized(unet2d: UNet2DConditionModel, seed: int = 5) -> UNet2DConditionModel:
    perturb(unet2d.parameters(), seed=seed, scale=0.05, add=True)
    return unet2d


def test_t2i_rebuilt_from_t2v_is_the_same_model(tiny_pipe):
    t2i = t2i_unet_from_t2v(tiny_pipe.unet)
    assert isinstance(t2i, UNet2DConditionModel)
    before = generate(tiny_pipe)
    inject_t2i_weights(tiny_pipe.unet, t2i)
    assert torch.equal(generate(tiny_pipe), before)


def test_injection_changes_every_spatial_key_and_no_motion_key(tiny_pipe):
    before = {k: v.clone() for k, v in tiny_pipe.unet.state_dict().items()}
    m1 = customized(t2i_unet_from_t2v(tiny_pipe.unet))
    inject_t2i_weights(tiny_pipe.unet, m1)
    after = tiny_pipe.unet.state_dict()
    motion = [k for k in before if is_motion_key(k)]
    spatial = [k for k in before if not is_motion_key(k)]
    assert motion and spatial
    assert all(torch.equal(before[k], after[k]) for k in motion)
    assert all(torch.equal(after[k], m1.state_dict()[k]) for k in spatial)
    assert all(not torch.equal(before[k], after[k]) for k in spatial if before[k].is_floating_point())


def test_other_architecture_is_refused_naming_key_and_shapes(tiny_pipe):
    other = UNet2DConditionModel(
        block_out_channels=(32, 48),
        layers_per_block=1,
        norm_num_groups=8,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=2,
        sample_size=16,
    )
    with pytest.raises(
        StillMovingError,
        match=r"customized UNet does not fit the video model: \S+ has shape "
        r"\(48,.*\), the video model expects \(64,",
    ):
        inject_t2i_weights(tiny_pipe.unet, other)


def test_missing_and_extra_keys_are_refused(tiny_pipe):
    state = t2i_unet_from_t2v(tiny_pipe.unet).state_dict()
    extra = {**state, "foo.weight": torch.zeros(1)}
    with pytest.raises(StillMovingError, match="it has key 'foo.weight'"):
        inject_t2i_weights(tiny_pipe.unet, extra)
    state.pop("conv_in.weight")
    with pytest.raises(StillMovingError, match="it lacks 'conv_in.weight'"):
        inject_t2i_weights(tiny_pipe.unet, state)
