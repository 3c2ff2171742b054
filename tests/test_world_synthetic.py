"""Tests for stillmoving.world.synthetic: determinism, geometry ground truth and held-out values."""

import dataclasses

import numpy as np
import pytest

from stillmoving.errors import StillMovingError
from stillmoving.world import synthetic
from stillmoving.world.synthetic import (
    BASE_SHAPES,
    COLORS,
    DIRECTIONS,
    SPEEDS,
    STYLES,
    SUBJECTS,
    TEXTURES,
    SceneSpec,
    caption,
    make_image_dataset,
    make_video_dataset,
    object_coverage,
    object_mask,
    object_trajectory,
    render_video,
    sample_scene,
    world_vocabulary,
)

HELD_OUT = [(None, None), ("star", None), (None, "crayon"), (None, "neon"), ("star", "neon")]


def scenes(count: int, seed: int = 0, num_frames: int = 8, subject=None, style=None) -> list[SceneSpec]:
    rng = np.random.default_rng(seed)
    return [sample_scene(rng, num_frames, subject=subject, style=style) for _ in range(count)]


def mask_centroid(mask: np.ndarray) -> np.ndarray:
    rows, columns = np.nonzero(mask)
    return np.array([columns.mean(), rows.mean()])  # (x, y)


# ----------------------------------------------------------------------------- datasets


def assert_same(first, second):
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a.pixels, b.pixels)
        assert a.caption == b.caption and a.spec == b.spec


@pytest.mark.parametrize("subject, style", HELD_OUT)
def test_datasets_are_deterministic(subject, style):
    videos = lambda seed: make_video_dataset(6, seed, num_frames=4, resolution=16, subject=subject, style=style)
    images = lambda seed: make_image_dataset(6, seed, resolution=16, subject=subject, style=style)
    assert_same(videos(3), videos(3))
    assert_same(images(3), images(3))
    assert [s.caption for s in videos(3)] != [s.caption for s in videos(4)]
    assert not np.array_equal(images(3)[0].pixels, images(4)[0].pixels)


def test_dataset_shapes_and_types():
    video, text, spec = make_video_dataset(2, seed=0, num_frames=5, resolution=24)[0]
    assert video.shape == (5, 24, 24, 3) and video.dtype == np.uint8
    assert isinstance(text, str) and isinstance(spec, SceneSpec)
    image, text, _ = make_image_dataset(2, seed=0, resolution=24)[0]
    assert image.shape == (24, 24, 3) and image.dtype == np.uint8
    assert "moving" not in text


def test_a_prefix_of_a_dataset_is_the_smaller_dataset():
    assert_same(make_video_dataset(3, 7, resolution=16), make_video_dataset(5, 7, resolution=16)[:3])


def test_held_out_scenes_pair_with_base_scenes():
    """The same seed gives the same motion and placement with or without a subject or style."""
    strip = lambda spec: (spec.direction, spec.speed, spec.background, spec.size, spec.start_xy)
    base, star = scenes(20), scenes(20, subject="star", style="crayon")
    assert [strip(s) for s in base] == [strip(s) for s in star]


def test_rendering_a_thousand_videos_is_fast_enough():
    """No timing assertion; this just runs the full-size workload once (about a second on CPU)."""
    videos = [render_video(spec, 8, 32) for spec in scenes(1000)]
    assert len(videos) == 1000


# ----------------------------------------------------------------------------- geometry


@pytest.mark.parametrize("num_frames", [8, 16])
def test_object_stays_inside_the_frame(num_frames):
    for index, spec in enumerate(scenes(100, seed=1, num_frames=num_frames)):
        style = [None, "crayon", "neon"][index % 3]
        spec = dataclasses.replace(spec, style=style)
        for frame in range(num_frames):
            mask = object_mask(spec, frame, 32)
            assert mask.any()
            assert not (mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())


def test_trajectory_follows_captioned_direction_and_speed():
    for spec in scenes(100, seed=2):
        path = object_trajectory(spec, 8, 32)  # (f, 2)
        words = caption(spec).split()
        direction, speed = words[words.index("moving") + 1 : words.index("moving") + 3]
        steps = np.diff(path, axis=0)  # (f - 1, 2)
        expected = np.array(DIRECTIONS[direction]) * SPEEDS[speed] * 32
        np.testing.assert_allclose(steps, np.broadcast_to(expected, steps.shape), atol=1e-9)


def test_speeds_are_distinct_and_sub_pixel_at_32px():
    slow, quick = SPEEDS["slowly"] * 32, SPEEDS["quickly"] * 32
    assert 0 < slow < 1 and quick >= 2 * slow


@pytest.mark.parametrize("resolution", [32, 64])
def test_mask_centroid_matches_trajectory(resolution):
    specs = scenes(60, seed=3) + scenes(20, seed=4, subject="star", style="neon")
    for spec in specs:
        path = object_trajectory(spec, 8, resolution)
        for frame in range(8):
            error = mask_centroid(object_mask(spec, frame, resolution)) - path[frame]
            assert np.abs(error).max() < 0.5, (spec, frame)


def test_coverage_weighted_centroid_is_sub_pixel_exact():
    rows, columns = np.mgrid[0:32, 0:32]
    for spec in scenes(60, seed=5):
        path = object_trajectory(spec, 8, 32)
        for frame in (0, 7):
            coverage = object_coverage(spec, frame, 32)
            centre = np.array([(coverage * columns).sum(), (coverage * rows).sum()]) / coverage.sum()
            assert np.abs(centre - path[frame]).max() < 0.2


def test_rendered_pixels_change_under_sub_pixel_motion():
    spec = next(
        s for s in scenes(50, seed=6) if s.speed == "slowly" and s.texture == "plain" and s.background != "dusk"
    )
    video = render_video(spec, 8, 32).astype(int)
    assert all(np.abs(video[i + 1] - video[i]).sum() > 0 for i in range(7))
    colours = np.unique(video[0].reshape(-1, 3), axis=0)
    assert len(colours) > 2  # anti-aliased edges blend object and background


def test_object_pixels_use_the_scene_colour():
    spec = next(s for s in scenes(50, seed=7) if s.texture == "plain" and s.background == "black")
    frame = render_video(spec, 1, 32)[0]
    inside = object_coverage(spec, 0, 32) == 1.0
    np.testing.assert_array_equal(np.unique(frame[inside], axis=0), [COLORS[spec.color]])


# ----------------------------------------------------------------------------- held-out values and captions


def test_held_out_values_never_appear_in_the_base_world():
    held_shapes = {s.shape for s in SUBJECTS.values()}
    held_colours = {s.color for s in SUBJECTS.values()}
    held_textures = {s.texture for s in SUBJECTS.values()}
    seen = scenes(2000, seed=8)
    assert all(s.subject is None and s.style is None for s in seen)
    assert not {s.shape for s in seen} & held_shapes
    assert not {s.color for s in seen} & held_colours
    assert not {s.texture for s in seen} & held_textures
    assert {s.shape for s in seen} == set(BASE_SHAPES) and {s.texture for s in seen} == set(TEXTURES)
    assert not any(word in caption(s) for s in seen for word in [*STYLES, *held_shapes, "sks"])


def test_held_out_subject_and_style_are_produced_on_request():
    star = scenes(1, subject="star", style="crayon")[0]
    assert (star.shape, star.color, star.texture) == ("star", "pink", "two_tone")
    text = caption(star, placeholder="zxq")
    assert text.startswith("a zxq star moving") and text.endswith("in crayon style")
    base = scenes(1)[0]
    for style in STYLES:  # a style changes the look of the very same scene
        styled = dataclasses.replace(base, style=style)
        assert not np.array_equal(render_video(base, 2, 32), render_video(styled, 2, 32))


def test_every_caption_word_is_in_the_vocabulary():
    vocabulary = world_vocabulary()
    assert vocabulary == sorted(set(vocabulary))
    words = set()
    for subject, style in HELD_OUT:
        for spec in scenes(200, seed=9, subject=subject, style=style):
            words |= set(caption(spec).split()) | set(caption(spec, motion=False).split())
    assert words - set(vocabulary) == {"sks"}  # the placeholder stays a rare word on purpose
    base_words = {w for spec in scenes(500, seed=10) for w in caption(spec).split()}
    assert base_words <= set(world_vocabulary(include_held_out=False))
    assert set(world_vocabulary(include_held_out=False)) < set(vocabulary)


def test_caption_example():
    spec = SceneSpec("circle", "red", "striped", "left", "quickly", "gray", 0.3, (0.5, 0.5))
    assert caption(spec) == "a red striped circle moving left quickly on a gray background"
    assert caption(dataclasses.replace(spec, texture="plain"), motion=False) == "a red circle on a gray background"
    assert caption(spec, appearance=False) == "a circle moving left quickly on a gray background"


def test_invalid_values_are_errors():
    with pytest.raises(StillMovingError, match="unknown subject 'heart'"):
        sample_scene(np.random.default_rng(0), subject="heart")
    with pytest.raises(StillMovingError, match="unknown style 'oil'"):
        make_video_dataset(1, 0, style="oil")
    with pytest.raises(ValueError, match="unknown color 'mauve'"):
        SceneSpec("circle", "mauve", "plain", "left", "slowly", "gray", 0.3, (0.5, 0.5))
    with pytest.raises(StillMovingError, match="do not fit"):
        synthetic.make_video_dataset(20, 0, num_frames=64)


def test_generic_images_are_seeded_varied_random_looks():
    images = synthetic.generic_images(16, 3, 32)
    assert images.shape == (16, 32, 32, 3) and images.dtype == np.uint8
    assert np.array_equal(images, synthetic.generic_images(16, 3, 32))
    assert not np.array_equal(images, synthetic.generic_images(16, 4, 32))
    # colours beyond the world's palette: clearly more distinct coarse colours than as many world frames have
    cells = lambda x: len(np.unique(x.reshape(-1, 3) // 32, axis=0))  # noqa: E731
    world = np.stack([s.pixels[0] for s in synthetic.make_video_dataset(16, 3, 1, 32)])
    assert cells(images) > 1.3 * cells(world)
