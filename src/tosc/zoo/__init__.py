"""Shipped checkpoints (task networks and codecs), found by name.

Files live in this folder (``tasks/<name>.pt``, ``codecs/<name>.pt``); set
``$TOSC_ZOO`` to use another folder, e.g. one with models you trained yourself.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["zoo_dir", "task_path", "codec_path"]


def zoo_dir() -> Path:
    """``$TOSC_ZOO`` when set and not empty (it must be a folder), else this package's folder.

    An empty value is ignored: it would otherwise mean the current folder."""
    value = os.environ.get("TOSC_ZOO", "").strip()
    if not value:
        return Path(__file__).resolve().parent
    path = Path(value).expanduser()
    if not path.is_dir():
        from ..errors import ConfigError

        raise ConfigError(f"TOSC_ZOO={value}: {'is not a folder' if path.exists() else 'no such folder'} "
                          "(unset it to use the shipped models)")
    return path


def task_path(name: str) -> Path:
    return zoo_dir() / "tasks" / f"{name}.pt"


def codec_path(name: str) -> Path:
    return zoo_dir() / "codecs" / f"{name}.pt"
