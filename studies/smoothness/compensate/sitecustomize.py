"""Session 19's study of re-encoding's round-trip drift, in `stillmoving` commands run as separate processes (the
unseen-subject study's `customize`): with this folder on PYTHONPATH and COMPENSATE=1, `customize --reencode-images`
re-encodes through `reencode.compensated` (the round trip's drift added back). A study switch, not an option.

    COMPENSATE=1 PYTHONPATH=studies/smoothness/compensate stillmoving customize ... --reencode-images 0.5
"""

import os
import sys
from pathlib import Path

if os.environ.get("COMPENSATE") == "1":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from reencode import compensated

    from stillmoving.training import spatial_stage

    spatial_stage.reencoded = compensated
