"""Atomic file writing and the image-array (.npz) contract of docs/interfaces.md.

Every file tosc writes goes through :func:`atomic_write`: data lands in a temporary
file in the same directory, is flushed and fsync'ed, then renamed over the target,
so a killed process leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import json
import os
import stat
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .errors import CorruptFileError, DataError, OutputPathError

__all__ = [
    "check_output_file",
    "check_output_dir",
    "check_input_file",
    "locked",
    "memory_budget_bytes",
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
    "is_grey_image",
    "open_image",
    "image_levels",
]


_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EFBIG}


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "a special file"


def _os_reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def check_input_file(path: str | os.PathLike, what: str = "file") -> Path:
    """``path`` as a Path if it is a regular file that can be read; DataError otherwise, with a
    message that says what it is instead (missing, a folder, a device or FIFO, unreadable)."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({_os_reason(exc)})") from None
    if stat.S_ISDIR(st.st_mode):
        raise DataError(f"{path}: is a folder, expected a {what}")
    if not stat.S_ISREG(st.st_mode):
        raise DataError(f"{path}: is {_kind(st.st_mode)}, expected a regular {what}")
    try:  # /proc files, unreadable mounts: fail here, with the path, not in the reader
        with open(path, "rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({_os_reason(exc)})") from None
    return path


def _make_folder(folder: Path) -> None:
    """Create ``folder`` and its parents; OutputPathError naming the part that is in the way."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputPathError(f"{folder}: is a file, expected a folder") from None
    except NotADirectoryError:
        blocker = next((p for p in [folder, *folder.parents] if p.exists() and not p.is_dir()), folder)
        raise OutputPathError(f"{folder}: cannot create it, {blocker} is a file, not a folder") from None
    except OSError as exc:
        raise OutputPathError(f"{folder}: cannot create this folder ({_os_reason(exc)})") from None


def _probe_writable(folder: Path) -> None:
    """Check that files can be created in ``folder``, or, while it does not exist yet, that its
    nearest existing ancestor is a folder where they can: create and delete a temporary file
    there, the only reliable test (root ignores permission bits; /proc and read-only mounts
    refuse whatever the bits say). Nothing is left behind, not even the folder."""
    existing = next((p for p in [folder, *folder.parents] if os.path.lexists(p)), Path("/"))
    if not existing.is_dir():
        if existing == folder:
            raise OutputPathError(f"{folder}: is a file, expected a folder")
        raise OutputPathError(f"{folder}: cannot create it, {existing} is a file, not a folder")
    try:
        fd, name = tempfile.mkstemp(prefix=".tosc-probe.", dir=existing)
    except OSError as exc:
        raise OutputPathError(f"{existing}: cannot write files in this folder ({_os_reason(exc)})") from None
    os.close(fd)
    os.unlink(name)


def check_output_file(path: str | os.PathLike, *, inputs=(), suffixes: tuple[str, ...] | None = None) -> Path:
    """Check, before any work, that ``path`` can be written as a new or replaced regular file.

    Refused (OutputPathError): an existing folder; a special file (``/dev/null``, ``/dev/full``,
    a FIFO, a socket: atomic replacement would swap the device for a plain file); a read-only
    file (tosc does not replace what its owner protected); the same file as one of ``inputs``;
    a name without one of ``suffixes``; a parent folder that is a file, cannot be created or
    cannot be written (including /proc). Missing parent folders are not created here (a
    refused command leaves nothing behind); writing creates them.
    """
    path = Path(path)
    if not str(path) or path.name in ("", ".", ".."):
        raise OutputPathError(f"{str(path)!r}: not a file name")
    try:
        st = path.stat()
    except FileNotFoundError:
        st = None
    except OSError as exc:  # e.g. a parent that is a file: NotADirectoryError
        if not isinstance(exc, NotADirectoryError):
            raise OutputPathError(f"{path}: cannot use as output ({_os_reason(exc)})") from None
        st = None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise OutputPathError(f"{path}: is a folder; give a file name inside it")
        if not stat.S_ISREG(st.st_mode):
            raise OutputPathError(f"{path}: is {_kind(st.st_mode)}; tosc writes only regular files or new paths")
        if not st.st_mode & 0o222:
            raise OutputPathError(f"{path}: is read-only; tosc does not replace it (make it writable or "
                                  "choose another name)")
        for source in inputs:
            if source is not None and Path(source).exists() and os.path.samefile(path, source):
                raise OutputPathError(f"{path}: is also the input; writing it would destroy the input")
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise OutputPathError(f"{path}: output must end in {' or '.join(suffixes)}")
    _probe_writable(path.parent)  # missing parent folders are created when the file is written
    return path


def check_output_dir(path: str | os.PathLike, *, files: tuple[str, ...] = ()) -> Path:
    """Check, before any work, that ``path`` is (or can be made) a writable folder and that the
    named ``files`` inside it can be written (see :func:`check_output_file`)."""
    path = Path(path)
    if not str(path):
        raise OutputPathError("'': not a folder name")
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{path}: is a file, expected a folder")
    _probe_writable(path)  # created when the first file is written: a refused command leaves nothing
    for name in files:
        check_output_file(path / name)
    return path


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[io.IOBase]:
    """Open a temporary sibling of ``path`` for writing; rename it onto ``path`` on success.

    Never replaces a folder, a device, a FIFO or a socket (OutputPathError); a file system that
    refuses the write (full, read-only) is an OutputPathError naming the path, not an OSError.
    """
    path = Path(path)
    with contextlib.suppress(OSError):
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise OutputPathError(f"{path}: is {_kind(st.st_mode)}; tosc writes only regular files or new paths")
    _make_folder(path.parent)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OutputPathError(f"{path}: cannot write ({_os_reason(exc)})") from None
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_name, 0o666 & ~umask)  # mkstemp makes 0600; give the file ordinary permissions
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            try:
                handle.flush()
                os.fsync(handle.fileno())
            except OSError as exc:
                raise OutputPathError(f"{path}: cannot write ({_os_reason(exc)})") from None
        try:
            os.replace(tmp_name, path)
        except OSError as exc:
            raise OutputPathError(f"{path}: cannot write ({_os_reason(exc)})") from None
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        if isinstance(exc, OSError) and exc.errno in _DISK_ERRNOS:  # a full or failing disk, not a bug
            raise OutputPathError(f"{path}: cannot write ({_os_reason(exc)})") from None
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


@contextlib.contextmanager
def locked(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive advisory lock tied to ``path`` (on the hidden sibling ``.NAME.lock``,
    which stays in place), so that processes updating the same file take turns. The kernel
    drops the lock when its holder dies, so a killed writer never blocks the next one."""
    path = Path(path)
    _make_folder(path.parent)
    lock_path = path.parent / f".{path.name}.lock"
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise OutputPathError(f"{lock_path}: cannot create the lock file ({_os_reason(exc)})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def append_jsonl(path: str | os.PathLike, record: dict, *, unique_key=None) -> bool:
    """Append one JSON record as a line, atomically, under :func:`locked`; return whether it
    was appended.

    The file is rewritten whole (results files hold at most a few thousand records), so a
    reader never sees half a line; the lock makes concurrent appenders (two ``tosc evaluate``
    runs into one folder) take turns, so none loses another's line. With ``unique_key`` (a
    function of a record), a record whose key is already in the file is not appended again.
    A cut-off last line left by some other writer (see :func:`read_jsonl`) is dropped, with a
    warning.
    """
    path = Path(path)
    with locked(path):
        old = path.read_bytes() if path.exists() else b""
        if old and not old.endswith(b"\n"):
            head, _, tail = old.rpartition(b"\n")
            if _parses(tail):
                old += b"\n"
            else:
                _warn_partial(path, tail)
                old = head + b"\n" if head else b""
        if unique_key is not None and old:
            key = unique_key(record)
            if any(unique_key(r) == key for r in read_jsonl_bytes(old, path)):
                return False
        line = json.dumps(record, sort_keys=True).encode() + b"\n"
        atomic_write_bytes(path, old + line)
    return True


def _parses(line: bytes) -> bool:
    try:
        json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return True


def _warn_partial(path: Path, tail: bytes) -> None:
    warnings.warn(f"{path}: ignoring a cut-off last line ({len(tail)} bytes without a newline; "
                  "not written by tosc, whose appends are atomic)", stacklevel=3)


def read_jsonl(path: str | os.PathLike, *, numbered: bool = False) -> list:
    """Records of a JSON-lines file. A bad line raises CorruptFileError naming the file and
    line, except a cut-off last line (no newline, not valid JSON: an interrupted non-atomic
    append), which is skipped with a warning so that an interrupted run can resume; the next
    append drops it. ``numbered``: (line number, record) pairs instead of records."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(path)
    check_input_file(path)
    return read_jsonl_bytes(path.read_bytes(), path, numbered=numbered)


def read_jsonl_bytes(data: bytes, path: str | os.PathLike, *, numbered: bool = False) -> list:
    """:func:`read_jsonl` on ``data`` already read from ``path`` (named in messages)."""
    lines = data.split(b"\n")
    if lines and lines[-1].strip() and not _parses(lines[-1]):
        _warn_partial(Path(path), lines.pop())
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CorruptFileError(f"{path}:{number}: not valid JSON ({getattr(exc, 'msg', exc)})") from None
        if not isinstance(record, dict):
            raise CorruptFileError(f"{path}:{number}: a record must be a JSON object, got {type(record).__name__}")
        records.append((number, record) if numbered else record)
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


# Largest image (H x W pixels) tosc reads from an array file: the limit Pillow applies against
# decompression bombs (Image.MAX_IMAGE_PIXELS), so .npz and image files get the same one.
MAX_IMAGE_PIXELS = 89_478_485

# Pillow modes that hold one channel (with or without alpha)
_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})


def open_image(path: str | os.PathLike):
    """The first frame of an image file, decoded (a ``PIL.Image.Image``).

    The size in the header is checked against :data:`MAX_IMAGE_PIXELS` before any pixel is
    decoded, so a decompression bomb costs nothing. Raises :class:`DataError` for an image that
    is too large and :class:`CorruptFileError` for a file Pillow cannot read.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():  # Pillow warns between 1x and 2x its limit; tosc refuses below
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
        with image:
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise DataError(f"{path}: {image.width} x {image.height} pixels exceed the {MAX_IMAGE_PIXELS}-pixel "
                                "limit per image")
            image.load()
            return image.copy() if getattr(image, "n_frames", 1) > 1 else image
    except Image.DecompressionBombError as exc:  # Pillow refuses twice its limit while opening
        raise DataError(f"{path}: exceeds the {MAX_IMAGE_PIXELS}-pixel limit per image ({exc})") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise CorruptFileError(f"{path}: not a readable image ({exc})") from None


def image_levels(image, source: str | os.PathLike = "image", *, grey: bool | None = None) -> np.ndarray:
    """The 8-bit levels of a Pillow image: uint8, H x W (grey) or H x W x 3 (colour).

    Every codec here works on 8-bit levels, so deeper images are reduced by rounding, not
    clipped (Pillow's own ``convert("L")`` clips a 16-bit image at 255, which turns it white):
    16-bit and 32-bit integer modes are read as 0..65535 (``v / 257``), float mode ``F`` as 0..1
    (``v * 255``); values outside those ranges are refused. Alpha is dropped. ``grey``: force one
    channel (True) or three (False); None: :func:`is_grey_image`.
    """
    mode = image.mode
    if grey is None:
        grey = is_grey_image(image)
    if mode.startswith("I") or mode == "F":
        values = np.asarray(image)
        if mode == "F":
            if not np.isfinite(values).all():
                raise DataError(f"{source}: float pixels must lie in [0, 1] (found NaN or infinity)")
            if values.min(initial=0) < 0 or values.max(initial=0) > 1:
                raise DataError(f"{source}: float pixels must lie in [0, 1] (found {values.min():g} to {values.max():g})")
            levels = np.rint(values.astype(np.float64) * 255)
        else:
            values = values.astype(np.int64)
            if values.min(initial=0) < 0 or values.max(initial=0) > 65535:
                raise DataError(f"{source}: integer pixels must lie in 0..65535 (found {values.min()} to "
                                f"{values.max()})")
            levels = np.rint(values / 257.0)
        levels = levels.astype(np.uint8)
        return levels if grey else np.repeat(levels[..., None], 3, axis=2)
    return np.asarray(image.convert("L" if grey else "RGB"), dtype=np.uint8).copy()


def is_grey_image(image) -> bool:
    """True for a one-channel Pillow mode (with or without alpha) and for a palette image whose
    pixels are all grey (an optimised PNG of a grey image is often one)."""
    if image.mode in _GREY_MODES:
        return True
    if image.mode not in ("P", "PA"):
        return False
    rgb = np.asarray(image.convert("RGB"))
    return bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())


def memory_budget_bytes() -> int:
    """Half of the memory this process can still use: available RAM, capped by a cgroup limit.

    Sizes declared by input files (array headers, image headers, grids) are checked against it
    before anything is allocated, so a small file cannot make tosc swap or be killed."""
    available = None
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    if available is None:
        with contextlib.suppress(ValueError, OSError, AttributeError):
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    with contextlib.suppress(OSError, ValueError):
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            available = min(available or int(limit), int(limit))
    return (available or 8 << 30) // 2


def npz_declared_arrays(path: str | os.PathLike) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape and dtype of every array in an .npz, read from the .npy headers only (no data).

    CorruptFileError when the file is not a zip of .npy arrays (text, a plain .npy, a
    truncated archive) or an array holds pickled objects, which tosc never loads."""
    path = check_input_file(path)
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as handle:
            start = handle.read(8)
        kind = "a plain .npy array" if start.startswith(b"\x93NUMPY") else f"it starts with {start!r}"
        raise CorruptFileError(f"{path}: not a readable .npz file (an .npz is a zip archive of .npy arrays; {kind})")
    arrays = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read_header(member)
                if dtype.hasobject:
                    raise CorruptFileError(f"{path}: array {info.filename[:-4]!r} holds pickled Python objects, "
                                           "which tosc never loads")
                arrays[info.filename[:-4]] = (tuple(int(d) for d in shape), dtype)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise CorruptFileError(f"{path}: not a readable .npz file ({exc})") from None
    return arrays


def _declared_bytes(shape: tuple[int, ...], dtype: np.dtype) -> int:
    return int(np.prod(shape, dtype=object)) * dtype.itemsize


def read_npz(path: str | os.PathLike, *, max_bytes: int | None = None) -> dict[str, np.ndarray]:
    """Every array of an .npz file, loaded without pickle; a missing file is a DataError and an
    unreadable one (not a zip, truncated, pickled objects) a CorruptFileError.

    The arrays' declared sizes are checked from their headers before any data is read:
    more than ``max_bytes`` (default :func:`memory_budget_bytes`) in all is a DataError."""
    path = Path(path)
    declared = npz_declared_arrays(path)
    total = sum(_declared_bytes(shape, dtype) for shape, dtype in declared.values())
    budget = memory_budget_bytes() if max_bytes is None else max_bytes
    if total > budget:
        big = max(declared, key=lambda k: _declared_bytes(*declared[k]))
        raise DataError(f"{path}: declares {total / 2**30:.1f} GiB of arrays ({big!r}: shape "
                        f"{declared[big][0]}, {declared[big][1]}), more than the {budget / 2**30:.1f} GiB "
                        "tosc may use here")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise CorruptFileError(f"{path}: not a readable .npz file ({exc})") from None


def load_image_arrays(path: str | os.PathLike) -> ImageArrays:
    """Read an image .npz (float32 or uint8, NCHW or NHW) into the normalised layout."""
    path = Path(path)
    declared = npz_declared_arrays(path)
    if "images" in declared:  # refuse a huge image before its data is read
        shape, dtype = declared["images"]
        if len(shape) >= 2 and shape[-1] * shape[-2] > MAX_IMAGE_PIXELS:
            raise DataError(f"{path}: images of {shape[-2]} x {shape[-1]} pixels exceed the "
                            f"{MAX_IMAGE_PIXELS}-pixel limit per image")
        # the float32 copy made by normalisation comes on top of the array itself
        needed = _declared_bytes(shape, dtype) + _declared_bytes(shape, np.dtype(np.float32))
        if needed > memory_budget_bytes():
            raise DataError(f"{path}: images of shape {shape} ({dtype}) need {needed / 2**30:.1f} GiB, more than "
                            f"the {memory_budget_bytes() / 2**30:.1f} GiB tosc may use here")
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
