"""Speed and convergence of the semantic rate-distortion solver (issues 3 and 22).

Issue 22: every solve should converge to tol 1e-10 or certify a gap under 1e-6 bits
(RDPoint.gap_bits) in under 1 s on one thread, and every point of the 10 x 10 and 20 x 20
surfaces should converge. Each solve and surface is run twice in this process: "today"
is the solver as it was before issue 22 (the same extrapolated iteration, judged by tol
alone: gap_tol=0, and trace_surface's old defaults max_iter=300), "new" stops on the
certificate (gap_tol=1e-6 bits), revives stuck reconstructions, and gives a surface
point up to 2000 updates. Ratios are today / new.

Targets on this machine: a 256-symbol source x 256 reconstructions x 10 labels converges at
one (lam, beta) in under 1 s, and a 20 x 20 (lam, beta) surface takes under 60 s (two worker
processes, one per core). The
vectorised update is compared with a plain-loop implementation of the same update
(tosc.theory.reference) run in this process; the plain loop is run for a few iterations
only and extrapolated per iteration (it needs about a second per iteration here).

Run: .venv/bin/python benchmarks/theory_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # 256 x 256 products gain nothing from threads here

import numpy as np  # noqa: E402

from tosc.theory import solve_lagrangian, trace_surface  # noqa: E402
from tosc.theory.measures import mutual_information_bits  # noqa: E402
from tosc.theory.reference import plain_update  # noqa: E402
from tosc.theory.solver import LN2, _Iteration, _prepare, random_mapping  # noqa: E402

N_X, N_XHAT, N_Y = 256, 256, 10
SOLVE_TOL = 1e-10  # issue 22: converge to this L1 change ...
GAP_TOL = 1e-6  # ... or certify a gap below this many bits
SURFACE_MAX_ITER = 2000


def problem(kind: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A seeded 256 x 10 joint distribution and a 256 x 256 distortion matrix.

    "random": p(x) ~ Dirichlet(1), p(y|x) ~ Dirichlet(0.3), d ~ U(0, 1).
    "feature": x and xhat are points in the unit square, d = squared distance, p(y|x) a
    softmax of random linear functions of x (smooth class regions, like a quantised feature).
    """
    rng = np.random.default_rng(seed)
    if kind == "random":
        p_x = rng.dirichlet(np.ones(N_X))
        p_y_x = rng.dirichlet(np.full(N_Y, 0.3), size=N_X)
        d = rng.uniform(0.0, 1.0, (N_X, N_XHAT))
    else:
        x, xhat = rng.uniform(0, 1, (N_X, 2)), rng.uniform(0, 1, (N_XHAT, 2))
        p_x = rng.dirichlet(np.full(N_X, 2.0))
        logits = x @ rng.normal(0, 6, (2, N_Y)) + rng.normal(0, 1, N_Y)
        p_y_x = np.exp(logits - logits.max(1, keepdims=True))
        p_y_x /= p_y_x.sum(1, keepdims=True)
        d = ((x[:, None, :] - xhat[None, :, :]) ** 2).sum(-1)
    return p_x[:, None] * p_y_x, d


def timed(fn, repeat: int = 1):
    best, out = math.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def per_iteration_ratio(p: np.ndarray, d: np.ndarray, lam: float, beta: float, loop_iterations: int) -> None:
    rng = np.random.default_rng(1)
    q = random_mapping(rng, N_X, N_XHAT)
    t_loop, _ = timed(lambda: [plain_update(p, d, q, lam, beta) for _ in range(loop_iterations)])
    t_loop /= loop_iterations
    prob = _prepare(p, d)
    it = _Iteration(prob, lam * LN2, beta)

    def vectorised(n: int = 50):
        state = it.state(np.log(q), q, None)
        for _ in range(n):
            logq, qn = it.step(state)
            state = it.state(logq, qn, None)

    t_vec, _ = timed(vectorised, repeat=3)
    t_vec /= 50
    print(f"  one update, plain loop : {t_loop * 1e3:9.1f} ms  (measured over {loop_iterations} iterations, "
          "per-iteration figure)")
    print(f"  one update, vectorised : {t_vec * 1e3:9.3f} ms  (plain update, no extrapolation)")
    print(f"  ratio plain loop / vectorised per update: {t_loop / t_vec:,.0f}x")
    return t_loop


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the 10 x 10 surface only (else 10 x 10 and 20 x 20)")
    args = parser.parse_args()
    ok = True
    lam, beta = 8.0, 2.0
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} (1, 5, 15 min) on "
          f"{os.cpu_count()} cores")
    for kind in ("random", "feature"):
        p, d = problem(kind)
        print(f"== {kind} source: |X| = {N_X}, |Xhat| = {N_XHAT}, |Y| = {N_Y}, I(X;Y) = "
              f"{mutual_information_bits(p):.3f} bits")
        if kind == "random":
            t_loop = per_iteration_ratio(p, d, lam, beta, loop_iterations=2)
        for lam_k, beta_k in ([(lam, beta), (2.0, 0.0), (2.0, 5.0)] if kind == "random" else
                              [(20.0, 2.0), (5.0, 5.0), (60.0, 5.0)]):
            t_old, old = timed(lambda: solve_lagrangian(p, d, lam_k, beta_k, n_restarts=1, seed=1, tol=SOLVE_TOL))
            t, point = timed(lambda: solve_lagrangian(p, d, lam_k, beta_k, n_restarts=1, seed=1, tol=SOLVE_TOL,
                                                      gap_tol=GAP_TOL))
            for label, tt, pt in (("today", t_old, old), ("new  ", t, point)):
                flag = "converged" if pt.converged else "NOT converged"
                print(f"  solve lam={lam_k:g} beta={beta_k:g} {label}: {tt:6.3f} s, {pt.iterations:5d} updates, {flag}, "
                      f"gap {pt.gap_bits:.1e} bits; F = {pt.objective:.9f}, R = {pt.rate_bits:.4f} bits, "
                      f"D = {pt.distortion:.4f}, I(Xhat;Y) = {pt.semantic_info_bits:.4f} bits")
            print(f"    ratio today / new: {t_old / t:.2f}x time, {old.iterations / max(point.iterations, 1):.2f}x updates")
            ok &= point.converged and point.gap_bits < GAP_TOL and t < 1.0
            if kind == "random" and (lam_k, beta_k) == (lam, beta):
                t_plain, plain = timed(lambda: solve_lagrangian(p, d, lam_k, beta_k, n_restarts=1, seed=1,
                                                                accelerate=False, max_iter=50_000))
                print(f"    same solve without extrapolation: {t_plain:.2f} s, {plain.iterations} updates"
                      f"{'' if plain.converged else ' (not converged)'}")
                print(f"    end to end: the plain loop would need {plain.iterations} x {t_loop:.2f} s = "
                      f"{plain.iterations * t_loop / 60:,.0f} min (extrapolated from its per-iteration time), "
                      f"ratio {plain.iterations * t_loop / t:,.0f}x")

    sizes = (10,) if args.quick else (10, 20)
    p, d = problem("random")
    for n in sizes:
        lams = np.concatenate([[0.0], np.geomspace(0.5, 30.0, n - 1)])
        betas = np.concatenate([[0.0], np.geomspace(1.0, 30.0, n - 1)])
        times = {}
        for label, kwargs in (("today", {"max_iter": 300, "gap_tol": 0.0}),
                              ("new", {"max_iter": SURFACE_MAX_ITER, "gap_tol": GAP_TOL})):
            times[label], points = timed(lambda: trace_surface(p, d, lams, betas, seed=0, jobs=2, **kwargs))
            conv = np.mean([q.converged for q in points])
            gaps = np.array([q.gap_bits for q in points])
            print(f"== {n} x {n} surface {label} (random source, annealed in beta, jobs=2, {kwargs}): "
                  f"{times[label]:.1f} s, {conv:.0%} converged, largest gap {gaps.max():.1e} bits, "
                  f"{np.mean(gaps < GAP_TOL):.0%} certified below {GAP_TOL:g} bits")
            if label == "new":
                ok &= bool(conv == 1.0)
        print(f"  ratio today / new: {times['today'] / times['new']:.2f}x time")
    if not args.quick:
        t1, _ = timed(lambda: trace_surface(p, d, lams, betas, seed=0, jobs=1, max_iter=SURFACE_MAX_ITER,
                                            gap_tol=GAP_TOL))
        print(f"  20 x 20 new in one process: {t1:.1f} s; ratio 1 process / 2 worker processes: "
              f"{t1 / times['new']:.2f}x (same points either way)")
    print("targets met" if ok else "TARGETS NOT MET (see above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
