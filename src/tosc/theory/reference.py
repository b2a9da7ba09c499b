"""A plain-loop implementation of one self-consistent update, for tests and benchmarks.

It follows docs/theory.md line by line with Python loops and ``math`` (no numpy vectorisation),
so it is slow but easy to audit; :func:`tosc.theory.solver.solve_lagrangian` must produce
the same update.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["plain_update", "plain_solve"]


def plain_update(p_xy: np.ndarray, distortion: np.ndarray, q: np.ndarray, lam_bits: float, beta: float) -> np.ndarray:
    """One update p(xhat|x) <- p(xhat) exp(-lam d - beta KL[p(y|x)||p(y|xhat)]) / Z(x).

    p_xy: |X| x |Y|; distortion: |X| x |Xhat|; q: |X| x |Xhat| current mapping.
    Returns the new |X| x |Xhat| mapping. lam_bits is converted to nats inside.
    """
    p = p_xy.tolist()
    d = distortion.tolist()
    qq = q.tolist()
    n_x, n_y, n_xh = len(p), len(p[0]), len(d[0])
    lam = lam_bits * math.log(2.0)
    px = [sum(row) for row in p]
    r = [0.0] * n_xh
    for x in range(n_x):
        for k in range(n_xh):
            r[k] += px[x] * qq[x][k]
    joint = [[0.0] * n_y for _ in range(n_xh)]  # p(xhat, y)
    for x in range(n_x):
        for k in range(n_xh):
            w = qq[x][k]
            for y in range(n_y):
                joint[k][y] += p[x][y] * w
    new = [[0.0] * n_xh for _ in range(n_x)]
    for x in range(n_x):
        logits = [-math.inf] * n_xh
        for k in range(n_xh):
            if r[k] <= 0.0:
                continue
            kl = 0.0
            if beta > 0.0 and px[x] > 0.0:
                for y in range(n_y):
                    pyx = p[x][y] / px[x]
                    if pyx > 0.0:
                        pyk = joint[k][y] / r[k]
                        kl += pyx * (math.log(pyx) - (math.log(pyk) if pyk > 0.0 else -745.0))
            logits[k] = math.log(r[k]) - lam * d[x][k] - beta * kl
        top = max(logits)
        z = sum(math.exp(v - top) for v in logits if v > -math.inf)
        for k in range(n_xh):
            new[x][k] = math.exp(logits[k] - top) / z if logits[k] > -math.inf else 0.0
    return np.array(new)


def plain_solve(p_xy: np.ndarray, distortion: np.ndarray, q0: np.ndarray, lam_bits: float, beta: float,
                n_iter: int) -> np.ndarray:
    """``n_iter`` plain updates from q0 (no stopping rule, no acceleration)."""
    q = q0
    for _ in range(n_iter):
        q = plain_update(p_xy, distortion, q, lam_bits, beta)
    return q
