"""tosc's on-disk caches: one SQLite file per cache in the user's cache folder.

Two caches live here and a third (the classic codecs' rate table,
:mod:`tosc.source_coding.classic.table`) builds on the same connection handling:

- :class:`SqliteStore`: a connection that is opened lazily, reopened after a fork (grid
  workers inherit objects, never connections), in WAL mode so that concurrent processes read
  while one writes, and rebuilt when the file is not a database any more (the old file is
  moved aside for inspection, never deleted);
- :class:`BlobCache`: values (bytes) by (kind, key), each row with a SHA-256 of its kind, key
  and value, checked on every read: a damaged row is dropped and recomputed by the caller.

Everything cached is a pure function of its key (an image's scores under fixed networks and
code, a deterministic encoder's output), so two processes writing the same key write the
same bytes and the last writer changes nothing. The keys therefore hold everything the value
depends on: content digests of inputs and model files, and the source of the code that
computes it (:func:`source_digest`), so an edited metric or retrained network never reads a
stale row. Caching is off inside ``tosc.systems.memo.caching(False)``.

Cache folder: ``$TOSC_CACHE_DIR``, else ``$XDG_CACHE_HOME/tosc``, else ``~/.cache/tosc``.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
import warnings
from pathlib import Path
from typing import Iterable, Mapping

__all__ = ["cache_root", "source_digest", "file_digest", "SqliteStore", "BlobCache", "shared_cache", "cache_lookup",
           "cache_store"]


def cache_root() -> Path:
    """tosc's cache folder: ``$TOSC_CACHE_DIR``, else ``$XDG_CACHE_HOME/tosc``, else ``~/.cache/tosc``."""
    override = os.environ.get("TOSC_CACHE_DIR")
    if override:
        return Path(override)
    return Path(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")) / "tosc"


_FILE_DIGESTS: dict[tuple, str] = {}


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a file's bytes, remembered per process by (path, size, mtime)."""
    stat = os.stat(path)
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _FILE_DIGESTS:
        _FILE_DIGESTS[key] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return _FILE_DIGESTS[key]


def source_digest(*modules) -> str:
    """SHA-256 (hex) of the source files of ``modules`` (module objects or file paths), in the
    order given: a key part that changes whenever the code computing a cached value does."""
    digest = hashlib.sha256()
    for module in modules:
        path = module if isinstance(module, (str, os.PathLike)) else module.__file__
        digest.update(file_digest(path).encode())
    return digest.hexdigest()


class SqliteStore:
    """A lazily opened SQLite file at ``path`` holding ``schema`` (CREATE TABLE IF NOT EXISTS
    statements). Picklable (the connection is not sent); reconnects in a forked child."""

    schema: str = ""
    label: str = "cache"

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None
        self._pid = -1
        self.corrupt_rows = 0  # rows found damaged (and dropped) by this object

    def __getstate__(self) -> dict:  # a connection does not cross processes
        return {"path": self.path, "corrupt_rows": 0}

    def __setstate__(self, state: dict) -> None:
        self.path, self.corrupt_rows = state["path"], state["corrupt_rows"]
        self._db, self._pid = None, -1

    _OPEN_PATIENCE_S = 300.0

    def _open(self) -> sqlite3.Connection:
        # Switching a new file to WAL takes an exclusive lock, and SQLite answers "database is
        # locked" at once, without its busy handler, when two processes create the same file
        # together: so the whole opening is retried until the other one has finished.
        deadline, pause = time.monotonic() + self._OPEN_PATIENCE_S, 0.01
        while True:
            db = sqlite3.connect(self.path, timeout=300, isolation_level=None)
            try:
                db.execute("PRAGMA busy_timeout = 300000")
                if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    db.execute("PRAGMA journal_mode = WAL")
                # no fsync per row: a crash may lose the last rows (they are computed again), never corrupt the file
                db.execute("PRAGMA synchronous = NORMAL")
                db.executescript(self.schema)
                return db
            except sqlite3.OperationalError as exc:
                db.close()
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(pause)
                pause = min(2 * pause, 0.5)
            except BaseException:
                db.close()
                raise

    def _conn(self) -> sqlite3.Connection:
        if self._db is None or self._pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._db = self._open()
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                    raise
                # not a database any more: keep it for inspection, start a new one
                aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}-{os.getpid()}")
                warnings.warn(f"{self.label} {self.path} is unreadable ({exc}); moved to {aside.name}, rebuilding",
                              stacklevel=3)
                for suffix in ("", "-wal", "-shm"):
                    try:
                        os.replace(f"{self.path}{suffix}", f"{aside}{suffix}")
                    except FileNotFoundError:
                        pass
                self._db = self._open()
            self._pid = os.getpid()
        return self._db


def _blob_checksum(kind: str, key: bytes, value: bytes) -> bytes:
    digest = hashlib.sha256(kind.encode() + b"\0" + len(key).to_bytes(8, "little") + key)
    digest.update(value)
    return digest.digest()


def _kind_id(kind: str) -> str:
    """The stored form of a kind: its SHA-256, 32 hex digits (the texts run to hundreds of
    characters and would otherwise be repeated in every row)."""
    return hashlib.sha256(kind.encode()).hexdigest()[:32]


class BlobCache(SqliteStore):
    """Bytes by (kind, key) in ``<folder>/<name>.sqlite3`` (folder None: :func:`cache_root`).

    ``kind``: a text that names what is stored and everything it depends on besides the key
    (network and code digests), stored as its digest; ``key``: bytes, usually a content digest."""

    schema = """CREATE TABLE IF NOT EXISTS blobs (
        kind TEXT NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL, checksum BLOB NOT NULL,
        PRIMARY KEY (kind, key));"""
    _CHUNK = 500  # keys per SELECT (SQLite allows 999 parameters in older builds)

    def __init__(self, name: str, folder: str | os.PathLike | None = None) -> None:
        super().__init__(Path(folder if folder is not None else cache_root()) / f"{name}.sqlite3")
        self.label = f"{name} cache"

    def get_many(self, kind: str, keys: Iterable[bytes]) -> dict[bytes, bytes]:
        """The stored values of those ``keys`` that are present and intact (damaged rows are
        deleted and left out, so the caller recomputes them)."""
        keys = list(dict.fromkeys(bytes(k) for k in keys))
        found: dict[bytes, bytes] = {}
        damaged: list[bytes] = []
        db = self._conn()
        for start in range(0, len(keys), self._CHUNK):
            chunk = keys[start:start + self._CHUNK]
            rows = db.execute(f"SELECT key, value, checksum FROM blobs WHERE kind = ? AND key IN "
                              f"({','.join('?' * len(chunk))})", (_kind_id(kind), *chunk)).fetchall()
            for key, value, checksum in rows:
                key, value = bytes(key), bytes(value)
                if bytes(checksum) == _blob_checksum(kind, key, value):
                    found[key] = value
                else:
                    damaged.append(key)
        if damaged:
            self.corrupt_rows += len(damaged)
            db.executemany("DELETE FROM blobs WHERE kind = ? AND key = ?", [(_kind_id(kind), k) for k in damaged])
        return found

    def get(self, kind: str, key: bytes) -> bytes | None:
        return self.get_many(kind, [key]).get(bytes(key))

    def put_many(self, kind: str, items: Mapping[bytes, bytes]) -> None:
        """Store every (key, value) of ``items`` in one transaction."""
        stored = _kind_id(kind)
        rows = [(stored, bytes(k), bytes(v), _blob_checksum(kind, bytes(k), bytes(v))) for k, v in items.items()]
        if not rows:
            return
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("INSERT OR REPLACE INTO blobs VALUES (?, ?, ?, ?)", rows)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def put(self, kind: str, key: bytes, value: bytes) -> None:
        self.put_many(kind, {key: value})

    def count(self, kind: str | None = None) -> int:
        if kind is None:
            return self._conn().execute("SELECT COUNT(*) FROM blobs").fetchone()[0]
        return self._conn().execute("SELECT COUNT(*) FROM blobs WHERE kind = ?", (_kind_id(kind),)).fetchone()[0]


_SHARED: dict[tuple[str, str], BlobCache] = {}


def shared_cache(name: str) -> BlobCache:
    """This process's :class:`BlobCache` ``name`` in the current :func:`cache_root` (one object
    per name and folder, so a test that points ``$TOSC_CACHE_DIR`` elsewhere gets another)."""
    folder = str(cache_root())
    if (name, folder) not in _SHARED:
        _SHARED[name, folder] = BlobCache(name, folder)
    return _SHARED[name, folder]


def cache_lookup(name: str, kind: str | None, keys: Iterable[bytes]) -> dict[bytes, bytes]:
    """The intact rows of ``keys`` in this process's :func:`shared_cache` ``name``; {} for kind
    None, while caching is off (``tosc.systems.memo.caching(False)``) or when the cache cannot
    be used (with a warning: a cache must never stop a run)."""
    from .systems.memo import caching_enabled

    keys = list(keys)
    if kind is None or not keys or not caching_enabled():
        return {}
    try:
        return shared_cache(name).get_many(kind, keys)
    except sqlite3.Error as exc:
        warnings.warn(f"{name} cache unusable ({exc}); computing without it", stacklevel=2)
        return {}


def cache_store(name: str, kind: str | None, items: Mapping[bytes, bytes]) -> None:
    """Store ``items`` in the shared cache ``name``, under the same conditions as :func:`cache_lookup`."""
    from .systems.memo import caching_enabled

    if kind is None or not items or not caching_enabled():
        return
    try:
        shared_cache(name).put_many(kind, items)
    except sqlite3.Error as exc:
        warnings.warn(f"{name} cache unusable ({exc}); results not stored", stacklevel=2)
