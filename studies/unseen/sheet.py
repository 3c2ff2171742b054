"""A contact sheet of one run of `run.py`: naive injection above Still-Moving for every other (prompt, seed), one
frame per column, then the customized T2I's first images customize trained on.

    .venv/bin/python studies/unseen/sheet.py runs/unseen/heavy/animatediff/default sheet.png [eval_g4]
"""

import sys
from pathlib import Path

from PIL import Image, ImageSequence

CELL = 48  # pixels per frame on the sheet (the world's 32 px, enlarged without smoothing)


def frames(path: Path) -> list[Image.Image]:
    with Image.open(path) as gif:
        return [f.convert("RGB").resize((CELL, CELL), Image.NEAREST) for f in ImageSequence.Iterator(gif)]


def main(run: str, out: str, videos: str = "eval") -> None:
    run = Path(run)
    naive, ours = (sorted((run / videos / v).glob("*.gif")) for v in ("naive", "still_moving"))
    pairs = [(frames(a), frames(b)) for a, b in list(zip(naive, ours))[::2]]
    images = [frames(p)[0] for p in sorted((run / "images").glob("*.png"))[:8]]
    width = CELL * max(len(pairs[0][0]), len(images))
    sheet = Image.new("RGB", (width, (2 * CELL + 4) * len(pairs) + CELL), "white")
    y = 0
    for pair in pairs:
        for row in pair:
            for x, frame in enumerate(row):
                sheet.paste(frame, (CELL * x, y))
            y += CELL
        y += 4  # a white gap between pairs
    for x, image in enumerate(images):
        sheet.paste(image, (CELL * x, y))
    sheet.save(out)


if __name__ == "__main__":
    main(*sys.argv[1:])
