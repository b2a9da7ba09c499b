"""Shipped checkpoints (task networks and codecs), found by name.

Files live in this folder (``tasks/<name>.pt``, ``codecs/<name>.pt``); set
``$TOSC_ZOO`` to use another folder, e.g. one with models you trained yourself.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["zoo_dir", "task_path", "codec_path"]


def zoo_dir() -> Path:
    return Path(os.environ.get("TOSC_ZOO", Path(__file__).resolve().parent))


def task_path(name: str) -> Path:
    return zoo_dir() / "tasks" / f"{name}.pt"


def codec_path(name: str) -> Path:
    return zoo_dir() / "codecs" / f"{name}.pt"
