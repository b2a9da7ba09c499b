"""Issue 22: the exact-encoder (Newton) step certifies solves and surface points that the
extrapolated fixed-point iteration alone left uncertified, at the same objective."""

from __future__ import annotations

import numpy as np
import pytest

from tosc.errors import ConfigError
from tosc.theory import FreeCodebook, make_source, solve_lagrangian, trace_surface
from tosc.theory.benchmark_problems import synthetic_problem
from tosc.theory.solver import _mixture_weights, _prepare, _surface_row


def blahut_dual(kernel: np.ndarray, weights: np.ndarray, r: np.ndarray, updates: int) -> np.ndarray:
    """Plain Blahut updates r <- r c on the dual (the slow reference)."""
    for _ in range(updates):
        r = r * (weights @ (kernel / (kernel @ r)[:, None]))
    return r / r.sum()


def dual_value(kernel: np.ndarray, weights: np.ndarray, r: np.ndarray) -> float:
    return float(weights @ np.log(kernel @ r))


def test_newton_on_blahuts_dual_meets_its_optimality_conditions():
    rng = np.random.default_rng(0)
    weights = rng.dirichlet(np.ones(40))
    kernel = np.exp(-6.0 * rng.uniform(0.0, 1.0, (40, 30)))
    start = np.full(30, 1.0 / 30)
    r = _mixture_weights(kernel, weights, start)
    c = weights @ (kernel / (kernel @ r)[:, None])
    assert r.min() >= 0.0 and r.sum() == pytest.approx(1.0, abs=1e-12)
    assert 0 < (r > 0).sum() < 30  # the optimum drops some letters exactly
    assert c.max() <= 1.0 + 1e-12  # Blahut's condition: c <= 1 everywhere ...
    np.testing.assert_allclose(c[r > 0], 1.0, atol=1e-9)  # ... with equality on the support
    slow = blahut_dual(kernel, weights, start, 20_000)
    assert dual_value(kernel, weights, r) >= dual_value(kernel, weights, slow) - 1e-12
    assert dual_value(kernel, weights, r) == pytest.approx(dual_value(kernel, weights, slow), abs=1e-8)
    # a letter the optimum needs but the start lacks is brought in
    without = r.copy()
    without[int(r.argmax())] = 0.0
    again = _mixture_weights(kernel, weights, without)
    assert dual_value(kernel, weights, again) == pytest.approx(dual_value(kernel, weights, r), abs=1e-10)


def test_a_slow_solve_now_certifies_within_a_few_hundred_updates():
    """The feature source at lam = 20, beta = 2 needed 1380 updates to certify a 1e-6-bit gap
    before issue 22's exact-encoder step; the objective is the tol-only run's."""
    p, d = synthetic_problem("feature")
    fast = solve_lagrangian(p, d, 20.0, 2.0, n_restarts=1, seed=1, tol=1e-10, gap_tol=1e-6, max_iter=700)
    assert fast.converged and fast.gap_bits < 1e-6
    reference = solve_lagrangian(p, d, 20.0, 2.0, n_restarts=1, seed=1, tol=1e-10, max_iter=20_000)
    assert reference.converged
    assert fast.objective == pytest.approx(reference.objective, abs=1e-7)
    assert fast.rate_bits == pytest.approx(reference.rate_bits, abs=1e-3)


@pytest.mark.parametrize("lam, beta", [(1.0, 0.0), (0.0, 4.0), (1.5, 3.0), (6.0, 20.0)])
def test_objective_never_increases_with_exact_encoder_steps(lam, beta):
    rng = np.random.default_rng(7)
    p = rng.dirichlet(np.ones(40) * 0.5).reshape(10, 4)
    d = rng.uniform(0.0, 2.0, (10, 12))
    # tol out of reach: no revival restart (its mixed start may lie above), only updates
    point = solve_lagrangian(p, d, lam, beta, n_restarts=1, seed=5, record_history=True, max_iter=400,
                             tol=1e-300, gap_tol=1e-11)
    history = point.objective_history
    assert point.converged
    assert np.all(np.diff(history) <= 1e-12 * max(1.0, abs(history[0])))
    assert history[-1] == pytest.approx(point.objective, abs=1e-9)


def test_exact_encoder_with_a_free_codebook():
    src = make_source("gaussian", levels=24, y_levels=8)
    book = FreeCodebook(src.x_points, np.linspace(-2.0, 2.0, 6)[:, None], src.offsets)
    point = solve_lagrangian(src.p_xy, book, 2.0, 2.0, n_restarts=1, record_history=True, max_iter=2000,
                             gap_tol=1e-9)
    history = point.objective_history
    assert np.all(np.diff(history) <= 1e-12 * max(1.0, abs(history[0])))
    plain = solve_lagrangian(src.p_xy, book, 2.0, 2.0, n_restarts=1, max_iter=20_000, tol=1e-13)
    assert point.objective <= plain.objective + 1e-8


def test_surface_point_that_stayed_uncertified_now_certifies():
    """Row lam = 30 of theory_bench's 10 x 10 surface: at beta = 3.58 the down sweep's warm
    start left a gap of 3e-4 bits after 2000 updates before issue 22 (letters stuck at
    negligible mass); the exact-encoder step certifies it."""
    p, d = synthetic_problem("random")
    betas = [0.0, *np.geomspace(1.0, 30.0, 9)]
    base = int(np.random.default_rng(0).integers(2**63))
    row = _surface_row(_prepare(p, d), 30.0, betas, (base, 9), 0, 0.05, 2000, 1e-9, 1e-6)
    assert all(q.converged and q.gap_bits < 1e-6 for q in row)
    assert max(q.iterations for q in row) < 2000


def test_lam_neighbour_pass_only_lowers_the_objective():
    rng = np.random.default_rng(4)
    p = rng.dirichlet(np.ones(120) * 0.5).reshape(30, 4)
    d = rng.uniform(0.0, 1.0, (30, 30))
    lams, betas = [0.5, 2.0, 8.0], [2.0, 6.0, 20.0]
    first = trace_surface(p, d, lams, betas, max_iter=2000, lam_neighbours=False)
    both = trace_surface(p, d, lams, betas, max_iter=2000)
    f_first = np.array([q.objective for q in first])
    f_both = np.array([q.objective for q in both])
    assert np.all(f_both <= f_first + 1e-12)
    assert all(q.converged for q in both)


def test_unknown_problem_kind():
    with pytest.raises(ConfigError, match="unknown problem kind"):
        synthetic_problem("nope")
