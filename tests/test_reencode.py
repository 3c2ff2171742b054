"""`customize --reencode-images` and `--moving-stills PX`: the customized T2I's images trained on as images (decoded and
encoded again), and as stills that move sideways, trained at alpha 0 (docs/method.md, "The customized T2I's images
as images")."""

from types import SimpleNamespace

import pytest
import torch
from conftest import customized_with, differ

from stillmoving.adapters.motion import MotionLoRA
from stillmoving.data import frozen
from stillmoving.data.frozen import reencoded
from stillmoving.errors import StillMovingError
from stillmoving.training import spatial_stage
from stillmoving.training.config import CustomizeConfig
from stillmoving.training.spatial_stage import check_customize_inputs


class PixelVAE(torch.nn.Module):
    """A VAE whose latents are its pixels: decode and encode are the identity (scaling factor 1)."""

    config = SimpleNamespace(scaling_factor=1.0)
    device, dtype = torch.device("cpu"), torch.float32

    def decode(self, latents):
        return SimpleNamespace(sample=latents)

    def encode(self, pixels):
        return SimpleNamespace(latent_dist=SimpleNamespace(mean=pixels))


def test_reencoded_images_are_the_encoded_decoded_images():
    latents = [torch.rand(3, 4, 6) * 4 - 2, torch.rand(3, 4, 6) - 0.5]
    again = reencoded(PixelVAE(), latents)
    assert [a.shape for a in again] == [(3, 4, 6)] * 2
    assert torch.equal(again[0], latents[0].clamp(-1, 1)) and torch.equal(again[1], latents[1])  # decoded to [-1, 1]


@pytest.mark.parametrize("speed", [1.0, 0.5, 2.0])
def test_a_moving_still_shifts_the_image_by_the_speed_in_every_frame(speed):
    image = torch.rand(3, 4, 20) * 2 - 1  # shifts of 2, 4 or 8 px by frame 4, each distinct from its opposite
    videos = reencoded(PixelVAE(), [image, image], 5, speed, torch.Generator().manual_seed(0))
    assert [v.shape for v in videos] == [(3, 5, 4, 20)] * 2  # (C, F, h, w)
    signs = []
    for video in videos:
        assert torch.equal(video[:, 0], image)
        sign = next(s for s in (1, -1) if torch.equal(video[:, 4], torch.roll(image, s * round(4 * speed), dims=-1)))
        assert all(torch.equal(video[:, f], torch.roll(image, sign * round(f * speed), dims=-1)) for f in range(5))
        signs.append(sign)
    drawn = torch.Generator().manual_seed(0)  # the directions come from the generator alone
    assert signs == [1 if torch.rand((), generator=drawn) < 0.5 else -1 for _ in range(2)]


@pytest.mark.parametrize(
    "share, chosen", [(0.5, [0, 2, 4]), (1.0, [0, 1, 2, 3, 4, 5]), (0.25, [0, 4]), (1 / 3, [0, 3]), (0.01, [0])]
)
def test_a_share_of_the_images_is_reencoded_evenly(share, chosen):
    latents = [torch.rand(3, 4, 6) * 4 - 2 for _ in range(6)]  # outside [-1, 1]: re-encoding clamps them
    out = spatial_stage.reencode_share(PixelVAE(), latents, share)
    assert [i for i, (a, z) in enumerate(zip(out, latents)) if not torch.equal(a, z)] == chosen
    assert all(torch.equal(out[i], latents[i].clamp(-1, 1)) for i in chosen)


def test_bad_moving_stills_and_reencode_settings_are_refused(tmp_path):
    base = dict(model="m", output=str(tmp_path), prompt=["a sks dog"])
    with pytest.raises(StillMovingError, match="--moving-stills must be at least 0"):
        check_customize_inputs(CustomizeConfig(**base, moving_stills=-1.0))
    with pytest.raises(StillMovingError, match="--frame-agreement asks a frozen video's frames to agree"):
        check_customize_inputs(CustomizeConfig(**base, moving_stills=1.0, frame_agreement=10.0))
    with pytest.raises(StillMovingError, match="the images of --images are encoded already"):
        check_customize_inputs(CustomizeConfig(**base, reencode_images=1.0, images=str(tmp_path)))
    with pytest.raises(StillMovingError, match="--moving-stills encodes every frame of every image already"):
        check_customize_inputs(CustomizeConfig(**base, moving_stills=1.0, reencode_images=0.5))
    for share, message in ((1.5, "is a share, at most 1, not 1.5"), (-0.5, "at least 0, not -0.5")):
        with pytest.raises(StillMovingError, match=message):
            check_customize_inputs(CustomizeConfig(**base, reencode_images=share))


def test_reencoded_images_train_other_adapters_and_are_recorded(tiny_dir, stage2_inputs, tmp_path, monkeypatch):
    calls = []
    real = spatial_stage.reencoded

    def spy(vae, latents):
        calls.append(len(latents))
        return real(vae, latents)

    monkeypatch.setattr(spatial_stage, "reencoded", spy)
    (plain, _), (again, config) = (
        customized_with(tiny_dir, stage2_inputs, tmp_path / str(share), reencode_images=share) for share in (0.0, 1.0)
    )
    assert calls == [1] and config["reencode_images"] == 1.0 and differ(plain, again)  # one image, re-encoded


def test_moving_stills_train_with_the_motion_adapter_off(tiny_dir, stage2_inputs, tmp_path, monkeypatch):
    scales, at_loss, items = [], [], []
    real_scale, real_loss = MotionLoRA.set_scale, spatial_stage.video_loss
    monkeypatch.setattr(MotionLoRA, "set_scale", lambda self, s: (scales.append(s), real_scale(self, s)))
    monkeypatch.setattr(spatial_stage, "video_loss", lambda *a, **k: at_loss.append(scales[-1]) or real_loss(*a, **k))
    real_item = frozen.VideoClipDataset.__getitem__
    monkeypatch.setattr(frozen.VideoClipDataset, "__getitem__", lambda d, i: items.append(real_item(d, i)) or items[-1])
    (plain, _), (moving, config) = (
        customized_with(tiny_dir, stage2_inputs, tmp_path / str(px), moving_stills=px, prior_loss_weight=0.0)
        for px in (0.0, 4.0)
    )
    assert config["moving_stills"] == 4.0 and differ(plain, moving)
    steps = config["steps"]  # the paper's frozen videos with the motion adapter on, then moving stills with it off
    assert at_loss == [1.0] * steps + [0.0] * steps
    video = items[0]["latents"]  # (C, F, h, w): the frames differ, one image shifted
    assert video.shape[1] == 4 and not torch.equal(video[:, 0], video[:, 1])
