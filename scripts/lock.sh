#!/usr/bin/env bash
# Refresh requirements-lock.txt: install ".[test,ui]" unlocked (the newest versions pip picks today, PyTorch
# pinned as in setup.sh) into a fresh temporary virtual environment, run the test suite there, and only if
# it passes write every installed version (transitive ones included; torch, triton and nvidia-* left to
# setup.sh) to the lock, atomically. Usage: bash scripts/lock.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv"
pip=("$tmp/venv/bin/python" -m pip --disable-pip-version-check)
"${pip[@]}" install --quiet "${TORCH_SPEC:-torch==2.13.0}"
"${pip[@]}" install --quiet -e ".[test,ui]"
# tests/test_lock.py compares the environment with the lock being replaced: it is the one test left out.
"$tmp/venv/bin/python" -m pytest --ignore=tests/test_lock.py "$@"
{
  echo "# Exact versions the test suite passed with (Python $("$tmp/venv/bin/python" -c 'import platform; print(platform.python_version())'), ${TORCH_SPEC:-torch==2.13.0} installed separately by setup.sh)."
  echo "# Written by \`bash scripts/lock.sh\`; do not edit by hand."
  "${pip[@]}" freeze --all --exclude-editable | grep -v '^#' | grep -viE '^(pip|torch|triton|nvidia-[a-z0-9._-]+)==' |
    LC_ALL=C sort -f -t '=' -k 1,1
} >"$tmp/lock"
if grep -v '^#' "$tmp/lock" | grep -qv '=='; then
  echo "lock.sh: a package is not pinned with ==:" >&2
  grep -v '^#' "$tmp/lock" | grep -v '==' >&2
  exit 1
fi
cp "$tmp/lock" requirements-lock.txt.tmp
mv requirements-lock.txt.tmp requirements-lock.txt
echo "requirements-lock.txt written ($(grep -vc '^#' requirements-lock.txt) packages)"
