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
import stat
import warnings
import zipfile
from pathlib import Path
from typing import Any

from .errors import CorruptFileError
from .io import atomic_write_bytes
from .provenance import git_commit, package_versions

# torch is imported inside the functions: the CLI reads this module to list the zoo, and
# importing torch costs seconds and hundreds of MB

__all__ = ["save_checkpoint", "load_checkpoint", "FORMAT"]

FORMAT = "tosc-checkpoint"


def save_checkpoint(path: str | os.PathLike, *, kind: str, arch: str, state_dict: dict, config: dict,
                    metrics: dict | None = None, **extra: Any) -> None:
    import torch

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


def rewrite_checkpoint(path: str | os.PathLike, checkpoint: dict) -> None:
    """Write a checkpoint as :func:`load_checkpoint` returned it, changed in place (a shipped
    codec gaining a mode): its versions, commit and training record stay those it was made with."""
    import torch

    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | os.PathLike, *, kind: str | None = None, arch: str | None = None) -> dict:
    """Read a checkpoint on the CPU; ``kind``/``arch`` must match when given."""
    import torch

    path = Path(path)
    try:
        st = path.stat()
    except OSError:
        raise CorruptFileError(f"{path}: no such checkpoint") from None
    if stat.S_ISDIR(st.st_mode):
        raise CorruptFileError(f"{path}: is a folder, expected a checkpoint file")
    if not stat.S_ISREG(st.st_mode):
        raise CorruptFileError(f"{path}: is not a regular file, expected a checkpoint file")
    if st.st_size == 0:
        raise CorruptFileError(f"{path}: not a readable checkpoint (the file is empty)")
    with open(path, "rb") as handle:
        start = handle.read(2)
    if not zipfile.is_zipfile(path) and start[:1] == b"\x80" and start[1:2] not in (b"\x02",):
        # torch.save writes a zip archive (or, in its legacy format, protocol-2 pickles); a bare
        # pickle of another protocol is some other program's file
        raise CorruptFileError(f"{path}: not a torch checkpoint but a plain Python pickle (protocol {start[1]}); "
                               "tosc reads only checkpoints written by torch.save and never unpickles objects")
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


# ------------------------------------------------------------------------ the zoo index

INDEX_VERSION = 1
_SMALL_FIELDS = ("kind", "arch", "variant", "config", "metrics", "git_commit")


def index_cache_path(folder: Path) -> Path:
    """Where the index of ``folder`` is cached: ``$TOSC_CACHE_DIR`` (default ``~/.cache/tosc``),
    one file per folder, so a read-only zoo (an installed package) is indexed too."""
    import hashlib

    root = Path(os.environ.get("TOSC_CACHE_DIR") or Path.home() / ".cache" / "tosc")
    digest = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    return root / "zoo-index" / f"{digest}.json"


def _file_identity(st: os.stat_result) -> list[int]:
    """What changes whenever a file's content may have: size, mtime, ctime (which no tool can
    set back, unlike mtime with ``cp -p`` or ``touch -d``) and inode (a file renamed over it)."""
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _summarise(path: Path) -> dict:
    """The small fields of one checkpoint (not its weights), or the reason it cannot be read."""
    import json

    try:
        ckpt = load_checkpoint(path)
    except CorruptFileError as exc:
        return {"error": str(exc)}
    summary = {k: ckpt.get(k) for k in _SMALL_FIELDS if k in ckpt}
    # configs and metrics are plain numbers and strings; anything else is stored as its text
    return json.loads(json.dumps(summary, default=str, allow_nan=True))


def checkpoint_index(folder: str | os.PathLike) -> dict[str, dict]:
    """``{file name: {"identity", "kind", "arch", "variant", "config", "metrics", ...}}`` for every
    ``*.pt`` in ``folder``, or ``{"identity", "error"}`` for a file that cannot be read.

    Listing a zoo used to load every checkpoint (seconds, torch imported); the summaries are
    cached in a small JSON index and a file is read again only when its identity (size,
    mtime, ctime, inode) changed, so the index stays correct when files are added, replaced,
    damaged or removed. An unwritable cache only costs speed."""
    import json

    folder = Path(folder)
    index_path = index_cache_path(folder)
    try:
        cached = json.loads(index_path.read_text())
        entries = cached["files"] if cached.get("version") == INDEX_VERSION else {}
    except (OSError, ValueError, KeyError, TypeError):
        entries = {}
    out: dict[str, dict] = {}
    changed = False
    for path in sorted(folder.glob("*.pt")):
        try:
            identity = _file_identity(path.stat())
        except OSError:
            continue
        entry = entries.get(path.name)
        if not isinstance(entry, dict) or entry.get("identity") != identity:
            entry = {"identity": identity, **_summarise(path)}
            changed = True
        out[path.name] = entry
    if changed or set(out) != set(entries):
        try:
            from .io import atomic_write_json

            atomic_write_json(index_path, {"version": INDEX_VERSION, "folder": str(folder.resolve()), "files": out})
        except Exception:  # noqa: BLE001 - a cache that cannot be written is only slower
            pass
    return out
