"""The bound links: the ideal (capacity) link and the finite-blocklength (``fbl``) link.

:class:`IdealLink`: bits up to k * C arrive without error.

Shown beside the real link in every comparison: ``C = log2(1 + SNR)`` bits per complex
channel use on AWGN, so k channel uses carry ``floor(k log2(1 + SNR))`` bits. On Rayleigh
fading with perfect receiver CSI the budget is the ergodic capacity E[log2(1 + |h|^2 SNR)]:
achievable on fast fading, only an average on block fading, where an image whose own
capacity k log2(1 + |h|^2 SNR) is below its payload is in outage (``ok`` False, bits zeroed).
Each image's gain comes from its own generator, a function of (seed, image index).

:class:`FiniteLengthLink`: bits up to the normal approximation at the target block error
rate (:mod:`tosc.channel.finite`) arrive without error. It is a bound, not a code: what the
best code of k channel uses could carry at that error rate, with the errors left out, so
that capacity, the finite-length limit and the real link can be compared side by side.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from ..errors import ConfigError, DoesNotFitError
from .bler import TARGET_BLER
from .conventions import check_snr_db, ideal_bit_budget
from .digital import LinkOutput, ReceivedPayload, as_bit_arrays, check_image_indices
from .fading import FadingChannel, base_seed, image_generator
from .residual import flip_bits

__all__ = ["IdealLink", "FiniteLengthLink"]


class IdealLink:
    """Error-free delivery of up to the capacity budget per image.

    channel: ``awgn``, ``rayleigh-fast`` or ``rayleigh-block`` (see the module docstring).
    residual_ber: optional bit flips after delivery (as in :class:`DigitalLink`).
    """

    mode = "ideal"

    def __init__(self, channel: str = "awgn", *, residual_ber: float = 0.0) -> None:
        self.chan = FadingChannel(channel, "perfect")
        self.channel = self.chan.kind
        if math.isnan(residual_ber) or not 0.0 <= residual_ber <= 0.5:
            raise ConfigError(f"residual_ber must lie in [0, 0.5], got {residual_ber}")
        self.residual_ber = float(residual_ber)

    def __repr__(self) -> str:
        return f"IdealLink(channel={self.channel!r}, residual_ber={self.residual_ber})"

    def capacity_bits(self, snr_db: float, n_channel_uses: int) -> int:
        """floor(k * C) bits per image (C: AWGN or ergodic Rayleigh capacity per use)."""
        return ideal_bit_budget(n_channel_uses, snr_db, self.chan)

    def _outage(self, bits: int, n_channel_uses: int, snr_db: float, gen: torch.Generator) -> bool:
        """Whether this image's own channel cannot carry ``bits`` (only where the gain is per image)."""
        if not self.chan.per_image_gain:
            return False
        g = float(self.chan.gains(1, 1, gen)[0, 0].abs().square())
        return bits > math.floor(n_channel_uses * math.log2(1.0 + g * 10.0 ** (snr_db / 10.0)))

    def transmit(self, payloads: Sequence[np.ndarray | bytes], *, snr_db: float, n_channel_uses: int,
                 generator: torch.Generator | None = None, seed: int | None = None,
                 image_indices: Sequence[int] | None = None) -> LinkOutput:
        """Deliver each payload (1-D 0/1 array or bytes) of at most :meth:`capacity_bits` bits.

        Raises :class:`DoesNotFitError` for a longer payload. Each image is charged the
        channel uses its payload needs, ceil(L / C), at most ``n_channel_uses``.
        seed / generator / image_indices: as for :meth:`DigitalLink.transmit`.
        """
        snr_db = check_snr_db(snr_db)
        bits_in = as_bit_arrays(payloads)
        indices = check_image_indices(image_indices, len(bits_in))
        root = base_seed(seed, generator)
        budget = self.capacity_bits(snr_db, n_channel_uses)
        for i, b in enumerate(bits_in):
            if b.size > budget:
                raise DoesNotFitError(f"payload {i} has {b.size} bits; the capacity of {n_channel_uses} channel "
                                      f"uses at {snr_db} dB ({self.channel}) is {budget} bits")
        per_use = budget / n_channel_uses if n_channel_uses else 0.0
        images = []
        for i, b in enumerate(bits_in):
            gen = image_generator(root, indices[i])
            uses = min(n_channel_uses, math.ceil(b.size / per_use)) if b.size else 0
            ok = not (b.size and self._outage(b.size, n_channel_uses, snr_db, gen))
            received = b.copy() if ok else np.zeros_like(b)
            flips = 0
            if ok and self.residual_ber > 0 and received.size:
                received, flips = flip_bits(received, self.residual_ber, image_generator(root + 1, indices[i]))
            images.append(ReceivedPayload(
                bits=received, ok=ok, payload_bits=int(b.size), n_channel_uses=int(uses),
                n_codewords=1 if b.size else 0, n_failed_codewords=0 if ok else 1,
                codeword_ok=np.array([ok] if b.size else [], dtype=bool),
                n_bit_errors=int((received != b).sum()), residual_flips=int(flips)))
        return LinkOutput(images=images, mode=self.mode, channel=self.channel, snr_db=snr_db,
                          n_channel_uses=int(n_channel_uses), capacity_bits=budget)


class FiniteLengthLink(IdealLink):
    """Error-free delivery of up to the normal-approximation budget per image: a bound.

    channel: ``awgn``, ``rayleigh-fast`` or ``rayleigh-block``; target_bler: the block error
    rate the budget is computed at (1e-3, the digital link's target). No outage is drawn:
    the block-fading budget already pays for it (it is the bits the best code carries with
    probability 1 - target over the fades).
    """

    mode = "fbl"

    def __init__(self, channel: str = "awgn", *, residual_ber: float = 0.0,
                 target_bler: float = TARGET_BLER) -> None:
        super().__init__(channel, residual_ber=residual_ber)
        if not 0.0 < target_bler < 1.0:
            raise ConfigError(f"target_bler must lie in (0, 1), got {target_bler}")
        self.target_bler = float(target_bler)

    def __repr__(self) -> str:
        return f"FiniteLengthLink(channel={self.channel!r}, target_bler={self.target_bler}, residual_ber={self.residual_ber})"

    def capacity_bits(self, snr_db: float, n_channel_uses: int) -> int:
        """floor(normal approximation) bits per image at the target block error rate."""
        return int(math.floor(self.chan.normal_approximation_bits(check_snr_db(snr_db), n_channel_uses,
                                                                   self.target_bler)))

    def _outage(self, bits: int, n_channel_uses: int, snr_db: float, gen: torch.Generator) -> bool:
        return False
