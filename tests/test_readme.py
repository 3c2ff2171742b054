"""The README's Python snippet runs as written (sizes shrunk for the tiny model)."""

import re
from pathlib import Path

from stillmoving.adapters.motion import MotionLoRA
from stillmoving.adapters.spatial import SpatialAdapters
from stillmoving.injection import t2i_unet_from_t2v

README = Path(__file__).parents[1] / "README.md"


def python_snippet() -> str:
    text = README.read_text()
    section = text.split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_python_snippet_runs(tiny_pipe, tiny_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("animatediff-sd15").symlink_to(tiny_dir)
    t2i_unet_from_t2v(tiny_pipe.unet).save_pretrained("dreambooth-sks-dog/unet")
    SpatialAdapters.for_unet(tiny_pipe.unet, rank=2).save("runs/sks-dog/spatial_adapters.safetensors")
    MotionLoRA.inject(tiny_pipe.unet, rank=2).save("runs/motion/motion_adapter")
    code = python_snippet().replace(
        "num_frames=16, height=512, width=512", "num_frames=4, height=32, width=32, num_inference_steps=2"
    )
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    video = namespace["video"]
    assert len(video) == 4 and video[0].size == (32, 32)


def test_readme_names_the_ci_command():
    ci = (Path(__file__).parents[1] / ".ci/run").read_text()
    test_command = "bash scripts/setup.sh && .venv/bin/python -m pytest"
    assert test_command in README.read_text() and test_command in ci
