"""Rate matching as a lookup: each (codec, image, quality) is encoded at most once, ever.

A :class:`RateTable` answers "which quality fits B bytes" for one codec with the same
bisection as :func:`tosc.source_coding.classic.match_rate` (same probes, same answer), but
every probe goes through a table of encodes: memory first, then an on-disk
:class:`RateCache`, and only on a miss the encoder. An entry holds the file, its payload
size and the decoded image, so a grid that asks for twenty budgets per image encodes the
union of their bisection probes once, and a second run encodes nothing.

The cache is one SQLite file (``<cache>/rate-table-v1.sqlite3``; cache folder
``$TOSC_CACHE_DIR``, else ``$XDG_CACHE_HOME/tosc``, else ``~/.cache/tosc``), one row per
(codec key, image key, quality):

- the codec key hashes the codec's name, settings and library versions, so a new libwebp
  or another VVC preset never reads old sizes;
- the image key hashes the 8-bit pixels and their shape (what the encoder sees);
- each row carries a SHA-256 of its own content: a damaged row is detected on read,
  dropped and encoded again; a file that is not a database is moved aside and rebuilt.

Concurrent runs (grid workers, two ``tosc evaluate`` at once) share the file safely: SQLite
locks it for each single-row write (WAL journal), and rows for the same key are equal
because the encoders are deterministic, so the last writer wins nothing but the same bytes.

Why SQLite: one file instead of ~10^5 tiny ones, atomic row writes and cross-process locking
from the standard library.
"""

from __future__ import annotations

import hashlib
import inspect
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...diskcache import SqliteStore, cache_root
from .base import ClassicCodec
from .image import to_uint8

__all__ = ["CACHE_FORMAT", "cache_root", "image_key", "codec_key", "Encoded", "RateCache", "RateTable", "fill_table"]

#: bump when the meaning of a row changes (e.g. a codec's payload definition)
CACHE_FORMAT = 2


def image_key(pixels: np.ndarray) -> str:
    """SHA-256 of uint8 pixels and their shape (hex)."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    digest = hashlib.sha256(repr(pixels.shape).encode())
    digest.update(pixels.tobytes())
    return digest.hexdigest()


def codec_key(codec: ClassicCodec) -> str:
    """What makes a codec's output and payload sizes what they are: name, settings, library
    versions and the source of its module and of the shared base (a changed payload rule
    never reads sizes measured under the old one)."""
    settings = sorted((k, repr(v)) for k, v in vars(codec).items() if not k.startswith("_"))
    text = f"{CACHE_FORMAT}|{type(codec).__module__}.{type(codec).__name__}|{codec.name}|{settings}|{codec.library}"
    digest = hashlib.sha256(text.encode())
    for path in sorted({inspect.getfile(type(codec)), inspect.getfile(ClassicCodec)}):
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:32]


@dataclass(frozen=True)
class Encoded:
    """One encode: the file at ``quality``, its payload size, and the image it decodes to.

    decoded: uint8, H x W (one channel) or H x W x 3, decoded with the input's channel count.
    """

    quality: int
    bitstream: bytes
    payload_bytes: int
    decoded: np.ndarray

    @property
    def file_bytes(self) -> int:
        return len(self.bitstream)


def _row_checksum(codec: str, image: str, quality: int, bitstream: bytes, payload_bytes: int, shape: str,
                  decoded: bytes) -> bytes:
    digest = hashlib.sha256(f"{codec}|{image}|{quality}|{payload_bytes}|{shape}|".encode())
    digest.update(len(bitstream).to_bytes(8, "little"))
    digest.update(bitstream)
    digest.update(decoded)
    return digest.digest()


_SCHEMA = """CREATE TABLE IF NOT EXISTS encodes (
    codec TEXT NOT NULL, image TEXT NOT NULL, quality INTEGER NOT NULL,
    bitstream BLOB NOT NULL, payload_bytes INTEGER NOT NULL, shape TEXT NOT NULL, decoded BLOB NOT NULL,
    checksum BLOB NOT NULL, PRIMARY KEY (codec, image, quality))"""


class RateCache(SqliteStore):
    """The on-disk table of encodes (see the module docstring). ``folder``: None for the
    default cache folder. Safe to share between processes; reconnects after a fork."""

    schema = _SCHEMA + ";"
    label = "rate cache"

    def __init__(self, folder: str | os.PathLike | None = None) -> None:
        super().__init__(Path(folder if folder is not None else cache_root()) / f"rate-table-v{CACHE_FORMAT}.sqlite3")

    def get(self, codec: str, image: str, quality: int) -> Encoded | None:
        """The stored encode, or None if absent or damaged (a damaged row is deleted)."""
        row = self._conn().execute(
            "SELECT bitstream, payload_bytes, shape, decoded, checksum FROM encodes "
            "WHERE codec = ? AND image = ? AND quality = ?", (codec, image, int(quality))).fetchone()
        if row is None:
            return None
        bitstream, payload_bytes, shape, decoded, checksum = row
        try:
            ok = bytes(checksum) == _row_checksum(codec, image, quality, bytes(bitstream), int(payload_bytes), shape,
                                                  bytes(decoded))
            dims = tuple(int(v) for v in shape.split("x"))
            pixels = np.frombuffer(bytes(decoded), dtype=np.uint8).reshape(dims) if ok else None
        except (TypeError, ValueError):
            ok = False
        if not ok:
            self.corrupt_rows += 1
            self._conn().execute("DELETE FROM encodes WHERE codec = ? AND image = ? AND quality = ?",
                                 (codec, image, int(quality)))
            return None
        return Encoded(int(quality), bytes(bitstream), int(payload_bytes), pixels)

    def put(self, codec: str, image: str, entry: Encoded) -> None:
        shape = "x".join(str(d) for d in entry.decoded.shape)
        decoded = np.ascontiguousarray(entry.decoded, dtype=np.uint8).tobytes()
        checksum = _row_checksum(codec, image, entry.quality, entry.bitstream, entry.payload_bytes, shape, decoded)
        self._conn().execute(
            "INSERT OR REPLACE INTO encodes VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (codec, image, entry.quality, entry.bitstream, entry.payload_bytes, shape, decoded, checksum))

    def count(self, codec: str | None = None) -> int:
        if codec is None:
            return self._conn().execute("SELECT COUNT(*) FROM encodes").fetchone()[0]
        return self._conn().execute("SELECT COUNT(*) FROM encodes WHERE codec = ?", (codec,)).fetchone()[0]


class RateTable:
    """Encodes of one codec, looked up before they are made (memory, then ``cache``).

    cache: a :class:`RateCache`, or None to keep the table in memory only.
    ``encoder_calls`` counts the real encodes this table made (the rest were looked up).
    """

    def __init__(self, codec: ClassicCodec, cache: RateCache | None = None) -> None:
        self.codec = codec
        self.cache = cache
        self.key = codec_key(codec)
        self._memory: dict[tuple[str, int], Encoded] = {}
        self.encoder_calls = 0

    def key_of(self, image: torch.Tensor | np.ndarray) -> str:
        """The :func:`image_key` of one image as the encoder sees it (8-bit pixels)."""
        return image_key(to_uint8(image, min_side=self.codec.min_side, max_side=self.codec.max_side))

    def entry(self, image: torch.Tensor | np.ndarray, quality: int, *, key: str | None = None) -> Encoded:
        """The encode of one image (C x H x W or H x W, as ``codec.encode`` takes it) at
        ``quality``; ``key``: its :meth:`key_of`, if already known."""
        quality = self.codec.check_quality(quality)
        key = self.key_of(image) if key is None else key
        found = self._memory.get((key, quality))
        if found is None and self.cache is not None:
            found = self.cache.get(self.key, key, quality)
        if found is None:
            bitstream = self.codec.encode(image, quality)
            channels = 1 if np.asarray(image).ndim == 2 or np.asarray(image).shape[0] == 1 else 3
            decoded = self.codec.decode(bitstream, channels=channels)
            pixels = np.rint(decoded.numpy() * 255.0).astype(np.uint8)
            pixels = pixels[0] if channels == 1 else pixels.transpose(1, 2, 0)
            found = Encoded(quality, bitstream, self.codec.payload_bytes(bitstream), np.ascontiguousarray(pixels))
            self.encoder_calls += 1
            if self.cache is not None:
                self.cache.put(self.key, key, found)
        self._memory[(key, quality)] = found
        return found

    @staticmethod
    def decoded_tensor(pixels: np.ndarray) -> torch.Tensor:
        """Decoded uint8 pixels (an entry's ``decoded``) as float32 C x H x W in [0, 1], exactly
        what ``codec.decode`` returns."""
        chw = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
        return torch.from_numpy(np.ascontiguousarray(chw).astype(np.float32) / 255.0)

    def forget_memory(self) -> None:
        """Drop the in-memory layer (the disk cache stays)."""
        self._memory.clear()



def _fill_images(table: RateTable, images, budgets: list[int], measure: str, qualities: list[int]) -> None:
    """Rate-match each image at every budget and encode it at every quality, into ``table``."""
    from .rate import match_rate

    for image in images:
        for budget in budgets:
            match_rate(table.codec, image, budget, measure, table)
        if qualities:
            key = table.key_of(image)
            for quality in qualities:
                table.entry(image, quality, key=key)


def _fill_chunk(codec: ClassicCodec, cache: RateCache, images: np.ndarray, budgets: list[int], measure: str,
                qualities: list[int]) -> int:
    torch.set_num_threads(1)
    table = RateTable(codec, cache)
    _fill_images(table, images, budgets, measure, qualities)
    return table.encoder_calls


def fill_table(table: RateTable, images, budgets_bytes, measure: str, *, qualities=(), jobs: int = 1,
               progress: bool = True) -> int:
    """Rate-match every image (N x C x H x W) at every budget (bytes) once, and encode it at every
    one of ``qualities``, so that later matches and sweeps only look up; ``jobs`` processes split
    the images (they share ``table.cache``, which keeps each encode as it is made, so an
    interrupted fill loses only the encodes in flight). Returns the number of real encodes made."""
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from tqdm import tqdm

    budgets = sorted({int(b) for b in budgets_bytes})
    qualities = sorted({int(q) for q in qualities})
    images = images.numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    desc = f"rate table {table.codec.name}"
    if jobs <= 1 or table.cache is None or len(images) < 2 * jobs:
        _fill_images(table, tqdm(images, desc=desc, disable=not progress, leave=False), budgets, measure, qualities)
        return table.encoder_calls
    # small chunks: the slow codecs (VVC) spread evenly over the processes
    chunks = [c for c in np.array_split(np.arange(len(images)), max(1, len(images) // 25)) if len(c)]
    calls = 0
    with ProcessPoolExecutor(jobs) as pool, tqdm(total=len(images), desc=desc, disable=not progress,
                                                  leave=False) as bar:
        futures = {pool.submit(_fill_chunk, table.codec, table.cache, images[c], budgets, measure, qualities): len(c)
                   for c in chunks}
        for future in as_completed(futures):
            calls += future.result()
            bar.update(futures[future])
    table.encoder_calls += calls
    return calls
