"""The environment is the one the tests were locked with: requirements-lock.txt against what is installed.

`bash scripts/setup.sh` installs the lock; `bash scripts/lock.sh` refreshes it (and leaves this file out of
the run it locks, since it compares with the lock being replaced)."""

from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

LOCK = Path(__file__).parents[1] / "requirements-lock.txt"
REFRESH = "run `bash scripts/setup.sh` to install the lock, or `bash scripts/lock.sh` to refresh it"


def unlocked(name: str) -> bool:
    """PyTorch and its CUDA packages: pinned by setup.sh's TORCH_SPEC, never by the lock."""
    return name in ("torch", "triton") or name.startswith("nvidia-")


def locked_versions() -> dict[str, str]:
    lines = [line.strip() for line in LOCK.read_text().splitlines()]
    requirements = [Requirement(line) for line in lines if line and not line.startswith("#")]
    return {canonicalize_name(r.name): str(next(iter(r.specifier)).version) for r in requirements}


def installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def needed(root: str, extras: tuple[str, ...]) -> set[str]:
    """Every distribution `root[extras]` needs, transitively, with environment markers evaluated."""
    seen, todo = set(), [(canonicalize_name(root), extra) for extra in ("", *extras)]
    while todo:
        name, extra = todo.pop()
        if (name, extra) in seen:
            continue
        seen.add((name, extra))
        if installed_version(name) is None:
            continue  # reported by the caller, not walked
        for requirement in map(Requirement, metadata.requires(name) or []):
            if requirement.marker is None or requirement.marker.evaluate({"extra": extra}):
                todo += [(canonicalize_name(requirement.name), e) for e in ("", *requirement.extras)]
    return {name for name, _ in seen} - {canonicalize_name(root)}


def test_installed_versions_are_the_locked_ones():
    drift = [
        f"{name}: locked {locked}, installed {installed or 'none'}"
        for name, locked in sorted(locked_versions().items())
        if (installed := installed_version(name)) is None or Version(installed) != Version(locked)
    ]
    assert not drift, f"{len(drift)} packages differ from {LOCK.name} ({REFRESH}):\n  " + "\n  ".join(drift)


def test_the_lock_pins_every_dependency():
    missing = sorted(
        name for name in needed("stillmoving", ("test", "ui")) if not unlocked(name) and name not in locked_versions()
    )
    assert not missing, f"{LOCK.name} lacks {', '.join(missing)} ({REFRESH})"


def test_the_lock_leaves_pytorch_to_setup():
    assert not [name for name in locked_versions() if unlocked(name)]
