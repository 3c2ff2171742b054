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


# ----------------------------------------------------------------------------- delta injection (--base-t2i)


def test_delta_weights_add_the_customization_to_the_video_models_own_weights_exactly():
    from stillmoving.injection import delta_weights

    gen = torch.Generator().manual_seed(0)
    base = {"w": torch.randn(3, 4, generator=gen), "ids": torch.arange(4)}
    m1 = {"w": torch.randn(3, 4, generator=gen), "ids": torch.arange(4) + 1}
    own = {"w": torch.randn(3, 4, generator=gen), "ids": torch.arange(4) + 2}
    assert torch.equal(delta_weights(base, base, m1)["w"], m1["w"])  # V's spatial layers are M: naive injection
    out = delta_weights(own, base, m1)
    assert torch.equal(out["w"], m1["w"] + (own["w"] - base["w"]))
    assert torch.equal(out["ids"], m1["ids"])  # integer buffers are M1's
    with pytest.raises(StillMovingError, match="--base-t2i: 'extra' is in one model only"):
        delta_weights(own, {**base, "extra": torch.zeros(1)}, m1)
    with pytest.raises(StillMovingError, match=r"w is \(3, 4\) in the base and \(4, 3\)"):
        delta_weights(own, base, {**m1, "w": torch.zeros(4, 3)})


def test_base_t2i_injects_v_plus_m1_minus_m_and_is_naive_injection_where_v_is_m(tiny_dir, tmp_path):
    from conftest import save_customized_unet

    from stillmoving.injection import spatial_state_dict
    from stillmoving.loading import assemble_pipeline

    m1 = str(save_customized_unet(tiny_dir, tmp_path / "m1", seed=5))
    t2i_unet_from_t2v(assemble_pipeline(str(tiny_dir)).unet).save_pretrained(tmp_path / "own")  # V's own T2I, exactly
    own = str(tmp_path / "own")
    other = str(save_customized_unet(tiny_dir, tmp_path / "other", seed=7))  # a base V's spatial layers are not
    naive = spatial_state_dict(assemble_pipeline(str(tiny_dir), customized=m1).unet)
    same = spatial_state_dict(assemble_pipeline(str(tiny_dir), customized=m1, base_t2i=own).unet)
    assert all(torch.equal(same[k], naive[k]) for k in naive)
    v = spatial_state_dict(assemble_pipeline(str(tiny_dir)).unet)
    m = UNet2DConditionModel.from_pretrained(other).state_dict()
    delta = spatial_state_dict(assemble_pipeline(str(tiny_dir), customized=m1, base_t2i=other).unet)
    moved = [k for k in naive if naive[k].is_floating_point() and not torch.equal(v[k], m[k])]
    assert moved and all(torch.equal(delta[k], naive[k] + (v[k] - m[k])) for k in naive if naive[k].is_floating_point())
