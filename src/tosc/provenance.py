"""What produced a result: package versions and the git commit of the tosc checkout."""

from __future__ import annotations

import functools
import importlib.metadata
import platform
import subprocess
from pathlib import Path

__all__ = ["package_versions", "git_commit", "TRACKED_PACKAGES"]

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
