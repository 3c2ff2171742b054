"""Conditional generation: ControlNet and video-to-video variants equal diffusers' own with fresh adapters, the
customization changes them, FreeNoise long videos with the motion adapter, and the bad inputs."""

import json

import numpy as np
import pytest
import torch
from conftest import PROMPT, perturb
from diffusers import (
    AnimateDiffControlNetPipeline,
    AnimateDiffPipeline,
    AnimateDiffVideoToVideoControlNetPipeline,
    AnimateDiffVideoToVideoPipeline,
    ControlNetModel,
)
from safetensors.torch import save_file

from stillmoving.adapters.motion import MotionLoRA
from stillmoving.adapters.spatial import SpatialAdapters
from stillmoving.conditioning import (
    Conditioning,
    ControlNetSpec,
    check_fits,
    conditioning_shape,
    frames_as_images,
    load_controlnet,
    parse_controlnet,
    read_conditioning,
)
from stillmoving.data.video_io import write_video
from stillmoving.errors import StillMovingError
from stillmoving.injection import t2i_config, t2i_unet_from_t2v
from stillmoving.pipeline import (
    StillMovingControlNetPipeline,
    StillMovingVideoToVideoControlNetPipeline,
    StillMovingVideoToVideoPipeline,
)

CALL = dict(num_frames=4, height=32, width=32, num_inference_steps=2, output_type="pt")
TINY_EMBEDDING = (16, 32)  # the tiny preset's VAE is 2x: one stride-2 convolution


def tiny_controlnet(unet, seed: int = 0) -> ControlNetModel:
    """A ControlNet for the tiny T2V's T2I whose zero convolutions are not zero, so it changes the frames."""
    torch.manual_seed(seed)
    net = ControlNetModel.from_unet(t2i_unet_from_t2v(unet), conditioning_embedding_out_channels=TINY_EMBEDDING)
    perturb([p for n, p in net.named_parameters() if "controlnet_" in n or "conv_out" in n], seed, 0.05)
    return net.eval()


def silhouettes(num_frames: int = 4, size: int = 32, start: int = 4) -> np.ndarray:
    frames = np.zeros((num_frames, size, size, 3), np.uint8)
    for i in range(num_frames):
        frames[i, start + 2 * i : start + 2 * i + 10, start + 2 * i : start + 2 * i + 10] = 255
    return frames


def run(pipe, seed=0, **kwargs):
    return pipe(PROMPT, generator=torch.Generator().manual_seed(seed), **{**CALL, **kwargs}).frames


@pytest.fixture
def controlnet(tiny_pipe):
    return tiny_controlnet(tiny_pipe.unet)


def plain(tiny_dir, cls, **components):
    pipe = cls.from_pipe(AnimateDiffPipeline.from_pretrained(tiny_dir), **components)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_controlnet_with_fresh_adapters_equals_diffusers(tiny_pipe, tiny_dir, controlnet, tmp_path):
    MotionLoRA.inject(tiny_pipe.unet, rank=4).save(tmp_path / "motion")
    tiny_pipe.unet.delete_adapters("stillmoving_motion")
    tiny_pipe.load_motion_adapter(tmp_path / "motion")
    tiny_pipe.load_spatial_adapters(SpatialAdapters.for_unet(tiny_pipe.unet, rank=4))
    ours = tiny_pipe.conditional(controlnet)
    assert isinstance(ours, StillMovingControlNetPipeline) and ours.spatial_adapters is tiny_pipe.spatial_adapters
    theirs = plain(tiny_dir, AnimateDiffControlNetPipeline, controlnet=controlnet)
    control = frames_as_images(silhouettes())
    expected = run(theirs, conditioning_frames=control)
    for scale in (0.0, -1.0):
        assert torch.equal(run(ours, conditioning_frames=control, motion_scale=scale), expected)
    blank = frames_as_images(np.zeros_like(silhouettes()))
    assert not torch.equal(expected, run(theirs, conditioning_frames=blank))  # the control frames matter
    # Two ControlNets (diffusers' MultiControlNetModel), scales per net.
    two = tiny_pipe.conditional([controlnet, tiny_controlnet(tiny_pipe.unet, seed=1)])
    frames = run(two, conditioning_frames=[control, control], controlnet_conditioning_scale=[1.0, 0.5])
    assert frames.shape == expected.shape and not torch.equal(frames, expected)


def test_customization_changes_controlnet_frames(tiny_pipe, controlnet):
    control = frames_as_images(silhouettes())
    naive = run(tiny_pipe.conditional(controlnet), conditioning_frames=control)
    adapters = SpatialAdapters.for_unet(tiny_pipe.unet, rank=4)
    perturb(adapters.trainable_parameters(), seed=3, scale=0.2)
    tiny_pipe.load_spatial_adapters(adapters)
    assert not torch.equal(run(tiny_pipe.conditional(controlnet), conditioning_frames=control), naive)


def test_video_to_video_variants_equal_diffusers(tiny_pipe, tiny_dir, controlnet):
    source = frames_as_images(silhouettes())
    ours = tiny_pipe.conditional(video_to_video=True)
    assert isinstance(ours, StillMovingVideoToVideoPipeline)
    theirs = plain(tiny_dir, AnimateDiffVideoToVideoPipeline)
    kwargs = dict(prompt=PROMPT, video=source, height=32, width=32, num_inference_steps=10, output_type="pt")
    frames = {}
    for strength in (0.1, 1.0):  # closeness to the input is tested on the trained world model (test_cli)
        frames[strength] = ours(strength=strength, generator=torch.Generator().manual_seed(0), **kwargs).frames
        expected = theirs(strength=strength, generator=torch.Generator().manual_seed(0), **kwargs).frames
        assert torch.equal(frames[strength], expected)
    assert not torch.equal(frames[0.1], frames[1.0])
    both = tiny_pipe.conditional(controlnet, video_to_video=True)
    assert isinstance(both, StillMovingVideoToVideoControlNetPipeline)
    theirs = plain(tiny_dir, AnimateDiffVideoToVideoControlNetPipeline, controlnet=controlnet)
    call = dict(kwargs, strength=0.6, conditioning_frames=source)
    assert torch.equal(
        both(generator=torch.Generator().manual_seed(0), **call).frames,
        theirs(generator=torch.Generator().manual_seed(0), **call).frames,
    )


def test_free_noise_long_video_with_motion_adapter(tiny_pipe, tmp_path):
    motion = MotionLoRA.inject(tiny_pipe.unet, rank=4)
    perturb(motion.trainable_parameters(), seed=1, scale=0.3)
    motion.save(tmp_path / "motion")
    tiny_pipe.unet.delete_adapters("stillmoving_motion")
    tiny_pipe.load_motion_adapter(tmp_path / "motion")
    layers = len(tiny_pipe.motion_lora.layers)
    tiny_pipe.enable_free_noise(context_length=16, context_stride=4)
    assert len(tiny_pipe.motion_lora.layers) == layers
    long = dict(num_frames=48, num_inference_steps=1)
    more = run(tiny_pipe, motion_scale=-0.5, **long)
    assert more.shape[1] == 48 and torch.isfinite(more).all()
    assert not torch.equal(more, run(tiny_pipe, motion_scale=0.0, **long))
    tiny_pipe.enable_free_init(num_iters=2)  # FreeInit on top, in the ControlNet variant too
    control = frames_as_images(silhouettes(num_frames=20))
    cn = tiny_pipe.conditional(tiny_controlnet(tiny_pipe.unet))
    assert run(cn, conditioning_frames=control, motion_scale=-0.5, num_frames=20, num_inference_steps=1).shape[1] == 20
    tiny_pipe.disable_free_init()
    tiny_pipe.disable_free_noise()
    assert len(tiny_pipe.motion_lora.layers) == layers


# ----------------------------------------------------------------------------- loading and checking


def test_controlnet_loads_from_folders_and_single_files(tiny_pipe, controlnet, tmp_path):
    config, factor = t2i_config(tiny_pipe.unet), 2
    controlnet.save_pretrained(tmp_path / "cn")
    save_file(controlnet.state_dict(), tmp_path / "cn.safetensors")
    reference = controlnet.state_dict()
    for source in (tmp_path / "cn", tmp_path / "cn.safetensors"):
        loaded = load_controlnet(ControlNetSpec(str(source)), config, factor)
        assert all(torch.equal(v, reference[k]) for k, v in loaded.state_dict().items())


def test_bad_controlnets_are_one_line_errors(tiny_pipe, controlnet, tmp_path):
    config = t2i_config(tiny_pipe.unet)
    (tmp_path / "unet").mkdir()
    (tmp_path / "unet" / "config.json").write_text(json.dumps({"_class_name": "UNet2DConditionModel"}))
    save_file({"down.weight": torch.zeros(2)}, tmp_path / "lora.safetensors")
    (tmp_path / "broken.safetensors").write_bytes(b"\x00" * 64)
    wide = ControlNetModel.from_unet(
        t2i_unet_from_t2v(tiny_pipe.unet), conditioning_embedding_out_channels=(16, 32, 64)
    )
    wide.save_pretrained(tmp_path / "wrong_factor")
    save_file({k: v for k, v in controlnet.state_dict().items() if "mid_block" not in k}, tmp_path / "part.safetensors")
    cases = {
        "missing": "no such file",
        "unet": "describes a 'UNet2DConditionModel'",
        "lora.safetensors": "is not a ControlNet",
        "broken.safetensors": "not a complete safetensors file",
        "wrong_factor": "brings conditioning frames down 4x",
        "part.safetensors": "does not fit",
    }
    for name, message in cases.items():
        with pytest.raises(StillMovingError, match=message):
            load_controlnet(ControlNetSpec(str(tmp_path / name)), config, 2)
    sdxl_like = dict(config, cross_attention_dim=2048)
    with pytest.raises(StillMovingError, match="cross_attention_dim is 2048"):
        check_fits(sdxl_like, config, 2, "x")


def test_parse_and_read_conditioning(tmp_path):
    assert parse_controlnet("a/b") == ControlNetSpec("a/b", 1.0)
    assert parse_controlnet("a/b:0.5") == ControlNetSpec("a/b", 0.5)
    with pytest.raises(StillMovingError, match="PATH:SCALE"):
        parse_controlnet("a/b:x")
    (tmp_path / "cn").mkdir()
    (tmp_path / "cn" / "config.json").write_text(json.dumps({"_class_name": "ControlNetModel"}))
    video = write_video(silhouettes(num_frames=6), tmp_path / "control.gif")
    frames_dir = write_video(silhouettes(num_frames=6, size=48), tmp_path / "frames")
    cond = read_conditioning([f"{tmp_path / 'cn'}:0.7"], [str(video)])
    assert cond.scales == [0.7] and cond.control_videos[0].shape == (6, 32, 32, 3)
    assert conditioning_shape(cond, None, None, None) == (6, 32, 32)
    assert conditioning_shape(Conditioning(), None, None, None) == (16, 512, 512)
    assert conditioning_shape(Conditioning(), None, None, None, 32, 8) == (8, 32, 32)  # the model's own
    assert conditioning_shape(cond, None, None, None, 32, 8) == (6, 32, 32)  # the video's count comes first
    kwargs = cond.call_kwargs()
    assert len(kwargs["conditioning_frames"]) == 6 and kwargs["controlnet_conditioning_scale"] == 0.7
    bad = {
        "has 6 frames but 8": lambda: conditioning_shape(cond, 8, None, None),
        "is 32x32 but the output is 64x64": lambda: conditioning_shape(cond, None, 64, 64),
        "needs --control-video": lambda: read_conditioning([str(tmp_path / "cn")], None),
        "needs a --controlnet": lambda: read_conditioning(None, [str(video)]),
        "no such file": lambda: read_conditioning([str(tmp_path / "cn")], [str(tmp_path / "none.mp4")]),
        "strength must be in": lambda: read_conditioning(video=str(video), strength=1.5),
        "give the input --video": lambda: read_conditioning(strength=0.5),
        "2 --controlnet but 3": lambda: read_conditioning([str(tmp_path / "cn")] * 2, [str(video)] * 3),
    }
    for message, call in bad.items():
        with pytest.raises(StillMovingError, match=message):
            call()
    mixed = read_conditioning([str(tmp_path / "cn")], [str(video)], video=str(frames_dir), strength=0.3)
    with pytest.raises(StillMovingError, match="--video is 48x48"):
        conditioning_shape(mixed, None, None, None)
