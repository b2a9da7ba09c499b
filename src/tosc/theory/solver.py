"""Numerical solver for the semantic rate-distortion problem of docs/theory.md.

Given p(x, y) and a pixel distortion d(x, xhat), with the Markov chain Y - X - Xhat:

    R(D_p, I_0) = min over p(xhat|x) of I(X;Xhat)  s.t.  E d <= D_p,  I(Xhat;Y) >= I_0.

:func:`solve_lagrangian` minimises F = I(X;Xhat) + lam * E d - beta * I(Xhat;Y) by iterating
the self-consistent equations (Blahut-Arimoto / information-bottleneck style) in the log
domain; :func:`rate_at` finds the multipliers for a target (D_p, I_0) by projected dual
ascent; :func:`trace_surface` sweeps a (lam, beta) grid, annealing in beta.

Units: rates and informations in bits; ``lam_bits`` is bits of rate per unit of
distortion (lam in nats = lam_bits * ln 2); ``beta`` is dimensionless. The objective
reported is F in bits.

Why the iteration never increases F: with r(xhat) and p(y|xhat) treated as free
variables, the functional G(q, r, p(y|xhat)) = E log(q/r) + lam E d + beta E KL(p(y|x) ||
p(y|xhat)) equals F + beta I(X;Y) when r and p(y|xhat) are the ones induced by q, and each
of the three updates minimises G over one argument with the others fixed (the centroid
step of a free codebook is a fourth such minimisation).

Speed: the plain iteration is slow where masses of reconstructions change by a factor
close to 1 per update (typically the edge of the optimal support). By default every two
updates are followed by a per-reconstruction extrapolation of the log masses that is kept
only if F does not go up, and reconstructions whose mass has fallen below e^-50 of the
largest are dropped from the arrays; ``accelerate=False`` gives the plain iteration.

Certificate (every point's ``gap_bits``): with the decoder p(y|xhat) of the point fixed,
minimising G over the encoder is a rate-distortion problem with the distortion
lam d(x, xhat) + beta KL(p(y|x) || p(y|xhat)), so Blahut's lower bound for any r(xhat),
-E log Z(X) - log max_xhat c(xhat), bounds it from below; the gap is F + beta I(X;Y) minus
that bound. At beta = 0 it is Blahut's certificate: F is within gap_bits of the global
minimum. At beta > 0 it bounds how far F is above the best encoder for this decoder (one
more update cannot lower F by more); the problem is not convex there and no global bound
is claimed. ``gap_tol`` stops a run once the gap is below it and judges convergence by it:
a run that reaches tol with a larger gap (a needed reconstruction stuck at a negligible
mass) is restarted from the mapping mixed with a little of the uniform one.
Measured (benchmarks/theory_bench.py): stopping on a 1e-6-bit gap needs 1.9 to 7.6 times
fewer updates than the tol 1e-10 test on the 256 x 256 x 10 problems. SQUAREM (one global
step length on log p(xhat, y), mass-weighted or not) and Anderson mixing (depth 5) with the
same monotone safeguard were tried on those problems and needed more updates than this
per-reconstruction extrapolation (e.g. 1352 and 6954 against 575 at lam = 8, beta = 2),
so they are not offered.

Exact-encoder step (issue 22): once a certificate check finds the gap below 1e-2 bits, the
check also replaces the mapping by the best encoder for its decoder, which is Blahut's
problem for the distortion lam d + beta KL(p(y|x) || p(y|xhat)) and is solved by projected
Newton on its dual over the reconstruction marginal (:func:`_mixture_weights`), kept only
if F does not rise. Near a fixed point the update's slow modes are reconstructions dying
or growing by a factor close to 1 per update; the Newton solve sets them in one step, so
the remaining iteration is the (fast) alternation between encoder and decoder. It is not
used with a free codebook (a dropped point could still have moved somewhere useful).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from ..errors import ConfigError, DataError
from .measures import (
    LN2,
    check_distortion,
    check_joint,
    check_mapping,
    check_nonnegative,
    entropy_bits,
    min_distortion,
    mutual_information_bits,
    zero_rate_distortion,
)

__all__ = [
    "RDPoint",
    "FreeCodebook",
    "InfeasibleConstraintsError",
    "solve_lagrangian",
    "rate_at",
    "trace_surface",
    "DEFAULT_TOL",
    "DEFAULT_MAX_ITER",
]

DEFAULT_TOL = 1e-12  # stop when max_x ||p(.|x)_new - p(.|x)_old||_1 < tol
DEFAULT_MAX_ITER = 20_000
DEFAULT_RESTARTS_NONCONVEX = 4  # random starts when beta > 0 (beta = 0 is convex: one start)

_LOG_FLOOR = math.log(np.finfo(np.float64).tiny)  # ~ -708: log p(y|xhat) is clipped here
_LOG_Q_FLOOR = math.log(1e-150)  # linear-domain q is floored here (no subnormal products)
_EXP_FLOOR = -700.0  # exp arguments are clipped here (subnormal results are very slow)
_MIX = 1e-3  # weight of a random mapping mixed into warm starts (keeps every reconstruction alive)
_PRUNE_LOG = 50.0  # reconstructions below e^-50 of the largest mass are dropped (accelerated runs)
_SMALL_MASS = 1e-100  # columns with less mass are recomputed in the log domain
_REVIVALS = 3  # restarts from a mixed mapping when a run stops at tol with an uncertified gap
_GAP_EVERY = 30  # updates between certificate checks (one check costs about one update)
_EXACT_ENCODER_GAP = 1e-2  # bits: below this gap a certificate check also takes an exact-encoder step
_NEWTON_STEPS = 60  # Newton steps at most per exact-encoder step
_ENCODER_FLOOR_LOG = -40.0  # log of the mass (relative to the largest) a dropped reconstruction keeps
_NEIGHBOUR_PROBE = 30  # updates a surface point's second-pass start gets before it is judged
_NEIGHBOUR_GAPS = 10.0  # ... and it continues only if F - this many gaps is below the point's F


class InfeasibleConstraintsError(ConfigError):
    """:func:`rate_at` could not meet the distortion and semantic constraints together."""


@dataclass(frozen=True)
class FreeCodebook:
    """Squared-error distortion with a free reconstruction codebook.

    source_points: |X| x k, the value of each source symbol.
    codebook: |Xhat| x k, the initial reconstruction points; the solver moves them to the
    centroids E[X | Xhat = xhat] at every update (docs/theory.md, centroid step).
    offsets: optional |X|, a constant added to every distortion of x (e.g. the within-cell
    variance of a quantised continuous source); it does not change the optimal mapping.
    d(x, xhat) = offsets[x] + ||source_points[x] - codebook[xhat]||^2 (summed over the k coordinates).
    """

    source_points: np.ndarray
    codebook: np.ndarray
    offsets: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name in ("source_points", "codebook"):
            value = np.asarray(getattr(self, name), dtype=np.float64)
            if value.ndim == 1:
                value = value[:, None]
            if value.ndim != 2 or value.size == 0 or not np.isfinite(value).all():
                raise DataError(f"FreeCodebook.{name} must be a finite, non-empty N x k array, got shape {value.shape}")
            object.__setattr__(self, name, value)
        if self.source_points.shape[1] != self.codebook.shape[1]:
            raise DataError(
                f"FreeCodebook: source points have {self.source_points.shape[1]} coordinates but the codebook has "
                f"{self.codebook.shape[1]}"
            )
        if self.offsets is not None:
            offsets = np.asarray(self.offsets, dtype=np.float64)
            if offsets.shape != (self.source_points.shape[0],) or not np.isfinite(offsets).all() or offsets.min() < 0:
                raise DataError(f"FreeCodebook.offsets must be {self.source_points.shape[0]} finite values >= 0")
            object.__setattr__(self, "offsets", offsets)

    def distortion(self, codebook: np.ndarray | None = None) -> np.ndarray:
        """The |X| x |Xhat| distortion matrix for ``codebook`` (default: the initial one)."""
        c = self.codebook if codebook is None else np.asarray(codebook, dtype=np.float64)
        d = _squared_distances(self.source_points, c)
        return d if self.offsets is None else d + self.offsets[:, None]


@dataclass(frozen=True)
class RDPoint:
    """One solution of the semantic rate-distortion problem.

    rate_bits: I(X;Xhat). distortion: E d(X, Xhat), in the units of the distortion matrix.
    semantic_info_bits: I(Xhat;Y). semantic_distortion_bits: D_s = I(X;Y) - I(Xhat;Y) >= 0.
    objective: F = rate + lam_bits * distortion - beta * semantic_info, in bits.
    mapping: p(xhat|x), |X| x |Xhat|, rows sum to 1.
    iterations: fixed-point updates of the returned run (for :func:`rate_at`: summed over
    all inner solves). converged: the stopping tolerance was reached (for :func:`rate_at`:
    the dual ascent met its optimality conditions, see there).
    rate_lower_bound_bits, blahut_max_c: Blahut's certificate, only when beta == 0 with a
    fixed distortion matrix (else None): max over xhat of c(xhat) (1 at the optimum) and
    the lower bound R(D) >= -lam D - E log Z(X) - log max c, in bits, at this distortion.
    codebook: the final reconstruction points when solved with a :class:`FreeCodebook`.
    objective_history: F (bits) of every iterate from the start to the result, when asked for.
    gap_bits: certificate, F minus a lower bound (bits, >= 0; see the module docstring):
    at beta = 0 the distance to the global minimum of F is at most gap_bits; at beta > 0 it
    bounds how far F is above the best encoder for this point's decoder p(y|xhat) (the
    problem is not convex, so no global bound is known). None when not computed.
    """

    rate_bits: float
    distortion: float
    semantic_info_bits: float
    semantic_distortion_bits: float
    objective: float
    mapping: np.ndarray = field(repr=False)
    iterations: int
    converged: bool
    lam_bits: float
    beta: float
    rate_lower_bound_bits: float | None = None
    blahut_max_c: float | None = None
    codebook: np.ndarray | None = field(default=None, repr=False)
    objective_history: np.ndarray | None = field(default=None, repr=False)
    gap_bits: float | None = None

    def to_dict(self, include_mapping: bool = False) -> dict[str, Any]:
        """JSON-ready dict (plain floats); the mapping and codebook only when asked for."""
        out: dict[str, Any] = {
            "rate_bits": float(self.rate_bits),
            "distortion": float(self.distortion),
            "semantic_info_bits": float(self.semantic_info_bits),
            "semantic_distortion_bits": float(self.semantic_distortion_bits),
            "objective": float(self.objective),
            "iterations": int(self.iterations),
            "converged": bool(self.converged),
            "lam_bits": float(self.lam_bits),
            "beta": float(self.beta),
            "rate_lower_bound_bits": None if self.rate_lower_bound_bits is None else float(self.rate_lower_bound_bits),
            "blahut_max_c": None if self.blahut_max_c is None else float(self.blahut_max_c),
            "gap_bits": None if self.gap_bits is None else float(self.gap_bits),
        }
        if include_mapping:
            out["mapping"] = self.mapping.tolist()
            if self.codebook is not None:
                out["codebook"] = self.codebook.tolist()
        return out


# --------------------------------------------------------------------------------------
# Problem set-up


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d, 0.0)


@dataclass
class _Problem:
    """Validated arrays shared by every run on one (p_xy, distortion)."""

    p_xy: np.ndarray  # |X| x |Y|
    px: np.ndarray  # |X|
    py: np.ndarray  # |Y|
    pyx: np.ndarray  # |X| x |Y|, p(y|x); zero rows where p(x) = 0
    log_py: np.ndarray  # |Y|
    distortion: np.ndarray  # |X| x |Xhat| (initial one for a free codebook)
    codebook: FreeCodebook | None
    i_xy_bits: float
    h_x_bits: float

    @property
    def n_x(self) -> int:
        return self.p_xy.shape[0]

    @property
    def n_xhat(self) -> int:
        return self.distortion.shape[1]


def _restrict(prob: _Problem, cols: np.ndarray) -> _Problem:
    """The same problem with only the reconstructions ``cols``."""
    codebook = prob.codebook
    if codebook is not None:
        codebook = FreeCodebook(codebook.source_points, codebook.codebook[cols], codebook.offsets)
    return dataclasses.replace(prob, distortion=prob.distortion[:, cols], codebook=codebook)


def _prepare(p_xy: object, distortion: object) -> _Problem:
    p = check_joint(p_xy)
    p = np.where(p < 1e-150, 0.0, p)  # keeps products with the floored q out of subnormal range
    codebook: FreeCodebook | None = None
    if isinstance(distortion, FreeCodebook):
        codebook = distortion
        if codebook.source_points.shape[0] != p.shape[0]:
            raise DataError(
                f"FreeCodebook has {codebook.source_points.shape[0]} source points but p_xy has {p.shape[0]} rows"
            )
        d = codebook.distortion()
    else:
        d = check_distortion(distortion, p.shape[0])
    px = p.sum(axis=1)
    py = p.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        pyx = np.where(px[:, None] > 0, p / px[:, None], 0.0)
        log_py = np.log(py)
    return _Problem(
        p_xy=p,
        px=px,
        py=py,
        pyx=pyx,
        log_py=log_py,
        distortion=d,
        codebook=codebook,
        i_xy_bits=mutual_information_bits(p),
        h_x_bits=entropy_bits(px),
    )


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and (not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ConfigError(f"seed must be an integer >= 0, got {seed!r}")
    return np.random.default_rng(seed)


def _check_count(value: object, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_tol(tol: object) -> float:
    value = check_nonnegative(tol, "tol")
    if value == 0.0:
        raise ConfigError("tol must be > 0")
    return value


def random_mapping(rng: np.random.Generator, n_x: int, n_xhat: int) -> np.ndarray:
    """A random p(xhat|x) with full support: each row drawn from a flat Dirichlet."""
    g = rng.standard_exponential((n_x, n_xhat)) + 1e-300
    return g / g.sum(axis=1, keepdims=True)


def perturb_mapping(mapping: np.ndarray, rng: np.random.Generator, scale: float) -> np.ndarray:
    """Warm start: multiply by exp(scale * N(0,1)) and mix in a little of a random mapping,
    so the start has full support and is off any exact (e.g. trivial) fixed point."""
    if scale <= 0:
        return mapping
    n_x, n_xhat = mapping.shape
    noisy = mapping * np.exp(scale * rng.standard_normal(mapping.shape))
    noisy /= noisy.sum(axis=1, keepdims=True)
    mix = min(_MIX, scale)
    return (1.0 - mix) * noisy + mix * random_mapping(rng, n_x, n_xhat)


# --------------------------------------------------------------------------------------
# The fixed-point iteration


@dataclass
class _State:
    """A mapping with what it induces: log r(xhat), log p(xhat, y) and the distortion matrix
    (for a free codebook: the centroid codebook of this mapping and its distances)."""

    logq: np.ndarray  # |X| x |Xhat|, log p(xhat|x)
    q: np.ndarray  # exp(logq)
    log_r: np.ndarray  # |Xhat|
    log_joint: np.ndarray  # |Xhat| x |Y|
    d: np.ndarray  # |X| x |Xhat|
    codebook: np.ndarray | None


@dataclass
class _Run:
    state: _State
    iterations: int
    converged: bool
    history: np.ndarray | None


def _induced(prob: _Problem, q: np.ndarray, logq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log r(xhat) (|Xhat|) and log p(xhat, y) (|Xhat| x |Y|) induced by the mapping, in nats.

    Computed by matrix products; columns whose mass falls below the float range are
    recomputed with a per-column shift (log-sum-exp), so rare reconstructions keep a finite
    log mass instead of dying from underflow.
    """
    joint = q.T @ prob.p_xy
    r = joint.sum(axis=1)  # sum over y of p(xhat, y)
    log_r = np.log(r)
    log_joint = np.log(joint)
    small = np.flatnonzero(r < _SMALL_MASS)
    if small.size:
        live = prob.px > 0
        lq = logq[live][:, small]
        shift = lq.max(axis=0)
        ok = np.isfinite(shift)
        log_r[small[~ok]] = -np.inf  # no mass at all: a dead reconstruction stays dead
        log_joint[small[~ok]] = -np.inf
        if ok.any():
            cols = small[ok]
            e = _exp_nonpositive(lq[:, ok] - shift[ok])
            log_joint[cols] = np.log(e.T @ prob.p_xy[live]) + shift[ok][:, None]
            log_r[cols] = np.log(prob.px[live] @ e) + shift[ok]
    return log_r, log_joint


def _log_pyxh(log_r: np.ndarray, log_joint: np.ndarray) -> np.ndarray:
    """log p(y|xhat), clipped below at the float range; zero rows for dead reconstructions."""
    out = log_joint - log_r[:, None]
    out[~np.isfinite(log_r)] = 0.0
    return np.maximum(out, _LOG_FLOOR)


def _exp_nonpositive(x: np.ndarray) -> np.ndarray:
    """exp(x) for x <= 0 with the argument clipped at -700: results that would be subnormal
    or underflow make exp (and later products) one to two orders of magnitude slower, and
    e^-700 is already negligible next to the 1 every shifted sum contains."""
    return np.exp(np.maximum(x, _EXP_FLOOR))


def _row_normalise(logits: np.ndarray, out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(log q, q) with rows normalised by a max-shifted log-sum-exp; ``logits`` is overwritten
    with log q, and q is written to ``out`` (a new array when None).

    log q keeps the exact values; the linear q is floored at 1e-150 of its row maximum
    (exp of more negative arguments, and products with the subnormal results, are one to two
    orders of magnitude slower, and such entries change no reported number).
    """
    logits -= logits.max(axis=1, keepdims=True)
    e = np.maximum(logits, _LOG_Q_FLOOR, out=out)
    np.exp(e, out=e)
    s = e.sum(axis=1, keepdims=True)
    e *= 1.0 / s
    logits -= np.log(s)
    return logits, e


class _Iteration:
    """The self-consistent update for one (lam, beta) and the objective it decreases.

    Large |X| x |Xhat| arrays come from a small pool (:meth:`take`, :meth:`release`):
    allocating a fresh one per update costs more than the update's arithmetic here.
    """

    def __init__(self, prob: _Problem, lam_n: float, beta: float) -> None:
        self.prob = prob
        self.lam_n = lam_n
        self.beta = beta
        self.free = prob.codebook is not None
        self.neg_lam_d = None if self.free else -lam_n * prob.distortion
        # [beta p(y|x), 1]: one product gives beta * cross term + log p(xhat)
        self.beta_pyx1 = np.hstack([beta * prob.pyx, np.ones((prob.n_x, 1))]) if beta > 0.0 else None
        self.shape = (prob.n_x, prob.n_xhat)
        self._neg_h_y_x: np.ndarray | None = None  # sum_y p(y|x) ln p(y|x), made on first use
        self._pool: list[np.ndarray] = []
        self._owned: set[int] = set()
        self._scratch = np.empty(self.shape)
        if self.free:
            assert prob.codebook is not None
            self.points = prob.codebook.source_points
            self.weighted_points = prob.px[:, None] * self.points
            self.offsets = prob.codebook.offsets

    def take(self) -> np.ndarray:
        if self._pool:
            return self._pool.pop()
        array = np.empty(self.shape)
        self._owned.add(id(array))
        return array

    def release(self, *states: _State) -> None:
        """Give back the arrays of states no longer used (only arrays this pool made)."""
        for st in states:
            for array in (st.logq, st.q):
                if id(array) in self._owned and not any(array is a for a in self._pool):
                    self._pool.append(array)

    def state(self, logq: np.ndarray, q: np.ndarray, previous_codebook: np.ndarray | None) -> _State:
        log_r, log_joint = _induced(self.prob, q, logq)
        d = self.prob.distortion
        codebook = None
        if self.free:
            # centroid step: x_hat = E[X | X_hat]; a reconstruction without mass keeps its point
            assert previous_codebook is not None
            r = _exp_nonpositive(log_r)
            alive = r > _SMALL_MASS
            codebook = previous_codebook.copy()
            codebook[alive] = (q.T @ self.weighted_points)[alive] / r[alive, None]
            d = _squared_distances(self.points, codebook)
            if self.offsets is not None:
                d = d + self.offsets[:, None]
        return _State(logq=logq, q=q, log_r=log_r, log_joint=log_joint, d=d, codebook=codebook)

    def step(self, s: _State) -> tuple[np.ndarray, np.ndarray]:
        """p(xhat|x) proportional to p(xhat) exp(-lam d - beta KL[p(y|x) || p(y|xhat)]); the
        KL term's p(y|x)-only part cancels in the normalisation, leaving the cross term
        beta sum_y p(y|x) log p(y|xhat), computed with log p(xhat) in one matrix product."""
        logits = self.take()
        if self.neg_lam_d is not None:
            neg_lam_d = self.neg_lam_d
        else:
            neg_lam_d = np.multiply(s.d, -self.lam_n, out=self._scratch)
        if self.beta > 0.0:
            right = np.empty((self.beta_pyx1.shape[1], s.log_r.size))
            right[:-1] = _log_pyxh(s.log_r, s.log_joint).T
            right[-1] = s.log_r
            np.matmul(self.beta_pyx1, right, out=logits)
            logits += neg_lam_d
        else:
            np.add(neg_lam_d, s.log_r[None, :], out=logits)
        return _row_normalise(logits, out=self.take())

    def measures(self, s: _State) -> tuple[float, float, float, float]:
        """(F, I(X;Xhat), E d, I(Xhat;Y)), informations in nats."""
        prob = self.prob
        if np.isfinite(s.log_r).all():
            r = np.exp(s.log_r)
            rate = float(np.einsum("i,ij,ij->", prob.px, s.q, s.logq) - r @ s.log_r)
        else:  # dead reconstructions: log q = log r = -inf there
            w = prob.px[:, None] * s.q
            rate = float(np.where(np.isfinite(s.logq), w * (s.logq - s.log_r[None, :]), 0.0).sum())
        joint = np.exp(s.log_joint)
        ratio = s.log_joint - s.log_r[:, None] - prob.log_py[None, :]
        info = float(np.where(joint > 0, joint * ratio, 0.0).sum())
        rate = max(rate, 0.0)
        info = max(info, 0.0)
        dist = float(np.einsum("i,ij,ij->", prob.px, s.q, s.d))
        return rate + self.lam_n * dist - self.beta * info, rate, dist, info

    def objective(self, s: _State) -> float:
        return self.measures(s)[0]

    def gap(self, s: _State, f_nats: float | None = None) -> float:
        """F(s) minus a lower bound on F, in nats (>= 0; see :func:`certificate_gap`)."""
        prob = self.prob
        f = self.objective(s) if f_nats is None else f_nats
        a = np.multiply(s.d, -self.lam_n)
        if self.beta > 0.0:
            if self._neg_h_y_x is None:
                pyx = prob.pyx
                self._neg_h_y_x = np.where(pyx > 0, pyx * np.log(np.where(pyx > 0, pyx, 1.0)), 0.0).sum(axis=1)
            # -beta KL(p(y|x) || p(y|xhat)) = beta (sum_y p(y|x) ln p(y|xhat) - sum_y p(y|x) ln p(y|x))
            a += self.beta * (prob.pyx @ _log_pyxh(s.log_r, s.log_joint).T - self._neg_h_y_x[:, None])
        live_x = prob.px > 0
        a = a[live_x]
        with_mass = np.isfinite(s.log_r)
        b = a[:, with_mass] + s.log_r[with_mass][None, :]
        top = b.max(axis=1, keepdims=True)
        log_z = np.log(_exp_nonpositive(b - top).sum(axis=1)) + top[:, 0]
        # c(xhat) = sum_x p(x) e^a(x, xhat) / Z(x): at beta > 0 only where p(y|xhat) is defined
        cols = slice(None) if self.beta == 0.0 else with_mass
        e = np.log(prob.px[live_x])[:, None] - log_z[:, None] + a[:, cols]
        top_e = e.max(axis=0)
        log_c = np.log(_exp_nonpositive(e - top_e[None, :]).sum(axis=0)) + top_e
        lower = -float(prob.px[live_x] @ log_z) - float(log_c.max())
        return max(f + self.beta * prob.i_xy_bits * LN2 - lower, 0.0)

    def exact_encoder(self, s: _State) -> tuple[np.ndarray, np.ndarray] | None:
        """(log q, q): the best encoder for the decoder of ``s`` (its p(y|xhat), and for a free
        codebook its points), i.e. the minimum of G over q and r with p(y|xhat) fixed; None if
        the Newton solve fails. That minimum is a rate-distortion problem with the distortion
        lam d + beta KL(p(y|x) || p(y|xhat)) (the gap's lower bound is its value), solved by
        Newton on its dual (:func:`_mixture_weights`); reconstructions without a decoder
        (zero mass at beta > 0) stay at zero. Then F(new) <= G(new, old decoder) <= F(s).
        """
        prob = self.prob
        a = np.multiply(s.d, -self.lam_n)
        if self.beta > 0.0:
            a += self.beta * (prob.pyx @ _log_pyxh(s.log_r, s.log_joint).T)
            cols = np.flatnonzero(np.isfinite(s.log_r))
        else:
            cols = np.arange(a.shape[1])
        live_x = prob.px > 0
        a_live = a[live_x][:, cols]
        kernel = _exp_nonpositive(a_live - a_live.max(axis=1, keepdims=True))
        log_r = s.log_r[cols]
        r = _mixture_weights(kernel, prob.px[live_x], _exp_nonpositive(log_r - log_r.max()))
        if r is None:
            return None
        # reconstructions the solve drops keep a trace (e^-40 of the largest mass, above the
        # pruning level): their columns keep the shape p(xhat|x) ~ e^a the update gives them,
        # so a warm start at the next beta can grow them back (as it can after plain updates)
        r = np.maximum(r, math.exp(_ENCODER_FLOOR_LOG) * r.max() * (log_r > -np.inf))
        logits = np.full(a.shape, -np.inf)
        logits[:, cols] = np.log(r)[None, :] + a[:, cols]
        return _row_normalise(logits, out=self.take())

    def l1_change(self, a: np.ndarray, b: np.ndarray) -> float:
        """max over x of ||a(.|x) - b(.|x)||_1."""
        diff = np.subtract(a, b, out=self._scratch)
        np.abs(diff, out=diff)
        return float(diff.sum(axis=1).max())


def _column_extrapolation(u0: np.ndarray, u1: np.ndarray, u2: np.ndarray, k_max: float) -> np.ndarray | None:
    """Extrapolate each reconstruction's log mass u = log r(xhat) along its own trajectory.

    A mass that moves the same way twice is followed further: by the geometric tail
    d2 rho / (1 - rho) when it slows down (rho = d2 / d1 in (0, 1)), by k_max steps when it
    does not (a reconstruction dying at a constant rate). Returns the change of each log
    mass (None when there is nothing to follow); the caller shifts the columns of log q by
    it and renormalises the rows.
    """
    d1 = np.where(np.isfinite(u1) & np.isfinite(u0), u1 - u0, 0.0)
    d2 = np.where(np.isfinite(u2) & np.isfinite(u1), u2 - u1, 0.0)
    same = d1 * d2 > 0.0  # moving the same way twice
    if not same.any():
        return None
    rho = np.where(same, d2 / np.where(same, d1, 1.0), 0.0)
    steps = np.where(rho < 1.0, rho / np.maximum(1.0 - rho, 1e-300), k_max)
    steps = np.where(same, np.minimum(steps, k_max), 0.0)
    shift = d2 * steps
    if not np.any(np.abs(shift) > 1e-12):
        return None
    return shift


def _vertex_step(column: np.ndarray, z: np.ndarray, weights: np.ndarray, r: np.ndarray, j: int) -> np.ndarray:
    """(1 - t) r + t e_j with t in (0, 1) maximising sum_x w(x) log((1 - t) z(x) + t K(x, j)),
    found by bisection on the derivative (the function is concave in t; its slope at 0 is
    c(j) - 1 > 0)."""
    lo, hi = 0.0, 1.0
    for _ in range(60):
        t = 0.5 * (lo + hi)
        slope = float(weights @ ((column - z) / np.maximum((1.0 - t) * z + t * column, 1e-300)))
        if slope > 0.0:
            lo = t
        else:
            hi = t
    out = (1.0 - lo) * r
    out[j] += lo
    return out


def _mixture_weights(kernel: np.ndarray, weights: np.ndarray, r: np.ndarray,
                     max_steps: int = _NEWTON_STEPS) -> np.ndarray | None:
    """Maximise L(r) = sum_x w(x) log sum_xhat r(xhat) K(x, xhat) over the simplex.

    kernel: |X'| x m, K >= 0 with a positive entry in every row (rows scaled freely: a
    per-row factor only shifts L). weights: |X'|, p(x) > 0. r: m, the start (>= 0).
    This is Blahut's dual of a rate-distortion problem with e^(-distortion) = K (one
    Blahut update is r <- r c with c = grad L; the optimum has c <= 1 with equality on the
    support of r). Projected Newton on the support: the equality-constrained Newton step,
    cut at the first coordinate reaching zero (which leaves the support), a backtracking
    line search that never lowers L, and letters off the support with c > 1 brought in.
    Returns r, or None when the Newton system cannot be solved.
    """
    r = r / r.sum()
    sqrt_w = np.sqrt(weights)[:, None]
    for _ in range(max_steps):
        z = np.maximum(kernel @ r, 1e-300)
        value = float(weights @ np.log(z))
        scaled = kernel / z[:, None]
        c = weights @ scaled
        support = r > 0.0
        new = ~support & (c > 1.0 + 1e-12)
        if new.any():
            # a letter the optimum needs: move the best share of mass to it (a vertex-direction
            # step; a tiny share would be pushed out again by the next Newton step)
            j = int(np.where(new, c, -np.inf).argmax())
            r = _vertex_step(kernel[:, j], z, weights, r, j)
            continue
        idx = np.flatnonzero(support)
        c_on = c[idx]
        if c_on.max() - 1.0 < 1e-13 and c_on.min() > 1.0 - 1e-9:
            break
        rows = scaled[:, idx] * sqrt_w
        m = idx.size
        # -Hessian of L on the support, bordered by the constraint sum r = 1
        kkt = np.zeros((m + 1, m + 1))
        np.matmul(rows.T, rows, out=kkt[:m, :m])
        kkt[:m, :m] += 1e-13 * np.eye(m)
        kkt[:m, m] = 1.0
        kkt[m, :m] = 1.0
        try:
            direction = np.linalg.solve(kkt, np.append(c_on, 0.0))[:m]
        except np.linalg.LinAlgError:
            return None
        if not np.isfinite(direction).all():
            return None
        r_on = r[idx]
        shrinking = direction < 0.0
        ratios = np.where(shrinking, -r_on / np.where(shrinking, direction, -1.0), np.inf)
        block = int(ratios.argmin())
        t_block = float(ratios[block])
        t = min(1.0, t_block)
        for _ in range(40):
            trial = r.copy()
            trial[idx] = np.maximum(r_on + t * direction, 0.0)
            if t == t_block:
                trial[idx[block]] = 0.0
            trial /= trial.sum()
            if float(weights @ np.log(np.maximum(kernel @ trial, 1e-300))) >= value - 1e-15:
                break
            t *= 0.5
        else:
            return r  # no ascent along the Newton direction at this precision: r is as good as it gets
        r = trial
    return r


_QUIET = {"divide": "ignore", "invalid": "ignore", "under": "ignore"}  # log 0 and -inf arithmetic are expected


def _iterate(
    prob: _Problem, lam_n: float, beta: float, q0: np.ndarray, max_iter: int, tol: float, record: bool,
    accelerate: bool, gap_tol: float = 0.0,
) -> _Run:
    with np.errstate(**_QUIET):
        return _iterate_quiet(prob, lam_n, beta, q0, max_iter, tol, record, accelerate, gap_tol)


def _iterate_quiet(
    prob: _Problem, lam_n: float, beta: float, q0: np.ndarray, max_iter: int, tol: float, record: bool,
    accelerate: bool, gap_tol: float = 0.0,
) -> _Run:
    """Run the update from q0 until the L1 change is below tol or max_iter updates.

    With ``accelerate`` every two plain updates are followed by an extrapolation of each
    reconstruction's log mass along its own trajectory (:func:`_column_extrapolation`, an
    Aitken-type step in the log domain), one more update from the extrapolated mapping, and
    a test: the result is kept only if F did not go up, else the plain iterate is kept, so F
    never increases. The plain iteration's slowest parts are geometric: reconstructions
    whose mass dies (or grows) by a factor close to 1 per update, as on the edge of the
    optimal support; the extrapolation jumps along them (the allowed jump grows while
    extrapolations are accepted and shrinks when one is refused).

    gap_tol > 0 (bits): every few updates the certificate's gap (:meth:`_Iteration.gap`) is
    computed and the run stops once it is below gap_tol; ``converged`` then stays False
    (it means tol was reached) and :func:`_finish` judges the gap on the full alphabet.
    """
    gap_tol_n = gap_tol * LN2
    it = _Iteration(prob, lam_n, beta)
    logq0 = np.log(q0)
    start_codebook = prob.codebook.codebook if prob.codebook is not None else None
    s0 = it.state(logq0, q0, start_codebook)
    history: list[float] = []
    n = 0
    converged = False
    if not accelerate:
        while n < max_iter:
            if record:
                history.append(it.objective(s0))
            logq, q = it.step(s0)
            n += 1
            delta = it.l1_change(q, s0.q)
            previous, s0 = s0, it.state(logq, q, s0.codebook)
            it.release(previous)
            if delta < tol:
                converged = True
                break
            if gap_tol_n > 0.0 and n % _GAP_EVERY == 0 and it.gap(s0) < gap_tol_n:
                break
        if record:
            history.append(it.objective(s0))
        return _Run(s0, n, converged, np.asarray(history) / LN2 if record else None)

    f0: float | None = it.objective(s0)  # F of s0, computed when needed
    k_max = 16.0
    next_gap_check = _GAP_EVERY
    cols = np.arange(prob.n_xhat)  # the reconstructions still iterated
    if record:
        history.append(f0)
    while n < max_iter and not converged:
        start = s0
        logq1, q1 = it.step(s0)
        n += 1
        s1 = it.state(logq1, q1, s0.codebook)
        if record:
            history.append(it.objective(s1))
        if n >= max_iter:
            s0, converged = s1, it.l1_change(q1, start.q) < tol
            it.release(start)
            break
        logq2, q2 = it.step(s1)
        n += 1
        delta = it.l1_change(q2, q1)
        s2 = it.state(logq2, q2, s1.codebook)
        f2 = it.objective(s2) if record else None
        if record:
            history.append(f2)
        if delta < tol or n >= max_iter:
            s0, converged = s2, delta < tol
            it.release(start, s1)
            break
        shift = _column_extrapolation(start.log_r, s1.log_r, s2.log_r, k_max)
        if shift is None:
            s0, f0 = s2, f2
            it.release(start, s1)
            continue
        logq_x, q_x = _row_normalise(np.add(logq2, shift[None, :], out=it.take()), out=it.take())
        sx = it.state(logq_x, q_x, s2.codebook)
        logq3, q3 = it.step(sx)
        n += 1
        delta = it.l1_change(q3, q_x)
        s3 = it.state(logq3, q3, sx.codebook)
        f3 = it.objective(s3)
        # keep the extrapolated point only if F did not go up: against the plain iterate when
        # every F is recorded, else against the start of the cycle (one evaluation fewer)
        if f2 is not None:
            reference = f2
        else:
            reference = f0 if f0 is not None else it.objective(start)
        if f3 <= reference:
            s0, f0 = s3, f3
            converged = delta < tol
            k_max = min(4.0 * k_max, 1e8)
            it.release(start, s1, s2, sx)
        else:
            s0, f0 = s2, f2
            k_max = max(k_max / 8.0, 2.0)
            it.release(start, s1, sx, s3)
        if record:
            history.append(it.objective(s0))
        # drop reconstructions whose mass fell below e^-50 of the largest: they change no
        # reported number (< 1e-20) and cost time; one that should come back would need
        # hundreds of updates to grow from there, and at beta = 0 Blahut's certificate on
        # the full alphabet still reports it (blahut_max_c > 1)
        top = float(s0.log_r.max())
        dead = s0.log_r < top - _PRUNE_LOG
        n_dead = int(dead.sum())
        if not converged and n_dead >= max(4, cols.size // 10):
            keep = np.flatnonzero(~dead)
            cols = cols[keep]
            it = _Iteration(_restrict(prob, cols), lam_n, beta)
            logq, q = _row_normalise(s0.logq[:, keep].copy())
            s0 = it.state(logq, q, None if s0.codebook is None else s0.codebook[keep])
            f0 = None
        if gap_tol_n > 0.0 and not converged and n >= next_gap_check:
            next_gap_check = n + _GAP_EVERY
            if f0 is None:
                f0 = it.objective(s0)
            gap_now = it.gap(s0, f0)
            if gap_now < gap_tol_n:
                break
            if gap_now < _EXACT_ENCODER_GAP * LN2 and n < max_iter and not it.free:
                # near a fixed point the slow modes of the update are reconstructions dying or
                # growing by a factor close to 1 per update; the exact encoder for the current
                # decoder settles them in one step (measured: docs/theory.md). Not with a free
                # codebook: a point it drops for good could still have moved to a useful place.
                out = it.exact_encoder(s0)
                if out is not None:
                    n += 1
                    s_new = it.state(out[0], out[1], s0.codebook)
                    f_new = it.objective(s_new)
                    if f_new <= f0:
                        it.release(s0)
                        s0, f0 = s_new, f_new
                        if record:
                            history.append(f0)
                        if it.gap(s0, f0) < gap_tol_n:
                            break
                    else:
                        it.release(s_new)
    if cols.size < prob.n_xhat:  # back to the full reconstruction alphabet
        logq = np.full((prob.n_x, prob.n_xhat), -np.inf)
        logq[:, cols] = s0.logq
        q = np.zeros((prob.n_x, prob.n_xhat))
        q[:, cols] = s0.q
        codebook = None
        if s0.codebook is not None:
            assert prob.codebook is not None
            codebook = prob.codebook.codebook.copy()
            codebook[cols] = s0.codebook
        s0 = _Iteration(prob, lam_n, beta).state(logq, q, codebook)
    return _Run(s0, n, converged, np.asarray(history) / LN2 if record else None)


def _blahut_certificate(prob: _Problem, log_r: np.ndarray, lam_n: float, dist: float) -> tuple[float, float]:
    """(max c(xhat), rate lower bound in bits) for beta = 0 (docs/theory.md, "Certificate")."""
    a = log_r[None, :] - lam_n * prob.distortion
    top = a.max(axis=1, keepdims=True)
    log_z = (np.log(_exp_nonpositive(a - top).sum(axis=1, keepdims=True)) + top)[:, 0]
    live = prob.px > 0
    b = np.log(prob.px[live])[:, None] - lam_n * prob.distortion[live] - log_z[live, None]
    top_b = b.max(axis=0, keepdims=True)
    log_c = (np.log(_exp_nonpositive(b - top_b).sum(axis=0, keepdims=True)) + top_b)[0]
    max_log_c = float(log_c.max())
    lower = -lam_n * dist - float(prob.px[live] @ log_z[live]) - max_log_c
    return math.exp(max_log_c), max(lower, 0.0) / LN2 + 0.0


def _finish(prob: _Problem, run: _Run, lam_bits: float, beta: float, gap_tol: float = 0.0) -> RDPoint:
    """The RDPoint of a run. With gap_tol > 0 it counts as converged when the certificate's
    gap on the full reconstruction alphabet is below gap_tol bits (reaching tol is not
    enough: a reconstruction the optimum needs can sit at a negligible mass, where it
    changes nothing per update and grows only over thousands); else when the run reached tol."""
    lam_n = lam_bits * LN2
    s = run.state
    with np.errstate(**_QUIET):
        iteration = _Iteration(prob, lam_n, beta)
        f, rate, dist, info = iteration.measures(s)
        gap = iteration.gap(s, f) / LN2
        max_c = lower = None
        if beta == 0.0 and prob.codebook is None:
            max_c, lower = _blahut_certificate(prob, s.log_r, lam_n, dist)
    info_bits = min(info / LN2, prob.i_xy_bits)
    return RDPoint(
        rate_bits=rate / LN2,
        distortion=dist,
        semantic_info_bits=info_bits,
        semantic_distortion_bits=max(prob.i_xy_bits - info_bits, 0.0),
        objective=f / LN2,
        mapping=s.q,
        iterations=run.iterations,
        converged=gap < gap_tol if gap_tol > 0.0 else run.converged,
        lam_bits=lam_bits,
        beta=beta,
        rate_lower_bound_bits=lower,
        blahut_max_c=max_c,
        codebook=s.codebook,
        objective_history=run.history,
        gap_bits=gap,
    )


def _best_of(
    prob: _Problem, lam_bits: float, beta: float, starts: Iterable[np.ndarray], max_iter: int, tol: float,
    record: bool = False, accelerate: bool = True, gap_tol: float = 0.0,
) -> RDPoint:
    best: RDPoint | None = None
    for q0 in starts:
        run = _iterate(prob, lam_bits * LN2, beta, q0, max_iter, tol, record, accelerate, gap_tol)
        point = _finish(prob, run, lam_bits, beta, gap_tol)
        used = run.iterations
        # stopped at tol but not certified: some reconstruction is stuck at a negligible mass
        # (c(xhat) > 1 there); give every reconstruction a little mass and continue
        for _ in range(_REVIVALS):
            if gap_tol == 0.0 or point.converged or used >= max_iter:
                break
            q = (1.0 - _MIX) * point.mapping + _MIX / prob.n_xhat
            run = _iterate(prob, lam_bits * LN2, beta, q, max_iter - used, tol, False, accelerate, gap_tol)
            used += run.iterations
            revived = _finish(prob, run, lam_bits, beta, gap_tol)
            point = revived if revived.objective <= point.objective else point
        point = dataclasses.replace(point, iterations=used)
        if best is None or point.objective < best.objective - 1e-12:
            best = point
    assert best is not None
    return best


def _point_of(prob: _Problem, q: np.ndarray, lam_bits: float, beta: float) -> RDPoint:
    """The RDPoint of a given mapping (no iterations)."""
    codebook = prob.codebook.codebook if prob.codebook is not None else None
    with np.errstate(**_QUIET):
        state = _Iteration(prob, lam_bits * LN2, beta).state(np.log(q), q, codebook)
    return _finish(prob, _Run(state, 0, False, None), lam_bits, beta)


def _polish(prob: _Problem, feasible: RDPoint, infeasible: RDPoint, target_d: float, target_i: float,
            d_tol: float, bits_tol: float) -> RDPoint:
    """Where the dual ascent stalls between a feasible and an infeasible Lagrangian solution
    (a flat stretch of the surface, where the Lagrangian does not pin one point), bisect on
    the mixture theta q_feasible + (1 - theta) q_infeasible for the feasible mixture closest
    to the infeasible end, and return the feasible point of lowest rate seen."""
    best = feasible
    lo, hi = 0.0, 1.0
    for _ in range(60):
        theta = 0.5 * (lo + hi)
        q = theta * feasible.mapping + (1.0 - theta) * infeasible.mapping
        point = _point_of(prob, q, feasible.lam_bits, feasible.beta)
        if point.distortion - target_d <= d_tol and target_i - point.semantic_info_bits <= bits_tol:
            hi = theta
            if point.rate_bits < best.rate_bits:
                best = point
        else:
            lo = theta
        if hi - lo < 1e-12:
            break
    return best


# --------------------------------------------------------------------------------------
# Public API


def solve_lagrangian(
    p_xy: np.ndarray,
    distortion: np.ndarray | FreeCodebook,
    lam_bits: float,
    beta: float,
    *,
    n_restarts: int | None = None,
    seed: int | np.random.Generator | None = 0,
    init: np.ndarray | None = None,
    max_iter: int = DEFAULT_MAX_ITER,
    tol: float = DEFAULT_TOL,
    record_history: bool = False,
    accelerate: bool = True,
    gap_tol: float = 0.0,
) -> RDPoint:
    """Minimise F = I(X;Xhat) + lam_bits * E d - beta * I(Xhat;Y) over p(xhat|x).

    p_xy: |X| x |Y| joint probabilities (sum 1). distortion: |X| x |Xhat| (|Xhat| may exceed
    |X|), or a :class:`FreeCodebook` for squared error with centroid updates.
    lam_bits: bits of rate per unit distortion (>= 0). beta: dimensionless (>= 0).
    n_restarts: random full-support starts; the lowest F wins. Default: 1 when beta == 0
    (the problem is then convex) else 4. init: a |X| x |Xhat| mapping to start from (warm
    start); it replaces the first random start.
    Stops when max_x ||delta p(.|x)||_1 < tol or after max_iter updates (then ``converged``
    is False). record_history keeps F (bits) of every iterate, from the start to the result.
    accelerate: interleave extrapolation steps of the reconstruction masses (kept only when
    they do not raise F) and drop reconstructions whose mass fell below e^-50 of the largest;
    False runs the plain self-consistent iteration. ``iterations`` counts updates either way.
    gap_tol (bits, 0 = off): also stop, converged, once the certificate ``gap_bits`` is below it
    (every point reports its gap either way); the certificate checks then also take the
    exact-encoder (Newton) step once the gap is below 1e-2 bits (module docstring), which
    ``accelerate=False`` and gap_tol = 0 leave out.
    """
    prob = _prepare(p_xy, distortion)
    gap_tol = check_nonnegative(gap_tol, "gap_tol")
    lam_bits = check_nonnegative(lam_bits, "lam_bits")
    beta = check_nonnegative(beta, "beta")
    if n_restarts is None:
        n_restarts = 1 if beta == 0.0 else DEFAULT_RESTARTS_NONCONVEX
    n_restarts = _check_count(n_restarts, "n_restarts")
    max_iter = _check_count(max_iter, "max_iter")
    tol = _check_tol(tol)
    rng = _rng(seed)
    first = None if init is None else check_mapping(init, prob.n_x, prob.n_xhat)

    def starts() -> Iterable[np.ndarray]:
        for k in range(n_restarts):
            if k == 0 and first is not None:
                yield first
            else:
                yield random_mapping(rng, prob.n_x, prob.n_xhat)

    return _best_of(prob, lam_bits, beta, starts(), max_iter, tol, record_history, accelerate, gap_tol)


def _surface_row(prob: _Problem, lam: float, beta_list: list[float], row_seed: Sequence[int], n_restarts: int,
                 perturbation: float, max_iter: int, tol: float, gap_tol: float = 0.0,
                 tick: Any = None) -> list[RDPoint]:
    """One lam row of :func:`trace_surface`: beta swept up with warm starts, then back down.

    The row's random numbers come from its own seed, so a row gives the same points whether
    it runs alone, first, last or in another process.
    """
    rng = np.random.default_rng(list(row_seed))
    order = np.argsort(beta_list, kind="stable")
    row: list[RDPoint | None] = [None] * len(beta_list)

    def solve(beta: float, warm: RDPoint | None, cold: int) -> RDPoint:
        starts: list[np.ndarray] = []
        if warm is not None:
            starts.append(perturb_mapping(warm.mapping, rng, perturbation))
        starts.extend(random_mapping(rng, prob.n_x, prob.n_xhat) for _ in range(cold))
        if not starts:
            starts.append(random_mapping(rng, prob.n_x, prob.n_xhat))
        point = _best_of(prob, lam, beta, starts, max_iter, tol, gap_tol=gap_tol)
        if tick is not None:
            tick()
        return point

    warm: RDPoint | None = None
    for j in order:
        row[j] = warm = solve(beta_list[j], warm, n_restarts)
    for j in order[::-1][1:]:
        down = solve(beta_list[j], warm, 0)
        current = row[j]
        assert current is not None
        if down.objective < current.objective - 1e-12:
            row[j] = current = down
        warm = current
    return [p for p in row if p is not None]


def _surface_row_job(args: tuple) -> list[RDPoint]:
    return _surface_row(*args)


def _surface_row_from_neighbours(prob: _Problem, lam: float, beta_list: list[float], row_seed: Sequence[int],
                                 row: list[RDPoint], neighbours: list[list[RDPoint]], perturbation: float,
                                 max_iter: int, tol: float, gap_tol: float = 0.0, tick: Any = None) -> list[RDPoint]:
    """Second pass of :func:`trace_surface` on one lam row: a point still uncertified gets a
    second budget of max_iter updates from where it stopped; then each point is solved again
    from the solutions of the neighbouring lam rows at the same beta (perturbed as in the beta
    sweep) and keeps the lowest F. Annealing in beta alone follows one branch of local
    optima per row; a neighbouring row may have found a better branch."""
    rng = np.random.default_rng([*row_seed, 1])
    out = list(row)
    probe_iter = min(_NEIGHBOUR_PROBE, max_iter)
    for j, beta in enumerate(beta_list):
        if not out[j].converged:
            # still uncertified after max_iter updates (a slow escape from a saddle, e.g. the
            # degenerate lam = 0 bottleneck): a second budget of max_iter from where it stopped
            more = _best_of(prob, lam, beta, [out[j].mapping], max_iter, tol, gap_tol=gap_tol)
            if more.objective <= out[j].objective:
                out[j] = dataclasses.replace(more, iterations=more.iterations + out[j].iterations)
        for other in neighbours:
            start = perturb_mapping(other[j].mapping, rng, perturbation)
            point = _best_of(prob, lam, beta, [start], probe_iter, tol, gap_tol=gap_tol)
            # F only falls from here, by about the gap per update at most: follow the start
            # further only while it can still end below the point it would replace
            promising = point.objective - _NEIGHBOUR_GAPS * (point.gap_bits or 0.0) < out[j].objective
            if not point.converged and promising and point.iterations < max_iter:
                more = _best_of(prob, lam, beta, [point.mapping], max_iter - point.iterations, tol, gap_tol=gap_tol)
                point = dataclasses.replace(more, iterations=more.iterations + point.iterations)
            if point.objective < out[j].objective - 1e-12:
                out[j] = point
        if tick is not None:
            tick()
    return out


def _surface_row_from_neighbours_job(args: tuple) -> list[RDPoint]:
    return _surface_row_from_neighbours(*args)


def trace_surface(
    p_xy: np.ndarray,
    distortion: np.ndarray | FreeCodebook,
    lams: Sequence[float],
    betas: Sequence[float],
    *,
    n_restarts: int = 0,
    seed: int | np.random.Generator | None = 0,
    perturbation: float = 0.05,
    max_iter: int = 300,
    tol: float = 1e-9,
    jobs: int = 1,
    progress: bool = False,
    gap_tol: float = 1e-6,
    lam_neighbours: bool = True,
) -> list[RDPoint]:
    """Lagrangian solutions on the grid lams x betas, annealing in beta.

    For each lam, beta is swept upward with warm starts (the previous mapping, perturbed by
    ``perturbation`` in log-probability and mixed with a little of a random mapping) plus
    ``n_restarts`` random starts at every grid point, then back down with warm starts; each
    grid point keeps the lowest F found. Rows (lams) are independent, each with its own
    seed drawn from ``seed``, so ``jobs`` worker processes (one row each at a time) give
    exactly the points one process gives. Returns len(lams) * len(betas) points,
    row-major: point i * len(betas) + j is (lams[i], betas[j]). ``progress`` shows a tqdm
    bar. The defaults (at most 300 updates per solve, tol 1e-9) suit a sweep: each point
    reports whether it reached tol; solve single points with :func:`solve_lagrangian` for more.
    gap_tol (bits): a point also stops, converged, once its certificate gap is below it, and
    counts as converged only then (see :func:`solve_lagrangian`); 0 judges by tol alone.
    lam_neighbours: a second pass continues every point not yet converged for another
    max_iter updates (its ``iterations`` then exceed max_iter), and solves every point again
    from the solutions of the neighbouring lams at the same beta, keeping the lowest F (each
    row again in its own worker, so the points still do not depend on ``jobs``); it costs up
    to two solves per point.
    """
    prob = _prepare(p_xy, distortion)
    lam_list = [check_nonnegative(v, "lams entry") for v in np.atleast_1d(np.asarray(lams, dtype=object))]
    beta_list = [check_nonnegative(v, "betas entry") for v in np.atleast_1d(np.asarray(betas, dtype=object))]
    if not lam_list or not beta_list:
        raise ConfigError("lams and betas must each hold at least one value")
    n_restarts = _check_count(n_restarts, "n_restarts", minimum=0)
    max_iter = _check_count(max_iter, "max_iter")
    tol = _check_tol(tol)
    jobs = _check_count(jobs, "jobs")
    perturbation = check_nonnegative(perturbation, "perturbation")
    base = int(_rng(seed).integers(2**63))
    gap_tol = check_nonnegative(gap_tol, "gap_tol")
    rows = [(prob, lam, beta_list, (base, i), n_restarts, perturbation, max_iter, tol, gap_tol)
            for i, lam in enumerate(lam_list)]

    n_beta = len(beta_list)
    n_second = len(lam_list) if lam_neighbours else 0
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(lam_list) * (2 * n_beta - 1) + n_second * n_beta, desc="surface", unit="solve",
                   leave=False)
    pool = None
    try:
        if jobs > 1 and len(rows) > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # spawn: the parent may hold threads (BLAS, torch) that fork would copy mid-state
            pool = ProcessPoolExecutor(min(jobs, len(rows)), mp_context=multiprocessing.get_context("spawn"))

        def run_rows(function: Any, job: Any, args: list[tuple], solves_per_row: list[int]) -> list[list[RDPoint]]:
            if pool is None:
                tick = None if bar is None else (lambda: bar.update(1))
                return [function(*row, tick=tick) for row in args]
            out = []
            for row_points, solves in zip(pool.map(job, args), solves_per_row):
                out.append(row_points)
                if bar is not None:
                    bar.update(solves)
            return out

        results = run_rows(_surface_row, _surface_row_job, rows, [2 * n_beta - 1] * len(rows))
        if lam_neighbours:
            second = []
            for i, lam in enumerate(lam_list):
                near = [results[k] for k in (i - 1, i + 1) if 0 <= k < len(rows)]
                second.append((prob, lam, beta_list, (base, i), results[i], near, perturbation, max_iter, tol, gap_tol))
            results = run_rows(_surface_row_from_neighbours, _surface_row_from_neighbours_job, second,
                               [n_beta] * len(rows))
    finally:
        if pool is not None:
            pool.shutdown()
        if bar is not None:
            bar.close()
    return [p for row_points in results for p in row_points]


def rate_at(
    p_xy: np.ndarray,
    distortion: np.ndarray | FreeCodebook,
    max_distortion: float,
    min_semantic_info_bits: float,
    *,
    lam_bits: float | None = None,
    beta: float | None = None,
    init: np.ndarray | None = None,
    n_restarts: int | None = None,
    seed: int | np.random.Generator | None = 0,
    distortion_tol: float | None = None,
    bits_tol: float = 1e-5,
    max_outer: int = 200,
    max_iter: int = 200,
    tol: float = 1e-10,
    perturbation: float = 0.01,
) -> RDPoint:
    """The least rate with E d <= max_distortion and I(Xhat;Y) >= min_semantic_info_bits.

    Projected dual ascent on (lam, beta) with warm starts (docs/theory.md, "Targets"), with a
    sign-based step per multiplier so that no scale has to be known in advance:
        lam <- max(0, lam + eta_lam sign(D - D_p)),   beta <- max(0, beta + eta_beta sign(I_0 - I_Y)),
    eta growing by 1.5 while the sign of the violation holds and halving when it flips; each
    inner Lagrangian problem is solved as in :func:`solve_lagrangian` from the previous mapping.

    Stops when both constraints hold to within ``distortion_tol`` (default 1e-5 of the
    distortion range) and ``bits_tol`` and each multiplier is zero or its constraint is
    tight (KKT); ``converged`` reports that. Each inner solve runs at most ``max_iter``
    updates, continuing from the previous mapping, so slow modes of the inner iteration
    (fine quantisations) do not stall the ascent; the returned mapping is always a real
    mapping meeting the constraints, so its rate is achievable. If the ascent stalls on a
    flat stretch of the surface (where the Lagrangian does not pin one point) or ends
    without KKT, the best feasible point seen or on the segment between the last feasible
    and infeasible solutions is returned with converged=False. The Lagrangian reaches only
    the lower convex envelope of the surface, so in a non-convex region the result is an
    upper bound on R(D_p, I_0).
    lam_bits, beta, init: warm start (e.g. from a neighbouring call).
    Raises InfeasibleConstraintsError when the constraints cannot be met: D_p below the
    least achievable distortion, I_0 above I(X;Y), or no feasible mapping found.
    """
    prob = _prepare(p_xy, distortion)
    target_d = math.inf if max_distortion == math.inf else check_nonnegative(max_distortion, "max_distortion")
    target_i = check_nonnegative(min_semantic_info_bits, "min_semantic_info_bits")
    bits_tol = check_nonnegative(bits_tol, "bits_tol")
    max_outer = _check_count(max_outer, "max_outer")
    max_iter = _check_count(max_iter, "max_iter")
    tol = _check_tol(tol)
    rng = _rng(seed)

    d_min = min_distortion(prob.px, prob.distortion)
    d_zero = zero_rate_distortion(prob.px, prob.distortion)
    d_range = max(d_zero - d_min, 1e-12)
    d_tol = 1e-5 * d_range if distortion_tol is None else check_nonnegative(distortion_tol, "distortion_tol")
    if prob.codebook is None and target_d < d_min - d_tol:
        raise InfeasibleConstraintsError(
            f"max_distortion {target_d:.6g} is below the least achievable expected distortion {d_min:.6g} "
            "(every x sent to its nearest reconstruction)"
        )
    if target_i > prob.i_xy_bits + bits_tol:
        raise InfeasibleConstraintsError(
            f"min_semantic_info_bits {target_i:.6g} exceeds I(X;Y) = {prob.i_xy_bits:.6g} bits, "
            "the most any reconstruction can keep"
        )

    if target_i <= bits_tol and target_d >= d_zero and prob.codebook is None:
        # rate 0 meets both: everything to the reconstruction that is best on average
        best = int((prob.px @ prob.distortion).argmin())
        q = np.zeros((prob.n_x, prob.n_xhat))
        q[:, best] = 1.0
        with np.errstate(**_QUIET):
            state = _Iteration(prob, 0.0, 0.0).state(np.log(q), q, None)
        return _finish(prob, _Run(state, 0, True, None), 0.0, 0.0)

    lam_scale = max(prob.h_x_bits, 1e-3) / d_range  # bits per unit distortion, the natural scale
    lam = (0.0 if target_d >= d_zero else lam_scale) if lam_bits is None else check_nonnegative(lam_bits, "lam_bits")
    b = (0.0 if target_i <= 0.0 else 1.0) if beta is None else check_nonnegative(beta, "beta")
    # per-multiplier step sizes (sign-based, "Rprop"): the violation's sign sets the direction,
    # the step grows by 1.5 while it keeps its sign and halves when it flips
    steps = [0.5 * max(lam, lam_scale), 0.5 * max(b, 1.0)]
    last_sign = [0, 0]
    mapping = None if init is None else check_mapping(init, prob.n_x, prob.n_xhat)
    if n_restarts is None:
        n_first = 1 if b == 0.0 else DEFAULT_RESTARTS_NONCONVEX
    else:
        n_first = _check_count(n_restarts, "n_restarts")

    total_iterations = 0
    best_feasible: RDPoint | None = None
    last_feasible: RDPoint | None = None
    last_infeasible: RDPoint | None = None
    point: RDPoint | None = None
    done = False
    over_dual = 0
    no_progress = 0
    for _ in range(max_outer):
        no_progress += 1
        if mapping is None:
            starts = [random_mapping(rng, prob.n_x, prob.n_xhat) for _ in range(n_first)]
        else:
            starts = [perturb_mapping(mapping, rng, perturbation)]
        point = _best_of(prob, lam, b, starts, max_iter, tol)
        total_iterations += point.iterations
        mapping = point.mapping
        g_d = point.distortion - target_d  # > 0: pixel constraint violated, raise lam
        g_i = target_i - point.semantic_info_bits  # > 0: semantic constraint violated, raise beta
        feasible = g_d <= d_tol and g_i <= bits_tol
        if feasible:
            last_feasible = point
            if best_feasible is None or point.rate_bits < best_feasible.rate_bits - 1e-9:
                best_feasible = point
                no_progress = 0
        else:
            last_infeasible = point
        slack_ok = (lam == 0.0 or g_d >= -d_tol) and (b == 0.0 or g_i >= -bits_tol)
        if feasible and slack_ok:
            done = True
            break
        # weak duality: the dual value never exceeds the least feasible rate, which is <= H(X)
        dual = point.objective - (lam * target_d if lam > 0.0 else 0.0) + b * target_i
        over_dual = over_dual + 1 if dual > prob.h_x_bits + 0.1 else 0
        if over_dual >= 5 and best_feasible is None:
            break
        multipliers = [lam, b]
        moved = []
        for k, (g, tol_k) in enumerate(((g_d, d_tol), (g_i, bits_tol))):
            sign = 0 if abs(g) <= tol_k else (1 if g > 0 else -1)
            if sign == 0 or (sign < 0 and multipliers[k] == 0.0):
                continue  # satisfied, or slack with the multiplier already at zero
            if last_sign[k] == -sign:
                steps[k] *= 0.5
            elif last_sign[k] == sign:
                steps[k] *= 1.5
            last_sign[k] = sign
            multipliers[k] = max(0.0, multipliers[k] + sign * steps[k])
            moved.append(k)
        lam, b = multipliers
        scales = (max(lam, lam_scale), max(b, 1.0))
        if moved and all(steps[k] < 1e-9 * scales[k] for k in moved):
            break  # the multipliers have stopped moving: a flat (linear) stretch of the surface
        if best_feasible is not None and no_progress >= 30:
            break  # feasible points stopped improving: the same, seen from the primal side

    if done and point is not None:
        result = point
        converged = True
    else:
        if last_feasible is not None and last_infeasible is not None:
            polished = _polish(prob, last_feasible, last_infeasible, target_d, target_i, d_tol, bits_tol)
            if best_feasible is None or polished.rate_bits < best_feasible.rate_bits:
                best_feasible = polished
        if best_feasible is None:
            assert point is not None
            raise InfeasibleConstraintsError(
                f"could not meet E d <= {target_d:.6g} and I(Xhat;Y) >= {target_i:.6g} bits together; the last "
                f"mapping had E d = {point.distortion:.6g}, I(Xhat;Y) = {point.semantic_info_bits:.6g} bits at "
                f"lam_bits = {lam:.4g}, beta = {b:.4g} (the constraints are probably jointly infeasible)"
            )
        result = best_feasible
        converged = False
    return RDPoint(
        rate_bits=result.rate_bits,
        distortion=result.distortion,
        semantic_info_bits=result.semantic_info_bits,
        semantic_distortion_bits=result.semantic_distortion_bits,
        objective=result.objective,
        mapping=result.mapping,
        iterations=total_iterations,
        converged=converged,
        lam_bits=result.lam_bits,
        beta=result.beta,
        rate_lower_bound_bits=result.rate_lower_bound_bits,
        blahut_max_c=result.blahut_max_c,
        codebook=result.codebook,
    )
