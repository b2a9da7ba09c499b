"""Atomic file writing and the image-array (.npz) contract of docs/interfaces.md.

Every file tosc writes goes through :func:`atomic_write`: data lands in a temporary
file in the same directory, is flushed and fsync'ed, then renamed over the target,
so a killed process leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .errors import CorruptFileError, DataError

__all__ = [
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "append_jsonl",
    "read_jsonl",
    "save_image_arrays",
    "read_npz",
    "load_image_arrays",
    "ImageArrays",
]


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[io.IOBase]:
    """Open a temporary sibling of ``path`` for writing; rename it onto ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_name, 0o666 & ~umask)  # mkstemp makes 0600; give the file ordinary permissions
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    # fsync the directory so the rename itself survives a power cut
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_write(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_write(path, "w") as handle:
        handle.write(text)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def append_jsonl(path: str | os.PathLike, record: dict) -> None:
    """Append one JSON record as a line, atomically: the file is rewritten whole.

    Results files hold at most a few thousand records, so rewriting keeps the
    "never half-written" guarantee without relying on O_APPEND semantics. A cut-off last
    line left by some other writer (see :func:`read_jsonl`) is dropped, with a warning.
    """
    path = Path(path)
    old = path.read_bytes() if path.exists() else b""
    if old and not old.endswith(b"\n"):
        head, _, tail = old.rpartition(b"\n")
        if _parses(tail):
            old += b"\n"
        else:
            _warn_partial(path, tail)
            old = head + b"\n" if head else b""
    line = json.dumps(record, sort_keys=True).encode() + b"\n"
    atomic_write_bytes(path, old + line)


def _parses(line: bytes) -> bool:
    try:
        json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return True


def _warn_partial(path: Path, tail: bytes) -> None:
    warnings.warn(f"{path}: ignoring a cut-off last line ({len(tail)} bytes without a newline; "
                  "not written by tosc, whose appends are atomic)", stacklevel=3)


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Records of a JSON-lines file. A bad line raises CorruptFileError, except a cut-off last
    line (no newline, not valid JSON: an interrupted non-atomic append), which is skipped with
    a warning so that an interrupted run can resume; the next append drops it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(path)
    data = path.read_bytes()
    lines = data.split(b"\n")
    if lines and lines[-1].strip() and not _parses(lines[-1]):
        _warn_partial(path, lines.pop())
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CorruptFileError(f"{path}:{number}: not valid JSON ({getattr(exc, 'msg', exc)})") from None
    return records


class ImageArrays(dict):
    """The arrays of an image .npz file: ``images`` (N,C,H,W float32 in [0,1]), ``labels``,
    ``indices`` and optional per-image ``ok``, ``payload_bits``, ``channel_uses``, plus two keys
    tosc adds: ``failed_codewords`` and ``predictions`` (the training-time classifier's labels
    for the received images)."""


_OPTIONAL_KEYS = {"ok": np.bool_, "payload_bits": np.int64, "channel_uses": np.int64,
                  "failed_codewords": np.int64, "predictions": np.int64}


def _normalise_images(images: np.ndarray, source: str) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype == np.uint8:
        images = images.astype(np.float32) / 255.0
    elif np.issubdtype(images.dtype, np.floating):
        images = images.astype(np.float32)
    else:
        raise DataError(f"{source}: images must be uint8 or float, got {images.dtype}")
    if images.ndim == 3:  # N x H x W grayscale
        images = images[:, None]
    if images.ndim != 4:
        raise DataError(f"{source}: images must be N x C x H x W or N x H x W, got shape {images.shape}")
    if images.shape[1] not in (1, 3):
        raise DataError(f"{source}: images must have 1 or 3 channels, got {images.shape[1]}")
    if images.size and (not np.isfinite(images).all() or images.min() < 0.0 or images.max() > 1.0):
        raise DataError(f"{source}: float images must be finite and lie in [0, 1]")
    return images


def save_image_arrays(
    path: str | os.PathLike,
    images: np.ndarray,
    labels: np.ndarray | None = None,
    indices: np.ndarray | None = None,
    **optional: np.ndarray,
) -> None:
    """Write an image .npz in the docs/interfaces.md layout, atomically."""
    images = _normalise_images(images, str(path))
    n = images.shape[0]
    labels = np.full(n, -1, np.int64) if labels is None else np.asarray(labels, np.int64)
    indices = np.arange(n, dtype=np.int64) if indices is None else np.asarray(indices, np.int64)
    arrays = {"images": images, "labels": labels, "indices": indices}
    for key, value in optional.items():
        if key not in _OPTIONAL_KEYS:
            raise DataError(f"unknown per-image array {key!r}; expected one of {sorted(_OPTIONAL_KEYS)}")
        arrays[key] = np.asarray(value, _OPTIONAL_KEYS[key])
    for key, value in arrays.items():
        if key != "images" and value.shape != (n,):
            raise DataError(f"{path}: {key} must have shape ({n},), got {value.shape}")
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every array of an .npz file, loaded without pickle; a missing file is a DataError and an
    unreadable one (not a zip, truncated, pickled objects) a CorruptFileError."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise CorruptFileError(f"{path}: not a readable .npz file ({exc})") from None


def load_image_arrays(path: str | os.PathLike) -> ImageArrays:
    """Read an image .npz (float32 or uint8, NCHW or NHW) into the normalised layout."""
    path = Path(path)
    raw = read_npz(path)
    if "images" not in raw:
        raise DataError(f"{path}: has no 'images' array (found {sorted(raw)})")
    images = _normalise_images(raw["images"], str(path))
    n = images.shape[0]
    out = ImageArrays(images=images)
    out["labels"] = np.asarray(raw.get("labels", np.full(n, -1)), np.int64)
    out["indices"] = np.asarray(raw.get("indices", np.arange(n)), np.int64)
    for key, dtype in _OPTIONAL_KEYS.items():
        if key in raw:
            out[key] = np.asarray(raw[key], dtype)
    for key, value in out.items():
        if key != "images" and value.shape != (n,):
            raise DataError(f"{path}: {key} must have shape ({n},), got {value.shape}")
    return out
