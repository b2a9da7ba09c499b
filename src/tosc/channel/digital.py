"""The digital link: payload -> CRC -> 5G LDPC (or, on short blocks, CA-polar) rate-matched to the
channel uses -> QAM -> channel -> APP demapping -> BP (or SCL) -> CRC check -> bits.

Per image, with ``k`` complex channel uses:

1. Scheme (:func:`choose_scheme`): for each modulation QPSK .. 256-QAM, the largest
   transport block the BLER model (:mod:`tosc.channel.bler`, simulated and shipped) says k
   symbols carry at the SNR with block error rate <= 1e-3; the modulation with the most
   payload bits wins. The code rate is continuous: any number of information bits.
2. Transport block (:func:`plan_transport`, TS 38.212 5.1-5.4): the A payload bits get a
   CRC (:func:`transport_crc`, length chosen by measurement, counted in the rate); a block
   longer than the base graph allows is segmented into C code blocks, each with CRC-24B;
   code block r is rate-matched to E_r = S_r log2(M) coded bits, S_r symbols, with
   sum S_r = k exactly (the first blocks get floor(k / C) symbols, the rest one more).
3. Each code block: Sionna's ``LDPC5GEncoder`` (shortening, puncturing, 38.212 output
   interleaver) -> 38.211 scrambling (:func:`scrambling_sequence`, so that the symbols do not
   depend on the payload) -> Gray QAM -> y = h x + w -> zero-forcing with perfect CSI -> exact
   APP demapper with the per-symbol noise N0/|h|^2 -> descrambling -> BP
   (:mod:`tosc.channel.ldpc`, :data:`~tosc.channel.ldpc.NUM_ITER` iterations), and on short
   blocks (at most :data:`~tosc.channel.ldpc.OSD_MAX_CODED_BITS` coded bits) where the BLER
   model says it carries more payload, order-2 ordered-statistics decoding of the words BP
   failed on (:mod:`tosc.channel.osd`; the plan says so, and its CRC is then CRC-11).
   Short blocks (at most :data:`~tosc.channel.polar.POLAR_MAX_CODED_BITS` coded bits) may
   instead be one 5G CA-polar codeword decoded by CRC-aided SCL (:mod:`tosc.channel.polar`),
   where the model's polar curves say it carries more payload; its CRC
   (:data:`~tosc.channel.bler.POLAR_CRC`) is the transport CRC and also picks the list's path.
4. ``ok`` means every CRC passed (the code block CRCs and the transport block CRC). A
   failed image is a failed transmission (the caller shows its fallback).

Every image's fade and noise come from its own generator, a function of (seed, image index)
(:func:`tosc.channel.fading.image_generator`): the same image sees the same channel whichever
other images are sent with it.

A payload shorter than A is zero-padded to A (the receiver is told the payload length L, as
the source's container would tell it) and the whole block is sent: the image uses all k
channel uses. An empty payload sends nothing.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Protocol, Sequence

import numpy as np
import torch

from ..errors import ConfigError, DoesNotFitError
from .bler import MIN_INFO_BITS, POLAR_CRC, POLAR_LIST_SIZE, TARGET_BLER, BlerModel, check_code, load_model
from .conventions import check_csi, check_snr_db
from .fading import FadingChannel, base_seed, complex_normal, image_generator
from .ldpc import DECODERS, MAX_INFO_BITS, MIN_RATE, NUM_ITER, OSD_MAX_CODED_BITS, OSD_ORDER, get_code, rate_matchable
from .modulation import Modulation, get_modem, get_modulation
from .polar import POLAR_MAX_CODED_BITS, get_polar_code, polar_feasible
from .residual import flip_bits
from .sionna_adapter import crc

__all__ = [
    "Link",
    "Scheme",
    "TransportPlan",
    "plan_transport",
    "choose_scheme",
    "transport_crc",
    "ReceivedPayload",
    "LinkOutput",
    "DigitalLink",
    "as_bit_arrays",
    "bits_from_bytes",
    "bytes_from_bits",
    "CODE_BLOCK_CRC",
    "measure_operating_point",
    "scrambling_sequence",
]

CODE_BLOCK_CRC = ("CRC24B", 24)  # 38.212 5.2.2: per code block when a transport block is segmented
# Transport-block CRC (38.212 5.1 polynomials). The lengths are chosen by measurement: the BLER
# model counts how often a wrong word passes the LDPC parity checks (BlerModel.undetected_fraction;
# `scripts/link_table.py` prints it). With 50 BP iterations, at points below BLER 1e-2, that was
# 14% of the failed blocks of 24 channel uses, 8.4% at 49, 7.0% at 98, 4.9% at 196 and 3.0% at
# 392 (20 iterations: 2.2% at 49, 1.25% at 98: more iterations also converge to wrong words more
# often). Refined thresholds pass at half the target BLER, so at an operating point a block fails
# with probability <= 5e-4 and a CRC of L bits leaves 5e-4 x share x 2^-L undetected errors per
# block: CRC-6 leaves 6.6e-7 at 49 channel uses, but 1.1e-6 at 24, so blocks over fewer than 49
# channel uses get CRC-11; long transport blocks get 38.212's CRC-24A. See the README ("CRC").
# OSD (tosc.channel.osd) always returns a codeword, so every word it gets wrong passes the parity
# checks: at 5e-4 failed blocks CRC-6 would leave 7.8e-6 undetected errors, CRC-11 2.4e-7. Blocks
# the receiver decodes with OSD therefore get CRC-11; the scheme choice weighs those 5 bits.
SHORT_BLOCK_USES = 49
LONG_BLOCK_BITS = 3824
# 38.211 5.2.1 scrambling of the coded bits (c_init = n_RNTI 2^15 + n_ID with n_RNTI = n_ID = 1):
# without it a zero-padded payload sends all-zero code blocks, i.e. the same QAM point again and
# again, whose block error rate the BLER model (simulated with random bits) does not describe;
# a 64x64 scene's mostly padded transport block failed that way at 20 dB
SCRAMBLING_C_INIT = (1 << 15) + 1


@functools.lru_cache(maxsize=8)
def _gold_sequence(length: int, c_init: int) -> np.ndarray:
    nc = 1600
    total = length + nc
    x1 = np.zeros(total + 31, dtype=np.uint8)
    x2 = np.zeros(total + 31, dtype=np.uint8)
    x1[0] = 1
    x2[:31] = [(c_init >> i) & 1 for i in range(31)]
    for n in range(0, total, 28):  # x(n+31) depends on x(n..n+3): 28 new values at a time
        m = min(28, total - n)
        x1[n + 31:n + 31 + m] = x1[n + 3:n + 3 + m] ^ x1[n:n + m]
        x2[n + 31:n + 31 + m] = x2[n + 3:n + 3 + m] ^ x2[n + 2:n + 2 + m] ^ x2[n + 1:n + 1 + m] ^ x2[n:n + m]
    return x1[nc:nc + length] ^ x2[nc:nc + length]


def scrambling_sequence(length: int, c_init: int = SCRAMBLING_C_INIT) -> np.ndarray:
    """The first ``length`` bits of the 38.211 5.2.1 pseudo-random sequence for ``c_init``: [length] uint8."""
    return _gold_sequence(1 << max(10, int(length - 1).bit_length()), int(c_init))[:length]


def transport_crc(payload_bits: int, n_channel_uses: int, osd_order: int = 0, code: str = "ldpc") -> tuple[str, int]:
    """(polynomial, length) of the transport-block CRC for ``payload_bits`` over ``n_channel_uses``
    (``osd_order``: the receiver runs OSD after BP; ``code="polar"``: the CA-polar code's own CRC,
    :data:`~tosc.channel.bler.POLAR_CRC`, which also selects the SCL path)."""
    if check_code(code) == "polar":
        return POLAR_CRC
    if payload_bits > LONG_BLOCK_BITS:
        return "CRC24A", 24
    if n_channel_uses < SHORT_BLOCK_USES or osd_order:
        return "CRC11", 11
    return "CRC6", 6


def bits_from_bytes(data: bytes) -> np.ndarray:
    """bytes -> [8 * len(data)] uint8 bits, most significant bit first."""
    return np.unpackbits(np.frombuffer(bytes(data), dtype=np.uint8))


def bytes_from_bits(bits: np.ndarray) -> bytes:
    """[L] 0/1 bits (L a multiple of 8), most significant bit first -> bytes."""
    bits = np.asarray(bits, dtype=np.uint8)
    if bits.ndim != 1 or bits.size % 8:
        raise ConfigError(f"need a 1-D bit array whose length is a multiple of 8, got shape {bits.shape}")
    return np.packbits(bits).tobytes()


def as_bit_arrays(payloads: Sequence[np.ndarray | bytes]) -> list[np.ndarray]:
    """Payloads (1-D 0/1 arrays, tensors or bytes) -> list of [L_i] uint8 arrays; ConfigError otherwise."""
    out = []
    for i, p in enumerate(payloads):
        if isinstance(p, (bytes, bytearray, memoryview)):
            out.append(bits_from_bytes(bytes(p)))
            continue
        arr = np.asarray(p.cpu().numpy() if isinstance(p, torch.Tensor) else p)
        if arr.ndim != 1:
            raise ConfigError(f"payload {i} must be a 1-D bit array, got shape {arr.shape}")
        if arr.size and (arr.dtype.kind not in "biuf" or arr.min() < 0 or arr.max() > 1
                         or (arr.dtype.kind == "f" and not np.array_equal(arr, np.round(arr)))):
            raise ConfigError(f"payload {i} must hold only 0 and 1")
        out.append(arr.astype(np.uint8))
    return out


_as_bit_arrays = as_bit_arrays  # older private name


# ------------------------------------------------------------------------------- planning


def _base_graph_limit(payload_bits: int, rate: float) -> int:
    """Largest code block (K_cb) of the base graph 38.212 7.2.2 picks for a transport block.

    One departure: between code rates 1/4 and 1/3 a long block would get base graph 1, whose
    mother code has rate 1/3, so 38.212 repeats bits; Sionna's encoder refuses that. Such blocks
    are segmented into base graph 2 blocks of at most 3824 bits instead (the size up to which
    Sionna also picks base graph 2 at these rates).
    """
    if payload_bits <= 292 or (payload_bits <= 3824 and rate <= 0.67) or rate <= 0.25:
        return 3840  # base graph 2
    if rate < 1 / 3:
        return 3824  # base graph 2 in place of base graph 1 with repetition
    return 8448  # base graph 1


@dataclass(frozen=True)
class TransportPlan:
    """One image's transport block over ``n_channel_uses`` symbols of ``modulation``.

    payload_bits (A): the largest payload. tb_crc: (polynomial, length) of the transport CRC.
    symbols[r], info_bits[r]: per code block r, its channel uses S_r and LDPC information bits
    K_r (code-block CRC included); coded bits E_r = S_r log2(M). sum(symbols) = n_channel_uses.
    osd_order: 2 where the receiver runs order-2 OSD on the words BP failed on, else 0.
    code: ``"ldpc"`` (5G LDPC, BP) or ``"polar"`` (one CA-polar block, K = A + its CRC, SCL with
    :data:`~tosc.channel.bler.POLAR_LIST_SIZE` paths; :mod:`tosc.channel.polar`).
    """

    n_channel_uses: int
    modulation: Modulation
    payload_bits: int
    tb_crc: tuple[str, int]
    cb_crc_bits: int
    symbols: tuple[int, ...]
    info_bits: tuple[int, ...]
    osd_order: int = 0
    code: str = "ldpc"

    @property
    def n_codewords(self) -> int:
        return len(self.symbols)

    @property
    def capacity_bits(self) -> int:
        """Largest payload that fits (CRC bits excluded)."""
        return self.payload_bits

    @property
    def coded_bits(self) -> tuple[int, ...]:
        return tuple(s * self.modulation.bits_per_symbol for s in self.symbols)

    @property
    def transport_bits(self) -> int:
        """B = A + transport CRC bits."""
        return self.payload_bits + self.tb_crc[1]

    @property
    def code_rate(self) -> float:
        """Information bits over coded bits (CRC bits count as information here)."""
        return sum(self.info_bits) / sum(self.coded_bits)

    @property
    def crc_bits(self) -> int:
        """All CRC bits of the block (transport and code-block CRCs)."""
        return self.tb_crc[1] + (self.cb_crc_bits * self.n_codewords)

    def describe(self) -> str:
        return (f"{self.modulation.name}, rate {self.code_rate:.3f}, {self.payload_bits} payload bits + "
                f"{self.crc_bits} CRC bits in {self.n_codewords} codeword(s) over {self.n_channel_uses} symbols"
                + (f", BP + OSD-{self.osd_order}" if self.osd_order else "")
                + (f", CA-polar, SCL-{POLAR_LIST_SIZE}" if self.code == "polar" else ""))


def _check_uses(n_channel_uses: int) -> int:
    if isinstance(n_channel_uses, bool) or not isinstance(n_channel_uses, (int, np.integer)) or n_channel_uses < 1:
        raise ConfigError(f"n_channel_uses must be a positive integer, got {n_channel_uses!r}")
    return int(n_channel_uses)


def plan_transport(n_channel_uses: int, modulation: str | int | Modulation, payload_bits: int,
                   osd_order: int = 0, code: str = "ldpc") -> TransportPlan:
    """Segment and rate-match a transport block of ``payload_bits`` (A) to exactly ``n_channel_uses``.

    Raises :class:`DoesNotFitError` when a code block would fall outside 5G LDPC's range
    (12..8448 information bits, code rate up to 948/1024 and down to 1/5, or below 1/5 within
    base graph 2's circular buffer: :func:`tosc.channel.ldpc.rate_matchable`), or when
    ``osd_order`` asks for OSD on a block longer than :data:`~tosc.channel.ldpc.OSD_MAX_CODED_BITS`.
    ``code="polar"``: one CA-polar block over all the channel uses; :class:`DoesNotFitError`
    when it cannot be built (:func:`tosc.channel.polar.polar_feasible`: at most
    :data:`~tosc.channel.polar.POLAR_MAX_CODED_BITS` coded bits, K = A + CRC at most E).
    """
    k = _check_uses(n_channel_uses)
    mod = get_modulation(modulation)
    m = mod.bits_per_symbol
    if isinstance(payload_bits, bool) or int(payload_bits) != payload_bits or payload_bits < 1:
        raise ConfigError(f"payload_bits must be a positive integer, got {payload_bits!r}")
    a = int(payload_bits)
    if osd_order not in (0, OSD_ORDER):
        raise ConfigError(f"osd_order must be 0 or {OSD_ORDER}, got {osd_order!r}")
    if osd_order and k * m > OSD_MAX_CODED_BITS:
        raise DoesNotFitError(f"OSD runs on blocks of at most {OSD_MAX_CODED_BITS} coded bits, not {k * m}")
    if check_code(code) == "polar":
        if osd_order:
            raise ConfigError("OSD belongs to the LDPC code; the polar code is decoded by SCL")
        if not polar_feasible(a, k * m, POLAR_CRC[1]):
            raise DoesNotFitError(f"{a} payload bits (+{POLAR_CRC[1]} CRC) do not fit one CA-polar block over {k} "
                                  f"channel uses of {mod.name} (at most {POLAR_MAX_CODED_BITS} coded bits, K <= E)")
        return TransportPlan(k, mod, a, POLAR_CRC, 0, (k,), (a + POLAR_CRC[1],), 0, "polar")
    poly, length = transport_crc(a, k, osd_order)
    b = a + length
    k_cb = _base_graph_limit(a, b / (k * m))
    if b <= k_cb:
        count, cb_crc = 1, 0
    else:
        cb_crc = CODE_BLOCK_CRC[1]
        count = math.ceil(b / (k_cb - cb_crc))
    total = b + count * cb_crc
    info = [total // count + (1 if r < total % count else 0) for r in range(count)]
    # 38.212 5.4.2.1: the first C - (G' mod C) blocks get floor(G'/C) symbols, the rest one more
    symbols = [k // count + (1 if r >= count - k % count else 0) for r in range(count)]
    # the larger code blocks go with the larger symbol counts
    info.sort()
    for s, kr in zip(symbols, info):
        if s < 1 or not rate_matchable(kr, s * m):
            raise DoesNotFitError(f"{a} payload bits (+{length} CRC) do not fit {k} channel uses of {mod.name}: "
                                  f"a code block of {kr} bits over {s * m} coded bits is outside 5G LDPC's range")
    return TransportPlan(k, mod, a, (poly, length), cb_crc, tuple(symbols), tuple(info), int(osd_order))


@dataclass(frozen=True)
class Scheme:
    """What the link sends at one operating point: the plan, and whether the BLER model says
    it meets the target (False: no scheme does, the most robust one is sent anyway)."""

    plan: TransportPlan
    meets_target: bool
    snr_db: float | None = None  # the SNR the model was read at (block fading: the outage-adjusted SNR)

    @property
    def name(self) -> str:
        p = self.plan
        return (f"{p.modulation.name}-K{p.transport_bits}-n{sum(p.coded_bits)}" + (f"-osd{p.osd_order}" if p.osd_order else "")
                + ("-polar" if p.code == "polar" else ""))

    @property
    def modulation(self) -> Modulation:
        return self.plan.modulation


def _largest_payload(model: BlerModel, k: int, m: int, snr_db: float, osd_order: int = 0, code: str = "ldpc") -> int:
    """Largest A whose every code block the model passes at ``snr_db``, each row read by its own
    margin (0 if none)."""
    if code == "polar":
        a = model.max_info_bits(k, m, snr_db, code="polar") - POLAR_CRC[1]
        return a if a > 0 else 0
    whole = model.max_info_bits(k, m, snr_db, osd_order=osd_order)
    if whole < MIN_INFO_BITS:
        return 0
    a = whole - transport_crc(whole, k, osd_order)[1]
    for _ in range(64):
        if a < 1:
            return 0
        try:
            plan = plan_transport(k, m, a, osd_order)
        except DoesNotFitError:
            a -= max(1, a // 100)
            continue
        worst = min(model.max_info_bits(s, m, snr_db, osd_order=osd_order) - kr
                    for s, kr in zip(plan.symbols, plan.info_bits))
        if worst >= 0:
            return a
        a += min(-1, worst * plan.n_codewords) if plan.n_codewords > 1 else worst
    return 0


def choose_scheme(snr_db: float, n_channel_uses: int, channel: FadingChannel | str = "awgn", *,
                  target_bler: float = TARGET_BLER, model: BlerModel | None = None,
                  osd_order: int = OSD_ORDER, polar: bool = True) -> Scheme:
    """The scheme with the most payload bits the BLER model passes at ``snr_db``.

    Each modulation is judged with BP alone and, on blocks of at most
    :data:`~tosc.channel.ldpc.OSD_MAX_CODED_BITS` coded bits, with BP + OSD of ``osd_order``
    (0: never), whose CRC is 5 bits longer; OSD is chosen only where it carries more payload.
    With ``polar`` (and where the model has polar curves: short blocks, at most
    :data:`~tosc.channel.polar.POLAR_MAX_CODED_BITS` coded bits) the CA-polar code competes too,
    and wins only where it carries strictly more payload than every LDPC choice.

    When none does, the most robust shape (QPSK at the lowest code rate 5G LDPC reaches without
    repetition, one payload bit where that is all that fits) with ``meets_target`` False.
    Raises :class:`DoesNotFitError` when not even that fits (too few channel uses).
    model: the BLER model (default: the shipped one for the channel's ``model_kind``), each row
    read by its own margin (:meth:`tosc.channel.bler.BlerModel.row_margin_db`).
    """
    snr_db = check_snr_db(snr_db)
    k = _check_uses(n_channel_uses)
    chan = channel if isinstance(channel, FadingChannel) else FadingChannel(channel)
    model_snr = chan.model_snr_db(snr_db, target_bler)
    model = model if model is not None else load_model(chan.model_kind)
    best: TransportPlan | None = None
    for m in model.modulation_bits():
        for order in (0, osd_order) if osd_order and k * m <= OSD_MAX_CODED_BITS else (0,):
            a = _largest_payload(model, k, m, model_snr, order)
            if a > 0 and (best is None or a > best.payload_bits):
                best = plan_transport(k, m, a, order)
    if polar:
        for m in model.modulation_bits():
            a = _largest_payload(model, k, m, model_snr, code="polar")
            if a > 0 and (best is None or a > best.payload_bits):
                best = plan_transport(k, m, a, code="polar")
    if best is not None:
        return Scheme(best, True, model_snr)
    # the fewest information bits that still fill 2k coded bits without repetition (one code
    # block), else code rate 1/5 over segmented blocks
    n = 2 * k
    total = next((kk for kk in range(MIN_INFO_BITS, min(n, MAX_INFO_BITS + 1)) if rate_matchable(kk, n)),
                 math.ceil(MIN_RATE * n))
    for a in range(max(1, total - transport_crc(total, k)[1]), total + 64):
        try:
            return Scheme(plan_transport(k, 2, a), False, model_snr)
        except DoesNotFitError:
            continue
    raise DoesNotFitError(f"{k} channel uses are too few for any 5G LDPC codeword with a CRC")


def fixed_scheme(name: str, n_channel_uses: int) -> Scheme:
    """A fixed modulation and code rate, e.g. ``'qpsk-1/2'``: A = floor(r k log2 M) - CRC bits."""
    try:
        mod_name, rate_text = str(name).lower().split("-", 1)
        rate = Fraction(rate_text)
        mod = get_modulation(mod_name)
    except (ValueError, ZeroDivisionError):
        raise ConfigError(f"a fixed scheme looks like 'qpsk-1/2' or '256qam-0.8', got {name!r}") from None
    k = _check_uses(n_channel_uses)
    total = int(math.floor(rate * k * mod.bits_per_symbol))
    a = total - transport_crc(total, k)[1]
    if a < 1:
        raise DoesNotFitError(f"{k} channel uses at {name} leave no room for payload bits")
    # segmentation adds code-block CRCs: give them room
    for _ in range(8):
        plan = plan_transport(k, mod, a)
        if sum(plan.info_bits) <= total:
            return Scheme(plan, True)
        a -= sum(plan.info_bits) - total
    return Scheme(plan_transport(k, mod, a), True)


# ------------------------------------------------------------------------------- results


@dataclass
class ReceivedPayload:
    """What arrived for one image.

    bits:               [L] uint8, the received payload (same length L as sent).
    ok:                 True when every CRC passed (and, for the ideal and fbl links, the
                        payload fit the channel); False = failed transmission.
    payload_bits:       L, bits handed to the link.
    n_channel_uses:     complex symbols actually sent for this image (<= the allotment).
    n_codewords:        codewords sent; n_failed_codewords: of those, how many failed
                        (parity checks or code-block CRC).
    codeword_ok:        [n_codewords] bool, per-codeword success flags.
    padding_bits:       zero bits appended to fill the transport block (stripped again).
    n_bit_errors:       simulation truth, not known to a receiver: payload bits that differ
                        from the ones sent (includes residual flips and undetected errors).
    residual_flips:     bits flipped by the ``residual_ber`` option.
    undetected:         simulation truth: ok although some bit is wrong (before residual flips).
    """

    bits: np.ndarray
    ok: bool
    payload_bits: int
    n_channel_uses: int
    n_codewords: int
    n_failed_codewords: int
    codeword_ok: np.ndarray
    padding_bits: int = 0
    n_bit_errors: int = 0
    residual_flips: int = 0
    undetected: bool = False


@dataclass
class LinkOutput:
    """The result of sending N images' payloads: ``images[i]`` is a :class:`ReceivedPayload`."""

    images: list[ReceivedPayload]
    mode: str  # "digital", "ideal" or "fbl"
    channel: str
    snr_db: float
    n_channel_uses: int  # allotted per image
    scheme: Scheme | None = None
    meets_target: bool | None = None  # False when no scheme met the target; None for a fixed scheme
    capacity_bits: int = 0
    stats: dict[str, float] = field(default_factory=dict)

    @property
    def mcs(self) -> Scheme | None:
        """The scheme (named ``mcs`` by older callers)."""
        return self.scheme

    @property
    def plan(self) -> TransportPlan | None:
        return self.scheme.plan if self.scheme is not None else None

    @property
    def ok(self) -> np.ndarray:
        """[N] bool per image."""
        return np.array([im.ok for im in self.images], dtype=bool)

    @property
    def n_failed_codewords(self) -> np.ndarray:
        """[N] int64 per image."""
        return np.array([im.n_failed_codewords for im in self.images], dtype=np.int64)

    @property
    def channel_uses(self) -> np.ndarray:
        """[N] int64 complex symbols actually sent per image."""
        return np.array([im.n_channel_uses for im in self.images], dtype=np.int64)

    @property
    def payload_bits(self) -> np.ndarray:
        """[N] int64."""
        return np.array([im.payload_bits for im in self.images], dtype=np.int64)

    @property
    def failure_rate(self) -> float:
        return float(1.0 - self.ok.mean()) if self.images else 0.0


class Link(Protocol):
    """What :class:`DigitalLink`, :class:`~tosc.channel.ideal.IdealLink` and
    :class:`~tosc.channel.ideal.FiniteLengthLink` offer."""

    channel: str

    def capacity_bits(self, snr_db: float, n_channel_uses: int) -> int:
        """Payload bits per image that fit ``n_channel_uses`` complex symbols at ``snr_db``."""
        ...

    def transmit(self, payloads: Sequence[np.ndarray | bytes], *, snr_db: float, n_channel_uses: int,
                 generator: torch.Generator | None = None, seed: int | None = None,
                 image_indices: Sequence[int] | None = None) -> "LinkOutput":
        """Send one payload per image; see :meth:`DigitalLink.transmit`."""
        ...


def check_image_indices(image_indices: Sequence[int] | None, count: int) -> list[int]:
    """The images' indices (default 0..count-1); ConfigError unless ``count`` distinct integers."""
    if image_indices is None:
        return list(range(count))
    out = [int(i) for i in image_indices]
    if len(out) != count or len(set(out)) != count:
        raise ConfigError(f"image_indices must hold {count} distinct integers, got {list(image_indices)!r}")
    return out


# ------------------------------------------------------------------------------- the link


class DigitalLink:
    """Separate source and channel coding over a simulated 5G-style link.

    scheme: None to choose per call from the BLER model (:func:`choose_scheme`), or a fixed
        modulation and code rate such as ``'qpsk-1/2'`` (``mcs`` is an older name for it).
    channel: ``awgn``, ``rayleigh-block`` or ``rayleigh-fast`` (perfect CSI at the receiver).
    num_iter, decoder ('fast' or 'sionna'), early_stop: BP decoder settings.
    osd_order: order of the OSD the receiver may run after BP on short blocks (default 2, where
        the BLER model says it pays for its longer CRC; 0: BP alone, as before).
    polar: let short blocks use the CA-polar code where the BLER model says it carries more
        payload than LDPC (default True; False: 5G LDPC only, as before).
    residual_ber: probability of flipping each payload bit after decoding (default 0).
    target_bler: the block error rate schemes are chosen for; model: a BLER model to choose
        from instead of the shipped one.

    Typical use by a system that sends N images at (snr_db, cbr)::

        k = channel_uses(cbr, image_shape)
        link = DigitalLink(channel="awgn")
        budget = link.capacity_bits(snr_db, k)            # rate-match the codec to this
        out = link.transmit(payloads, snr_db=snr_db, n_channel_uses=k, seed=seed)
        out.images[i].bits, out.images[i].ok, out.images[i].n_failed_codewords
    """

    def __init__(self, scheme: str | None = None, channel: str = "awgn", *, num_iter: int = NUM_ITER,
                 decoder: str = "fast", early_stop: bool = True, residual_ber: float = 0.0,
                 csi: str = "perfect", target_bler: float = TARGET_BLER, mcs: str | None = None,
                 model: BlerModel | None = None, osd_order: int = OSD_ORDER, polar: bool = True) -> None:
        scheme = scheme if scheme is not None else mcs
        self.fixed = None if scheme is None else str(getattr(scheme, "name", scheme))
        if self.fixed is not None:
            fixed_scheme(self.fixed, 1000)  # validates the name now rather than at the first call
        self.chan = FadingChannel(channel, "perfect")
        self.channel = self.chan.kind
        if check_csi(csi) != "perfect":
            raise ConfigError("the digital link needs perfect CSI (coherent QAM demapping); "
                              "use csi='none' only with the analog channel")
        if decoder not in DECODERS:
            raise ConfigError(f"decoder must be one of {', '.join(DECODERS)}, got {decoder!r}")
        if not isinstance(num_iter, int) or num_iter < 0:
            raise ConfigError(f"num_iter must be a non-negative integer, got {num_iter!r}")
        if not 0.0 <= residual_ber <= 0.5 or math.isnan(residual_ber):
            raise ConfigError(f"residual_ber must lie in [0, 0.5], got {residual_ber}")
        if not 0.0 < target_bler < 1.0:
            raise ConfigError(f"target_bler must lie in (0, 1), got {target_bler}")
        if osd_order not in (0, OSD_ORDER):
            raise ConfigError(f"osd_order must be 0 or {OSD_ORDER}, got {osd_order!r}")
        self.num_iter, self.decoder, self.early_stop = num_iter, decoder, early_stop
        self.osd_order = int(osd_order)
        self.polar = bool(polar)
        self.residual_ber = float(residual_ber)
        self.target_bler = float(target_bler)
        self.model = model

    def __repr__(self) -> str:
        return (f"DigitalLink(scheme={self.fixed or 'auto'!r}, channel={self.channel!r}, num_iter={self.num_iter}, "
                f"decoder={self.decoder!r}, osd_order={self.osd_order}, polar={self.polar}, "
                f"residual_ber={self.residual_ber})")

    def choose(self, snr_db: float, n_channel_uses: int) -> Scheme:
        """The scheme this link uses at ``snr_db`` with ``n_channel_uses`` per image."""
        if self.fixed is not None:
            return fixed_scheme(self.fixed, n_channel_uses)
        return choose_scheme(snr_db, n_channel_uses, self.chan, target_bler=self.target_bler, model=self.model,
                             osd_order=self.osd_order, polar=self.polar)

    def plan(self, snr_db: float, n_channel_uses: int) -> TransportPlan:
        return self.choose(snr_db, n_channel_uses).plan

    def capacity_bits(self, snr_db: float, n_channel_uses: int) -> int:
        """Payload bits per image the link carries at ``snr_db`` with ``n_channel_uses`` (CRC excluded)."""
        return self.plan(snr_db, n_channel_uses).capacity_bits

    def transmit(self, payloads: Sequence[np.ndarray | bytes], *, snr_db: float, n_channel_uses: int,
                 generator: torch.Generator | None = None, seed: int | None = None,
                 image_indices: Sequence[int] | None = None) -> LinkOutput:
        """Send one payload per image; each gets ``n_channel_uses`` complex symbols.

        payloads: N 1-D arrays of 0/1 (any length up to the capacity) or ``bytes``.
        seed / generator: the seed of every image's channel (``seed`` wins; one draw from
            ``generator`` otherwise; 0 if neither is given).
        image_indices: each payload's image index (default 0..N-1): image i's fade and noise
            depend only on (seed, i), so a caller that sends a subset passes their indices.
        Raises :class:`DoesNotFitError` if a payload exceeds the capacity.
        """
        snr_db = check_snr_db(snr_db)
        bits_in = as_bit_arrays(payloads)
        indices = check_image_indices(image_indices, len(bits_in))
        root = base_seed(seed, generator)
        scheme = self.choose(snr_db, n_channel_uses)
        plan = scheme.plan
        for i, b in enumerate(bits_in):
            if b.size > plan.capacity_bits:
                raise DoesNotFitError(f"payload {i} has {b.size} bits; {n_channel_uses} channel uses at "
                                      f"{scheme.name} carry at most {plan.capacity_bits}")
        sent = [i for i, b in enumerate(bits_in) if b.size]
        decoded_bits: dict[int, np.ndarray] = {}
        flags: dict[int, np.ndarray] = {}
        tb_ok: dict[int, bool] = {}
        its = torch.zeros(0)
        if sent:
            tb = np.zeros((len(sent), plan.payload_bits), dtype=np.uint8)
            for row, i in enumerate(sent):
                tb[row, :bits_in[i].size] = bits_in[i]
            generators = [image_generator(root, indices[i]) for i in sent]
            out_bits, cw_ok, tb_pass, its = self._send_blocks(torch.from_numpy(tb), plan, snr_db, generators)
            for row, i in enumerate(sent):
                decoded_bits[i] = out_bits[row]
                flags[i] = cw_ok[row]
                tb_ok[i] = bool(tb_pass[row])
        images = []
        for i, b in enumerate(bits_in):
            if b.size == 0:
                images.append(ReceivedPayload(bits=np.zeros(0, np.uint8), ok=True, payload_bits=0, n_channel_uses=0,
                                              n_codewords=0, n_failed_codewords=0, codeword_ok=np.zeros(0, bool)))
                continue
            received = decoded_bits[i][:b.size].astype(np.uint8)
            ok = tb_ok[i] and bool(flags[i].all())
            undetected = ok and not np.array_equal(received, b)
            flips = 0
            if self.residual_ber > 0 and received.size:
                gen = image_generator(root + 1, indices[i])  # independent of the channel's draws
                received, flips = flip_bits(received, self.residual_ber, gen)
            images.append(ReceivedPayload(
                bits=received, ok=ok, payload_bits=int(b.size), n_channel_uses=int(plan.n_channel_uses),
                n_codewords=plan.n_codewords, n_failed_codewords=int((~flags[i]).sum()), codeword_ok=flags[i],
                padding_bits=int(plan.payload_bits - b.size), n_bit_errors=int((received != b).sum()),
                residual_flips=int(flips), undetected=bool(undetected)))
        stats = {"codewords": float(its.numel()), "mean_bp_iterations": float(its.float().mean()) if its.numel() else 0.0}
        return LinkOutput(images=images, mode="digital", channel=self.channel, snr_db=snr_db,
                          n_channel_uses=int(n_channel_uses), scheme=scheme,
                          meets_target=None if self.fixed is not None else scheme.meets_target,
                          capacity_bits=plan.capacity_bits, stats=stats)

    def _send_blocks(self, tb: torch.Tensor, plan: TransportPlan, snr_db: float,
                     generators: list[torch.Generator]):
        """tb: [N, A] uint8 transport blocks, one generator per row.

        Returns (payload bits [N, A] uint8 numpy, per-codeword ok [N, C] bool numpy,
        transport CRC passed [N] bool numpy, BP iterations [N C] tensor).
        """
        n_rows = tb.shape[0]
        m = plan.modulation.bits_per_symbol
        tb_crc = crc(plan.tb_crc[0], plan.payload_bits)
        # the polar code attaches and checks its CRC itself (it also picks the SCL path)
        with_crc = tb if plan.code == "polar" else tb_crc.attach(tb)  # [N, B]
        # segmentation: code block r carries K_r - (code-block CRC) transport bits
        sizes = [kr - plan.cb_crc_bits for kr in plan.info_bits]
        starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        # every image's channel for all its symbols, from its own generator
        h = torch.empty(n_rows, plan.n_channel_uses, dtype=torch.complex64)
        w = torch.empty(n_rows, plan.n_channel_uses, dtype=torch.complex64)
        for row, gen in enumerate(generators):
            h[row] = self.chan.gains(1, plan.n_channel_uses, gen)[0]
            w[row] = complex_normal((plan.n_channel_uses,), gen)
        n0 = 10.0 ** (-snr_db / 10.0)
        modem = get_modem(plan.modulation.name)
        symbol_starts = np.concatenate([[0], np.cumsum(plan.symbols)]).astype(np.int64)
        scrambling = torch.from_numpy(scrambling_sequence(plan.n_channel_uses * m).astype(np.float32))
        received, cw_ok, iterations = [], [], []
        for r, (kr, s) in enumerate(zip(plan.info_bits, plan.symbols)):
            block = with_crc[:, starts[r]:starts[r + 1]]
            cb_crc = crc(CODE_BLOCK_CRC[0], sizes[r]) if plan.cb_crc_bits else None
            u = cb_crc.attach(block) if cb_crc is not None else block
            if plan.code == "polar":
                code = get_polar_code(plan.payload_bits, s * m, plan.tb_crc[0], POLAR_LIST_SIZE)
            else:
                code = get_code(kr, s * m, m, self.num_iter)
            seq = scrambling[symbol_starts[r] * m:symbol_starts[r + 1] * m]
            x = modem.map((code.encode(u) + seq).remainder_(2.0))
            hs, ws = h[:, symbol_starts[r]:symbol_starts[r + 1]], w[:, symbol_starts[r]:symbol_starts[r + 1]]
            y = hs * x + ws * math.sqrt(n0)
            llr = modem.demap(y / hs, n0 / hs.abs().square()) * (1.0 - 2.0 * seq)  # descramble: flip where s = 1
            if plan.code == "polar":
                res = code.decode(llr)
                iterations.append(torch.zeros(n_rows, dtype=torch.int32))
                received.append(res.bits)
                cw_ok.append(res.ok)
                continue
            res = code.decode(llr, decoder=self.decoder, early_stop=self.early_stop, osd_order=plan.osd_order)
            iterations.append(res.iterations)
            ok = res.ok
            bits = res.bits
            if cb_crc is not None:
                bits, crc_ok = cb_crc.check(bits)
                ok = ok & crc_ok
            received.append(bits)
            cw_ok.append(ok)
        tb_rx = torch.cat(received, dim=1)
        if plan.code == "polar":
            payload, tb_pass = tb_rx, cw_ok[0].clone()
        else:
            payload, tb_pass = tb_crc.check(tb_rx)
        flags = torch.stack(cw_ok, dim=1)
        if plan.n_codewords == 1:
            # one code block: the transport CRC is its only check beyond the parity checks, which
            # every word OSD returns passes; so a failed CRC counts as a failed codeword
            flags[:, 0] &= tb_pass
        return (payload.numpy(), flags.numpy(), tb_pass.numpy(), torch.cat(iterations))


def measure_operating_point(link: DigitalLink, snr_db: float, n_channel_uses: int, codewords: int, *,
                            seed: int = 0, batch: int = 2000, progress: bool = False) -> dict[str, float]:
    """Send at least ``codewords`` codewords of full-size random payloads through the whole link.

    Returns images, codewords, failed_images (some CRC failed), undetected (every CRC passed,
    bits wrong) and bler (failed images / images). Image i uses channel index i, so a
    measurement is reproducible from (seed, codewords).
    """
    from tqdm import tqdm

    plan = link.plan(snr_db, n_channel_uses)
    images = max(1, math.ceil(codewords / plan.n_codewords))
    rng = np.random.default_rng(seed)
    failures = undetected = sent = 0
    with tqdm(total=images, desc=f"{link.channel} {snr_db:g} dB k={n_channel_uses}", unit="image",
              leave=False, disable=not progress) as bar:
        for start in range(0, images, batch):
            count = min(batch, images - start)
            payloads = [rng.integers(0, 2, plan.capacity_bits, dtype=np.uint8) for _ in range(count)]
            out = link.transmit(payloads, snr_db=snr_db, n_channel_uses=n_channel_uses, seed=seed,
                                image_indices=range(start, start + count))
            failures += int((~out.ok).sum())
            undetected += sum(im.undetected for im in out.images)
            sent += count
            bar.update(count)
    return {"images": sent, "codewords": sent * plan.n_codewords, "failed_images": failures,
            "undetected": int(undetected), "bler": failures / sent}
