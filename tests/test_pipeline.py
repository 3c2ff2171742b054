"""The inference pipeline: equals diffusers with fresh adapters, the motion-scale knob, outputs."""

import json

import pytest
import torch
from conftest import generate, perturb
from diffusers import AnimateDiffPipeline, DiffusionPipeline
from safetensors import safe_open

from stillmoving.adapters.motion import MotionLoRA
from stillmoving.adapters.spatial import SpatialAdapters
from stillmoving.errors import StillMovingError
from stillmoving.inference import generate_videos, output_paths
from stillmoving.pipeline import StillMovingPipeline


def test_fresh_adapters_equal_plain_animatediff(tiny_pipe, tiny_dir, tmp_path):
    plain = AnimateDiffPipeline.from_pretrained(tiny_dir)
    plain.set_progress_bar_config(disable=True)
    MotionLoRA.inject(tiny_pipe.unet, rank=4).save(tmp_path / "motion")
    tiny_pipe.unet.delete_adapters("stillmoving_motion")
    tiny_pipe.load_motion_adapter(tmp_path / "motion")
    tiny_pipe.load_spatial_adapters(SpatialAdapters.for_unet(tiny_pipe.unet, rank=4))
    for scale in (0.0, 1.0, -1.0):
        assert torch.equal(generate(tiny_pipe, motion_scale=scale), generate(plain))


def test_loaded_motion_adapter_matches_diffusers_set_adapters(tiny_pipe, tiny_dir, tmp_path):
    motion = MotionLoRA.inject(tiny_pipe.unet, rank=4)
    with torch.no_grad():
        for p in motion.trainable_parameters():
            p.normal_(0, 0.3)
    motion.save(tmp_path / "motion")
    ours = AnimateDiffPipeline.from_pretrained(tiny_dir)
    ours = StillMovingPipeline.from_pipe(ours)
    ours.set_progress_bar_config(disable=True)
    ours.load_motion_adapter(tmp_path / "motion")
    plain = AnimateDiffPipeline.from_pretrained(tiny_dir)
    plain.set_progress_bar_config(disable=True)
    plain.load_lora_weights(str(tmp_path / "motion"), adapter_name="m")
    base = generate(ours)  # default alpha 0: the adapter is removed
    for scale in (1.0, -1.0):
        plain.set_adapters(["m"], [scale])
        frames = generate(ours, motion_scale=scale)
        assert torch.equal(frames, generate(plain))
        assert not torch.equal(frames, base)


def test_nonzero_motion_scale_without_adapter_is_refused(tiny_pipe):
    with pytest.raises(StillMovingError, match="needs a motion adapter"):
        generate(tiny_pipe, motion_scale=1.0)


@pytest.mark.parametrize("scale", [float("nan"), float("inf"), float("-inf")])
def test_nonfinite_motion_scale_is_refused(tiny_pipe, scale):
    with pytest.raises(StillMovingError, match=f"motion_scale must be a finite number, not {scale}"):
        generate(tiny_pipe, motion_scale=scale)


def test_generate_videos_writes_mp4_gif_and_frames(tiny_pipe, tmp_path):
    for name in ("v.mp4", "v.gif", "frames"):
        written = generate_videos(
            tiny_pipe,
            ["a red circle", "a blue square"],
            tmp_path / name,
            num_frames=4,
            height=32,
            width=32,
            steps=2,
            scheduler="DPMSolverMultistepScheduler",
            negative_prompt="blue",
        )
        assert written == output_paths(tmp_path / name, 2)
        assert all(p.exists() for p in written)
    assert len(list((tmp_path / "frames_000").glob("*.png"))) == 4


def test_unknown_scheduler_is_refused(tiny_pipe, tmp_path):
    with pytest.raises(StillMovingError, match="unknown scheduler"):
        generate_videos(tiny_pipe, ["a"], tmp_path / "x.gif", scheduler="NoSuchScheduler")


def test_save_pretrained_round_trips_and_plain_diffusers_loads_the_folder(tiny_pipe, tiny_dir, tmp_path):
    """save_pretrained of a pipeline with both adapters: plain diffusers (DiffusionPipeline, by the class
    model_index.json names) loads its weights exactly, the motion modules' included (under their own names, not
    peft's), and this class's from_pretrained attaches the adapters again, as they acted."""
    motion = MotionLoRA.inject(tiny_pipe.unet, rank=4)
    perturb(motion.trainable_parameters(), seed=4, scale=0.3)
    motion.save(tmp_path / "motion")
    tiny_pipe.unet.delete_adapters("stillmoving_motion")
    tiny_pipe.load_motion_adapter(tmp_path / "motion")
    adapters = SpatialAdapters.for_unet(tiny_pipe.unet, rank=4)
    perturb([layer.up for layer in adapters.layers], seed=5, scale=0.2)
    tiny_pipe.load_spatial_adapters(adapters, scale=0.5, blocks="down,mid", min_timestep=300)
    expected = generate(tiny_pipe, motion_scale=-1.0)  # both adapters act
    with adapters.detached(tiny_pipe.unet):
        naive = generate(tiny_pipe)
    weights = {k: v.clone() for k, v in tiny_pipe.unet.state_dict().items() if "lora_" not in k}

    out = tmp_path / "saved"
    tiny_pipe.save_pretrained(out)
    assert json.loads((out / "model_index.json").read_text())["_class_name"] == "AnimateDiffPipeline"
    with safe_open(str(out / "unet" / "diffusion_pytorch_model.safetensors"), "pt") as f:
        saved = {k: f.get_tensor(k) for k in f.keys()}
    assert not [k for k in saved if "lora_" in k or "base_layer" in k]
    assert sorted(saved) == sorted(k.replace(".base_layer", "") for k in weights)
    assert all(torch.equal(saved[k.replace(".base_layer", "")], v) for k, v in weights.items())
    assert torch.equal(generate(tiny_pipe, motion_scale=-1.0), expected)  # the motion adapter is back on after

    plain = DiffusionPipeline.from_pretrained(out)
    assert type(plain) is AnimateDiffPipeline
    plain.set_progress_bar_config(disable=True)
    assert torch.equal(generate(plain), naive)  # no adapters: naive injection of the customization

    back = StillMovingPipeline.from_pretrained(out)
    back.set_progress_bar_config(disable=True)
    assert back.spatial_adapters.min_timestep == 300 and back.motion_lora is not None
    assert torch.equal(generate(back, motion_scale=-1.0), expected)
    alone = StillMovingPipeline.from_pretrained(out, adapters=False)
    assert alone.spatial_adapters is None and alone.motion_lora is None

    back.spatial_adapters.detach()
    back.spatial_adapters = None
    back.save_pretrained(out)  # saved again without spatial adapters: the old file does not stay behind
    assert not (out / "spatial_adapters.safetensors").exists() and (out / "motion_adapter").is_dir()
