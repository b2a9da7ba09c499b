"""The numerical solver against docs/theory.md's closed forms, its guarantees and its input checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tosc.errors import ConfigError, DataError, ToscError
from tosc.theory import (
    FreeCodebook,
    InfeasibleConstraintsError,
    make_source,
    rate_at,
    solve_lagrangian,
    trace_surface,
)
from tosc.theory import closed_forms as cf
from tosc.theory.reference import plain_update
from tosc.theory.solver import _Iteration, _prepare, random_mapping

ATOL = 1e-3  # bits, the tolerance for docs/theory.md's numbers
LN2 = math.log(2.0)


def dsbs(eps: float = 0.1) -> np.ndarray:
    return np.array([[1 - eps, eps], [eps, 1 - eps]]) / 2.0


def hamming(n: int, m: int | None = None) -> np.ndarray:
    m = n if m is None else m
    return (np.arange(n)[:, None] != np.arange(m)[None, :]).astype(float)


# ------------------------------------------------------------------ closed forms, numerically


@pytest.mark.parametrize("d, rate", [(0.11, 0.500084), (0.25, 0.188722)])
def test_binary_symmetric_rate_distortion(d, rate):
    point = solve_lagrangian(np.eye(2) / 2, hamming(2), math.log2((1 - d) / d), 0.0)
    assert point.converged
    assert point.rate_bits == pytest.approx(rate, abs=ATOL)
    assert point.distortion == pytest.approx(d, abs=ATOL)


def test_mary_rate_distortion():
    point = solve_lagrangian(np.eye(4) / 4, hamming(4), math.log(12) / LN2, 0.0)
    assert point.rate_bits == pytest.approx(0.961079, abs=ATOL)
    assert point.distortion == pytest.approx(0.2, abs=ATOL)


@pytest.mark.parametrize("n_xhat", [2, 3])
@pytest.mark.parametrize("beta, rate, info", [(2.0, 0.696433, 0.407234), (3.0, 0.948951, 0.516595), (1.5, 0.0, 0.0)])
def test_dsbs_information_bottleneck(beta, rate, info, n_xhat):
    point = solve_lagrangian(dsbs(0.1), np.zeros((2, n_xhat)), 0.0, beta, seed=1)
    assert point.rate_bits == pytest.approx(rate, abs=ATOL)
    assert point.semantic_info_bits == pytest.approx(info, abs=ATOL)
    i_xy = 1 - cf.binary_entropy(0.1)
    assert point.semantic_distortion_bits == pytest.approx(i_xy - point.semantic_info_bits, abs=1e-12)


def test_dsbs_rate_at_semantic_level():
    point = rate_at(dsbs(0.1), np.zeros((2, 2)), 1.0, 0.3)
    assert point.converged
    assert point.rate_bits == pytest.approx(0.495211, abs=ATOL)
    assert point.semantic_info_bits >= 0.3 - 1e-4


def test_binary_rate_at_pixel_level():
    point = rate_at(np.eye(2) / 2, hamming(2), 0.11, 0.0)
    assert point.converged and point.beta == 0.0
    assert point.rate_bits == pytest.approx(0.500084, abs=ATOL)
    assert point.lam_bits == pytest.approx(math.log2(0.89 / 0.11), rel=1e-2)


@pytest.mark.parametrize("beta, rate", [(1.5, 1.0), (0.9, 0.0)])
def test_deterministic_label(beta, rate):
    """X uniform on 4 values, Y = first bit: I(Xhat;Y) = min(R, H(Y))."""
    p = np.zeros((4, 2))
    p[[0, 1], 0] = p[[2, 3], 1] = 0.25
    point = solve_lagrangian(p, np.zeros((4, 4)), 0.0, beta)
    assert point.rate_bits == pytest.approx(rate, abs=ATOL)
    assert point.semantic_info_bits == pytest.approx(rate, abs=ATOL)


@pytest.mark.parametrize(
    "d_p, i0",
    [(0.6, 0.5), (0.36, 0.8), (0.25, 0.95), (0.3, 0.0)],
)
def test_two_bits_both_constraints(d_p, i0):
    """Two bits, Y = first bit, distortion = wrong bits: the discrete case where both
    constraints bind (semantic cap on the first bit) against the derived closed form."""
    src = make_source("two-bits")
    point = rate_at(src.p_xy, src.distortion, d_p, i0)
    assert point.rate_bits == pytest.approx(cf.binary_pair_rate(d_p, i0), abs=ATOL)
    assert point.distortion <= d_p + 1e-4 and point.semantic_info_bits >= i0 - 1e-4


# ------------------------------------------------------------------ guarantees of the iteration


def test_blahut_certificate_at_beta_zero():
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(12)).reshape(6, 2)
    d = rng.uniform(0.0, 1.0, (6, 5))
    point = solve_lagrangian(p, d, 8.0, 0.0)
    assert point.converged and point.rate_bits > 0.1
    assert point.blahut_max_c == pytest.approx(1.0, abs=1e-9)
    assert -1e-12 <= point.rate_bits - point.rate_lower_bound_bits < 1e-8
    # a run stopped early is not certified: the bound shows the gap
    early = solve_lagrangian(p, d, 8.0, 0.0, max_iter=2, accelerate=False)
    assert not early.converged
    assert early.blahut_max_c > 1.0 + 1e-6
    assert early.rate_bits - early.rate_lower_bound_bits > 1e-5
    # still a valid bound: the line R(D) >= bound + lam (D_early - D) holds at the optimum's D
    assert early.rate_lower_bound_bits + 8.0 * (early.distortion - point.distortion) <= point.rate_bits + 1e-9
    assert solve_lagrangian(p, d, 8.0, 0.5).rate_lower_bound_bits is None


def test_certificate_gap_at_beta_zero_is_blahuts():
    """At beta = 0 the gap is Blahut's: rate minus his lower bound; it bounds the distance to
    the global optimum from above, also for a run stopped early."""
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(12)).reshape(6, 2)
    d = rng.uniform(0.0, 1.0, (6, 5))
    best = solve_lagrangian(p, d, 8.0, 0.0, tol=1e-14)
    assert 0.0 <= best.gap_bits < 1e-9
    for max_iter in (1, 2, 5):
        early = solve_lagrangian(p, d, 8.0, 0.0, max_iter=max_iter, accelerate=False)
        assert early.gap_bits == pytest.approx(early.rate_bits - early.rate_lower_bound_bits, abs=1e-12)
        assert early.objective - early.gap_bits <= best.objective + 1e-12 <= early.objective + 1e-12
        assert early.gap_bits > 1e-6


@pytest.mark.parametrize("lam, beta", [(0.0, 4.0), (1.5, 3.0), (6.0, 20.0)])
def test_certificate_gap_bounds_the_next_update_at_beta_above_zero(lam, beta):
    """At beta > 0 the gap bounds F minus the best F over encoders for the point's decoder; one
    more update (that best encoder, then the decoder it induces) cannot go lower."""
    rng = np.random.default_rng(7)
    p = rng.dirichlet(np.ones(40) * 0.5).reshape(10, 4)
    d = rng.uniform(0.0, 2.0, (10, 12))
    for k in (1, 3, 10):
        now = solve_lagrangian(p, d, lam, beta, n_restarts=1, seed=5, max_iter=k, accelerate=False)
        nxt = solve_lagrangian(p, d, lam, beta, n_restarts=1, seed=5, max_iter=k + 1, accelerate=False)
        assert now.gap_bits > 0.0
        assert now.objective - nxt.objective <= now.gap_bits + 1e-12
    done = solve_lagrangian(p, d, lam, beta, n_restarts=1, seed=5, gap_tol=1e-9)
    assert done.converged and done.gap_bits < 1e-9


def test_gap_tol_stops_early_and_revives_a_stuck_reconstruction():
    """A reconstruction at a negligible mass changes nothing per update, so tol alone calls a
    bad mapping converged; the certificate does not, and gap_tol revives it."""
    p, d = dsbs(0.0), hamming(2)
    stuck = np.array([[1.0, 1e-200], [1.0, 1e-200]])
    stuck /= stuck.sum(axis=1, keepdims=True)
    lam = cf.binary_hamming_lam_bits(0.11)
    fooled = solve_lagrangian(p, d, lam, 0.0, init=stuck, n_restarts=1, tol=1e-10)
    assert fooled.converged and fooled.rate_bits < 1e-6 and fooled.gap_bits > 0.1
    fixed = solve_lagrangian(p, d, lam, 0.0, init=stuck, n_restarts=1, tol=1e-10, gap_tol=1e-9)
    assert fixed.converged and fixed.gap_bits < 1e-9
    assert fixed.rate_bits == pytest.approx(cf.binary_hamming_rate(0.11), abs=1e-6)
    rng = np.random.default_rng(2)
    p, d = rng.dirichlet(np.ones(90)).reshape(30, 3), rng.uniform(0.0, 1.0, (30, 30))
    quick = solve_lagrangian(p, d, 8.0, 0.0, tol=1e-14, gap_tol=1e-6, accelerate=False)
    full = solve_lagrangian(p, d, 8.0, 0.0, tol=1e-14, accelerate=False)
    assert quick.converged and quick.gap_bits < 1e-6 and quick.iterations < full.iterations / 2
    assert quick.objective == pytest.approx(full.objective, abs=1e-6)


def test_trace_surface_points_are_certified():
    rng = np.random.default_rng(11)
    p = rng.dirichlet(np.ones(60) * 0.5).reshape(15, 4)
    d = rng.uniform(0.0, 1.0, (15, 15))
    points = trace_surface(p, d, [0.0, 2.0, 10.0], [0.0, 3.0, 30.0], max_iter=3000)
    assert all(q.converged and q.gap_bits < 1e-6 for q in points)
    loose = trace_surface(p, d, [0.0, 2.0, 10.0], [0.0, 3.0, 30.0], max_iter=3000, gap_tol=0.0, tol=1e-6)
    assert all(q.gap_bits is not None for q in loose)


@pytest.mark.parametrize("accelerate", [False, True])
@pytest.mark.parametrize("lam, beta", [(1.0, 0.0), (0.0, 4.0), (1.5, 3.0)])
def test_objective_never_increases(lam, beta, accelerate):
    rng = np.random.default_rng(7)
    p = rng.dirichlet(np.ones(40) * 0.5).reshape(10, 4)
    d = rng.uniform(0.0, 2.0, (10, 12))
    point = solve_lagrangian(p, d, lam, beta, n_restarts=1, seed=5, record_history=True, max_iter=400,
                             accelerate=accelerate)
    history = point.objective_history
    assert len(history) > 5
    assert np.all(np.diff(history) <= 1e-12 * max(1.0, abs(history[0])))
    assert history[-1] < history[0] - 1e-3  # it did move
    assert history[-1] == pytest.approx(point.objective, abs=1e-9)


def test_objective_never_increases_with_free_codebook():
    src = make_source("gaussian", levels=24, y_levels=8)
    book = FreeCodebook(src.x_points, np.linspace(-2.0, 2.0, 6)[:, None], src.offsets)
    point = solve_lagrangian(src.p_xy, book, 2.0, 2.0, n_restarts=1, record_history=True, max_iter=300)
    assert np.all(np.diff(point.objective_history) <= 1e-12)
    # the codebook ended at the centroids E[X | Xhat]
    w = src.p_xy.sum(1)[:, None] * point.mapping
    alive = w.sum(0) > 1e-9
    centroids = (w.T @ src.x_points)[alive] / w.sum(0)[alive, None]
    np.testing.assert_allclose(point.codebook[alive], centroids, atol=1e-6)


def test_vectorised_update_matches_plain_loop():
    rng = np.random.default_rng(11)
    p = rng.dirichlet(np.ones(35)).reshape(7, 5)
    d = rng.uniform(0.0, 3.0, (7, 9))
    q = random_mapping(rng, 7, 9)
    prob = _prepare(p, d)
    for lam, beta in [(0.7, 0.0), (1.3, 2.5), (0.0, 6.0)]:
        it = _Iteration(prob, lam * LN2, beta)
        _, q_new = it.step(it.state(np.log(q), q, None))
        np.testing.assert_allclose(q_new, plain_update(p, d, q, lam, beta), rtol=1e-10, atol=1e-13)


def test_log_domain_survives_huge_multipliers():
    """exp(-lam d) underflows in the linear domain; the log-domain updates do not."""
    p = np.eye(3) / 3
    d = hamming(3) * 50.0
    point = solve_lagrangian(p, d, 40.0, 0.0)  # lam d = 2000 bits
    assert np.isfinite(point.objective)
    assert point.distortion == pytest.approx(0.0, abs=1e-12)
    assert point.rate_bits == pytest.approx(math.log2(3), abs=1e-9)
    point = solve_lagrangian(dsbs(0.01), np.zeros((2, 3)), 0.0, 2000.0, n_restarts=2)
    assert point.semantic_info_bits == pytest.approx(1 - cf.binary_entropy(0.01), abs=1e-6)


def test_more_reconstructions_than_source_symbols():
    point = solve_lagrangian(np.eye(2) / 2, hamming(2, 5), math.log2(0.89 / 0.11), 0.0)
    assert point.mapping.shape == (2, 5)
    assert point.rate_bits == pytest.approx(0.500084, abs=ATOL)


# ------------------------------------------------------------------ non-convexity


def test_restarts_and_annealing_beat_one_random_start():
    """Two bits, Y = first bit, at lam = 2, beta = 3: a random start often ends coding the
    wrong bit (a local optimum); restarts and the annealed sweep reach the global one."""
    src = make_source("two-bits")
    best = cf.binary_pair_lagrangian(2.0, 3.0)
    singles = [solve_lagrangian(src.p_xy, src.distortion, 2.0, 3.0, n_restarts=1, seed=s).objective for s in range(8)]
    assert max(singles) > best + 0.1  # some single start is stuck
    assert min(singles) >= best - 1e-6  # none beats the closed form
    restarts = solve_lagrangian(src.p_xy, src.distortion, 2.0, 3.0, n_restarts=8, seed=0)
    assert restarts.objective == pytest.approx(best, abs=1e-6)
    betas = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0]
    surface = trace_surface(src.p_xy, src.distortion, [2.0], betas, n_restarts=0, seed=0)
    annealed = surface[betas.index(3.0)]
    assert annealed.objective == pytest.approx(best, abs=1e-6)
    for point, beta in zip(surface, betas):
        assert point.beta == beta
        assert point.objective >= cf.binary_pair_lagrangian(2.0, beta) - 1e-6


def test_trace_surface_layout_and_progress():
    lams, betas = [0.5, 2.0], [3.0, 0.0, 1.0]
    points = trace_surface(dsbs(0.1), hamming(2), lams, betas, seed=0, progress=True)
    assert [(p.lam_bits, p.beta) for p in points] == [(l, b) for l in lams for b in betas]
    for p in points:
        if p.beta == 0.0:
            assert p.rate_bits == pytest.approx(cf.binary_hamming_rate(1 / (1 + 2 ** p.lam_bits)), abs=1e-6)


def test_trace_surface_same_points_in_worker_processes():
    """Rows carry their own seeds: two worker processes give exactly one process's points."""
    src = make_source("two-bits")
    lams, betas = [0.5, 2.0, 4.0], [0.0, 1.0, 3.0]
    one = trace_surface(src.p_xy, src.distortion, lams, betas, seed=3)
    two = trace_surface(src.p_xy, src.distortion, lams, betas, seed=3, jobs=2)
    assert len(one) == len(two) == 9
    for a, b in zip(one, two):
        assert (a.lam_bits, a.beta) == (b.lam_bits, b.beta)
        np.testing.assert_array_equal(a.mapping, b.mapping)


def test_seed_makes_runs_repeatable():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(24)).reshape(8, 3)
    a = solve_lagrangian(p, np.zeros((8, 4)), 0.0, 5.0, seed=42)
    b = solve_lagrangian(p, np.zeros((8, 4)), 0.0, 5.0, seed=42)
    np.testing.assert_array_equal(a.mapping, b.mapping)


# ------------------------------------------------------------------ bad inputs


@pytest.mark.parametrize(
    "p, d, match",
    [
        (np.eye(2) / 3, hamming(2), "sums to"),
        (np.array([[0.75, -0.25], [0.25, 0.25]]), hamming(2), "negative"),
        (np.eye(2) / 2, hamming(3), "rows but p_xy has"),
        (np.ones(4) / 4, hamming(2), "2-D"),
        (np.array([[0.5, np.nan], [0.0, 0.5]]), hamming(2), "non-finite"),
        (np.eye(2) / 2, -hamming(2), "negative"),
        ([["a", "b"]], hamming(2), "numeric"),
    ],
)
def test_bad_arrays_are_data_errors(p, d, match):
    with pytest.raises(DataError, match=match):
        solve_lagrangian(p, d, 1.0, 0.0)
    with pytest.raises(DataError, match=match):
        rate_at(p, d, 0.2, 0.0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"lam_bits": -1.0}, "lam_bits must be a finite number >= 0"),
        ({"beta": -0.5}, "beta must be a finite number >= 0"),
        ({"lam_bits": math.nan}, "lam_bits"),
        ({"beta": math.inf}, "beta"),
        ({"n_restarts": 0}, "n_restarts"),
        ({"tol": 0.0}, "tol"),
        ({"init": np.ones((2, 2))}, "sums to"),
        ({"init": np.ones((3, 2)) / 2}, "shape"),
        ({"seed": -3}, "seed"),
    ],
)
def test_bad_parameters_are_config_or_data_errors(kwargs, match):
    args = {"lam_bits": 1.0, "beta": 0.0, **kwargs}
    lam, beta = args.pop("lam_bits"), args.pop("beta")
    with pytest.raises(ToscError, match=match):
        solve_lagrangian(np.eye(2) / 2, hamming(2), lam, beta, **args)


def test_bad_surface_grids():
    with pytest.raises(ConfigError, match="lams entry"):
        trace_surface(np.eye(2) / 2, hamming(2), [1.0, -1.0], [0.0])
    with pytest.raises(ConfigError, match="betas entry"):
        trace_surface(np.eye(2) / 2, hamming(2), [1.0], [-2.0])


def test_infeasible_constraints():
    p, d = dsbs(0.1), hamming(2)
    with pytest.raises(InfeasibleConstraintsError, match="least achievable expected distortion"):
        rate_at(p, d + 0.1, 0.05, 0.0)
    with pytest.raises(InfeasibleConstraintsError, match="exceeds I\\(X;Y\\)"):
        rate_at(p, d, 0.2, 0.6)
    with pytest.raises(ConfigError, match="max_distortion"):
        rate_at(p, d, -0.2, 0.1)
    # jointly infeasible: zero distortion forces the one reconstruction that carries nothing
    p_xy = np.eye(2) / 2
    d_joint = np.array([[0.0, 1.0], [0.0, 1.0]])
    with pytest.raises(InfeasibleConstraintsError, match="together"):
        rate_at(p_xy, d_joint, 0.0, 0.5, max_outer=60)
    assert issubclass(InfeasibleConstraintsError, ConfigError)


# ------------------------------------------------------------------ quantised Gaussians


def _pixel_excess(levels: int) -> float:
    src = make_source("gaussian", levels=levels, y_levels=4)
    book = FreeCodebook(src.x_points, np.linspace(-2.5, 2.5, 12)[:, None], src.offsets)
    point = solve_lagrangian(src.p_xy, book, cf.gaussian_lam_bits(0.1), 0.0, tol=1e-10, max_iter=3000)
    return point.rate_bits - cf.gaussian_rate(1.0, point.distortion)


def test_quantised_gaussian_converges_to_the_closed_form():
    """Every solution of the quantised source is achievable for the continuous one, so the
    Gaussian R(D) is a lower bound; the excess shrinks as cell width^2, and Richardson
    extrapolation over two quantisations recovers the closed form to 1e-3 bits."""
    coarse, fine = _pixel_excess(32), _pixel_excess(64)
    assert 0.0 <= fine < coarse
    assert 3.0 < coarse / fine < 5.0
    assert abs((4 * fine - coarse) / 3) < ATOL


def test_quantised_gaussian_information_bottleneck():
    """lam = 0: every quantised scheme is a scheme for the continuous pair, so its I(Xhat;Y)
    is under the Gaussian curve at its rate and its objective above the closed-form optimum;
    both gaps are the (small) quantisation loss."""
    src = make_source("gaussian", levels=32, y_levels=32)
    for beta in (2.0, 5.0):
        rate, info = cf.gaussian_ib_lagrangian(0.8, beta)
        point = solve_lagrangian(src.p_xy, np.zeros((32, 8)), 0.0, beta, n_restarts=1, max_iter=1500)
        bound = cf.gaussian_ib_semantic_info(0.8, point.rate_bits)
        assert point.semantic_info_bits <= bound + 1e-9
        assert bound - point.semantic_info_bits < 0.03
        assert rate - beta * info - 1e-9 <= point.objective <= rate - beta * info + 0.04 * beta


def test_quantised_gaussian_rate_at_both_constraints():
    """docs/theory.md's joint example on a 48-cell quantisation: which constraint binds, and the
    rate within the quantisation loss above the closed form."""
    src = make_source("gaussian", levels=48, y_levels=48)
    i_xy = -0.5 * math.log2(0.2)
    semantic = rate_at(src.p_xy, src.distortion, 0.5, 0.9)
    pixel = rate_at(src.p_xy, src.distortion, 0.1, 0.9)
    assert semantic.converged and pixel.converged
    assert semantic.lam_bits == 0.0 and semantic.distortion < 0.4  # only I_0 binds
    assert pixel.beta == 0.0 and pixel.semantic_info_bits > 0.9  # only D_p binds
    for point, d_p, closed in [(semantic, 0.5, 1.599010), (pixel, 0.1, 1.660964)]:
        assert cf.gaussian_joint_rate(1.0, 0.8, d_p, i_xy - 0.9) == pytest.approx(closed, abs=1e-6)
        assert closed - 1e-6 <= point.rate_bits <= closed + 0.05


# ------------------------------------------------------------------ vector Gaussian cross-check

WATER = 0.5  # the water level 1 / (2 ln2 lam) of the test below
LAM_VECTOR, BETA_VECTOR = 1.0 / (2.0 * LN2 * WATER), 2.0


def _vector_run(levels: int, y_levels: int, grid: tuple[int, int], max_iter: int):
    """Two unit-variance components, the first relevant to Y (rho^2 = 0.8), the second not,
    quantised to ``levels`` cells each (product alphabet, free product codebook)."""
    from tosc.theory.sources import _quantised_normal

    src = make_source("gaussian-vector", levels=levels, y_levels=y_levels)
    book = np.array([[a, b] for a in np.linspace(-2.2, 2.2, grid[0]) for b in np.linspace(-1.8, 1.8, grid[1])])
    point = solve_lagrangian(src.p_xy, FreeCodebook(src.x_points, book, src.offsets), LAM_VECTOR, BETA_VECTOR,
                             n_restarts=1, max_iter=max_iter)
    probs, _, cell_var, _ = _quantised_normal(1.0, levels, 4.0, 16)
    w = src.p_xy.sum(1)[:, None] * point.mapping
    per_component = [
        float(probs @ cell_var + (w * (src.x_points[:, k][:, None] - point.codebook[:, k][None, :]) ** 2).sum())
        for k in range(2)
    ]
    return src, point, per_component


def _check_vector(point, per_component, rate_tol: float, rel_tol: float) -> None:
    pred = cf.vector_gaussian_lagrangian([1.0, 1.0], [0.8, 0.0], LAM_VECTOR, BETA_VECTOR)
    # semantic cap: the relevant component sits well below the water level, the other at it
    assert pred.distortions[1] == pytest.approx(WATER) and pred.distortions[0] < 0.3 * WATER
    assert per_component[0] == pytest.approx(pred.distortions[0], rel=rel_tol)
    assert per_component[1] == pytest.approx(pred.distortions[1], rel=rel_tol / 2)
    assert per_component[0] < 0.4 * per_component[1]  # plain water-filling would make them equal
    # the closed forms bound every scheme of the quantised source from below
    closed = cf.vector_gaussian_rate([1.0, 1.0], [0.8, 0.0], point.distortion, point.semantic_info_bits)
    assert closed.rate_bits - 1e-6 <= point.rate_bits <= closed.rate_bits + rate_tol
    f_pred = pred.rate_bits + LAM_VECTOR * pred.distortion - BETA_VECTOR * pred.semantic_info_bits
    assert f_pred - 1e-9 <= point.objective <= f_pred + 2 * rate_tol


def test_vector_gaussian_against_the_solver():
    """The reverse water-filling with a semantic cap, against the solver on the joint
    (product) alphabet of a 24-level quantisation; also the separation the derivation
    proves: the joint optimum is the sum of the per-component optima."""
    src, point, per_component = _vector_run(24, 24, (10, 6), 1000)
    _check_vector(point, per_component, rate_tol=0.1, rel_tol=0.15)
    one = make_source("gaussian", levels=24, y_levels=24, span=4.0)
    first = solve_lagrangian(one.p_xy, FreeCodebook(one.x_points, np.linspace(-2.2, 2.2, 10)[:, None], one.offsets),
                             LAM_VECTOR, BETA_VECTOR, n_restarts=1, max_iter=1000)
    second = solve_lagrangian(one.p_xy.sum(1, keepdims=True),
                              FreeCodebook(one.x_points, np.linspace(-1.8, 1.8, 6)[:, None], one.offsets),
                              LAM_VECTOR, 0.0, max_iter=1000)
    assert point.objective == pytest.approx(first.objective + second.objective, abs=2e-3)


@pytest.mark.slow
def test_vector_gaussian_against_the_solver_fine():
    _, point, per_component = _vector_run(32, 32, (10, 6), 3000)
    _check_vector(point, per_component, rate_tol=0.06, rel_tol=0.08)


def test_acceleration_reaches_the_same_optimum_faster():
    """beta = 0 is convex, so the plain iteration and the accelerated one (extrapolation of
    reconstruction masses, pruning of dead ones) must agree; the accelerated one is the fast one."""
    rng = np.random.default_rng(5)
    p = rng.dirichlet(np.ones(60)).reshape(30, 2)
    d = rng.uniform(0.0, 1.0, (30, 40))
    fast = solve_lagrangian(p, d, 4.0, 0.0, tol=1e-10)
    slow = solve_lagrangian(p, d, 4.0, 0.0, tol=1e-10, accelerate=False, max_iter=100_000)
    assert fast.converged and slow.converged
    assert fast.objective == pytest.approx(slow.objective, abs=1e-9)
    np.testing.assert_allclose(fast.mapping, slow.mapping, atol=1e-6)
    assert fast.blahut_max_c == pytest.approx(1.0, abs=1e-6)  # pruned reconstructions stay out rightly
    assert fast.iterations * 3 < slow.iterations
