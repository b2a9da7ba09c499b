"""A binary arithmetic coder over CompressAI's quantized CDF tables.

Why not CompressAI's rANS coder: it flushes a 64-bit state, so every string costs at
least 8 bytes, and its sizes come in 4-byte words. A 28x28 image at 0.12 bpp has a
budget of 11.8 bytes in all; the flush alone would be two thirds of it. This coder
(Witten, Neal and Cleary 1987, 32-bit registers) terminates with two bits, and since
the decoder reads missing bits as zeros, trailing zero bytes are dropped too: the
overhead is under one byte. The tables, symbols and escape rule are CompressAI's
(``EntropyBottleneck.update()`` produces them), so the probability model is
CompressAI's; only the byte packing differs. Everything is integer arithmetic, so
a stream decodes identically on every machine.

Escape rule (as in CompressAI's rANS interface): a value outside a table's range is
coded as the table's last symbol followed by an Elias-gamma code of
``raw = -2v-1`` (below the range) or ``raw = 2(v-max)`` (above it) in raw bits.
"""

from __future__ import annotations

from typing import Sequence

from ...errors import CorruptFileError

__all__ = ["encode", "decode", "PRECISION"]

PRECISION = 16  # CompressAI's entropy_coder_precision: every CDF ends at 2**16
_BITS = 32
_TOP = (1 << _BITS) - 1
_HALF = 1 << (_BITS - 1)
_QUARTER = 1 << (_BITS - 2)
_MAX_ESCAPE_BITS = 40  # raw escape values above 2**40 are absurd for image latents: corrupt input


class _BitWriter:
    def __init__(self) -> None:
        self.out = bytearray()
        self.acc = 0
        self.n = 0

    def bit(self, b: int) -> None:
        self.acc = (self.acc << 1) | b
        self.n += 1
        if self.n == 8:
            self.out.append(self.acc)
            self.acc = 0
            self.n = 0

    def finish(self) -> bytes:
        if self.n:
            self.out.append(self.acc << (8 - self.n))
        return bytes(self.out.rstrip(b"\x00"))  # the decoder reads missing bits as 0


class _BitReader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0  # bit position

    def bit(self) -> int:
        byte = self.pos >> 3
        value = (self.data[byte] >> (7 - (self.pos & 7))) & 1 if byte < len(self.data) else 0
        self.pos += 1
        return value

    @property
    def exhausted_by(self) -> int:
        """How many bits were read past the end of the data (zeros supplied)."""
        return max(0, self.pos - 8 * len(self.data))


class _Encoder:
    def __init__(self) -> None:
        self.low = 0
        self.high = _TOP
        self.pending = 0
        self.w = _BitWriter()

    def _emit(self, b: int) -> None:
        self.w.bit(b)
        for _ in range(self.pending):
            self.w.bit(1 - b)
        self.pending = 0

    def interval(self, lo: int, hi: int, total_bits: int) -> None:
        span = self.high - self.low + 1
        self.high = self.low + ((span * hi) >> total_bits) - 1
        self.low = self.low + ((span * lo) >> total_bits)
        while True:
            if self.high < _HALF:
                self._emit(0)
            elif self.low >= _HALF:
                self._emit(1)
                self.low -= _HALF
                self.high -= _HALF
            elif self.low >= _QUARTER and self.high < _HALF + _QUARTER:
                self.pending += 1
                self.low -= _QUARTER
                self.high -= _QUARTER
            else:
                break
            self.low <<= 1
            self.high = (self.high << 1) | 1

    def raw_bits(self, value: int, n: int) -> None:
        for i in range(n - 1, -1, -1):
            b = (value >> i) & 1
            self.interval(b, b + 1, 1)

    def finish(self) -> bytes:
        self.pending += 1
        self._emit(0 if self.low < _QUARTER else 1)
        return self.w.finish()


class _Decoder:
    def __init__(self, data: bytes) -> None:
        self.r = _BitReader(data)
        self.low = 0
        self.high = _TOP
        self.code = 0
        for _ in range(_BITS):
            self.code = (self.code << 1) | self.r.bit()

    def target(self, total_bits: int) -> int:
        span = self.high - self.low + 1
        return (((self.code - self.low + 1) << total_bits) - 1) // span

    def consume(self, lo: int, hi: int, total_bits: int) -> None:
        span = self.high - self.low + 1
        self.high = self.low + ((span * hi) >> total_bits) - 1
        self.low = self.low + ((span * lo) >> total_bits)
        while True:
            if self.high < _HALF:
                pass
            elif self.low >= _HALF:
                self.low -= _HALF
                self.high -= _HALF
                self.code -= _HALF
            elif self.low >= _QUARTER and self.high < _HALF + _QUARTER:
                self.low -= _QUARTER
                self.high -= _QUARTER
                self.code -= _QUARTER
            else:
                break
            self.low <<= 1
            self.high = (self.high << 1) | 1
            self.code = (self.code << 1) | self.r.bit()

    def raw_bits(self, n: int) -> int:
        value = 0
        for _ in range(n):
            b = 1 if self.target(1) >= 1 else 0
            self.consume(b, b + 1, 1)
            value = (value << 1) | b
        return value


def _find_symbol(cdf: Sequence[int], n_symbols: int, t: int) -> int:
    lo, hi = 0, n_symbols  # invariant: cdf[lo] <= t < cdf[hi]
    while hi - lo > 1:
        mid = (lo + hi) >> 1
        if cdf[mid] <= t:
            lo = mid
        else:
            hi = mid
    return lo


def encode(
    symbols: Sequence[int],
    indexes: Sequence[int],
    cdfs: Sequence[Sequence[int]],
    cdf_lengths: Sequence[int],
    offsets: Sequence[int],
) -> bytes:
    """Code ``symbols[i]`` with table ``cdfs[indexes[i]]`` into bytes.

    symbols: integers, ``round(y - median)`` as CompressAI's ``quantize(..., "symbols")`` gives.
    cdfs[j]: CompressAI quantized CDF (non-decreasing, from 0 to 2**16), ``cdf_lengths[j]`` valid entries.
    offsets[j]: the value of the table's first symbol.
    """
    enc = _Encoder()
    for symbol, index in zip(symbols, indexes):
        cdf = cdfs[index]
        max_value = cdf_lengths[index] - 2
        value = symbol - offsets[index]
        raw = None
        if value < 0:
            raw, value = -2 * value - 1, max_value
        elif value >= max_value:
            raw, value = 2 * (value - max_value), max_value
        enc.interval(cdf[value], cdf[value + 1], PRECISION)
        if raw is not None:
            # Elias gamma of raw + 1: length prefix in unary, then the value
            n = (raw + 1).bit_length()
            if n > _MAX_ESCAPE_BITS:
                raise ValueError(f"escape value {raw} too large to code")
            enc.raw_bits(0, n - 1)
            enc.raw_bits(raw + 1, n)
    return enc.finish()


def decode(
    data: bytes,
    indexes: Sequence[int],
    cdfs: Sequence[Sequence[int]],
    cdf_lengths: Sequence[int],
    offsets: Sequence[int],
) -> list[int]:
    """Inverse of :func:`encode`; raises CorruptFileError on impossible data."""
    dec = _Decoder(data)
    out = []
    for index in indexes:
        cdf = cdfs[index]
        max_value = cdf_lengths[index] - 2
        t = dec.target(PRECISION)
        value = _find_symbol(cdf, max_value + 1, t)
        dec.consume(cdf[value], cdf[value + 1], PRECISION)
        if value == max_value:
            n = 1
            while dec.raw_bits(1) == 0:
                n += 1
                if n > _MAX_ESCAPE_BITS:
                    raise CorruptFileError("escape code longer than any valid stream allows")
            raw = ((1 << (n - 1)) | dec.raw_bits(n - 1)) - 1
            value = -(raw + 1) // 2 if raw % 2 else max_value + raw // 2
        out.append(value + offsets[index])
        if dec.r.exhausted_by > 8 * 64:
            raise CorruptFileError("stream ended long before all symbols were decoded")
    return out
