"""python kept_on.py IN OUT PREFIX...: the adapter file IN with every adapter outside the layers starting with one of
the PREFIXes made the identity (its A_up zero), written to OUT; finer than `generate --spatial-blocks` (e.g.
"down_blocks.1." "mid_block." keeps the encoder side without its full-resolution block). Session 23's dissection of
the heavily drifted star (docs/method.md, "Which adapters cost the heavily drifted subject its look")."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "smoothness"))
from adapter_blocks import kept_on  # noqa: E402

if __name__ == "__main__":
    kept_on(Path(sys.argv[1]), tuple(sys.argv[3:]), Path(sys.argv[2]))
