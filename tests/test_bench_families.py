"""Issue 17's families as bench presets at their real sizes, built on the meta device: their parameter counts are
the released models', `stillmoving bench --device meta` counts FLOPs without a GPU, and the pipelines `--device cuda`
times (random weights) fit together: text encoders, backend conditioning and UNet.

Known figures: SD1.5's UNet 859,520,964 and SDXL's 2,567,463,684 parameters (the released unet/ folders;
the SDXL report's "2.6B"); the motion modules' parameters times 4 bytes are the released fp32 files'
sizes (mm_sd_v15_v2.ckpt 1.82 GB, v3_sd15_mm.ckpt 1.67 GB, mm_sdxl_v10_beta.ckpt 950 MB); ModelScope's UNet in
fp16 is text-to-video-ms-1.7b's 2.82 GB unet file, and the ModelScope report gives "0.5 billion parameters dedicated
to temporal capabilities" (of 1.7B with the text encoder and the VAE)."""

import json
import tempfile

import pytest
import torch
from test_cli import run

from stillmoving.bench.cost import TEMPORAL, model_cost
from stillmoving.bench.measure import count_flops
from stillmoving.bench.models import BUILDERS, IMAGE_PROMPT, PRESETS, meta_batch, video_unet
from stillmoving.bench.steps import Rig, floor_step, text_rows


def counts(model: str) -> tuple[int, int]:
    with torch.device("meta"):
        unet = video_unet(model)
    named = dict(unet.named_parameters())
    temporal = sum(p.numel() for k, p in named.items() if any(t in k for t in TEMPORAL))
    return sum(p.numel() for p in named.values()) - temporal, temporal


@pytest.mark.parametrize(
    "model,spatial,temporal_bytes",
    [
        ("sd15", 859_520_964, 1.82e9),  # mm_sd_v15_v2
        ("sd15-v3", 859_520_964, 1.67e9),  # v3_sd15_mm: v2 without the mid block
        ("sdxl", 2_567_463_684, 0.95e9),  # mm_sdxl_v10_beta
    ],
)
def test_animatediff_presets_have_the_released_parameter_counts(model, spatial, temporal_bytes):
    got_spatial, got_temporal = counts(model)
    assert got_spatial == spatial
    assert abs(4 * got_temporal / temporal_bytes - 1) < 0.01, got_temporal


def test_modelscope_preset_has_the_released_unet_size():
    spatial, temporal = counts("modelscope")
    assert abs(2 * (spatial + temporal) / 2.82e9 - 1) < 0.01  # the fp16 unet file
    assert 0.45e9 < temporal < 0.55e9  # "0.5 billion parameters dedicated to temporal capabilities"


def test_bench_on_meta_counts_flops_without_a_gpu(tmp_path, capsys, monkeypatch):
    out = tmp_path / "cost.json"
    code, stdout, err = run(capsys, monkeypatch, "bench", "--preset", "modelscope-256", "--device", "meta", "-o", out)
    assert code == 0, err
    (result,) = json.loads(out.read_text())
    assert result["unet_parameters"] == sum(counts("modelscope")) and "1,411,233,860" in stdout
    assert 9e12 < result["generation_flops"] < 11e12  # 9.77 TFLOP: 2 x 16 frames at 256 px
    assert result["floor_flops"] > result["generation_flops"] / 2  # batch 1 forward + input-gradient backward


def test_zeroscope_576w_preset_counts_its_own_frames_and_size(tmp_path, capsys, monkeypatch):
    """zeroscope_v2_576w: ModelScope's UNet at 24 frames of 576x320 (not square): the same parameters, the FLOPs of
    its own latents (24 x 40 x 72)."""
    out = tmp_path / "cost.json"
    code, stdout, err = run(capsys, monkeypatch, "bench", "--preset", "zeroscope-576w", "--device", "meta", "-o", out)
    assert code == 0, err
    (result,) = json.loads(out.read_text())
    assert (result["num_frames"], result["width"], result["resolution"]) == (24, 576, 320)
    assert result["unet_parameters"] == sum(counts("modelscope")) and "24 x 576x320" in stdout
    assert 40e12 < result["generation_flops"] < 45e12  # 42.79 TFLOP


def test_bench_on_meta_refuses_the_cpu_presets(tmp_path, capsys, monkeypatch):
    code, _, err = run(capsys, monkeypatch, "bench", "--preset", "tiny", "--device", "meta")
    assert code == 2 and "benchmarked on the CPU" in err


# The released models' VAE and text encoders: SD's VAE (SDXL's has SD's shapes), CLIP ViT-L and OpenCLIP ViT-bigG
# with its projection (SDXL), OpenCLIP ViT-H's text tower (ModelScope/ZeroScope, as SD2.x).
RELEASED = {
    "animatediff-sdxl-1024": {"vae": 83_653_863, "text_encoder": 123_060_480, "text_encoder_2": 694_659_840},
    "zeroscope-576w": {"vae": 83_653_863, "text_encoder": 340_387_840},
}


@pytest.mark.parametrize("name", RELEASED)
def test_real_size_pipelines_fit_together_on_the_meta_device(name):
    """What `stillmoving bench --device cuda` builds for a real-size preset, built on the meta device: the VAE and
    text encoders have the released models' parameters, the UNet is the one `--device meta` counts, and the floor
    step, conditioned through the family's backend on the text its encoders give, counts exactly the FLOPs
    `--device meta` reports (SDXL: the pooled text and time ids fit the UNet's added embedding)."""
    preset = PRESETS[name]
    with tempfile.TemporaryDirectory() as folder, torch.device("meta"):
        pipe = BUILDERS[preset.model](preset, folder, 0)
        with torch.no_grad():
            text = text_rows(pipe, [IMAGE_PROMPT])  # (1, seq (+ pooled rows), dim)
    parameters = {key: sum(p.numel() for p in getattr(pipe, key).parameters()) for key in RELEASED[name]}
    assert parameters == RELEASED[name]
    assert sum(p.numel() for p in pipe.unet.parameters()) == sum(counts(preset.model))
    rig = Rig(pipe, meta_batch(pipe, preset, text), preset.num_frames, torch.float32, gradient_checkpointing=False)
    rig.enter_floor()
    assert count_flops(floor_step(rig)) == model_cost(name).floor_flops
