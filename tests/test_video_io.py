"""Tests for stillmoving.data.video_io: round trips, input formats, errors and atomic writes."""

import json
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
import torch
from PIL import Image

from stillmoving.data.video_io import (
    check_videos,
    list_images,
    list_videos,
    read_captions,
    read_image,
    read_video,
    to_uint8_frames,
    upscale_nearest,
    write_image,
    write_video,
)
from stillmoving.errors import StillMovingError
from stillmoving.files import temporary_sibling

FLAT_COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (250, 250, 250)]


def flat_frames(height: int = 12, width: int = 16) -> np.ndarray:
    """One flat colour per frame, plus a black square so frames are not trivially uniform."""
    frames = np.zeros((len(FLAT_COLOURS), height, width, 3), np.uint8)
    for index, colour in enumerate(FLAT_COLOURS):
        frames[index] = colour
        frames[index, 2:5, 2 + index : 5 + index] = 0
    return frames


def smooth_frames(num_frames: int = 6, height: int = 17, width: int = 33) -> np.ndarray:
    """Slowly varying gradients: what H.264 reproduces closely even at tiny odd sizes."""
    y, x = np.mgrid[0:height, 0:width]
    frames = [np.stack([x * 6 + t * 10, y * 10 + 40, 200 - x * 3 - t * 5], -1) for t in range(num_frames)]
    return np.clip(np.stack(frames), 0, 255).astype(np.uint8)


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ----------------------------------------------------------------------------- round trips


def test_gif_round_trip_is_exact_and_loops(tmp_path):
    frames = flat_frames()
    path = write_video(frames, tmp_path / "clip.gif", fps=10)
    np.testing.assert_array_equal(read_video(path), frames)
    with Image.open(path) as gif:
        assert gif.info["loop"] == 0
        assert gif.info["duration"] == 100


def test_mp4_round_trip_is_close_and_pads_odd_sizes(tmp_path):
    frames = smooth_frames(height=17, width=33)
    path = write_video(frames, tmp_path / "clip.mp4", fps=8)
    video = read_video(path)
    assert video.shape == (6, 18, 34, 3)  # padded to even sizes for yuv420p
    error = np.abs(video[:, :17, :33].astype(int) - frames.astype(int))
    assert error.mean() < 3 and error.max() < 40


def test_frame_folder_round_trip_is_exact(tmp_path):
    frames = smooth_frames()
    path = write_video(frames, str(tmp_path / "frames") + "/")
    assert files_in(path) == [f"frame_{i:04d}.png" for i in range(6)]
    np.testing.assert_array_equal(read_video(path), frames)
    np.testing.assert_array_equal(read_video(write_video(frames, tmp_path / "no_suffix")), frames)


def test_max_frames_reads_the_start_of_every_kind_and_no_further(tmp_path):
    frames = smooth_frames(num_frames=6)
    for path in (
        write_video(frames, tmp_path / "clip.gif"),
        write_video(frames, tmp_path / "clip.mp4"),
        write_video(frames, tmp_path / "frames"),
    ):
        whole = read_video(path)
        np.testing.assert_array_equal(read_video(path, 4), whole[:4])
        np.testing.assert_array_equal(read_video(path, 1), whole[:1])
        np.testing.assert_array_equal(read_video(path, 50), whole)  # a short video: all of it, never padded
    with pytest.raises(StillMovingError, match="at least 1"):
        read_video(tmp_path / "clip.gif", 0)
    # A frame after the clip is never decoded: a broken tail is no reason to refuse what training reads
    (tmp_path / "frames" / "frame_0005.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(StillMovingError, match="corrupt"):
        read_video(tmp_path / "frames")
    np.testing.assert_array_equal(read_video(tmp_path / "frames", 5), frames[:5])
    videos = tmp_path / "videos"
    write_video(frames, videos / "a" / "frames")
    assert check_videos(videos / "a", 5) == [videos / "a" / "frames"]
    with pytest.raises(StillMovingError, match="6 frames, training needs at least 7"):
        check_videos(videos / "a", 7)


def test_frame_folder_replaces_previous_folder(tmp_path):
    write_video(smooth_frames(num_frames=6), tmp_path / "out")
    write_video(smooth_frames(num_frames=2), tmp_path / "out")
    assert files_in(tmp_path / "out") == ["frame_0000.png", "frame_0001.png"]
    assert files_in(tmp_path) == ["out"]


def test_write_creates_parent_folders(tmp_path):
    path = write_video(flat_frames(), tmp_path / "a" / "b" / "clip.gif")
    assert path.is_file()


# ----------------------------------------------------------------------------- input formats


@pytest.mark.parametrize(
    "make",
    [
        lambda f: f,
        lambda f: f.astype(np.float32) / 255,
        lambda f: (f.astype(np.float64) / 255).transpose(0, 3, 1, 2),
        lambda f: torch.from_numpy(f).float() / 255,
        lambda f: (torch.from_numpy(f).float() / 255).permute(0, 3, 1, 2),
        lambda f: [Image.fromarray(frame) for frame in f],
    ],
    ids=["uint8", "float_hwc", "float_chw", "tensor_hwc", "tensor_chw", "pil_list"],
)
def test_write_video_accepts_every_input_format(tmp_path, make):
    frames = flat_frames()
    np.testing.assert_array_equal(read_video(write_video(make(frames), tmp_path / "v")), frames)


def test_float_frames_are_clipped_and_rounded():
    frames = np.array([[[[-0.5, 0.5, 2.0]]]])  # (1, 1, 1, 3)
    np.testing.assert_array_equal(to_uint8_frames(frames)[0, 0, 0], [0, 128, 255])


def test_malformed_frames_are_a_value_error():
    with pytest.raises(ValueError, match="shaped"):
        to_uint8_frames(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="dtype"):
        to_uint8_frames(np.zeros((1, 4, 4, 3), np.int64))


def test_write_and_read_image(tmp_path):
    image = smooth_frames()[0]
    np.testing.assert_array_equal(read_image(write_image(image, tmp_path / "x.png")), image)
    chw = torch.from_numpy(image).permute(2, 0, 1).float() / 255
    np.testing.assert_array_equal(read_image(write_image(chw, tmp_path / "y.png")), image)
    pil = Image.fromarray(image)
    np.testing.assert_array_equal(read_image(write_image(pil, tmp_path / "z.webp")).shape, image.shape)


def test_upscale_nearest():
    frames = np.arange(2 * 2 * 3 * 3, dtype=np.uint8).reshape(2, 2, 3, 3)
    big = upscale_nearest(frames, 3)
    assert big.shape == (2, 6, 9, 3)
    np.testing.assert_array_equal(big[:, ::3, ::3], frames)
    assert upscale_nearest(frames[0], 2).shape == (4, 6, 3)
    with pytest.raises(ValueError):
        upscale_nearest(frames, 0)


# ----------------------------------------------------------------------------- folders and conversion


def test_frames_are_sorted_naturally(tmp_path):
    for index in [10, 2, 1]:
        Image.new("RGB", (4, 4), (index * 20, 0, 0)).save(tmp_path / f"frame{index}.png")
    assert [p.name for p in list_images(tmp_path)] == ["frame1.png", "frame2.png", "frame10.png"]
    np.testing.assert_array_equal(read_video(tmp_path)[:, 0, 0, 0], [20, 40, 200])


def test_rgba_greyscale_and_palette_become_rgb(tmp_path):
    Image.new("RGBA", (5, 3), (10, 20, 30, 0)).save(tmp_path / "rgba.png")
    Image.new("L", (5, 3), 77).save(tmp_path / "grey.png")
    Image.new("RGB", (5, 3), (200, 100, 0)).convert("P").save(tmp_path / "palette.png")
    np.testing.assert_array_equal(read_image(tmp_path / "rgba.png")[0, 0], [10, 20, 30])
    np.testing.assert_array_equal(read_image(tmp_path / "grey.png")[0, 0], [77, 77, 77])
    assert read_image(tmp_path / "palette.png").shape == (3, 5, 3)
    video = read_video(tmp_path)  # mixed modes in one frame folder
    assert video.shape == (3, 3, 5, 3) and video.dtype == np.uint8


def test_list_videos_finds_files_and_frame_folders(tmp_path):
    write_video(flat_frames(), tmp_path / "clip10.gif")
    write_video(flat_frames(), tmp_path / "clip2.mp4")
    write_video(flat_frames(), tmp_path / "clip3")
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.md").write_text("not a video")
    names = [p.name for p in list_videos(tmp_path)]
    assert names == ["clip2.mp4", "clip3", "clip10.gif"]


def test_list_errors(tmp_path):
    with pytest.raises(StillMovingError, match="no such folder"):
        list_videos(tmp_path / "missing")
    with pytest.raises(StillMovingError, match="no videos found"):
        list_videos(tmp_path)
    with pytest.raises(StillMovingError, match="no images found"):
        list_images(tmp_path)
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(StillMovingError, match="expected a folder"):
        list_images(tmp_path / "file.txt")


# ----------------------------------------------------------------------------- captions


def test_captions_from_jsonl_and_sidecars(tmp_path):
    for name in ["a.png", "b.png", "c.mp4"]:
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "clip").mkdir()
    (tmp_path / "b.txt").write_text("  from sidecar \n")
    (tmp_path / "c.txt").write_text("overridden by jsonl")
    (tmp_path / "clip.txt").write_text("a frame folder")
    lines = [{"file_name": "a.png", "text": "first"}, {"file_name": "c.mp4", "prompt": "third"}, {}]
    (tmp_path / "metadata.jsonl").write_text("\n".join(json.dumps(x) for x in lines[:2]) + "\n\n")
    assert read_captions(tmp_path) == {
        "a.png": "first",
        "b.png": "from sidecar",
        "c.mp4": "third",
        "clip": "a frame folder",
    }


def test_captions_key_caption_and_empty_folder(tmp_path):
    assert read_captions(tmp_path) == {}
    (tmp_path / "metadata.jsonl").write_text('{"file_name": "x.gif", "caption": "hi"}\n')
    assert read_captions(tmp_path) == {"x.gif": "hi"}


@pytest.mark.parametrize(
    "second_line, message",
    [
        ("{not json", "line 2 is not valid JSON"),
        ('{"text": "no file name"}', 'line 2 needs a "file_name"'),
        ('{"file_name": "b.png"}', 'line 2 needs a "file_name" and one of text'),
        ('["a list"]', "line 2 needs"),
        ('{"file_name": "b.png", "text": 3}', 'line 2: "file_name" and "text" must be strings'),
    ],
)
def test_malformed_jsonl_names_the_line(tmp_path, second_line, message):
    (tmp_path / "metadata.jsonl").write_text('{"file_name": "a.png", "text": "ok"}\n' + second_line + "\n")
    with pytest.raises(StillMovingError, match="metadata.jsonl") as error:
        read_captions(tmp_path)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


# ----------------------------------------------------------------------------- read errors


def assert_one_line_error(function, path, *substrings):
    with pytest.raises(StillMovingError) as error:
        function(path)
    message = str(error.value)
    assert "\n" not in message and str(path) in message
    for substring in substrings:
        assert substring in message


def test_read_errors(tmp_path):
    assert_one_line_error(read_video, tmp_path / "missing.mp4", "no such file")
    assert_one_line_error(read_image, tmp_path / "missing.png", "no such file")
    for name in ["corrupt.mp4", "corrupt.gif", "corrupt.webm"]:
        (tmp_path / name).write_bytes(b"definitely not a video" * 20)
        assert_one_line_error(read_video, tmp_path / name, "corrupt")
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG garbage")
    assert_one_line_error(read_image, tmp_path / "corrupt.png", "corrupt or not an image")
    (tmp_path / "notes.txt").write_text("hello")
    assert_one_line_error(read_video, tmp_path / "notes.txt", "unsupported suffix '.txt'")
    assert_one_line_error(read_image, tmp_path, "is a folder")


def test_truncated_mp4_is_an_error(tmp_path):
    data = write_video(smooth_frames(), tmp_path / "ok.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 3])
    assert_one_line_error(read_video, tmp_path / "cut.mp4", "cannot read video")


def test_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    assert_one_line_error(read_video, tmp_path / "empty", "no image frames")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    Image.new("RGB", (8, 8)).save(mixed / "f1.png")
    Image.new("RGB", (8, 6)).save(mixed / "f2.png")
    assert_one_line_error(read_video, mixed, "frame f2.png is 8x6 but f1.png is 8x8")


def test_zero_frame_video_is_an_error(tmp_path, monkeypatch):
    path = write_video(flat_frames(), tmp_path / "clip.mp4")

    def no_frames(*args, **kwargs):
        yield {"size": (16, 12)}

    monkeypatch.setattr(imageio_ffmpeg, "read_frames", no_frames)
    assert_one_line_error(read_video, path, "zero frames")


def test_write_errors(tmp_path):
    with pytest.raises(StillMovingError, match=r"unknown suffix '\.avi'"):
        write_video(flat_frames(), tmp_path / "clip.avi")
    with pytest.raises(StillMovingError, match="unknown suffix '.bmp'"):
        write_image(flat_frames()[0], tmp_path / "x.bmp")
    (tmp_path / "taken").write_text("a file")
    with pytest.raises(StillMovingError, match="a file with that name exists"):
        write_video(flat_frames(), tmp_path / "taken")
    (tmp_path / "dir.gif").mkdir()
    with pytest.raises(StillMovingError, match="a folder with that name exists"):
        write_video(flat_frames(), tmp_path / "dir.gif")


# ----------------------------------------------------------------------------- atomicity


class Boom(RuntimeError):
    pass


def test_crash_mid_mp4_keeps_previous_file(tmp_path, monkeypatch):
    path = write_video(smooth_frames(), tmp_path / "clip.mp4")
    before = path.read_bytes()
    real_write_frames = imageio_ffmpeg.write_frames

    def crashing_write_frames(*args, **kwargs):
        writer = real_write_frames(*args, **kwargs)
        writer.send(None)
        for _ in range(2):  # pass two frames through to ffmpeg, then die
            writer.send((yield))
        writer.close()
        raise Boom("disk on fire")

    monkeypatch.setattr(imageio_ffmpeg, "write_frames", crashing_write_frames)
    with pytest.raises(Boom):
        write_video(smooth_frames() // 2, path)
    assert path.read_bytes() == before
    assert files_in(tmp_path) == ["clip.mp4"]


def test_crash_mid_gif_and_image_keeps_previous_file(tmp_path, monkeypatch):
    gif = write_video(flat_frames(), tmp_path / "clip.gif")
    png = write_image(flat_frames()[0], tmp_path / "still.png")
    before = {p: p.read_bytes() for p in (gif, png)}

    def crashing_save(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"half a file")
        raise Boom("power cut")

    monkeypatch.setattr(Image.Image, "save", crashing_save)
    with pytest.raises(Boom):
        write_video(flat_frames()[::-1], gif)
    with pytest.raises(Boom):
        write_image(flat_frames()[1], png)
    assert {p: p.read_bytes() for p in before} == before
    assert files_in(tmp_path) == ["clip.gif", "still.png"]


def test_crash_mid_frame_folder_keeps_previous_folder(tmp_path, monkeypatch):
    folder = write_video(smooth_frames(), tmp_path / "frames")
    before = {name: (folder / name).read_bytes() for name in files_in(folder)}
    real_save, calls = Image.Image.save, []

    def crash_on_third_frame(self, fp, *args, **kwargs):
        calls.append(fp)
        if len(calls) == 3:
            raise Boom("killed")
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", crash_on_third_frame)
    with pytest.raises(Boom):
        write_video(flat_frames(), folder)
    assert {name: (folder / name).read_bytes() for name in files_in(folder)} == before
    assert files_in(tmp_path) == ["frames"]


def test_temporary_names_are_hidden_siblings(tmp_path):
    temporary = temporary_sibling(tmp_path / "clip.mp4", "tmp")
    assert temporary.parent == tmp_path and temporary.name.startswith(".clip.")
    assert temporary.suffix == ".mp4"
