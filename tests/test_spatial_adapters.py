"""Spatial adapters: placements, identity at init, the maths, checkpointing, file format, attachment."""

import json

import pytest
import torch
from conftest import generate, perturb
from diffusers import AnimateDiffPipeline
from safetensors import safe_open

from stillmoving.adapters.spatial import (
    ALL_BLOCKS,
    SpatialAdapters,
    channel_adapter,
    in_blocks,
    parse_blocks,
    spatial_placements,
)
from stillmoving.errors import StillMovingError
from stillmoving.pipeline import attach_spatial_adapters
from stillmoving.training.config import CustomizeConfig

TINY_PLACEMENTS = {
    "down_blocks.0.attentions.0": 32,
    "down_blocks.0.resnets.0": 32,
    "down_blocks.1.resnets.0": 64,
    "up_blocks.0.resnets.0": 64,
    "up_blocks.0.resnets.1": 64,
    "up_blocks.1.attentions.0": 32,
    "up_blocks.1.attentions.1": 32,
    "up_blocks.1.resnets.0": 32,
    "up_blocks.1.resnets.1": 32,
    "mid_block.attentions.0": 64,
    "mid_block.resnets.0": 64,
    "mid_block.resnets.1": 64,
}


def perturbed(unet, rank=2, seed=3) -> SpatialAdapters:
    adapters = SpatialAdapters.for_unet(unet, rank=rank)
    perturb(adapters.parameters(), seed=seed, scale=0.2)
    return adapters


def test_placed_after_every_resnet_and_spatial_transformer_exactly(tiny_pipe):
    assert spatial_placements(tiny_pipe.unet) == TINY_PLACEMENTS
    adapters = SpatialAdapters.for_unet(tiny_pipe.unet, rank=3)
    assert [tuple(a.down.shape) for a in adapters.layers] == [(c, 3) for c in TINY_PLACEMENTS.values()]
    assert all(torch.count_nonzero(a.up) == 0 for a in adapters.layers)


@pytest.mark.parametrize("blocks, kept", [("down,mid", ("down_blocks.", "mid_block")), ("up", ("up_blocks.",))])
def test_spatial_blocks_keep_the_adapters_of_those_blocks_with_the_same_a_down_and_the_file_says_so(
    tiny_pipe, tmp_path, blocks, kept
):
    every = SpatialAdapters.for_unet(tiny_pipe.unet, 2, torch.Generator().manual_seed(5))
    some = SpatialAdapters.for_unet(tiny_pipe.unet, 2, torch.Generator().manual_seed(5), blocks)
    assert some.placements == {k: v for k, v in TINY_PLACEMENTS.items() if k.startswith(kept)}
    drawn = dict(zip(every.placements, every.layers))
    assert all(torch.equal(layer.down, drawn[name].down) for name, layer in zip(some.placements, some.layers))
    perturb(some.parameters(), seed=1, scale=0.2)
    loaded = SpatialAdapters.load(some.save(tmp_path / "a.safetensors"))
    assert loaded.placements == some.placements
    assert all(torch.equal(a.up, b.up) for a, b in zip(loaded.layers, some.layers))
    same = SpatialAdapters.for_unet(tiny_pipe.unet, 2, torch.Generator().manual_seed(5), "down,mid,up")
    assert same.placements == TINY_PLACEMENTS and CustomizeConfig.spatial_blocks == ALL_BLOCKS == "down,mid,up"


def test_kept_on_some_blocks_at_inference_is_exactly_the_adapters_of_those_blocks_alone(tiny_pipe):
    every = perturbed(tiny_pipe.unet)
    alone = SpatialAdapters({k: v for k, v in every.placements.items() if not k.startswith("up_blocks.")}, 2)
    drawn = dict(zip(every.placements, every.layers))
    with torch.no_grad():
        for name, layer in zip(alone.placements, alone.layers):
            layer.down.copy_(drawn[name].down), layer.up.copy_(drawn[name].up)
    tiny_pipe.load_spatial_adapters(alone)
    expected = generate(tiny_pipe)
    kept = tiny_pipe.load_spatial_adapters(every, blocks="down,mid")
    assert torch.equal(generate(tiny_pipe), expected)  # the up blocks' adapters are the identity, exactly
    assert all(torch.count_nonzero(layer.up) == 0 for name, layer in zip(kept.placements, kept.layers) if "up_" in name)
    with pytest.raises(StillMovingError, match="--spatial-blocks up: these spatial adapters have none there"):
        alone.keep_blocks_("up")


def test_only_blocks_acts_as_keep_blocks_inside_and_leaves_every_a_up_bit_for_bit_after(tiny_pipe):
    every = perturbed(tiny_pipe.unet)
    before = [layer.up.clone() for layer in every.layers]
    kept = in_blocks(every.placements, "down,mid")
    with every.only_blocks("down,mid") as inside:
        assert inside is every and 0 < sum(kept) < len(kept)
        expected = [up if keep else torch.zeros_like(up) for up, keep in zip(before, kept)]
        assert all(torch.equal(layer.up, up) for layer, up in zip(every.layers, expected))
    assert all(torch.equal(layer.up, up) for layer, up in zip(every.layers, before))
    with pytest.raises(RuntimeError, match="stop"), every.only_blocks("up"):
        raise RuntimeError("stop")  # restored on the way out of an error too
    assert all(torch.equal(layer.up, up) for layer, up in zip(every.layers, before))


@pytest.mark.parametrize("blocks", ["", "down,,up", "down,down", "left", "Down"])
def test_spatial_blocks_other_than_down_mid_up_are_refused(tiny_pipe, blocks):
    with pytest.raises(StillMovingError, match="give one or more of down, mid, up"):
        parse_blocks(blocks)
    with pytest.raises(StillMovingError, match="--spatial-blocks"):
        SpatialAdapters.for_unet(tiny_pipe.unet, 2, blocks=blocks)


def test_channel_adapter_is_x_times_identity_plus_low_rank():
    x = torch.randn(2, 5, 3, 4, dtype=torch.float64)
    down, up = torch.randn(5, 2, dtype=torch.float64), torch.randn(2, 5, dtype=torch.float64)
    expected = torch.einsum("nchw,cd->ndhw", x, torch.eye(5, dtype=torch.float64) + down @ up)
    torch.testing.assert_close(channel_adapter(x, down, up), expected)
    assert torch.equal(channel_adapter(x, down, torch.zeros(2, 5, dtype=torch.float64)), x)


def test_channel_adapter_gradients_are_autograds_of_the_formula():
    x, down, up = (
        torch.randn(*shape, dtype=torch.float64, requires_grad=True) for shape in [(2, 5, 3, 4), (5, 2), (2, 5)]
    )
    assert torch.autograd.gradcheck(channel_adapter, (x, down, up))
    grad = torch.randn(2, 5, 3, 4, dtype=torch.float64)
    reference = torch.einsum("nchw,cd->ndhw", x, torch.eye(5, dtype=torch.float64) + down @ up)
    expected = torch.autograd.grad(reference, (x, down, up), grad)
    torch.testing.assert_close(torch.autograd.grad(channel_adapter(x, down, up), (x, down, up), grad), expected)
    frozen_input = x.detach()  # the first adapter of a UNet: only the adapter's own gradients are asked for
    got = torch.autograd.grad(channel_adapter(frozen_input, down, up), (down, up), grad)
    torch.testing.assert_close(got, expected[1:])


def test_inference_hook_adapts_in_place_with_the_same_values(tiny_pipe, monkeypatch):
    from stillmoving.adapters import spatial

    x = torch.randn(4, 6, 5, 3)
    down, up = torch.randn(6, 2), torch.randn(2, 6)
    target = x.clone()
    assert spatial.channel_adapter_(target, down, up) is target
    torch.testing.assert_close(target, channel_adapter(x, down, up), rtol=0, atol=1e-6)

    tiny_pipe.load_spatial_adapters(perturbed(tiny_pipe.unet))
    in_place_calls = []
    real = spatial.channel_adapter_
    monkeypatch.setattr(spatial, "channel_adapter_", lambda *a: (in_place_calls.append(1), real(*a))[1])
    in_place = generate(tiny_pipe)  # the pipeline runs without gradients: the in-place path
    assert len(in_place_calls) > 0
    monkeypatch.setattr(spatial, "_adapt", lambda adapter, x, frames=0: adapter(x))  # always out of place
    torch.testing.assert_close(generate(tiny_pipe), in_place, rtol=0, atol=1e-5)


def test_channel_adapter_keeps_x_dtype_under_autocast():
    x = torch.randn(2, 5, 3, 4, requires_grad=True)
    down, up = torch.randn(5, 2, requires_grad=True), torch.zeros(2, 5, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = channel_adapter(x, down, up)
    assert out.dtype == torch.float32 and torch.equal(out, x)  # identity at init, in grad mode too
    out.square().sum().backward()
    assert all(t.grad.dtype == torch.float32 and torch.isfinite(t.grad).all() for t in (x, down, up))
    from stillmoving.adapters.spatial import channel_adapter_

    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):  # inference: out of place and in place
        trained_up = torch.randn(2, 5)
        expected = channel_adapter(x, down, trained_up)
        in_place = channel_adapter_(x.detach().clone(), down, trained_up)
    assert expected.dtype == in_place.dtype == torch.float32
    torch.testing.assert_close(in_place, expected, rtol=0, atol=1e-5)


def test_fresh_adapters_give_exactly_diffusers_frames(tiny_pipe, tiny_dir):
    plain = AnimateDiffPipeline.from_pretrained(tiny_dir)
    plain.set_progress_bar_config(disable=True)
    tiny_pipe.load_spatial_adapters(SpatialAdapters.for_unet(tiny_pipe.unet, rank=4))
    assert torch.equal(generate(tiny_pipe), generate(plain))


def test_trained_adapters_change_frames_and_detach_restores(tiny_pipe):
    base = generate(tiny_pipe)
    adapters = tiny_pipe.load_spatial_adapters(perturbed(tiny_pipe.unet))
    assert (generate(tiny_pipe) - base).abs().max() > 1e-3
    adapters.detach()
    assert torch.equal(generate(tiny_pipe), base)


def test_detached_runs_without_the_adapters_and_attaches_them_again_even_after_an_error(tiny_pipe):
    base = generate(tiny_pipe)
    adapters = tiny_pipe.load_spatial_adapters(perturbed(tiny_pipe.unet))
    adapted = generate(tiny_pipe)
    with adapters.detached(tiny_pipe.unet):
        assert torch.equal(generate(tiny_pipe), base)
    assert torch.equal(generate(tiny_pipe), adapted)
    with pytest.raises(RuntimeError), adapters.detached(tiny_pipe.unet):
        raise RuntimeError("a failed step")
    assert adapters.attached and torch.equal(generate(tiny_pipe), adapted)


def test_scale_weighs_each_adapter_like_a_lora_weight_and_zero_is_naive_injection(tiny_pipe, tmp_path):
    naive = generate(tiny_pipe)
    path = perturbed(tiny_pipe.unet).save(tmp_path / "a.safetensors")
    tiny_pipe.load_spatial_adapters(path, scale=0.0)
    assert torch.equal(generate(tiny_pipe), naive)  # x + (x A_down)(0 A_up) is x exactly
    full, half = SpatialAdapters.load(path), tiny_pipe.load_spatial_adapters(path, scale=0.5)
    x = torch.randn(2, 32, 4, 4, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(half.layers[0](x) - x, 0.5 * (full.layers[0](x) - x))
    assert not torch.equal(generate(tiny_pipe), naive)


def _adapter_grads(unet, adapters, checkpointing: bool):
    unet.requires_grad_(False)
    if checkpointing:
        unet.enable_gradient_checkpointing()
    unet.train()
    adapters.attach(unet)
    gen = torch.Generator().manual_seed(0)
    sample = torch.randn(1, 4, 3, 16, 16, generator=gen)
    text = torch.randn(3, 16, 32, generator=gen)
    out = unet(sample, torch.tensor([500]), encoder_hidden_states=text).sample
    out.square().mean().backward()
    adapters.detach()
    return [p.grad.clone() for p in adapters.parameters()]


def test_gradients_are_the_same_under_gradient_checkpointing(tiny_dir):
    from diffusers import UNetMotionModel

    unet = UNetMotionModel.from_pretrained(tiny_dir, subfolder="unet")
    adapters = perturbed(unet)
    plain = _adapter_grads(unet, adapters, checkpointing=False)
    adapters.zero_grad()
    checkpointed = _adapter_grads(unet, adapters, checkpointing=True)
    assert all(g.abs().sum() > 0 for g in plain)
    for a, b in zip(plain, checkpointed):
        torch.testing.assert_close(a, b)


def test_file_has_keys_and_metadata_and_round_trips_bit_exact(tiny_pipe, tmp_path):
    adapters = perturbed(tiny_pipe.unet, rank=2)
    path = adapters.save(tmp_path / "a.safetensors", extra_metadata={"note": "x"})
    with safe_open(str(path), "pt") as f:
        keys, meta = set(f.keys()), f.metadata()
    assert keys == {f"{name}.{part}" for name in TINY_PLACEMENTS for part in ("down", "up")}
    assert meta["format"] == "stillmoving.spatial_adapters" and meta["format_version"] == "1"
    assert meta["rank"] == "2" and meta["note"] == "x"
    assert dict(json.loads(meta["placements"])) == TINY_PLACEMENTS
    loaded = SpatialAdapters.load(path)
    assert loaded.placements == adapters.placements
    for a, b in zip(adapters.parameters(), loaded.parameters()):
        assert torch.equal(a, b)


def test_file_attaches_to_a_plain_diffusers_pipeline(tiny_pipe, tiny_dir, tmp_path):
    adapters = perturbed(tiny_pipe.unet)
    adapters.save(tmp_path / "a.safetensors")
    tiny_pipe.load_spatial_adapters(adapters)
    ours = generate(tiny_pipe)
    plain = AnimateDiffPipeline.from_pretrained(tiny_dir)
    plain.set_progress_bar_config(disable=True)
    attach_spatial_adapters(plain, tmp_path / "a.safetensors")
    assert torch.equal(generate(plain), ours)


def test_other_architecture_is_refused(tiny_pipe):
    adapters = SpatialAdapters({"down_blocks.0.resnets.0": 320}, rank=2)
    with pytest.raises(StillMovingError, match="down_blocks.0.resnets.0 has 32 channels, the adapter expects 320"):
        adapters.attach(tiny_pipe.unet)


@pytest.mark.parametrize(
    "content,message",
    [
        (b"not a safetensors file", "not a readable safetensors file"),
        (None, "no such file"),
    ],
)
def test_bad_files_are_refused(tmp_path, content, message):
    path = tmp_path / "bad.safetensors"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(StillMovingError, match=message):
        SpatialAdapters.load(path)


def test_file_of_another_format_is_refused(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "x.safetensors"))
    with pytest.raises(StillMovingError, match="not a Still-Moving spatial-adapter file"):
        SpatialAdapters.load(tmp_path / "x.safetensors")


def test_a_crash_while_saving_keeps_the_previous_file(tiny_pipe, tmp_path, monkeypatch):
    import stillmoving.adapters.spatial as spatial

    path = SpatialAdapters.for_unet(tiny_pipe.unet, rank=2).save(tmp_path / "a.safetensors")
    before = path.read_bytes()

    def crash(tensors, filename, metadata=None):
        open(filename, "wb").write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(spatial, "save_file", crash)
    with pytest.raises(KeyboardInterrupt):
        perturbed(tiny_pipe.unet).save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.safetensors"]


def test_customize_refuses_rank_0_in_one_line_before_any_model_loads(
    tiny_dir, stage2_inputs, tmp_path, capsys, monkeypatch
):
    import sys

    from stillmoving import cli, loading

    monkeypatch.setattr(loading, "load_t2v", lambda *_, **__: pytest.fail("a model was loaded"))
    args = ["customize", "--model", str(tiny_dir), "-o", str(tmp_path / "zero"), "--prompt", "a sks dog"]
    args += ["--motion-adapter", str(stage2_inputs["motion_adapter"]), "--customized", str(stage2_inputs["customized"])]
    monkeypatch.setattr(sys, "argv", ["stillmoving", *args, "--spatial-rank", "0"])
    with pytest.raises(SystemExit) as exit:
        cli.main()
    err = capsys.readouterr().err
    assert exit.value.code == 2 and err.count("error:") == 1, err
    assert "error: --spatial-rank must be at least 1, not 0" in err and not (tmp_path / "zero").exists()
