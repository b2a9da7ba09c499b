"""Ordered-statistics decoding (OSD, Fossorier and Lin 1995) of order 0 to 2, compiled with numba.

The link runs it on the codewords whose BP decoding failed (:meth:`tosc.channel.ldpc.LDPC5GCode.decode`
with ``osd_order``). On the short 5G LDPC blocks of small images BP is far from maximum likelihood:
at 98 channel uses, QPSK, 5 dB and 140 information bits, 163 of 10,000 codewords failed BP and 17
failed BP followed by order-2 OSD. Sionna's :class:`sionna.phy.fec.linear.OSDecoder` makes the same
decisions (tested) but took 0.6 to 1,200 ms per word at the link's shapes; this module takes 0.1 to
5 ms (benchmarks/osd_bench.py), which matters because it runs inside the link, not only in a study:

- the generator matrix, bit-packed into 64-bit words with an identity block beside it, is brought
  into systematic form on the most reliable basis (MRB) by Gaussian elimination over GF(2); the
  identity block tracks the row operations, so each candidate's information word comes out directly
  (5G LDPC punctures the first 2Z systematic bits, so they are not read off the codeword);
- a candidate flips 0, 1 or 2 MRB bits of the hard decision; its metric is the sum of |LLR| over
  the positions where it differs from the hard decision (the ML metric for any memoryless channel,
  given bit LLRs), evaluated only on the n - K positions outside the MRB plus the flipped ones.

Each decoded word also gets the metric of the runner-up candidate; the gap between the two is the
reliability of the decision. The link does not use it: refusing decisions with a gap below 4 LLR
units caught 50% to 100% of OSD's wrong words at eight shapes, but also up to 28% of its right
ones, so the link keeps its undetected errors down with a longer CRC instead (CRC-11 on blocks it
decodes with OSD; docs/channel.md).

Shapes: ``generator [K, n]`` 0/1, ``llr [B, n]`` logits log P(1)/P(0) (Sionna's convention) ->
``bits [B, K]`` uint8, ``metric [B]`` and ``runner_up [B]`` float64 (units of LLR).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..errors import ConfigError

__all__ = ["osd_decode", "check_generator"]


def check_generator(generator: np.ndarray) -> np.ndarray:
    """0/1 ``[K, n]`` generator -> a contiguous uint8 array (the form :func:`osd_decode` takes), checked."""
    g = np.ascontiguousarray(np.asarray(generator), dtype=np.uint8)
    if g.ndim != 2 or g.shape[0] > g.shape[1]:
        raise ConfigError(f"expected a generator matrix [K, n] with K <= n, got {g.shape}")
    if g.size and g.max() > 1:
        raise ConfigError("the generator matrix must be binary")
    return g


@njit(cache=True)
def _decode_one(g: np.ndarray, llr: np.ndarray, order: int, bits_out: np.ndarray) -> tuple[float, float]:
    k, n = g.shape
    width = n + k
    words = (width + 63) // 64
    rel = np.abs(llr)
    perm = np.argsort(-rel, kind="mergesort")
    # rows of [G P | I], bit-packed; column j < n is the j-th most reliable position
    m = np.zeros((k, words), dtype=np.uint64)
    one = np.uint64(1)
    for r in range(k):
        for j in range(n):
            if g[r, perm[j]]:
                m[r, j >> 6] |= one << np.uint64(j & 63)
        c = n + r
        m[r, c >> 6] |= one << np.uint64(c & 63)
    pivots = np.empty(k, dtype=np.int64)
    rank = 0
    for j in range(n):
        if rank == k:
            break
        w = j >> 6
        bit = one << np.uint64(j & 63)
        found = -1
        for r in range(rank, k):
            if m[r, w] & bit:
                found = r
                break
        if found < 0:
            continue  # dependent on the columns already in the basis
        if found != rank:
            for x in range(words):
                t = m[found, x]
                m[found, x] = m[rank, x]
                m[rank, x] = t
        for r in range(k):
            if r != rank and m[r, w] & bit:
                for x in range(w, words):  # columns left of j are zero in the pivot row
                    m[r, x] ^= m[rank, x]
        pivots[rank] = j
        rank += 1
    if rank < k:  # a degenerate code (never for 5G LDPC): no decision
        bits_out[:] = 0
        return np.inf, np.inf
    is_pivot = np.zeros(n, dtype=np.bool_)
    for r in range(k):
        is_pivot[pivots[r]] = True
    hard = np.empty(n, dtype=np.uint8)
    for j in range(n):
        hard[j] = 1 if llr[perm[j]] > 0 else 0
    rest = np.empty(n - k, dtype=np.int64)
    q = 0
    for j in range(n):
        if not is_pivot[j]:
            rest[q] = j
            q += 1
    p = n - k
    weight = np.empty(p, dtype=np.float64)
    for q in range(p):
        weight[q] = rel[perm[rest[q]]]
    rows = np.zeros((k, p), dtype=np.uint8)
    for r in range(k):
        for q in range(p):
            j = rest[q]
            if m[r, j >> 6] & (one << np.uint64(j & 63)):
                rows[r, q] = 1
    # order 0: the hard decision on the MRB, re-encoded; e = its disagreement outside the MRB
    e = np.zeros(p, dtype=np.uint8)
    for r in range(k):
        if hard[pivots[r]]:
            for q in range(p):
                e[q] ^= rows[r, q]
    d0 = 0.0
    for q in range(p):
        if e[q] != hard[rest[q]]:
            e[q] = 1
            d0 += weight[q]
        else:
            e[q] = 0
    best, second = d0, np.inf
    best_i, best_j = -1, -1
    if order >= 1:
        # a_i = e ^ row_i; D1(i) = rel(pivot i) + sum w a_i; D2(i, j) adds row_j
        a_sum = np.empty(k, dtype=np.float64)
        row_sum = np.empty(k, dtype=np.float64)
        flip = np.empty(k, dtype=np.float64)
        for r in range(k):
            s = 0.0
            t = 0.0
            for q in range(p):
                if e[q] ^ rows[r, q]:
                    s += weight[q]
                if rows[r, q]:
                    t += weight[q]
            a_sum[r] = s
            row_sum[r] = t
            flip[r] = rel[perm[pivots[r]]]
            d = flip[r] + s
            if d < best:
                second = best
                best, best_i, best_j = d, r, -1
            elif d < second:
                second = d
        if order >= 2:
            for i in range(k):
                for j in range(i + 1, k):
                    overlap = 0.0
                    for q in range(p):
                        if (e[q] ^ rows[i, q]) & rows[j, q]:
                            overlap += weight[q]
                    d = flip[i] + flip[j] + a_sum[i] + row_sum[j] - 2.0 * overlap
                    if d < best:
                        second = best
                        best, best_i, best_j = d, i, j
                    elif d < second:
                        second = d
    # the information word: XOR of the identity block of the rows whose MRB bit is 1
    u = np.zeros(k, dtype=np.uint8)
    for r in range(k):
        v = hard[pivots[r]]
        if r == best_i or r == best_j:
            v ^= 1
        if v:
            for c in range(k):
                col = n + c
                if m[r, col >> 6] & (one << np.uint64(col & 63)):
                    u[c] ^= 1
    bits_out[:] = u
    return best, second


@njit(cache=True)
def _decode_batch(g, llr, order, bits, metric, runner_up):
    for b in range(llr.shape[0]):
        metric[b], runner_up[b] = _decode_one(g, llr[b], order, bits[b])


def osd_decode(generator: np.ndarray, llr: np.ndarray, order: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Order-``order`` OSD of B received words; see the module docstring for shapes and units.

    Returns (bits [B, K] uint8, metric [B], runner_up [B]): the information word of the best
    candidate, its metric and the metric of the best other candidate (inf at order 0).
    """
    if order not in (0, 1, 2):
        raise ConfigError(f"OSD order must be 0, 1 or 2, got {order}")
    g = check_generator(generator)
    x = np.ascontiguousarray(np.asarray(llr, dtype=np.float64))
    if x.ndim != 2 or x.shape[1] != g.shape[1]:
        raise ConfigError(f"expected LLRs [B, {g.shape[1]}], got {x.shape}")
    bits = np.zeros((x.shape[0], g.shape[0]), dtype=np.uint8)
    metric = np.zeros(x.shape[0])
    runner_up = np.zeros(x.shape[0])
    _decode_batch(g, x, int(order), bits, metric, runner_up)
    return bits, metric, runner_up
