#!/usr/bin/env bash
# One-time set-up (idempotent): a virtual environment in .venv with PyTorch pinned (2.13.0; on a CPU
# machine with a local wheel this takes the CPU build instead of several GB of CUDA packages), then
# stillmoving itself with its test tools. Override the torch requirement with TORCH_SPEC if needed.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check "${TORCH_SPEC:-torch==2.13.0}"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test]"
