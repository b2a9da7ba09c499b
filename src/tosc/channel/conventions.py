"""Transmission conventions in one place (docs/channel.md), tested once.

Units used everywhere in :mod:`tosc.channel`:

- Complex baseband. The average symbol energy is ``Es = 1`` per complex channel use.
- ``snr_db`` is Es/N0 per complex symbol in dB; the noise is ``w ~ CN(0, N0)``, i.e.
  variance ``N0/2`` per real dimension, so ``N0 = 10**(-snr_db/10)``.
- The channel bandwidth ratio (CBR) is ``rho = k / n``: ``k`` complex channel uses per
  image, ``n = C*H*W`` real source values. ``k = floor(rho * n)``.
- Digital bit budget per image: ``B = floor(k * r_c * log2(M))`` information bits
  (``log2(M)`` = bits per symbol, never the constellation size ``M``).
- Ideal (capacity) budget: ``floor(k * log2(1 + SNR))`` bits.
"""

from __future__ import annotations

import math
from fractions import Fraction
from numbers import Integral, Real
from typing import Sequence

import numpy as np
from scipy import special

from .. import registry
from ..errors import ConfigError, UnknownNameError

__all__ = [
    "CSI_MODES",
    "check_channel_kind",
    "check_csi",
    "db_to_linear",
    "linear_to_db",
    "check_snr_db",
    "snr_db_to_n0",
    "ebno_db_to_n0",
    "ebno_db_to_snr_db",
    "snr_db_to_ebno_db",
    "capacity_bits_per_use",
    "ergodic_rayleigh_capacity_bits_per_use",
    "parse_cbr",
    "source_values",
    "channel_uses",
    "bit_budget",
    "ideal_bit_budget",
]



CSI_MODES = ("perfect", "none")
"""Receiver knowledge of h: ``perfect`` (equalised) or ``none`` (the raw y = h x + w)."""


def check_channel_kind(kind: str) -> str:
    """Return ``kind`` if the registry names it as a channel (``tosc.channel.fading`` registers
    one class per kind), else raise :class:`UnknownNameError`."""
    from . import fading  # noqa: F401  (registers the channels; imported late: it imports this module)

    known = registry.names("channel")
    if kind not in known:
        raise UnknownNameError(f"unknown channel {kind!r}; known: {', '.join(known)}")
    return kind


def check_csi(csi: str) -> str:
    """Return ``csi`` if it is ``'perfect'`` or ``'none'``, else raise :class:`ConfigError`."""
    if csi not in CSI_MODES:
        raise ConfigError(f"csi must be one of {', '.join(CSI_MODES)}, got {csi!r}")
    return csi


def db_to_linear(value_db: float | np.ndarray) -> float | np.ndarray:
    """10**(value_db/10): a power ratio in dB to linear scale."""
    return np.power(10.0, np.asarray(value_db, dtype=np.float64) / 10.0)[()]


def linear_to_db(value: float | np.ndarray) -> float | np.ndarray:
    """10*log10(value): a linear power ratio to dB (``-inf`` for 0)."""
    with np.errstate(divide="ignore"):
        return (10.0 * np.log10(np.asarray(value, dtype=np.float64)))[()]


def check_snr_db(snr_db: float, name: str = "snr_db") -> float:
    """Return ``snr_db`` as a float; raise :class:`ConfigError` unless it is a finite real number."""
    if isinstance(snr_db, bool) or not isinstance(snr_db, (Real, np.floating, np.integer)):
        raise ConfigError(f"{name} must be a real number in dB, got {snr_db!r}")
    value = float(snr_db)
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be finite, got {value}")
    return value


def snr_db_to_n0(snr_db: float, es: float = 1.0) -> float:
    """Noise power N0 per complex symbol (variance N0/2 per real dimension) for Es/N0 = ``snr_db``."""
    return float(es) / float(db_to_linear(check_snr_db(snr_db)))


def ebno_db_to_n0(ebno_db: float, bits_per_symbol: int, code_rate: float = 1.0, es: float = 1.0) -> float:
    """N0 for a given Eb/N0 in dB: ``N0 = Es / (Eb/N0 * r_c * bits_per_symbol)``.

    Same formula as Sionna's ``ebnodb2no(ebno_db, num_bits_per_symbol, coderate)``.
    ``bits_per_symbol`` is log2(M) (4 for 16-QAM), NOT the constellation size M: passing
    16 for 16-QAM would silently make the noise 6 dB too weak, hence the check below.
    """
    _check_bits_per_symbol(bits_per_symbol)
    if not 0.0 < code_rate <= 1.0:
        raise ConfigError(f"code_rate must lie in (0, 1], got {code_rate}")
    ebno = float(db_to_linear(check_snr_db(ebno_db, "ebno_db")))
    return float(es) / (ebno * code_rate * bits_per_symbol)


def ebno_db_to_snr_db(ebno_db: float, bits_per_symbol: int, code_rate: float = 1.0) -> float:
    """Es/N0 in dB for Eb/N0 in dB: ``snr_db = ebno_db + 10 log10(r_c * bits_per_symbol)``."""
    _check_bits_per_symbol(bits_per_symbol)
    return check_snr_db(ebno_db, "ebno_db") + 10.0 * math.log10(code_rate * bits_per_symbol)


def snr_db_to_ebno_db(snr_db: float, bits_per_symbol: int, code_rate: float = 1.0) -> float:
    """Eb/N0 in dB for Es/N0 in dB (inverse of :func:`ebno_db_to_snr_db`)."""
    _check_bits_per_symbol(bits_per_symbol)
    return check_snr_db(snr_db) - 10.0 * math.log10(code_rate * bits_per_symbol)


def _check_bits_per_symbol(bits_per_symbol: int) -> None:
    if isinstance(bits_per_symbol, bool) or not isinstance(bits_per_symbol, Integral) or bits_per_symbol < 1:
        raise ConfigError(f"bits_per_symbol must be a positive integer, got {bits_per_symbol!r}")
    if bits_per_symbol > 12:
        raise ConfigError(
            f"bits_per_symbol={bits_per_symbol} is implausible: pass log2(M) (e.g. 4 for 16-QAM), "
            "not the constellation size M"
        )


def capacity_bits_per_use(snr_db: float | np.ndarray) -> float | np.ndarray:
    """AWGN capacity log2(1 + SNR) in bits per complex channel use, SNR = Es/N0."""
    if np.ndim(snr_db) == 0:
        check_snr_db(float(snr_db))
    return np.log2(1.0 + db_to_linear(snr_db))[()]


def ergodic_rayleigh_capacity_bits_per_use(snr_db: float) -> float:
    """E[log2(1 + |h|^2 SNR)] with h ~ CN(0, 1): ``exp(1/SNR) E1(1/SNR) / ln 2`` bits per use.

    This is the capacity of fast Rayleigh fading with perfect receiver CSI, and the
    mean (not a guaranteed) rate of block fading.
    """
    snr = float(db_to_linear(check_snr_db(snr_db)))
    x = 1.0 / snr
    if x < 500.0:
        value = math.exp(x) * float(special.exp1(x))
    else:  # asymptotic series of e^x E1(x), avoids overflow at very low SNR
        value = 1.0 / x - 1.0 / x**2 + 2.0 / x**3 - 6.0 / x**4
    return value / math.log(2.0)


def parse_cbr(cbr: str | float | Fraction) -> Fraction:
    """Channel bandwidth ratio from ``'1/16'``, ``'0.0625'``, ``0.0625`` or a Fraction.

    Returns an exact :class:`fractions.Fraction` so that ``k = floor(cbr * n)`` does not
    suffer from binary rounding (``1/12 * 3072`` is exactly 256). Raises
    :class:`ConfigError` for zero, negative, non-finite or unparsable values.
    """
    if isinstance(cbr, Fraction):
        value = cbr
    elif isinstance(cbr, str):
        text = cbr.strip()
        try:
            if "/" in text:
                num, den = text.split("/", 1)
                value = Fraction(Fraction(num.strip()), Fraction(den.strip()))
            else:
                value = Fraction(text)
        except (ValueError, ZeroDivisionError):
            raise ConfigError(f"cbr must look like '1/16' or '0.0625', got {cbr!r}") from None
    elif isinstance(cbr, (Real, np.floating, np.integer)) and not isinstance(cbr, bool):
        if not math.isfinite(float(cbr)):
            raise ConfigError(f"cbr must be finite, got {cbr!r}")
        value = Fraction(float(cbr)).limit_denominator(1 << 20)
    else:
        raise ConfigError(f"cbr must be a number or a string like '1/16', got {cbr!r}")
    if value <= 0:
        raise ConfigError(f"cbr (channel uses per source value) must be positive, got {cbr!r}")
    return value


def source_values(image_shape: Sequence[int]) -> int:
    """n = C*H*W real source values of one image of shape (C, H, W)."""
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ConfigError(f"image_shape must be (C, H, W) with positive sizes, got {tuple(image_shape)}")
    return shape[0] * shape[1] * shape[2]


def channel_uses(cbr: str | float | Fraction, image_shape: Sequence[int]) -> int:
    """k = floor(cbr * C*H*W) complex channel uses per image; at least 1 or :class:`ConfigError`."""
    ratio = parse_cbr(cbr)
    n = source_values(image_shape)
    k = math.floor(ratio * n)
    if k < 1:
        raise ConfigError(f"cbr {cbr} gives {ratio * n} < 1 channel use for an image of {n} values")
    return int(k)


def bit_budget(n_channel_uses: int, code_rate: float, bits_per_symbol: int) -> int:
    """B = floor(k * r_c * log2(M)) information bits carried by ``n_channel_uses`` symbols."""
    _check_bits_per_symbol(bits_per_symbol)
    if not 0.0 < code_rate <= 1.0:
        raise ConfigError(f"code_rate must lie in (0, 1], got {code_rate}")
    k = _check_uses(n_channel_uses)
    return int(math.floor(Fraction(code_rate).limit_denominator(1 << 16) * k * bits_per_symbol))


def ideal_bit_budget(n_channel_uses: int, snr_db: float, channel="awgn") -> int:
    """floor(k * C) bits: C = log2(1+SNR) for AWGN, the ergodic capacity for Rayleigh fading.

    channel: a name or a :class:`~tosc.channel.fading.FadingChannel` (which knows its capacity)."""
    from .fading import FadingChannel

    k = _check_uses(n_channel_uses)
    chan = channel if isinstance(channel, FadingChannel) else FadingChannel(check_channel_kind(channel))
    per_use = chan.capacity_bits_per_use(check_snr_db(snr_db))
    # the tiny slack keeps exact cases (e.g. SNR = 3 -> 2 bits/use) from rounding down
    return int(math.floor(k * per_use * (1.0 + 1e-12)))


def _check_uses(n_channel_uses: int) -> int:
    if isinstance(n_channel_uses, bool) or not isinstance(n_channel_uses, (Integral, np.integer)):
        raise ConfigError(f"n_channel_uses must be an integer, got {n_channel_uses!r}")
    if n_channel_uses < 0:
        raise ConfigError(f"n_channel_uses must be >= 0, got {n_channel_uses}")
    return int(n_channel_uses)
