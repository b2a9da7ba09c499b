"""Semantic rate-distortion theory beside the communication chain (docs/theory.md).

The least rate I(X;Xhat) that keeps the pixel distortion E d(X, Xhat) <= D_p and the task
information I(Xhat;Y) >= I_0, for a source p(x, y) and the Markov chain Y - X - Xhat:

- :func:`solve_lagrangian`: minimise I(X;Xhat) + lam E d - beta I(Xhat;Y) by the
  self-consistent equations (log domain, random restarts, Blahut's certificate at beta = 0);
- :func:`rate_at`: R(D_p, I_0) by projected dual ascent with warm starts;
- :func:`trace_surface`: a (lam, beta) grid, annealing in beta;
- :mod:`tosc.theory.closed_forms`: the closed forms it is checked against, including the
  vector Gaussian case (reverse water-filling with a semantic cap);
- :mod:`tosc.theory.sources`: built-in sources (binary, m-ary, Gaussian, Fashion-MNIST);
- :mod:`tosc.theory.neural_bound` and :mod:`tosc.theory.image_bound`: a learned upper bound on
  R(D_p, I_0) of images themselves (Yang & Mandt 2022 with a semantic term; imports torch);
- :mod:`tosc.theory.report` and :mod:`tosc.theory.plots`: the ``tosc theory`` report.

Units: bits; ``lam_bits`` in bits per unit distortion; ``beta`` dimensionless.
"""

from . import closed_forms
from .measures import entropy_bits, mutual_information_bits
from .report import TheoryConfig, TheoryReport, run_theory
from .solver import (
    FreeCodebook,
    InfeasibleConstraintsError,
    RDPoint,
    rate_at,
    solve_lagrangian,
    trace_surface,
)
from .sources import IMAGE_SOURCES, SOURCES, Source, load_source_npz, make_source, source_names, source_parameters

__all__ = [
    "RDPoint",
    "FreeCodebook",
    "InfeasibleConstraintsError",
    "solve_lagrangian",
    "rate_at",
    "trace_surface",
    "closed_forms",
    "entropy_bits",
    "mutual_information_bits",
    "Source",
    "SOURCES",
    "IMAGE_SOURCES",
    "make_source",
    "load_source_npz",
    "source_names",
    "source_parameters",
    "TheoryConfig",
    "TheoryReport",
    "run_theory",
]
