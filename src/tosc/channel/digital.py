"""The digital link: payload bits -> 5G LDPC -> QAM -> channel -> APP demapping -> BP -> bits.

Per image, with ``k`` complex channel uses and a scheme (r_c, M), ``m = log2(M)``:

1. Segmentation (:func:`plan_segments`): the k symbols are split into C = ceil(k m / n_max)
   codewords of whole symbols (sizes differ by at most one symbol); codeword i carries
   floor(r_c n_i) information bits, plus one for the first few so that the total is
   exactly B = floor(k r_c m) (the docs/channel.md budget). A payload of
   L <= B bits fills the codewords in order; only the codewords it needs are sent, the
   last one zero-padded (the padding is recorded and stripped again).
2. Each codeword: Sionna's ``LDPC5GEncoder`` (with the 38.212 output bit interleaver) ->
   Gray QAM mapper (unit average energy) -> y = h x + w (AWGN, or Rayleigh with h per image
   or per symbol) -> zero-forcing with perfect CSI -> exact APP demapper with the
   per-symbol noise N0/|h|^2 -> BP decoder (:mod:`tosc.channel.ldpc`).
3. Per image: the payload bits, one success flag per codeword (parity checks satisfied),
   the number of failed codewords, and ``ok`` = no codeword failed. A failed image is a
   failed transmission (the caller shows its fallback): the cliff effect stays visible.

Optionally, ``residual_ber`` flips each received payload bit with that probability after
decoding (errors the parity checks do not see; for reliability studies).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol, Sequence

import numpy as np
import torch

from ..errors import ConfigError, DoesNotFitError
from .conventions import bit_budget, check_csi, check_channel_kind, check_snr_db
from .fading import FadingChannel, complex_normal
from .ldpc import DECODERS, MIN_INFO_BITS, get_code
from .mcs import Mcs, McsChoice, McsTable, get_mcs, load_table, MCS_SET
from .modulation import _modem
from .residual import flip_bits

__all__ = [
    "Link",
    "SegmentPlan",
    "plan_segments",
    "ReceivedPayload",
    "LinkOutput",
    "DigitalLink",
    "choose_mcs",
    "bits_from_bytes",
    "bytes_from_bits",
    "DEFAULT_MAX_CODEWORD_BITS",
]

DEFAULT_MAX_CODEWORD_BITS = 1024


def bits_from_bytes(data: bytes) -> np.ndarray:
    """bytes -> [8 * len(data)] uint8 bits, most significant bit first."""
    return np.unpackbits(np.frombuffer(bytes(data), dtype=np.uint8))


def bytes_from_bits(bits: np.ndarray) -> bytes:
    """[L] 0/1 bits (L a multiple of 8), most significant bit first -> bytes."""
    bits = np.asarray(bits, dtype=np.uint8)
    if bits.ndim != 1 or bits.size % 8:
        raise ConfigError(f"need a 1-D bit array whose length is a multiple of 8, got shape {bits.shape}")
    return np.packbits(bits).tobytes()


@dataclass(frozen=True)
class SegmentPlan:
    """How one image's channel uses are split into 5G LDPC codewords.

    n_channel_uses: complex symbols available to the image.
    mcs: the scheme. symbols[i], coded_bits[i] = symbols[i] * log2(M), info_bits[i]: per codeword.
    """

    n_channel_uses: int
    mcs: Mcs
    symbols: tuple[int, ...]
    coded_bits: tuple[int, ...]
    info_bits: tuple[int, ...]

    @property
    def n_codewords(self) -> int:
        return len(self.symbols)

    @property
    def capacity_bits(self) -> int:
        """Largest payload that fits: floor(k * r_c * log2(M)) information bits."""
        return int(sum(self.info_bits))

    @property
    def shortest_codeword_bits(self) -> int:
        return min(self.coded_bits) if self.coded_bits else 0

    def codewords_needed(self, payload_bits: int) -> int:
        """Codewords a payload of ``payload_bits`` occupies (0 for an empty payload)."""
        if payload_bits > self.capacity_bits:
            raise DoesNotFitError(f"{payload_bits} payload bits exceed the {self.capacity_bits}-bit capacity of "
                                  f"{self.n_channel_uses} channel uses at {self.mcs.name}")
        total, count = 0, 0
        while total < payload_bits:
            total += self.info_bits[count]
            count += 1
        return count


def plan_segments(n_channel_uses: int, mcs: Mcs | str,
                  max_codeword_bits: int = DEFAULT_MAX_CODEWORD_BITS) -> SegmentPlan:
    """Split ``n_channel_uses`` symbols into codewords of at most ``max_codeword_bits`` coded bits.

    Raises :class:`DoesNotFitError` when a codeword would carry fewer than 12 information
    bits (the smallest 5G LDPC code): too few channel uses for this scheme.
    """
    mcs = get_mcs(mcs)
    m = mcs.bits_per_symbol
    if isinstance(n_channel_uses, bool) or not isinstance(n_channel_uses, (int, np.integer)) or n_channel_uses < 1:
        raise ConfigError(f"n_channel_uses must be a positive integer, got {n_channel_uses!r}")
    if max_codeword_bits < m:
        raise ConfigError(f"max_codeword_bits={max_codeword_bits} is shorter than one {mcs.modulation.name} symbol")
    n_uses = int(n_channel_uses)
    per_codeword = max_codeword_bits // m
    count = math.ceil(n_uses / per_codeword)
    symbols = [n_uses // count + (1 if i < n_uses % count else 0) for i in range(count)]
    total_info = bit_budget(n_uses, float(mcs.code_rate), m)
    # floor(r_c n_i) per codeword; the few bits left over from the flooring go one each
    # to the first codewords, so the total is exactly the budget B
    info = [int(math.floor(mcs.code_rate * s * m)) for s in symbols]
    for i in range(total_info - sum(info)):
        info[i] += 1
    if min(info) < MIN_INFO_BITS:
        raise DoesNotFitError(f"{n_uses} channel uses carry {total_info} information bits at {mcs.name}; "
                              f"a 5G LDPC codeword needs at least {MIN_INFO_BITS}")
    return SegmentPlan(n_uses, mcs, tuple(symbols), tuple(s * m for s in symbols), tuple(info))


@dataclass
class ReceivedPayload:
    """What arrived for one image.

    bits:               [L] uint8, the received payload (same length L as sent).
    ok:                 True when every codeword passed its parity checks (and, in ideal
                        mode, the payload fit the channel); False = failed transmission.
    payload_bits:       L, bits handed to the link.
    n_channel_uses:     complex symbols actually sent for this image (<= the allotment).
    n_codewords:        codewords sent; n_failed_codewords: of those, how many failed.
    codeword_ok:        [n_codewords] bool, per-codeword success flags.
    padding_bits:       zero bits appended to fill the last codeword (stripped again).
    n_bit_errors:       simulation truth, not known to a receiver: payload bits that differ
                        from the ones sent (includes residual flips and undetected errors).
    residual_flips:     bits flipped by the ``residual_ber`` option.
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


@dataclass
class LinkOutput:
    """The result of sending N images' payloads: ``images[i]`` is a :class:`ReceivedPayload`."""

    images: list[ReceivedPayload]
    mode: str  # "digital" or "ideal"
    channel: str
    snr_db: float
    n_channel_uses: int  # allotted per image
    mcs: Mcs | None = None
    plan: SegmentPlan | None = None
    meets_target: bool | None = None  # table choice: False when no scheme met the target; None for a fixed MCS
    capacity_bits: int = 0
    stats: dict[str, float] = field(default_factory=dict)

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
    """What :class:`DigitalLink` and :class:`tosc.channel.ideal.IdealLink` both offer."""

    channel: str

    def capacity_bits(self, snr_db: float, n_channel_uses: int) -> int:
        """Payload bits per image that fit ``n_channel_uses`` complex symbols at ``snr_db``."""
        ...

    def transmit(self, payloads: Sequence[np.ndarray | bytes], *, snr_db: float, n_channel_uses: int,
                 generator: torch.Generator | None = None, seed: int | None = None) -> "LinkOutput":
        """Send one payload per image; see :meth:`DigitalLink.transmit`."""
        ...


def _as_bit_arrays(payloads: Sequence[np.ndarray | bytes]) -> list[np.ndarray]:
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


def choose_mcs(snr_db: float, n_channel_uses: int, channel: str = "awgn", *,
               max_codeword_bits: int = DEFAULT_MAX_CODEWORD_BITS,
               table: McsTable | None = None) -> McsChoice:
    """The scheme the MCS table picks for ``n_channel_uses`` symbols per image at ``snr_db``.

    Each scheme is judged by its threshold at the reference codeword length that matches
    the codewords this image would actually use (see :meth:`McsTable.select`). Schemes that
    cannot form a 12-bit codeword from the channel uses are skipped.
    """
    table = table or load_table(channel)
    snr_db = check_snr_db(snr_db)
    best: McsChoice | None = None
    fallback: McsChoice | None = None
    for mcs in MCS_SET:
        try:
            plan = plan_segments(n_channel_uses, mcs, max_codeword_bits)
        except DoesNotFitError:
            continue
        choice = table.select(snr_db, plan.shortest_codeword_bits, candidates=[mcs])
        if choice.meets_target:
            if best is None or (mcs.spectral_efficiency, -(choice.threshold_db or 0.0)) > \
                    (best.mcs.spectral_efficiency, -(best.threshold_db or 0.0)):
                best = choice
        elif choice.threshold_db is not None:
            if fallback is None or choice.threshold_db < (fallback.threshold_db or math.inf):
                fallback = choice
    if best is not None:
        return best
    if fallback is not None:
        return fallback
    raise DoesNotFitError(f"{n_channel_uses} channel uses are too few for any 5G LDPC codeword "
                          f"(at least {MIN_INFO_BITS} information bits)")


class DigitalLink:
    """Separate source and channel coding over a simulated link.

    mcs: a scheme (``Mcs`` or name like ``'qpsk-1/2'``), or None to pick one per call from
        the MCS table for the channel, SNR and channel uses (:func:`choose_mcs`).
    channel: ``awgn``, ``rayleigh-block`` or ``rayleigh-fast`` (perfect CSI at the receiver).
    max_codeword_bits: longest codeword (coded bits); 1024 matches the MCS table.
    num_iter, decoder ('fast' or 'sionna'), early_stop: BP decoder settings.
    residual_ber: probability of flipping each payload bit after decoding (default 0).

    Typical use by a system that sends N images at (snr_db, cbr)::

        k = channel_uses(cbr, image_shape)
        link = DigitalLink(channel="awgn")
        budget = link.capacity_bits(snr_db, k)            # rate-match the codec to this
        out = link.transmit(payloads, snr_db=snr_db, n_channel_uses=k, seed=seed)
        out.images[i].bits, out.images[i].ok, out.images[i].n_failed_codewords
    """

    def __init__(self, mcs: Mcs | str | None = None, channel: str = "awgn", *,
                 max_codeword_bits: int = DEFAULT_MAX_CODEWORD_BITS, num_iter: int = 20,
                 decoder: str = "fast", early_stop: bool = True, residual_ber: float = 0.0,
                 csi: str = "perfect", table: McsTable | None = None) -> None:
        self.mcs = get_mcs(mcs) if mcs is not None else None
        self.channel = check_channel_kind(channel)
        if check_csi(csi) != "perfect":
            raise ConfigError("the digital link needs perfect CSI (coherent QAM demapping); "
                              "use csi='none' only with the analog channel")
        if decoder not in DECODERS:
            raise ConfigError(f"decoder must be one of {', '.join(DECODERS)}, got {decoder!r}")
        if not isinstance(num_iter, int) or num_iter < 0:
            raise ConfigError(f"num_iter must be a non-negative integer, got {num_iter!r}")
        if not 0.0 <= residual_ber <= 0.5 or math.isnan(residual_ber):
            raise ConfigError(f"residual_ber must lie in [0, 0.5], got {residual_ber}")
        if max_codeword_bits < 24:
            raise ConfigError(f"max_codeword_bits must be >= 24, got {max_codeword_bits}")
        self.max_codeword_bits = int(max_codeword_bits)
        self.num_iter, self.decoder, self.early_stop = num_iter, decoder, early_stop
        self.residual_ber = float(residual_ber)
        self._table = table

    def __repr__(self) -> str:
        mcs = self.mcs.name if self.mcs else "auto"
        return (f"DigitalLink(mcs={mcs!r}, channel={self.channel!r}, max_codeword_bits={self.max_codeword_bits}, "
                f"num_iter={self.num_iter}, decoder={self.decoder!r}, residual_ber={self.residual_ber})")

    def choose(self, snr_db: float, n_channel_uses: int) -> McsChoice:
        """The scheme this link uses at ``snr_db`` with ``n_channel_uses`` per image."""
        if self.mcs is not None:
            return McsChoice(self.mcs, True, None, self.max_codeword_bits)
        if self._table is None:
            self._table = load_table(self.channel)
        return choose_mcs(snr_db, n_channel_uses, self.channel, max_codeword_bits=self.max_codeword_bits,
                          table=self._table)

    def plan(self, snr_db: float, n_channel_uses: int) -> SegmentPlan:
        return plan_segments(n_channel_uses, self.choose(snr_db, n_channel_uses).mcs, self.max_codeword_bits)

    def capacity_bits(self, snr_db: float, n_channel_uses: int) -> int:
        """Payload bits per image the link carries at ``snr_db`` with ``n_channel_uses``: B = floor(k r_c log2 M)."""
        return self.plan(snr_db, n_channel_uses).capacity_bits

    def transmit(self, payloads: Sequence[np.ndarray | bytes], *, snr_db: float, n_channel_uses: int,
                 generator: torch.Generator | None = None, seed: int | None = None) -> LinkOutput:
        """Send one payload per image; each gets ``n_channel_uses`` complex symbols.

        payloads: N 1-D arrays of 0/1 (any length up to the capacity) or ``bytes``.
        generator / seed: source of all randomness (seed 0 if neither is given).
        Raises :class:`DoesNotFitError` if a payload exceeds the capacity.
        """
        snr_db = check_snr_db(snr_db)
        if generator is None:
            generator = torch.Generator().manual_seed(0 if seed is None else int(seed))
        bits_in = _as_bit_arrays(payloads)
        choice = self.choose(snr_db, n_channel_uses)
        plan = plan_segments(n_channel_uses, choice.mcs, self.max_codeword_bits)
        for i, b in enumerate(bits_in):
            if b.size > plan.capacity_bits:
                raise DoesNotFitError(f"payload {i} has {b.size} bits; {n_channel_uses} channel uses at "
                                      f"{plan.mcs.name} carry at most {plan.capacity_bits}")
        n_images = len(bits_in)
        used = [plan.codewords_needed(b.size) for b in bits_in]

        # one row per codeword sent, grouped by code shape (k, n)
        rows: dict[tuple[int, int], list[tuple[int, int]]] = {}  # shape -> [(image, codeword index)]
        for img, count in enumerate(used):
            for cw in range(count):
                rows.setdefault((plan.info_bits[cw], plan.coded_bits[cw]), []).append((img, cw))
        offsets = np.concatenate([[0], np.cumsum(plan.info_bits)]).astype(np.int64)

        # block fading: one gain per image, drawn for every image so results do not depend on payload sizes
        block_h = None
        if self.channel == "rayleigh-block":
            block_h = complex_normal((n_images, 1), generator)
        chan = FadingChannel(self.channel, "perfect")
        modem = _modem(plan.mcs.modulation.name)
        decoded: dict[tuple[int, int], tuple[np.ndarray, bool]] = {}
        iterations: list[torch.Tensor] = []
        for (k, n), members in sorted(rows.items()):
            code = get_code(k, n, plan.mcs.bits_per_symbol, self.num_iter)
            u = np.zeros((len(members), k), dtype=np.uint8)
            for r, (img, cw) in enumerate(members):
                seg = bits_in[img][offsets[cw]:offsets[cw + 1]]
                u[r, :seg.size] = seg
            x = modem.map(code.encode(torch.from_numpy(u)))
            n0 = 10.0 ** (-snr_db / 10.0)
            if block_h is not None:
                h = block_h[torch.tensor([img for img, _ in members])].expand(-1, x.shape[1])
            else:
                h = chan.gains(x.shape[0], x.shape[1], generator)
            w = complex_normal(tuple(x.shape), generator) * math.sqrt(n0)
            y = h * x + w
            llr = modem.demap(y / h, n0 / h.abs().square())
            res = code.decode(llr, decoder=self.decoder, early_stop=self.early_stop)
            iterations.append(res.iterations)
            bits_out = res.bits.numpy()
            ok_out = res.ok.numpy()
            for r, key in enumerate(members):
                decoded[key] = (bits_out[r], bool(ok_out[r]))

        images = []
        for img, b in enumerate(bits_in):
            count = used[img]
            parts = [decoded[(img, cw)][0] for cw in range(count)]
            flags = np.array([decoded[(img, cw)][1] for cw in range(count)], dtype=bool)
            received = (np.concatenate(parts) if parts else np.zeros(0, np.uint8))[:b.size].astype(np.uint8)
            flips = 0
            if self.residual_ber > 0 and received.size:
                received, flips = flip_bits(received, self.residual_ber, generator)
            images.append(ReceivedPayload(
                bits=received, ok=bool(flags.all()), payload_bits=int(b.size),
                n_channel_uses=int(sum(plan.symbols[:count])), n_codewords=count,
                n_failed_codewords=int((~flags).sum()), codeword_ok=flags,
                padding_bits=int(offsets[count] - b.size), n_bit_errors=int((received != b).sum()),
                residual_flips=int(flips)))
        its = torch.cat(iterations).float() if iterations else torch.zeros(0)
        stats = {"codewords": float(its.numel()), "mean_bp_iterations": float(its.mean()) if its.numel() else 0.0}
        return LinkOutput(images=images, mode="digital", channel=self.channel, snr_db=snr_db,
                          n_channel_uses=int(n_channel_uses), mcs=plan.mcs, plan=plan,
                          meets_target=None if self.mcs is not None else choice.meets_target,
                          capacity_bits=plan.capacity_bits, stats=stats)
