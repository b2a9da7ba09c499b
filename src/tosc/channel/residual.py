"""Residual bit errors: flip received bits independently with a given probability.

A decoded codeword that passes its parity checks is taken as correct; real links still
deliver occasional wrong bits (undetected errors, or a deliberately weaker link in a
reliability study). :func:`flip_bits` models them as a binary symmetric channel after
decoding; :class:`tosc.channel.digital.DigitalLink` and :class:`tosc.channel.ideal.IdealLink`
apply it through their ``residual_ber`` option.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import ConfigError

__all__ = ["flip_bits"]


def flip_bits(bits: np.ndarray, probability: float,
              generator: torch.Generator | None = None) -> tuple[np.ndarray, int]:
    """Flip each bit of ``bits`` ([L] 0/1) with ``probability`` in [0, 0.5].

    Returns (new [L] uint8 array, number of bits flipped). Draws from ``generator``.
    """
    p = float(probability)
    if math.isnan(p) or not 0.0 <= p <= 0.5:
        raise ConfigError(f"bit flip probability must lie in [0, 0.5], got {probability}")
    bits = np.asarray(bits, dtype=np.uint8)
    if bits.ndim != 1:
        raise ConfigError(f"bits must be 1-D, got shape {bits.shape}")
    if p == 0.0 or bits.size == 0:
        return bits.copy(), 0
    mask = (torch.rand(bits.size, generator=generator, dtype=torch.float64) < p).numpy()
    return bits ^ mask.astype(np.uint8), int(mask.sum())
