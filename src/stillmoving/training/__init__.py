"""Training: the motion adapter, the spatial adapters and the T2I customizers, on one accelerate loop."""
