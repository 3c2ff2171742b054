"""`stillmoving bench`: what each Still-Moving stage costs, against a floor and a straightforward version.

For each preset (a model size) one run measures, on the same cached batch and one shared model, seconds
per step (median of interleaved rounds, `measure.py`), peak memory and model FLOPs of the motion stage,
the spatial stage, the floor and the straightforward stage 2 (`steps.py`), seconds per generated video
with and without spatial adapters, and optionally the whole `customize` command against a straightforward
one (`whole.py`). On CUDA, MFU is FLOPs per step / seconds per step / the GPU's peak dense bf16 FLOP/s.
All models are random or shipped (`models.py`): nothing is downloaded. The real-size presets (SD1.5 + AnimateDiff
v2 or v3, AnimateDiff-SDXL, ModelScope/ZeroScope, random weights) are meant for a GPU, or for `--device meta`, which
counts their parameters and FLOPs (`cost.py`); every stage conditions the UNet through the family's backend
(`stillmoving.backends`), as training does.
"""

from stillmoving.bench.models import PRESETS, Preset
from stillmoving.bench.run import BenchReport, BenchSettings, parse_presets, run_bench, write_report
from stillmoving.bench.tables import customize_table, generation_table, training_table

__all__ = [
    "PRESETS",
    "Preset",
    "BenchReport",
    "BenchSettings",
    "parse_presets",
    "run_bench",
    "write_report",
    "customize_table",
    "generation_table",
    "training_table",
]
