"""customize's end-of-run check, re-decided on finished runs with today's readings (session 27).

For each run folder given (a `customize` output whose `validation/` holds the down and mid blocks' videos), prints
every block's subject agreement minus naive injection's (`video_metrics.subject_agreement`, the look without each
frame's most common colour), the down and mid blocks' minus every block's, the blocks the run recorded and those
today's check records. The figures and whole-frame looks are `validation.json`'s; a run written before session 27
has no subject agreement there, so it is computed from its GIFs and PNGs (GIF palettes: a close copy of the videos;
on session 27's runs, which hold both, the choice was the same on all four).

    .venv/bin/python studies/unseen/check_readings.py runs/unseen_t*/heavy/*/default runs/unseen/mild/*/default
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from stillmoving.data.video_io import read_video
from stillmoving.training import naive_check
from stillmoving.video_metrics import subject_agreement

REASONS = {
    naive_check.RECORDED_WHY: "they pass",
    naive_check.LESSER_WHY: "the lesser of two",
    naive_check.NO_WORSE_WHY: "no worse",
}


def from_files(validation: Path, name: str) -> float:
    """Mean subject agreement of the eight `name`_*.gif with the customized T2I's images of their prompts."""
    paths = sorted(validation.glob("customized_t2i_*.png"))
    images = [np.asarray(Image.open(path).convert("RGB")) for path in paths]
    videos = [read_video(validation / f"{name}_{path.stem.rsplit('_', 1)[1]}.gif") for path in paths]
    return naive_check.look_kept({name: videos}, images, subject_agreement)["means"][name]


def choice(folder: Path) -> tuple[str, float, float]:
    """Today's check's blocks for a run, every block's subject agreement minus naive injection's, and the down and
    mid blocks' minus every block's."""
    record = json.loads((folder / naive_check.REPORT_FILE).read_text())
    side_record = record["encoder_side"]
    if record.get("subject_agreement"):
        subject = record["subject_agreement"]["means"]
        side_subject = side_record["subject_agreement"]
    else:
        videos = folder / "validation"
        names = {"naive injection": "naive_injection", "Still-Moving": "still_moving"}
        subject = {key: from_files(videos, name) for key, name in names.items()}
        side_subject = from_files(videos, naive_check.ENCODER_SIDE_VIDEOS)
    looks = record["t2i_agreement"]["means"]
    full = naive_check.verdict(record["figures"], looks, subject)
    full.update(t2i_agreement=record["t2i_agreement"], subject_agreement={"means": subject})
    naive = record["figures"]["naive injection"]
    side_looks = {"naive injection": looks["naive injection"], "Still-Moving": side_record["t2i_agreement"]}
    side_subjects = {"naive injection": subject["naive injection"], "Still-Moving": side_subject}
    judged = naive_check.verdict(
        {"naive injection": naive, "Still-Moving": side_record["figures"]}, side_looks, side_subjects
    )
    side = {
        "means": judged["means"]["Still-Moving"],
        "t2i_agreement": side_record["t2i_agreement"],
        "subject_agreement": side_subject,
    }
    side["worse_than_naive"] = judged["worse_than_naive"]
    why = naive_check.recorded_reason(full, side, naive_check.less_worse(side, full))
    blocks = f"down,mid ({REASONS[why]})" if why else "every block"
    gain = subject["Still-Moving"] - subject["naive injection"]
    return blocks, gain, side_subject - subject["Still-Moving"]


def main(folders: list[str]) -> None:
    print("| run | every block minus naive | down,mid minus every block | recorded then | today's check |")
    print("| --- | --- | --- | --- | --- |")
    for folder in map(Path, folders):
        blocks, gain, side = choice(folder)
        recorded = json.loads((folder / "customization.json").read_text()).get("spatial_blocks") or "every block"
        print(f"| {folder} | {gain:+.3f} | {side:+.3f} | {recorded} | {blocks} |")


if __name__ == "__main__":
    main(sys.argv[1:])
