"""Training stages: what receives gradients, frozen videos, targets, determinism, resume."""

import pytest
import torch
from conftest import save_customized_unet, spy_gradients
from diffusers import DDPMScheduler

from stillmoving.data.frozen import frozen_video, random_frozen_frames
from stillmoving.errors import StillMovingError
from stillmoving.losses import diffusion_target, snr_weights
from stillmoving.training import motion_stage, spatial_stage
from stillmoving.training.config import CustomizeConfig, MotionAdapterConfig, make_config

SMALL = dict(num_frames=4, height=32, width=32, steps=2, sample_steps=2, guidance_scale=1.0)


def motion_cfg(tiny_dir, out, **kw):
    defaults = dict(sample_prompt=["a red circle moving left"], num_sampled_videos=2, rank=4, **SMALL)
    return MotionAdapterConfig(model=str(tiny_dir), output=str(out), **{**defaults, **kw})


def test_motion_stage_trains_only_the_motion_lora(tiny_dir, tmp_path, monkeypatch):
    seen = spy_gradients(motion_stage, monkeypatch)
    motion_stage.train_motion_adapter(motion_cfg(tiny_dir, tmp_path))
    assert seen["grad"] == seen["trainable"]
    assert seen["grad"] and all(".lora_" in n and ".motion_modules." in n for n in seen["grad"])
    assert len(seen["grad"]) == 84 and len(seen["all"]) > 84


def test_motion_stage_is_deterministic_on_cpu(tiny_dir, tmp_path):
    from safetensors.torch import load_file

    a = motion_stage.train_motion_adapter(motion_cfg(tiny_dir, tmp_path / "a"))
    b = motion_stage.train_motion_adapter(motion_cfg(tiny_dir, tmp_path / "b"))
    wa = load_file(str(a / "pytorch_lora_weights.safetensors"))
    wb = load_file(str(b / "pytorch_lora_weights.safetensors"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert any(torch.count_nonzero(wa[k]) for k in wa if "lora_B" in k)  # it trained


@pytest.mark.parametrize("cut", [1, 2])  # 2 videos at batch 1: step 1 is mid-epoch, step 2 an epoch boundary
def test_resumed_run_equals_uninterrupted_run(tiny_dir, tmp_path, cut):
    from safetensors.torch import load_file

    full = motion_stage.train_motion_adapter(motion_cfg(tiny_dir, tmp_path / "full", steps=3))
    motion_stage.train_motion_adapter(motion_cfg(tiny_dir, tmp_path / "cut", steps=cut, checkpoint_every=1))
    assert (tmp_path / f"cut/checkpoints/checkpoint-{cut}").is_dir()
    resumed = motion_stage.train_motion_adapter(motion_cfg(tiny_dir, tmp_path / "cut", steps=3, resume=True))
    wa = load_file(str(full / "pytorch_lora_weights.safetensors"))
    wb = load_file(str(resumed / "pytorch_lora_weights.safetensors"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.fixture(scope="module")
def motion_adapter(tiny_dir, tmp_path_factory):
    return motion_stage.train_motion_adapter(motion_cfg(tiny_dir, tmp_path_factory.mktemp("motion")))


@pytest.fixture(scope="module")
def customized_dir(tiny_dir, tmp_path_factory):
    return save_customized_unet(tiny_dir, tmp_path_factory.mktemp("m1") / "unet")


def spatial_cfg(tiny_dir, out, motion_adapter, customized_dir, **kw):
    defaults = dict(
        prompt=["a sks dog"], identifier="sks", num_images=2, prior_loss_weight=1.0, num_prior_videos=2, spatial_rank=2
    )
    defaults |= SMALL
    return CustomizeConfig(
        model=str(tiny_dir),
        output=str(out),
        motion_adapter=str(motion_adapter),
        customized=str(customized_dir),
        **{**defaults, **kw},
    )


def test_spatial_stage_trains_only_spatial_adapters(tiny_dir, tmp_path, monkeypatch, motion_adapter, customized_dir):
    seen = spy_gradients(spatial_stage, monkeypatch)
    path = spatial_stage.train_spatial_adapters(spatial_cfg(tiny_dir, tmp_path, motion_adapter, customized_dir))
    assert seen["grad"] == seen["trainable"]
    assert sorted(seen["grad"]) == sorted(f"spatial.layers.{i}.{p}" for i in range(12) for p in ("down", "up"))
    assert path.is_file() and (tmp_path / "customization.json").is_file()
    assert len(list((tmp_path / "images").glob("*.png"))) == 2


def test_spatial_stage_switches_motion_scale_per_batch(tiny_dir, tmp_path, monkeypatch, motion_adapter, customized_dir):
    from stillmoving.adapters.motion import MotionLoRA

    scales, baked = [], []
    real, real_bake, real_unbake = MotionLoRA.set_scale, MotionLoRA.bake, MotionLoRA.unbake
    monkeypatch.setattr(MotionLoRA, "set_scale", lambda self, s: (scales.append(s), real(self, s)))
    monkeypatch.setattr(MotionLoRA, "bake", lambda self, s: (baked.append(list(s)), real_bake(self, s)))
    monkeypatch.setattr(MotionLoRA, "unbake", lambda self: (baked.append("unbake"), real_unbake(self)))
    spatial_stage.train_spatial_adapters(spatial_cfg(tiny_dir, tmp_path, motion_adapter, customized_dir))
    # frozen customized videos at 1, prior videos at 0; then 0 (removed) for the validation videos
    assert scales[-5:] == [1.0, 0.0, 1.0, 0.0, 0.0]
    assert baked[0] == [1.0] and baked[-1] == "unbake"  # trained baked, fingerprinted on the UNet's own weights


def test_images_are_encoded_once_not_per_frame(tiny_dir, tmp_path, monkeypatch, motion_adapter, customized_dir):
    import numpy as np

    from stillmoving.data import frozen, sources
    from stillmoving.data.video_io import write_image

    for i in range(3):
        write_image(np.full((32, 32, 3), 40 * i, np.uint8), tmp_path / "imgs" / f"{i}.png")
    encoded = []
    real = frozen.encode_pixels
    monkeypatch.setattr(sources, "encode_pixels", lambda vae, px, **kw: (encoded.append(len(px)), real(vae, px))[1])
    cfg = spatial_cfg(
        tiny_dir,
        tmp_path / "out",
        motion_adapter,
        customized_dir,
        images=str(tmp_path / "imgs"),
        prior_loss_weight=0.0,
        steps=1,
    )
    spatial_stage.train_spatial_adapters(cfg)
    assert encoded == [3]  # three images, one encode each, although videos have 4 frames


def test_frozen_video_repeats_the_latent():
    latents = torch.randn(2, 4, 8, 8)
    video = frozen_video(latents, 5)
    assert video.shape == (2, 4, 5, 8, 8)
    assert all(torch.equal(video[:, :, f], latents) for f in range(5))


def test_random_frozen_frames_repeat_one_frame_of_each_video():
    videos = torch.arange(2 * 4 * 6 * 2 * 2, dtype=torch.float32).reshape(2, 4, 6, 2, 2)  # (b, c, f, h, w)
    frozen = random_frozen_frames(videos, num_frames=3)
    assert frozen.shape == (2, 4, 3, 2, 2)
    for b in range(2):
        assert any(torch.equal(frozen[b, :, 0], videos[b, :, f]) for f in range(6))
        assert torch.equal(frozen[b, :, 0], frozen[b, :, 2])


@pytest.mark.parametrize("kind", ["epsilon", "v_prediction", "sample"])
def test_targets_follow_the_prediction_type(kind):
    scheduler = DDPMScheduler(prediction_type=kind)
    x0, eps, t = torch.randn(2, 4, 3, 8, 8), torch.randn(2, 4, 3, 8, 8), torch.tensor([10, 900])
    target = diffusion_target(scheduler, x0, eps, t)
    a = scheduler.alphas_cumprod[t].sqrt().view(2, 1, 1, 1, 1)
    s = (1 - scheduler.alphas_cumprod[t]).sqrt().view(2, 1, 1, 1, 1)
    expected = {"epsilon": eps, "v_prediction": a * eps - s * x0, "sample": x0}[kind]
    torch.testing.assert_close(target, expected)


def test_min_snr_weights():
    scheduler = DDPMScheduler()
    t = torch.tensor([1, 999])
    snr = scheduler.alphas_cumprod[t] / (1 - scheduler.alphas_cumprod[t])
    torch.testing.assert_close(snr_weights(scheduler, t, 5.0), torch.clamp(snr, max=5.0) / snr)


def test_unknown_config_keys_are_an_error():
    with pytest.raises(StillMovingError, match="unknown CustomizeConfig key"):
        make_config(CustomizeConfig, {"model": "m", "output": "o", "spatial_rnak": 4})


def test_a_config_file_that_is_not_valid_yaml_is_one_line_naming_where(tmp_path):
    from stillmoving.training.config import load_config

    (tmp_path / "c.yaml").write_text("steps: [1\n")
    with pytest.raises(StillMovingError) as refused:
        load_config(CustomizeConfig, tmp_path / "c.yaml")
    message = str(refused.value)
    assert message.startswith(f"cannot read config {tmp_path / 'c.yaml'}: not valid YAML: ")
    assert "(line 2, column 1)" in message
    assert "\n" not in message


def test_a_lone_string_where_an_option_repeats_is_one_value():
    cfg = make_config(
        CustomizeConfig,
        {"model": "m", "output": "o", "prompt": "a sks dog", "prior_prompt": "a dog", "lora": "style.safetensors:0.8"},
    )
    assert (cfg.prompt, cfg.prior_prompt, cfg.lora) == (["a sks dog"], ["a dog"], [("style.safetensors", 0.8)])
    assert make_config(CustomizeConfig, {"model": "m", "output": "o", "prompt": ["a", "b"]}).prompt == ["a", "b"]


def write_world_videos(folder, count=2, frames=5):
    """A few rendered world videos as GIF files and a frames folder, captioned in metadata.jsonl."""
    import json

    from stillmoving.data.video_io import write_video
    from stillmoving.world.synthetic import make_video_dataset

    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (pixels, caption, _) in enumerate(make_video_dataset(count + 1, seed=1, num_frames=frames, resolution=32)):
        name = f"clip{i}.gif" if i < count else "clip_frames"
        write_video(pixels, folder / name)
        lines.append(json.dumps({"file_name": name, "text": caption}))
    (folder / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_motion_stage_from_a_video_folder_with_accumulation(tiny_dir, tmp_path):
    import json

    videos = write_world_videos(tmp_path / "videos")
    cfg = motion_cfg(tiny_dir, tmp_path / "out", videos=str(videos), sample_prompt=[], grad_accum=2)
    motion_stage.train_motion_adapter(cfg)
    record = json.loads((tmp_path / "out/motion_adapter_run.json").read_text())
    assert record["videos"] == 3 and len(record["losses"]) == 2


def test_too_short_videos_are_refused(tiny_dir, tmp_path):
    videos = write_world_videos(tmp_path / "videos", frames=3)
    with pytest.raises(StillMovingError, match="has 3 frames, training needs at least 4"):
        motion_stage.train_motion_adapter(motion_cfg(tiny_dir, tmp_path / "out", videos=str(videos)))


def test_spatial_stage_with_prior_video_folder_and_v_prediction(tiny_dir, tmp_path, motion_adapter, customized_dir):
    import json
    import shutil

    model = tmp_path / "vpred"
    shutil.copytree(tiny_dir, model)
    config = json.loads((model / "scheduler/scheduler_config.json").read_text())
    (model / "scheduler/scheduler_config.json").write_text(json.dumps({**config, "prediction_type": "v_prediction"}))
    videos = write_world_videos(tmp_path / "prior")
    cfg = spatial_cfg(model, tmp_path / "out", motion_adapter, customized_dir, prior_videos=str(videos), snr_gamma=5.0)
    spatial_stage.train_spatial_adapters(cfg)
    record = json.loads((tmp_path / "out/customize_run.json").read_text())
    assert record["prior_videos"] == 3 and all(loss == loss for loss in record["losses"])


def _two_scale_gradients(unet, motion, adapters, checkpointing: bool):
    """Stage 2's two loss terms (motion scale 1, then 0) through the training loop's `backward_terms`."""
    from accelerate import Accelerator

    from stillmoving.training.loop import backward_terms

    unet.disable_gradient_checkpointing()
    if checkpointing:
        unet.enable_gradient_checkpointing()
    unet.train()
    gen = torch.Generator().manual_seed(0)
    samples = [torch.randn(1, 4, 3, 16, 16, generator=gen) for _ in range(2)]
    text = torch.randn(3, 16, 32, generator=gen)

    def term(scale, sample):
        motion.set_scale(scale)
        return unet(sample, torch.tensor([500]), encoder_hidden_states=text).sample.square().mean()

    adapters.zero_grad()
    backward_terms(Accelerator(cpu=True), unet, [lambda: term(1.0, samples[0]), lambda: term(0.0, samples[1])])
    return [p.grad.clone() for p in adapters.parameters()]


@pytest.mark.parametrize("baked", [False, True])
def test_stage2_gradients_are_the_same_under_gradient_checkpointing(tiny_dir, baked):
    """Each term is back-propagated before the motion scale changes, so checkpointing recomputes the frozen
    batch at scale 1, not at the scale the prior batch left behind."""
    import conftest
    from diffusers import UNetMotionModel

    from stillmoving.adapters.motion import MotionLoRA
    from stillmoving.adapters.spatial import SpatialAdapters

    unet = UNetMotionModel.from_pretrained(tiny_dir, subfolder="unet")
    motion = MotionLoRA.inject(unet, rank=4)
    conftest.perturb(motion.trainable_parameters(), seed=1, scale=0.3)
    unet.requires_grad_(False)
    if baked:
        motion.bake([1.0])
    adapters = SpatialAdapters.for_unet(unet, rank=2)
    conftest.perturb(adapters.parameters(), seed=2, scale=0.1)
    adapters.attach(unet)
    plain = _two_scale_gradients(unet, motion, adapters, checkpointing=False)
    checkpointed = _two_scale_gradients(unet, motion, adapters, checkpointing=True)
    assert all(g.abs().sum() > 0 for g in plain)
    for a, b in zip(plain, checkpointed):
        torch.testing.assert_close(a, b)


def test_prior_videos_are_sampled_once_per_video_model_and_settings(
    tiny_dir, tmp_path, monkeypatch, motion_adapter, customized_dir
):
    """A second customization of the same V reuses the cached prior videos and trains the same adapters bit
    for bit; another setting, the cache turned off, or an unreadable cache file samples again."""
    from safetensors.torch import load_file

    sampled = []
    real = spatial_stage.sample_videos
    monkeypatch.setattr(
        spatial_stage,
        "sample_videos",
        lambda pipe, prompts, **kw: (sampled.append(len(prompts)), real(pipe, prompts, **kw))[1],
    )
    cache = tmp_path / "cache"

    def customize(name, **kw):
        cfg = spatial_cfg(
            tiny_dir,
            tmp_path / name,
            motion_adapter,
            customized_dir,
            cache_dir=str(cache),
            prior_prompt=["a dog moving left"],
            **kw,
        )
        return load_file(spatial_stage.train_spatial_adapters(cfg))

    first = customize("first")
    assert sampled == [2] and len(list((cache / "prior_videos").glob("*.safetensors"))) == 1
    second = customize("second", prompt=["a sks cat"])  # another customization, same V and prior settings
    assert sampled == [2]
    again = customize("again", prompt=["a sks cat"], cache_prior_videos=False)
    assert sampled == [2, 2]
    assert all(torch.equal(second[k], again[k]) for k in second)  # the cached videos are the sampled ones
    assert any(not torch.equal(first[k], second[k]) for k in first)  # (the customization itself did differ)
    customize("more", num_prior_videos=3)
    assert sampled == [2, 2, 3]
    for path in (cache / "prior_videos").glob("*.safetensors"):
        path.write_bytes(b"not a safetensors file")
    with pytest.warns(UserWarning, match="unreadable cached prior videos"):
        customize("corrupt")
    assert sampled == [2, 2, 3, 2]
