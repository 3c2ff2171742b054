"""`stillmoving eval` with tiny random CLIP and DINO models: the metrics' defining properties, through the CLI."""

import json

import numpy as np
import pytest
import torch
from evaluation_models import save_tiny_clip, save_tiny_dino
from test_cli import run
from transformers import CLIPModel, CLIPProcessor

from stillmoving.data.video_io import write_image, write_video
from stillmoving.evaluation.dynamic_degree import dynamic_degree, top_flow_magnitude, vbench_rule
from stillmoving.world.synthetic import make_video_dataset

PROMPT = "a red circle moving left on a gray background"


@pytest.fixture(scope="module")
def backbones(tmp_path_factory):
    root = tmp_path_factory.mktemp("backbones")
    return save_tiny_clip(root), save_tiny_dino(root)


def textured(seed: int, side: int = 64) -> np.ndarray:
    """A smooth random image (blurred noise): texture optical flow can follow."""
    import cv2

    blurred = cv2.GaussianBlur(
        np.random.default_rng(seed).uniform(0, 255, (side, side, 3)).astype(np.float32), (0, 0), 2
    )
    return np.clip(128 + 60 * (blurred - blurred.mean()) / blurred.std(), 0, 255).astype(np.uint8)


def moving(image: np.ndarray, num_frames: int, step: int) -> np.ndarray:
    """(F, H, W, 3): the image rolled by `step` px per frame along x."""
    return np.stack([np.roll(image, step * t, axis=1) for t in range(num_frames)])


def videos_folder(root, videos: dict[str, np.ndarray], captions: dict[str, str] | None = None):
    """Frame folders (lossless) with a metadata.jsonl."""
    root.mkdir(parents=True, exist_ok=True)
    for name, frames in videos.items():
        write_video(frames, root / name)
    lines = [json.dumps({"file_name": n, "text": (captions or {}).get(n, PROMPT)}) for n in videos]
    (root / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return root


def evaluate(capsys, monkeypatch, folder, *args) -> dict:
    out = folder.parent / f"{folder.name}.json"
    code, _, err = run(capsys, monkeypatch, "eval", folder, "--device", "cpu", "-o", out, *args)
    assert code == 0, err
    return json.loads(out.read_text())["per_video"]


def test_repeated_frame_is_consistent_and_static_and_shuffling_lowers_consistency(
    backbones, tmp_path, capsys, monkeypatch
):
    clip, _ = backbones
    frame, walk = textured(0), moving(textured(1), 8, 2)
    shuffled = walk[np.random.default_rng(0).permutation(8)]
    noise = np.random.default_rng(2).integers(0, 256, (8, 64, 64, 3), dtype=np.uint8)
    folder = videos_folder(
        tmp_path / "v", {"still": np.repeat(frame[None], 8, axis=0), "walk": walk, "shuffled": shuffled, "noise": noise}
    )
    result = evaluate(capsys, monkeypatch, folder, "--clip-model", clip)
    assert result["still"]["temporal_consistency"] == pytest.approx(1.0, abs=1e-6)
    assert (result["still"]["dynamic_degree"], result["still"]["flow_magnitude"]) == (0.0, 0.0)
    assert result["walk"]["dynamic_degree"] == 1.0  # 2 px per frame at 64 px: above VBench's 1.5 px
    assert result["shuffled"]["temporal_consistency"] < result["walk"]["temporal_consistency"]
    assert result["noise"]["temporal_consistency"] < result["walk"]["temporal_consistency"] < 1.0


def test_frames_identical_to_the_references_score_1_and_noise_lower(backbones, tmp_path, capsys, monkeypatch):
    clip, dino = backbones
    reference = textured(3)
    write_image(reference, tmp_path / "refs" / "subject.png")
    noise = np.random.default_rng(4).integers(0, 256, (4, 64, 64, 3), dtype=np.uint8)
    folder = videos_folder(tmp_path / "v", {"same": np.repeat(reference[None], 4, axis=0), "noise": noise})
    result = evaluate(
        capsys, monkeypatch, folder, "--clip-model", clip, "--dino-model", dino, "--reference-images", tmp_path / "refs"
    )
    for key in ("clip_i", "dino_i"):
        assert result["same"][key] == pytest.approx(1.0, abs=1e-5)
        assert result["noise"][key] < result["same"][key] - 1e-3
    own = evaluate(
        capsys,
        monkeypatch,
        folder,
        "--dino-model",
        dino,
        "--reference-images",
        tmp_path / "refs",
        "--dino-preprocess",
        "processor",
    )  # the DINO folder's own resize: the same properties
    assert own["same"]["dino_i"] == pytest.approx(1.0, abs=1e-5) and own["noise"]["dino_i"] < 1.0 - 1e-3


def test_clip_t_equals_a_direct_computation_with_the_same_model(backbones, tmp_path, capsys, monkeypatch):
    clip, _ = backbones
    video = moving(textured(5), 4, 2)
    folder = videos_folder(tmp_path / "v", {"walk": video}, {"walk": "a blue square moving right"})
    result = evaluate(capsys, monkeypatch, folder, "--clip-model", clip)
    model, processor = CLIPModel.from_pretrained(clip).eval(), CLIPProcessor.from_pretrained(clip)
    with torch.no_grad():
        text = model.get_text_features(**processor(text=["a blue square moving right"], return_tensors="pt"))
        image = model.get_image_features(**processor(images=list(video), return_tensors="pt"))
    text, image = (getattr(x, "pooler_output", x) for x in (text, image))
    expected = torch.cosine_similarity(text, image).mean().item()
    assert result["walk"]["clip_t"] == pytest.approx(expected, abs=1e-5)


def test_world_videos_also_get_the_oracle_metrics(tmp_path, capsys, monkeypatch):
    samples = make_video_dataset(2, 0)
    folder = videos_folder(
        tmp_path / "v",
        {f"w{i}": s.pixels for i, s in enumerate(samples)},
        {f"w{i}": s.caption for i, s in enumerate(samples)},
    )
    result = evaluate(capsys, monkeypatch, folder)
    assert all({"speed", "consistency", "dynamic_degree"} <= set(r) for r in result.values())
    assert not any("clip_t" in r for r in result.values())  # no CLIP model, no CLIP metric


def test_vbench_rule_and_score():
    flow = np.zeros((100, 100, 2), np.float32)
    flow[:5, :, 0] = 3.0  # 500 pixels = the top 5% move 3 px
    assert top_flow_magnitude(flow) == 3.0
    assert vbench_rule(16, 256, 8.0) == (6.0, 4) and vbench_rule(8, 512, 8.0) == (12.0, 2)
    assert vbench_rule(16, 256, 4.0) == (12.0, 4)  # 4 fps: pairs are 1/4 s apart, the threshold doubles
    assert vbench_rule(2, 256, 8.0)[1] == 1  # VBench's round(0.5) = 0 would call every 2-frame video dynamic
    video = moving(textured(6), 16, 1)  # 1 px per frame at 64 px: below the 1.5 px threshold
    assert dynamic_degree(video)["dynamic_degree"] == 0.0 and dynamic_degree(video[::2], fps=4)["dynamic_degree"] == 0.0
    assert dynamic_degree(video, fps=16)["flow_magnitude"] == pytest.approx(2.0, rel=0.15)  # every 2nd frame


EVAL_BAD_INPUTS = [  # (id, arguments after `eval FOLDER`, expected message); one line, exit 2, before any load
    ("no-such-folder", "missing", [], "error: {tmp}/missing: no such folder"),
    ("no-videos", "empty", [], "error: no videos found in {tmp}/empty"),
    ("clip-is-dino", "videos", ["--clip-model", "{dino}"], "expected model_type clip"),
    (
        "dino-is-clip",
        "videos",
        ["--dino-model", "{clip}"],
        "error: --dino-model {clip}: is a 'clip' model; expected model_type vit or dinov2",
    ),
    ("missing-clip", "videos", ["--clip-model", "{tmp}/nothing"], "error: no such model folder: {tmp}/nothing"),
    (
        "references-without-backbone",
        "videos",
        ["--reference-images", "{tmp}/videos"],
        "error: --reference-images needs --clip-model or --dino-model",
    ),
    (
        "references-empty",
        "videos",
        ["--clip-model", "{clip}", "--reference-images", "{tmp}/empty"],
        "error: no images found in {tmp}/empty",
    ),
    ("zero-fps", "videos", ["--fps", "0"], "error: --fps must be above 0, not 0.0"),
    ("unknown-flow", "videos", ["--flow", "raft"], "error: --flow must be one of farneback, dis, not 'raft'"),
    ("unknown-target", "videos", ["--target", "moon"], "error: --target must be one of star, crayon, neon"),
    ("cuda-missing", "videos", ["--device", "cuda"], "error: --device cuda: CUDA is not available"),
]


@pytest.mark.parametrize("folder,args,message", [r[1:] for r in EVAL_BAD_INPUTS], ids=[r[0] for r in EVAL_BAD_INPUTS])
def test_eval_bad_inputs_fail_before_any_model_loads(backbones, tmp_path, capsys, monkeypatch, folder, args, message):
    from stillmoving.evaluation import backbones as loaders

    clip, dino = backbones
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    for name in ("ClipBackbone", "DinoBackbone"):
        monkeypatch.setattr(loaders, name, lambda *_, **__: pytest.fail("a model was loaded"))
    (tmp_path / "empty").mkdir()
    videos_folder(tmp_path / "videos", {"still": np.zeros((2, 32, 32, 3), np.uint8)})
    fill = dict(tmp=tmp_path, clip=clip, dino=dino)
    code, _, err = run(capsys, monkeypatch, "eval", tmp_path / folder, *[a.format(**fill) for a in args])
    assert code == 2 and len(err.strip().splitlines()) == 1 and message.format(**fill) in err, err
