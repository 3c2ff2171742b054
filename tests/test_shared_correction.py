"""`customize --shared-correction`: each spatial adapter adds one correction, computed from the frames' mean
features, to every frame of a video (docs/method.md, "One correction for every frame")."""

import pytest
import torch
from conftest import customized_with, differ
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from test_spatial_min_timestep import trained_adapters, unet_call, unet_output

from stillmoving.adapters.spatial import SHARED_KEY, SpatialAdapters, channel_adapter, shared_channel_adapter
from stillmoving.errors import StillMovingError


def weights():
    gen = torch.Generator().manual_seed(0)
    return (
        torch.randn(2 * 4, 6, 3, 3, generator=gen),
        torch.randn(6, 2, generator=gen),
        torch.randn(2, 6, generator=gen),
    )


def frame_deviation(x, frames=4):
    videos = x.view(-1, frames, *x.shape[1:])
    return videos - videos.mean(dim=1, keepdim=True)


def test_the_shared_correction_leaves_what_differs_between_frames_as_it_was():
    x, down, up = weights()
    y = shared_channel_adapter(x, down, up, frames=4)
    assert torch.allclose(frame_deviation(y), frame_deviation(x), atol=1e-6)  # the frames differ exactly as before
    mean = x.view(2, 4, 6, 3, 3).mean(dim=1)
    assert torch.allclose(y.view(2, 4, 6, 3, 3).mean(dim=1), channel_adapter(mean, down, up), atol=1e-5)
    assert torch.equal(shared_channel_adapter(x, down, torch.zeros_like(up), frames=4), x)  # identity at init


def test_on_a_frozen_video_or_one_frame_it_is_the_papers_adapter():
    x, down, up = weights()
    frozen = x.view(2, 4, 6, 3, 3)[:, :1].expand(2, 4, 6, 3, 3).reshape(8, 6, 3, 3)
    assert torch.allclose(shared_channel_adapter(frozen, down, up, 4), channel_adapter(frozen, down, up), atol=1e-5)
    assert torch.allclose(shared_channel_adapter(x, down, up, 1), channel_adapter(x, down, up), atol=1e-6)


def test_the_hooks_share_the_correction_over_the_video_models_frames(tiny_pipe):
    unet, call = tiny_pipe.unet, unet_call(tiny_pipe)
    plain = unet_output(unet, call, 500)
    adapters = trained_adapters(unet).attach(unet)
    per_frame = unet_output(unet, call, 500)
    adapters.shared = True
    shared = unet_output(unet, call, 500)
    adapters.detach()
    assert not torch.equal(shared, per_frame) and not torch.equal(shared, plain)
    frames = call[0][0].shape[2]
    seen = []
    adapters.attach(unet)  # hooks run in the order they were registered: this one sees the adapted output
    handle = unet.down_blocks[0].resnets[0].register_forward_hook(lambda m, a, out: seen.append(out))
    unet_output(unet, call, 500)
    adapters.detach()
    unet_output(unet, call, 500)
    handle.remove()
    # the first adapted layer's output differs from the plain one by one correction, the same in every frame
    change = (seen[0] - seen[1]).view(-1, frames, *seen[0].shape[1:])
    assert change.abs().max() > 1e-3
    assert torch.allclose(change, change[:, :1].expand_as(change), atol=1e-5)


def test_it_is_saved_and_read_back_and_old_files_mean_per_frame(tiny_pipe, tmp_path):
    adapters = trained_adapters(tiny_pipe.unet)
    adapters.shared = True
    path = adapters.save(tmp_path / "a.safetensors")
    assert SpatialAdapters.load(path).shared
    with safe_open(str(path), "pt") as f:
        metadata = f.metadata()
    assert metadata[SHARED_KEY] == "1"
    old = {k: v for k, v in metadata.items() if k != SHARED_KEY}
    save_file(load_file(str(path)), str(tmp_path / "old.safetensors"), metadata=old)
    assert not SpatialAdapters.load(tmp_path / "old.safetensors").shared
    save_file(load_file(str(path)), str(tmp_path / "bad.safetensors"), metadata={**old, SHARED_KEY: "yes"})
    with pytest.raises(StillMovingError, match="shared_correction is 'yes', not 0 or 1"):
        SpatialAdapters.load(tmp_path / "bad.safetensors")


def test_customize_trains_shared_corrections_and_records_them(tiny_dir, stage2_inputs, tmp_path):
    (plain, _), (shared, config) = (
        customized_with(tiny_dir, stage2_inputs, tmp_path / str(on), shared_correction=on) for on in (False, True)
    )
    assert config["shared_correction"] and differ(plain, shared)
    assert SpatialAdapters.load(tmp_path / "True/spatial_adapters.safetensors").shared
    assert not SpatialAdapters.load(tmp_path / "False/spatial_adapters.safetensors").shared
