"""Closed-form rate-distortion and information-bottleneck results (docs/theory.md).

Everything is in bits; distortions are Hamming error probabilities or mean squared errors;
``lam_bits`` is bits of rate per unit distortion; ``beta`` is dimensionless. These are the
values the numerical solver in :mod:`tosc.theory.solver` is checked against.

The vector Gaussian case (several independent components, only some relevant to Y) is
derived in :func:`vector_gaussian_rate`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from ..errors import ConfigError
from .measures import LN2
from .solver import InfeasibleConstraintsError

__all__ = [
    "binary_entropy",
    "inverse_binary_entropy",
    "binary_conv",
    "binary_hamming_rate",
    "binary_hamming_lam_bits",
    "mary_hamming_rate",
    "mary_hamming_lam_bits",
    "gaussian_rate",
    "gaussian_lam_bits",
    "dsbs_semantic_info",
    "dsbs_rate",
    "dsbs_critical_beta",
    "dsbs_lagrangian",
    "deterministic_lagrangian",
    "gaussian_ib_semantic_info",
    "gaussian_ib_rate",
    "gaussian_ib_lagrangian",
    "gaussian_joint_rate",
    "binary_pair_rate",
    "binary_pair_lagrangian",
    "UncodedAWGN",
    "uncoded_awgn",
    "VectorGaussianSolution",
    "vector_gaussian_lagrangian",
    "vector_gaussian_rate",
]


# ----------------------------------------------------------------------------- helpers


def _prob(value: float, name: str, low: float = 0.0, high: float = 1.0) -> float:
    value = float(value)
    if not (low <= value <= high) or math.isnan(value):
        raise ConfigError(f"{name} must lie in [{low}, {high}], got {value}")
    return value


def _positive(value: float, name: str) -> float:
    value = float(value)
    if not (value > 0.0 and math.isfinite(value)):
        raise ConfigError(f"{name} must be a finite number > 0, got {value}")
    return value


def _nonneg(value: float, name: str) -> float:
    value = float(value)
    if not (value >= 0.0 and math.isfinite(value)):
        raise ConfigError(f"{name} must be a finite number >= 0, got {value}")
    return value


def _rho2(value: float) -> float:
    value = float(value)
    if not 0.0 <= value < 1.0:
        raise ConfigError(f"rho2 (squared correlation of X and Y) must lie in [0, 1), got {value}")
    return value


def binary_entropy(p: float) -> float:
    """h(p) in bits (h(0) = h(1) = 0)."""
    p = _prob(p, "p")
    if p in (0.0, 1.0):
        return 0.0
    return -p * math.log2(p) - (1.0 - p) * math.log2(1.0 - p)


def inverse_binary_entropy(h: float) -> float:
    """The p in [0, 1/2] with h(p) = h, for h in [0, 1]."""
    h = _prob(h, "h")
    if h == 0.0:
        return 0.0
    if h == 1.0:
        return 0.5
    return brentq(lambda p: binary_entropy(p) - h, 1e-300, 0.5, xtol=1e-15, rtol=1e-15, maxiter=500)


def binary_conv(a: float, b: float) -> float:
    """a * b = a(1 - b) + b(1 - a): the crossover of two binary symmetric channels in series."""
    return a * (1.0 - b) + b * (1.0 - a)


# ----------------------------------------------------------------- pixel weight only (beta = 0)


def binary_hamming_rate(distortion: float) -> float:
    """Binary symmetric source, Hamming distortion: R(D) = 1 - h(D) for D < 1/2, else 0."""
    d = _prob(distortion, "distortion")
    return 0.0 if d >= 0.5 else 1.0 - binary_entropy(d)


def binary_hamming_lam_bits(distortion: float) -> float:
    """The multiplier that reaches R(D) of the binary source: log2((1 - D) / D) (lam_nats / ln 2)."""
    d = _prob(distortion, "distortion")
    if not 0.0 < d < 0.5:
        raise ConfigError(f"distortion must lie in (0, 1/2), got {d}")
    return math.log2((1.0 - d) / d)


def mary_hamming_rate(m: int, distortion: float) -> float:
    """Uniform m-ary source, Hamming: R(D) = log2 m - h(D) - D log2(m - 1) for D < 1 - 1/m, else 0."""
    if int(m) != m or m < 2:
        raise ConfigError(f"m must be an integer >= 2, got {m}")
    d = _prob(distortion, "distortion")
    if d >= 1.0 - 1.0 / m:
        return 0.0
    return math.log2(m) - binary_entropy(d) - d * math.log2(m - 1)


def mary_hamming_lam_bits(m: int, distortion: float) -> float:
    """log2((1 - D)(m - 1) / D): the multiplier of the m-ary point at distortion D."""
    if int(m) != m or m < 2:
        raise ConfigError(f"m must be an integer >= 2, got {m}")
    d = _prob(distortion, "distortion")
    if not 0.0 < d < 1.0 - 1.0 / m:
        raise ConfigError(f"distortion must lie in (0, 1 - 1/m), got {d}")
    return math.log2((1.0 - d) * (m - 1) / d)


def gaussian_rate(variance: float, distortion: float) -> float:
    """Gaussian source, squared error: R(D) = max(0, 0.5 log2(sigma^2 / D))."""
    s = _positive(variance, "variance")
    d = _positive(distortion, "distortion")
    return max(0.0, 0.5 * math.log2(s / d))


def gaussian_lam_bits(distortion: float) -> float:
    """-dR/dD of the Gaussian R(D) at D < sigma^2: 1 / (2 ln 2 D) bits per unit squared error."""
    return 1.0 / (2.0 * LN2 * _positive(distortion, "distortion"))


# ----------------------------------------------------------- semantic weight only (lam = 0)


def _eps(eps: float) -> float:
    eps = float(eps)
    if not 0.0 <= eps < 0.5:
        raise ConfigError(f"eps (crossover of Y given X) must lie in [0, 1/2), got {eps}")
    return eps


def dsbs_semantic_info(eps: float, rate_bits: float) -> float:
    """Doubly symmetric binary source (Y = X xor Bern(eps)), best I(Xhat;Y) at rate R:
    1 - h(eps * h^-1(1 - R)) (Mrs Gerber's lemma), for R in [0, 1]."""
    eps = _eps(eps)
    r = _prob(rate_bits, "rate_bits")
    return 1.0 - binary_entropy(binary_conv(eps, inverse_binary_entropy(1.0 - r)))


def dsbs_rate(eps: float, min_semantic_info_bits: float) -> float:
    """Least rate with I(Xhat;Y) >= I_0 for the doubly symmetric binary source:
    R = 1 - h(delta), delta = (h^-1(1 - I_0) - eps) / (1 - 2 eps); I_0 <= I(X;Y) = 1 - h(eps)."""
    eps = _eps(eps)
    i0 = _nonneg(min_semantic_info_bits, "min_semantic_info_bits")
    i_xy = 1.0 - binary_entropy(eps)
    if i0 > i_xy + 1e-12:
        raise InfeasibleConstraintsError(f"I_0 = {i0} exceeds I(X;Y) = {i_xy:.6f} bits")
    delta = (inverse_binary_entropy(min(1.0 - i0, 1.0)) - eps) / (1.0 - 2.0 * eps)
    return 1.0 - binary_entropy(min(max(delta, 0.0), 0.5))


def dsbs_critical_beta(eps: float) -> float:
    """beta_c = 1 / (1 - 2 eps)^2: below it the trivial solution (R = 0) is optimal."""
    eps = _eps(eps)
    return 1.0 / (1.0 - 2.0 * eps) ** 2


def dsbs_lagrangian(eps: float, beta: float) -> tuple[float, float]:
    """(R, I(Xhat;Y)) minimising R - beta I(Xhat;Y) for the doubly symmetric binary source.

    On the curve R = 1 - h(delta), I = 1 - h(eps * delta) the stationarity condition is
    h'(delta) = beta (1 - 2 eps) h'(eps * delta), with h'(p) = log2((1 - p) / p).
    """
    eps = _eps(eps)
    beta = _nonneg(beta, "beta")
    if beta <= dsbs_critical_beta(eps) or eps == 0.0 and beta <= 1.0:
        return 0.0, 0.0
    if eps == 0.0:  # Y = X: R - beta R is minimised at R = 1
        return 1.0, 1.0

    def dh(p: float) -> float:
        return math.log2((1.0 - p) / p)

    def slope(delta: float) -> float:
        return -dh(delta) + beta * (1.0 - 2.0 * eps) * dh(binary_conv(eps, delta))

    delta = brentq(slope, 1e-300, 0.5 - 1e-12, xtol=1e-15, rtol=1e-15, maxiter=500)
    return 1.0 - binary_entropy(delta), 1.0 - binary_entropy(binary_conv(eps, delta))


def deterministic_lagrangian(label_entropy_bits: float, beta: float) -> tuple[float, float]:
    """Y a deterministic function of X: I(Xhat;Y) = min(R, H(Y)), so R - beta I(Xhat;Y) is
    minimised at R = H(Y) for beta > 1 and at R = 0 for beta < 1 (any R in [0, H(Y)] at 1)."""
    h_y = _nonneg(label_entropy_bits, "label_entropy_bits")
    beta = _nonneg(beta, "beta")
    if beta == 1.0:
        raise ConfigError("at beta = 1 every rate in [0, H(Y)] is optimal; pick beta != 1")
    return (h_y, h_y) if beta > 1.0 else (0.0, 0.0)


def gaussian_ib_semantic_info(rho2: float, rate_bits: float) -> float:
    """Jointly Gaussian (X, Y) with squared correlation rho^2: the best I(Xhat;Y) at rate R,
    -0.5 log2(1 - rho^2 + rho^2 2^(-2R))."""
    rho2 = _rho2(rho2)
    r = _nonneg(rate_bits, "rate_bits")
    return -0.5 * math.log2(1.0 - rho2 + rho2 * 2.0 ** (-2.0 * r))


def gaussian_ib_rate(rho2: float, min_semantic_info_bits: float) -> float:
    """Inverse of :func:`gaussian_ib_semantic_info`: R = 0.5 log2(rho^2 / (2^(-2 I_0) - 1 + rho^2))."""
    rho2 = _rho2(rho2)
    i0 = _nonneg(min_semantic_info_bits, "min_semantic_info_bits")
    i_xy = -0.5 * math.log2(1.0 - rho2) if rho2 > 0 else 0.0
    if i0 == 0.0:
        return 0.0
    if i0 >= i_xy:
        raise InfeasibleConstraintsError(f"I_0 = {i0} must be below I(X;Y) = {i_xy:.6f} bits (reached only at R = inf)")
    return 0.5 * math.log2(rho2 / (2.0 ** (-2.0 * i0) - 1.0 + rho2))


def gaussian_ib_lagrangian(rho2: float, beta: float) -> tuple[float, float]:
    """(R, I(Xhat;Y)) minimising R - beta I(Xhat;Y) for jointly Gaussian (X, Y):
    R = 0.5 log2(rho^2 (beta - 1) / (1 - rho^2)) for beta >= 1 / rho^2, else 0."""
    rho2 = _rho2(rho2)
    beta = _nonneg(beta, "beta")
    if rho2 == 0.0 or beta * rho2 <= 1.0:
        return 0.0, 0.0
    r = 0.5 * math.log2(rho2 * (beta - 1.0) / (1.0 - rho2))
    return r, gaussian_ib_semantic_info(rho2, r)


# ------------------------------------------------------------------ both constraints, scalar


def gaussian_joint_rate(variance: float, rho2: float, max_distortion: float, semantic_distortion_bits: float) -> float:
    """Scalar Gaussian, Y = X + N (rho^2 = sigma^2 / (sigma^2 + sigma_N^2)):

        R(D_p, D_s) = max{ 0.5 log2(sigma^2 / D_p),  0.5 log2( rho^2 / ((1 - rho^2)(2^(2 D_s) - 1)) ) }

    clipped at 0; whichever constraint is tighter binds. D_s = I(X;Y) - I(Xhat;Y) in bits;
    D_s >= I(X;Y) = -0.5 log2(1 - rho^2) leaves only the pixel term; D_s = 0 needs R = inf.
    """
    s = _positive(variance, "variance")
    rho2 = _rho2(rho2)
    d_p = _positive(max_distortion, "max_distortion")
    d_s = _nonneg(semantic_distortion_bits, "semantic_distortion_bits")
    pixel = 0.5 * math.log2(s / d_p)
    i_xy = -0.5 * math.log2(1.0 - rho2)
    if rho2 == 0.0 or d_s >= i_xy:
        semantic = 0.0
    elif d_s == 0.0:
        semantic = math.inf
    else:
        semantic = 0.5 * math.log2(rho2 / ((1.0 - rho2) * (2.0 ** (2.0 * d_s) - 1.0)))
    return max(0.0, pixel, semantic)


@dataclass(frozen=True)
class UncodedAWGN:
    """A Gaussian source sent uncoded over a real AWGN channel, linear MMSE receiver.

    distortion: E (X - Xhat)^2 = sigma^2 / (1 + SNR). semantic_info_bits: I(Xhat;Y).
    rate_bits: I(X;Xhat) = 0.5 log2(1 + SNR), the rate a digital system would need for the
    same distortion (R(D) of the Gaussian)."""

    distortion: float
    semantic_info_bits: float
    rate_bits: float


def uncoded_awgn(snr_db: float, rho2: float, variance: float = 1.0) -> UncodedAWGN:
    """Uncoded analog transmission, one channel use per sample (docs/theory.md, channel check):
    Xhat = SNR / (1 + SNR) * (X + W) (scaled units), corr^2(Xhat, X) = SNR / (1 + SNR), so
    I(Xhat;Y) = -0.5 log2(1 - rho^2 SNR / (1 + SNR)) = gaussian_ib_semantic_info(rho^2, rate_bits)."""
    snr = 10.0 ** (float(snr_db) / 10.0)
    s = _positive(variance, "variance")
    rho2 = _rho2(rho2)
    corr2 = snr / (1.0 + snr)
    return UncodedAWGN(
        distortion=s / (1.0 + snr),
        semantic_info_bits=-0.5 * math.log2(1.0 - rho2 * corr2),
        rate_bits=0.5 * math.log2(1.0 + snr),
    )


def binary_pair_rate(max_distortion: float, min_semantic_info_bits: float) -> float:
    """Two independent uniform bits X = (X_1, X_2), Y = X_1, distortion = number of wrong bits.

    The discrete analogue of :func:`vector_gaussian_rate`: for any test channel,
    I(X;Xhat) >= (1 - h(D_1)) + (1 - h(D_2)) (chain rule and Fano, D_i = P(Xhat_i != X_i) <= 1/2)
    and I(Xhat;Y) <= 1 - h(D_1); independent binary symmetric test channels meet both. So
    R = min (1 - h(D_1)) + (1 - h(D_2)) s.t. D_1 + D_2 <= D_p, 1 - h(D_1) >= I_0. R(D) is
    convex and symmetric, so the even split D_1 = D_2 = D_p / 2 is optimal unless the
    semantic cap c = h^-1(1 - I_0) is smaller; then D_1 = c and D_2 = min(D_p - c, 1/2).
    """
    d_p = _nonneg(max_distortion, "max_distortion")
    i0 = _prob(min_semantic_info_bits, "min_semantic_info_bits")
    cap = inverse_binary_entropy(1.0 - i0)
    d1 = min(d_p / 2.0, cap, 0.5)
    d2 = min(d_p - d1, 0.5)
    return binary_hamming_rate(d1) + binary_hamming_rate(d2)


def _binary_lagrangian_part(lam_bits: float) -> float:
    """min over D in [0, 1/2] of (1 - h(D)) + lam D: at h'(D) = lam, D = 1 / (1 + 2^lam)."""
    d = 1.0 / (1.0 + 2.0 ** lam_bits)
    return binary_hamming_rate(d) + lam_bits * d


def binary_pair_lagrangian(lam_bits: float, beta: float) -> float:
    """The least F = I(X;Xhat) + lam E d - beta I(Xhat;Y) for :func:`binary_pair_rate`'s source.

    With Y = X_1, F >= (1 - beta) I(X_1;Xhat) + lam D_1 + [R_b(D_2) + lam D_2], where
    R_b(D) = 1 - h(D). For beta > 1 the first part is least at I(X_1;Xhat) = 1, D_1 = 0
    (value 1 - beta); for beta < 1 it is (1 - beta) min_D [R_b(D) + lam / (1 - beta) D].
    Independent binary symmetric test channels reach the bound. Returns F* in bits.
    """
    lam = _nonneg(lam_bits, "lam_bits")
    beta = _nonneg(beta, "beta")
    if beta >= 1.0:
        first = 1.0 - beta
    else:
        first = (1.0 - beta) * _binary_lagrangian_part(lam / (1.0 - beta))
    return first + _binary_lagrangian_part(lam)


# ------------------------------------------------------------------ vector Gaussian


@dataclass(frozen=True)
class VectorGaussianSolution:
    """Optimal allocation over independent Gaussian components (see :func:`vector_gaussian_rate`).

    Per component (arrays of length n): rates_bits r_i, distortions D_i = sigma_i^2 2^(-2 r_i),
    semantic_infos_bits I(Xhat_i;Y_i). Totals: rate_bits, distortion (sum of D_i, squared
    error summed over components), semantic_info_bits, semantic_distortion_bits (I(X;Y) -
    I(Xhat;Y)). Multipliers: lam_bits (theta = 2 ln2 lam_bits), beta (nu), water_level =
    1 / theta (inf when the pixel constraint is slack). binding: "none", "pixel",
    "semantic" or "both".
    """

    rates_bits: np.ndarray
    distortions: np.ndarray
    semantic_infos_bits: np.ndarray
    rate_bits: float
    distortion: float
    semantic_info_bits: float
    semantic_distortion_bits: float
    lam_bits: float
    beta: float
    water_level: float
    binding: str


def _vector_inputs(variances: object, rho2s: object) -> tuple[np.ndarray, np.ndarray]:
    s = np.atleast_1d(np.asarray(variances, dtype=np.float64))
    a = np.atleast_1d(np.asarray(rho2s, dtype=np.float64))
    if s.ndim != 1 or s.shape != a.shape or s.size == 0:
        raise ConfigError(f"variances and rho2s must be 1-D of the same length, got {s.shape} and {a.shape}")
    if not (np.isfinite(s).all() and (s > 0).all()):
        raise ConfigError("variances must be finite and > 0")
    if not (np.isfinite(a).all() and (a >= 0).all() and (a < 1).all()):
        raise ConfigError("rho2s must lie in [0, 1) (0: a component irrelevant to Y)")
    return s, a


def _response(s: np.ndarray, a: np.ndarray, theta: float, nu: float) -> np.ndarray:
    """t_i = D_i / sigma_i^2 minimising r + (theta / 2 ln2) D - nu phi(r) per component: the root
    in (0, 1] of theta s t + nu a t / (1 - a + a t) = 1, or 1 (rate 0) when the left side at
    t = 1 is <= 1. As a quadratic: theta s a t^2 + (theta s (1 - a) + a (nu - 1)) t - (1 - a) = 0."""
    qa = theta * s * a
    qb = theta * s * (1.0 - a) + a * (nu - 1.0)
    qc = 1.0 - a
    with np.errstate(divide="ignore", invalid="ignore"):
        root = 2.0 * qc / (qb + np.sqrt(qb * qb + 4.0 * qa * qc))
    active = theta * s + nu * a > 1.0
    return np.where(active, np.clip(root, 1e-300, 1.0), 1.0)


def _solution(s: np.ndarray, a: np.ndarray, theta: float, nu: float, binding: str) -> VectorGaussianSolution:
    t = _response(s, a, theta, nu)
    rates = np.maximum(-0.5 * np.log2(t), 0.0) + 0.0  # + 0.0 turns -0.0 into 0.0
    infos = np.maximum(-0.5 * np.log2(1.0 - a + a * t), 0.0) + 0.0
    i_xy = float((-0.5 * np.log2(1.0 - a)).sum())
    info = float(infos.sum())
    return VectorGaussianSolution(
        rates_bits=rates,
        distortions=s * t,
        semantic_infos_bits=infos,
        rate_bits=float(rates.sum()),
        distortion=float((s * t).sum()),
        semantic_info_bits=info,
        semantic_distortion_bits=max(i_xy - info, 0.0),
        lam_bits=theta / (2.0 * LN2),
        beta=nu,
        water_level=math.inf if theta == 0.0 else 1.0 / theta,
        binding=binding,
    )


def vector_gaussian_lagrangian(
    variances: object, rho2s: object, lam_bits: float, beta: float
) -> VectorGaussianSolution:
    """The minimiser of I(X;Xhat) + lam_bits * E||X - Xhat||^2 - beta * I(Xhat;Y) for independent
    Gaussian components X_i ~ N(0, variances[i]) with Y_i = X_i + N_i (squared correlation
    rho2s[i]; 0 for a component irrelevant to Y). The problem separates over components and
    each part is convex in r_i, so the per-component stationarity condition (see
    :func:`vector_gaussian_rate`) gives the global optimum."""
    s, a = _vector_inputs(variances, rho2s)
    lam = _nonneg(lam_bits, "lam_bits")
    nu = _nonneg(beta, "beta")
    return _solution(s, a, 2.0 * LN2 * lam, nu, "lagrangian")


def _bisect_increasing(f, lo: float, hi: float, target: float, iters: int = 200) -> float:
    """x in [lo, hi] with f(x) = target for increasing f (geometric bisection when lo > 0)."""
    for _ in range(iters):
        mid = math.sqrt(lo * hi) if lo > 0 else 0.5 * (lo + hi)
        if f(mid) < target:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-15 * max(hi, 1.0):
            break
    return 0.5 * (lo + hi)


def vector_gaussian_rate(
    variances: object, rho2s: object, max_distortion: float, min_semantic_info_bits: float
) -> VectorGaussianSolution:
    """R(D_p, I_0) for independent Gaussian components, only some relevant to Y.

    Model: X = (X_1..X_n), X_i ~ N(0, sigma_i^2) independent; Y = (Y_i) with Y_i = X_i + N_i,
    N_i ~ N(0, sigma_Ni^2) independent, rho_i^2 = sigma_i^2 / (sigma_i^2 + sigma_Ni^2) (a
    component irrelevant to Y has rho_i^2 = 0). Pixel distortion E||X - Xhat||^2 (summed).

    Derivation. For any test channel U = Xhat let r_i = I(X_i; U | X_1..X_{i-1}), so
    sum r_i = I(X;U) (chain rule), and h(X_i | U, X^{i-1}) = h(X_i) - r_i (independence).
    (1) Pixel: E(X_i - Xhat_i)^2 >= mmse(X_i | U, X^{i-1}) >= 2^(2 h(X_i|U,X^{i-1})) / (2 pi e)
        = sigma_i^2 2^(-2 r_i).
    (2) Semantic: I(U;Y) = I(X;Y) - I(X;Y|U) (Markov chain), I(X;Y|U) = h(Y|U) - sum h(N_i),
        h(Y|U) = sum h(Y_i | U, Y^{i-1}); N_i is independent of (U, X_i, Y^{i-1}), so the
        conditional entropy power inequality and h(X_i | U, Y^{i-1}) >= h(X_i | U, X^{i-1})
        give 2^(2 h(Y_i|U,Y^{i-1})) >= 2 pi e (sigma_i^2 2^(-2 r_i) + sigma_Ni^2), hence
        I(U;Y) <= sum_i phi_i(r_i),  phi_i(r) = -0.5 log2(1 - rho_i^2 + rho_i^2 2^(-2 r)).
    Independent Gaussian test channels with rates r_i meet (1) and (2) with equality, so

        R(D_p, I_0) = min sum r_i  s.t.  r_i >= 0,  sum sigma_i^2 2^(-2 r_i) <= D_p,
                                         sum phi_i(r_i) >= I_0,

    a convex program (sigma^2 2^(-2r) convex, phi concave). KKT with multipliers theta
    (= 2 ln2 lam_bits) and nu (= beta), t_i = D_i / sigma_i^2:

        theta D_i + nu rho_i^2 t_i / (1 - rho_i^2 + rho_i^2 t_i) = 1   where r_i > 0,

    and r_i = 0 where theta sigma_i^2 + nu rho_i^2 <= 1. An irrelevant component gets
    D_i = min(sigma_i^2, 1/theta): classic reverse water-filling at level w = 1/theta. A
    relevant component's second term is positive, so D_i < w: the semantic multiplier caps
    its distortion below the water level (the root of a quadratic; nu = 0 gives plain
    water-filling, theta = 0 the Gaussian information bottleneck over components, which
    switches component i on at nu = 1/rho_i^2). The multipliers are found by nested
    bisection: theta(nu) meets the pixel constraint, then nu meets the semantic one.

    Raises InfeasibleConstraintsError when I_0 >= I(X;Y) = sum -0.5 log2(1 - rho_i^2)
    (reached only at infinite rate) and ConfigError for D_p <= 0.
    """
    s, a = _vector_inputs(variances, rho2s)
    d_p = _positive(max_distortion, "max_distortion")
    i0 = _nonneg(min_semantic_info_bits, "min_semantic_info_bits")
    i_xy = float((-0.5 * np.log2(1.0 - a)).sum())
    if i0 > 0.0 and i0 >= i_xy:
        raise InfeasibleConstraintsError(
            f"min_semantic_info_bits {i0} must be below I(X;Y) = {i_xy:.6f} bits (reached only at infinite rate)"
        )

    def dist(theta: float, nu: float) -> float:
        return float((s * _response(s, a, theta, nu)).sum())

    def info(theta: float, nu: float) -> float:
        return float((-0.5 * np.log2(1.0 - a + a * _response(s, a, theta, nu))).sum())

    def theta_for(nu: float) -> float:
        """Least theta with total distortion <= D_p at this nu (0 if nu alone suffices)."""
        if dist(0.0, nu) <= d_p:
            return 0.0
        hi = 1.0 / d_p
        while dist(hi, nu) > d_p:
            hi *= 2.0
        return _bisect_increasing(lambda th: -dist(th, nu), 0.0, hi, -d_p)

    if d_p >= float(s.sum()) and i0 == 0.0:
        return _solution(s, a, 0.0, 0.0, "none")
    theta0 = theta_for(0.0)
    if info(theta0, 0.0) >= i0:
        return _solution(s, a, theta0, 0.0, "pixel")
    # semantic only: the nu at which the IB allocation reaches I_0, with theta = 0
    nu_hi = 2.0 / float(a.max())
    while info(0.0, nu_hi) < i0:
        nu_hi *= 2.0
    nu_sem = _bisect_increasing(lambda nu: info(0.0, nu), 0.0, nu_hi, i0)
    if dist(0.0, nu_sem) <= d_p:
        return _solution(s, a, 0.0, nu_sem, "semantic")
    # both bind: along the pixel-tight curve theta(nu), I(Xhat;Y) increases with nu
    nu_hi = max(nu_sem, 1.0)
    while info(theta_for(nu_hi), nu_hi) < i0:
        nu_hi *= 2.0
    nu = _bisect_increasing(lambda v: info(theta_for(v), v), 0.0, nu_hi, i0, iters=120)
    return _solution(s, a, theta_for(nu), nu, "both")
