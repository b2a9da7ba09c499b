"""The arithmetic coder of :mod:`.arithmetic`, compiled (numba) and batched.

Same code, same bytes: 32-bit Witten-Neal-Cleary coder over 16-bit CompressAI CDF tables,
two-bit termination, trailing zero bytes dropped, Elias-gamma escapes; a test checks that
both coders write identical streams. This one codes a whole batch of images per call and
lets the decoder stop after any prefix of symbols and go on later (the codec decodes the
side information, computes the entropy parameters of the rest, then continues).

Why compiled: codec v3 codes thousands of symbols per 28x28 image (the old vector codec 128),
and the pure-Python coder manages about 10^5 symbols/s, i.e. some 30 images/s;
``benchmarks/codec_bench.py`` measures the difference.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ...errors import CorruptFileError
from .arithmetic import PRECISION

__all__ = ["Tables", "encode_batch", "StreamDecoder"]

_TOP = (1 << 32) - 1
_HALF = 1 << 31
_QUARTER = 1 << 30
_MAX_ESCAPE_BITS = 40
_MAX_OVERRUN_BITS = 8 * 64  # as arithmetic.decode: reading this far past the end is corrupt data


class Tables:
    """CDF tables, flattened: row t is ``cdfs[starts[t] : starts[t] + lengths[t]]`` (int64),
    symbol offsets ``offsets`` [T].

    ``cdfs``: one sequence per table, at least as long as its length (CompressAI pads its rows
    to the longest; the padding is dropped, since the coder never reads past a table's length).
    Flat rather than padded because the tables of one model differ wildly in length: codec v3's
    20,498 tables hold 0.6 M entries, padded to the longest (3,133) they took 514 MB and 3 s
    per load."""

    def __init__(self, cdfs, lengths, offsets) -> None:
        self.lengths = np.asarray(lengths, dtype=np.int64).reshape(-1)
        self.offsets = np.asarray(offsets, dtype=np.int64).reshape(-1)
        if not len(cdfs) == len(self.lengths) == len(self.offsets):
            raise ValueError(f"{len(cdfs)} CDF tables but {len(self.lengths)} lengths and {len(self.offsets)} offsets")
        rows = [np.asarray(row, dtype=np.int64)[:n] for row, n in zip(cdfs, self.lengths.tolist())]
        short = [t for t, (row, n) in enumerate(zip(rows, self.lengths.tolist())) if len(row) != n or n < 2]
        if short:
            raise ValueError(f"CDF table {short[0]} is shorter than its length {self.lengths[short[0]]} (or under 2)")
        self.starts = np.zeros(len(rows), dtype=np.int64)
        np.cumsum(self.lengths[:-1], out=self.starts[1:])
        self.cdfs = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)

    def rows(self) -> list[list[int]]:
        """Each table's CDF as a list of ints (what the pure-Python coder of :mod:`.arithmetic` takes)."""
        flat = self.cdfs.tolist()
        return [flat[s:s + n] for s, n in zip(self.starts.tolist(), self.lengths.tolist())]

    def __len__(self) -> int:
        return len(self.lengths)


@njit(cache=True)
def _put(buf, nbits, b):
    byte = nbits >> 3
    if b:
        buf[byte] |= np.uint8(1 << (7 - (nbits & 7)))
    return nbits + 1


@njit(cache=True)
def _emit(buf, nbits, pending, b):
    nbits = _put(buf, nbits, b)
    for _ in range(pending):
        nbits = _put(buf, nbits, 1 - b)
    return nbits


@njit(cache=True)
def _interval(state, buf, lo, hi, total_bits):
    # state: low, high, pending, nbits
    low, high, pending, nbits = state[0], state[1], state[2], state[3]
    span = high - low + 1
    high = low + ((span * hi) >> total_bits) - 1
    low = low + ((span * lo) >> total_bits)
    while True:
        if high < _HALF:
            nbits = _emit(buf, nbits, pending, 0)
            pending = 0
        elif low >= _HALF:
            nbits = _emit(buf, nbits, pending, 1)
            pending = 0
            low -= _HALF
            high -= _HALF
        elif low >= _QUARTER and high < _HALF + _QUARTER:
            pending += 1
            low -= _QUARTER
            high -= _QUARTER
        else:
            break
        low <<= 1
        high = (high << 1) | 1
    state[0], state[1], state[2], state[3] = low, high, pending, nbits


@njit(cache=True)
def _raw(state, buf, value, n):
    for i in range(n - 1, -1, -1):
        b = (value >> i) & 1
        _interval(state, buf, b, b + 1, 1)


@njit(cache=True)
def _encode_rows(symbols, indexes, counts, cdfs, starts, lengths, offsets, out, sizes):
    n = symbols.shape[0]
    cap = out.shape[1]
    state = np.zeros(4, dtype=np.int64)
    for r in range(n):
        buf = out[r]
        state[0], state[1], state[2], state[3] = 0, _TOP, 0, 0
        for i in range(counts[r]):
            if ((state[3] + state[2] + 128) >> 3) >= cap:
                return r + 1  # buffer too small: caller retries with more room
            index = indexes[r, i]
            max_value = lengths[index] - 2
            value = symbols[r, i] - offsets[index]
            raw = -1
            if value < 0:
                raw = -2 * value - 1
                value = max_value
            elif value >= max_value:
                raw = 2 * (value - max_value)
                value = max_value
            row = starts[index]
            _interval(state, buf, cdfs[row + value], cdfs[row + value + 1], PRECISION)
            if raw >= 0:
                nb = 0
                v = raw + 1
                while v:
                    nb += 1
                    v >>= 1
                if nb > _MAX_ESCAPE_BITS:
                    return -(r + 1)
                _raw(state, buf, 0, nb - 1)
                _raw(state, buf, raw + 1, nb)
        if ((state[3] + state[2] + 16) >> 3) >= cap:
            return r + 1
        # finish: one more pending bit, then the bit that selects the final quarter
        state[2] += 1
        b = 0 if state[0] < _QUARTER else 1
        state[3] = _emit(buf, state[3], state[2], b)
        size = (state[3] + 7) >> 3
        while size > 0 and buf[size - 1] == 0:
            size -= 1
        sizes[r] = size
    return 0


def encode_batch(symbols: np.ndarray, indexes: np.ndarray, tables: Tables, counts: np.ndarray | None = None) -> list[bytes]:
    """symbols, indexes: N x S integer arrays (symbol i of row r coded with table indexes[r, i])
    -> one stream per row. ``counts`` [N]: code only each row's first counts[r] symbols (rows
    of different lengths; the rest of a row is ignored)."""
    symbols = np.ascontiguousarray(symbols, dtype=np.int64)
    indexes = np.ascontiguousarray(indexes, dtype=np.int64)
    if symbols.shape != indexes.shape or symbols.ndim != 2:
        raise ValueError("symbols and indexes must be N x S arrays of one shape")
    if indexes.size and (indexes.min() < 0 or indexes.max() >= len(tables)):
        raise ValueError("table index out of range")
    n, s = symbols.shape
    counts = np.full(n, s, dtype=np.int64) if counts is None else np.ascontiguousarray(counts, dtype=np.int64)
    if counts.shape != (n,) or (n and (counts.min() < 0 or counts.max() > s)):
        raise ValueError("counts must give 0..S symbols for each of the N rows")
    cap = 2 * s + 64
    while True:
        out = np.zeros((n, cap), dtype=np.uint8)
        sizes = np.zeros(n, dtype=np.int64)
        status = _encode_rows(symbols, indexes, counts, tables.cdfs, tables.starts, tables.lengths, tables.offsets, out, sizes)
        if status < 0:
            raise ValueError("escape value too large to code")
        if status == 0:
            return [out[r, : sizes[r]].tobytes() for r in range(n)]
        cap *= 4


@njit(cache=True)
def _bit(data, start, length, pos):
    if pos >= 8 * length:
        return 0
    return (data[start + (pos >> 3)] >> (7 - (pos & 7))) & 1


@njit(cache=True)
def _consume(st, data, start, length, lo, hi, total_bits):
    # st: low, high, code, pos
    low, high, code, pos = st[0], st[1], st[2], st[3]
    span = high - low + 1
    high = low + ((span * hi) >> total_bits) - 1
    low = low + ((span * lo) >> total_bits)
    while True:
        if high < _HALF:
            pass
        elif low >= _HALF:
            low -= _HALF
            high -= _HALF
            code -= _HALF
        elif low >= _QUARTER and high < _HALF + _QUARTER:
            low -= _QUARTER
            high -= _QUARTER
            code -= _QUARTER
        else:
            break
        low <<= 1
        high = (high << 1) | 1
        code = (code << 1) | _bit(data, start, length, pos)
        pos += 1
    st[0], st[1], st[2], st[3] = low, high, code, pos


@njit(cache=True)
def _target(st, total_bits):
    span = st[1] - st[0] + 1
    return (((st[2] - st[0] + 1) << total_bits) - 1) // span


@njit(cache=True)
def _raw_bits(st, data, start, length, n):
    value = 0
    for _ in range(n):
        b = 1 if _target(st, 1) >= 1 else 0
        _consume(st, data, start, length, b, b + 1, 1)
        value = (value << 1) | b
    return value


@njit(cache=True)
def _decode_symbol(st, data, start, length, index, cdfs, starts, lengths, offsets):
    """The next symbol of one stream with table ``index`` -> (symbol, status): status 0 ok,
    1 an escape code longer than any valid stream allows, 2 read far past the stream's end."""
    max_value = lengths[index] - 2
    row = starts[index]
    t = _target(st, PRECISION)
    lo, hi = 0, max_value + 1
    while hi - lo > 1:
        mid = (lo + hi) >> 1
        if cdfs[row + mid] <= t:
            lo = mid
        else:
            hi = mid
    value = lo
    _consume(st, data, start, length, cdfs[row + value], cdfs[row + value + 1], PRECISION)
    if value == max_value:
        nb = 1
        while _raw_bits(st, data, start, length, 1) == 0:
            nb += 1
            if nb > _MAX_ESCAPE_BITS:
                return 0, 1
        raw = ((1 << (nb - 1)) | _raw_bits(st, data, start, length, nb - 1)) - 1
        if raw % 2:
            value = -(raw + 1) // 2
        else:
            value = max_value + raw // 2
    if st[3] - 8 * length > _MAX_OVERRUN_BITS:
        return 0, 2
    return value + offsets[index], 0


@njit(cache=True)
def _decode_rows(data, starts, lens, states, indexes, cdfs, table_starts, lengths, offsets, out, status):
    n, s = indexes.shape
    for r in range(n):
        if status[r]:
            continue
        st = states[r]
        start, length = starts[r], lens[r]
        for i in range(s):
            value, bad = _decode_symbol(st, data, start, length, indexes[r, i], cdfs, table_starts, lengths, offsets)
            if bad:
                status[r] = bad
                break
            out[r, i] = value


class StreamDecoder:
    """Decodes N streams in steps: ``decode(indexes)`` returns the next symbols of every stream
    (N x S for indexes N x S) and remembers where each stream stopped."""

    def __init__(self, streams: list[bytes], tables: Tables) -> None:
        self.tables = tables
        lens = np.array([len(s) for s in streams], dtype=np.int64)
        self.lens = lens
        self.starts = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64) if len(streams) else lens
        joined = b"".join(streams)
        self.data = np.frombuffer(joined, dtype=np.uint8) if joined else np.zeros(1, dtype=np.uint8)
        self.states = np.zeros((len(streams), 4), dtype=np.int64)
        self.status = np.zeros(len(streams), dtype=np.int64)
        self.rows = np.arange(len(streams))  # each stream's place in the batch given by the caller
        for r in range(len(streams)):
            code = 0
            for pos in range(32):
                code = (code << 1) | int(_bit(self.data, self.starts[r], self.lens[r], pos))
            self.states[r] = (0, _TOP, code, 32)

    def subset(self, rows: np.ndarray) -> "StreamDecoder":
        """A decoder of only the streams ``rows``, each where this one stopped (the data is
        shared, the positions copied): a batch whose streams go on in different modes splits."""
        rows = np.asarray(rows, dtype=np.int64)
        out = object.__new__(StreamDecoder)
        out.tables, out.data = self.tables, self.data
        out.lens, out.starts = self.lens[rows], self.starts[rows]
        out.states, out.status = self.states[rows].copy(), self.status[rows].copy()
        out.rows = self.rows[rows]  # errors name the caller's row, not the subset's
        return out

    # what a stream's status says (0: fine); 3 is set by the predictive mode's decoder
    _REASONS = {1: "escape code longer than any valid stream allows",
                2: "stream ended long before all symbols were decoded",
                3: "a residual symbol outside the alphabet (damaged data)"}

    def raise_if_bad(self) -> None:
        bad = np.flatnonzero(self.status)
        if len(bad):
            reason = self._REASONS.get(int(self.status[bad[0]]), f"decoder status {int(self.status[bad[0]])}")
            raise CorruptFileError(f"image {self.rows[bad[0]]}: {reason}")

    def decode(self, indexes: np.ndarray) -> np.ndarray:
        indexes = np.ascontiguousarray(indexes, dtype=np.int64)
        if indexes.size and (indexes.min() < 0 or indexes.max() >= len(self.tables)):
            raise ValueError("table index out of range")
        out = np.zeros(indexes.shape, dtype=np.int64)
        _decode_rows(self.data, self.starts, self.lens, self.states, indexes, self.tables.cdfs,
                     self.tables.starts, self.tables.lengths, self.tables.offsets, out, self.status)
        self.raise_if_bad()
        return out
