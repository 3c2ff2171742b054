"""The demo's conditional section (the paper's third application): customized videos whose structure comes from
a reference silhouette video through the world's ControlNet, and whose look comes from the customization.

For each customization, on the first video model, each evaluation prompt is paired with reference tracks the
video model never produces from a prompt (`synthetic.TRACKS`: a diagonal and a curved path; the world's captions
only ask for straight, axis-aligned motion), drawn as the prompt's shape, white on black. Three variants make
the same videos (prompt, track) -> seed = the track's index: Still-Moving from the prompt alone (how far the
prompt's own motion is from the reference track), naive injection + ControlNet, and Still-Moving + ControlNet.
Each is scored by the oracle (`metrics.video_metrics`: fidelity to the customization, consistency, artifacts)
and by how closely its object follows the reference (`metrics.track_following`: mean per-frame mask IoU, and the
centroid error in pixels).
"""

from __future__ import annotations

import numpy as np
import torch

from stillmoving.data.video_io import to_uint8_frames
from stillmoving.loading import assemble_pipeline
from stillmoving.pipeline import StillMovingMixin
from stillmoving.world.metrics import track_following, video_metrics
from stillmoving.world.synthetic import TRACKS, make_video_dataset, reference_track, silhouette_video
from stillmoving.world.variants import Variant, VariantKind

REFERENCE = VariantKind("reference", "reference silhouettes")
PROMPT_ALONE = VariantKind("still_moving_prompt_alone", "Still-Moving, prompt alone")
NAIVE_CONTROL = VariantKind("naive_controlnet", "naive injection + ControlNet")
OURS_CONTROL = VariantKind("still_moving_controlnet", "Still-Moving + ControlNet")


def section_name(target: str) -> str:
    return f"{target} + ControlNet"


def references(
    target_args: dict, count: int, seed: int, num_frames: int, resolution: int
) -> list[tuple[str, int, np.ndarray]]:
    """(prompt, seed, silhouettes) for the first `count` evaluation prompts x every track: the prompt's own shape
    and size, moved along the track; the track's index is the generator seed, so (prompt, seed) keys are unique."""
    samples = make_video_dataset(count, seed, num_frames, resolution, **target_args)
    return [
        (s.caption, i, silhouette_video(s.spec, reference_track(track, num_frames, resolution), resolution))
        for s in samples
        for i, track in enumerate(TRACKS)
    ]


def _generate(pipe: StillMovingMixin, refs, gen, conditioned: bool) -> Variant:
    pipe.set_progress_bar_config(disable=True)
    variant = Variant("", "")
    for prompt, seed, silhouettes in refs:
        control = {"conditioning_frames": [frame for frame in torch.from_numpy(silhouettes).permute(0, 3, 1, 2) / 255]}
        frames = pipe(
            prompt, num_frames=gen.num_frames, **gen.arguments(seed), **(control if conditioned else {})
        ).frames[0]
        variant.add(to_uint8_frames(frames), prompt, seed)
    return variant


def _score(variant: Variant, refs, target: str, kind: VariantKind, description: str) -> Variant:
    variant.name, variant.id, variant.description = kind.label, kind.id, description
    variant.metrics = [
        video_metrics(video, prompt=prompt, target=target) | track_following(video, silhouettes)
        for video, (prompt, _, silhouettes) in zip(variant.videos, refs)
    ]
    return variant


def conditional_variants(
    model: str, m1: dict, adapters: str, controlnet, refs, gen, target: str, blocks: str | None = None
) -> list[Variant]:
    """The section's variants: the references, Still-Moving without and with the ControlNet, naive injection with
    it; `controlnet` is a loaded ControlNetModel for `model`'s T2I; `blocks`: generate's --spatial-blocks."""
    reference = Variant.of(REFERENCE, "the conditioning videos: the prompt's shape along a diagonal or a curved path")
    for prompt, seed, silhouettes in refs:
        reference.add(silhouettes, prompt, seed)
    reference.metrics = [track_following(s, s) for _, _, s in refs]
    naive = assemble_pipeline(model, customized=m1["customized"], loras=m1["loras"])
    ours = assemble_pipeline(
        model, customized=m1["customized"], loras=m1["loras"], spatial_adapters=adapters, spatial_blocks=blocks
    )
    return [
        reference,
        _score(_generate(ours, refs, gen, False), refs, target, PROMPT_ALONE, "no ControlNet: the prompt's own track"),
        _score(
            _generate(naive.conditional(controlnet), refs, gen, True),
            refs,
            target,
            NAIVE_CONTROL,
            "customized T2I weights plugged into the T2V, with the world ControlNet",
        ),
        _score(
            _generate(ours.conditional(controlnet), refs, gen, True),
            refs,
            target,
            OURS_CONTROL,
            "Still-Moving's spatial adapters, with the world ControlNet",
        ),
    ]
