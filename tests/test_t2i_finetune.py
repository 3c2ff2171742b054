"""T2I customizers: what trains, what is written, that the project's loaders take it, determinism, bad input."""

import dataclasses
import json

import conftest
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from stillmoving.data.video_io import write_image
from stillmoving.errors import StillMovingError
from stillmoving.injection import t2i_unet_from_t2v
from stillmoving.loading import load_customized, t2i_pipeline
from stillmoving.training import dreambooth, setup, style_lora
from stillmoving.training.config import DreamBoothConfig, StyleLoRAConfig, make_config
from stillmoving.training.dreambooth import train_dreambooth
from stillmoving.training.style_lora import train_style_lora

SMALL = dict(height=32, width=32, steps=2, lr=1e-3)


def spy_gradients(monkeypatch, trainer):
    """conftest's gradient spy on a customizer's loop, plus the base pipeline it loads."""
    seen = conftest.spy_gradients(trainer, monkeypatch)
    real_load = setup.load_base_t2i

    def load(*args, **kwargs):
        seen["pipe"] = real_load(*args, **kwargs)
        return seen["pipe"]

    monkeypatch.setattr(setup, "load_base_t2i", load)
    return seen


@pytest.fixture(scope="module")
def subject(tmp_path_factory):
    """Three 32 px images of a yellow star-ish blob."""
    folder = tmp_path_factory.mktemp("subject")
    for i in range(3):
        image = np.zeros((32, 32, 3), np.uint8)
        image[8 + i : 24, 6 : 26 - i] = (230, 200, 20)
        write_image(image, folder / f"{i}.png")
    return folder


@pytest.fixture(scope="module")
def style(tmp_path_factory):
    """Two striped images, one captioned by a sidecar, one left to the default prompt."""
    folder = tmp_path_factory.mktemp("style")
    for i in range(2):
        image = np.zeros((32, 32, 3), np.uint8)
        image[:, i::3] = (20, 120, 240)
        write_image(image, folder / f"{i}.png")
    (folder / "0.txt").write_text("a red circle in striped style")
    return folder


def dreambooth_cfg(model, out, images, **kw):
    values = dict(model=str(model), output=str(out), images=str(images), prompt="a dog")
    return DreamBoothConfig(**{**values, **SMALL, **kw})


def style_cfg(model, out, images, **kw):
    values = dict(model=str(model), output=str(out), images=str(images), prompt="a square in striped style")
    return StyleLoRAConfig(**{**values, "rank": 4, **SMALL, **kw})


def differs(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return any(not torch.equal(sa[k], sb[k]) for k in sa)


def test_dreambooth_trains_only_the_unet_and_loads_as_customized(tiny_dir, tiny_pipe, subject, tmp_path, monkeypatch):
    seen = spy_gradients(monkeypatch, dreambooth)
    out = train_dreambooth(dreambooth_cfg(tiny_dir, tmp_path, subject))
    assert seen["grad"] == seen["trainable"] == seen["all"]
    assert all(n.startswith("unet.") for n in seen["all"])
    frozen = [*seen["pipe"].vae.parameters(), *seen["pipe"].text_encoder.parameters()]
    assert not any(p.requires_grad or p.grad is not None for p in frozen)
    assert sorted(p.name for p in (out / "unet").iterdir()) == ["config.json", "diffusion_pytorch_model.safetensors"]
    assert not (out / "text_encoder").exists() and not (out / "class_images").exists()
    record = json.loads((out / "dreambooth_run.json").read_text())
    assert len(record["losses"]) == 2 and record["instance_images"] == 3 and record["class_images"] == 0

    m1 = load_customized(tiny_pipe, str(out))
    assert m1.text_encoder is None
    assert differs(m1.unet, t2i_unet_from_t2v(tiny_pipe.unet))
    tiny_pipe.inject_customized(m1.unet, m1.text_encoder)  # fits the video model


def test_dreambooth_prior_preservation_and_text_encoder(tiny_dir, tiny_pipe, subject, tmp_path, monkeypatch):
    seen = spy_gradients(monkeypatch, dreambooth)
    losses = []
    real_loss = dreambooth.video_loss
    monkeypatch.setattr(dreambooth, "video_loss", lambda *a, **k: (losses.append(a[2].shape), real_loss(*a, **k))[1])
    cfg = dreambooth_cfg(
        tiny_dir,
        tmp_path,
        subject,
        class_prompt="a photo of a dog",
        num_class_images=2,
        sample_steps=2,
        guidance_scale=1.0,
        prior_loss_weight=0.5,
        train_text_encoder=True,
        gradient_checkpointing=True,
    )
    out = train_dreambooth(cfg)
    assert seen["grad"] == seen["trainable"] == seen["all"]
    assert {n.split(".")[0] for n in seen["grad"]} == {"unet", "text_encoder"}
    assert not any(p.requires_grad for p in seen["pipe"].vae.parameters())
    assert len(losses) == 2 * (2 + 1)  # instance + class batch per micro-step, and the spy's extra one
    assert len(list((out / "class_images").glob("*.png"))) == 2
    assert json.loads((out / "dreambooth_run.json").read_text())["class_images"] == 2
    m1 = load_customized(tiny_pipe, str(out))
    assert m1.text_encoder is not None and differs(m1.text_encoder, tiny_pipe.text_encoder)


@pytest.mark.parametrize("use_captions", [False, True])
def test_dreambooth_captions_come_from_the_folder_only_when_asked(tiny_dir, style, tmp_path, monkeypatch, use_captions):
    """`style` has one image captioned by a sidecar and one without: kohya-style captions fall back to the prompt."""
    encoded = []
    real = dreambooth.PromptBank.encode
    monkeypatch.setattr(
        dreambooth.PromptBank, "encode", lambda self, *a: (encoded.append(list(self.prompts)), real(self, *a))[1]
    )
    train_dreambooth(dreambooth_cfg(tiny_dir, tmp_path, style, use_captions=use_captions))
    expected = {"a dog", "a red circle in striped style"} if use_captions else {"a dog"}
    assert set(encoded[0]) == expected


def test_dreambooth_is_deterministic_on_cpu(tiny_dir, subject, tmp_path):
    a = train_dreambooth(dreambooth_cfg(tiny_dir, tmp_path / "a", subject, steps=1))
    b = train_dreambooth(dreambooth_cfg(tiny_dir, tmp_path / "b", subject, steps=1))
    wa, wb = (load_file(str(p / "unet/diffusion_pytorch_model.safetensors")) for p in (a, b))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_resumed_dreambooth_equals_uninterrupted_run(tiny_dir, subject, tmp_path):
    # Resumes at an epoch boundary of both loaders: a fresh DataLoader iterator draws from the global RNG,
    # so loop.batches only reproduces the uninterrupted run's noise there.
    images = tmp_path / "two"
    images.mkdir()
    for name in ("0.png", "1.png"):
        (images / name).write_bytes((subject / name).read_bytes())
    prior = dict(class_prompt="a photo of a dog", num_class_images=2, sample_steps=2, guidance_scale=1.0)
    full = train_dreambooth(dreambooth_cfg(tiny_dir, tmp_path / "full", images, steps=3, **prior))
    train_dreambooth(dreambooth_cfg(tiny_dir, tmp_path / "cut", images, steps=2, checkpoint_every=2, **prior))
    resumed = train_dreambooth(dreambooth_cfg(tiny_dir, tmp_path / "cut", images, steps=3, resume=True, **prior))
    wa, wb = (load_file(str(p / "unet/diffusion_pytorch_model.safetensors")) for p in (full, resumed))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert json.loads((resumed / "dreambooth_run.json").read_text())["start_step"] == 2


def test_style_lora_wraps_exactly_the_spatial_attention_projections(tiny_pipe):
    unet = t2i_unet_from_t2v(tiny_pipe.unet)
    expected = [
        f"{block}.attentions.{i}.transformer_blocks.0.attn{a}.{proj}"
        for block, count in (("down_blocks.0", 1), ("up_blocks.1", 2), ("mid_block", 1))
        for i in range(count)
        for a in (1, 2)
        for proj in ("to_q", "to_k", "to_v", "to_out.0")
    ]
    assert sorted(style_lora.spatial_attention_modules(unet)) == sorted(expected)
    assert not style_lora.spatial_attention_modules(tiny_pipe.unet.down_blocks[0].motion_modules)


def test_style_lora_trains_only_the_lora_and_loads_everywhere(tiny_dir, tiny_pipe, style, tmp_path, monkeypatch):
    seen = spy_gradients(monkeypatch, style_lora)
    path = train_style_lora(style_cfg(tiny_dir, tmp_path, style))
    assert seen["grad"] == seen["trainable"] and len(seen["all"]) > len(seen["grad"])
    assert len(seen["grad"]) == 32 * 2 and all(".lora_" in n and ".attentions." in n for n in seen["grad"])
    assert path == tmp_path / "pytorch_lora_weights.safetensors"
    state = load_file(str(path))
    assert len(state) == 64 and all(k.startswith("unet.") and ".lora_" in k for k in state)
    assert json.loads((tmp_path / "style_lora_run.json").read_text())["images"] == 2

    base = t2i_unet_from_t2v(tiny_pipe.unet)
    full, half = (load_customized(tiny_pipe, loras=[(str(path), w)]).unet for w in (1.0, 0.5))
    sb, sf, sh = base.state_dict(), full.state_dict(), half.state_dict()
    changed = [k for k in sb if not torch.equal(sb[k], sf[k])]
    assert changed and all(".attentions." in k for k in changed)
    assert all(torch.allclose(sh[k] - sb[k], (sf[k] - sb[k]) / 2, atol=1e-6) for k in changed)  # weight scales it

    plain = t2i_pipeline(tiny_pipe, t2i_unet_from_t2v(tiny_pipe.unet))
    plain.load_lora_weights(str(path))  # diffusers alone, no stillmoving code
    x, t, text = torch.randn(1, 4, 16, 16), torch.tensor([500]), torch.randn(1, 16, 32)
    with torch.no_grad():
        outputs = [unet(x, t, encoder_hidden_states=text).sample for unet in (plain.unet, full, base)]
    assert torch.allclose(outputs[0], outputs[1], atol=1e-5) and not torch.allclose(outputs[0], outputs[2])
    tiny_pipe.load_lora_weights(str(path))  # and straight into the video model's spatial layers
    assert any(".attentions." in n and "lora_B" in n for n, _ in tiny_pipe.unet.named_parameters())


def test_style_lora_accepts_a_stable_diffusion_folder_and_is_deterministic(tiny_pipe, style, tmp_path):
    sd_dir = tmp_path / "sd"
    t2i_pipeline(tiny_pipe, t2i_unet_from_t2v(tiny_pipe.unet)).save_pretrained(sd_dir)
    a = train_style_lora(style_cfg(sd_dir, tmp_path / "a", style, steps=1))
    b = train_style_lora(style_cfg(sd_dir, tmp_path / "b", style, steps=1))
    wa, wb = load_file(str(a)), load_file(str(b))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert any(torch.count_nonzero(wa[k]) for k in wa if "lora_B" in k)  # it trained


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(images="missing"), "no such folder"),
        (dict(images="empty"), "no images found"),
        (dict(prompt="  "), "instance prompt"),
        (dict(class_images="subject"), "class prompt"),
        (dict(class_prompt="a dog", num_class_images=0), "num_class_images"),
        (dict(model="missing_model"), "no such model folder"),
    ],
)
def test_dreambooth_refuses_bad_input(tiny_dir, subject, tmp_path, change, message):
    (tmp_path / "empty").mkdir()
    paths = {
        "missing": tmp_path / "missing",
        "empty": tmp_path / "empty",
        "subject": subject,
        "missing_model": tmp_path / "missing_model",
    }
    cfg = dreambooth_cfg(tiny_dir, tmp_path / "out", subject)
    cfg = dataclasses.replace(cfg, **{k: str(paths.get(v, v)) if isinstance(v, str) else v for k, v in change.items()})
    with pytest.raises(StillMovingError, match=message):
        train_dreambooth(cfg)
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_style_lora_refuses_uncaptioned_images_without_a_prompt(tiny_dir, style, tmp_path):
    with pytest.raises(StillMovingError, match="no caption for .*1.png"):
        train_style_lora(style_cfg(tiny_dir, tmp_path, style, prompt=None))
    with pytest.raises(StillMovingError, match="rank"):
        train_style_lora(style_cfg(tiny_dir, tmp_path, style, rank=0))


def test_configs_refuse_unknown_and_missing_keys(tmp_path):
    with pytest.raises(StillMovingError, match="unknown DreamBoothConfig key"):
        make_config(DreamBoothConfig, dict(model="m", output="o", images="i", prompt="p", rank=4))
    with pytest.raises(StillMovingError, match="incomplete StyleLoRAConfig"):
        make_config(StyleLoRAConfig, dict(model="m", output="o"))
    cfg = make_config(DreamBoothConfig, dict(model="m", output="o", images="i", prompt="p"))
    assert (cfg.lr, cfg.steps, cfg.height) == (5e-6, 400, 512)
    assert StyleLoRAConfig(model="m", output="o", images="i").lr == 1e-4
