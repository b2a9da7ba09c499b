"""The finite-blocklength limit: the normal approximation of Polyanskiy, Poor and Verdu (2010).

For n complex channel uses at block error rate eps the largest number of information bits is
about ``n C - sqrt(n V) Q^-1(eps) + log2(n) / 2`` (C capacity, V dispersion, both per channel
use, in bits and bits^2), where

- AWGN at SNR P: C = log2(1 + P), V = P (P + 2) / (P + 1)^2 (log2 e)^2;
- fast Rayleigh fading with receiver CSI (Polyanskiy and Verdu 2011, "Scalar coherent fading
  channel: dispersion analysis"): C = E[log2(1 + g P)],
  V = Var[log2(1 + g P)] + E[V_awgn(g P)], g = |h|^2 ~ Exp(1);
- block (quasi-static) Rayleigh fading, one g for the whole block (Yang, Durisi, Koch and
  Polyanskiy 2014): eps = E_g[Q((n C(g P) - B + log2(n)/2) / sqrt(n V_awgn(g P)))], solved
  for B; at large n it tends to the outage capacity n log2(1 + g_eps P), g_eps = -ln(1 - eps).

Expectations over g use Gauss-Laguerre quadrature (fast fading) or a fine grid in g
(block fading, where the small-g tail decides). All functions take SNR in dB and return bits.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import optimize, special, stats

from ..errors import ConfigError
from .conventions import check_snr_db, db_to_linear

__all__ = [
    "awgn_dispersion",
    "awgn_normal_approximation_bits",
    "fast_fading_normal_approximation_bits",
    "block_fading_normal_approximation_bits",
]

_LOG2E_SQ = math.log2(math.e) ** 2


def awgn_dispersion(snr: np.ndarray | float) -> np.ndarray | float:
    """V = P (P + 2) / (P + 1)^2 (log2 e)^2 in bits^2 per complex channel use (P linear)."""
    snr = np.asarray(snr, dtype=np.float64)
    return (snr * (snr + 2.0) / (snr + 1.0) ** 2 * _LOG2E_SQ)[()]


def _check(n_channel_uses: int, target_bler: float) -> tuple[int, float]:
    if isinstance(n_channel_uses, bool) or int(n_channel_uses) != n_channel_uses or n_channel_uses < 0:
        raise ConfigError(f"n_channel_uses must be a non-negative integer, got {n_channel_uses!r}")
    if not 0.0 < float(target_bler) < 1.0:
        raise ConfigError(f"target_bler must lie in (0, 1), got {target_bler}")
    return int(n_channel_uses), float(target_bler)


def _na(n: int, capacity: float, dispersion: float, eps: float) -> float:
    if n < 1:
        return 0.0
    bits = n * capacity - math.sqrt(n * dispersion) * stats.norm.isf(eps) + 0.5 * math.log2(n)
    return max(0.0, bits)


def awgn_normal_approximation_bits(snr_db: float, n_channel_uses: int, target_bler: float = 1e-3) -> float:
    """Normal approximation for complex AWGN (the issue's formula)."""
    n, eps = _check(n_channel_uses, target_bler)
    p = float(db_to_linear(check_snr_db(snr_db)))
    return _na(n, math.log2(1.0 + p), float(awgn_dispersion(p)), eps)


@functools.lru_cache(maxsize=1)
def _laguerre(order: int = 80) -> tuple[np.ndarray, np.ndarray]:
    return special.roots_laguerre(order)


def fast_fading_normal_approximation_bits(snr_db: float, n_channel_uses: int, target_bler: float = 1e-3) -> float:
    """Normal approximation for i.i.d. Rayleigh fading per symbol with receiver CSI."""
    n, eps = _check(n_channel_uses, target_bler)
    p = float(db_to_linear(check_snr_db(snr_db)))
    g, w = _laguerre()
    c = np.log2(1.0 + g * p)
    mean_c = float((w * c).sum())
    var_c = float((w * c * c).sum()) - mean_c ** 2
    dispersion = var_c + float((w * awgn_dispersion(g * p)).sum())
    return _na(n, mean_c, dispersion, eps)


def block_fading_normal_approximation_bits(snr_db: float, n_channel_uses: int, target_bler: float = 1e-3) -> float:
    """Normal approximation for one Rayleigh gain per block, averaged over the gain."""
    n, eps = _check(n_channel_uses, target_bler)
    if n < 1:
        return 0.0
    p = float(db_to_linear(check_snr_db(snr_db)))
    # g from 1e-12 to 50 on a log grid: the error probability is decided at small g
    g = np.logspace(-12, math.log10(50.0), 6000)
    weight = np.exp(-g) * np.gradient(g)
    weight /= weight.sum() + math.exp(-50.0)
    cap = n * np.log2(1.0 + g * p) + 0.5 * math.log2(n)
    spread = np.sqrt(n * awgn_dispersion(g * p)) + 1e-300

    def error(bits: float) -> float:
        return float((weight * stats.norm.sf((cap - bits) / spread)).sum()) - eps

    upper = n * math.log2(1.0 + p) + 10.0
    if error(0.0) > 0:
        return 0.0
    return float(optimize.brentq(error, 0.0, upper, xtol=1e-3))
