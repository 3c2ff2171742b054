"""Loading V and M1: folders, LoRA files fused at weights, and refusals."""

import copy

import pytest
import torch
from diffusers import StableDiffusionPipeline
from peft import LoraConfig, inject_adapter_in_model
from peft.utils import get_peft_model_state_dict

from stillmoving.errors import StillMovingError
from stillmoving.injection import t2i_unet_from_t2v
from stillmoving.loading import load_customized, load_t2v


def write_lora(tiny_pipe, path, text_encoder: bool = False, seed: int = 0):
    """A LoRA on the T2I's attention (and optionally the text encoder), saved in diffusers format."""
    unet = t2i_unet_from_t2v(tiny_pipe.unet)
    unet.add_adapter(LoraConfig(r=2, lora_alpha=2, target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in unet.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
    layers = {"unet_lora_layers": get_peft_model_state_dict(unet)}
    text = None
    if text_encoder:  # peft's own API: transformers' add_adapter refuses peft < 0.22 from transformers 5.24 on
        text = inject_adapter_in_model(
            LoraConfig(r=2, lora_alpha=2, target_modules=["q_proj", "v_proj"]), copy.deepcopy(tiny_pipe.text_encoder)
        )
        with torch.no_grad():
            for name, p in text.named_parameters():
                if "lora_B" in name:
                    p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
        layers["text_encoder_lora_layers"] = get_peft_model_state_dict(text)
    StableDiffusionPipeline.save_lora_weights(str(path), **layers)
    return unet, text, path / "pytorch_lora_weights.safetensors"


def test_lora_is_fused_at_its_weight(tiny_pipe, tmp_path):
    unet_with_lora, _, file = write_lora(tiny_pipe, tmp_path)
    m1 = load_customized(tiny_pipe, loras=[(str(file), 0.7)])
    assert m1.text_encoder is None  # a UNet-only LoRA leaves V's text encoder as it is
    unet_with_lora.set_adapters(["default"], [0.7])
    sample, text = torch.randn(1, 4, 16, 16), torch.randn(1, 16, 32)
    with torch.no_grad():
        expected = unet_with_lora(sample, 10, text).sample
        got = m1.unet(sample, 10, text).sample
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    assert not any(".lora_" in n for n, _ in m1.unet.named_parameters())  # fused and unloaded


def test_text_encoder_lora_gives_a_customized_text_encoder_and_leaves_v_alone(tiny_pipe, tmp_path, monkeypatch):
    """Fused at its weight, it equals peft's model; transformers' version-gated peft methods (add_adapter,
    set_adapter, ...: peft >= 0.22 from transformers 5.24 on) are never called, so no peft/transformers pair
    that pip picks can refuse it."""
    from transformers.integrations import peft as transformers_peft

    before = {k: v.clone() for k, v in tiny_pipe.text_encoder.state_dict().items()}
    _, text_with_lora, file = write_lora(tiny_pipe, tmp_path, text_encoder=True)
    monkeypatch.setattr(transformers_peft, "check_peft_version", lambda **_: pytest.fail("version-gated call"))
    m1 = load_customized(tiny_pipe, loras=[(str(file), 0.5)])
    assert m1.text_encoder is not None
    assert all(torch.equal(before[k], v) for k, v in tiny_pipe.text_encoder.state_dict().items())
    for module in text_with_lora.modules():
        if "default" in getattr(module, "scaling", {}):
            module.scaling["default"] *= 0.5
    ids = tiny_pipe.tokenizer(["a red circle"], padding="max_length", max_length=16, return_tensors="pt").input_ids
    with torch.no_grad():
        expected, got, base = (model(ids)[0] for model in (text_with_lora, m1.text_encoder, tiny_pipe.text_encoder))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(got, base, atol=1e-3)


def test_customized_pipeline_folder_brings_its_text_encoder(tiny_pipe, tmp_path):
    t2i = StableDiffusionPipeline(
        vae=tiny_pipe.vae,
        text_encoder=tiny_pipe.text_encoder,
        tokenizer=tiny_pipe.tokenizer,
        unet=t2i_unet_from_t2v(tiny_pipe.unet),
        scheduler=tiny_pipe.scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    t2i.save_pretrained(tmp_path / "sd")
    m1 = load_customized(tiny_pipe, tmp_path / "sd")
    assert m1.text_encoder is not None and list(m1.unet.config.block_out_channels) == [32, 64]


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda tmp: tmp / "missing", "no such model folder"),
        (lambda tmp: (tmp / "empty").mkdir() or tmp / "empty", "neither a diffusers UNet"),
    ],
)
def test_bad_customized_folders_are_refused(tiny_pipe, tmp_path, make, message):
    with pytest.raises(StillMovingError, match=message):
        load_customized(tiny_pipe, make(tmp_path))


def test_missing_lora_file_is_refused(tiny_pipe, tmp_path):
    with pytest.raises(StillMovingError, match="no such LoRA file"):
        load_customized(tiny_pipe, loras=[(str(tmp_path / "x.safetensors"), 1.0)])


def test_sd_folder_without_motion_modules_is_refused(tiny_pipe, tmp_path):
    t2i = StableDiffusionPipeline(
        vae=tiny_pipe.vae,
        text_encoder=tiny_pipe.text_encoder,
        tokenizer=tiny_pipe.tokenizer,
        unet=t2i_unet_from_t2v(tiny_pipe.unet),
        scheduler=tiny_pipe.scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    t2i.save_pretrained(tmp_path / "sd")
    with pytest.raises(StillMovingError, match="pass its motion modules"):
        load_t2v(tmp_path / "sd")


def test_sd_folder_plus_motion_modules_loads(tiny_pipe, tiny_dir, tmp_path):
    t2i = StableDiffusionPipeline(
        vae=tiny_pipe.vae,
        text_encoder=tiny_pipe.text_encoder,
        tokenizer=tiny_pipe.tokenizer,
        unet=t2i_unet_from_t2v(tiny_pipe.unet),
        scheduler=tiny_pipe.scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    t2i.save_pretrained(tmp_path / "sd")
    tiny_pipe.unet.save_motion_modules(str(tmp_path / "mm"))
    pipe = load_t2v(tmp_path / "sd", tmp_path / "mm")
    for key, value in tiny_pipe.unet.state_dict().items():
        assert torch.equal(pipe.unet.state_dict()[key], value), key


def test_a_video_model_folder_gives_its_spatial_layers_as_the_base_of_a_lora(tiny_dir, tmp_path):
    """M from an AnimateDiff folder (its spatial layers), a LoRA fused on it, injected into another V: the
    jointly trained world model's users customize M, not the joint model's own spatial layers."""
    other = load_t2v(tiny_dir)
    with torch.no_grad():
        for name, p in other.unet.named_parameters():
            if "motion_modules" not in name:
                p.add_(0.05)  # another V: its spatial layers are no longer M
    _, _, file = write_lora(load_t2v(tiny_dir), tmp_path)
    on_m = load_customized(load_t2v(tiny_dir), loras=[(str(file), 1.0)]).unet.state_dict()
    from_folder = load_customized(other, str(tiny_dir), [(str(file), 1.0)]).unet.state_dict()
    on_other = load_customized(other, loras=[(str(file), 1.0)]).unet.state_dict()
    assert on_m.keys() == from_folder.keys()
    assert all(torch.equal(on_m[k], from_folder[k]) for k in on_m)
    assert not all(torch.equal(on_m[k], on_other[k]) for k in on_m)
