#!/usr/bin/env bash
# One-time set-up (idempotent): a virtual environment in .venv with exactly the versions the tests passed
# with. PyTorch first, pinned (2.13.0; on a CPU machine with a local wheel this takes the CPU build instead
# of several GB of CUDA packages; override with TORCH_SPEC), then every other dependency at its version in
# requirements-lock.txt, then stillmoving itself without dependencies, so nothing can move a locked version.
# `bash scripts/lock.sh` refreshes the lock.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
pip=(.venv/bin/python -m pip --disable-pip-version-check)
"${pip[@]}" install --quiet "${TORCH_SPEC:-torch==2.13.0}"
"${pip[@]}" install --quiet -r requirements-lock.txt
"${pip[@]}" install --quiet --no-deps -e ".[test,ui]"
"${pip[@]}" check
# The web app's browser test drives Debian's Chromium; as root, install it where it is missing (else that test skips).
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! { command -v chromium && command -v chromedriver; } >/dev/null; then
  apt-get install -y -q chromium chromium-driver >/dev/null || echo "setup.sh: chromium not installed; the browser test will skip" >&2
fi
