"""On the jointly trained video model, naive injection replaces V's own spatial weights (9.45% away from M) with
M1's, and the videos lose motion. Does keeping V's weights and adding only the customization, V + (M1 - M)
("delta injection"), keep the motion and the look? The demo's videos of a section for both, with Still-Moving minus
naive injection's paired 95% intervals (FULL=1: today's demo prompts and seeds, 8 x 4).

python studies/joint_motion/delta_injection.py DEMO_DIR TARGET
"""

import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "smoothness"))
from recipes import compared, figures, means, section  # noqa: E402

from stillmoving.injection import spatial_state_dict  # noqa: E402
from stillmoving.loading import assemble_pipeline  # noqa: E402
from stillmoving.world.weights import shipped_model  # noqa: E402


def main(demo: Path, target: str) -> None:
    torch.set_num_threads(int(os.environ.get("THREADS", 2)))
    cfg, m1 = section(demo, target, "joint", 1.0)
    v_spatial = spatial_state_dict(assemble_pipeline(cfg.model).unet)
    m_spatial = spatial_state_dict(assemble_pipeline(str(shipped_model())).unet)  # M: the first model's spatial layers
    naive = None
    for name in ("naive injection", "delta injection"):
        pipe = assemble_pipeline(cfg.model, customized=m1["customized"], loras=m1["loras"])
        if name == "delta injection":
            m1_spatial = spatial_state_dict(pipe.unet)
            delta = {k: v + (v_spatial[k] - m_spatial[k]) for k, v in m1_spatial.items() if v.is_floating_point()}
            pipe.unet.load_state_dict(delta, strict=False)
        values = figures(pipe, cfg, target)
        row = means(values) if naive is None else compared(values, naive)
        naive = naive or values
        print(json.dumps({"variant": name, **row}), flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
