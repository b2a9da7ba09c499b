"""The ideal (capacity-bound) link: bits up to k * C arrive without error.

Shown beside the real link in every comparison: ``C = log2(1 + SNR)`` bits per complex
channel use on AWGN, so k channel uses carry ``floor(k log2(1 + SNR))`` bits. On Rayleigh
fading with perfect receiver CSI the budget is the ergodic capacity E[log2(1 + |h|^2 SNR)]:
achievable on fast fading, only an average on block fading, where an image whose own
capacity k log2(1 + |h|^2 SNR) is below its payload is in outage (``ok`` False, bits zeroed).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from ..errors import ConfigError, DoesNotFitError
from .conventions import check_channel_kind, check_snr_db, ideal_bit_budget
from .digital import LinkOutput, ReceivedPayload, _as_bit_arrays
from .fading import complex_normal
from .residual import flip_bits

__all__ = ["IdealLink"]


class IdealLink:
    """Error-free delivery of up to the capacity budget per image.

    channel: ``awgn``, ``rayleigh-fast`` or ``rayleigh-block`` (see the module docstring).
    residual_ber: optional bit flips after delivery (as in :class:`DigitalLink`).
    """

    def __init__(self, channel: str = "awgn", *, residual_ber: float = 0.0) -> None:
        self.channel = check_channel_kind(channel)
        if math.isnan(residual_ber) or not 0.0 <= residual_ber <= 0.5:
            raise ConfigError(f"residual_ber must lie in [0, 0.5], got {residual_ber}")
        self.residual_ber = float(residual_ber)

    def __repr__(self) -> str:
        return f"IdealLink(channel={self.channel!r}, residual_ber={self.residual_ber})"

    def capacity_bits(self, snr_db: float, n_channel_uses: int) -> int:
        """floor(k * C) bits per image (C: AWGN or ergodic Rayleigh capacity per use)."""
        return ideal_bit_budget(n_channel_uses, snr_db, self.channel)

    def transmit(self, payloads: Sequence[np.ndarray | bytes], *, snr_db: float, n_channel_uses: int,
                 generator: torch.Generator | None = None, seed: int | None = None) -> LinkOutput:
        """Deliver each payload (1-D 0/1 array or bytes) of at most :meth:`capacity_bits` bits.

        Raises :class:`DoesNotFitError` for a longer payload. Each image is charged the
        channel uses its payload needs, ceil(L / C), at most ``n_channel_uses``.
        """
        snr_db = check_snr_db(snr_db)
        if generator is None:
            generator = torch.Generator().manual_seed(0 if seed is None else int(seed))
        bits_in = _as_bit_arrays(payloads)
        budget = self.capacity_bits(snr_db, n_channel_uses)
        for i, b in enumerate(bits_in):
            if b.size > budget:
                raise DoesNotFitError(f"payload {i} has {b.size} bits; the capacity of {n_channel_uses} channel "
                                      f"uses at {snr_db} dB ({self.channel}) is {budget} bits")
        per_use = budget / n_channel_uses if n_channel_uses else 0.0
        snr = 10.0 ** (snr_db / 10.0)
        gains = None
        if self.channel == "rayleigh-block":
            gains = complex_normal((len(bits_in),), generator).abs().square().double().numpy()
        images = []
        for i, b in enumerate(bits_in):
            uses = min(n_channel_uses, math.ceil(b.size / per_use)) if b.size else 0
            ok = True
            if gains is not None and b.size:
                ok = b.size <= math.floor(n_channel_uses * math.log2(1.0 + gains[i] * snr))
            received = b.copy() if ok else np.zeros_like(b)
            flips = 0
            if ok and self.residual_ber > 0 and received.size:
                received, flips = flip_bits(received, self.residual_ber, generator)
            images.append(ReceivedPayload(
                bits=received, ok=ok, payload_bits=int(b.size), n_channel_uses=int(uses),
                n_codewords=1 if b.size else 0, n_failed_codewords=0 if ok else 1,
                codeword_ok=np.array([ok] if b.size else [], dtype=bool),
                n_bit_errors=int((received != b).sum()), residual_flips=int(flips)))
        return LinkOutput(images=images, mode="ideal", channel=self.channel, snr_db=snr_db,
                          n_channel_uses=int(n_channel_uses), capacity_bits=budget)
