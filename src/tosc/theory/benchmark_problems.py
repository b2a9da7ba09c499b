"""Seeded synthetic problems for timing and testing the solver (benchmarks/theory_bench.py).

Not sources of the ``tosc theory`` command (those live in :mod:`tosc.theory.sources`): these
are sizeable random instances on which the iteration's speed and convergence are measured.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError

__all__ = ["PROBLEM_KINDS", "synthetic_problem"]

PROBLEM_KINDS = ("random", "feature")


def synthetic_problem(kind: str, seed: int = 0, n_x: int = 256, n_xhat: int = 256,
                      n_y: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """A seeded |X| x |Y| joint distribution and an |X| x |Xhat| distortion matrix.

    "random": p(x) ~ Dirichlet(1), p(y|x) ~ Dirichlet(0.3), d ~ U(0, 1).
    "feature": x and xhat are points in the unit square, d = squared distance, p(y|x) a
    softmax of random linear functions of x (smooth class regions, like a quantised feature).
    Raises ConfigError for an unknown kind.
    """
    if kind not in PROBLEM_KINDS:
        raise ConfigError(f"unknown problem kind {kind!r}; expected one of {', '.join(PROBLEM_KINDS)}")
    rng = np.random.default_rng(seed)
    if kind == "random":
        p_x = rng.dirichlet(np.ones(n_x))
        p_y_x = rng.dirichlet(np.full(n_y, 0.3), size=n_x)
        d = rng.uniform(0.0, 1.0, (n_x, n_xhat))
    else:
        x, xhat = rng.uniform(0, 1, (n_x, 2)), rng.uniform(0, 1, (n_xhat, 2))
        p_x = rng.dirichlet(np.full(n_x, 2.0))
        logits = x @ rng.normal(0, 6, (2, n_y)) + rng.normal(0, 1, n_y)
        p_y_x = np.exp(logits - logits.max(1, keepdims=True))
        p_y_x /= p_y_x.sum(1, keepdims=True)
        d = ((x[:, None, :] - xhat[None, :, :]) ** 2).sum(-1)
    return p_x[:, None] * p_y_x, d
