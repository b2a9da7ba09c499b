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
import re
import warnings
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
    if path.stat().st_size == 0:
        raise CorruptFileError(f"{path}: not a readable checkpoint (the file is empty)")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols of foreign files
            warnings.simplefilter("ignore")
            # weights_only: a checkpoint is data, never code
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CorruptFileError(f"{path}: not a readable checkpoint ({_unpickling_problem(exc)})") from None
    except Exception as exc:  # noqa: BLE001 - damaged archives fail in many ways inside torch and zipfile
        raise CorruptFileError(f"{path}: not a readable checkpoint ({_first_line(exc)})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CorruptFileError(f"{path}: not a tosc checkpoint")
    if not (isinstance(payload.get("config"), dict) and isinstance(payload.get("state_dict"), dict)):
        raise CorruptFileError(f"{path}: damaged tosc checkpoint (no config or weights)")
    if kind is not None and payload.get("kind") != kind:
        raise CorruptFileError(f"{path}: is a {payload.get('kind')} checkpoint, expected {kind}")
    if arch is not None and payload.get("arch") != arch:
        raise CorruptFileError(f"{path}: holds architecture {payload.get('arch')!r}, expected {arch!r}")
    return payload


def _unpickling_problem(exc: pickle.UnpicklingError) -> str:
    """What torch's weights-only unpickler refused, without its advice to load with
    ``weights_only=False`` (which would run whatever code the file names)."""
    text = str(exc)
    code = re.search(r"GLOBAL (\S+)", text)
    if code:
        return f"it calls Python code ({code.group(1)}); a checkpoint is data and tosc never runs code from one"
    skip = ("Weights only load failed", "Please file an issue", "Check the documentation")
    details = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith(skip)]
    return f"damaged pickle: {details[0]}" if details else "damaged pickle"


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
