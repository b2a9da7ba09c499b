"""5G NR CA-polar codes (3GPP 38.212, uplink) with a compiled CRC-aided successive-cancellation list decoder.

:class:`PolarCode` is one code of ``k`` payload bits and ``n`` coded bits (E in 38.212): the payload
gets a CRC (:data:`POLAR_CRCS`, bit-exact with Sionna's ``CRCEncoder``), the K = k + CRC bits are
placed on the K most reliable positions of a polar mother code of length N, and the N coded bits are
sub-block interleaved, rate-matched to E by puncturing, shortening or repetition, and channel
interleaved. Everything follows 38.212 sections 5.3.1 and 5.4.1 for the uplink without segmentation,
parity-check bits or input interleaver (the shape of Sionna's ``Polar5GEncoder(k, n)``, which uses
CRC11 for k >= 20; this module lets the CRC be chosen).

One place where Sionna PHY 2.2 departs from 38.212, and this module follows 38.212: with puncturing
(K/E <= 7/16, E < N) 38.212 5.4.1.1 freezes the input positions J(0), ..., J(N-E-1) of the punctured
coded bits, J being the length-N sub-block interleaver, plus positions 0 .. ceil(3N/4 - E/2) - 1
(E >= 3N/4) or 0 .. ceil(9N/16 - E/4) - 1. Sionna evaluates J for length 32 ceil((N-E)/32) instead of
N and freezes one position fewer of the second set (its rate matching, which punctures with the
length-N J, agrees with 38.212). Of the 166,476 punctured CRC11 shapes with k >= 20, 1,677 get a
different frozen set, hence different codewords, and in 52 of them (k = 263..269, E = 627..640,
N = 1024) Sionna puts an information bit on position 575, whose coded bit is punctured: that bit
carries no information (SC decoding fails half of the noiseless words; a list decoder falls back on
the CRC). ``_construct(..., rule="sionna")`` reproduces Sionna's choice; the tests use it to show that
this is the only difference (tests/channel/test_polar.py).

Decoder (:func:`_decode_batch`, numba, one thread, a loop over the batch): CA-SCL in the LLR domain
(Balatsoukas-Stimming et al. 2015) with

- min-sum check nodes f(a, b) = sign(a) sign(b) min(|a|, |b|) and exact g(a, b, u) = b + (1 - 2u) a;
- the approximate path metric: a decision that disagrees with the sign of its LLR L adds |L|
  (frozen bits are decided 0 and pay the same way);
- at an information bit, each of the (at most L) paths forks into two candidates and the L best of
  the 2L survive, ties going to the earlier path: no sort, since a path's worse continuation can
  only survive if it beats the worst of the better ones (usually none does; otherwise the worst of
  the pool is dropped once per such candidate);
- lazy copying (Tal and Vardy 2015): a path holds, for each stage of the decoding tree, a pointer to
  an LLR array shared with the paths it was cloned with (reference counted); a clone copies only the
  pointers, and a path that is about to overwrite a shared stage takes a fresh array (no copy is
  needed, since every write covers the whole stage). Partial sums live in one array of N bits per
  path, updated in place, of which a clone copies the prefix decided so far. (Measured against
  copying the LLR arrays at each clone: the same at N = 128 and 256, 20% faster at N = 512, 1024.)
- the decoding tree is flattened once per code into a list of operations, with two exact shortcuts
  (Hashemi et al. 2016): a subtree whose leaves are all frozen adds sum_j |a_j| over its negative
  LLRs at once, and a repetition subtree (only its last leaf carries information) forks once on the
  sums of disagreeing LLRs. With min-sum and this metric both give exactly the metrics of the
  bit-by-bit decoder (up to float rounding), so the decisions are those of plain SCL; the tests
  check them against a textbook list decoder written with full copies and no shortcuts.

At the end the surviving paths are tried in order of increasing metric and the first whose K bits
pass the CRC is returned (``ok`` True); if none passes, the best path's payload with ``ok`` False.
``list_size = 1`` is plain SC decoding followed by the CRC check.

Speed (benchmarks/polar_bench.py, L = 8, one thread, code rate 0.6, CRC11, shared 2-core machine):
about 35, 70-90, 170-250 and 320-480 microseconds per word at E = 98, 196, 392 and 784 coded bits
(N = 128 .. 1024; the spread is the machine's load), 13x to 50x less CPU time than Sionna's
Polar5GDecoder(SCL, L = 8), whose block
error rates it matches within Monte-Carlo error on the same words (95% to 97% identical decisions
at BLER 0.05-0.15; Sionna uses the exact boxplus and softplus metric and a single-flip shortcut at
rate-1 nodes, this decoder min-sum and the |L| metric, which lose a few hundredths of a dB).

LLR convention at this interface: Sionna's logits ``log P(c=1|y) / P(c=0|y)`` (as in
:mod:`tosc.channel.ldpc`); the decoder works internally with textbook LLRs ``log P(0)/P(1)``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
from numba import njit

from ..errors import ConfigError

__all__ = [
    "POLAR_MAX_CODED_BITS",
    "POLAR_MIN_CODED_BITS",
    "POLAR_LIST_SIZE",
    "POLAR_LINK_CRC",
    "POLAR_CRCS",
    "PolarCode",
    "PolarDecodeResult",
    "get_polar_code",
    "polar_feasible",
    "crc_encode",
]

POLAR_MAX_CODED_BITS = 1088  # 38.212 uplink limit without segmentation
POLAR_MIN_CODED_BITS = 18  # smallest E 38.212 defines for polar-coded UCI
# The link's choice (tosc.channel.digital), by measurement at 98 channel uses, QPSK, 5 dB, 10,000
# words each: the largest payload with at most 5 failures was about 128 bits with CRC-11 and 8
# paths, 120 with CRC-16 and 8, 124-128 with CRC-16 and 16, 128 with CRC-16 and 32 (BP LDPC: 121).
# CRC-11 with 8 paths let 0.27% of its failed words through (12 of 4,349 at 3.5 dB, 3 of 1,153 at
# 4 dB): 1.4e-6 undetected errors per block at an operating point's 5e-4, above the 1e-6 the link
# allows; CRC-16 leaves about 16 x 2^-16 = 2.4e-4 of them. 16 paths cost twice the time of 8.
POLAR_LIST_SIZE = 16
POLAR_LINK_CRC = ("CRC16", 16)
POLAR_CRCS = {"CRC6": 6, "CRC11": 11, "CRC16": 16, "CRC24C": 24}  # names as sionna.phy.fec.crc understands them
# generator polynomials of 38.212 5.1, as the exponents of their nonzero terms
_CRC_POLY_TERMS = {
    "CRC6": (6, 5, 0),
    "CRC11": (11, 10, 9, 5, 0),
    "CRC16": (16, 12, 5, 0),
    "CRC24C": (24, 23, 21, 20, 17, 15, 13, 12, 8, 4, 2, 1, 0),
}
_N_MIN_LOG2, _N_MAX_LOG2 = 5, 10  # mother code lengths 32 .. 1024 (uplink)
# 38.212 Table 5.4.1.1-1: sub-block interleaver pattern P(i)
_SUBBLOCK_P = np.array([0, 1, 2, 4, 3, 5, 6, 7, 8, 16, 9, 17, 10, 18, 11, 19,
                        12, 20, 13, 21, 14, 22, 15, 23, 24, 25, 26, 28, 27, 29, 30, 31])
_LLR_CLIP = 1.0e4  # channel LLRs are clipped to +-this (a certainty; keeps inf out of g)
_LLR_KNOWN = 1.0e6  # LLR of a shortened (known zero) mother-code bit: dominates any channel sum


# ---------------------------------------------------------------------------------------------
# CRC
# ---------------------------------------------------------------------------------------------

def _crc_rows(k: int, crc: str) -> np.ndarray:
    """[k] int64: the CRC parity word contributed by each payload bit (bit L-1-i holds parity bit i).

    The parity of a payload a_0 .. a_{k-1} is the remainder of a(x) x^L divided by the generator g(x),
    with a_0 the coefficient of the highest power (zero initial register, no final XOR), sent most
    significant first after the payload, as 38.212 5.1 and Sionna's CRCEncoder. Payload bit j alone
    contributes x^(L + k - 1 - j) mod g(x); the rows are built from the last bit backwards.
    """
    length = POLAR_CRCS[crc]
    poly = 0
    for e in _CRC_POLY_TERMS[crc]:
        poly |= 1 << e
    rows = np.zeros(k, dtype=np.int64)
    rem = poly ^ (1 << length)  # x^L mod g
    for j in range(k - 1, -1, -1):
        rows[j] = rem
        rem <<= 1
        if rem >> length & 1:
            rem ^= poly
    return rows


def crc_encode(bits: np.ndarray, crc: str) -> np.ndarray:
    """[B, k] 0/1 payload -> [B, k + L] uint8: the payload followed by its L CRC parity bits."""
    bits = np.asarray(bits).astype(np.uint8)
    if crc not in POLAR_CRCS:
        raise ConfigError(f"unknown CRC {crc!r}; choose one of {', '.join(POLAR_CRCS)}")
    length = POLAR_CRCS[crc]
    rows = _crc_rows(bits.shape[1], crc)
    shifts = np.arange(length - 1, -1, -1, dtype=np.int64)
    matrix = ((rows[:, None] >> shifts[None, :]) & 1).astype(np.int64)  # [k, L]
    parity = (bits.astype(np.int64) @ matrix) & 1
    return np.concatenate([bits, parity.astype(np.uint8)], axis=1)


# ---------------------------------------------------------------------------------------------
# Construction (38.212 5.3.1 and 5.4.1, uplink)
# ---------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _reliability_sequence() -> np.ndarray:
    """Q_0^{1023} of 38.212 Table 5.3.1.2-1: the 1024 bit indices from least to most reliable."""
    from sionna.phy.fec.polar import generate_5g_ranking

    order = np.asarray(generate_5g_ranking(0, 1024, sort=False)[0], dtype=np.int64)
    if sorted(order.tolist()) != list(range(1024)):
        raise AssertionError("the 5G reliability sequence is not a permutation of 0..1023")
    return order


def _subblock_pattern(n: int) -> np.ndarray:
    """J(0..N-1) of 38.212 5.4.1.1: the interleaved sequence is y_m = d_{J(m)}; N a multiple of 32."""
    m = np.arange(n)
    block = n // 32
    return _SUBBLOCK_P[(32 * m) // n] * block + m % block


def _channel_interleaver(e: int) -> np.ndarray:
    """[E] source index of each output bit of the uplink triangular interleaver (38.212 5.4.1.3).

    The E bits fill an isosceles right triangle of side T (the smallest T with T(T+1)/2 >= E) row
    by row, row r holding T - r cells, the cells after the E-th left empty; the output reads it
    column by column, top to bottom, skipping empty cells.
    """
    side = 0
    while side * (side + 1) // 2 < e:
        side += 1
    rows = np.concatenate([np.full(side - r, r) for r in range(side)])
    cols = np.concatenate([np.arange(side - r) for r in range(side)])
    rows, cols = rows[:e], cols[:e]  # cell e' of the row-major fill holds input bit e'
    return np.lexsort((rows, cols))  # column-major read order


def _mother_length(k_polar: int, e: int) -> int:
    """N of 38.212 5.3.1 (n_max = 10, n_min = 5, minimum rate 1/8)."""
    c = (e - 1).bit_length()  # ceil(log2 E)
    if 8 * e <= 9 * 2 ** (c - 1) and 16 * k_polar < 9 * e:  # E <= 9/8 2^(c-1) and K/E < 9/16
        n1 = c - 1
    else:
        n1 = c
    n2 = (8 * k_polar - 1).bit_length()  # ceil(log2(K / (1/8)))
    return 2 ** max(min(n1, n2, _N_MAX_LOG2), _N_MIN_LOG2)


def _rate_matching_mode(k_polar: int, e: int, n: int) -> str:
    if e > n:
        return "repetition"
    if e == n:
        return "none"
    return "puncturing" if 16 * k_polar <= 7 * e else "shortening"


def _check(k: int, n: int, crc_bits: int) -> str | None:
    """Why a code of k payload bits, a CRC of crc_bits and n coded bits cannot be built (None if it can)."""
    if k < 1:
        return f"a polar code needs at least one payload bit, got k={k}"
    if n < POLAR_MIN_CODED_BITS:
        return f"a 5G polar code sends at least {POLAR_MIN_CODED_BITS} coded bits, got n={n}"
    if n > POLAR_MAX_CODED_BITS:
        return f"a 5G polar code without segmentation sends at most {POLAR_MAX_CODED_BITS} coded bits, got n={n}"
    k_polar = k + crc_bits
    if k_polar > n:
        return f"k + CRC = {k} + {crc_bits} = {k_polar} bits do not fit in n={n} coded bits"
    big_n = _mother_length(k_polar, n)
    if k_polar >= big_n:
        return f"k + CRC = {k_polar} bits do not fit a mother code of N={big_n} (the largest is 1024) with a frozen bit"
    return None


def _construct(k_polar: int, e: int, rule: str = "38.212") -> tuple[int, np.ndarray, np.ndarray, str]:
    """(N, frozen [N] bool, rate-matching map [E] int64, mode) for K = k_polar information bits and E coded bits.

    The map gives, for each transmitted bit (after the channel interleaver), the index of the
    mother-code bit it carries: codeword[:, map] is the rate-matched word.
    rule: "38.212", or "sionna" for Sionna's variant of the puncturing pre-freezing (module docstring).
    """
    n = _mother_length(k_polar, e)
    mode = _rate_matching_mode(k_polar, e, n)
    pattern = _subblock_pattern(n)
    pre = np.zeros(n, dtype=bool)
    if mode == "puncturing":
        punct = n - e
        if rule == "sionna":
            pre[_subblock_pattern(32 * -(-punct // 32))[:punct]] = True
        else:
            pre[pattern[:punct]] = True
        # ceil(3N/4 - E/2) if E >= 3N/4, else ceil(9N/16 - E/4)
        extra = -(-(6 * n - 4 * e) // 8) if 4 * e >= 3 * n else -(-(9 * n - 4 * e) // 16)
        if rule == "sionna":
            extra -= 1
        pre[:max(extra, 0)] = True
    elif mode == "shortening":
        pre[pattern[e:]] = True
    order = _reliability_sequence()
    order = order[order < n]  # Q_0^{N-1}: the nested sequence keeps its order
    candidates = order[~pre[order]]
    if len(candidates) < k_polar:
        raise ConfigError(f"only {len(candidates)} of N={n} positions are not pre-frozen; {k_polar} are needed")
    frozen = np.ones(n, dtype=bool)
    frozen[candidates[len(candidates) - k_polar:]] = False
    # circular buffer bit selection (38.212 5.4.1.2) on the sub-block interleaved sequence
    if mode in ("repetition", "none"):
        pick = np.arange(e) % n
    elif mode == "puncturing":
        pick = np.arange(e) + (n - e)
    else:
        pick = np.arange(e)
    rm = pattern[pick][_channel_interleaver(e)]
    return n, frozen, rm.astype(np.int64), mode


def _polar_transform(u: np.ndarray) -> np.ndarray:
    """x = u G_N over GF(2), G_N the n-fold Kronecker power of [[1, 0], [1, 1]]; u [B, N] uint8."""
    x = u.copy()
    batch, n = x.shape
    half = 1
    while half < n:
        v = x.reshape(batch, n // (2 * half), 2, half)
        v[:, :, 0, :] ^= v[:, :, 1, :]
        half *= 2
    return x


# ---------------------------------------------------------------------------------------------
# Decoder
# ---------------------------------------------------------------------------------------------

# Operations of the flattened decoding tree: one row (op, stage s, offset, info index) each.
# A node at stage s covers the 2^s leaves (bit indices) off .. off + 2^s - 1.
_OP_F = 0  # LLRs of the left child (stage s - 1) from the node's (stage s): f
_OP_G = 1  # LLRs of the right child from the node's and the left child's partial sums: g
_OP_COMBINE = 2  # the node's partial sums from its children's, in place
_OP_FROZEN = 3  # a frozen leaf: decide 0
_OP_INFO = 4  # an information leaf: fork and keep the best L paths
_OP_RATE0 = 5  # a subtree with all leaves frozen
_OP_REP = 6  # a subtree whose only information leaf is its last


def _build_tape(frozen: np.ndarray) -> np.ndarray:
    """The decoding schedule of a polar code with the given frozen mask [N]: int32 [T, 4] rows."""
    n = len(frozen)
    n_log = n.bit_length() - 1
    info_index = np.cumsum(~frozen) - 1  # K-bit index of each information leaf
    ops: list[tuple[int, int, int, int]] = []

    def visit(s: int, off: int, need_sums: bool) -> None:
        size = 1 << s
        leaves = frozen[off:off + size]
        if s == 0:
            ops.append((_OP_FROZEN, 0, off, 0) if leaves[0] else (_OP_INFO, 0, off, int(info_index[off])))
        elif leaves.all():
            ops.append((_OP_RATE0, s, off, 0))
        elif leaves[:-1].all():
            ops.append((_OP_REP, s, off, int(info_index[off + size - 1])))
        else:
            half = size // 2
            ops.append((_OP_F, s, off, 0))
            visit(s - 1, off, True)  # a left child's partial sums feed g
            ops.append((_OP_G, s, off, 0))
            visit(s - 1, off + half, need_sums)
            if need_sums:  # only nodes whose sums a g or a parent's combine reads
                ops.append((_OP_COMBINE, s, off, 0))

    visit(n_log, 0, False)
    return np.array(ops, dtype=np.int32)


@njit(cache=True, nogil=True)
def _decode_batch(llr, tape, n_log, list_size, crc_rows, crc_len, bits_out, ok_out):
    """CA-SCL decoding of B words: llr [B, N] float32 textbook mother-code LLRs -> bits_out [B, K]
    uint8 decided information bits (payload, then CRC) and ok_out [B] bool (their CRC checks).

    tape: [T, 4] int32 operations of :func:`_build_tape`; crc_rows [k] int64 of :func:`_crc_rows`.
    Workspace, L = list_size paths with ids 0 .. L-1:
      A [L 2N] float32    LLR arrays: slot q of stage s (2^s values) is A[2Nq + 2^s : 2Nq + 2^(s+1)];
                          the channel is slot 0 of stage n = log2 N;
      ap [L, n + 1]       each path's slot at each stage; refs [n + 1, L] paths using each slot;
      free [n + 1, L]     unused slots of each stage (a stack of n_free[s]); id_free: unused ids;
      sums [L N] uint8    partial sums (re-encoded decisions) of each path, path p's at pN, in place;
      u_bits [L K] uint8  each path's decided information bits (payload, then CRC), path p's at pK;
      pm [L]              path metrics; act[:n_act] the active path ids.
    Everything is indexed element by element (no array views): each view costs a reference-count
    update, which made the first version of this loop four times slower. Releases the GIL.
    """
    n = 1 << n_log
    big_k = bits_out.shape[1]
    k = big_k - crc_len
    L = list_size
    w = 2 * n
    A = np.zeros(L * w, dtype=np.float32)
    ap = np.zeros((L, n_log + 1), dtype=np.int64)
    refs = np.zeros((n_log + 1, L), dtype=np.int64)
    free = np.zeros((n_log + 1, L), dtype=np.int64)
    n_free = np.zeros(n_log + 1, dtype=np.int64)
    id_free = np.zeros(L, dtype=np.int64)
    sums = np.zeros(L * n, dtype=np.uint8)
    u_bits = np.zeros(L * big_k, dtype=np.uint8)
    pm = np.zeros(L, dtype=np.float64)
    act = np.zeros(L, dtype=np.int64)
    m0 = np.zeros(L, dtype=np.float64)
    m1 = np.zeros(L, dtype=np.float64)
    decision = np.zeros(L, dtype=np.uint8)
    both = np.zeros(L, dtype=np.bool_)
    keep0 = np.zeros(L, dtype=np.bool_)
    keep1 = np.zeros(L, dtype=np.bool_)
    order = np.zeros(2 * L, dtype=np.int64)
    metric = np.zeros(2 * L, dtype=np.float64)
    for b in range(llr.shape[0]):
        # one path (id 0) using slot 0 of every stage
        for i in range(n):
            A[n + i] = llr[b, i]
        for s in range(n_log + 1):
            for q in range(L):
                refs[s, q] = 0
                free[s, q] = L - 1 - q  # slots L-1 .. 1; slot 0 is in use
            refs[s, 0] = 1
            n_free[s] = L - 1
        for q in range(L):
            id_free[q] = L - 1 - q  # ids L-1 .. 1
        for s in range(n_log + 1):
            ap[0, s] = 0
        n_id_free = L - 1
        act[0] = 0
        n_act = 1
        pm[0] = 0.0
        for row in range(tape.shape[0]):
            op = tape[row, 0]
            s = tape[row, 1]
            off = tape[row, 2]
            if op == _OP_F or op == _OP_G:
                h = 1 << (s - 1)
                for t in range(n_act):
                    p = act[t]
                    src = ap[p, s]
                    dst = ap[p, s - 1]
                    if refs[s - 1, dst] > 1:  # shared with a clone: take a free slot (no copy needed,
                        refs[s - 1, dst] -= 1  # the write below covers the whole stage)
                        n_free[s - 1] -= 1
                        dst = free[s - 1, n_free[s - 1]]
                        refs[s - 1, dst] = 1
                        ap[p, s - 1] = dst
                    xb = src * w + 2 * h  # the node's LLRs: x = first half, y = second half
                    db = dst * w + h
                    if op == _OP_F:
                        for i in range(h):
                            x = A[xb + i]
                            y = A[xb + h + i]
                            A[db + i] = math.copysign(min(abs(x), abs(y)), x * y)
                    else:
                        sb = p * n + off
                        for i in range(h):
                            x = A[xb + i]
                            A[db + i] = A[xb + h + i] + (-x if sums[sb + i] else x)
            elif op == _OP_COMBINE:
                h = 1 << (s - 1)
                for t in range(n_act):
                    p = act[t]
                    for i in range(p * n + off, p * n + off + h):
                        sums[i] ^= sums[i + h]
            elif op == _OP_FROZEN:
                for t in range(n_act):
                    p = act[t]
                    lam = A[ap[p, 0] * w + 1]
                    if lam < 0:
                        pm[p] -= lam
                    sums[p * n + off] = 0
            elif op == _OP_RATE0:
                size = 1 << s
                for t in range(n_act):
                    p = act[t]
                    src = ap[p, s]
                    acc = 0.0
                    for i in range(src * w + size, src * w + 2 * size):
                        x = A[i]
                        if x < 0:
                            acc -= x
                    pm[p] += acc
                    for i in range(p * n + off, p * n + off + size):
                        sums[i] = 0
            else:  # _OP_INFO or _OP_REP: every path forks on one information bit
                j = tape[row, 3]
                size = 1 << s
                for t in range(n_act):
                    p = act[t]
                    src = ap[p, s]
                    neg = 0.0  # penalty of bit 0: the negative LLRs disagree
                    pos = 0.0  # penalty of bit 1
                    for i in range(src * w + size, src * w + 2 * size):
                        x = A[i]
                        if x < 0:
                            neg -= x
                        else:
                            pos += x
                    m0[t] = pm[p] + neg
                    m1[t] = pm[p] + pos
                    keep0[t] = True
                    keep1[t] = True
                if 2 * n_act > L:
                    # keep the L best of the 2 n_act candidates: metric[t] is path t's better
                    # continuation (bit 0 on ties), metric[n_act + t] its worse one; of equal
                    # metrics the lower index survives. order[c] = 1 marks the survivors.
                    n_cand = 2 * n_act
                    top = -np.inf
                    for t in range(n_act):
                        lo = min(m0[t], m1[t])
                        metric[t] = lo
                        metric[n_act + t] = max(m0[t], m1[t])
                        top = max(top, lo)
                    if n_act == L:
                        # the full list (always, after the first log2(L) forks): a worse continuation
                        # can only survive if it is below the worst better one; admit those and then
                        # drop the worst of the pool as many times (usually zero to two)
                        n_drop = 0
                        for c in range(n_cand):
                            order[c] = 1 if c < n_act or metric[c] < top else 0
                            if c >= n_act and metric[c] < top:
                                n_drop += 1
                        for _ in range(n_drop):
                            worst = -1
                            for c in range(n_cand):
                                if order[c] and (worst < 0 or metric[c] >= metric[worst]):
                                    worst = c
                            order[worst] = 0
                    else:  # a list size that is not a power of 2: rank every candidate
                        for c in range(n_cand):
                            rank = 0
                            for c2 in range(n_cand):
                                if metric[c2] < metric[c] or (metric[c2] == metric[c] and c2 < c):
                                    rank += 1
                            order[c] = 1 if rank < L else 0
                    for t in range(n_act):
                        keep_better = order[t] == 1
                        keep_worse = order[n_act + t] == 1
                        if m1[t] < m0[t]:
                            keep0[t] = keep_worse
                            keep1[t] = keep_better
                        else:
                            keep0[t] = keep_better
                            keep1[t] = keep_worse
                # drop the paths without a surviving candidate (freeing their ids and slots) and
                # compact the active list; a path keeps its better surviving continuation
                n_new = 0
                for t in range(n_act):
                    p = act[t]
                    if not keep0[t] and not keep1[t]:
                        for s2 in range(n_log):
                            slot = ap[p, s2]
                            refs[s2, slot] -= 1
                            if refs[s2, slot] == 0:
                                free[s2, n_free[s2]] = slot
                                n_free[s2] += 1
                        id_free[n_id_free] = p
                        n_id_free += 1
                        continue
                    act[n_new] = p
                    m0[n_new] = m0[t]
                    m1[n_new] = m1[t]
                    both[n_new] = keep0[t] and keep1[t]
                    if both[n_new]:
                        decision[n_new] = 1 if m1[t] < m0[t] else 0  # bit 0 on ties
                    else:
                        decision[n_new] = 0 if keep0[t] else 1
                    n_new += 1
                n_act = n_new
                # clone the paths whose two continuations both survive
                for t in range(n_act):
                    p = act[t]
                    if both[t]:
                        n_id_free -= 1
                        q = id_free[n_id_free]
                        for s2 in range(n_log):
                            ap[q, s2] = ap[p, s2]
                            refs[s2, ap[p, s2]] += 1
                        ap[q, n_log] = 0
                        for i in range(off):
                            sums[q * n + i] = sums[p * n + i]
                        for i in range(j):
                            u_bits[q * big_k + i] = u_bits[p * big_k + i]
                        u = 1 - decision[t]
                        act[n_new] = q
                        decision[n_new] = u
                        pm[q] = m1[t] if u else m0[t]
                        n_new += 1
                    pm[p] = m1[t] if decision[t] else m0[t]
                n_act = n_new
                for t in range(n_act):
                    p = act[t]
                    u = decision[t]
                    for i in range(p * n + off, p * n + off + size):
                        sums[i] = u
                    u_bits[p * big_k + j] = u
        # the surviving paths by increasing metric (stable); the first whose CRC checks wins
        for t in range(n_act):
            pos_c = t
            while pos_c > 0 and pm[act[order[pos_c - 1]]] > pm[act[t]]:
                order[pos_c] = order[pos_c - 1]
                pos_c -= 1
            order[pos_c] = t
        best = act[order[0]]
        ok = False
        for r in range(n_act):
            p = act[order[r]]
            syndrome = 0
            for i in range(k):
                if u_bits[p * big_k + i]:
                    syndrome ^= crc_rows[i]
            received = 0
            for i in range(crc_len):
                received = (received << 1) | u_bits[p * big_k + k + i]
            if syndrome == received:
                best = p
                ok = True
                break
        for i in range(big_k):
            bits_out[b, i] = u_bits[best * big_k + i]
        ok_out[b] = ok


# ---------------------------------------------------------------------------------------------
# The code
# ---------------------------------------------------------------------------------------------

def _is_int(x: object) -> bool:
    try:
        return int(x) == x  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return False


@dataclass
class PolarDecodeResult:
    """Output of :meth:`PolarCode.decode` for B codewords.

    bits: [B, k] uint8, payload bits of the chosen path.
    ok:   [B] bool, True where the chosen path's CRC checks (an undetected error is possible,
          about 2^-L per failed word for an L-bit CRC, times the number of paths tried).
    """

    bits: torch.Tensor
    ok: torch.Tensor


class PolarCode:
    """CA-polar code: ``k`` payload bits + a CRC -> ``n`` coded bits (E in 38.212).

    k: payload bits A (>= 1); n: coded bits E (18 .. :data:`POLAR_MAX_CODED_BITS`);
    crc: one of :data:`POLAR_CRCS` (38.212 uses CRC6 for 12 <= A <= 19 and CRC11 above, uplink);
    list_size: paths of the list decoder (1 = SC decoding).

    Attributes: k, n, crc, crc_bits, k_polar (K = k + crc_bits), n_polar (mother code length N),
    list_size, frozen (bool [N]), mode ("repetition" | "puncturing" | "shortening" | "none"),
    rate (k / n).

    encode(bits [B, k] 0/1) -> codewords [B, n] float32 0/1.
    decode(llr [B, n] float32 logits log P(c=1)/P(c=0)) -> :class:`PolarDecodeResult`.
    """

    _frozen_rule = "38.212"  # "sionna" reproduces Sionna's puncturing pre-freezing (tests only)

    def __init__(self, k: int, n: int, crc: str = "CRC11", list_size: int = POLAR_LIST_SIZE) -> None:
        if crc not in POLAR_CRCS:
            raise ConfigError(f"unknown CRC {crc!r} for a polar code; choose one of {', '.join(POLAR_CRCS)}")
        if not _is_int(list_size) or not 1 <= list_size <= 64:
            raise ConfigError(f"the polar list size must be an integer in 1..64, got {list_size!r}")
        if not (_is_int(k) and _is_int(n)):
            raise ConfigError(f"k and n must be integers, got k={k!r}, n={n!r}")
        k, n = int(k), int(n)
        problem = _check(k, n, POLAR_CRCS[crc])
        if problem is not None:
            raise ConfigError(problem)
        self.k, self.n, self.crc, self.list_size = k, n, crc, int(list_size)
        self.crc_bits = POLAR_CRCS[crc]
        self.k_polar = k + self.crc_bits
        self.n_polar, self.frozen, self._rate_match, self.mode = _construct(self.k_polar, n, self._frozen_rule)
        self.info_pos = np.flatnonzero(~self.frozen)
        self._n_log = self.n_polar.bit_length() - 1
        self._crc_rows = _crc_rows(k, crc)
        self._tape = _build_tape(self.frozen)
        # rate recovery: mother-code bit of each received bit (summed where repeated)
        self._rm_index = torch.from_numpy(self._rate_match)
        self._known = torch.from_numpy(np.setdiff1d(np.arange(self.n_polar), self._rate_match)) \
            if self.mode == "shortening" else None

    def __repr__(self) -> str:
        return (f"PolarCode(k={self.k}, n={self.n}, crc={self.crc!r}, list_size={self.list_size}; "
                f"K={self.k_polar}, N={self.n_polar}, {self.mode})")

    @property
    def rate(self) -> float:
        return self.k / self.n

    def encode(self, bits: torch.Tensor) -> torch.Tensor:
        """[B, k] 0/1 payload -> [B, n] float32 0/1 transmitted bits (CRC, polar transform, rate matching)."""
        if bits.ndim != 2 or bits.shape[1] != self.k:
            raise ConfigError(f"expected payload bits [B, {self.k}], got {tuple(bits.shape)}")
        b = bits.detach().cpu().numpy()
        if b.size and not np.isin(b, (0, 1)).all():
            raise ConfigError("payload bits must be 0 or 1")
        u = np.zeros((b.shape[0], self.n_polar), dtype=np.uint8)
        u[:, self.info_pos] = crc_encode(b, self.crc)
        x = _polar_transform(u)
        return torch.from_numpy(x[:, self._rate_match].astype(np.float32))

    def rate_recover(self, llr: torch.Tensor) -> np.ndarray:
        """Channel logits [B, n] -> [B, N] float32 textbook LLRs (log P(0)/P(1)) of the mother code.

        Repeated bits add up, punctured ones get 0 (no information) and shortened ones, known to
        be 0, a large positive LLR.
        """
        if llr.ndim != 2 or llr.shape[1] != self.n:
            raise ConfigError(f"expected LLRs [B, {self.n}], got {tuple(llr.shape)}")
        x = (-llr.detach().to(torch.float32).cpu()).clamp_(-_LLR_CLIP, _LLR_CLIP)
        x = torch.nan_to_num_(x, nan=0.0)
        out = torch.zeros(x.shape[0], self.n_polar, dtype=torch.float32)
        out.index_add_(1, self._rm_index, x)
        if self._known is not None:
            out[:, self._known] = _LLR_KNOWN
        return out.numpy()

    def decode(self, llr: torch.Tensor) -> PolarDecodeResult:
        """CA-SCL decoding of B words from channel logits [B, n]; see :class:`PolarDecodeResult`."""
        bits, ok = self._decode_info_bits(llr)
        return PolarDecodeResult(torch.from_numpy(np.ascontiguousarray(bits[:, :self.k])), torch.from_numpy(ok))

    def _decode_info_bits(self, llr: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Channel logits [B, n] -> (the chosen paths' K = k + CRC bits [B, K] uint8, ok [B] bool)."""
        mother = np.ascontiguousarray(self.rate_recover(llr))
        bits = np.zeros((mother.shape[0], self.k_polar), dtype=np.uint8)
        ok = np.zeros(mother.shape[0], dtype=np.bool_)
        if mother.shape[0]:
            _decode_batch(mother, self._tape, self._n_log, self.list_size, self._crc_rows, self.crc_bits, bits, ok)
        return bits, ok


@functools.lru_cache(maxsize=64)
def get_polar_code(k: int, n: int, crc: str = "CRC11", list_size: int = POLAR_LIST_SIZE) -> PolarCode:
    """A cached :class:`PolarCode`."""
    return PolarCode(k, n, crc, list_size)


def polar_feasible(k: int, n: int, crc_bits: int) -> bool:
    """Whether ``PolarCode(k, n, crc)`` can be built for a CRC of ``crc_bits`` bits (6, 11, 16 or 24)."""
    if crc_bits not in POLAR_CRCS.values() or not (_is_int(k) and _is_int(n)):
        return False
    return _check(int(k), int(n), int(crc_bits)) is None
