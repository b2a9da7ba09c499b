"""Checkpoints: one atomic ``.pt`` file holding weights, config, metrics and identity.

A checkpoint is a dict ``{"format": "tosc-checkpoint", "kind", "arch", "config",
"state_dict", "metrics", "versions", "git_commit", ...}``. Loading checks the format
and the architecture before touching the weights, so a corrupt file or one made
for another model gives a clear error instead of a shape mismatch deep in torch.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from .errors import CorruptFileError
from .io import atomic_write_bytes
from .provenance import git_commit, package_versions

__all__ = ["save_checkpoint", "load_checkpoint", "FORMAT"]

FORMAT = "tosc-checkpoint"


def save_checkpoint(path: str | os.PathLike, *, kind: str, arch: str, state_dict: dict, config: dict,
                    metrics: dict | None = None, **extra: Any) -> None:
    payload = {
        "format": FORMAT,
        "format_version": 1,
        "kind": kind,
        "arch": arch,
        "config": config,
        "state_dict": {k: v.detach().cpu() if torch.is_tensor(v) else v for k, v in state_dict.items()},
        "metrics": metrics or {},
        "versions": package_versions(),
        "git_commit": git_commit(),
        **extra,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | os.PathLike, *, kind: str | None = None, arch: str | None = None) -> dict:
    """Read a checkpoint on the CPU; ``kind``/``arch`` must match when given."""
    path = Path(path)
    if not path.is_file():
        raise CorruptFileError(f"{path}: no such checkpoint")
    try:
        # weights_only: a checkpoint is data, never code
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError, OSError, ValueError) as exc:
        raise CorruptFileError(f"{path}: not a readable checkpoint ({str(exc).splitlines()[0]})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CorruptFileError(f"{path}: not a tosc checkpoint")
    if kind is not None and payload.get("kind") != kind:
        raise CorruptFileError(f"{path}: is a {payload.get('kind')} checkpoint, expected {kind}")
    if arch is not None and payload.get("arch") != arch:
        raise CorruptFileError(f"{path}: holds architecture {payload.get('arch')!r}, expected {arch!r}")
    return payload
