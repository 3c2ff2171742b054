"""A subject the project has never seen, drawn by someone else (here: PIL, not `synthetic`), goes through
the same commands a user runs on the shipped world: `t2i dreambooth`, `customize`, `generate`, `eval`.

Sizes are CI-sized (a few steps), so this proves the path, not the quality; the demo measures quality.
"""

import json

import numpy as np
import pytest
from PIL import Image, ImageDraw
from test_cli import run

from stillmoving.world.weights import shipped_model, shipped_motion_adapter

SMALL = ["--height", "32", "--width", "32"]


def draw_moons(folder, count: int = 4):
    """Yellow crescents ('a sks moon') on the world's backgrounds, at random places: a user's own renders."""
    folder.mkdir()
    rng = np.random.default_rng(11)
    lines = []
    for i in range(count):
        image = Image.new("RGB", (32, 32), [(0, 0, 0), (110, 110, 110), (25, 35, 110)][i % 3])
        draw = ImageDraw.Draw(image)
        x, y = rng.integers(6, 16, size=2)
        draw.ellipse([x, y, x + 12, y + 12], fill=(250, 220, 60))
        draw.ellipse([x + 4, y - 1, x + 15, y + 10], fill=image.getpixel((0, 0)))  # bite out of it
        image.save(folder / f"moon_{i}.png")
        lines.append(json.dumps({"file_name": f"moon_{i}.png", "text": "a sks moon"}))
    (folder / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture(scope="module")
def world():
    return str(shipped_model()), str(shipped_motion_adapter())


def test_unseen_subject_through_the_user_commands(world, tmp_path, capsys, monkeypatch):
    model, motion_adapter = world
    images = draw_moons(tmp_path / "moons")
    code, _, err = run(
        capsys,
        monkeypatch,
        "t2i",
        "dreambooth",
        "--model",
        model,
        "-o",
        tmp_path / "db",
        "--images",
        images,
        "--prompt",
        "a sks moon",
        "--steps",
        "3",
        "--lr",
        "1e-4",
        *SMALL,
    )
    assert code == 0, err
    code, _, err = run(
        capsys,
        monkeypatch,
        "customize",
        "--model",
        model,
        "-o",
        tmp_path / "custom",
        "--motion-adapter",
        motion_adapter,
        "--customized",
        tmp_path / "db",
        "--prompt",
        "a sks moon on a black background",
        "--num-images",
        "2",
        "--num-prior-videos",
        "1",
        "--prior-loss-weight",
        "1",
        "--prior-prompt",
        "a red circle moving left slowly on a gray background",
        "--num-frames",
        "8",
        "--steps",
        "2",
        "--sample-steps",
        "3",
        *SMALL,
    )
    assert code == 0, err
    videos = tmp_path / "videos"
    code, _, err = run(
        capsys,
        monkeypatch,
        "generate",
        "--customization",
        tmp_path / "custom",
        "--prompt",
        "a sks moon moving right quickly on a blue background",
        "--prompt",
        "a sks moon moving up slowly on a black background",
        "-o",
        videos / "moon.gif",
        "--num-frames",
        "8",
        "--steps",
        "3",
        "--guidance-scale",
        "4",
        *SMALL,
    )
    assert code == 0, err
    written = sorted(videos.glob("*.gif"))
    assert len(written) == 2
    (videos / "metadata.jsonl").write_text(
        "".join(
            json.dumps({"file_name": p.name, "text": t}) + "\n"
            for p, t in zip(
                written,
                [
                    "a sks moon moving right quickly on a blue background",
                    "a sks moon moving up slowly on a black background",
                ],
            )
        )
    )
    code, out, err = run(capsys, monkeypatch, "eval", videos, "-o", tmp_path / "metrics.json")
    assert code == 0, err
    result = json.loads((tmp_path / "metrics.json").read_text())
    assert set(result["per_video"]) == {p.name for p in written}
    assert {"speed", "consistency", "artifact"} <= set(result["summary"])
