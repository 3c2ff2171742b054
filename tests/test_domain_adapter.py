"""The AnimateDiff v3 domain adapter (`--domain-adapter PATH[:SCALE]`): a tiny seeded spatial LoRA of the tiny V,
written in AnimateDiff's original layout and in diffusers', peft's and kohya's, fused into V through the API and the
CLI offline, compared with diffusers' own `load_lora_weights` + `fuse_lora`; then a table of bad inputs."""

import json
import re

import pytest
import torch
from conftest import generate
from diffusers import AnimateDiffPipeline
from safetensors.torch import save_file
from test_cli import run

from stillmoving.formats.domain_adapter import parse_domain_adapter, read_domain_adapter
from stillmoving.injection import t2i_unet_from_t2v
from stillmoving.loading import load_customized, load_t2v

SPATIAL_ATTENTION = re.compile(r".*attentions\.\d+\.transformer_blocks\.\d+\.attn[12]\.(to_q|to_k|to_v|to_out\.0)")
RANK = 2


def adapter_layers(pipe, seed: int = 0) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """module -> (down, up): a seeded rank-2 LoRA on every spatial attention projection of V, as v3's adapter."""
    gen = torch.Generator().manual_seed(seed)
    layers = {}
    for name, module in pipe.unet.named_modules():
        if SPATIAL_ATTENTION.fullmatch(name) and "motion_modules" not in name:
            down = torch.randn(RANK, module.in_features, generator=gen) * 0.2
            layers[name] = (down, torch.randn(module.out_features, RANK, generator=gen) * 0.2)
    return layers


def original_layout(layers) -> dict:
    """AnimateDiff's keys: `<attention>.processor.to_q_lora.down.weight` (to_out.0 is `to_out_lora`)."""
    out = {}
    for module, (down, up) in layers.items():
        attention, projection = module.removesuffix(".0").rsplit(".", 1)
        out[f"{attention}.processor.{projection}_lora.down.weight"] = down
        out[f"{attention}.processor.{projection}_lora.up.weight"] = up
    return out


def diffusers_layout(layers) -> dict:
    return {
        f"unet.{m}.lora_{ab}.weight": t.contiguous() for m, (d, u) in layers.items() for ab, t in (("A", d), ("B", u))
    }


def kohya_layout(layers, alpha: float = 4.0) -> dict:
    """ComfyUI's repack: kohya keys, and an alpha (folded back here so the weights are the same)."""
    out = {}
    for module, (down, up) in layers.items():
        name = "lora_unet_" + module.replace(".", "_")
        out[f"{name}.lora_down.weight"] = down.contiguous()
        out[f"{name}.lora_up.weight"] = (up * RANK / alpha).contiguous()
        out[f"{name}.alpha"] = torch.tensor(alpha)
    return out


def write(layout: str, layers, folder):
    """The adapter in `layout`, as users have it: a .ckpt (original), a diffusers file, a peft folder, a kohya file."""
    folder.mkdir(parents=True, exist_ok=True)
    if layout == "original":
        torch.save({"state_dict": original_layout(layers)}, folder / "v3_sd15_adapter.ckpt")
        return folder / "v3_sd15_adapter.ckpt"
    if layout == "peft":
        state = {
            f"base_model.model.{m}.lora_{ab}.weight": t
            for m, (d, u) in layers.items()
            for ab, t in (("A", d), ("B", u))
        }
        save_file({k: v.contiguous() for k, v in state.items()}, folder / "adapter_model.safetensors")
        (folder / "adapter_config.json").write_text(json.dumps({"r": RANK, "lora_alpha": RANK}))
        return folder
    state = kohya_layout(layers) if layout == "kohya" else diffusers_layout(layers)
    save_file(state, folder / f"{layout}.safetensors")
    return folder / f"{layout}.safetensors"


@pytest.fixture(scope="module")
def layers(tiny_dir):
    return adapter_layers(load_t2v(tiny_dir))


@pytest.fixture(scope="module")
def original(layers, tmp_path_factory):
    return write("original", layers, tmp_path_factory.mktemp("adapter"))


def diffusers_fused(tiny_dir, layers, scale: float) -> AnimateDiffPipeline:
    """The reference: diffusers' own loader on the plain AnimateDiffPipeline."""
    pipe = AnimateDiffPipeline.from_pretrained(tiny_dir)
    pipe.load_lora_weights(diffusers_layout(layers), adapter_name="v3_adapter")
    pipe.fuse_lora(lora_scale=scale)
    pipe.unload_lora_weights()
    return pipe


def test_scale_0_leaves_the_frames_of_v_exactly(tiny_dir, original):
    plain, fused = load_t2v(tiny_dir), load_t2v(tiny_dir, domain_adapter=f"{original}:0")
    assert fused.domain_adapter.record["scale"] == 0.0
    for pipe in (plain, fused):
        pipe.set_progress_bar_config(disable=True)
    assert torch.equal(generate(fused), generate(plain))


def test_scale_1_equals_diffusers_load_lora_weights_and_the_formula(tiny_dir, layers, original):
    fused = load_t2v(tiny_dir, domain_adapter=str(original))
    reference = diffusers_fused(tiny_dir, layers, 1.0)
    plain = load_t2v(tiny_dir).unet.state_dict()
    state = fused.unet.state_dict()
    for key, value in reference.unet.state_dict().items():
        assert torch.equal(state[key], value), key
    for module, (down, up) in layers.items():  # AnimateDiff's own fusing: W += scale * up @ down
        torch.testing.assert_close(state[f"{module}.weight"], plain[f"{module}.weight"] + up @ down)
    fused.set_progress_bar_config(disable=True)
    reference.set_progress_bar_config(disable=True)
    assert torch.equal(generate(fused), generate(reference))  # exact: the same weights, the same seed
    assert any(not torch.equal(state[f"{m}.weight"], plain[f"{m}.weight"]) for m in layers)


@pytest.mark.parametrize("layout", ["diffusers", "peft", "kohya"])
def test_every_layout_fuses_to_the_same_weights(tiny_dir, layers, original, tmp_path, layout):
    path = write(layout, layers, tmp_path)
    assert read_domain_adapter(path).layout == layout
    expected = load_t2v(tiny_dir, domain_adapter=f"{original}:0.7").unet.state_dict()
    state = load_t2v(tiny_dir, domain_adapter=f"{path}:0.7").unet.state_dict()
    for key, value in expected.items():  # kohya's alpha / rank is a multiply more: 1 ulp
        torch.testing.assert_close(state[key], value, atol=1e-6, rtol=1e-6, msg=key)


def test_a_lora_customization_starts_from_v_before_its_adapter(tiny_dir, original, tmp_path):
    """M1 = V's T2I + LoRA: the T2I the LoRA was made for is SD1.5, not SD1.5 + the domain adapter."""
    from test_formats import _write_layout, lora_unet

    parts = {"pipe": load_t2v(tiny_dir)}
    path = _write_layout("diffusers", lora_unet(parts, 2.0), 2.0, tmp_path)
    adapted = load_t2v(tiny_dir, domain_adapter=str(original))
    key = next(k for k in adapted.unet.state_dict() if k.endswith("attn1.to_q.weight") and "motion" not in k)
    assert not torch.equal(t2i_unet_from_t2v(adapted.unet).state_dict()[key], parts["pipe"].unet.state_dict()[key])
    expected = load_customized(parts["pipe"], loras=[(str(path), 0.5)]).unet.state_dict()
    for key, value in load_customized(adapted, loras=[(str(path), 0.5)]).unet.state_dict().items():
        assert torch.equal(value, expected[key]), key


def test_delta_injection_keeps_the_domain_adapter_on_the_customized_t2i(tiny_dir, layers, original, tmp_path):
    """AnimateDiff v3 with its domain adapter and `--base-t2i SD1.5`: V + (M1 - M) is M1 with the adapter's change,
    W_M1 + up @ down on the adapted layers and M1 exactly everywhere else; naive injection drops the adapter."""
    from conftest import save_customized_unet

    from stillmoving.injection import spatial_state_dict
    from stillmoving.loading import assemble_pipeline

    m1 = save_customized_unet(tiny_dir, tmp_path / "m1")
    t2i_unet_from_t2v(load_t2v(tiny_dir).unet).save_pretrained(tmp_path / "m")
    customized = load_customized(load_t2v(tiny_dir), str(m1)).unet.state_dict()
    common = dict(domain_adapter=str(original), customized=str(m1))
    delta = spatial_state_dict(assemble_pipeline(str(tiny_dir), base_t2i=str(tmp_path / "m"), **common).unet)
    naive = spatial_state_dict(assemble_pipeline(str(tiny_dir), **common).unet)
    adapted = {f"{module}.weight" for module in layers}
    for key, value in customized.items():
        assert torch.equal(naive[key], value), key
        if key in adapted:
            down, up = layers[key.removesuffix(".weight")]
            torch.testing.assert_close(delta[key], value + up @ down, atol=1e-6, rtol=1e-6, msg=key)
        else:
            assert torch.equal(delta[key], value), key
    assert adapted and all(not torch.equal(delta[k], naive[k]) for k in adapted)


def test_parse_domain_adapter():
    assert parse_domain_adapter("a/v3.ckpt").scale == 1.0
    assert parse_domain_adapter("a/v3.ckpt:0.5") == parse_domain_adapter({"path": "a/v3.ckpt", "scale": 0.5})
    assert parse_domain_adapter(None) is None


SIZE = ["--num-frames", "4", "--height", "32", "--width", "32"]
TRAIN = [*SIZE, "--steps", "2", "--sample-steps", "1"]


def test_customize_and_generate_rebuild_v_from_customization_json(
    tiny_dir, original, stage2_inputs, tmp_path, capsys, monkeypatch
):
    code, _, err = run(
        capsys,
        monkeypatch,
        "motion-adapter",
        "train",
        "--model",
        tiny_dir,
        "-o",
        tmp_path / "motion",
        "--domain-adapter",
        f"{original}:0.8",
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
        "--model",
        tiny_dir,
        "-o",
        tmp_path / "run",
        "--domain-adapter",
        f"{original}:0.8",
        "--motion-adapter",
        tmp_path / "motion/motion_adapter",
        "--customized",
        stage2_inputs["customized"],
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
        "--num-validation-videos",
        "0",
        *TRAIN,
    )
    assert code == 0, err
    record = json.loads((tmp_path / "run/customization.json").read_text())["domain_adapter"]
    assert record["path"] == str(original.resolve()) and record["scale"] == 0.8 and len(record["fingerprint"]) == 16

    from stillmoving.loading import assemble_pipeline
    from stillmoving.run_folder import model_files, read_customization

    rebuilt = assemble_pipeline(**model_files(read_customization(tmp_path / "run")))
    assert rebuilt.domain_adapter.record == record
    gen = ["generate", "--customization", tmp_path / "run", "--prompt", "a sks dog", *SIZE, "--steps", "1"]
    code, _, err = run(capsys, monkeypatch, *gen, "-o", tmp_path / "a.gif")
    assert code == 0 and (tmp_path / "a.gif").is_file(), err
    torch.save({"state_dict": {k: v * 2 for k, v in torch.load(original)["state_dict"].items()}}, original)
    try:
        code, _, err = run(capsys, monkeypatch, *gen, "-o", tmp_path / "b.gif")
        assert code == 2 and "changed since it was recorded" in err and not (tmp_path / "b.gif").exists(), err
    finally:
        torch.save({"state_dict": original_layout(adapter_layers(load_t2v(tiny_dir)))}, original)


def _motion_lora(layers, tmp):
    state = {
        "down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.0.processor"
        ".to_q_lora.down.weight": torch.zeros(2, 32),
        "down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.0.processor"
        ".to_q_lora.up.weight": torch.zeros(32, 2),
    }
    torch.save(state, tmp / "mm_lora.ckpt")
    return tmp / "mm_lora.ckpt"


def _checkpoint(layers, tmp):
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(32, 4, 3, 3)}, tmp / "sd.safetensors")
    return tmp / "sd.safetensors"


def _motion_modules(layers, tmp):
    save_file(
        {
            "down_blocks.0.motion_modules.0.temporal_transformer.attention_blocks.0.pos_encoder.pe": torch.zeros(
                1, 32, 32
            )
        },
        tmp / "mm.safetensors",
    )
    return tmp / "mm.safetensors"


def _renamed(layers, tmp):
    """An SD1.5 layer name the tiny V lacks (its third down block)."""
    moved = {m.replace("down_blocks.0.", "down_blocks.3.", 1): t for m, t in layers.items()}
    return write("diffusers", moved, tmp)


def _wider(layers, tmp):
    """SDXL-like widths: a cross-attention key projection of 2048 inputs."""
    module = next(m for m in layers if m.endswith("attn2.to_k"))
    return write("diffusers", {**layers, module: (torch.zeros(RANK, 2048), layers[module][1])}, tmp)


def _text_encoder(layers, tmp):
    state = {
        **diffusers_layout(layers),
        "text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_A.weight": torch.zeros(2, 32),
        "text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_B.weight": torch.zeros(32, 2),
    }
    save_file(state, tmp / "te.safetensors")
    return tmp / "te.safetensors"


BAD = [  # (id, --domain-adapter value, file maker, expected message)
    ("missing", "{tmp}/none.ckpt", None, "no such domain adapter file"),
    ("bad-scale", "{f}:strong", "original", "SCALE must be a number"),
    ("nan-scale", "{f}:nan", "original", "SCALE must be a finite number"),
    ("motion-lora", "{f}", _motion_lora, "is a motion LoRA"),
    ("full-checkpoint", "{f}", _checkpoint, "a full Stable Diffusion checkpoint"),
    ("motion-modules", "{f}", _motion_modules, "AnimateDiff motion modules"),
    ("text-encoder-lora", "{f}", _text_encoder, "has text-encoder layers"),
    ("layer-v-lacks", "{f}", _renamed, "names no linear layer of V's UNet"),
    ("other-widths", "{f}", _wider, "(2, 2048)"),
]


@pytest.mark.parametrize("spec,make,message", [row[1:] for row in BAD], ids=[row[0] for row in BAD])
def test_bad_domain_adapters_are_one_line_exit_2(
    tiny_dir, layers, original, tmp_path, capsys, monkeypatch, spec, make, message
):
    made = original if make == "original" else make(layers, tmp_path) if make else None
    out = tmp_path / "v.gif"
    value = spec.format(tmp=tmp_path, f=made)
    code, _, err = run(
        capsys,
        monkeypatch,
        "generate",
        "--model",
        tiny_dir,
        "--domain-adapter",
        value,
        "--prompt",
        "x",
        "-o",
        out,
        *SIZE,
        "--steps",
        "1",
    )
    (line,) = [line for line in err.splitlines() if "error:" in line]
    assert code == 2 and message in line, err
    assert not out.exists()


def test_training_refuses_a_bad_domain_adapter_before_loading(tiny_dir, original, tmp_path, capsys, monkeypatch):
    import stillmoving.loading

    monkeypatch.setattr(stillmoving.loading, "_load_t2v", lambda *a: pytest.fail("a model loaded"))
    code, _, err = run(
        capsys,
        monkeypatch,
        "customize",
        "--model",
        tiny_dir,
        "-o",
        tmp_path / "run",
        "--motion-adapter",
        "x",
        "--domain-adapter",
        f"{original}:x",
        "--prompt",
        "a sks dog",
        *TRAIN,
    )
    assert code == 2 and "SCALE must be a number" in err and len(err.strip().splitlines()) == 1, err


def test_info_names_the_domain_adapter(original, capsys, monkeypatch):
    code, out, err = run(capsys, monkeypatch, "info", original)
    assert code == 0 and "AnimateDiff v3 domain adapter (spatial LoRA, rank 2, 32 layers)" in " ".join(out.split()), out
