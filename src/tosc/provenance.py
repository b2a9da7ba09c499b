"""What produced a result: package versions and the git commit of the tosc checkout."""

from __future__ import annotations

import functools
import importlib.metadata
import platform
import subprocess
from pathlib import Path

__all__ = ["package_versions", "git_commit", "TRACKED_PACKAGES", "require_tested"]

TRACKED_PACKAGES = (
    "tosc",
    "torch",
    "numpy",
    "scipy",
    "compressai",
    "sionna-no-rt",
    "pillow",
    "pillow-heif",
    "imagecodecs",
    "av",
)


def require_tested(module: str, label: str, tested: tuple[tuple[int, ...], ...]) -> str:
    """Import ``module`` and return its ``__version__`` if its leading version numbers match one
    of ``tested`` (e.g. ``((2,),)`` for any 2.x, ``((1, 2),)`` for 1.2.x); otherwise raise
    DependencyMissingError naming ``label`` and what is supported. For the adapters that read
    a library's internals, which move between releases."""
    import importlib

    from .errors import DependencyMissingError

    try:
        package = importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - the package requires it
        raise DependencyMissingError(f"{label} is not installed ({exc}); run make setup") from None
    version = str(getattr(package, "__version__", "0"))
    try:
        numbers = tuple(int(p) for p in version.split(".")[:3])
    except ValueError:
        numbers = ()
    if not any(numbers[:len(t)] == t for t in tested):
        supported = ", ".join(".".join(map(str, t)) + ".x" for t in tested)
        raise DependencyMissingError(f"{label} {version} is untested; tosc's adapter supports {supported} "
                                     "(pin the one in requirements.lock)")
    return version


@functools.lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


@functools.lru_cache(maxsize=1)
def git_commit() -> str:
    """HEAD of the checkout tosc was imported from, ``+dirty`` if it has local changes,
    or ``"unknown"`` for an installed copy outside git."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here, capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")
