"""ModelScope/ZeroScope (`TextToVideoSDPipeline`, `UNet3DConditionModel`) through the backend layer, on a tiny seeded
model (tests/zeroscope_models.py): identity at init against plain diffusers, motion scale 0 is V, round trips, the
exact modules each adapter touches, the SD2.x-shaped T2I's keys mapped onto V's spatial keys (and refused where they
do not map), the conditioning the training stages feed, both stages and generate via the CLI, and `info`."""

import pytest
import torch
from conftest import PROMPT, perturb
from diffusers import TextToVideoSDPipeline, UNet2DConditionModel, UNet3DConditionModel
from family_cli import batch_equals_customize, compare_and_eval, customization, stages_generate_export
from family_models import frames, motion_adapter_fixture, save_motion_adapter
from safetensors.torch import load_file
from test_cli import run
from zeroscope_models import save_zeroscope_models, sd2_unet

from stillmoving.adapters.motion import MotionLoRA
from stillmoving.adapters.spatial import SpatialAdapters
from stillmoving.backends import SD15, ZeroScope, backend_of, family_of_folder
from stillmoving.describe import describe_file
from stillmoving.errors import StillMovingError
from stillmoving.injection import is_motion_key, spatial_state_dict
from stillmoving.loading import assemble_interpolated, assemble_pipeline, load_customized, load_t2v
from stillmoving.pipeline import StillMovingTextToVideoPipeline, attach_spatial_adapters
from stillmoving.run_folder import read_customization
from stillmoving.training.setup import VideoDenoiser


@pytest.fixture(scope="module")
def zeroscope(tmp_path_factory):
    """The tiny ZeroScope's folders (`zeroscope_models.save_zeroscope_models`)."""
    return save_zeroscope_models(tmp_path_factory.mktemp("zeroscope"))


motion_adapter_file = motion_adapter_fixture("zeroscope")  # nonzero weights, saved


def test_the_family_is_read_from_the_folder_and_the_pipeline(zeroscope, tiny_dir):
    assert family_of_folder(zeroscope / "t2v") is ZeroScope and family_of_folder(tiny_dir) is SD15
    pipe = load_t2v(zeroscope / "t2v")
    assert type(pipe) is StillMovingTextToVideoPipeline and isinstance(backend_of(pipe), ZeroScope)
    assert isinstance(pipe, TextToVideoSDPipeline) and isinstance(backend_of(load_t2v(tiny_dir)), SD15)
    with pytest.raises(StillMovingError, match="its temporal layers are its own; drop --motion-modules"):
        load_t2v(zeroscope / "t2v", motion_modules=zeroscope / "m1")


def test_fresh_adapters_give_the_plain_diffusers_frames(zeroscope, motion_adapter_file):
    plain = TextToVideoSDPipeline.from_pretrained(zeroscope / "t2v")
    pipe = load_t2v(zeroscope / "t2v")
    pipe.load_motion_adapter(motion_adapter_file)  # alpha 0
    pipe.load_spatial_adapters(SpatialAdapters.for_unet(pipe.unet, rank=2))  # A_up = 0
    assert torch.equal(frames(pipe), frames(plain))
    assert torch.equal(frames(pipe, guidance_scale=1.0), frames(plain, guidance_scale=1.0))
    fresh = load_t2v(zeroscope / "t2v")
    MotionLoRA.inject(fresh.unet, rank=2).set_scale(1.0)  # A_up = 0: the model unchanged at any alpha
    assert torch.equal(frames(fresh), frames(plain))


def test_motion_scale_0_is_the_base_model_and_the_adapter_moves_frames_otherwise(zeroscope, motion_adapter_file):
    base = frames(load_t2v(zeroscope / "t2v"))
    pipe = load_t2v(zeroscope / "t2v")
    pipe.load_motion_adapter(motion_adapter_file)
    assert torch.equal(frames(pipe, motion_scale=0.0), base)
    assert not torch.equal(frames(pipe, motion_scale=1.0), base)
    assert not torch.equal(frames(pipe, motion_scale=-1.0), base)
    with pytest.raises(StillMovingError, match="needs a motion adapter"):
        frames(load_t2v(zeroscope / "t2v"), motion_scale=0.5)


def test_both_adapters_round_trip_through_their_files(zeroscope, motion_adapter_file, tmp_path):
    pipe = load_t2v(zeroscope / "t2v")
    spatial = SpatialAdapters.for_unet(pipe.unet, rank=2)
    perturb(spatial.parameters(), seed=2, scale=0.05)
    spatial.save(tmp_path / "spatial.safetensors")
    loaded = SpatialAdapters.load(tmp_path / "spatial.safetensors")
    assert all(torch.equal(loaded.named_tensors()[k], v) for k, v in spatial.named_tensors().items())
    pipe.load_motion_adapter(motion_adapter_file)
    saved = pipe.motion_lora.save(tmp_path / "motion")
    assert load_file(saved).keys() == load_file(motion_adapter_file).keys()
    assert all(torch.equal(v, load_file(motion_adapter_file)[k]) for k, v in load_file(saved).items())
    pipe.load_spatial_adapters(spatial)
    before = frames(pipe, motion_scale=0.5)
    again = load_t2v(zeroscope / "t2v")
    again.load_motion_adapter(tmp_path / "motion")
    again.load_spatial_adapters(tmp_path / "spatial.safetensors")
    assert torch.equal(frames(again, motion_scale=0.5), before)
    assert not torch.equal(before, frames(load_t2v(zeroscope / "t2v")))


SPATIAL_LAYERS = {  # every spatial ResNet block and transformer; no temp_convs, temp_attentions or transformer_in
    "down_blocks.0.resnets.0": 32,
    "down_blocks.0.attentions.0": 32,
    "down_blocks.1.resnets.0": 64,
    "up_blocks.0.resnets.0": 64,
    "up_blocks.0.resnets.1": 64,
    "up_blocks.1.resnets.0": 32,
    "up_blocks.1.resnets.1": 32,
    "up_blocks.1.attentions.0": 32,
    "up_blocks.1.attentions.1": 32,
    "mid_block.resnets.0": 64,
    "mid_block.resnets.1": 64,
    "mid_block.attentions.0": 64,
}
TEMPORAL_ATTENTIONS = [  # in module order: the input's temporal transformer, then one beside each spatial transformer
    "transformer_in",
    "down_blocks.0.temp_attentions.0",
    "up_blocks.1.temp_attentions.0",
    "up_blocks.1.temp_attentions.1",
    "mid_block.temp_attentions.0",
]


def test_each_adapter_touches_exactly_its_modules(zeroscope):
    pipe = load_t2v(zeroscope / "t2v")
    backend = backend_of(pipe)
    assert backend.spatial_layers(pipe.unet) == SPATIAL_LAYERS
    assert SpatialAdapters.for_unet(pipe.unet).placements == SPATIAL_LAYERS
    expected = [
        f"{m}.transformer_blocks.0.attn{a}.to_{p}" for m in TEMPORAL_ATTENTIONS for a in (1, 2) for p in ("q", "k", "v")
    ]
    assert backend.temporal_attentions(pipe.unet) == expected
    motion = MotionLoRA.inject(pipe.unet, rank=2)
    wrapped = sorted(n.removesuffix(".lora_A.weight") for n in motion.state_dict() if n.endswith(".lora_A.weight"))
    assert wrapped == sorted(expected)
    # the spatial adapters' hooks sit on the spatial layers' outputs, before the temporal layer after each
    spatial = SpatialAdapters.for_unet(pipe.unet).attach(pipe.unet)
    hooked = sorted(n for n, m in pipe.unet.named_modules() if m._forward_hooks)
    assert hooked == sorted(SPATIAL_LAYERS) and len(spatial.layers) == 12


def test_the_peft_methods_diffusers_lacks_are_given_without_changing_what_is_saved(zeroscope, motion_adapter_file):
    """diffusers' UNet3DConditionModel has no PeftAdapterMixin: its own pipeline's load_lora_weights fails. Loading
    the adapter gives the UNet those methods; it still saves as a plain UNet3DConditionModel."""
    plain = TextToVideoSDPipeline.from_pretrained(zeroscope / "t2v")
    with pytest.raises(AttributeError, match="load_lora_adapter"):
        plain.load_lora_weights(str(motion_adapter_file.parent))
    pipe = load_t2v(zeroscope / "t2v")
    pipe.load_motion_adapter(motion_adapter_file)
    assert type(pipe.unet).__name__ == "UNet3DConditionModel" and isinstance(pipe.unet, UNet3DConditionModel)
    pipe.load_motion_adapter(motion_adapter_file)  # again: the first one is deleted (delete_adapters)
    assert len(pipe.motion_lora.layers) == 30


def test_an_sd2_unet_maps_onto_the_spatial_keys_and_only_the_temporal_layers_stay(zeroscope):
    pipe = load_t2v(zeroscope / "t2v")
    v = {k: t.clone() for k, t in pipe.unet.state_dict().items()}
    spatial = spatial_state_dict(pipe.unet)
    m1 = UNet2DConditionModel.from_pretrained(zeroscope / "m1")
    # V's spatial part is exactly an SD2.x-shaped UNet2DConditionModel's keys and shapes; the rest is temporal
    assert {k: t.shape for k, t in spatial.items()} == {k: t.shape for k, t in m1.state_dict().items()}
    temporal = {k: t.clone() for k, t in v.items() if k not in spatial}
    assert temporal and all(k.startswith("transformer_in.") or ".temp_" in k for k in temporal)
    assert all(is_motion_key(k) for k in temporal)
    pipe.inject_customized(m1)
    after = pipe.unet.state_dict()
    assert all(torch.equal(after[k], t) for k, t in m1.state_dict().items())
    assert all(torch.equal(after[k], t) for k, t in temporal.items())
    # V's own T2I rebuilt from its spatial weights, and back: V unchanged
    again = load_t2v(zeroscope / "t2v")
    t2i = backend_of(again).t2i_unet(again.unet)
    assert type(t2i) is UNet2DConditionModel and t2i.config.attention_head_dim == [4, 8]
    assert all(torch.equal(t2i.state_dict()[k], t) for k, t in spatial_state_dict(again.unet).items())
    again.inject_customized(t2i)
    assert all(torch.equal(again.unet.state_dict()[k], t) for k, t in v.items())


def test_one_by_one_convolution_projections_map_onto_the_linear_ones(zeroscope):
    """A UNet whose transformers project with 1x1 convolutions (use_linear_projection=False) is the same linear map:
    injected, it gives exactly the weights of its linear twin."""
    linear = UNet2DConditionModel.from_pretrained(zeroscope / "m1")
    conv = sd2_unet(use_linear_projection=False)
    state = {k: (t.view(conv.state_dict()[k].shape) if "proj_" in k else t) for k, t in linear.state_dict().items()}
    conv.load_state_dict(state)
    assert conv.state_dict()["mid_block.attentions.0.proj_in.weight"].shape == (64, 64, 1, 1)
    a, b = load_t2v(zeroscope / "t2v"), load_t2v(zeroscope / "t2v")
    a.inject_customized(linear)
    b.inject_customized(conv)
    assert all(torch.equal(t, b.unet.state_dict()[k]) for k, t in a.unet.state_dict().items())


def test_what_does_not_map_is_refused_naming_the_key_and_both_shapes(zeroscope):
    pipe = load_t2v(zeroscope / "t2v")
    cases = [  # (customized UNet, words the one-line message must hold)
        (
            sd2_unet(cross_attention_dim=16),  # another text width: another Stable Diffusion generation
            "ModelScope/ZeroScope video model: it is unknown (cross-attention 16), the video model unknown "
            "(cross-attention 32); down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight has shape "
            "(32, 16), the video model expects (32, 32)",
        ),
        (
            sd2_unet(block_out_channels=(32, 48), attention_head_dim=(4, 6)),
            "down_blocks.1.resnets.0.conv1.weight has shape (48, 32, 3, 3), the video model expects (64, 32, 3, 3)",
        ),
        (sd2_unet(class_embed_type="timestep"), "it has key 'class_embedding.linear_1.weight' (128, 32)"),
        (
            sd2_unet(down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D")),
            "it lacks 'down_blocks.0.attentions.0.norm.weight' (32,)",
        ),
    ]
    before = {k: t.clone() for k, t in pipe.unet.state_dict().items()}
    for unet, words in cases:
        with pytest.raises(StillMovingError) as error:
            pipe.inject_customized(unet)
        assert "\n" not in str(error.value) and words in str(error.value), str(error.value)
    assert all(torch.equal(pipe.unet.state_dict()[k], t) for k, t in before.items())  # nothing was written


def test_interpolation_and_loras_use_the_mapping(zeroscope):
    v = spatial_state_dict(load_t2v(zeroscope / "t2v").unet)
    m1 = UNet2DConditionModel.from_pretrained(zeroscope / "m1").state_dict()
    half = spatial_state_dict(assemble_interpolated(str(zeroscope / "t2v"), 0.5, customized=str(zeroscope / "m1")).unet)
    assert all(torch.equal(half[k], torch.lerp(t, m1[k], 0.5)) for k, t in v.items())
    assert all(
        torch.equal(t, v[k])
        for k, t in spatial_state_dict(
            assemble_interpolated(str(zeroscope / "t2v"), 0.0, customized=str(zeroscope / "m1")).unet
        ).items()
    )
    own = load_customized(load_t2v(zeroscope / "t2v"), zeroscope / "t2v")  # V's folder as M1: its own T2I
    assert all(torch.equal(own.unet.state_dict()[k], t) for k, t in v.items())


def test_delta_injection_adds_the_customization_to_v_own_spatial_weights(zeroscope, tmp_path):
    """`generate --base-t2i` on the jointly trained kind: V + (M1 - M) computed in the SD2.x T2I's layout and mapped
    onto V's spatial keys (the 1x1 convolutions included), the same as injecting that sum; with V's own T2I as M it is
    naive injection exactly."""
    model, m1 = str(zeroscope / "t2v"), str(zeroscope / "m1")
    other = sd2_unet()
    perturb(other.parameters(), seed=9, scale=0.05, add=True)
    other.save_pretrained(tmp_path / "m")
    naive = spatial_state_dict(assemble_pipeline(model, customized=m1).unet)
    own = spatial_state_dict(assemble_pipeline(model, customized=m1, base_t2i=model).unet)
    assert all(torch.equal(own[k], t) for k, t in naive.items())
    delta = spatial_state_dict(assemble_pipeline(model, customized=m1, base_t2i=str(tmp_path / "m")).unet)
    pipe = load_t2v(zeroscope / "t2v")
    v2d = backend_of(pipe).t2i_unet(pipe.unet).state_dict()
    m1_state, m_state = UNet2DConditionModel.from_pretrained(m1).state_dict(), other.state_dict()
    pipe.inject_customized({k: t + (v2d[k] - m_state[k]) for k, t in m1_state.items()})
    expected = spatial_state_dict(pipe.unet)
    assert all(torch.equal(delta[k], t) for k, t in expected.items())
    assert not all(torch.equal(delta[k], t) for k, t in naive.items())


def test_a_lora_of_the_t2i_fuses_into_v_own_t2i_as_diffusers_fuses_it(zeroscope, tmp_path):
    """`--lora` without `--customized`: V's own T2I (its spatial layers as an SD2.x UNet) with the LoRA fused."""
    from diffusers import StableDiffusionPipeline
    from peft import LoraConfig, inject_adapter_in_model
    from peft.utils import get_peft_model_state_dict

    pipe = load_t2v(zeroscope / "t2v")
    unet = backend_of(pipe).t2i_unet(pipe.unet)
    inject_adapter_in_model(LoraConfig(r=2, lora_alpha=2, target_modules=["to_q", "to_k", "to_v", "to_out.0"]), unet)
    layers = {k: v.detach().clone() for k, v in get_peft_model_state_dict(unet).items()}
    perturb(layers.values(), seed=7, scale=0.2)
    StableDiffusionPipeline.save_lora_weights(tmp_path / "lora", unet_lora_layers=layers)
    m1 = load_customized(pipe, loras=[(str(tmp_path / "lora"), 0.7)])
    reference = backend_of(pipe).image_pipeline(backend_of(pipe).t2i_unet(load_t2v(zeroscope / "t2v").unet))
    reference.load_lora_weights(str(tmp_path / "lora"), adapter_name="style")
    reference.fuse_lora(lora_scale=0.7, adapter_names=["style"])
    reference.unload_lora_weights()
    expected = reference.unet.state_dict()
    assert all(torch.allclose(v, expected[k], atol=1e-6) for k, v in m1.unet.state_dict().items())
    key = "mid_block.attentions.0.transformer_blocks.0.attn1.to_q.weight"
    assert not torch.equal(m1.unet.state_dict()[key], spatial_state_dict(pipe.unet)[key])
    pipe.inject_customized(m1.unet)


def test_training_conditions_the_unet_as_the_pipeline_does(zeroscope):
    """encode_prompts + unet_inputs (what VideoDenoiser feeds) equal TextToVideoSDPipeline's own UNet inputs."""
    pipe = load_t2v(zeroscope / "t2v")
    seen = {}

    def spy(module, args, kwargs):
        seen.setdefault("args", (args, kwargs))

    handle = pipe.unet.register_forward_pre_hook(spy, with_kwargs=True)
    frames(pipe, guidance_scale=1.0)
    handle.remove()
    (latents, timestep), kwargs = seen["args"]
    backend = backend_of(pipe)
    text = backend.encode_prompts([PROMPT])
    assert torch.equal(backend.unet_inputs(text, latents)["encoder_hidden_states"], kwargs["encoder_hidden_states"])
    with torch.no_grad():
        prediction = VideoDenoiser(pipe.unet, backend=backend)(latents, timestep.expand(1), text)
        direct = pipe.unet(latents, timestep, encoder_hidden_states=kwargs["encoder_hidden_states"])
    assert torch.equal(prediction, direct.sample)


def test_what_diffusers_lacks_for_zeroscope_is_refused_in_one_line(zeroscope, tmp_path, capsys, monkeypatch):
    pipe = load_t2v(zeroscope / "t2v")
    assert pipe.conditional() is pipe
    for call in (lambda: pipe.conditional(controlnet=object()), lambda: pipe.conditional(video_to_video=True)):
        with pytest.raises(StillMovingError, match="no ControlNet pipeline"):
            call()
    with pytest.raises(StillMovingError, match="no FreeNoise"):
        pipe.enable_free_noise(context_length=4)
    with pytest.raises(StillMovingError, match="no FreeInit"):
        pipe.enable_free_init(num_iters=2)
    from stillmoving.training.config import MotionAdapterConfig
    from stillmoving.training.setup import frozen_video_model, make_accelerator

    cfg = MotionAdapterConfig(model=str(zeroscope / "t2v"), output=str(tmp_path / "m"), gradient_checkpointing=True)
    with pytest.raises(StillMovingError, match="--gradient-checkpointing: UNet3DConditionModel does not support"):
        frozen_video_model(make_accelerator(cfg), cfg)


def test_info_names_the_family_of_the_folder_and_of_the_motion_adapter(
    zeroscope, motion_adapter_file, capsys, monkeypatch
):
    summary = describe_file(zeroscope / "t2v")
    assert summary["family"] == "ModelScope/ZeroScope" and "TextToVideoSDPipeline" in summary["kind"]
    code, out, _ = run(capsys, monkeypatch, "info", zeroscope / "t2v")
    assert code == 0 and "ModelScope/ZeroScope" in out and "UNet3DConditionModel" in out
    adapter = describe_file(motion_adapter_file)
    assert adapter["kind"].startswith("motion adapter") and adapter["layers"] == 30
    assert adapter["family"] == "ModelScope/ZeroScope (UNet3DConditionModel)"


def assemble_from_folder(folder):
    sources = read_customization(folder)
    return assemble_pipeline(
        sources["model"],
        customized=sources.get("customized"),
        spatial_adapters=sources["spatial_adapters"],
        motion_adapter=sources.get("motion_adapter"),
    )


def test_both_stages_generate_and_export_through_the_cli(zeroscope, tmp_path, capsys, monkeypatch):
    stages_generate_export(zeroscope, tmp_path, capsys, monkeypatch, SPATIAL_LAYERS, "TextToVideoSDPipeline")
    plain = TextToVideoSDPipeline.from_pretrained(tmp_path / "exported")  # plain diffusers + the adapter hook
    attach_spatial_adapters(plain, tmp_path / "exported" / "spatial_adapters.safetensors")
    ours = assemble_from_folder(tmp_path / "exported")
    assert torch.equal(frames(plain), frames(ours))
    code, _, err = run(
        capsys,
        monkeypatch,
        "generate",
        "--model",
        zeroscope / "t2v",
        "--prompt",
        "a dog",
        "-o",
        tmp_path / "v2v.gif",
        "--video",
        tmp_path / "video.gif",
    )
    assert code == 2 and "ModelScope/ZeroScope model: diffusers has no ControlNet pipeline" in err


def test_the_real_zeroscope_shapes_map_onto_sd2_and_give_the_adapters_their_layers():
    """cerspense/zeroscope_v2_576w's UNet3DConditionModel (text-to-video-ms-1.7b's architecture) on the meta device:
    its spatial part has exactly stabilityai/stable-diffusion-2-1's UNet keys and shapes (so SD2.x DreamBooths of it
    inject), V's T2I rebuilds as that UNet, and the adapters find 38 spatial layers and 17 temporal attentions x 6."""
    from stillmoving.bench.models import MODELSCOPE_UNET

    sd21 = dict(  # stabilityai/stable-diffusion-2-1 unet/config.json (its shape-relevant entries)
        attention_head_dim=[5, 10, 20, 20],
        block_out_channels=[320, 640, 1280, 1280],
        cross_attention_dim=1024,
        down_block_types=["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
        up_block_types=["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
        layers_per_block=2,
        use_linear_projection=True,
        sample_size=96,
    )
    with torch.device("meta"):
        video = UNet3DConditionModel(**MODELSCOPE_UNET)
        t2i = UNet2DConditionModel(**sd21)
        rebuilt = UNet2DConditionModel(**ZeroScope(None).t2i_config(video))
    shapes = {k: tuple(v.shape) for k, v in t2i.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in spatial_state_dict(video).items()} == shapes
    assert {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()} == shapes
    spatial_attn1 = [n for n in shapes if n.endswith("attn1.to_q.weight")]
    heads = {n: m.heads for n, m in video.named_modules() if f"{n}.to_q.weight" in spatial_attn1}
    assert len(heads) == 16
    assert heads == {n: m.heads for n, m in t2i.named_modules() if n in heads}  # 64-channel heads, as SD2.x's
    layers = SpatialAdapters.for_unet(video).placements
    assert len(layers) == 38 and layers["mid_block.attentions.0"] == 1280
    assert len(MotionLoRA.inject(video, rank=2).layers) == 17 * 6


def test_a_dreambooth_of_v_own_t2i_loads_as_the_customized_t2i(zeroscope, tmp_path):
    """`t2i dreambooth --model ZEROSCOPE_FOLDER`: the base T2I is V's own spatial layers as an SD2.x UNet; the result
    loads as M1 and injects."""
    import numpy as np

    from stillmoving.data.video_io import write_image
    from stillmoving.training.config import DreamBoothConfig
    from stillmoving.training.dreambooth import train_dreambooth

    for i in range(2):
        image = np.zeros((32, 32, 3), np.uint8)
        image[8 + i : 24, 6 : 26 - i] = (230, 200, 20)
        write_image(image, tmp_path / "subject" / f"{i}.png")
    cfg = DreamBoothConfig(
        model=str(zeroscope / "t2v"),
        output=str(tmp_path / "db"),
        images=str(tmp_path / "subject"),
        prompt="a sks dog",
        height=32,
        width=32,
        steps=2,
        lr=1e-3,
    )
    out = train_dreambooth(cfg)
    pipe = load_t2v(zeroscope / "t2v")
    m1 = load_customized(pipe, str(out))
    own = spatial_state_dict(pipe.unet)
    assert any(not torch.equal(v, own[k]) for k, v in m1.unet.state_dict().items())
    pipe.inject_customized(m1.unet, m1.text_encoder)
    assert all(torch.equal(pipe.unet.state_dict()[k], v) for k, v in m1.unet.state_dict().items())


@pytest.fixture(scope="module")
def zeroscope_customization(zeroscope, motion_adapter_file, tmp_path_factory):
    """A 1-step `customize` of `m1` through the CLI (family_cli.CUSTOMIZE)."""
    return customization(zeroscope, motion_adapter_file, tmp_path_factory.mktemp("zeroscope_customization") / "custom")


def test_compare_and_eval_through_the_cli(zeroscope, zeroscope_customization, tmp_path, capsys, monkeypatch):
    from diffusers import StableDiffusionPipeline

    def image():  # an SD2.x-shaped Stable Diffusion pipeline on V's VAE, text encoder and scheduler
        t2v = TextToVideoSDPipeline.from_pretrained(zeroscope / "t2v")
        return StableDiffusionPipeline(
            vae=t2v.vae,
            text_encoder=t2v.text_encoder,
            tokenizer=t2v.tokenizer,
            unet=UNet2DConditionModel.from_pretrained(zeroscope / "m1"),
            scheduler=t2v.scheduler,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )

    def base():
        return TextToVideoSDPipeline.from_pretrained(zeroscope / "t2v")

    compare_and_eval(zeroscope, zeroscope_customization, tmp_path, capsys, monkeypatch, base, image)


def test_customize_batch_after_an_sdxl_run_equals_customize(
    zeroscope, motion_adapter_file, zeroscope_customization, tmp_path, capsys, monkeypatch
):
    from sdxl_models import save_sdxl_models

    other = save_sdxl_models(tmp_path / "sdxl")
    other_adapter = save_motion_adapter(other / "t2v", tmp_path / "sdxl_motion")
    mine = (zeroscope, motion_adapter_file)
    batch_equals_customize((other, other_adapter), mine, zeroscope_customization, tmp_path, capsys, monkeypatch)
