"""Adapters: the motion LoRA (stage 1) and the spatial adapters (stage 2)."""
