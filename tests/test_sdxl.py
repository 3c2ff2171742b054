"""AnimateDiff-SDXL through the backend layer, on a tiny seeded SDXL-shaped model (tests/sdxl_models.py): the same
guarantees as SD1.5 (identity at init, motion scale 0 is V, round trips, the exact modules each adapter touches,
injection and its refusals), the conditioning the training stages feed, and both stages and generate via the CLI."""

import copy
import re

import pytest
import torch
from conftest import PROMPT, perturb
from diffusers import AnimateDiffSDXLPipeline, UNet2DConditionModel, UNetMotionModel
from family_cli import batch_equals_customize, compare_and_eval, customization, stages_generate_export
from family_models import frames, motion_adapter_fixture, save_motion_adapter
from sdxl_models import (
    RESOLUTION,
    ldm_clip_state,
    ldm_unet_state,
    open_clip_state,
    save_sdxl_models,
    sdxl_motion_adapter,
    unet_prefixes,
)

from stillmoving.adapters.motion import MotionLoRA
from stillmoving.adapters.spatial import SpatialAdapters
from stillmoving.backends import SD15, SDXL, backend_of, family_of_folder
from stillmoving.errors import StillMovingError
from stillmoving.injection import is_motion_key, spatial_state_dict, t2i_unet_from_t2v
from stillmoving.loading import assemble_pipeline, load_customized, load_t2v, t2i_pipeline
from stillmoving.pipeline import StillMovingSDXLPipeline, attach_spatial_adapters
from stillmoving.run_folder import read_customization
from stillmoving.training.setup import VideoDenoiser
from stillmoving.training.spatial_stage import t2i_prediction


@pytest.fixture(scope="module")
def sdxl(tmp_path_factory):
    """The tiny AnimateDiff-SDXL's folders (`sdxl_models.save_sdxl_models`)."""
    return save_sdxl_models(tmp_path_factory.mktemp("sdxl"))


motion_adapter_file = motion_adapter_fixture("sdxl")  # nonzero weights, saved


def test_the_family_is_read_from_the_folder_and_the_pipeline(sdxl, tiny_dir):
    assert family_of_folder(sdxl / "t2v") is SDXL and family_of_folder(sdxl / "t2i") is SDXL
    assert family_of_folder(tiny_dir) is SD15
    pipe = load_t2v(sdxl / "t2v")
    assert type(pipe) is StillMovingSDXLPipeline and isinstance(backend_of(pipe), SDXL)
    assert isinstance(backend_of(load_t2v(tiny_dir)), SD15)
    assert isinstance(backend_of(t2i_pipeline(pipe, t2i_unet_from_t2v(pipe.unet))), SDXL)


def test_the_sd15_backend_conditions_the_unet_as_before(tiny_pipe):
    from stillmoving.data.sources import PromptBank

    bank = PromptBank()
    bank.add(PROMPT)
    backend = backend_of(tiny_pipe)
    text = backend.encode_prompts(bank.prompts)
    assert torch.equal(text, bank.encode(tiny_pipe.tokenizer, tiny_pipe.text_encoder))
    noisy, timesteps = torch.randn(1, 4, 3, 16, 16, generator=torch.Generator().manual_seed(0)), torch.tensor([10])
    with torch.no_grad():
        before = VideoDenoiser(tiny_pipe.unet)(noisy, timesteps, text)
        assert torch.equal(VideoDenoiser(tiny_pipe.unet, backend=backend)(noisy, timesteps, text), before)


def test_an_sdxl_t2i_plus_motion_modules_keeps_its_added_embedding(sdxl):
    """diffusers' from_unet2d leaves SDXL's add_embedding random; V built here carries the T2I's."""
    t2i = UNet2DConditionModel.from_pretrained(sdxl / "t2i", subfolder="unet")
    plain = UNetMotionModel.from_unet2d(t2i, sdxl_motion_adapter())
    assert not torch.equal(plain.add_embedding.linear_1.weight, t2i.add_embedding.linear_1.weight)
    pipe = load_t2v(sdxl / "t2i", motion_modules=sdxl / "motion_modules")
    assert type(pipe) is StillMovingSDXLPipeline
    spatial = spatial_state_dict(pipe.unet)
    assert spatial.keys() == t2i.state_dict().keys()
    assert all(torch.equal(spatial[k], v) for k, v in t2i.state_dict().items())
    saved = spatial_state_dict(UNetMotionModel.from_pretrained(sdxl / "t2v", subfolder="unet"))
    assert all(torch.equal(saved[k], v) for k, v in spatial.items())


def test_what_diffusers_lacks_for_sdxl_is_refused_in_one_line(sdxl):
    pipe = load_t2v(sdxl / "t2v")
    assert pipe.conditional() is pipe
    for call in (lambda: pipe.conditional(controlnet=object()), lambda: pipe.conditional(video_to_video=True)):
        with pytest.raises(StillMovingError, match="no ControlNet or video-to-video pipeline"):
            call()
    with pytest.raises(StillMovingError, match="no FreeNoise"):
        pipe.enable_free_noise(context_length=4)


def original_layout(adapter) -> dict:
    """A MotionAdapter's weights in AnimateDiff's own file layout (mm_sdxl_v10_beta.ckpt's), with its
    positional tables: diffusers' converter (`convert_animatediff_checkpoint_to_diffusers`) run backwards."""
    state = {}
    for key, value in adapter.state_dict().items():
        key = re.sub(r"(motion_modules\.\d+)\.", r"\1.temporal_transformer.", key)
        for new, old in ((".norms.0", ".norm1"), (".norms.1", ".norm2"), (".ff_norm", ".norm3")):
            key = key.replace(old, new)
        key = key.replace(".attn1", ".attention_blocks.0").replace(".attn2", ".attention_blocks.1")
        state[key] = value.contiguous()
        if key.endswith(".to_q.weight"):
            frames = adapter.config.motion_max_seq_length
            state[key.replace("to_q.weight", "pos_encoder.pe")] = torch.zeros(1, frames, value.shape[1])
    return state


def test_sdxl_motion_modules_load_from_the_original_file(sdxl, tmp_path):
    from safetensors.torch import save_file

    folder = sdxl_motion_adapter()
    save_file(original_layout(folder), str(tmp_path / "mm_sdxl.safetensors"))
    from_file = load_t2v(sdxl / "t2i", tmp_path / "mm_sdxl.safetensors", config_dir=sdxl / "motion_modules")
    from_folder = load_t2v(sdxl / "t2i", sdxl / "motion_modules")
    expected = from_folder.unet.state_dict()
    assert from_file.unet.state_dict().keys() == expected.keys()
    assert all(torch.equal(v, expected[k]) for k, v in from_file.unet.state_dict().items())


def test_fresh_adapters_give_the_plain_diffusers_frames(sdxl, motion_adapter_file):
    plain = AnimateDiffSDXLPipeline.from_pretrained(sdxl / "t2v")
    expected = frames(plain)
    pipe = load_t2v(sdxl / "t2v")
    pipe.load_motion_adapter(motion_adapter_file)  # alpha 0
    pipe.load_spatial_adapters(SpatialAdapters.for_unet(pipe.unet, rank=2))  # A_up = 0
    assert torch.equal(frames(pipe), expected)
    assert torch.equal(frames(pipe, guidance_scale=1.0), frames(plain, guidance_scale=1.0))


def test_motion_scale_0_is_the_base_model_and_the_adapter_moves_frames_otherwise(sdxl, motion_adapter_file):
    base = frames(load_t2v(sdxl / "t2v"))
    pipe = load_t2v(sdxl / "t2v")
    pipe.load_motion_adapter(motion_adapter_file)
    assert torch.equal(frames(pipe, motion_scale=0.0), base)
    assert not torch.equal(frames(pipe, motion_scale=1.0), base)
    assert not torch.equal(frames(pipe, motion_scale=-1.0), base)


def test_both_adapters_round_trip_through_their_files(sdxl, motion_adapter_file, tmp_path):
    pipe = load_t2v(sdxl / "t2v")
    spatial = SpatialAdapters.for_unet(pipe.unet, rank=2)
    perturb(spatial.parameters(), seed=2, scale=0.05)
    spatial.save(tmp_path / "spatial.safetensors")
    loaded = SpatialAdapters.load(tmp_path / "spatial.safetensors")
    assert all(torch.equal(loaded.named_tensors()[k], v) for k, v in spatial.named_tensors().items())
    pipe.load_motion_adapter(motion_adapter_file)
    saved = pipe.motion_lora.save(tmp_path / "motion")
    assert saved.is_file()
    pipe.load_spatial_adapters(spatial)
    before = frames(pipe, motion_scale=0.5)
    again = load_t2v(sdxl / "t2v")
    again.load_motion_adapter(tmp_path / "motion")
    again.load_spatial_adapters(tmp_path / "spatial.safetensors")
    assert torch.equal(frames(again, motion_scale=0.5), before)
    assert not torch.equal(before, frames(load_t2v(sdxl / "t2v")))


SPATIAL_LAYERS = {  # the tiny SDXL: no spatial transformer at the first level, two transformer layers at the second
    "down_blocks.0.resnets.0": 32,
    "down_blocks.1.attentions.0": 64,
    "down_blocks.1.resnets.0": 64,
    "up_blocks.0.attentions.0": 64,
    "up_blocks.0.attentions.1": 64,
    "up_blocks.0.resnets.0": 64,
    "up_blocks.0.resnets.1": 64,
    "up_blocks.1.resnets.0": 32,
    "up_blocks.1.resnets.1": 32,
    "mid_block.attentions.0": 64,
    "mid_block.resnets.0": 64,
    "mid_block.resnets.1": 64,
}


def test_each_adapter_touches_exactly_its_modules(sdxl):
    pipe = load_t2v(sdxl / "t2v")
    backend = backend_of(pipe)
    assert backend.spatial_layers(pipe.unet) == SPATIAL_LAYERS
    assert SpatialAdapters.for_unet(pipe.unet).placements == SPATIAL_LAYERS
    motion_modules = [f"down_blocks.{i}.motion_modules.0" for i in range(2)]
    motion_modules += [f"up_blocks.{i}.motion_modules.{j}" for i in range(2) for j in range(2)]  # no motion mid block
    expected = [
        f"{m}.transformer_blocks.0.attn{a}.to_{p}" for m in motion_modules for a in (1, 2) for p in ("q", "k", "v")
    ]
    assert backend.temporal_attentions(pipe.unet) == expected
    motion = MotionLoRA.inject(pipe.unet, rank=2)
    wrapped = sorted(n.removesuffix(".lora_A.weight") for n in motion.state_dict() if n.endswith(".lora_A.weight"))
    assert wrapped == sorted(expected)


def test_an_sdxl_unet_is_injected_and_only_the_motion_modules_stay(sdxl):
    pipe = load_t2v(sdxl / "t2v")
    motion_before = {k: v.clone() for k, v in pipe.unet.state_dict().items() if is_motion_key(k)}
    m1 = load_customized(pipe, sdxl / "m1")
    pipe.inject_customized(m1.unet, m1.text_encoder, m1.text_encoder_2)
    injected = spatial_state_dict(pipe.unet)
    assert all(torch.equal(injected[k], v) for k, v in m1.unet.state_dict().items())
    assert all(torch.equal(pipe.unet.state_dict()[k], v) for k, v in motion_before.items())
    assert "add_embedding.linear_1.weight" in injected


def test_an_sdxl_pipeline_folder_brings_both_text_encoders(sdxl, tmp_path):
    t2i = load_t2v(sdxl / "t2v")
    custom = t2i_pipeline(t2i, t2i_unet_from_t2v(t2i.unet))
    perturb(custom.text_encoder_2.parameters(), seed=3, scale=0.01, add=True)
    custom.save_pretrained(tmp_path / "sdxl_dreambooth")
    m1 = load_customized(t2i, tmp_path / "sdxl_dreambooth")
    assert m1.text_encoder is not None and m1.text_encoder_2 is not None
    pipe = assemble_pipeline(str(sdxl / "t2v"), customized=str(tmp_path / "sdxl_dreambooth"))
    weight = "text_model.encoder.layers.0.mlp.fc1.weight"
    assert torch.equal(pipe.text_encoder_2.state_dict()[weight], custom.text_encoder_2.state_dict()[weight])


def test_a_single_file_sdxl_dreambooth_is_read_with_its_text_encoders(sdxl, tmp_path):
    """A1111/kohya's layout: the UNet under model.diffusion_model.*, CLIP ViT-L under conditioner.embedders.0, OpenCLIP
    bigG under conditioner.embedders.1 (q/k/v fused); read by diffusers' converters into V's T2I shapes."""
    from safetensors.torch import save_file

    pipe = load_t2v(sdxl / "t2v")
    m1 = UNet2DConditionModel.from_pretrained(sdxl / "m1")
    text_2 = copy.deepcopy(pipe.text_encoder_2)
    perturb(text_2.parameters(), seed=4, scale=0.01, add=True)
    state = {**ldm_unet_state(m1), **ldm_clip_state(pipe.text_encoder), **open_clip_state(text_2)}
    save_file(state, str(tmp_path / "sdxl_dreambooth.safetensors"))
    loaded = load_customized(pipe, tmp_path / "sdxl_dreambooth.safetensors")
    assert all(torch.equal(v, m1.state_dict()[k]) for k, v in loaded.unet.state_dict().items())
    assert loaded.text_encoder is None  # the same as V's: not injected
    assert all(torch.equal(v, text_2.state_dict()[k]) for k, v in loaded.text_encoder_2.state_dict().items())


def test_a_checkpoint_text_encoder_in_the_real_layout_loads(tiny_pipe):
    """Real SD1.x and SDXL files name CLIP's weights `...transformer.text_model.encoder...`; transformers 5's
    CLIPTextModel has no `text_model.` in its state dict. Both namings load (SD1.5's loader too)."""
    from stillmoving.formats.single_file import text_encoder_from_state

    own = tiny_pipe.text_encoder
    for prefix in ("cond_stage_model.transformer.", "conditioner.embedders.0.transformer."):
        for state in (ldm_clip_state(own, prefix), {prefix + k: v for k, v in own.state_dict().items()}):
            text = text_encoder_from_state(state, own, "checkpoint.safetensors")
            assert all(torch.equal(v, own.state_dict()[k]) for k, v in text.state_dict().items())


def test_an_sd15_unet_is_refused_by_name_and_shape(sdxl, tiny_dir, tmp_path):
    from safetensors.torch import save_file

    pipe = load_t2v(sdxl / "t2v")
    sd15 = t2i_unet_from_t2v(UNetMotionModel.from_pretrained(tiny_dir, subfolder="unet"))
    with pytest.raises(StillMovingError) as error:
        pipe.inject_customized(sd15)
    message = str(error.value)
    assert "\n" not in message and "AnimateDiff-SDXL" in message
    assert "mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight has shape (64, 32)" in message
    assert "expects (64, 64)" in message
    file = tmp_path / "sd15_dreambooth.safetensors"
    save_file({**ldm_unet_state(sd15), **ldm_clip_state(pipe.text_encoder, "cond_stage_model.transformer.")}, str(file))
    with pytest.raises(StillMovingError, match="without SDXL's model.diffusion_model.label_emb.0.0.weight") as error:
        load_customized(pipe, file)
    assert "\n" not in str(error.value)


@pytest.fixture(scope="module")
def sdxl_lora(sdxl, tmp_path_factory):
    """A LoRA on the SDXL T2I's UNet attention and both text encoders (nonzero), in diffusers' and kohya's layouts."""
    from diffusers import StableDiffusionXLPipeline
    from diffusers.utils import convert_state_dict_to_kohya
    from peft import LoraConfig, inject_adapter_in_model
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file

    t2i = StableDiffusionXLPipeline.from_pretrained(sdxl / "t2i", add_watermarker=False)
    layers = {}
    for name, model, targets in (
        ("unet", t2i.unet, ["to_q", "to_k", "to_v", "to_out.0"]),
        ("text_encoder", t2i.text_encoder, ["q_proj", "k_proj", "v_proj", "out_proj"]),
        ("text_encoder_2", t2i.text_encoder_2, ["q_proj", "k_proj", "v_proj", "out_proj"]),
    ):
        inject_adapter_in_model(LoraConfig(r=2, lora_alpha=2, target_modules=targets), model)  # peft's own API
        state = get_peft_model_state_dict(model)
        perturb([v for k, v in state.items()], seed=len(name), scale=0.2)
        layers[name] = {k: v.detach().clone() for k, v in state.items()}
    root = tmp_path_factory.mktemp("sdxl_lora")
    StableDiffusionXLPipeline.save_lora_weights(
        root / "diffusers",
        unet_lora_layers=layers["unet"],
        text_encoder_lora_layers=layers["text_encoder"],
        text_encoder_2_lora_layers=layers["text_encoder_2"],
    )
    # kohya names CLIP's modules from the top model (lora_te1_text_model_encoder_...); transformers 5 drops text_model.
    prefixed = {
        f"{name}.{'text_model.' * k.startswith('encoder.')}{k}": v
        for name, state in layers.items()
        for k, v in state.items()
    }
    kohya = convert_state_dict_to_kohya(prefixed)
    save_file(kohya, str(root / "kohya.safetensors"))
    # kohya's sd-scripts name SDXL's UNet blocks as the original model does (input_blocks_4_1_...)
    blocks = [(ours.replace(".", "_"), ldm.replace(".", "_")) for ldm, ours in unet_prefixes(t2i.unet.config)]
    sgm = {}
    for key, value in kohya.items():
        for ours, ldm in blocks:
            if key.startswith("lora_unet_" + ours):
                key = "lora_unet_" + ldm + key[len("lora_unet_" + ours) :]
                break
        sgm[key] = value
    assert any(k.startswith("lora_unet_input_blocks_") for k in sgm)
    save_file(sgm, str(root / "kohya_sgm.safetensors"))
    return root


@pytest.mark.parametrize("layout", ["diffusers", "kohya.safetensors", "kohya_sgm.safetensors"])
def test_an_sdxl_lora_fuses_as_diffusers_fuses_it(sdxl, sdxl_lora, layout):
    from diffusers import StableDiffusionXLPipeline

    pipe = load_t2v(sdxl / "t2v")
    m1 = load_customized(pipe, loras=[(str(sdxl_lora / layout), 0.7)])
    reference = StableDiffusionXLPipeline.from_pretrained(sdxl / "t2i", add_watermarker=False)
    reference.load_lora_weights(str(sdxl_lora / "diffusers"), adapter_name="style")
    reference.fuse_lora(lora_scale=0.7, adapter_names=["style"])
    reference.unload_lora_weights()
    for ours, theirs in (
        (m1.unet, reference.unet),
        (m1.text_encoder, reference.text_encoder),
        (m1.text_encoder_2, reference.text_encoder_2),
    ):
        expected = theirs.state_dict()
        assert all(torch.allclose(v, expected[k], atol=1e-6) for k, v in ours.state_dict().items())
    plain = load_t2v(sdxl / "t2v")  # V's own text encoders stay as they were (prior videos use them)
    assert all(
        torch.equal(v, plain.text_encoder_2.state_dict()[k]) for k, v in pipe.text_encoder_2.state_dict().items()
    )
    assert not torch.equal(
        m1.unet.state_dict()["mid_block.attentions.0.transformer_blocks.0.attn1.to_q.weight"],
        plain.unet.state_dict()["mid_block.attentions.0.transformer_blocks.0.attn1.to_q.weight"],
    )


def test_training_conditions_the_unet_as_the_pipeline_does(sdxl):
    """encode_prompts + unet_inputs (what VideoDenoiser feeds) equal AnimateDiffSDXLPipeline's own UNet inputs."""
    pipe = load_t2v(sdxl / "t2v")
    seen = {}

    def spy(module, args, kwargs):
        seen.setdefault("args", (args, kwargs))

    handle = pipe.unet.register_forward_pre_hook(spy, with_kwargs=True)
    frames(pipe, guidance_scale=1.0)
    handle.remove()
    (latents, timestep), kwargs = seen["args"]
    backend = backend_of(pipe)
    ours = backend.unet_inputs(backend.encode_prompts([PROMPT]), latents)
    assert torch.equal(ours["encoder_hidden_states"], kwargs["encoder_hidden_states"])
    for key in ("text_embeds", "time_ids"):
        assert torch.equal(ours["added_cond_kwargs"][key], kwargs["added_cond_kwargs"][key].to(latents.dtype))
    denoiser = VideoDenoiser(pipe.unet, backend=backend)
    with torch.no_grad():
        prediction = denoiser(latents, timestep.expand(1), backend.encode_prompts([PROMPT]))
        direct = pipe.unet(latents, timestep, **{k: kwargs[k] for k in ("encoder_hidden_states", "added_cond_kwargs")})
    assert torch.equal(prediction, direct.sample)


def test_the_frozen_target_conditions_each_frame_as_the_image_pipeline_does(sdxl):
    """`customize --frozen-target t2i`'s teacher (`t2i_prediction`) gives each frame the conditioning
    StableDiffusionXLPipeline gives an image: its hidden states, pooled text and time ids."""
    pipe = load_t2v(sdxl / "t2v")
    backend = backend_of(pipe)
    m1 = UNet2DConditionModel.from_pretrained(sdxl / "m1").eval()
    seen = {}

    def spy(module, args, kwargs):
        seen.setdefault("args", (args, kwargs))

    handle = m1.register_forward_pre_hook(spy, with_kwargs=True)
    image = backend.image_pipeline(m1)
    image.set_progress_bar_config(disable=True)
    image(PROMPT, height=RESOLUTION, width=RESOLUTION, num_inference_steps=1, guidance_scale=1.0, output_type="latent")
    handle.remove()
    (latents, timestep), kwargs = seen["args"]
    text = backend.encode_prompts([PROMPT])
    with torch.no_grad():
        direct = m1(latents, timestep, **{k: kwargs[k] for k in ("encoder_hidden_states", "added_cond_kwargs")}).sample
        one = t2i_prediction(backend, m1, latents[:, :, None], timestep.expand(1), text)
        frames = torch.cat([latents[:, :, None], torch.randn_like(latents)[:, :, None], latents[:, :, None]], dim=2)
        three = t2i_prediction(backend, m1, frames, timestep.expand(1), text)
    assert torch.equal(one[:, :, 0], direct)
    assert torch.allclose(three[:, :, 0], direct, atol=1e-5) and torch.allclose(three[:, :, 2], direct, atol=1e-5)
    assert not torch.allclose(three[:, :, 1], direct, atol=1e-3)  # each frame on its own


def assemble_from_folder(folder):
    sources = read_customization(folder)
    return assemble_pipeline(
        sources["model"],
        customized=sources.get("customized"),
        spatial_adapters=sources["spatial_adapters"],
        motion_adapter=sources.get("motion_adapter"),
    )


def test_both_stages_and_generate_through_the_cli(sdxl, tmp_path, capsys, monkeypatch):
    stages_generate_export(sdxl, tmp_path, capsys, monkeypatch, SPATIAL_LAYERS, "AnimateDiffSDXLPipeline")
    plain = AnimateDiffSDXLPipeline.from_pretrained(tmp_path / "exported", motion_adapter=None)  # diffusers + hook
    attach_spatial_adapters(plain, tmp_path / "exported" / "spatial_adapters.safetensors")
    ours = assemble_from_folder(tmp_path / "exported")
    assert torch.equal(frames(plain), frames(ours))


def test_the_real_sdxl_shapes_map_both_ways_and_give_the_adapters_their_layers():
    """stabilityai/stable-diffusion-xl-base-1.0's UNet + mm_sdxl_v10_beta's motion modules on the meta device: V's
    spatial part has exactly the SDXL UNet's keys and shapes (so its DreamBooths inject), the T2I rebuilt from V too,
    and the adapters find 28 spatial layers and 15 motion modules x 6 projections."""
    from diffusers import MotionAdapter

    from stillmoving.bench.models import SDXL_MOTION, SDXL_UNET
    from stillmoving.injection import t2i_config

    with torch.device("meta"):
        t2i = UNet2DConditionModel(**SDXL_UNET)
        video = UNetMotionModel.from_unet2d(t2i, MotionAdapter(**SDXL_MOTION), load_weights=False)
        rebuilt = UNet2DConditionModel(**t2i_config(video))
    shapes = {k: tuple(v.shape) for k, v in t2i.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in spatial_state_dict(video).items()} == shapes
    assert {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()} == shapes
    assert "add_embedding.linear_1.weight" in shapes
    layers = SpatialAdapters.for_unet(video).placements
    assert len(layers) == 28 and "down_blocks.0.attentions.0" not in layers and layers["mid_block.attentions.0"] == 1280
    assert len(MotionLoRA.inject(video, rank=2).layers) == 90


@pytest.fixture(scope="module")
def sdxl_customization(sdxl, motion_adapter_file, tmp_path_factory):
    """A 1-step `customize` of `m1` through the CLI (family_cli.CUSTOMIZE)."""
    return customization(sdxl, motion_adapter_file, tmp_path_factory.mktemp("sdxl_customization") / "custom")


def test_compare_and_eval_through_the_cli(sdxl, sdxl_customization, tmp_path, capsys, monkeypatch):
    from diffusers import StableDiffusionXLPipeline

    def image():
        m1 = UNet2DConditionModel.from_pretrained(sdxl / "m1")
        return StableDiffusionXLPipeline.from_pretrained(sdxl / "t2i", unet=m1, add_watermarker=False)

    compare_and_eval(
        sdxl,
        sdxl_customization,
        tmp_path,
        capsys,
        monkeypatch,
        lambda: AnimateDiffSDXLPipeline.from_pretrained(sdxl / "t2v"),
        image,
    )


def test_customize_batch_after_a_zeroscope_run_equals_customize(
    sdxl, motion_adapter_file, sdxl_customization, tmp_path, capsys, monkeypatch
):
    from zeroscope_models import save_zeroscope_models

    other = save_zeroscope_models(tmp_path / "zeroscope")
    other_adapter = save_motion_adapter(other / "t2v", tmp_path / "zeroscope_motion")
    mine = (sdxl, motion_adapter_file)
    batch_equals_customize((other, other_adapter), mine, sdxl_customization, tmp_path, capsys, monkeypatch)
