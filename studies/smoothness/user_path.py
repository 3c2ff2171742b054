"""What a user's `customize` then `generate --customization` give on a demo section: the blocks customize's end-of-run
check recorded in a `recipes.py` run trained with it (`{"num_validation_videos": 8}`), the section's videos made again
with those blocks (where it recorded some; else the run's own videos, every block), each minus naive injection with
its paired 95% bootstrap interval, beside every block's (session 33).

python studies/smoothness/user_path.py DEMO_DIR TARGET VIDEO_MODEL LORA_WEIGHT RUN_DIR
  e.g. python studies/smoothness/user_path.py runs/demo star animatediff 1 runs/user_star/check
RUN_DIR: OUT/NAME of the recipes.py run (its customization.json, metrics.json, and OUT/naive.json).
"""

import json
import sys
from pathlib import Path

from recipes import compared, figures, section  # noqa: E402  (this folder, on the path when run as a script)

from stillmoving.loading import assemble_pipeline
from stillmoving.run_folder import SPATIAL_ADAPTERS, SPATIAL_BLOCKS, load_record


def main(demo: Path, target: str, video_model: str, weight: float, run: Path) -> None:
    blocks = load_record(run).get(SPATIAL_BLOCKS)
    naive = json.loads((run.parent / "naive.json").read_text())
    every = json.loads((run / "metrics.json").read_text())
    ours = every
    if blocks:
        cfg, m1 = section(demo, target, video_model, weight)
        adapters = str(run / SPATIAL_ADAPTERS)
        pipe = assemble_pipeline(
            cfg.model, customized=m1["customized"], loras=m1["loras"], spatial_adapters=adapters, spatial_blocks=blocks
        )
        ours = figures(pipe, cfg, target)
        (run / "metrics_recorded_blocks.json").write_text(json.dumps(ours))
    print(json.dumps({"run": str(run), "recorded_blocks": blocks, "every_block": compared(every, naive)}))
    print(json.dumps({"run": str(run), "users_path": compared(ours, naive)}), flush=True)


if __name__ == "__main__":
    a = sys.argv
    main(Path(a[1]), a[2], a[3], float(a[4]), Path(a[5]))
