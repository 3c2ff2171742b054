"""`stillmoving world render`: the world as captioned folders that the training and eval commands read."""

import json

import numpy as np
from test_cli import run

from stillmoving.data.sources import videos_from_folder
from stillmoving.data.video_io import read_video
from stillmoving.world.synthetic import make_image_dataset, make_video_dataset


def test_rendered_frame_folders_are_lossless_and_captioned(capsys, monkeypatch, tmp_path):
    code, _, err = run(capsys, monkeypatch, "world", "render", tmp_path / "v", "--count", 3, "--seed", 5)
    assert code == 0, err
    lines = [json.loads(x) for x in (tmp_path / "v/metadata.jsonl").read_text().splitlines()]
    truth = make_video_dataset(3, 5, 8, 32)
    assert [x["text"] for x in lines] == [s.caption for s in truth]
    for line, sample in zip(lines, truth):
        assert np.array_equal(read_video(tmp_path / "v" / line["file_name"]), sample.pixels)


def test_rendered_images_of_a_held_out_subject(capsys, monkeypatch, tmp_path):
    code, _, err = run(
        capsys,
        monkeypatch,
        "world",
        "render",
        tmp_path / "i",
        "--count",
        2,
        "--images",
        "--subject",
        "star",
        "--seed",
        1,
    )
    assert code == 0, err
    lines = [json.loads(x) for x in (tmp_path / "i/metadata.jsonl").read_text().splitlines()]
    assert [x["text"] for x in lines] == [s.caption for s in make_image_dataset(2, 1, 32, subject="star")]
    assert all(x["text"].startswith("a sks star") for x in lines)


def test_gif_folder_feeds_the_video_loader(capsys, monkeypatch, tmp_path, tiny_pipe):
    code, _, err = run(
        capsys, monkeypatch, "world", "render", tmp_path / "g", "--count", 2, "--format", "gif", "--num-frames", 4
    )
    assert code == 0, err
    latents, captions = videos_from_folder(tmp_path / "g", tiny_pipe.vae, 4, 32, 32)
    assert len(latents) == 2 and latents[0].shape[1] == 4
    assert captions == [s.caption for s in make_video_dataset(2, 0, 4, 32)]


def test_refuses_a_folder_that_already_holds_a_dataset(capsys, monkeypatch, tmp_path):
    assert run(capsys, monkeypatch, "world", "render", tmp_path / "v", "--count", 1)[0] == 0
    before = (tmp_path / "v/metadata.jsonl").read_text()
    code, _, err = run(capsys, monkeypatch, "world", "render", tmp_path / "v", "--count", 2, "--seed", 9)
    assert code == 2 and "already holds" in err and err.count("\n") == 1
    assert (tmp_path / "v/metadata.jsonl").read_text() == before


def test_unknown_format_and_unknown_subject_are_one_line_errors(capsys, monkeypatch, tmp_path):
    code, _, err = run(capsys, monkeypatch, "world", "render", tmp_path / "a", "--format", "avi")
    assert code == 2 and "--format" in err
    code, _, err = run(capsys, monkeypatch, "world", "render", tmp_path / "b", "--subject", "dragon")
    assert code == 2 and "dragon" in err and err.count("\n") == 1
