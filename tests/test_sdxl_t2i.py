"""The T2I verbs (`t2i dreambooth`, `t2i lora`) on an SDXL base, on the tiny seeded SDXL of tests/sdxl_models.py: the
UNet conditioned as StableDiffusionXLPipeline conditions it, what trains and what is written, that the results load
into an AnimateDiff-SDXL video model (and customize and generate through the CLI), refusals before any model loads,
and a customization of the other family (SD1.5 for SDXL, or the reverse) refused in one line naming both."""

import json

import pytest
import test_sdxl
import test_t2i_finetune
import torch
from conftest import PROMPT, save_customized_unet
from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel
from family_cli import STAGE2
from safetensors.torch import load_file, save_file
from test_cli import run
from test_sdxl import SPATIAL_LAYERS
from test_t2i_finetune import differs, dreambooth_cfg, spy_gradients, style_cfg

from stillmoving.adapters.spatial import SpatialAdapters
from stillmoving.backends import SDXL, backend_of
from stillmoving.data.sources import PromptBank
from stillmoving.injection import spatial_state_dict
from stillmoving.loading import assemble_pipeline, load_customized, load_t2v
from stillmoving.training import dreambooth, setup, style_lora
from stillmoving.training.dreambooth import train_dreambooth
from stillmoving.training.style_lora import train_style_lora

# Module fixtures shared with the SD1.5 T2I tests and the SDXL tests: the tiny SDXL folders, a motion adapter of its
# video model, the subject and style images.
sdxl, motion_adapter_file = test_sdxl.sdxl, test_sdxl.motion_adapter_file
subject, style = test_t2i_finetune.subject, test_t2i_finetune.style

# The tiny SDXL's spatial transformers: none at the first level, two layers each at the second and in the middle.
TRANSFORMERS = ["down_blocks.1.attentions.0", "up_blocks.0.attentions.0", "up_blocks.0.attentions.1"]
TRANSFORMERS += ["mid_block.attentions.0"]
LORA_MODULES = [
    f"{t}.transformer_blocks.{j}.attn{a}.{p}"
    for t in TRANSFORMERS
    for j in (0, 1)
    for a in (1, 2)
    for p in ("to_q", "to_k", "to_v", "to_out.0")
]
SMALL = ["--height", "32", "--width", "32", "--steps", "2"]
VIDEO = ["--num-frames", "4", *SMALL, "--sample-steps", "2"]


def unet_call(unet, run_it):
    """The positional and keyword arguments of the first call of `unet` inside `run_it()`."""
    seen = {}
    handle = unet.register_forward_pre_hook(lambda m, a, k: seen.setdefault("call", (a, k)), with_kwargs=True)
    try:
        run_it()
    finally:
        handle.remove()
    return seen["call"]


def test_the_base_sdxl_t2i_is_read_from_either_folder(sdxl):
    """`--model` is an SDXL pipeline folder or an AnimateDiff-SDXL one (its T2I part): the same weights."""
    plain, from_video = (setup.load_base_t2i(str(sdxl / name)) for name in ("t2i", "t2v"))
    assert type(plain) is type(from_video) is StableDiffusionXLPipeline
    assert isinstance(backend_of(plain), SDXL) and isinstance(backend_of(from_video), SDXL)
    for name in ("unet", "text_encoder", "text_encoder_2", "vae"):
        a, b = getattr(plain, name).state_dict(), getattr(from_video, name).state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name


def test_training_conditions_the_sdxl_unet_as_its_pipeline_does(sdxl):
    """The text table and ImageDenoiser feed the UNet exactly what StableDiffusionXLPipeline feeds it (both text
    encoders' hidden states, the pooled embedding, the time ids of the image size), and the rows encoded with
    gradients (SDXL's --train-text-encoder) are the same rows."""
    pipe = setup.load_base_t2i(str(sdxl / "t2i"))
    pipe.set_progress_bar_config(disable=True)
    call = dict(height=32, width=32, num_inference_steps=1, guidance_scale=1.0, output_type="latent")
    (latents, timestep), theirs = unet_call(
        pipe.unet, lambda: pipe(PROMPT, generator=torch.Generator().manual_seed(0), **call)
    )
    bank = PromptBank()
    bank.add(PROMPT)
    table = setup.text_table(bank, pipe, token_ids=False)
    assert table.shape == (1, 16 + 1, 64)  # 16 tokens of both encoders (32 + 32), then the pooled 32 in one row
    denoiser = setup.ImageDenoiser(pipe.unet, backend=backend_of(pipe))
    with torch.no_grad():
        _, ours = unet_call(pipe.unet, lambda: denoiser(latents, timestep.expand(1), table))
        prediction = denoiser(latents, timestep.expand(1), table)
        direct = pipe.unet(latents, timestep, **{k: theirs[k] for k in ("encoder_hidden_states", "added_cond_kwargs")})
        trainable = setup.ImageDenoiser(
            pipe.unet, pipe.text_encoder, backend_of(pipe), pipe.text_encoder_2, bank.prompts
        )
        from_prompt = trainable(latents, timestep.expand(1), setup.text_table(bank, pipe, token_ids=True))
    assert torch.equal(ours["encoder_hidden_states"], theirs["encoder_hidden_states"])
    for key in ("text_embeds", "time_ids"):
        assert torch.equal(ours["added_cond_kwargs"][key], theirs["added_cond_kwargs"][key])
    assert theirs["added_cond_kwargs"]["time_ids"].tolist() == [[32, 32, 0, 0, 32, 32]]
    assert torch.equal(prediction, direct.sample) and torch.equal(from_prompt, prediction)


def test_sdxl_dreambooth_trains_only_the_unet_and_injects_into_the_video_model(sdxl, subject, tmp_path, monkeypatch):
    seen = spy_gradients(monkeypatch, dreambooth)
    out = train_dreambooth(dreambooth_cfg(sdxl / "t2v", tmp_path, subject))
    assert type(seen["pipe"]) is StableDiffusionXLPipeline
    assert seen["grad"] == seen["trainable"] == seen["all"] and all(n.startswith("unet.") for n in seen["all"])
    frozen = [seen["pipe"].vae, seen["pipe"].text_encoder, seen["pipe"].text_encoder_2]
    assert not any(p.requires_grad or p.grad is not None for m in frozen for p in m.parameters())
    assert sorted(p.name for p in out.iterdir()) == ["dreambooth_run.json", "unet"]
    assert json.loads((out / "dreambooth_run.json").read_text())["instance_images"] == 3

    t2v = load_t2v(sdxl / "t2v")
    m1 = load_customized(t2v, out)
    assert m1.text_encoder is None and m1.text_encoder_2 is None
    assert differs(m1.unet, backend_of(t2v).t2i_unet(t2v.unet))
    t2v.inject_customized(m1.unet)
    injected = spatial_state_dict(t2v.unet)
    assert injected.keys() == m1.unet.state_dict().keys()
    assert all(torch.equal(injected[k], v) for k, v in m1.unet.state_dict().items())


def test_sdxl_dreambooth_with_prior_preservation_trains_both_text_encoders(sdxl, subject, tmp_path, monkeypatch):
    seen = spy_gradients(monkeypatch, dreambooth)
    prior = dict(class_prompt="a photo of a dog", num_class_images=1, sample_steps=2, guidance_scale=1.0)
    out = train_dreambooth(dreambooth_cfg(sdxl / "t2i", tmp_path, subject, train_text_encoder=True, **prior))
    # SDXL conditions on the first text encoder's penultimate hidden states: its last layer and final norm train
    # but get no gradient (as in diffusers' SDXL DreamBooth script); every other weight of all three gets one.
    unused = {n for n in seen["all"] if n.startswith(("text_encoder.encoder.layers.1.", "text_encoder.final_layer_"))}
    assert unused and seen["grad"] == seen["trainable"] - unused and seen["trainable"] == seen["all"]
    assert {n.split(".")[0] for n in seen["grad"]} == {"unet", "text_encoder", "text_encoder_2"}
    assert len(list((out / "class_images").glob("*.png"))) == 1
    assert {p.name for p in out.iterdir()} >= {"unet", "text_encoder", "text_encoder_2"}

    t2v = load_t2v(sdxl / "t2v")
    m1 = load_customized(t2v, out)
    assert differs(m1.text_encoder, t2v.text_encoder) and differs(m1.text_encoder_2, t2v.text_encoder_2)
    pipe = assemble_pipeline(str(sdxl / "t2v"), customized=str(out))
    for ours, theirs in ((pipe.text_encoder, m1.text_encoder), (pipe.text_encoder_2, m1.text_encoder_2)):
        assert all(torch.equal(v, theirs.state_dict()[k]) for k, v in ours.state_dict().items())

    # Again without --train-text-encoder: the first run's text encoders must not be picked up with the new UNet.
    train_dreambooth(dreambooth_cfg(sdxl / "t2i", tmp_path, subject, steps=1, overwrite=True))
    assert not (out / "text_encoder").exists() and not (out / "text_encoder_2").exists()


def test_sdxl_style_lora_wraps_exactly_the_spatial_attention_projections_and_starts_as_the_unet(sdxl):
    unet = UNet2DConditionModel.from_pretrained(sdxl / "t2i", subfolder="unet")
    assert style_lora.spatial_attention_modules(unet) == LORA_MODULES
    gen = torch.Generator().manual_seed(0)
    x, text = torch.randn(1, 4, 16, 16, generator=gen), torch.randn(1, 16, 64, generator=gen)
    added = {"text_embeds": torch.randn(1, 32, generator=gen), "time_ids": torch.tensor([[32.0, 32, 0, 0, 32, 32]])}
    with torch.no_grad():
        before = unet(x, torch.tensor([500]), encoder_hidden_states=text, added_cond_kwargs=added).sample
        params = style_lora.add_style_lora(unet, rank=4)
        after = unet(x, torch.tensor([500]), encoder_hidden_states=text, added_cond_kwargs=added).sample
    assert len(params) == 2 * len(LORA_MODULES)
    assert torch.equal(before, after)  # A_up is zero: the UNet is unchanged


def test_sdxl_style_lora_saves_diffusers_keys_and_loads_everywhere(sdxl, style, tmp_path, monkeypatch):
    seen = spy_gradients(monkeypatch, style_lora)
    path = train_style_lora(style_cfg(sdxl / "t2v", tmp_path, style))
    assert seen["grad"] == seen["trainable"] and len(seen["grad"]) == 2 * len(LORA_MODULES)
    state = load_file(str(path))
    assert sorted(state) == sorted(f"unet.{m}.lora_{ab}.weight" for m in LORA_MODULES for ab in "AB")
    assert any(torch.count_nonzero(v) for k, v in state.items() if "lora_B" in k)  # it trained

    t2v = load_t2v(sdxl / "t2v")
    base = backend_of(t2v).t2i_unet(t2v.unet)
    m1 = load_customized(t2v, loras=[(str(path), 1.0)])
    assert m1.text_encoder is None and m1.text_encoder_2 is None
    sb, sm = base.state_dict(), m1.unet.state_dict()
    changed = sorted({k.rsplit(".", 1)[0] for k in sb if not torch.equal(sb[k], sm[k])})
    assert changed == sorted(LORA_MODULES)

    plain = StableDiffusionXLPipeline.from_pretrained(sdxl / "t2i", add_watermarker=False)
    plain.load_lora_weights(str(path))  # diffusers alone, no stillmoving code
    gen = torch.Generator().manual_seed(1)
    x, text = torch.randn(1, 4, 16, 16, generator=gen), torch.randn(1, 16, 64, generator=gen)
    added = {"text_embeds": torch.randn(1, 32, generator=gen), "time_ids": torch.tensor([[32.0, 32, 0, 0, 32, 32]])}
    with torch.no_grad():
        outputs = [u(x, torch.tensor([500]), text, added_cond_kwargs=added).sample for u in (plain.unet, m1.unet, base)]
    assert torch.allclose(outputs[0], outputs[1], atol=1e-5) and not torch.allclose(outputs[0], outputs[2])

    t2v.load_lora_weights(str(path))  # and straight into the video model's spatial layers
    wrapped = sorted(
        n.removesuffix(".lora_B.default_0.weight") for n, _ in t2v.unet.named_parameters() if "lora_B" in n
    )
    assert wrapped == sorted(LORA_MODULES)


@pytest.mark.parametrize("verb", ["dreambooth", "lora"])
def test_an_sdxl_t2i_made_by_the_cli_customizes_and_generates(
    sdxl, motion_adapter_file, subject, tmp_path, capsys, monkeypatch, verb
):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    extra = ["--rank", "2"] if verb == "lora" else []
    t2i = tmp_path / "t2i"
    args = ["--model", sdxl / "t2v", "--images", subject, "--prompt", "a sks dog", "-o", t2i, *SMALL, *extra]
    code, out, err = run(capsys, monkeypatch, "t2i", verb, *args)
    assert code == 0, err
    source = ["--customized", t2i] if verb == "dreambooth" else ["--lora", t2i / "pytorch_lora_weights.safetensors"]
    code, _, err = run(
        capsys,
        monkeypatch,
        "customize",
        "--model",
        sdxl / "t2v",
        "-o",
        tmp_path / "custom",
        "--motion-adapter",
        motion_adapter_file,
        *source,
        *STAGE2,
        "--spatial-rank",
        "2",
        "--num-validation-videos",
        "0",
        *VIDEO,
    )
    assert code == 0, err
    adapters = SpatialAdapters.load(tmp_path / "custom" / "spatial_adapters.safetensors")
    assert adapters.placements == SPATIAL_LAYERS
    video = ["--prompt", "a sks dog", "-o", tmp_path / "video.gif", "--num-frames", "4", "--steps", "2"]
    code, _, err = run(capsys, monkeypatch, "generate", "--customization", tmp_path / "custom", *video)
    assert code == 0, err
    assert (tmp_path / "video.gif").stat().st_size > 0


@pytest.mark.parametrize(
    "verb, change, message",
    [
        ("dreambooth", {"--model": "{sdxl}/t2v/unet"}, "is not a diffusers pipeline folder"),
        ("lora", {"--model": "{sdxl}/t2v/unet"}, "is not a diffusers pipeline folder"),
        ("dreambooth", {"--height": "31"}, "--height 31 is not a multiple of the VAE's factor 2"),
        ("dreambooth", {"--images": "{tmp}/none"}, "no such folder"),
        ("lora", {"--rank": "0"}, "LoRA rank must be at least 1"),
    ],
)
def test_bad_sdxl_t2i_inputs_are_refused_before_any_model_loads(
    sdxl, subject, tmp_path, capsys, monkeypatch, verb, change, message
):
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(setup, "load_base_t2i", refuse)
    values = {"--model": str(sdxl / "t2v"), "--images": str(subject), "--prompt": "a sks dog", "-o": tmp_path / "o"}
    values.update({k: v.format(sdxl=sdxl, tmp=tmp_path) for k, v in change.items()})
    code, _, err = run(capsys, monkeypatch, "t2i", verb, *[x for kv in values.items() for x in kv])
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "o").exists()


@pytest.fixture(scope="module")
def sd15_loras(tiny_dir, tmp_path_factory):
    """A 1-step style LoRA of the tiny SD1.5 T2I, and LoRA files at the released families' text widths (768 SD1.x,
    2048 SDXL: a cross-attention key projection in kohya's layout)."""
    from stillmoving.training.config import StyleLoRAConfig

    root = tmp_path_factory.mktemp("family_loras")
    (root / "images").mkdir()
    from stillmoving.data.video_io import write_image

    write_image(torch.zeros(32, 32, 3, dtype=torch.uint8).numpy(), root / "images" / "0.png")
    cfg = StyleLoRAConfig(
        model=str(tiny_dir), output=str(root / "sd15"), images=str(root / "images"), prompt="a dog", rank=2
    )
    cfg.height = cfg.width = 32
    cfg.steps = 1
    files = {"sd15": train_style_lora(cfg)}
    key = "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k"
    for name, width in (("sd1", 768), ("xl", 2048)):
        state = {f"{key}.lora_down.weight": torch.zeros(2, width), f"{key}.lora_up.weight": torch.zeros(64, 2)}
        save_file({**state, f"{key}.alpha": torch.tensor(2.0)}, str(root / f"{name}.safetensors"))
        files[name] = root / f"{name}.safetensors"
    return files


@pytest.fixture(scope="module")
def sdxl_style(sdxl, tmp_path_factory):
    """A 1-step style LoRA of the tiny SDXL T2I."""
    from stillmoving.data.video_io import write_image
    from stillmoving.training.config import StyleLoRAConfig

    root = tmp_path_factory.mktemp("sdxl_style")
    (root / "images").mkdir()
    write_image(torch.zeros(32, 32, 3, dtype=torch.uint8).numpy(), root / "images" / "0.png")
    cfg = StyleLoRAConfig(
        model=str(sdxl / "t2i"), output=str(root / "out"), images=str(root / "images"), prompt="a dog", rank=2
    )
    cfg.height = cfg.width = 32
    cfg.steps = 1
    return train_style_lora(cfg)


@pytest.mark.parametrize(
    "model, source, words",
    [
        # an SDXL DreamBooth (UNet folder) for AnimateDiff over SD1.5, and an SD1.5 one for AnimateDiff-SDXL
        ("sd15", ["--customized", "{sdxl}/m1"], ["it is SDXL (cross-attention 64)", "T2I SD1.x/SD2.x"]),
        ("sdxl", ["--customized", "{sd15_m1}"], ["AnimateDiff-SDXL", "it is SD1.x/SD2.x (cross-attention 32)"]),
        # LoRAs: trained on the tiny models, and at the released families' widths
        ("sd15", ["--lora", "{xl_style}"], ["cross-attention 64", "the model's T2I is SD1.x/SD2.x (cross-attention"]),
        ("sdxl", ["--lora", "{sd15_style}"], ["cross-attention 32", "the model's T2I is SDXL (cross-attention 64)"]),
        ("sd15", ["--lora", "{xl}"], ["it is for SDXL (cross-attention 2048)", "Give a LoRA made for SD1.x/SD2.x"]),
        ("sdxl", ["--lora", "{sd1}"], ["it is for SD1.x (cross-attention 768)", "Give a LoRA made for SDXL"]),
    ],
)
def test_a_customization_of_the_other_family_is_refused_in_one_line_naming_both(
    sdxl, tiny_dir, sd15_loras, sdxl_style, tmp_path, capsys, monkeypatch, model, source, words
):
    paths = dict(
        sdxl=sdxl,
        sd15_m1=save_customized_unet(tiny_dir, tmp_path / "sd15_m1"),
        xl_style=sdxl_style,
        sd15_style=sd15_loras["sd15"],
        xl=sd15_loras["xl"],
        sd1=sd15_loras["sd1"],
    )
    models = {"sd15": tiny_dir, "sdxl": sdxl / "t2v"}
    args = ["--model", models[model], *[s.format(**paths) for s in source], "--prompt", PROMPT]
    code, _, err = run(capsys, monkeypatch, "generate", *args, "-o", tmp_path / "v.gif", "--num-frames", "4")
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2 and len(errors) == 1 and err.splitlines()[-1] == errors[0], err
    assert all(word in errors[0] for word in words), err
