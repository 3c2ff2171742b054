"""The end of `customize`: validation videos with and without the spatial adapters, and a plain verdict.

Still-Moving exists to do better than plugging the customized weights into the video model ("naive
injection"); a customization that makes the videos worse than that must not pass silently (issue 13).
After training, the same prompts and seeds are generated twice with the motion adapter removed (alpha = 0,
the inference setting): the adapters detached (naive injection) and attached (Still-Moving). Both sets are
written as GIFs to `<output>/validation/` and scored with the model-agnostic figures of
`stillmoving.video_metrics`; `validation.json` holds the figures, their paired differences and the verdict,
which is also printed. The verdict reads flicker twice: binned (colour consistency) and unbinned (tint change),
since a background that changes tint by a few grey levels can stay inside one colour bin; and the look twice: the
whole frame's colours and, since session 27, those without each frame's most common colour, which on the world is
its background (the thresholds' comments).

When the adapters lie on the UNet's up blocks too, the check renders the same prompts and seeds with the adapters
of the down and mid blocks only (`generate --spatial-blocks down,mid`; `ENCODER_SIDE`), writes them as
`validation/still_moving_down_mid_*.gif` and judges them the same way. It records them in `customization.json`, so
that `generate --customization` (and `compare`, `export`, the web app) applies only them unless told
`--spatial-blocks`, when every block's adapters are worse than naive injection and these pass, or are worse too but
read no worse than every block on each reading (the lesser of two, `less_worse`), and, since session 26, when every
block's pass and these pass too reading no worse than every block on each reading and better on one: the up blocks'
adapters then add nothing the check can see. On the embedded world the up blocks' adapters made heavily drifted
subjects flicker and the down and mid blocks' did not (docs/method.md, "The heavily drifted subject's flicker is the
up blocks'"), and on two heavily drifted DreamBooths of three every block's passed an eight-video check that their
sixteen-video study found worse (docs/method.md, "A second and third DreamBooth of the same subject").

Each set's motion is read too, by the field's measure (`motion_read`: VBench's dynamic degree, the share of videos
whose optical flow says they move, and the mean flow magnitude), and printed beside the colour readings. It judges
nothing: flicker moves pixels as motion does, so it says whether the adapters bring motion back where naive injection
stands still, which on the embedded world the paper's every-block adapters did in five of six such cases (one of the
two held out) and the down and mid blocks in none of the four where they were measured (docs/method.md, "Where the
heavily drifted star's motion goes").

Beside them, the customized T2I's own image of each prompt and seed (rendered before M1 is injected, at the
videos' size, steps and guidance; `validation/customized_t2i_*.png`) shows the look to keep, and each video's
colours are compared with it (`colour_agreement` of every frame with the image; both variants' means printed).
The histogram is the whole frame's, background included, and four videos make a noisy mean, so only a large loss
is judged (LOOK_DROP, calibrated in session 15); smaller ones are reported. On the embedded world, over the demo's
12 videos of the mildly drifted star against eight T2I images per prompt, it reads the adapters' cost the world's
oracle reads (-0.010 [-0.017, -0.004] against naive injection; `studies/smoothness/t2i_look.py`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch

from stillmoving.adapters.spatial import ALL_BLOCKS, in_blocks
from stillmoving.data.video_io import write_image, write_video
from stillmoving.evaluation.dynamic_degree import dynamic_degree
from stillmoving.files import write_text
from stillmoving.run_folder import CUSTOMIZATION, record_spatial_blocks
from stillmoving.training.monitor import VALIDATION_DIR, first_validation_seed, logger, render_image, render_video
from stillmoving.video_metrics import colour_agreement, subject_agreement, video_figures

REPORT_FILE = "validation.json"
# "Worse than naive injection", by any of four readings, two of flicker and two of the look:
# - binned: the adapters' colour inconsistency (1 - colour consistency) at least WORSE_RATIO times naive injection's,
#   and at least MIN_DROP lower consistency. Calibrated on the heavy-drift study (docs/method.md; 32 videos each):
#   every variant the world's oracle scored as worse had 1.56-2.4 times naive injection's inconsistency, random
#   adapters of the same size 0.99, the mild-drift ones 1.16-1.19. Session 23 lowered it from 1.5: customize at its
#   own defaults (25 steps, guidance 7.5) on the unseen subject at heavy drift, jointly trained model, read 1.48 over
#   the eight validation videos (tint 1.15 times, look -0.014: no reading flagged it) while its backgrounds changed
#   0.41 grey levels per frame more than naive injection's over the study's 16; over the check's own videos every
#   such run read 1.39-2.00, every run without that flicker 0.63-1.20 (studies/unseen, docs/method.md, "Which
#   adapters cost the heavily drifted subject its look").
# - unbinned: the adapters' tint change at least TINT_RATIO times naive injection's, and at least MIN_TINT_RISE
#   (a quarter of a grey level) higher. The binned reading missed a subject whose gray backgrounds change tint by a
#   few levels (studies/unseen, heavy drift, first model: inconsistency 1.06 times naive injection's over the four
#   validation videos). Tint change of Still-Moving over naive injection's, session 15: that subject 1.24 over its
#   four validation videos (1.33 over the study's 16, where both readings call it worse), on the jointly trained
#   model 1.12 (1.18; called worse there, not flagged here); where Still-Moving is not worse, 1.07 and 0.75 (the
#   subject at mild drift, four videos) and 0.34-1.01 over the demo's four sections (12 videos each; in three sets
#   of four, 0.23-1.09).
WORSE_RATIO = 1.3
MIN_DROP = 0.005
TINT_RATIO = 1.2
MIN_TINT_RISE = 0.25 / 255
# - the look: the adapters' videos agree with the customized T2I's own images (`look_kept`) at least LOOK_DROP less
#   than naive injection's. Session 15, Still-Moving minus naive injection over the check's videos: -0.064 to -0.131
#   for the unseen subject's recipes the study found worse on fidelity or consistency (M1's guided images at both
#   drifts, the loss at guidance 4 at heavy drift; six runs); -0.043 to +0.058 for its other runs (defaults, shared
#   corrections, the loss at guidance 4 at mild drift; ten runs); -0.009 to +0.005 for the demo's five trained
#   sections (eight videos each). Session 17: against eight images per prompt instead of one per video (less noise;
#   studies/unseen/check_reference.py) a style's loss the study sees is caught, and the demo's crayon at weight 2,
#   which Still-Moving repairs, reads -0.041: agreement with M1's over-guided images rewards naive injection's
#   over-guided colours, so the reference stays one image per video (docs/method.md, "A style nobody here has seen").
LOOK_DROP = 0.05
# - the subject's look: the same agreement without each frame's most common colour (`subject_agreement`: on the
#   embedded world the object without its background) at least SUBJECT_DROP less than naive injection's. The whole
#   frame's histogram lets the background outweigh the subject: on the unseen subject's second and third heavily
#   drifted DreamBooths on the jointly trained model every block's adapters read -0.008 and +0.005 against naive
#   injection on the whole frame while the study's 16 pairs found them losing violet (-0.159 and -0.071, decided);
#   without the most common colour they read -0.106 and -0.070. Over session 26's validation videos (all 17 runs with
#   the down and mid blocks' videos, read afterwards from their GIFs): every block minus naive injection -0.056 to
#   -0.188 on the unseen subject's six heavy runs, -0.009 to -0.148 on the world's star's eight (the other readings
#   flag all eight), -0.151 on the demo's heavy star, and -0.007 and +0.057 at mild drift, where the study found
#   every block more consistent than naive injection with its violet kept (docs/method.md, "What the check did not
#   see").
SUBJECT_DROP = 0.05
# Where the full set is worse, the check tries the same adapters on the UNet's down and mid blocks only (`generate
# --spatial-blocks down,mid`) and says whether those pass. Session 22, the unseen subject at heavy drift (16 pairs
# each, studies/unseen): the up blocks' adapters alone bring naive injection's tint flicker up by 0.79 and 0.54 grey
# levels per frame on the two video models, the down and mid blocks' alone by 0.02 and -0.01, while keeping more
# of its violet than naive injection; on the world's heavily drifted star, by its oracle, they are better than naive
# injection on artifacts on both models (docs/method.md, "The heavily drifted subject's flicker is the up blocks'").
ENCODER_SIDE = "down,mid"
ENCODER_SIDE_VIDEOS = f"still_moving_{ENCODER_SIDE.replace(',', '_')}"  # validation/<this>_000.gif, ...
RECORDED_WHY = (  # customization.json's reason for them, which generate prints
    "customize's check found every block's adapters worse than naive injection and these not, validation.json"
)
# What the check's line says once it records them (they pass, or are the lesser of two).
APPLIED = (
    f"generate --customization applies those only from now on (recorded in {CUSTOMIZATION}; "
    f"generate --spatial-blocks {ALL_BLOCKS} for every block)"
)
# Where those are worse than naive injection too, they are still recorded when they read no worse than every block on
# each of the check's readings (colour consistency, tint change, agreement with the T2I's images): the lesser of two
# sets that are both worse, since generate would otherwise apply every block. Session 23, the two such runs measured
# (32 and 16 pairs): the heavily drifted star with the demo's fast recipe, consistency -0.011 against every block's
# -0.125 below naive injection's, fidelity -0.106 against -0.205, speed +0.156 against +0.280; the unseen subject on
# the jointly trained model at customize's own defaults, background change +0.173 against +0.414 grey levels per
# frame above naive injection's, violet -0.018 against -0.085 (docs/method.md, "Which adapters cost the heavily drifted
# subject its look").
LESSER_WHY = (
    "customize's check found every block's adapters worse than naive injection and these worse too but less so on "
    "each reading (naive injection, generate --spatial-scale 0, is better than both), validation.json"
)
# Where every block's adapters pass, those of the down and mid blocks are still recorded when they pass too and read no
# worse than every block on each reading (session 26): the heavily drifted unseen subject's second DreamBooth passed
# the check with every block (its inconsistency 1.23 times naive injection's, tint 1.08 times, look -0.049: each
# just inside its threshold) while the study's 16 pairs found its backgrounds changing 0.60 grey levels per frame
# more than naive injection's and less violet (-0.132); every block is kept where it reads better on any reading,
# as for the same subject at mild drift, whose consistency gain the up blocks carry (docs/method.md, "A second and
# third DreamBooth of the same subject").
NO_WORSE_WHY = (
    "customize's check found these no worse than naive injection and no worse than every block's adapters on each "
    "reading (the up blocks' add nothing it sees), validation.json"
)


@torch.no_grad()
def validation_videos(pipe, spatial, prompts: list[str], cfg) -> dict[str, list[np.ndarray]]:
    """uint8 videos (F, H, W, 3) per variant, one per prompt, seeds --validation-seed (default --seed), + 1, ..."""
    videos = {"naive injection": [], "Still-Moving": []}
    seed = first_validation_seed(cfg)
    for i, prompt in enumerate(prompts):
        with spatial.detached(pipe.unet):
            videos["naive injection"].append(render_video(pipe, prompt, seed + i, cfg))
        videos["Still-Moving"].append(render_video(pipe, prompt, seed + i, cfg))
    return videos


def has_decoder_side(spatial) -> bool:
    """Whether the adapters lie on the up blocks and on the down or mid blocks too, so that `ENCODER_SIDE` keeps
    some and drops some."""
    return any(in_blocks(spatial.placements, "up")) and any(in_blocks(spatial.placements, ENCODER_SIDE))


@torch.no_grad()
def encoder_side_videos(pipe, spatial, prompts: list[str], cfg) -> list[np.ndarray]:
    """`validation_videos`' prompts and seeds with the adapters of `ENCODER_SIDE` only (the rest the identity);
    the adapters are as trained after."""
    seed = first_validation_seed(cfg)
    with spatial.only_blocks(ENCODER_SIDE):
        return [render_video(pipe, prompt, seed + i, cfg) for i, prompt in enumerate(prompts)]


def t2i_images(t2i, prompts: list[str], cfg) -> list[np.ndarray]:
    """The customized T2I's own image (H, W, 3) uint8 of each validation prompt and seed, at the videos' settings;
    the global random state is left as it was, so the training that follows is the same with or without them."""
    t2i.set_progress_bar_config(disable=True)
    seed = first_validation_seed(cfg)
    with torch.random.fork_rng(devices=[]):
        images = [render_image(t2i, prompt, seed + i, cfg) for i, prompt in enumerate(prompts)]
    return images


def look_kept(videos: dict[str, list[np.ndarray]], images: list[np.ndarray], agreement=colour_agreement) -> dict:
    """Each video's colour agreement with the customized T2I's image of its prompt and seed, per variant; means.
    `agreement`: `colour_agreement` (the whole frame) or `subject_agreement` (without each frame's most common
    colour)."""
    per_video = {
        name: [agreement(v, np.broadcast_to(image, v.shape)) for v, image in zip(vs, images)]
        for name, vs in videos.items()
    }
    return {"per_video": per_video, "means": {name: float(np.mean(vs)) for name, vs in per_video.items()}}


def motion_read(videos: list[np.ndarray]) -> dict[str, float]:
    """How much `videos` move: the share VBench's rule calls dynamic (`dynamic_degree`, on Farneback optical flow at
    the check's frames taken as 8 fps) and the mean flow magnitude, px per frame pair (VBench's top-5% score)."""
    read = [dynamic_degree(video) for video in videos]
    return {key: float(np.mean([r[key] for r in read])) for key in ("dynamic_degree", "flow_magnitude")}


def motion_text(motion: dict[str, float], count: int) -> str:
    """`motion_read`'s figures in words: "5 of 8 videos move (optical flow 1.23 px per frame pair)"."""
    return (
        f"{round(motion['dynamic_degree'] * count)} of {count} videos move "
        f"(optical flow {motion['flow_magnitude']:.2f} px per frame pair)"
    )


def verdict(
    figures: dict[str, list[dict[str, float]]],
    kept: dict[str, float] | None = None,
    subject: dict[str, float] | None = None,
) -> dict:
    """Means per variant, the paired mean difference (Still-Moving - naive) of each figure, and a sentence. `kept`:
    each variant's mean colour agreement with the customized T2I's own images (`look_kept`'s means), judged too;
    `subject`: the same without each frame's most common colour (`look_kept(..., subject_agreement)`'s means)."""
    naive, ours = figures["naive injection"], figures["Still-Moving"]
    keys = list(naive[0])
    means = {name: {k: float(np.mean([f[k] for f in rows])) for k in keys} for name, rows in figures.items()}
    difference = {k: float(np.mean([b[k] - a[k] for a, b in zip(naive, ours)])) for k in keys}
    inconsistency = {name: 1 - m["colour_consistency"] for name, m in means.items()}
    tint = {name: m["tint_change"] for name, m in means.items()}
    binned = (
        inconsistency["Still-Moving"] >= WORSE_RATIO * inconsistency["naive injection"]
        and difference["colour_consistency"] <= -MIN_DROP
    )
    unbinned = (
        tint["Still-Moving"] >= TINT_RATIO * tint["naive injection"] and difference["tint_change"] >= MIN_TINT_RISE
    )
    lost = kept is not None and kept["Still-Moving"] <= kept["naive injection"] - LOOK_DROP
    lost_subject = subject is not None and subject["Still-Moving"] <= subject["naive injection"] - SUBJECT_DROP
    worse = binned or unbinned or lost or lost_subject
    message = (
        f"colour consistency {means['Still-Moving']['colour_consistency']:.3f} with the spatial adapters, "
        f"{means['naive injection']['colour_consistency']:.3f} with naive injection, tint change per frame "
        f"{255 * tint['Still-Moving']:.2f} and {255 * tint['naive injection']:.2f} grey levels "
        f"({len(naive)} paired videos in {VALIDATION_DIR}/)"
    )
    if worse:
        flicker = "their colours flicker more" if binned else "their tint flickers more" if unbinned else None
        look = (
            "their colours agree less with the customized T2I's own images"
            if lost
            else "their colours other than the most common agree less with the customized T2I's images"
            if lost_subject
            else None
        )
        message += (
            f"; the adapters make the videos WORSE than naive injection ({'; '.join(filter(None, (flicker, look)))}): "
            "look at the videos; "
            "fewer --steps, a lower --lr or --spatial-rank (1 halved a subject's costs on the embedded world), "
            "--reencode-images 1 or 0.5 (1 removed one subject's costs there and cost another its look), "
            "generate --spatial-blocks down,mid (the adapters of the UNet's down and mid blocks only), --spatial-scale "
            "below 1 or --spatial-min-timestep 200 (the adapters off at the last, low-noise steps), or generating "
            "without --spatial-adapters may serve you better"
        )
    return {"means": means, "difference": difference, "worse_than_naive": worse, "message": message}


def reading_gains(side: dict, full: dict) -> list[float]:
    """`ENCODER_SIDE`'s adapters against every block's on each of the check's readings, positive where they read better:
    colour consistency, tint change (lower is better) and, where both read them, agreement with the customized T2I's
    images, whole and without the most common colour (`side`: `check_encoder_side`'s result; `full`: the check's
    own)."""
    ours, theirs = side["means"], full["means"]["Still-Moving"]
    gains = [ours["colour_consistency"] - theirs["colour_consistency"], theirs["tint_change"] - ours["tint_change"]]
    for key in ("t2i_agreement", "subject_agreement"):
        kept = full.get(key)
        if side.get(key) is not None and kept is not None:
            gains.append(side[key] - kept["means"]["Still-Moving"])
    return gains


def less_worse(side: dict, full: dict) -> bool:
    """Whether `ENCODER_SIDE`'s adapters read no worse than every block's on each of the check's readings."""
    return all(gain >= 0 for gain in reading_gains(side, full))


def better_somewhere(side: dict, full: dict) -> bool:
    """Whether `ENCODER_SIDE`'s adapters read better than every block's on at least one reading: where both pass and
    tie on every reading, every block's, the paper's, stay."""
    return any(gain > 0 for gain in reading_gains(side, full))


def recorded_reason(full: dict, side: dict, no_worse: bool) -> str | None:
    """Why `ENCODER_SIDE`'s adapters are recorded for generate (`RECORDED_WHY`: every block's are worse and these pass;
    `LESSER_WHY`: both are worse and these no worse than every block on each reading; `NO_WORSE_WHY`: both pass, these
    no worse on each reading and better on one), or None: every block's stay. `full`: the check's verdict; `side`:
    `check_encoder_side`'s; `no_worse`: `less_worse(side, full)`."""
    if full["worse_than_naive"] and not side["worse_than_naive"]:
        return RECORDED_WHY
    if full["worse_than_naive"] and no_worse:  # the lesser of two, both worse
        return LESSER_WHY
    if not full["worse_than_naive"] and not side["worse_than_naive"] and no_worse and better_somewhere(side, full):
        return NO_WORSE_WHY
    return None


def check_encoder_side(pipe, spatial, prompts, cfg, output: Path, checked: dict, t2i) -> dict:
    """The adapters found worse than naive injection, tried on `ENCODER_SIDE` only: the same prompts and seeds,
    written as `validation/still_moving_down_mid_*.gif`, judged by `verdict` against naive injection's readings in
    `checked`, the check's own result (its figures and, with `t2i`, its look agreements), which are not read again."""
    ours = encoder_side_videos(pipe, spatial, prompts, cfg)
    for i, video in enumerate(ours):
        write_video(video, output / VALIDATION_DIR / f"{ENCODER_SIDE_VIDEOS}_{i:03d}.gif")
    figures = {
        "naive injection": checked["figures"]["naive injection"],
        "Still-Moving": [video_figures(v) for v in ours],
    }

    def looks(key: str, agreement) -> dict[str, float]:  # naive injection's mean from `checked`, ours measured
        naive = checked[key]["means"]["naive injection"]
        return {
            "naive injection": naive,
            "Still-Moving": look_kept({"Still-Moving": ours}, t2i, agreement)["means"]["Still-Moving"],
        }

    kept = looks("t2i_agreement", colour_agreement) if t2i else None
    subject = looks("subject_agreement", subject_agreement) if t2i else None
    judged = verdict(figures, kept, subject)
    means = judged["means"]["Still-Moving"]
    motion = motion_read(ours)
    figures_text = (
        f"colour consistency {means['colour_consistency']:.3f}, tint change {255 * means['tint_change']:.2f} grey "
        f"levels"
        + (
            f", agreement with the T2I's images {kept['Still-Moving']:.3f} "
            f"({subject['Still-Moving']:.3f} without the most common colour)"
            if kept
            else ""
        )
        + f", {motion_text(motion, len(ours))}"
    )
    message = (
        f"on the UNet's down and mid blocks only (generate --spatial-blocks {ENCODER_SIDE}) the adapters are worse "
        f"than naive injection ({figures_text})"
        if judged["worse_than_naive"]
        else f"on the UNet's down and mid blocks only they are not worse than naive injection ({figures_text}; "
        f"{VALIDATION_DIR}/{ENCODER_SIDE_VIDEOS}_*.gif)"
    )  # check_against_naive says what follows from it
    return {
        "spatial_blocks": ENCODER_SIDE,
        "figures": figures["Still-Moving"],
        "means": means,
        "difference": judged["difference"],
        "worse_than_naive": judged["worse_than_naive"],
        "t2i_agreement": kept and kept["Still-Moving"],
        "subject_agreement": subject and subject["Still-Moving"],
        "motion": motion,
        "message": message,
    }


def check_against_naive(
    pipe, spatial, motion, cfg, prompts: list[str], output: Path, t2i: list[np.ndarray] | None = None
) -> dict | None:
    """Generate one validation video per prompt with and without the adapters, write and score them; print and
    return the verdict (None without prompts: the check is off). `t2i`: the customized T2I's image of each prompt
    and seed (`t2i_images`), compared with both variants' videos. Adapters on the up blocks too are also tried on
    `ENCODER_SIDE` (`check_encoder_side`), which is recorded in `output`'s customization.json when every block's are
    worse and it passes, or is worse too but no worse than every block on each reading (`less_worse`), or when
    both pass and it reads no worse than every block on each reading and better on one (`better_somewhere`)."""
    if not prompts:
        return None
    if motion is not None:
        motion.set_scale(0.0)  # the inference setting: motion adapter removed
    pipe.set_progress_bar_config(disable=True)
    pipe.unet.eval()
    videos = validation_videos(pipe, spatial, prompts, cfg)
    figures = {name: [video_figures(v) for v in vs] for name, vs in videos.items()}
    for name, vs in videos.items():
        for i, video in enumerate(vs):
            write_video(video, output / VALIDATION_DIR / f"{re.sub(r'[^a-z]+', '_', name.lower())}_{i:03d}.gif")
    agreement = float(np.mean([colour_agreement(a, b) for a, b in zip(*videos.values())]))
    looks = look_kept(videos, t2i) if t2i else None
    subject = look_kept(videos, t2i, subject_agreement) if t2i else None
    result = {
        "prompts": prompts,
        "seeds": [first_validation_seed(cfg) + i for i in range(len(prompts))],
        "figures": figures,
        **verdict(figures, looks and looks["means"], subject and subject["means"]),
        "colour_agreement": agreement,
    }
    result["message"] += (
        f"; colours agree with naive injection's at {agreement:.3f} (1: the same look; lower: the adapters change it)"
    )
    if looks:
        for i, image in enumerate(t2i):
            write_image(image, output / VALIDATION_DIR / f"customized_t2i_{i:03d}.png")
        result["t2i_agreement"], result["subject_agreement"] = looks, subject
        kept, rest = looks["means"], subject["means"]
        result["message"] += (
            f"; colours agree with the customized T2I's own images at {kept['Still-Moving']:.3f} with the adapters, "
            f"{kept['naive injection']:.3f} with naive injection ({rest['Still-Moving']:.3f} and "
            f"{rest['naive injection']:.3f} without each frame's most common colour)"
        )
    result["motion"] = motion = {name: motion_read(vs) for name, vs in videos.items()}
    result["message"] += (
        f"; with the adapters {motion_text(motion['Still-Moving'], len(prompts))}, with naive injection "
        f"{motion_text(motion['naive injection'], len(prompts))}"
        f"; all at {cfg.sample_steps} steps, guidance {cfg.guidance_scale:g} (--sample-steps, --guidance-scale)"
    )
    side = None
    if has_decoder_side(spatial):
        side = result["encoder_side"] = check_encoder_side(pipe, spatial, prompts, cfg, output, result, t2i)
        no_worse = less_worse(side, result)
        side["less_worse_than_every_block"] = side["worse_than_naive"] and no_worse
        side["no_worse_than_every_block"] = no_worse
        why = recorded_reason(result, side, no_worse)
        side["message"] += {
            RECORDED_WHY: f": {APPLIED}",
            LESSER_WHY: f", though less so than every block on each reading: {APPLIED}; "
            "naive injection (generate --spatial-scale 0) is better than both",
            NO_WORSE_WHY: f", and no worse than every block on each reading: {APPLIED}",
        }.get(why, "")
        if why:
            record_spatial_blocks(output, ENCODER_SIDE, why)
        elif not result["worse_than_naive"]:  # every block's pass and stay
            side["message"] += (
                "; every block's adapters stay"
                if side["worse_than_naive"]
                else ", and read the same as every block on each reading: every block's stay"
                if no_worse  # a tie on every reading
                else ", but every block's read better on at least one reading and stay"
            )
    write_text(output / REPORT_FILE, json.dumps(result, indent=2) + "\n")
    (logger.warning if result["worse_than_naive"] else logger.info)(f"validation: {result['message']}")
    if side is not None:  # a line of its own: what generate will do
        warn = side["worse_than_naive"] and result["worse_than_naive"]  # nothing that passes is left to apply
        (logger.warning if warn else logger.info)(f"validation: {side['message']}")
    return result
