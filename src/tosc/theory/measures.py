"""Input checks and information measures of a joint distribution p(x, y).

All measures are in bits. ``p_xy`` is always a 2-D array |X| x |Y| of probabilities
summing to 1; ``distortion`` is |X| x |Xhat| (|Xhat| may exceed |X|).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError, DataError

__all__ = [
    "LN2",
    "check_joint",
    "check_distortion",
    "check_nonnegative",
    "check_mapping",
    "entropy_bits",
    "mutual_information_bits",
    "min_distortion",
    "zero_rate_distortion",
]

LN2 = math.log(2.0)
SUM_ATOL = 1e-6  # how far sum(p_xy) may be from 1 (float32 tables summed in float64 pass)


def _as_float_matrix(array: object, name: str) -> np.ndarray:
    try:
        out = np.asarray(array, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{name} must be a numeric array, got {type(array).__name__}") from None
    if out.ndim != 2:
        raise DataError(f"{name} must be a 2-D array, got shape {out.shape}")
    if out.shape[0] == 0 or out.shape[1] == 0:
        raise DataError(f"{name} must not be empty, got shape {out.shape}")
    if not np.isfinite(out).all():
        raise DataError(f"{name} has non-finite entries (nan or inf)")
    return out


def check_joint(p_xy: object, name: str = "p_xy") -> np.ndarray:
    """``p_xy`` as float64 |X| x |Y|, after checking it is a probability table.

    Raises DataError for a wrong shape, non-finite or negative entries, or a sum other than 1.
    """
    p = _as_float_matrix(p_xy, name)
    if p.min() < 0.0:
        raise DataError(f"{name} has negative entries (min {p.min():.3g}); probabilities must be >= 0")
    total = float(p.sum())
    if abs(total - 1.0) > SUM_ATOL:
        raise DataError(f"{name} sums to {total:.9g}, not 1; normalise it first ({name} / {name}.sum())")
    return p


def check_distortion(distortion: object, n_x: int, name: str = "distortion") -> np.ndarray:
    """``distortion`` as float64 |X| x |Xhat|: finite, >= 0, one row per source symbol."""
    d = _as_float_matrix(distortion, name)
    if d.shape[0] != n_x:
        raise DataError(
            f"{name} has {d.shape[0]} rows but p_xy has {n_x}; both are indexed by the source symbol x "
            f"(p_xy is |X| x |Y|, {name} is |X| x |Xhat|)"
        )
    if d.min() < 0.0:
        raise DataError(f"{name} has negative entries (min {d.min():.3g}); distortions must be >= 0")
    return d


def check_nonnegative(value: object, name: str) -> float:
    """A finite float >= 0, else ConfigError naming the parameter."""
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(out) or out < 0.0:
        raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
    return out


def check_mapping(mapping: object, n_x: int, n_xhat: int, name: str = "init") -> np.ndarray:
    """A conditional distribution p(xhat|x), |X| x |Xhat|, rows summing to 1."""
    q = _as_float_matrix(mapping, name)
    if q.shape != (n_x, n_xhat):
        raise DataError(f"{name} must have shape ({n_x}, {n_xhat}) (|X| x |Xhat|), got {q.shape}")
    if q.min() < 0.0:
        raise DataError(f"{name} has negative entries (min {q.min():.3g})")
    sums = q.sum(axis=1)
    if np.abs(sums - 1.0).max() > SUM_ATOL:
        worst = int(np.abs(sums - 1.0).argmax())
        raise DataError(f"{name} row {worst} sums to {sums[worst]:.9g}; each row p(.|x) must sum to 1")
    return q


def entropy_bits(p: np.ndarray) -> float:
    """Shannon entropy of a probability array (any shape), in bits."""
    p = np.asarray(p, dtype=np.float64).ravel()
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def mutual_information_bits(p_xy: np.ndarray) -> float:
    """I(X;Y) of a joint table |X| x |Y|, in bits (no checks; see :func:`check_joint`)."""
    p = np.asarray(p_xy, dtype=np.float64)
    px = p.sum(axis=1, keepdims=True)
    py = p.sum(axis=0, keepdims=True)
    mask = p > 0
    ratio = p[mask] / (px * py)[mask]
    return float(max((p[mask] * np.log2(ratio)).sum(), 0.0))


def min_distortion(p_x: np.ndarray, distortion: np.ndarray) -> float:
    """The least achievable E d: every x sent to its nearest reconstruction (rate up to H(X))."""
    return float(np.asarray(p_x) @ np.asarray(distortion).min(axis=1))


def zero_rate_distortion(p_x: np.ndarray, distortion: np.ndarray) -> float:
    """E d at rate 0: every x sent to the one reconstruction that is best on average."""
    return float((np.asarray(p_x) @ np.asarray(distortion)).min())
