"""Files as users bring them: LDM single files, AnimateDiff motion modules, kohya/peft/diffusers LoRAs.

The tiny model is written in each real layout by small test-only inverse mappings (diffusers converts
only one way), loaded back through the API and the CLI offline, and compared with the same model
loaded from its diffusers folder: equal weights, equal frames. Then a table of bad inputs.
"""

import json
import re

import pytest
import torch
from conftest import generate, perturb
from diffusers import MotionAdapter, StableDiffusionPipeline
from diffusers.loaders.single_file_utils import convert_animatediff_checkpoint_to_diffusers
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict
from safetensors.torch import save_file
from test_cli import run

from stillmoving.formats.motion_modules import inspect_motion_modules, load_motion_modules_file
from stillmoving.injection import t2i_unet_from_t2v
from stillmoving.loading import load_customized, load_t2v

# ---- test-only inverse mappings: diffusers names -> original names -------------------------------


def to_animatediff(state: dict) -> dict:
    """diffusers MotionAdapter keys -> original AnimateDiff keys (inverse of diffusers' converter)."""
    out = {}
    for key, value in state.items():
        key = re.sub(r"(motion_modules\.\d+\.)", r"\1temporal_transformer.", key)
        if key.endswith("pos_embed.pe"):  # original: one table per attention; diffusers: one per block
            for i in (0, 1):
                out[key.replace("pos_embed.pe", f"attention_blocks.{i}.pos_encoder.pe")] = value.clone()
            continue
        for new, old in (
            (".attn1.", ".attention_blocks.0."),
            (".attn2.", ".attention_blocks.1."),
            (".norm1.", ".norms.0."),
            (".norm2.", ".norms.1."),
            (".norm3.", ".ff_norm."),
        ):
            key = key.replace(new, old)
        out[key] = value
    return out


RESNET = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "time_emb_proj": "emb_layers.1",
    "conv_shortcut": "skip_connection",
}


def _ldm_unet_prefixes(config) -> dict[str, str]:
    """SD's diffusers->LDM UNet prefix table (the old diffusers->original script), for any block count."""
    per, n, table = config["layers_per_block"] + 1, len(config["block_out_channels"]), {}
    for i in range(n):
        for j in range(per - 1):
            table[f"down_blocks.{i}.resnets.{j}."] = f"input_blocks.{per * i + j + 1}.0."
            table[f"down_blocks.{i}.attentions.{j}."] = f"input_blocks.{per * i + j + 1}.1."
        table[f"down_blocks.{i}.downsamplers.0.conv."] = f"input_blocks.{per * (i + 1)}.0.op."
        for j in range(per):
            table[f"up_blocks.{i}.resnets.{j}."] = f"output_blocks.{per * i + j}.0."
            table[f"up_blocks.{i}.attentions.{j}."] = f"output_blocks.{per * i + j}.1."
        attn = "CrossAttn" in config["up_block_types"][i]
        table[f"up_blocks.{i}.upsamplers.0."] = f"output_blocks.{per * i + per - 1}.{2 if attn else 1}."
    table.update(
        {
            "mid_block.resnets.0.": "middle_block.0.",
            "mid_block.attentions.0.": "middle_block.1.",
            "mid_block.resnets.1.": "middle_block.2.",
            "time_embedding.linear_1.": "time_embed.0.",
            "time_embedding.linear_2.": "time_embed.2.",
            "conv_in.": "input_blocks.0.0.",
            "conv_norm_out.": "out.0.",
            "conv_out.": "out.2.",
        }
    )
    return table


VAE_ATTENTION = {"group_norm.": "norm.", "to_q.": "q.", "to_k.": "k.", "to_v.": "v.", "to_out.0.": "proj_out."}


def _ldm_vae(vae) -> dict:
    """diffusers AutoencoderKL keys -> LDM's `first_stage_model.*` (decoder levels are numbered in reverse)."""
    out, levels = {}, len(vae.config.block_out_channels)
    for key, value in vae.state_dict().items():
        key = re.sub(r"(encoder|decoder)\.conv_norm_out\.", r"\1.norm_out.", key)
        key = re.sub(r"encoder\.down_blocks\.(\d+)\.resnets\.", r"encoder.down.\1.block.", key)
        key = re.sub(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.", r"encoder.down.\1.downsample.", key)
        key = re.sub(r"decoder\.up_blocks\.(\d+)\.", lambda m: f"decoder.up.{levels - 1 - int(m.group(1))}.", key)
        key = key.replace(".resnets.", ".block.").replace(".upsamplers.0.", ".upsample.")
        key = key.replace("mid_block.block.0.", "mid.block_1.").replace("mid_block.block.1.", "mid.block_2.")
        key = key.replace(".conv_shortcut.", ".nin_shortcut.")
        if "mid_block.attentions.0." in key:
            key = key.replace("mid_block.attentions.0.", "mid.attn_1.")
            for new, old in VAE_ATTENTION.items():
                key = key.replace(new, old)
            value = value[:, :, None, None] if value.ndim == 2 else value  # LDM: 1x1 convs
        out["first_stage_model." + key] = value.clone()
    return out


def to_ldm(unet, text_encoder=None, vae=None) -> dict:
    """A diffusers UNet (and CLIP text encoder, VAE) as one original-LDM checkpoint dict."""
    table, out = _ldm_unet_prefixes(unet.config), {}
    for key, value in unet.state_dict().items():
        prefix = max((p for p in table if key.startswith(p)), key=len)
        rest = key[len(prefix) :]
        if ".resnets." in prefix:
            name, _, tail = rest.partition(".")
            rest = f"{RESNET[name]}.{tail}"
        out["model.diffusion_model." + table[prefix] + rest] = value.clone()
    for key, value in (text_encoder.state_dict() if text_encoder is not None else {}).items():
        out["cond_stage_model.transformer." + key] = value.clone()
    return {**out, **(_ldm_vae(vae) if vae is not None else {})}


def kohya_lora(peft_state: dict, alpha: float) -> dict:
    """peft LoRA keys -> kohya's (`lora_unet_<module_with_underscores>.lora_down/up.weight` + `.alpha`)."""
    out = {}
    for key, value in peft_state.items():
        module, kind = re.fullmatch(r"(.+)\.lora_([AB])\.weight", key).groups()
        name = "lora_unet_" + module.replace(".", "_")
        out[f"{name}.lora_{'down' if kind == 'A' else 'up'}.weight"] = value.contiguous()
        out[f"{name}.alpha"] = torch.tensor(alpha)
    return out


# ---- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def parts(tiny_dir, tmp_path_factory):
    """The tiny V's pieces: an SD folder, its motion modules as a folder, the folder `config_dir` points at."""
    root = tmp_path_factory.mktemp("formats")
    from stillmoving.pipeline import StillMovingPipeline

    pipe = StillMovingPipeline.from_pretrained(tiny_dir)
    sd = StableDiffusionPipeline(
        vae=pipe.vae,
        text_encoder=pipe.text_encoder,
        tokenizer=pipe.tokenizer,
        unet=t2i_unet_from_t2v(pipe.unet),
        scheduler=pipe.scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    sd.save_pretrained(root / "sd")
    pipe.unet.save_motion_modules(str(root / "sd" / "motion_adapter"))  # the config folder holds both
    return {"root": root, "sd": root / "sd", "mm": root / "sd" / "motion_adapter", "pipe": pipe}


def tiny_motion_modules(parts, mid: bool, frames: int, seed: int = 0) -> MotionAdapter:
    config = dict(MotionAdapter.load_config(parts["mm"]))
    adapter = MotionAdapter.from_config({**config, "use_motion_mid_block": mid, "motion_max_seq_length": frames})
    perturb(adapter.parameters(), seed=seed, scale=0.05)
    return adapter


# ---- motion modules -------------------------------------------------------------------------------


def test_inverse_motion_mapping_is_diffusers_converter_inverted(parts):
    state = parts["pipe"].unet.state_dict()
    adapter_state = {k: v for k, v in state.items() if "motion_modules" in k}
    back = convert_animatediff_checkpoint_to_diffusers(to_animatediff(adapter_state))
    assert back.keys() == {k for k in adapter_state if "pos_embed" not in k}


@pytest.mark.parametrize("version,mid,frames", [("v1", False, 24), ("v2", True, 32), ("v3", False, 32)])
def test_motion_module_versions_are_recognised_and_loaded(parts, tmp_path, capsys, monkeypatch, version, mid, frames):
    adapter = tiny_motion_modules(parts, mid, frames)
    original = to_animatediff(adapter.state_dict())
    suffix = ".ckpt" if version == "v1" else ".safetensors"
    path = tmp_path / f"mm_{version}{suffix}"
    torch.save({"state_dict": original}, path) if suffix == ".ckpt" else save_file(original, path)
    info = inspect_motion_modules(original)
    assert (info.version, info.max_frames, info.mid_block) == (version, frames, mid)
    loaded = load_motion_modules_file(path, config_dir=parts["sd"])
    assert loaded.config.motion_max_seq_length == frames and loaded.config.use_motion_mid_block == mid
    for key, value in adapter.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    code, out, _ = run(capsys, monkeypatch, "info", path)
    assert code == 0 and f"AnimateDiff motion modules {version}" in out and str(frames) in out


def test_sd_folder_plus_motion_module_file_equals_the_animatediff_folder(parts, tiny_dir, tmp_path):
    state = to_animatediff({k: v for k, v in parts["pipe"].unet.state_dict().items() if "motion_modules" in k})
    save_file(state, tmp_path / "mm.safetensors")
    pipe = load_t2v(parts["sd"], tmp_path / "mm.safetensors", config_dir=parts["sd"])
    reference = parts["pipe"]
    for key, value in reference.unet.state_dict().items():
        assert torch.equal(pipe.unet.state_dict()[key], value), key
    pipe.set_progress_bar_config(disable=True)
    reference.set_progress_bar_config(disable=True)
    assert torch.equal(generate(pipe), generate(reference))


# ---- single-file T2I checkpoints -----------------------------------------------------------------


def dreambooth(parts, seed=5, text=False):
    """The tiny V's T2I with nudged weights (and text encoder), as a diffusers UNet and an LDM dict."""
    import copy

    unet = t2i_unet_from_t2v(parts["pipe"].unet)
    perturb(unet.parameters(), seed=seed, scale=0.02, add=True)
    encoder = copy.deepcopy(parts["pipe"].text_encoder)
    if text:
        perturb(encoder.parameters(), seed=seed + 1, scale=0.02, add=True)
    return unet, encoder, to_ldm(unet, encoder)


@pytest.mark.parametrize("suffix,text", [(".safetensors", False), (".ckpt", True)])
def test_single_file_dreambooth_equals_its_diffusers_unet(parts, tmp_path, suffix, text):
    unet, encoder, ldm = dreambooth(parts, text=text)
    path = tmp_path / f"db{suffix}"
    save_file(ldm, path) if suffix == ".safetensors" else torch.save({"state_dict": ldm, "global_step": 3}, path)
    m1 = load_customized(parts["pipe"], path)
    for key, value in unet.state_dict().items():
        assert torch.equal(m1.unet.state_dict()[key], value), key
    assert (m1.text_encoder is not None) == text
    if text:
        for key, value in encoder.state_dict().items():
            assert torch.equal(m1.text_encoder.state_dict()[key], value), key


# ---- LoRA layouts --------------------------------------------------------------------------------


def lora_unet(parts, alpha: float, seed: int = 0):
    unet = t2i_unet_from_t2v(parts["pipe"].unet)
    unet.add_adapter(LoraConfig(r=2, lora_alpha=alpha, target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    perturb([p for n, p in unet.named_parameters() if "lora_B" in n], seed=seed, scale=0.1)
    return unet


def _write_layout(layout: str, unet, alpha: float, folder):
    peft_state = get_peft_model_state_dict(unet)
    if layout == "kohya":
        save_file(kohya_lora(peft_state, alpha), folder / "style.safetensors")
        return folder / "style.safetensors"
    if layout == "peft":
        save_file(
            {"base_model.model." + k: v.contiguous() for k, v in peft_state.items()},
            folder / "adapter_model.safetensors",
        )
        return folder  # a peft folder
    StableDiffusionPipeline.save_lora_weights(str(folder), unet_lora_layers=peft_state)
    return folder / "pytorch_lora_weights.safetensors"


@pytest.mark.parametrize("layout,alpha", [("kohya", 1.0), ("peft", 2.0), ("diffusers", 2.0)])
def test_lora_layouts_fuse_to_the_same_unet(parts, tmp_path, layout, alpha):
    unet = lora_unet(parts, alpha)
    path = _write_layout(layout, unet, alpha, tmp_path)
    m1 = load_customized(parts["pipe"], loras=[(str(path), 0.5)])
    unet.set_adapters(["default"], [0.5])
    sample, text = torch.randn(1, 4, 16, 16), torch.randn(1, 16, 32)
    with torch.no_grad():
        torch.testing.assert_close(
            m1.unet(sample, 10, text).sample, unet(sample, 10, text).sample, atol=1e-5, rtol=1e-4
        )


def test_peft_folder_with_alpha_and_rslora_from_its_adapter_config(parts, tmp_path):
    """peft's own `save_pretrained` folder: adapter_config.json carries lora_alpha != r, rsLoRA and an
    alpha_pattern; the fused UNet equals the peft model at the same weight."""
    from peft import get_peft_model

    unet = t2i_unet_from_t2v(parts["pipe"].unet)
    config = LoraConfig(
        r=4,
        lora_alpha=3,
        use_rslora=True,
        alpha_pattern={"to_v": 8},
        target_modules=["to_q", "to_k", "to_v", "to_out.0"],
    )
    model = get_peft_model(unet, config)
    perturb([p for n, p in model.named_parameters() if "lora_B" in n], seed=3, scale=0.1)
    model.save_pretrained(tmp_path / "peft")
    assert json.loads((tmp_path / "peft/adapter_config.json").read_text())["lora_alpha"] == 3
    m1 = load_customized(parts["pipe"], loras=[(str(tmp_path / "peft"), 0.5)])
    for module in model.modules():
        if hasattr(module, "scaling") and "default" in getattr(module, "scaling", {}):
            module.scaling["default"] *= 0.5
    sample, text = torch.randn(1, 4, 16, 16), torch.randn(1, 16, 32)
    with torch.no_grad():
        torch.testing.assert_close(
            m1.unet(sample, 10, text).sample, model(sample, 10, text).sample, atol=1e-5, rtol=1e-4
        )


def test_peft_text_encoder_lora_customizes_the_text_encoder(parts, tmp_path):
    import copy

    from peft import get_peft_model

    text = get_peft_model(
        copy.deepcopy(parts["pipe"].text_encoder), LoraConfig(r=2, lora_alpha=6, target_modules=["q_proj", "v_proj"])
    )
    perturb([p for n, p in text.named_parameters() if "lora_B" in n], seed=4, scale=0.1)
    text.save_pretrained(tmp_path / "te")
    m1 = load_customized(parts["pipe"], loras=[(str(tmp_path / "te"), 1.0)])
    assert m1.text_encoder is not None
    ids = parts["pipe"].tokenizer(["a red circle"], padding="max_length", max_length=16, return_tensors="pt").input_ids
    with torch.no_grad():
        torch.testing.assert_close(m1.text_encoder(ids)[0], text(input_ids=ids)[0], atol=1e-5, rtol=1e-4)


def test_base_single_file_plus_motion_module_file_equals_the_animatediff_folder(parts, tmp_path, capsys, monkeypatch):
    reference = parts["pipe"]
    save_file(
        to_ldm(t2i_unet_from_t2v(reference.unet), reference.text_encoder, reference.vae), tmp_path / "sd15.safetensors"
    )
    mm = {k: v for k, v in reference.unet.state_dict().items() if "motion_modules" in k}
    torch.save(to_animatediff(mm), tmp_path / "mm.ckpt")
    pipe = load_t2v(tmp_path / "sd15.safetensors", tmp_path / "mm.ckpt", config_dir=parts["sd"])
    for name in ("unet", "vae", "text_encoder"):
        for key, value in getattr(reference, name).state_dict().items():
            assert torch.equal(getattr(pipe, name).state_dict()[key], value), (name, key)
    code, _, err = run(
        capsys,
        monkeypatch,
        "generate",
        "--model",
        tmp_path / "sd15.safetensors",
        "--motion-modules",
        tmp_path / "mm.ckpt",
        "--config-dir",
        parts["sd"],
        "--prompt",
        "a red circle",
        "-o",
        tmp_path / "frames",
        "--num-frames",
        "4",
        "--height",
        "32",
        "--width",
        "32",
        "--steps",
        "2",
    )
    assert code == 0, err
    assert len(list((tmp_path / "frames").iterdir())) == 4
    code, out, _ = run(capsys, monkeypatch, "info", tmp_path / "sd15.safetensors")
    assert code == 0 and "LDM layout" in out


# ---- bad inputs: one error line, exit 2, nothing written ---------------------------------------------


class Payload:  # a pickled object of a class: what weights_only refuses
    pass


def _sdxl_like(tmp):
    """The keys diffusers tells SDXL by (a real one has 2,500 more)."""
    state = {
        "model.diffusion_model.input_blocks.0.0.weight": torch.zeros(320, 4, 3, 3),
        "conditioner.embedders.1.model.transformer.resblocks.9.mlp.c_proj.bias": torch.zeros(1280),
    }
    save_file(state, tmp / "sdxl.safetensors")
    return tmp / "sdxl.safetensors"


def _sd2_like(tmp):
    state = {"model.diffusion_model.input_blocks.2.1.transformer_blocks.0.attn2.to_k.weight": torch.zeros(320, 1024)}
    save_file(state, tmp / "sd2.safetensors")
    return tmp / "sd2.safetensors"


def _mismatched_dreambooth(parts, tmp):
    from diffusers import UNet2DConditionModel

    other = UNet2DConditionModel(
        block_out_channels=(32, 48),
        layers_per_block=1,
        norm_num_groups=8,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=2,
        sample_size=16,
    )
    save_file(to_ldm(other), tmp / "other.safetensors")
    return tmp / "other.safetensors"


def _truncated(parts, tmp):
    _, _, ldm = dreambooth(parts)
    save_file(ldm, tmp / "db.safetensors")
    data = (tmp / "db.safetensors").read_bytes()
    (tmp / "db.safetensors").write_bytes(data[: len(data) // 2])
    return tmp / "db.safetensors"


def _pickle(tmp, name="evil.ckpt"):
    torch.save({"state_dict": {"w": torch.zeros(1)}, "payload": Payload()}, tmp / name)
    return tmp / name


def _garbage(tmp, name="junk.ckpt"):
    (tmp / name).write_bytes(b"not a checkpoint at all" * 10)
    return tmp / name


def _wrong_layout_mm(parts, tmp):
    config = dict(MotionAdapter.load_config(parts["mm"]))
    adapter = MotionAdapter.from_config({**config, "motion_layers_per_block": 2})
    save_file(to_animatediff(adapter.state_dict()), tmp / "mm_wrong.safetensors")
    return tmp / "mm_wrong.safetensors"


def _kohya(tmp, module, shape_in, name="lora.safetensors"):
    key = "lora_unet_" + module.replace(".", "_")
    save_file(
        {
            f"{key}.lora_down.weight": torch.zeros(2, shape_in),
            f"{key}.lora_up.weight": torch.zeros(32, 2),
            f"{key}.alpha": torch.tensor(2.0),
        },
        tmp / name,
    )
    return tmp / name


ATTN = "down_blocks.0.attentions.0.transformer_blocks.{}.attn2.to_k"
SD = ["--model", "{sd}", "--motion-modules", "{mm}"]
BAD_INPUTS = [  # (id, arguments after `generate ... -o OUT`, making the file, expected message)
    ("truncated-safetensors", SD + ["--customized", "{f}"], _truncated, "not a complete safetensors file"),
    ("pickle-needs-code", SD + ["--customized", "{f}"], lambda p, t: _pickle(t), "needs arbitrary unpickling"),
    ("pickle-lora-bin", SD + ["--lora", "{f}"], lambda p, t: _pickle(t, "lora.bin"), "save its tensors as safetensors"),
    ("garbage-ckpt", SD + ["--customized", "{f}"], lambda p, t: _garbage(t), "not a readable PyTorch checkpoint"),
    ("sdxl-checkpoint", SD + ["--customized", "{f}"], lambda p, t: _sdxl_like(t), "'xl_base' checkpoint"),
    ("sd2-checkpoint", SD + ["--customized", "{f}"], lambda p, t: _sd2_like(t), "'v2' checkpoint"),
    ("dreambooth-other-shapes", SD + ["--customized", "{f}"], _mismatched_dreambooth, "does not fit"),
    (
        "not-a-checkpoint",
        SD + ["--customized", "{f}"],
        lambda p, t: _kohya(t, ATTN.format(0), 32),
        "not a Stable Diffusion checkpoint",
    ),
    (
        "mm-wrong-block-layout",
        ["--model", "{sd}", "--motion-modules", "{f}"],
        _wrong_layout_mm,
        "do not fit the base model",
    ),
    (
        "mm-file-without-modules",
        ["--model", "{sd}", "--motion-modules", "{f}"],
        lambda p, t: _kohya(t, ATTN.format(0), 32),
        "holds no AnimateDiff motion modules",
    ),
    (
        "mm-pickle-needs-code",
        ["--model", "{sd}", "--motion-modules", "{f}"],
        lambda p, t: _pickle(t, "mm.ckpt"),
        "needs arbitrary unpickling",
    ),
    ("lora-sdxl-module", SD + ["--lora", "{f}"], lambda p, t: _kohya(t, ATTN.format(1), 32), "does not fit this model"),
    (
        "lora-sdxl-shapes",
        SD + ["--lora", "{f}"],
        lambda p, t: _kohya(t, ATTN.format(0), 2048),
        "does not fit this model",
    ),
    (
        "lora-unknown-layout",
        SD + ["--lora", "{f}"],
        lambda p, t: save_file({"x.y": torch.zeros(1)}, t / "l.safetensors") or t / "l.safetensors",
        "unrecognised LoRA layout",
    ),
    ("lora-missing", SD + ["--lora", "{f}"], lambda p, t: t / "none.safetensors", "no such LoRA file"),
    ("too-many-frames", SD + ["--num-frames", "17"], lambda p, t: None, "positional table holds (16 frames)"),
    ("base-file-without-mm", ["--model", "{f}"], lambda p, t: _truncated(p, t), "pass its motion modules too"),
    (
        "base-file-no-tokenizer",
        ["--model", "{f}", "--motion-modules", "{mm}", "--config-dir", "{mm}"],
        lambda p, t: _garbage(t, "b.ckpt"),
        "not a diffusers config folder",
    ),
    (
        "base-file-shipped-configs",
        ["--model", "{f}", "--motion-modules", "{mm}"],
        lambda p, t: _garbage(t, "b.ckpt"),
        "has no tokenizer/ folder",
    ),
    (
        "unknown-suffix",
        SD + ["--customized", "{f}"],
        lambda p, t: (t / "w.txt").write_text("x") and t / "w.txt",
        "neither a diffusers UNet",
    ),
]


@pytest.mark.parametrize("args,make,message", [row[1:] for row in BAD_INPUTS], ids=[row[0] for row in BAD_INPUTS])
def test_bad_inputs_are_one_line_exit_2_and_write_nothing(parts, tmp_path, capsys, monkeypatch, args, make, message):
    made = make(parts, tmp_path)
    values = {"sd": parts["sd"], "mm": parts["mm"], "f": made}
    out = tmp_path / "out.gif"
    code, _, err = run(
        capsys,
        monkeypatch,
        "generate",
        "--prompt",
        "x",
        "-o",
        out,
        "--num-frames",
        "4",
        "--height",
        "32",
        "--width",
        "32",
        "--steps",
        "1",
        *[a.format(**values) for a in args],
    )
    (line,) = [line for line in err.splitlines() if "error:" in line]  # progress bars aside, one line
    assert code == 2 and message in line, err
    assert not out.exists()


TRAIN = ["--num-frames", "4", "--height", "32", "--width", "32", "--steps", "1", "--sample-steps", "1"]


@pytest.mark.parametrize(
    "verb",
    [
        ["motion-adapter", "train", "--sample-prompt", "a red circle"],
        ["customize", "--prompt", "a sks dog", "--identifier", "sks"],
    ],
)
def test_training_refuses_more_frames_than_the_positional_table(parts, tmp_path, capsys, monkeypatch, verb):
    code, _, err = run(
        capsys,
        monkeypatch,
        *verb,
        "--model",
        parts["sd"],
        "--motion-modules",
        parts["mm"],
        "-o",
        tmp_path / "run",
        *TRAIN,
        "--num-frames",
        "17",
    )
    (line,) = [line for line in err.splitlines() if "error:" in line]
    assert code == 2 and "positional table holds (16 frames)" in line
    assert not (tmp_path / "run").exists()


def test_training_verbs_take_a_single_file_base_with_config_dir(parts, tmp_path, capsys, monkeypatch):
    """An LDM single file + motion-module file through both stages; `generate --customization` re-reads
    `--config-dir` from the record, so the customization runs without repeating it."""
    reference = parts["pipe"]
    save_file(
        to_ldm(t2i_unet_from_t2v(reference.unet), reference.text_encoder, reference.vae), tmp_path / "sd15.safetensors"
    )
    torch.save(
        to_animatediff({k: v for k, v in reference.unet.state_dict().items() if "motion_modules" in k}),
        tmp_path / "mm.ckpt",
    )
    base = [
        "--model",
        tmp_path / "sd15.safetensors",
        "--motion-modules",
        tmp_path / "mm.ckpt",
        "--config-dir",
        parts["sd"],
    ]
    code, _, err = run(
        capsys,
        monkeypatch,
        "motion-adapter",
        "train",
        *base,
        "-o",
        tmp_path / "motion",
        "--sample-prompt",
        "a red circle",
        "--num-sampled-videos",
        "1",
        "--rank",
        "2",
        *TRAIN,
    )
    assert code == 0, err
    code, _, err = run(
        capsys,
        monkeypatch,
        "customize",
        *base,
        "-o",
        tmp_path / "custom",
        "--motion-adapter",
        tmp_path / "motion/motion_adapter",
        "--customized",
        parts["sd"],
        "--prompt",
        "a sks dog",
        "--identifier",
        "sks",
        "--num-images",
        "1",
        "--num-prior-videos",
        "1",
        "--prior-loss-weight",
        "1",
        "--spatial-rank",
        "2",
        *TRAIN,
    )
    assert code == 0, err
    record = json.loads((tmp_path / "custom/customization.json").read_text())
    assert record["config_dir"] == str(parts["sd"].resolve())
    code, _, err = run(
        capsys,
        monkeypatch,
        "generate",
        "--customization",
        tmp_path / "custom",
        "--prompt",
        "a sks dog",
        "-o",
        tmp_path / "v.gif",
        "--num-frames",
        "4",
        "--height",
        "32",
        "--width",
        "32",
        "--steps",
        "1",
    )
    assert code == 0 and (tmp_path / "v.gif").is_file(), err


def test_info_refuses_a_pickle_that_needs_code(tmp_path, capsys, monkeypatch):
    code, _, err = run(capsys, monkeypatch, "info", _pickle(tmp_path))
    assert code == 2 and "needs arbitrary unpickling" in err and len(err.strip().splitlines()) == 1
