"""5G NR LDPC codes: Sionna PHY encoder, Sionna's BP decoder, and a faster equivalent BP decoder.

:class:`LDPC5GCode` wraps one (k, n) code: ``encode`` is Sionna's ``LDPC5GEncoder``
(3GPP 38.212 lifting, shortening, puncturing and, for QAM, the output bit interleaver);
``decode`` runs belief propagation on the same pruned Tanner graph Sionna's
``LDPC5GDecoder`` builds, with either decoder:

- ``"sionna"``: Sionna's own flooding BP core (``boxplus-phi`` check nodes).
- ``"fast"`` (default): :func:`flooding_bp`, written here because Sionna's core spends
  most of its time gathering, masking and scattering padded message arrays (~0.1 Mbit/s
  on 2 cores). It computes the same flooding sum-product schedule with the same LLR
  clipping (+-20), but (1) keeps messages batch-last and ordered by check node, grouped
  by degree, so a check-node update is a reshape instead of a gather; (2) evaluates the
  exact boxplus in the tanh domain with prefix/suffix products (no divisions, no
  padding); and (3) stops each codeword as soon as its syndrome is zero, dropping it
  from the batch. Equivalence is tested (tests/channel/test_ldpc.py: identical
  decisions without early stopping, BLER within Monte-Carlo error with it) and measured
  by benchmarks/link_bench.py.

Both report a per-codeword success flag: the hard decision satisfies every parity check
of the pruned graph and the known filler bits are zero. An undetected error (a wrong
codeword that passes all checks) is possible but very rare for these code lengths; the
benchmark counts them.

LLR convention at this interface: Sionna's logits ``log P(c=1|y) / P(c=0|y)``, as the
demapper produces them. Internally the decoder uses textbook LLRs ``log P(0)/P(1)``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from ..errors import ConfigError
from .sionna_adapter import bp_decode, ldpc5g_encoder, ldpc5g_internals

__all__ = [
    "LDPC5GCode",
    "DecodeResult",
    "TannerGraph",
    "flooding_bp",
    "get_code",
    "MIN_INFO_BITS",
    "MAX_INFO_BITS",
    "DECODERS",
    "NUM_ITER",
    "MIN_RATE",
    "MAX_RATE",
    "OSD_ORDER",
    "OSD_MAX_CODED_BITS",
    "max_coded_bits",
    "rate_matchable",
]

MIN_INFO_BITS = 12  # smallest k Sionna's 5G encoder supports
MAX_INFO_BITS = 8448  # largest k (base graph 1)
DECODERS = ("fast", "sionna")
LLR_MAX = 20.0  # Sionna's default internal clipping
# BP iterations of the link and of the BLER model it is judged by. Measured at five shapes
# (49..392 channel uses, QPSK..256-QAM, 3,000 codewords each, 0.5-1 dB below the 20-iteration
# thresholds): 50 iterations fail 2-15x fewer codewords than 20 (about 0.5 dB), 100 only
# 1.1-1.9x fewer than 50; early stopping keeps the mean near 6-16 iterations either way.
NUM_ITER = 50
# Ordered-statistics decoding after failed BP (tosc.channel.osd): the order, and the longest
# codeword it runs on. Order 2 costs about K^2 (n - K) / 2 operations per failed word (2 ms at
# K = 140, n = 196); on blocks of 400 coded bits it fixes most BP failures of high-rate codes,
# and little at low rates, where order 2 is far from maximum likelihood (98 channel uses, QPSK,
# 0 dB, K = 52: 44 failures of 6,000 with BP, 19 with BP + OSD; 196 uses, K = 124: 27 and 25).
OSD_ORDER = 2
OSD_MAX_CODED_BITS = 400
MIN_RATE = 0.2  # Sionna's encoder refuses lower rates; below it see max_coded_bits
MAX_RATE = 948 / 1024  # 38.212's highest code rate
_BG2_LIFTING = sorted({a * 2 ** j for a in (2, 3, 5, 7, 9, 11, 13, 15) for j in range(8) if a * 2 ** j <= 384})


def max_coded_bits(k: int) -> int:
    """Coded bits a code of ``k`` information bits sends without repeating any (38.212 5.4.2.1).

    Code rates below 1/5 use base graph 2, whose circular buffer holds 50 Z bits after the 2Z
    punctured systematic ones, less the 10 Z - k filler bits: 40 Z + k, with Z the lifting size
    38.212 5.3.2 picks for k. (Beyond that 38.212 repeats the buffer; tosc does not.)
    Returns 0 above base graph 2's largest block (3840 bits).
    """
    k = int(k)
    if k > 3840:
        return 0
    kb = 10 if k > 640 else 9 if k > 560 else 8 if k > 192 else 6
    z = next(z for z in _BG2_LIFTING if kb * z >= k)
    return 40 * z + k


def rate_matchable(k: int, n: int) -> bool:
    """Whether ``k`` information bits rate-match to ``n`` coded bits with one 5G LDPC codeword:
    12 <= k <= 8448, k/n <= 948/1024, and k/n >= 1/5 or, below that, no repetition
    (n <= :func:`max_coded_bits`)."""
    k, n = int(k), int(n)
    if not MIN_INFO_BITS <= k <= MAX_INFO_BITS or n <= k or k / n > MAX_RATE + 1e-12:
        return False
    return k / n >= MIN_RATE or n <= max_coded_bits(k)
_TANH_MAX = float(np.nextafter(np.float32(1.0), np.float32(0.0)))  # largest float32 below 1


@dataclass
class DecodeResult:
    """Output of :meth:`LDPC5GCode.decode` for B codewords.

    bits:       [B, k] uint8, decoded information bits.
    ok:         [B] bool, True where the decoded word satisfies all parity checks (always, for a
                word OSD decided: it is a codeword by construction, so only a CRC can catch it).
    iterations: [B] int32, BP iterations run for each codeword.
    by_osd:     [B] bool, True where BP failed and OSD decided the word (all False without OSD).
    """

    bits: torch.Tensor
    ok: torch.Tensor
    iterations: torch.Tensor
    by_osd: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.by_osd is None:
            self.by_osd = torch.zeros(self.ok.shape, dtype=torch.bool)


class TannerGraph:
    """A parity-check matrix laid out for :func:`flooding_bp`.

    Edges are ordered by (check-node degree, check node, variable node), so the edges of
    all check nodes of degree d form one contiguous block that reshapes to [n_cn_d, d].
    """

    def __init__(self, pcm: sp.spmatrix | np.ndarray) -> None:
        pcm = sp.csr_matrix(pcm)
        cn, vn = pcm.nonzero()
        degree = np.asarray(pcm.sum(axis=1)).ravel().astype(np.int64)
        order = np.lexsort((vn, cn, degree[cn]))
        self.n_cn, self.n_vn = (int(s) for s in pcm.shape)
        self.n_edges = int(len(order))
        self.edge_cn = cn[order].astype(np.int64)
        self.edge_vn_np = vn[order].astype(np.int64)
        self.edge_vn = torch.from_numpy(self.edge_vn_np)
        self.groups: list[tuple[int, int, int]] = []  # (first edge, number of check nodes, degree)
        start = 0
        for d in sorted(set(int(x) for x in degree[degree > 0])):
            count = int((degree == d).sum())
            self.groups.append((start, count, d))
            start += count * d
        if start != self.n_edges:
            raise AssertionError("edge grouping does not cover the graph")

    def syndrome_ok(self, hard: torch.Tensor) -> torch.Tensor:
        """hard: [n_vn, B] bool/uint8 bits -> [B] bool, True where every check is satisfied."""
        bits = hard.to(torch.uint8).index_select(0, self.edge_vn)
        ok = torch.ones(hard.shape[1], dtype=torch.bool)
        for start, count, d in self.groups:
            parity = bits[start:start + count * d].view(count, d, -1).sum(dim=1, dtype=torch.uint8) & 1
            ok &= ~parity.bool().any(dim=0)
        return ok


def _exclusive_products(t: torch.Tensor, out: torch.Tensor, groups: list[tuple[int, int, int]]) -> None:
    """out[e] = product of t over the other edges of e's check node (prefix x suffix products)."""
    batch = t.shape[1]
    for start, count, d in groups:
        stop = start + count * d
        tv = t[start:stop].view(count, d, batch)
        ov = out[start:stop].view(count, d, batch)
        if d == 1:
            ov.fill_(1.0)
            continue
        ov[:, 1].copy_(tv[:, 0])
        for i in range(2, d):
            torch.mul(ov[:, i - 1], tv[:, i - 1], out=ov[:, i])
        suffix = tv[:, d - 1].clone()
        for i in range(d - 2, 0, -1):
            ov[:, i].mul_(suffix)
            suffix.mul_(tv[:, i])
        ov[:, 0].copy_(suffix)


def flooding_bp(graph: TannerGraph, llr: torch.Tensor, num_iter: int = 20, llr_max: float = LLR_MAX,
                early_stop: bool = True, n_out: int | None = None,
                known_zero: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flooding sum-product decoding, batch-last.

    llr:        [n_vn, B] float32 textbook LLRs ``log P(0)/P(1)`` (clipped to +-llr_max here).
    num_iter:   maximum number of iterations (Sionna default 20).
    early_stop: stop each codeword at the first iteration whose hard decision has a zero syndrome.
    n_out:      number of leading variable nodes to return (default all).
    known_zero: indices of variable nodes that must decode to 0 for success (5G filler bits).

    Returns hard bits [n_out, B] bool (True = 1), ok [B] bool, iterations [B] int32.

    One iteration is Sionna's ``LDPCBPDecoder`` iteration (flooding schedule, exact boxplus,
    ``vn_update_sum``): c2v_e = 2 atanh(prod_{e' != e} tanh(v2c_e' / 2)),
    total_v = llr_v + sum_{e at v} c2v_e, v2c_e = clip(total_v - c2v_e, +-llr_max), bit = total <= 0.
    Implementation notes (none changes a decision):
    - messages are kept in half units (v2c/2, total/2), which saves the /2 before tanh;
    - the product over the other edges uses prefix/suffix products; it is limited to the
      largest float32 below 1, so |c2v| <= 16.6, where Sionna's phi form also saturates,
      and Sionna's +-llr_max clip of c2v never acts;
    - the +-llr_max clip of v2c is skipped: v2c only feeds tanh(v2c/2), which is exactly
      +-1.0 in float32 for |v2c| >= 18.2 anyway.
    """
    if llr.ndim != 2 or llr.shape[0] != graph.n_vn:
        raise ConfigError(f"llr must be [{graph.n_vn}, B], got {tuple(llr.shape)}")
    n_out = graph.n_vn if n_out is None else n_out
    batch = llr.shape[1]
    half_llr = llr.to(torch.float32).clamp(-llr_max, llr_max).mul_(0.5)
    out_bits = torch.zeros(n_out, batch, dtype=torch.bool)
    ok = torch.zeros(batch, dtype=torch.bool)
    iterations = torch.full((batch,), num_iter, dtype=torch.int32)
    active = torch.arange(batch)
    edge_vn = graph.edge_vn
    known = known_zero if known_zero is not None and known_zero.numel() > 0 else None

    def checks_pass(at_edges: torch.Tensor, total: torch.Tensor) -> torch.Tensor:
        """[b] bool: every check has an even number of negative totals among its variable
        nodes (the product of the totals is > 0) and the known-zero bits are positive.
        A total of exactly 0 counts as failure, so this never passes a word that the
        bit-level syndrome (bit = total <= 0) would reject."""
        good = torch.ones(at_edges.shape[1], dtype=torch.bool)
        for start, count, d in graph.groups:
            good &= (at_edges[start:start + count * d].view(count, d, -1).prod(dim=1) > 0).all(dim=0)
        if known is not None:
            good &= (total.index_select(0, known) > 0).all(dim=0)
        return good

    v2c = half_llr.index_select(0, edge_vn)  # first messages: the channel LLRs (half units)
    total = half_llr.clone()
    c2v = torch.empty_like(v2c)
    ex = torch.empty_like(v2c)
    one = torch.ones((), dtype=torch.float32)

    def retire(done: torch.Tensor, it: int) -> None:
        """Record converged codewords and drop them from the working set."""
        nonlocal active, half_llr, v2c, total, c2v, ex
        idx = active[done]
        out_bits[:, idx] = total[:n_out, done] <= 0
        ok[idx] = True
        iterations[idx] = it
        keep = torch.nonzero(~done).squeeze(1)
        active = active[keep]
        half_llr, total = half_llr.index_select(1, keep), total.index_select(1, keep)
        v2c = v2c.index_select(1, keep)
        c2v, ex = torch.empty_like(v2c), torch.empty_like(v2c)

    if early_stop and num_iter > 0:
        done = checks_pass(v2c, total)
        if done.any():
            retire(done, 0)
    for it in range(1, num_iter + 1):
        if active.numel() == 0:
            break
        t = v2c.tanh_()  # tanh(v2c / 2); v2c is not needed again this iteration
        _exclusive_products(t, ex, graph.groups)
        ex.clamp_(-_TANH_MAX, _TANH_MAX)
        torch.add(ex, 1.0, out=c2v)
        c2v.div_(torch.sub(one, ex, out=ex)).log_()  # c2v = 2 atanh(p) = log((1 + p) / (1 - p))
        total.copy_(half_llr).index_add_(0, edge_vn, c2v, alpha=0.5)
        torch.index_select(total, 0, edge_vn, out=v2c)  # total at each edge's variable node
        if early_stop and it < num_iter:
            done = checks_pass(v2c, total)
        else:
            done = None
        v2c.sub_(c2v, alpha=0.5)
        if done is not None and done.any():
            retire(done, it)
    if active.numel():
        # Sionna clips the total before its hard decision; clipping does not change signs
        hard = total <= 0
        out_bits[:, active] = hard[:n_out]
        ok[active] = graph.syndrome_ok(hard)
        if known is not None:
            ok[active] &= ~hard.index_select(0, known).any(dim=0)
    return out_bits, ok, iterations


class LDPC5GCode:
    """One 5G NR LDPC code: ``k`` information bits -> ``n`` coded bits.

    k: information bits per codeword (12..8448), n: coded bits (rate k/n in [1/5, 0.95], or
        below 1/5 down to the whole circular buffer, :func:`max_coded_bits`).
    bits_per_symbol: QAM order the codeword is mapped to (enables the 38.212 output bit
        interleaver for bits_per_symbol > 1; n must then be a multiple of it).
    num_iter: maximum BP iterations (:data:`NUM_ITER`; Sionna's default is 20).

    encode(bits [B, k] 0/1) -> codewords [B, n] float32 (Sionna's LDPC5GEncoder).
    decode(llr [B, n] logits log P(1)/P(0), decoder='fast'|'sionna', early_stop=True) -> DecodeResult.
    """

    def __init__(self, k: int, n: int, bits_per_symbol: int | None = None, num_iter: int = NUM_ITER) -> None:
        from sionna.phy.fec.ldpc import LDPC5GDecoder

        if not MIN_INFO_BITS <= k <= MAX_INFO_BITS:
            raise ConfigError(f"5G LDPC needs {MIN_INFO_BITS}..{MAX_INFO_BITS} information bits per codeword, got {k}")
        if n <= k or k / n > 0.95 or not (k / n >= MIN_RATE or n <= max_coded_bits(k)):
            raise ConfigError(f"5G LDPC code rate k/n must lie in [1/5, 0.95] (lower only up to the "
                              f"{max_coded_bits(k)}-bit circular buffer without repetition), got {k}/{n}")
        if bits_per_symbol is not None and bits_per_symbol > 1 and n % bits_per_symbol:
            raise ConfigError(f"codeword length {n} is not a multiple of {bits_per_symbol} bits per symbol")
        interleave = bits_per_symbol if bits_per_symbol and bits_per_symbol > 1 else None
        self.k, self.n, self.num_iter = int(k), int(n), int(num_iter)
        self.bits_per_symbol = bits_per_symbol or 1
        self.encoder = ldpc5g_encoder(self.k, self.n, interleave)
        # Sionna's decoder, exactly as a Sionna user would build it (default settings); it
        # also defines the pruned graph and the rate recovery both decoders use.
        self.sionna_decoder = LDPC5GDecoder(self.encoder, num_iter=self.num_iter, hard_out=True,
                                            return_infobits=True, device="cpu")
        inside = ldpc5g_internals(self.encoder, self.sionna_decoder, interleaved=bool(interleave))
        self.graph = TannerGraph(inside.pcm)
        self._n_pruned = inside.n_pruned
        self._buf_len = inside.buffer_len
        self._k_filler = inside.k_filler
        # filler bits sit right after the k information bits
        self._filler = torch.arange(self.k, self.k + inside.k_filler, dtype=torch.int64)
        self._z = inside.z
        self._out_int_inv = inside.out_int_inv

    def __repr__(self) -> str:
        return f"LDPC5GCode(k={self.k}, n={self.n}, bits_per_symbol={self.bits_per_symbol}, num_iter={self.num_iter})"

    @property
    def rate(self) -> float:
        return self.k / self.n

    def encode(self, bits: torch.Tensor) -> torch.Tensor:
        if bits.ndim != 2 or bits.shape[1] != self.k:
            raise ConfigError(f"expected information bits [B, {self.k}], got {tuple(bits.shape)}")
        return self.encoder(bits.to(torch.float32))

    def rate_recover(self, llr: torch.Tensor) -> torch.Tensor:
        """Sionna-convention channel logits [B, n] -> full-graph logits [B, n_pruned].

        Mirrors ``LDPC5GDecoder.call``: undo the output interleaver, put zeros (no
        information) at the 2Z punctured positions and the rate-matching tail, and the
        clipping value at the known-zero filler bits.
        """
        if llr.ndim != 2 or llr.shape[1] != self.n:
            raise ConfigError(f"expected LLRs [B, {self.n}], got {tuple(llr.shape)}")
        llr = llr.to(torch.float32)
        batch = llr.shape[0]
        if self._out_int_inv is not None:
            llr = llr[:, self._out_int_inv]
        buf = torch.nn.functional.pad(llr, (0, self._buf_len - self.n))
        n_sys = self.k - 2 * self._z
        return torch.cat([
            torch.zeros(batch, 2 * self._z),
            buf[:, :n_sys],
            torch.full((batch, self._k_filler), -LLR_MAX),
            buf[:, n_sys:],
        ], dim=1)

    @functools.cached_property
    def generator(self) -> np.ndarray:
        """The rate-matched code's generator matrix [k, n] uint8: row i is the transmitted codeword
        (output interleaver included) of the i-th unit information word."""
        return self.encode(torch.eye(self.k)).numpy().astype(np.uint8)

    def decode(self, llr: torch.Tensor, decoder: str = "fast", early_stop: bool = True,
               batch_size: int | None = None, workers: int = 1, osd_order: int = 0) -> DecodeResult:
        """Decode B codewords from channel logits [B, n]; see :class:`DecodeResult`.

        osd_order: 1 or 2 runs ordered-statistics decoding of that order (:mod:`tosc.channel.osd`,
        on the channel LLRs) on every codeword whose BP decoding failed; 0 (default) does not.

        batch_size: codewords decoded together; by default about 2**20 edge messages (256
        codewords of 1024 bits), which keeps the fast decoder's messages in cache while
        amortising Python overhead.
        workers: decode that many batches at once in Python threads (torch releases the GIL
        inside its kernels); use with ``torch.set_num_threads(1)``, since small batches gain
        little from torch's own threads and suffer when cores are shared.
        """
        if decoder not in DECODERS:
            raise ConfigError(f"decoder must be one of {', '.join(DECODERS)}, got {decoder!r}")
        if osd_order not in (0, 1, 2):
            raise ConfigError(f"osd_order must be 0, 1 or 2, got {osd_order!r}")
        if batch_size is None:
            batch_size = min(4096, max(128, (1 << 20) // self.graph.n_edges))
        if workers < 1 or batch_size < 1:
            raise ConfigError("workers and batch_size must be >= 1")
        full = self.rate_recover(llr)
        chunks = [full[start:start + batch_size] for start in range(0, full.shape[0], batch_size)]
        if not chunks:
            return DecodeResult(torch.zeros(0, self.k, dtype=torch.uint8), torch.zeros(0, dtype=torch.bool),
                                torch.zeros(0, dtype=torch.int32))

        def run(chunk: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            if decoder == "fast":
                hard, ok, it = flooding_bp(self.graph, (-chunk).T.contiguous(), self.num_iter,
                                           early_stop=early_stop, n_out=self.k, known_zero=self._filler)
                return hard.T.to(torch.uint8), ok, it
            # Sionna's BP core on the same graph (logits in, hard bits out)
            x_hat = bp_decode(self.sionna_decoder, chunk)  # [b, n_pruned], 1.0 = bit 1
            hard_t = x_hat.T.bool()
            ok = self.graph.syndrome_ok(hard_t) & ~hard_t.index_select(0, self._filler).any(dim=0)
            it = torch.full((chunk.shape[0],), self.num_iter, dtype=torch.int32)
            return x_hat[:, :self.k].to(torch.uint8), ok, it

        if workers > 1 and len(chunks) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(min(workers, len(chunks))) as pool:
                parts = list(pool.map(run, chunks))
        else:
            parts = [run(c) for c in chunks]
        result = DecodeResult(torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]),
                              torch.cat([p[2] for p in parts]))
        if osd_order:
            failed = torch.nonzero(~result.ok).flatten()
            if len(failed):
                from .osd import osd_decode

                bits, _, _ = osd_decode(self.generator, llr.index_select(0, failed).numpy(), osd_order)
                result.bits[failed] = torch.from_numpy(bits)
                result.ok[failed] = True
                result.by_osd[failed] = True
        return result


@functools.lru_cache(maxsize=64)
def get_code(k: int, n: int, bits_per_symbol: int = 1, num_iter: int = NUM_ITER) -> LDPC5GCode:
    """A cached :class:`LDPC5GCode` (building one takes tens of milliseconds)."""
    return LDPC5GCode(k, n, bits_per_symbol, num_iter)
