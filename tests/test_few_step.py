"""Few-step motion modules (AnimateLCM, AnimateDiff-Lightning) on the tiny V: the schedulers `--scheduler lcm|lightning`
names (diffusers' recipes: linear betas, trailing timesteps), an LCM-style spatial LoRA (`--lcm-lora`, made here in
diffusers' layout, attention and convolution layers) fused exactly as diffusers' `load_lora_weights` + `fuse_lora`
fuse it, into V and into M1, a Lightning-style motion-module file (diffusers' MotionAdapter layout) loaded as
`--motion-modules`, the recorded setting and its round trip, the mismatch refused in one exact line, and both stages
and generation through the CLI offline."""

import json
import re

import pytest
import torch
from conftest import generate, tiny_customize
from diffusers import (
    AnimateDiffPipeline,
    EulerDiscreteScheduler,
    LCMScheduler,
    MotionAdapter,
    StableDiffusionPipeline,
)
from safetensors.torch import save_file
from test_cli import run

from stillmoving.errors import StillMovingError
from stillmoving.few_step import (
    LCMLoRA,
    Sampler,
    check_same_sampler,
    parse_sampler,
    scheduler_from,
    with_fingerprint,
)
from stillmoving.injection import t2i_unet_from_t2v
from stillmoving.loading import load_customized, load_t2v
from stillmoving.training.setup import training_scheduler

SPATIAL = re.compile(
    r".*(attentions\.\d+\.transformer_blocks\.\d+\.attn[12]\.(to_q|to_k|to_v|to_out\.0)|resnets\.\d+\.conv[12])"
)
RANK = 2


def lcm_layers(pipe, seed: int = 0) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """module -> (lora_A, lora_B): a seeded rank-2 LoRA on V's spatial attention projections and ResNet convolutions,
    as AnimateLCM's spatial LoRA (never the motion modules)."""
    gen = torch.Generator().manual_seed(seed)
    layers = {}
    for name, module in pipe.unet.named_modules():
        if not SPATIAL.fullmatch(name) or "motion_modules" in name:
            continue
        if isinstance(module, torch.nn.Conv2d):
            down = torch.randn(RANK, module.in_channels, *module.kernel_size, generator=gen) * 0.05
            up = torch.randn(module.out_channels, RANK, 1, 1, generator=gen) * 0.05
        else:
            down = torch.randn(RANK, module.in_features, generator=gen) * 0.2
            up = torch.randn(module.out_features, RANK, generator=gen) * 0.2
        layers[name] = (down, up)
    return layers


def diffusers_layout(layers) -> dict:
    return {
        f"unet.{m}.lora_{ab}.weight": t.contiguous() for m, (d, u) in layers.items() for ab, t in (("A", d), ("B", u))
    }


@pytest.fixture(scope="module")
def layers(tiny_dir):
    return lcm_layers(load_t2v(tiny_dir))


@pytest.fixture(scope="module")
def lcm_file(layers, tmp_path_factory):
    path = tmp_path_factory.mktemp("lcm") / "AnimateLCM_sd15_t2v_lora.safetensors"
    save_file(diffusers_layout(layers), path)
    return path


def reference(tiny_dir, layers, weight: float) -> AnimateDiffPipeline:
    """diffusers' own way (its AnimateLCM docs): LCMScheduler on linear betas, the LoRA loaded and fused."""
    pipe = AnimateDiffPipeline.from_pretrained(tiny_dir)
    pipe.scheduler = LCMScheduler.from_config(pipe.scheduler.config, beta_schedule="linear")
    pipe.load_lora_weights(diffusers_layout(layers), adapter_name="lcm-lora")
    pipe.fuse_lora(lora_scale=weight)
    pipe.unload_lora_weights()
    return pipe


def test_presets_are_the_schedulers_diffusers_documents(tiny_dir):
    own = AnimateDiffPipeline.from_pretrained(tiny_dir).scheduler.config
    lcm = load_t2v(tiny_dir, sampler=Sampler("lcm")).scheduler
    assert type(lcm) is LCMScheduler and lcm.config.beta_schedule == "linear"
    assert dict(lcm.config) == dict(LCMScheduler.from_config(own, beta_schedule="linear").config)
    lightning = load_t2v(tiny_dir, sampler=Sampler("lightning"))
    scheduler = lightning.scheduler
    assert type(scheduler) is EulerDiscreteScheduler
    assert (scheduler.config.timestep_spacing, scheduler.config.beta_schedule) == ("trailing", "linear")
    assert (scheduler.config.beta_start, scheduler.config.beta_end) == (own.beta_start, own.beta_end)
    scheduler.set_timesteps(4)
    assert scheduler.timesteps[0] == 999  # trailing: the first of 4 steps starts from pure noise
    noise = training_scheduler(lightning)  # the training noise follows the same linear betas
    torch.testing.assert_close(noise.betas, torch.linspace(own.beta_start, own.beta_end, 1000), rtol=0, atol=0)
    assert type(scheduler_from("DDIMScheduler", own)).__name__ == "DDIMScheduler"
    with pytest.raises(StillMovingError, match="unknown scheduler 'turbo' \\(lcm, lightning, or a diffusers class"):
        scheduler_from("turbo", own)


def test_lcm_lora_fuses_exactly_as_diffusers_fuses_it(tiny_dir, layers, lcm_file):
    fused = load_t2v(tiny_dir, sampler=Sampler("lcm", LCMLoRA(str(lcm_file), 0.8)))
    expected = reference(tiny_dir, layers, 0.8)
    plain = load_t2v(tiny_dir).unet.state_dict()
    state = fused.unet.state_dict()
    for key, value in expected.unet.state_dict().items():
        assert torch.equal(state[key], value), key
    assert any("conv1" in m for m in layers) and all(
        not torch.equal(state[f"{m}.weight"], plain[f"{m}.weight"]) for m in layers
    )
    fused.set_progress_bar_config(disable=True)
    expected.set_progress_bar_config(disable=True)
    assert torch.equal(generate(fused, guidance_scale=1.5), generate(expected, guidance_scale=1.5))


def test_m1_gets_the_lcm_lora_on_top_of_its_own_loras(tiny_dir, layers, lcm_file, tmp_path):
    """A LoRA customization starts from V's T2I before the LCM LoRA, then the LCM LoRA plugs in on top (as AnimateLCM
    does into personalized T2Is): equal to diffusers fusing both into the plain T2I."""
    from test_formats import _write_layout, lora_unet

    parts = {"pipe": load_t2v(tiny_dir)}
    style = _write_layout("diffusers", lora_unet(parts, 2.0), 2.0, tmp_path)
    v = load_t2v(tiny_dir, sampler=Sampler("lcm", LCMLoRA(str(lcm_file), 0.8)))
    m1 = load_customized(v, loras=[(str(style), 0.5)]).unet.state_dict()
    plain = load_customized(load_t2v(tiny_dir), loras=[(str(style), 0.5)])
    t2i = StableDiffusionPipeline(
        vae=v.vae,
        text_encoder=v.text_encoder,
        tokenizer=v.tokenizer,
        unet=plain.unet,
        scheduler=v.scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    t2i.load_lora_weights(diffusers_layout(layers), adapter_name="lcm-lora")
    t2i.fuse_lora(components=["unet"], lora_scale=0.8)
    t2i.unload_lora_weights()
    for key, value in t2i.unet.state_dict().items():
        assert torch.equal(m1[key], value), key


def test_a_lightning_motion_module_file_loads_as_diffusers_loads_it(tiny_dir, tmp_path):
    """AnimateDiff-Lightning's `*_diffusers.safetensors` is a MotionAdapter state dict: `--motion-modules FILE`."""
    pipe = load_t2v(tiny_dir)
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
    sd.save_pretrained(tmp_path / "sd")
    pipe.unet.save_motion_modules(str(tmp_path / "sd" / "motion_adapter"))
    adapter = MotionAdapter.from_pretrained(tmp_path / "sd" / "motion_adapter")
    with torch.no_grad():
        for p in adapter.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(1)) * 0.05)
    file = tmp_path / "animatediff_lightning_4step_diffusers.safetensors"
    save_file({k: v.contiguous() for k, v in adapter.state_dict().items()}, file)
    loaded = load_t2v(tmp_path / "sd", file, config_dir=tmp_path / "sd", sampler=Sampler("lightning"))
    expected = AnimateDiffPipeline.from_pretrained(tmp_path / "sd", motion_adapter=adapter)  # the model card's way
    expected.scheduler = EulerDiscreteScheduler.from_config(
        expected.scheduler.config, timestep_spacing="trailing", beta_schedule="linear"
    )
    for key, value in expected.unet.state_dict().items():
        assert torch.equal(loaded.unet.state_dict()[key], value), key
    for p in (loaded, expected):
        p.set_progress_bar_config(disable=True)
    assert torch.equal(generate(loaded, guidance_scale=1.0), generate(expected, guidance_scale=1.0))


def test_the_record_round_trips(lcm_file):
    from stillmoving.run_folder import customization_sources, exported_customization, model_files
    from stillmoving.training.config import CustomizeConfig

    cfg = CustomizeConfig(
        model="m",
        output="o",
        scheduler="lcm",
        lcm_lora=f"{lcm_file}:0.8",
        sample_steps=4,
        guidance_scale=1.5,
    )
    record = customization_sources(cfg)["sampler"]
    assert record["scheduler"] == "lcm" and (record["steps"], record["guidance_scale"]) == (4, 1.5)
    assert record["lcm_lora"]["path"] == str(lcm_file.resolve()) and record["lcm_lora"]["weight"] == 0.8
    assert len(record["lcm_lora"]["fingerprint"]) == 16
    assert parse_sampler(json.loads(json.dumps(record))).record() == record
    assert model_files({"sampler": record})["sampler"] == record
    exported = exported_customization({"sampler": record}, motion_adapter=True)["sampler"]
    assert exported["lcm_lora"] == {**record["lcm_lora"], "path": None, "fused": True}
    plain = customization_sources(CustomizeConfig(model="m", output="o"))["sampler"]  # recorded even when default
    assert plain == {"scheduler": None, "lcm_lora": None, "steps": 25, "guidance_scale": 7.5}


def test_a_mismatch_is_refused_in_one_exact_line(lcm_file):
    recorded = with_fingerprint(Sampler("lightning", None, 4, 1.0))
    check_same_sampler(recorded, Sampler("lightning", None, 4, 1.0), "customization runs/x", "generate")
    check_same_sampler(Sampler(), Sampler("DPMSolverMultistepScheduler", None, 25, 7.5), "it", "generate")  # full
    with pytest.raises(StillMovingError) as error:
        check_same_sampler(recorded, Sampler("lightning", None, 8, 1.0), "customization runs/x", "generate")
    assert str(error.value) == (
        "customization runs/x was trained with scheduler lightning, no LCM LoRA, 4 steps, guidance 1; generate "
        "would use scheduler lightning, no LCM LoRA, 8 steps, guidance 1. Use the recorded setting, or pass "
        "--allow-sampler-mismatch to use this one anyway"
    )
    check_same_sampler(recorded, Sampler("lightning", None, 8, 1.0), "x", "generate", allow=True)
    lcm = with_fingerprint(Sampler("lcm", LCMLoRA(str(lcm_file), 0.8), 4, 1.5))
    for other in (Sampler(None, None, 4, 1.5), with_fingerprint(Sampler("lcm", LCMLoRA(str(lcm_file), 1.0), 4, 1.5))):
        with pytest.raises(StillMovingError, match="--allow-sampler-mismatch"):
            check_same_sampler(lcm, other, "x", "generate")


SIZE = ["--num-frames", "4", "--height", "32", "--width", "32"]


def test_both_stages_and_generate_through_the_cli_with_animatelcm(
    tiny_dir, lcm_file, stage2_inputs, tmp_path, capsys, monkeypatch
):
    lcm = ["--scheduler", "lcm", "--lcm-lora", f"{lcm_file}:0.8", "--sample-steps", "2", "--guidance-scale", "1.5"]
    code, _, err = run(
        capsys,
        monkeypatch,
        "motion-adapter",
        "train",
        "--model",
        tiny_dir,
        "-o",
        tmp_path / "motion",
        *lcm,
        "--sample-prompt",
        "a red circle",
        "--num-sampled-videos",
        "1",
        "--rank",
        "2",
        *SIZE,
        "--steps",
        "2",
    )
    assert code == 0, err
    recorded = json.loads((tmp_path / "motion/motion_adapter_run.json").read_text())["sampler"]
    assert recorded["scheduler"] == "lcm" and recorded["steps"] == 2 and recorded["lcm_lora"]["weight"] == 0.8
    customize = [
        "customize",
        "--model",
        tiny_dir,
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
        *SIZE,
        "--steps",
        "2",
    ]
    code, _, err = run(capsys, monkeypatch, *customize, "-o", tmp_path / "wrong", "--sample-steps", "2")
    (line,) = [line for line in err.splitlines() if "error:" in line]
    assert code == 2 and "was trained with scheduler lcm" in line and "would use the model's own scheduler" in line
    assert "--allow-sampler-mismatch" in line and not (tmp_path / "wrong").exists()
    code, _, err = run(capsys, monkeypatch, *customize, "-o", tmp_path / "run", *lcm)
    assert code == 0, err
    assert json.loads((tmp_path / "run/customization.json").read_text())["sampler"] == recorded

    seen = {}
    import stillmoving.inference

    real = stillmoving.inference.generate_videos

    def spy(pipe, *args, **kwargs):
        seen.update(scheduler=type(pipe.scheduler).__name__, steps=kwargs["steps"], guidance=kwargs["guidance_scale"])
        return real(pipe, *args, **kwargs)

    monkeypatch.setattr(stillmoving.inference, "generate_videos", spy)
    gen = ["generate", "--customization", tmp_path / "run", "--prompt", "a sks dog", *SIZE]
    code, _, err = run(capsys, monkeypatch, *gen, "-o", tmp_path / "a.gif")
    assert code == 0 and (tmp_path / "a.gif").is_file(), err
    assert seen == {"scheduler": "LCMScheduler", "steps": 2, "guidance": 1.5}  # the recorded setting
    code, _, err = run(capsys, monkeypatch, *gen, "--steps", "25", "-o", tmp_path / "b.gif")
    (line,) = [line for line in err.splitlines() if "error:" in line]
    assert code == 2 and "2 steps, guidance 1.5; generate would use scheduler lcm" in line and "25 steps" in line
    assert not (tmp_path / "b.gif").exists()
    code, _, err = run(capsys, monkeypatch, *gen, "--steps", "3", "--allow-sampler-mismatch", "-o", tmp_path / "c.gif")
    assert code == 0 and seen["steps"] == 3, err

    code, _, err = run(capsys, monkeypatch, "export", tmp_path / "run", "-o", tmp_path / "exported")
    assert code == 0, err
    assert json.loads((tmp_path / "exported/scheduler/scheduler_config.json").read_text())["_class_name"] == (
        "LCMScheduler"
    )
    code, _, err = run(
        capsys,
        monkeypatch,
        "generate",
        "--customization",
        tmp_path / "exported",
        "--prompt",
        "x",
        *SIZE,
        "-o",
        tmp_path / "d.gif",
    )
    assert code == 0 and seen == {"scheduler": "LCMScheduler", "steps": 2, "guidance": 1.5}, err
    code, out, err = run(capsys, monkeypatch, "info", tmp_path / "run/spatial_adapters.safetensors")
    assert code == 0 and re.search(r"sampler\s.*'scheduler': 'lcm'", out), out  # the record, in the file's metadata


def test_steps_and_guidance_customize_was_checked_at_are_generates_default_not_a_constraint(
    tiny_dir, stage2_inputs, tmp_path, capsys, monkeypatch
):
    import stillmoving.inference
    from stillmoving.training.spatial_stage import train_spatial_adapters

    train_spatial_adapters(tiny_customize(tiny_dir, stage2_inputs, tmp_path / "run", sample_steps=3, guidance_scale=4))
    record = json.loads((tmp_path / "run/customization.json").read_text())["sampler"]
    assert record == {"scheduler": None, "lcm_lora": None, "steps": 3, "guidance_scale": 4}
    seen = {}
    real = stillmoving.inference.generate_videos

    def spy(pipe, *args, **kwargs):
        seen.update(steps=kwargs["steps"], guidance=kwargs["guidance_scale"])
        return real(pipe, *args, **kwargs)

    monkeypatch.setattr(stillmoving.inference, "generate_videos", spy)
    gen = ["generate", "--customization", tmp_path / "run", "--prompt", "a sks dog", *SIZE]
    code, _, err = run(capsys, monkeypatch, *gen, "-o", tmp_path / "a.gif")
    assert code == 0 and seen == {"steps": 3, "guidance": 4}, err
    assert f"sampling: 3 steps, guidance 4 (recorded by {tmp_path / 'run'})" in " ".join(err.split())
    code, _, err = run(capsys, monkeypatch, *gen, "--steps", "2", "--guidance-scale", "1", "-o", tmp_path / "b.gif")
    assert code == 0 and seen == {"steps": 2, "guidance": 1}, err  # another full-step setting: taken, not refused
    assert "sampling:" not in err
    code, _, err = run(capsys, monkeypatch, *gen, "--steps", "2", "-o", tmp_path / "c.gif")
    assert code == 0 and seen == {"steps": 2, "guidance": 4}, err  # one given, the other recorded
    assert f"sampling: 2 steps, guidance 4 (--steps given, the other recorded by {tmp_path / 'run'})" in " ".join(
        err.split()
    )
    code, _, err = run(capsys, monkeypatch, "export", tmp_path / "run", "-o", tmp_path / "exported")
    assert code == 0, err
    card = (tmp_path / "exported/README.md").read_text()
    assert "`exported` was checked against naive injection at 3 steps and guidance 4;" in card
    assert json.loads((tmp_path / "exported/customization.json").read_text())["sampler"] == record


def test_a_video_model_s_own_sampling_is_every_verb_s_default(tiny_dir, stage2_inputs, tmp_path, capsys, monkeypatch):
    """A model folder's generation_defaults.json sets customize's --sample-steps/--guidance-scale and generate's
    --steps/--guidance-scale where neither is given nor recorded; customize records the setting it judged at, so a
    later change of the file does not change its videos; a record without one (before session 25) samples at the
    model's; export keeps the file with the weights."""
    import shutil

    import stillmoving.inference
    from stillmoving.training.spatial_stage import train_spatial_adapters

    model = tmp_path / "model"
    shutil.copytree(tiny_dir, model)
    own = {"num_frames": 4, "num_inference_steps": 3, "guidance_scale": 2.5}
    (model / "generation_defaults.json").write_text(json.dumps(own))
    cfg = tiny_customize(model, stage2_inputs, tmp_path / "run", sample_steps=None, guidance_scale=None)
    assert (cfg.sample_steps, cfg.guidance_scale) == (3, 2.5)
    train_spatial_adapters(cfg)
    record = json.loads((tmp_path / "run/customization.json").read_text())
    assert record["sampler"] == {"scheduler": None, "lcm_lora": None, "steps": 3, "guidance_scale": 2.5}
    seen = {}
    real = stillmoving.inference.generate_videos

    def spy(pipe, *args, **kwargs):
        seen.update(steps=kwargs["steps"], guidance=kwargs["guidance_scale"], frames=kwargs["num_frames"])
        return real(pipe, *args, **kwargs)

    monkeypatch.setattr(stillmoving.inference, "generate_videos", spy)
    small = ["--prompt", "a sks dog", "--height", "32", "--width", "32"]
    (model / "generation_defaults.json").write_text(json.dumps({**own, "num_inference_steps": 5}))  # changed later
    into = ["generate", "--customization", tmp_path / "run", *small]
    code, _, err = run(capsys, monkeypatch, *into, "-o", tmp_path / "a")
    assert code == 0 and seen == {"steps": 3, "guidance": 2.5, "frames": 4}, err  # the recorded setting
    assert f"sampling: 3 steps, guidance 2.5 (recorded by {tmp_path / 'run'})" in " ".join(err.split())
    (model / "generation_defaults.json").write_text(json.dumps(own))
    (tmp_path / "run/customization.json").write_text(json.dumps({k: v for k, v in record.items() if k != "sampler"}))
    code, _, err = run(capsys, monkeypatch, *into, "-o", tmp_path / "old")
    assert code == 0 and seen == {"steps": 3, "guidance": 2.5, "frames": 4}, err  # an old record: the model's own
    assert "sampling:" not in err
    code, _, err = run(capsys, monkeypatch, "generate", "--model", model, *small, "--steps", "2", "-o", tmp_path / "b")
    assert code == 0 and seen == {"steps": 2, "guidance": 2.5, "frames": 4}, err  # one given, the other the model's
    code, _, err = run(capsys, monkeypatch, "export", tmp_path / "run", "-o", tmp_path / "exported")
    assert code == 0, err
    assert json.loads((tmp_path / "exported/generation_defaults.json").read_text()) == own
    code, _, err = run(
        capsys, monkeypatch, "generate", "--customization", tmp_path / "exported", *small, "-o", tmp_path / "c"
    )
    assert code == 0 and seen == {"steps": 3, "guidance": 2.5, "frames": 4}, err


def test_bad_few_step_options_are_one_line_before_loading(tiny_dir, lcm_file, tmp_path, capsys, monkeypatch):
    import stillmoving.loading

    monkeypatch.setattr(stillmoving.loading, "_load_t2v", lambda *a: pytest.fail("a model loaded"))
    base = ["generate", "--model", tiny_dir, "--prompt", "x", "-o", tmp_path / "v.gif", *SIZE]
    for extra, message in (
        (["--scheduler", "turbo"], "unknown scheduler 'turbo'"),
        (["--lcm-lora", str(lcm_file)], "--lcm-lora is AnimateLCM's spatial LoRA: it samples with --scheduler lcm"),
        (["--scheduler", "lcm", "--lcm-lora", f"{lcm_file}:x"], "WEIGHT must be a number"),
        (["--scheduler", "lcm", "--lcm-lora", str(tmp_path / "none.safetensors")], "no such LCM LoRA file"),
    ):
        code, _, err = run(capsys, monkeypatch, *base, *extra)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, (extra, err)
