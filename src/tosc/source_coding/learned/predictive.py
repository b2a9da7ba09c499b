"""Codec v3's predictive mode: near-lossless coding of the pixels themselves, for the high rates.

Why a second mode: on Fashion-MNIST the convolutional transform codec stops gaining about
1 dB per 0.1 bpp above 1 bpp and ends 4 dB under VVC at 3.7 bpp, while a causal pixel
predictor with context-coded residuals, the scheme of LOCO-I / JPEG-LS's near-lossless mode
with tables fitted to data instead of adaptive Golomb codes, is 3 to 6 dB above VVC from about
0.8 bpp up (measured: ``scripts/fit_predictive_tables.py`` prints it; the README's codec v3
section has the numbers). Images of flat zero background and sharp edges are what a pixel
predictor codes best and a transform codes worst. The two modes share the stream's first
symbol, the quality index: indices ``0 .. 127`` are the transform codec's, ``128 ..`` this
mode's steps, coarse to fine; the encoder may choose either per image
(:meth:`ConvLearnedCodec.encode_to_budget` keeps the one with the smaller error).

Coding of one channel plane (8-bit values, raster order), identical at both ends:

    a, b, c, d      the decoded left, above, above-left and above-right neighbours (0 outside
                    the image; d beyond the right edge is b)
    P               the median edge detector: min(a, b) if c >= max(a, b), max(a, b) if
                    c <= min(a, b), else a + b - c
    r               round(e / s) of the residual e = x - P with step s (ties towards zero for
                    even s): |x - clip(P + r s, 0, 255)| <= s // 2, and s = 1 is lossless
    context         the gradients d - b, b - c, c - a, each in 13 signed levels (thresholds
                    ``GRAD_THRESHOLDS``), with the sign of the first nonzero one folded into
                    r (JPEG-LS's merge of mirrored contexts), times 4 levels of P
    table           ``table_map[step, context]``: one fitted CDF per context seen often enough
                    in the training images, else the step's table over all contexts

Everything is integer arithmetic on 8-bit values and stored integer tables, so a stream
decodes to the same image on every machine. Multi-channel images are coded plane by plane.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numba import njit

from ...errors import CorruptFileError
from .fastcoder import StreamDecoder, _decode_symbol

__all__ = ["PredictiveTables", "GRAD_THRESHOLDS", "VALUE_THRESHOLDS", "analyse", "decode_pixels",
           "fit_tables", "to_pixels", "stream_symbols", "CONTEXTS", "TAIL_SYMBOLS"]

GRAD_THRESHOLDS = np.array([0, 2, 6, 14, 30, 62], dtype=np.int64)  # 13 signed levels
VALUE_THRESHOLDS = np.array([0, 60, 160], dtype=np.int64)  # 4 levels of the prediction
_G = len(GRAD_THRESHOLDS)
_B = 2 * _G + 1
CONTEXTS = _B ** 3 * (len(VALUE_THRESHOLDS) + 1)
_PRECISION_TOTAL = 1 << 16
TAIL_SYMBOLS = 256  # a residual's excess over the context alphabet, 0 .. 255


@njit(cache=True)
def _level(g):
    a = abs(g)
    k = 0
    for t in GRAD_THRESHOLDS:
        if a > t:
            k += 1
    return k if g > 0 else -k


@njit(cache=True)
def _predict(rec, i, j):
    """(prediction, context, flip) of pixel (i, j) of a plane from its decoded neighbours."""
    w = rec.shape[1]
    a = rec[i, j - 1] if j > 0 else 0
    b = rec[i - 1, j] if i > 0 else 0
    c = rec[i - 1, j - 1] if i > 0 and j > 0 else 0
    d = rec[i - 1, j + 1] if i > 0 and j + 1 < w else b
    hi, lo = max(a, b), min(a, b)
    if c >= hi:
        p = lo
    elif c <= lo:
        p = hi
    else:
        p = a + b - c
    g1, g2, g3 = _level(d - b), _level(b - c), _level(c - a)
    flip = g1 < 0 or (g1 == 0 and (g2 < 0 or (g2 == 0 and g3 < 0)))
    if flip:
        g1, g2, g3 = -g1, -g2, -g3
    v = 0
    for t in VALUE_THRESHOLDS:
        if p > t:
            v += 1
    ctx = (((g1 + _G) * _B + (g2 + _G)) * _B + (g3 + _G)) * (len(VALUE_THRESHOLDS) + 1) + v
    return p, ctx, flip


@njit(cache=True)
def _analyse(pixels, steps, symbols, contexts, rec):
    """pixels N x C x H x W (int64, 0..255), steps [N] -> symbols and contexts N x (C H W) and
    the decoded planes rec N x C x H x W (what the decoder will output)."""
    n, ch, h, w = pixels.shape
    for r in range(n):
        s = steps[r]
        half = (s - 1) // 2
        k = 0
        for c in range(ch):
            plane = rec[r, c]
            for i in range(h):
                for j in range(w):
                    p, ctx, flip = _predict(plane, i, j)
                    e = pixels[r, c, i, j] - p
                    q = (abs(e) + half) // s
                    if e < 0:
                        q = -q
                    plane[i, j] = min(max(p + q * s, 0), 255)
                    symbols[r, k] = -q if flip else q
                    contexts[r, k] = ctx
                    k += 1


@njit(cache=True)
def _stream_symbols(symbols, contexts, step_index, table_map, base, tail_base, half, out_sym, out_idx, counts):
    """Residual symbols and contexts (N x S, from :func:`_analyse`) -> the coded symbols and
    their tables, N x 2S (a residual beyond the alphabet is its sign's tail marker +- (half + 1),
    then its excess magnitude in the step's tail table), and each row's count."""
    n, size = symbols.shape
    for r in range(n):
        k = step_index[r]
        m = 0
        for i in range(size):
            q = symbols[r, i]
            out_idx[r, m] = base + table_map[k, contexts[r, i]]
            if abs(q) <= half:
                out_sym[r, m] = q
                m += 1
            else:
                out_sym[r, m] = half + 1 if q > 0 else -half - 1
                out_sym[r, m + 1] = abs(q) - half - 1
                out_idx[r, m + 1] = tail_base + k
                m += 2
        counts[r] = m


@njit(cache=True)
def _decode(data, starts, lens, states, status, step_index, steps, table_map, base, tail_base, half,
            cdfs, table_starts, lengths, offsets, out):
    n, ch, h, w = out.shape
    for r in range(n):
        st = states[r]
        k = step_index[r]
        s = steps[k]
        for c in range(ch):
            plane = out[r, c]
            for i in range(h):
                for j in range(w):
                    p, ctx, flip = _predict(plane, i, j)
                    q, bad = _decode_symbol(st, data, starts[r], lens[r], base + table_map[k, ctx], cdfs, table_starts, lengths,
                                              offsets)
                    if not bad and abs(q) > half:
                        excess, bad = _decode_symbol(st, data, starts[r], lens[r], tail_base + k, cdfs, table_starts,
                                                      lengths, offsets)
                        if abs(q) > half + 1 or excess < 0:
                            bad = 3
                        q = (half + 1 + excess) * (1 if q > 0 else -1)
                    if bad:
                        status[r] = bad
                        return
                    if flip:
                        q = -q
                    plane[i, j] = min(max(p + q * s, 0), 255)


def to_pixels(images) -> np.ndarray:
    """Images N x C x H x W in [0, 1] (tensor or array) -> int64 8-bit values."""
    x = np.asarray(images.detach().cpu().numpy() if hasattr(images, "detach") else images, dtype=np.float64)
    return np.clip(np.rint(x * 255), 0, 255).astype(np.int64)


def analyse(pixels: np.ndarray, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """pixels N x C x H x W (0..255), step per image [N] -> (symbols N x CHW, contexts N x CHW,
    decoded pixels N x C x H x W)."""
    pixels = np.ascontiguousarray(pixels, dtype=np.int64)
    n = len(pixels)
    size = int(np.prod(pixels.shape[1:]))
    symbols = np.zeros((n, size), dtype=np.int64)
    contexts = np.zeros((n, size), dtype=np.int64)
    rec = np.zeros_like(pixels)
    _analyse(pixels, np.ascontiguousarray(steps, dtype=np.int64), symbols, contexts, rec)
    return symbols, contexts, rec


def stream_symbols(symbols: np.ndarray, contexts: np.ndarray, step_index: np.ndarray, tables: "PredictiveTables",
                   base: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What :func:`analyse` found -> (symbols N x 2S, table indexes N x 2S, counts [N]) for
    :func:`~.fastcoder.encode_batch`, the predictive tables starting at ``base``."""
    n, size = symbols.shape
    out_sym = np.zeros((n, 2 * size), dtype=np.int64)
    out_idx = np.full((n, 2 * size), base, dtype=np.int64)
    counts = np.zeros(n, dtype=np.int64)
    _stream_symbols(symbols, contexts, np.ascontiguousarray(step_index, dtype=np.int64), tables.table_map, base,
                    base + tables.tail_base, tables.half, out_sym, out_idx, counts)
    return out_sym, out_idx, counts


def decode_pixels(dec: StreamDecoder, step_index: np.ndarray, tables: "PredictiveTables", base: int,
                  shape: tuple[int, int, int]) -> np.ndarray:
    """The planes of every stream of ``dec`` (positioned after the quality index) at predictive
    step indices [N] -> pixels N x C x H x W (int64, 0..255). ``base``: where the predictive
    tables start in ``dec.tables``."""
    out = np.zeros((len(step_index), *shape), dtype=np.int64)
    if len(out):
        _decode(dec.data, dec.starts, dec.lens, dec.states, dec.status, np.ascontiguousarray(step_index, dtype=np.int64),
                tables.steps, tables.table_map, base, base + tables.tail_base, tables.half, dec.tables.cdfs,
                dec.tables.starts, dec.tables.lengths, dec.tables.offsets, out)
    dec.raise_if_bad()
    return out


@dataclass
class PredictiveTables:
    """The predictive mode's fitted tables.

    steps: [S] quantiser steps, coarse to fine (the last 1: lossless).
    table_map: S x CONTEXTS, the row of ``cdfs`` each (step, context) is coded with.
    cdfs: T x (2 half + 5) CompressAI-style CDFs (16-bit precision) over the symbols
        -(half + 1) .. half + 1 and CompressAI's escape (never used, one unit); +-(half + 1)
        announce a residual beyond the alphabet, whose excess magnitude (0 .. 255) follows in
        the step's tail table, row ``tail_base + step`` of ``tails`` (T's last S rows).
    half: the context tables' half-width.
    """

    steps: np.ndarray
    table_map: np.ndarray
    cdfs: np.ndarray
    tails: np.ndarray
    half: int
    meta: dict

    def __post_init__(self) -> None:
        self.steps = np.ascontiguousarray(self.steps, dtype=np.int64)
        self.table_map = np.ascontiguousarray(self.table_map, dtype=np.int64)
        self.cdfs = np.ascontiguousarray(self.cdfs, dtype=np.int64)
        self.tails = np.ascontiguousarray(self.tails, dtype=np.int64)

    @property
    def tail_base(self) -> int:
        return len(self.cdfs)

    def __len__(self) -> int:
        return len(self.cdfs) + len(self.tails)

    @property
    def digest(self) -> bytes:
        h = hashlib.sha256()
        for a in (self.steps, self.table_map, self.cdfs, self.tails, np.array([self.half])):
            h.update(np.ascontiguousarray(a, dtype=np.int64).tobytes())
        return h.digest()

    def table_lists(self) -> tuple[list, list, list]:
        """(cdfs, lengths, offsets) for :class:`~.fastcoder.Tables`: the context tables, then the
        tail tables (rows as int64 arrays, which Tables copies as they are)."""
        s = len(self.tails)
        return (list(self.cdfs) + list(self.tails),
                [self.cdfs.shape[1]] * len(self.cdfs) + [self.tails.shape[1]] * s,
                [-self.half - 1] * len(self.cdfs) + [0] * s)

    def save(self, path: str | Path) -> None:
        from ...io import atomic_write_bytes
        import io
        import json

        buf = io.BytesIO()
        # each CDF as its symbol frequencies (1 .. 65535, uint16): they compress better than
        # the cumulative sums
        np.savez_compressed(buf, steps=self.steps.astype(np.int16), table_map=self.table_map.astype(np.int16),
                            cdfs=np.diff(self.cdfs, axis=1).astype(np.uint16), tails=np.diff(self.tails, axis=1).astype(np.uint16),
                            half=np.array(self.half),
                            meta=np.frombuffer(json.dumps(self.meta, sort_keys=True).encode(), dtype=np.uint8))
        atomic_write_bytes(Path(path), buf.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> "PredictiveTables":
        import json

        try:
            with np.load(Path(path)) as f:
                cdfs, tails = (np.concatenate([np.zeros((len(f[k]), 1), np.int64), np.cumsum(f[k].astype(np.int64), axis=1)],
                                              axis=1) for k in ("cdfs", "tails"))
                out = cls(f["steps"], f["table_map"], cdfs, tails, int(f["half"]), json.loads(bytes(f["meta"]).decode()))
        except (OSError, KeyError, ValueError) as exc:
            raise CorruptFileError(f"{path}: not a predictive table file ({type(exc).__name__}: {exc})") from None
        if out.table_map.shape != (len(out.steps), CONTEXTS) or out.table_map.min() < 0 or \
                out.table_map.max() >= len(out.cdfs) or out.cdfs.shape[1] != 2 * out.half + 5 or \
                out.tails.shape != (len(out.steps), TAIL_SYMBOLS + 2):
            raise CorruptFileError(f"{path}: predictive tables of the wrong shape")
        return out


def _cdf_from_counts(counts: np.ndarray) -> list[int]:
    """Integer counts over the alphabet -> a 16-bit CDF with one unit left for the escape
    symbol; every symbol keeps at least one unit. Integer arithmetic only."""
    counts = [int(c) for c in counts]
    total, budget = sum(counts), _PRECISION_TOTAL - 1 - len(counts)
    freq = [1 + c * budget // max(total, 1) for c in counts]
    cdf = [0]
    for f in freq:
        cdf.append(cdf[-1] + f)
    cdf[-1] = _PRECISION_TOTAL - 1  # the units lost to rounding go to the last symbol
    return cdf + [_PRECISION_TOTAL]


def fit_tables(pixels: np.ndarray, steps, *, half: int = 32, min_count: int = 64, batch: int = 2000,
               progress=None) -> PredictiveTables:
    """Count each step's residual symbols per context over ``pixels`` (N x C x H x W, 0..255)
    and freeze them into tables: contexts seen fewer than ``min_count`` times share their
    step's table over every context; residuals beyond +-half count as their tail marker and
    their excess in the step's tail table."""
    steps = np.asarray(steps, dtype=np.int64)
    width = 2 * half + 3
    counts = np.zeros((len(steps), CONTEXTS, width), dtype=np.int64)
    tails = np.zeros((len(steps), TAIL_SYMBOLS), dtype=np.int64)
    for k, s in enumerate(steps):
        for i in range(0, len(pixels), batch):
            sym, ctx, _ = analyse(pixels[i:i + batch], np.full(len(pixels[i:i + batch]), s))
            marker = np.clip(sym, -half - 1, half + 1)
            np.add.at(counts[k], (ctx, marker + half + 1), 1)
            excess = np.abs(sym[np.abs(sym) > half]) - half - 1
            tails[k] += np.bincount(excess, minlength=TAIL_SYMBOLS)[:TAIL_SYMBOLS]
            if progress is not None:
                progress(1)
    cdfs, table_map = [], np.zeros((len(steps), CONTEXTS), dtype=np.int64)
    for k in range(len(steps)):
        table_map[k] = len(cdfs)
        cdfs.append(_cdf_from_counts(counts[k].sum(0)))
        for ctx in np.flatnonzero(counts[k].sum(1) >= min_count):
            table_map[k, ctx] = len(cdfs)
            cdfs.append(_cdf_from_counts(counts[k, ctx]))
    meta = {"images": int(len(pixels)), "half": half, "min_count": min_count, "steps": steps.tolist(),
            "tables": len(cdfs), "tail_symbols": tails.sum(1).tolist()}
    return PredictiveTables(steps, table_map, np.array(cdfs, dtype=np.int64),
                            np.array([_cdf_from_counts(t) for t in tails], dtype=np.int64), half, meta)
