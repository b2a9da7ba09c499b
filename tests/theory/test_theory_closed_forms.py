"""Closed forms of docs/theory.md (to 1e-3 bits) and the derived vector Gaussian / binary pair cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import minimize

from tosc.errors import ConfigError
from tosc.theory import InfeasibleConstraintsError
from tosc.theory import closed_forms as cf

ATOL = 1e-3  # the tolerance; the formulas below match docs/theory.md's printed digits


@pytest.mark.parametrize("d, rate", [(0.11, 0.500084), (0.25, 0.188722)])
def test_binary_hamming(d, rate):
    assert cf.binary_hamming_rate(d) == pytest.approx(rate, abs=1e-6)
    assert cf.binary_hamming_lam_bits(d) == pytest.approx(math.log((1 - d) / d) / math.log(2))


def test_mary_hamming():
    assert cf.mary_hamming_rate(4, 0.2) == pytest.approx(0.961079, abs=1e-6)
    assert cf.mary_hamming_lam_bits(4, 0.2) * math.log(2) == pytest.approx(math.log(12))
    assert cf.mary_hamming_rate(2, 0.11) == pytest.approx(cf.binary_hamming_rate(0.11))
    assert cf.mary_hamming_rate(4, 0.8) == 0.0


def test_gaussian_rate():
    assert cf.gaussian_rate(1.0, 0.25) == pytest.approx(1.0)
    assert cf.gaussian_rate(4.0, 0.1) == pytest.approx(0.5 * math.log2(40))
    assert cf.gaussian_rate(1.0, 2.0) == 0.0


def test_dsbs_information_bottleneck():
    assert cf.dsbs_rate(0.1, 0.3) == pytest.approx(0.495211, abs=1e-6)
    # the curve and its inverse agree
    assert cf.dsbs_semantic_info(0.1, cf.dsbs_rate(0.1, 0.3)) == pytest.approx(0.3, abs=1e-9)
    assert cf.dsbs_critical_beta(0.1) == pytest.approx(1 / 0.64)
    for beta, (rate, info) in [(2.0, (0.696433, 0.407234)), (3.0, (0.948951, 0.516595)), (1.5, (0.0, 0.0))]:
        r, i = cf.dsbs_lagrangian(0.1, beta)
        assert r == pytest.approx(rate, abs=1e-6) and i == pytest.approx(info, abs=1e-6)


def test_dsbs_lagrangian_is_the_minimum_of_the_curve():
    rates = np.linspace(0.0, 1.0, 20001)
    for beta in (1.7, 2.0, 3.0, 8.0):
        f = [r - beta * cf.dsbs_semantic_info(0.1, r) for r in rates[::50]]
        r, i = cf.dsbs_lagrangian(0.1, beta)
        assert r - beta * i <= min(f) + 1e-9


def test_deterministic_label():
    assert cf.deterministic_lagrangian(1.0, 1.5) == (1.0, 1.0)
    assert cf.deterministic_lagrangian(1.0, 0.9) == (0.0, 0.0)
    with pytest.raises(ConfigError, match="beta = 1"):
        cf.deterministic_lagrangian(1.0, 1.0)


def test_gaussian_information_bottleneck():
    for beta, (rate, info) in [(2.0, (1.0, 0.660964)), (5.0, (2.0, 1.0))]:
        r, i = cf.gaussian_ib_lagrangian(0.8, beta)
        assert r == pytest.approx(rate, abs=1e-6) and i == pytest.approx(info, abs=1e-6)
    assert cf.gaussian_ib_lagrangian(0.8, 1.2) == (0.0, 0.0)  # below 1 / rho^2
    assert cf.gaussian_ib_rate(0.8, cf.gaussian_ib_semantic_info(0.8, 1.3)) == pytest.approx(1.3)
    with pytest.raises(InfeasibleConstraintsError):
        cf.gaussian_ib_rate(0.8, 1.2)  # I(X;Y) = 1.161 bits


def test_joint_scalar_gaussian():
    i_xy = -0.5 * math.log2(1 - 0.8)
    d_s = i_xy - 0.9
    assert cf.gaussian_joint_rate(1.0, 0.8, 0.5, d_s) == pytest.approx(1.599010, abs=1e-6)  # semantic binds
    assert cf.gaussian_joint_rate(1.0, 0.8, 0.1, d_s) == pytest.approx(1.660964, abs=1e-6)  # pixel binds
    assert cf.gaussian_joint_rate(1.0, 0.8, 0.5, 0.0) == math.inf
    assert cf.gaussian_joint_rate(1.0, 0.8, 2.0, i_xy) == 0.0


def test_uncoded_awgn_lies_on_the_information_curve():
    check = cf.uncoded_awgn(10.0, 0.8)
    assert check.distortion == pytest.approx(0.090909, abs=1e-6)
    assert check.semantic_info_bits == pytest.approx(0.937235, abs=1e-6)
    assert check.rate_bits == pytest.approx(1.729716, abs=1e-6)
    assert cf.gaussian_ib_semantic_info(0.8, check.rate_bits) == pytest.approx(check.semantic_info_bits, abs=1e-12)
    assert cf.gaussian_rate(1.0, check.distortion) == pytest.approx(check.rate_bits, abs=1e-12)


@pytest.mark.parametrize(
    "call",
    [
        lambda: cf.binary_hamming_rate(-0.1),
        lambda: cf.mary_hamming_rate(1, 0.1),
        lambda: cf.gaussian_rate(-1.0, 0.1),
        lambda: cf.dsbs_rate(0.6, 0.1),
        lambda: cf.gaussian_ib_lagrangian(1.0, 2.0),
        lambda: cf.vector_gaussian_rate([1.0, 1.0], [0.5], 0.5, 0.1),
        lambda: cf.vector_gaussian_rate([1.0], [0.5], 0.0, 0.1),
    ],
)
def test_bad_parameters_are_config_errors(call):
    with pytest.raises(ConfigError):
        call()


# ---------------------------------------------------------------------- derived cases


def test_binary_pair_against_brute_force():
    """Two bits, Y = first bit: the semantic cap on D_1 against a grid search over (D_1, D_2)."""
    grid = np.linspace(0.0, 0.5, 2001)
    rb = np.array([cf.binary_hamming_rate(d) for d in grid])
    for d_p, i0 in [(0.6, 0.5), (0.3, 0.5), (0.6, 0.9), (0.9, 0.2), (0.2, 0.0)]:
        d1, d2 = np.meshgrid(grid, grid, indexing="ij")
        ok = (d1 + d2 <= d_p + 1e-12) & (1.0 - rb[:, None] >= -1e-12) & (rb[:, None] >= i0 - 1e-12)
        brute = np.where(ok, rb[:, None] + rb[None, :], np.inf).min()
        assert cf.binary_pair_rate(d_p, i0) == pytest.approx(brute, abs=2e-3)
        assert cf.binary_pair_rate(d_p, i0) <= brute + 1e-9


def test_binary_pair_lagrangian_against_brute_force():
    grid = np.linspace(1e-9, 0.5, 4001)
    rb = np.array([cf.binary_hamming_rate(d) for d in grid])
    for lam, beta in [(2.0, 3.0), (1.0, 5.0), (0.5, 0.5), (1.5, 0.0)]:
        # F = R1 + R2 + lam (D1 + D2) - beta R1 over independent BSC test channels
        f1 = ((1.0 - beta) * rb + lam * grid).min()
        f2 = (rb + lam * grid).min()
        assert cf.binary_pair_lagrangian(lam, beta) == pytest.approx(f1 + f2, abs=1e-5)


def _slsqp_rate(s, a, d_p, i0):
    """Independent numerical solution of the convex program of vector_gaussian_rate."""
    cons = [
        {"type": "ineq", "fun": lambda r: d_p - np.sum(s * 2.0 ** (-2 * r))},
        {"type": "ineq", "fun": lambda r: np.sum(-0.5 * np.log2(1 - a + a * 2.0 ** (-2 * r))) - i0},
    ]
    best = math.inf
    for x0 in (np.ones_like(s), 3 * np.ones_like(s)):
        res = minimize(lambda r: r.sum(), x0, jac=lambda r: np.ones_like(r), bounds=[(0, 30)] * len(s),
                       constraints=cons, method="SLSQP", options={"ftol": 1e-12, "maxiter": 500})
        if res.success:
            best = min(best, res.fun)
    return best


def test_vector_gaussian_matches_a_generic_convex_solver():
    rng = np.random.default_rng(1)
    seen = set()
    for _ in range(12):
        s = rng.uniform(0.2, 2.0, 4)
        a = rng.uniform(0.0, 0.95, 4) * (rng.random(4) < 0.6)
        a[0] = max(a[0], 0.3)
        i_xy = float((-0.5 * np.log2(1 - a)).sum())
        d_p, i0 = rng.uniform(0.1, 1.0) * s.sum(), rng.uniform(0.1, 0.9) * i_xy
        sol = cf.vector_gaussian_rate(s, a, d_p, i0)
        seen.add(sol.binding)
        assert sol.rate_bits == pytest.approx(_slsqp_rate(s, a, d_p, i0), abs=1e-6)
        assert sol.distortion <= d_p + 1e-9 and sol.semantic_info_bits >= i0 - 1e-9
    assert {"pixel", "semantic"} <= seen


def test_vector_gaussian_both_bind_and_semantic_cap():
    """One relevant and one irrelevant unit-variance component: the relevant one sits below
    the water level, the irrelevant one at it."""
    sol = cf.vector_gaussian_rate([1.0, 1.0], [0.8, 0.0], 0.8, 0.9)
    assert sol.binding == "both"
    assert sol.rate_bits == pytest.approx(_slsqp_rate(np.ones(2), np.array([0.8, 0.0]), 0.8, 0.9), abs=1e-6)
    assert sol.distortions[1] == pytest.approx(sol.water_level)
    assert sol.distortions[0] < 0.5 * sol.water_level
    assert sol.distortion == pytest.approx(0.8) and sol.semantic_info_bits == pytest.approx(0.9)
    # KKT: the Lagrangian at the returned multipliers gives back the same allocation
    lag = cf.vector_gaussian_lagrangian([1.0, 1.0], [0.8, 0.0], sol.lam_bits, sol.beta)
    np.testing.assert_allclose(lag.rates_bits, sol.rates_bits, atol=1e-8)


def test_vector_gaussian_reduces_to_known_cases():
    i_xy = -0.5 * math.log2(0.2)
    for d_p in (0.5, 0.1):  # one relevant component: the scalar joint closed form
        sol = cf.vector_gaussian_rate([1.0], [0.8], d_p, 0.9)
        assert sol.rate_bits == pytest.approx(cf.gaussian_joint_rate(1.0, 0.8, d_p, i_xy - 0.9), abs=1e-9)
    # no semantic constraint: classic reverse water-filling, D_i = min(sigma_i^2, w)
    s = np.array([2.0, 1.0, 0.3])
    sol = cf.vector_gaussian_rate(s, [0.5, 0.0, 0.0], 1.5, 0.0)
    w = 0.6  # min(2, w) + min(1, w) + min(0.3, w) = 1.5
    np.testing.assert_allclose(sol.distortions, np.minimum(s, w), atol=1e-9)
    assert sol.rate_bits == pytest.approx(0.5 * math.log2(2 / w) + 0.5 * math.log2(1 / w), abs=1e-9)
    # lam = 0: the Gaussian information bottleneck of each relevant component
    lag = cf.vector_gaussian_lagrangian([1.0, 1.0], [0.8, 0.0], 0.0, 5.0)
    assert lag.rates_bits[0] == pytest.approx(2.0) and lag.rates_bits[1] == 0.0


def test_vector_gaussian_infeasible():
    with pytest.raises(InfeasibleConstraintsError, match="I\\(X;Y\\)"):
        cf.vector_gaussian_rate([1.0, 1.0], [0.8, 0.0], 0.5, 1.2)
