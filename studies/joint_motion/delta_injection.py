"""On the jointly trained video model, naive injection replaces V's own spatial weights (9.45% away from M) with
M1's, and the videos lose motion. Does keeping V's weights and adding only the customization, V + (M1 - M)
("delta injection"), keep the motion and the look? The demo's videos of a section for the base T2V, naive injection
and delta injection, with each minus naive injection's paired 95% intervals (FULL=1: today's demo prompts and
seeds, 8 x 4). Still-Moving's adapters trained and applied on delta injection: `recipes.py ... '{"delta": true}'`.

python studies/joint_motion/delta_injection.py DEMO_DIR TARGET [OUT.json]   (OUT: every variant's per-video values)
"""

import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "smoothness"))
from recipes import compared, figures, means, section  # noqa: E402

from stillmoving.loading import assemble_pipeline  # noqa: E402
from stillmoving.world.weights import shipped_model  # noqa: E402


def main(demo: Path, target: str, out: Path | None) -> None:
    torch.set_num_threads(int(os.environ.get("THREADS", 2)))
    cfg, m1 = section(demo, target, "joint", 1.0)
    kept = {"base T2V": figures(assemble_pipeline(cfg.model), cfg, target)}
    print(json.dumps({"variant": "base T2V", **means(kept["base T2V"])}), flush=True)
    naive = None
    for name in ("naive injection", "delta injection"):
        base = str(shipped_model()) if name == "delta injection" else None  # M: generate --base-t2i
        pipe = assemble_pipeline(cfg.model, customized=m1["customized"], loras=m1["loras"], base_t2i=base)
        values = kept[name] = figures(pipe, cfg, target)
        row = means(values) if naive is None else compared(values, naive)
        naive = naive or values
        print(json.dumps({"variant": name, **row}), flush=True)
    if out is not None:
        out.write_text(json.dumps(kept))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]) if len(sys.argv) > 3 else None)
