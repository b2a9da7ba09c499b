"""Per-process caches for the part of an operating point that does not depend on the noise.

An evaluation grid sends the same images through one system at many operating points. What
the transmitter computes before the channel depends only on the images and the bit budget
(a learned codec's streams, which stream fits), and what the receiver decodes depends only on
the bits that arrived. Both are pure functions, so each is computed once per process and
looked up at every later point: the results are the same bit for bit as with the caches off
(:func:`caching`; tests/systems/test_memo.py compares the records of a small grid both ways).

Keys hold the content (a SHA-256 of the images or bits) and the coder's identity (codec name,
model files with their size and modification time), never object ids, so a changed input
or a retrained model never hits a stale entry. Each cache is bounded (least recently used
entry out first).
"""

from __future__ import annotations

import contextlib
import hashlib
import weakref
from collections import OrderedDict
from typing import Callable, Hashable, Iterator, TypeVar

import numpy as np
import torch

__all__ = ["caching", "caching_enabled", "clear_all", "batch_key", "bits_key", "Memo"]

T = TypeVar("T")
_ENABLED = True
_MEMOS: "weakref.WeakSet[Memo]" = weakref.WeakSet()


@contextlib.contextmanager
def caching(enabled: bool) -> Iterator[None]:
    """Within the block, every :class:`Memo` computes afresh (``enabled=False``) or caches."""
    global _ENABLED
    before, _ENABLED = _ENABLED, bool(enabled)
    try:
        yield
    finally:
        _ENABLED = before


def caching_enabled() -> bool:
    return _ENABLED


def clear_all() -> None:
    """Empty every cache (a benchmark's cold start, or a new grid worker's view)."""
    for memo in list(_MEMOS):
        memo.clear()


def batch_key(images: torch.Tensor) -> bytes:
    """SHA-256 of an image batch's shape, dtype and values (N x C x H x W)."""
    array = np.ascontiguousarray(images.detach().cpu().numpy())
    return hashlib.sha256(repr((array.shape, array.dtype.str)).encode() + array.tobytes()).digest()


def bits_key(bits: np.ndarray) -> bytes:
    """SHA-256 of a 0/1 array's length and values."""
    array = np.ascontiguousarray(np.asarray(bits, dtype=np.uint8))
    return hashlib.sha256(array.size.to_bytes(8, "little") + np.packbits(array).tobytes()).digest()


class Memo:
    """A bounded map from keys to computed values, least recently used out first: at most
    ``max_entries`` entries and, with ``weigh`` (value -> bytes), at most ``max_bytes``."""

    def __init__(self, max_entries: int, *, max_bytes: int | None = None,
                 weigh: Callable[[object], int] | None = None) -> None:
        self.max_entries = int(max_entries)
        self.max_bytes, self._weigh = max_bytes, weigh
        self._entries: OrderedDict[Hashable, object] = OrderedDict()
        self._bytes = 0
        _MEMOS.add(self)

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The value cached for ``key``, else ``compute()`` (cached unless caching is off)."""
        if not _ENABLED:
            return compute()
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]  # type: ignore[return-value]
        value = compute()  # an exception propagates and caches nothing
        self._entries[key] = value
        self._bytes += self._weigh(value) if self._weigh else 0
        while len(self._entries) > self.max_entries or (
                self.max_bytes is not None and self._bytes > self.max_bytes and len(self._entries) > 1):
            _, old = self._entries.popitem(last=False)
            self._bytes -= self._weigh(old) if self._weigh else 0
        return value

    def peek(self, key: Hashable):
        """The value cached for ``key``, or None (also while caching is off)."""
        if not _ENABLED or key not in self._entries:
            return None
        self._entries.move_to_end(key)
        return self._entries[key]

    def put(self, key: Hashable, value) -> None:
        """Cache ``value`` for ``key`` (nothing while caching is off)."""
        if _ENABLED:
            self.get(key, lambda: value)

    def __len__(self) -> int:
        return len(self._entries)
