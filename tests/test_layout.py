"""The README's layout table matches the tree: every path it names exists, and every module of the package
is named by a row (its own path or a folder above it)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "stillmoving"
ENTRY_POINTS = {"__init__.py", "__main__.py", "cli.py"}  # the package itself; cli.py has its own row


def layout_paths() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[2] for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    return [p for row in rows[1:] for p in re.findall(r"`([^`\s]+)`", row) if "/" in p]


def test_every_path_in_the_layout_table_exists():
    missing = [p for p in layout_paths() if not (ROOT / p.split(" ")[0]).exists()]
    assert not missing, f"README layout names paths that do not exist: {missing}"


def test_every_module_is_named_by_a_row():
    named = [ROOT / p.rstrip("/") for p in layout_paths()]
    unnamed = [
        str(module.relative_to(ROOT))
        for module in PACKAGE.rglob("*.py")
        if module.name not in ENTRY_POINTS or module.parent != PACKAGE
        if module.name != "__init__.py" and not any(module == n or n in module.parents for n in named)
    ]
    assert not unnamed, f"modules the README's layout table does not name: {unnamed}"
