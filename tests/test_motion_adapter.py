"""The motion adapter: which modules it touches, identity at init, a random init from the seed alone, the alpha knob,
diffusers format."""

import re

import conftest
import pytest
import torch
from conftest import generate
from diffusers import AnimateDiffPipeline

from stillmoving.adapters.motion import MotionLoRA, motion_target_modules
from stillmoving.errors import StillMovingError


def perturb(motion: MotionLoRA, seed: int = 1) -> None:
    """Stand-in for training: non-zero A_up so the adapter changes the model."""
    conftest.perturb(motion.trainable_parameters(), seed=seed, scale=0.3)


def test_targets_exactly_temporal_qkv_of_every_motion_module(tiny_pipe):
    names = motion_target_modules(tiny_pipe.unet)
    # tiny: 2 down levels x 1 layer, mid 1, 2 up levels x 2 layers = 7 motion modules, attn1+attn2, q/k/v
    blocks = [
        "down_blocks.0.motion_modules.0",
        "down_blocks.1.motion_modules.0",
        "mid_block.motion_modules.0",
        "up_blocks.0.motion_modules.0",
        "up_blocks.0.motion_modules.1",
        "up_blocks.1.motion_modules.0",
        "up_blocks.1.motion_modules.1",
    ]
    expected = {f"{b}.transformer_blocks.0.{a}.to_{p}" for b in blocks for a in ("attn1", "attn2") for p in "qkv"}
    assert set(names) == expected
    motion = MotionLoRA.inject(tiny_pipe.unet, rank=4)
    wrapped = {n.rsplit(".lora_", 1)[0] for n, _ in tiny_pipe.unet.named_parameters() if ".lora_" in n}
    assert wrapped == expected
    assert len(motion.trainable_parameters()) == 2 * len(expected)
    for p in motion.trainable_parameters():
        assert p.shape[0] == 4 or p.shape[1] == 4


def test_up_projection_starts_at_zero_and_down_is_random(tiny_pipe):
    MotionLoRA.inject(tiny_pipe.unet, rank=4)
    ups = [p for n, p in tiny_pipe.unet.named_parameters() if "lora_B" in n]
    downs = [p for n, p in tiny_pipe.unet.named_parameters() if "lora_A" in n]
    assert all(torch.count_nonzero(p) == 0 for p in ups)
    assert all(p.abs().sum() > 0 for p in downs)


def seeded_adapter(tiny_dir, seed: int | None, global_draws: int) -> dict[str, torch.Tensor]:
    """A fresh adapter's weights, injected after `global_draws` numbers were drawn from the global RNG (as loading a
    model draws them: a single file otherwise than a folder), with A_down from `seed` (None: peft's own draw)."""
    unet = AnimateDiffPipeline.from_pretrained(tiny_dir).unet
    torch.manual_seed(0)
    torch.rand(global_draws)
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    return MotionLoRA.inject(unet, rank=4, generator=generator).state_dict()


def test_a_seeded_adapter_depends_on_its_seed_alone(tiny_dir):
    same, after_more_draws, other_seed = (seeded_adapter(tiny_dir, s, n) for s, n in [(0, 1), (0, 1000), (1, 1)])
    assert same.keys() == after_more_draws.keys()
    assert all(torch.equal(v, after_more_draws[k]) for k, v in same.items())
    downs = [k for k in same if "lora_A" in k]
    assert len(downs) == 42 and not any(torch.equal(same[k], other_seed[k]) for k in downs)
    # peft's bound for its kaiming-uniform (a = sqrt 5) A: 1 / sqrt(in_features)
    assert all(0 < same[k].abs().max() <= same[k].shape[1] ** -0.5 for k in downs)
    assert all(torch.count_nonzero(v) == 0 for k, v in same.items() if "lora_B" in k)
    unseeded = [seeded_adapter(tiny_dir, None, n) for n in (1, 1000)]  # why the seed: peft draws on the global RNG
    assert not torch.equal(unseeded[0][downs[0]], unseeded[1][downs[0]])


@pytest.mark.parametrize("seeded", [False, True])
@pytest.mark.parametrize("scale", [1.0, 0.0, -1.0])
def test_fresh_adapter_is_identity_at_any_scale(tiny_pipe, scale, seeded):
    base = generate(tiny_pipe)
    motion = MotionLoRA.inject(tiny_pipe.unet, rank=4, generator=torch.Generator().manual_seed(0) if seeded else None)
    tiny_pipe.motion_lora = motion
    assert torch.equal(generate(tiny_pipe, motion_scale=scale), base)


def test_scale_zero_is_the_base_model_and_other_scales_are_not(tiny_pipe):
    base = generate(tiny_pipe)
    motion = MotionLoRA.inject(tiny_pipe.unet, rank=4)
    perturb(motion)
    tiny_pipe.motion_lora = motion
    assert torch.equal(generate(tiny_pipe, motion_scale=0.0), base)
    one, minus = generate(tiny_pipe, motion_scale=1.0), generate(tiny_pipe, motion_scale=-1.0)
    assert (one - base).abs().max() > 1e-3
    assert (minus - base).abs().max() > 1e-3
    assert (one - minus).abs().max() > 1e-3


def test_baked_scales_match_the_lora_branch_and_zero_stays_exactly_the_base(tiny_pipe):
    base = generate(tiny_pipe)
    motion = MotionLoRA.inject(tiny_pipe.unet, rank=4)
    perturb(motion)
    tiny_pipe.motion_lora = motion
    unbaked = {scale: generate(tiny_pipe, motion_scale=scale) for scale in (1.0, -1.0)}
    weights = {n: p.clone() for n, p in tiny_pipe.unet.state_dict().items()}
    motion.bake([1.0, 0.0])
    assert torch.equal(generate(tiny_pipe, motion_scale=0.0), base)
    torch.testing.assert_close(generate(tiny_pipe, motion_scale=1.0), unbaked[1.0], rtol=0, atol=1e-5)
    assert torch.equal(generate(tiny_pipe, motion_scale=-1.0), unbaked[-1.0])  # not baked: peft's branch
    motion.set_scale(1.0)
    assert all(not layer.base_layer.weight.requires_grad for layer in motion.layers)
    motion.unbake()
    assert all(torch.equal(p, weights[n]) for n, p in tiny_pipe.unet.state_dict().items())
    assert torch.equal(generate(tiny_pipe, motion_scale=1.0), unbaked[1.0])


def test_save_load_round_trip_is_bit_exact(tiny_pipe, tiny_dir, tmp_path):
    motion = MotionLoRA.inject(tiny_pipe.unet, rank=4)
    perturb(motion)
    path = motion.save(tmp_path / "motion")
    assert path.name == "pytorch_lora_weights.safetensors"
    other = AnimateDiffPipeline.from_pretrained(tiny_dir)
    loaded = MotionLoRA.load(other.unet, tmp_path / "motion")
    before, after = motion.state_dict(), loaded.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_saved_file_uses_diffusers_lora_keys(tiny_pipe, tmp_path):
    from safetensors import safe_open

    motion = MotionLoRA.inject(tiny_pipe.unet, rank=4)
    with safe_open(str(motion.save(tmp_path / "m.safetensors")), "pt") as f:
        keys = list(f.keys())
    assert len(keys) == 84
    pattern = (
        r"unet\.(down_blocks\.\d|mid_block|up_blocks\.\d)\.motion_modules\.\d"
        r"\.transformer_blocks\.0\.attn[12]\.to_[qkv]\.lora_[AB]\.weight"
    )
    assert all(re.fullmatch(pattern, k) for k in keys)


def test_plain_diffusers_pipeline_loads_it_and_sets_its_scale(tiny_pipe, tiny_dir, tmp_path):
    motion = MotionLoRA.inject(tiny_pipe.unet, rank=4)
    perturb(motion)
    motion.save(tmp_path / "motion")
    tiny_pipe.motion_lora = motion
    ours = {s: generate(tiny_pipe, motion_scale=s) for s in (1.0, -0.5)}
    plain = AnimateDiffPipeline.from_pretrained(tiny_dir)
    plain.set_progress_bar_config(disable=True)
    plain.load_lora_weights(str(tmp_path / "motion"), adapter_name="motion")
    for scale, frames in ours.items():
        plain.set_adapters(["motion"], [scale])
        assert torch.equal(generate(plain), frames)


def test_loading_a_lora_of_other_layers_is_refused(tiny_pipe, tiny_dir, tmp_path):
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    tiny_pipe.unet.add_adapter(LoraConfig(r=2, target_modules=["to_q"]), adapter_name="spatial")
    state = get_peft_model_state_dict(tiny_pipe.unet, adapter_name="spatial")
    AnimateDiffPipeline.save_lora_weights(str(tmp_path), unet_lora_layers=state)
    other = AnimateDiffPipeline.from_pretrained(tiny_dir)
    with pytest.raises(StillMovingError, match="not a motion adapter"):
        MotionLoRA.load(other.unet, tmp_path)


def test_missing_file_is_refused(tiny_pipe, tmp_path):
    with pytest.raises(StillMovingError, match="no motion adapter"):
        MotionLoRA.load(tiny_pipe.unet, tmp_path / "nothing")
