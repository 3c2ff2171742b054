"""The repository passes its linter and formatter (ruff, configured in pyproject.toml), so CI's one test command
checks them too: `.venv/bin/ruff check --fix . && .venv/bin/ruff format .` mends most of what these report."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def ruff(*args: str) -> subprocess.CompletedProcess:
    """The venv's ruff (the locked version), run on the whole repository as CI runs it."""
    return subprocess.run([sys.executable, "-m", "ruff", *args, "."], cwd=ROOT, capture_output=True, text=True)


@pytest.mark.parametrize("command", [("check", "--no-cache"), ("format", "--check", "--no-cache")])
def test_ruff_passes(command):
    result = ruff(*command)
    assert result.returncode == 0, f"`ruff {' '.join(command)} .` failed:\n{result.stdout}{result.stderr}"
