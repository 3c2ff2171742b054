"""Model files as users have them: single-file checkpoints, AnimateDiff motion modules, LoRA files.

`safety` reads any weights file without unpickling code; `single_file` turns an original-LDM-layout
Stable Diffusion checkpoint into diffusers components; `motion_modules` recognises AnimateDiff
v1/v2/v3 motion-module files and loads them as a diffusers `MotionAdapter`. Every conversion is
diffusers' own (`from_single_file`); configs come from a local folder, by default the SD1.5 ones
shipped in `configs/` (SDXL base 1.0's for an SDXL checkpoint), so nothing reaches for the Hub.
"""

from pathlib import Path

SHIPPED_CONFIGS = Path(__file__).parent / "configs" / "sd15"  # SD1.5 + AnimateDiff diffusers configs
SHIPPED_SDXL_CONFIGS = Path(__file__).parent / "configs" / "sdxl"  # SDXL base 1.0 + mm_sdxl_v10_beta configs
