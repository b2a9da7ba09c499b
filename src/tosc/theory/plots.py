"""Figures of the semantic rate-distortion surface (matplotlib, Agg canvas, no pyplot state).

Each ``plot_*`` function returns a :class:`matplotlib.figure.Figure`; :func:`save_png`
writes one atomically. Rates and informations are in bits.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..io import atomic_write_bytes
from .solver import RDPoint

__all__ = [
    "RateCurve",
    "plot_rate_vs_distortion",
    "plot_rate_vs_semantic_info",
    "plot_rate_contour",
    "envelope_grid",
    "save_png",
]


@dataclass(frozen=True)
class RateCurve:
    """R(D_p) at one semantic level: max_distortions[k] -> rates_bits[k] (nan where infeasible).
    reference_bits: a closed form at the same D_p, or None."""

    min_semantic_info_bits: float
    max_distortions: np.ndarray
    rates_bits: np.ndarray
    reference_bits: np.ndarray | None = None


def _figure(width: float = 6.4, height: float = 4.6) -> Figure:
    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def plot_rate_vs_distortion(curves: Sequence[RateCurve], *, title: str, distortion_label: str,
                            reference_label: str = "closed form") -> Figure:
    """R vs D_p, one line per semantic level I_0 (dual-ascent solutions), closed forms dashed."""
    fig = _figure()
    ax = fig.add_subplot()
    colors = [f"C{k}" for k in range(len(curves))]
    for curve, color in zip(curves, colors):
        ax.plot(curve.max_distortions, curve.rates_bits, "o-", ms=3.5, color=color,
                label=f"I(X\u0302;Y) \u2265 {curve.min_semantic_info_bits:.3g} bits")
        if curve.reference_bits is not None:
            ax.plot(curve.max_distortions, curve.reference_bits, "--", lw=1.1, color="k", alpha=0.75, zorder=3)
    if any(c.reference_bits is not None for c in curves):
        ax.plot([], [], "k--", lw=1.0, label=reference_label)
    ax.set_xlabel(f"pixel distortion D_p ({distortion_label})")
    ax.set_ylabel("rate R (bits per source symbol)")
    ax.set_title(title, fontsize=10)
    ax.set_ylim(bottom=0.0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def plot_rate_vs_semantic_info(points: Sequence[RDPoint], lams: Sequence[float], *, i_xy_bits: float,
                               title: str, max_lines: int = 6) -> Figure:
    """R vs I(Xhat;Y) along beta for several lam (Lagrangian solutions), with R >= I(Xhat;Y)
    and I(Xhat;Y) <= I(X;Y) as reference lines. ``points`` are row-major over (lams, betas)."""
    fig = _figure()
    ax = fig.add_subplot()
    lams = list(lams)
    n_b = len(points) // max(len(lams), 1)
    chosen = np.unique(np.linspace(0, len(lams) - 1, min(max_lines, len(lams))).round().astype(int))
    for k, i in enumerate(chosen):
        row = sorted(points[i * n_b:(i + 1) * n_b], key=lambda p: p.beta)
        ax.plot([p.semantic_info_bits for p in row], [p.rate_bits for p in row], "o-", ms=3, color=f"C{k}",
                label=f"\u03bb = {lams[i]:.3g} bits/unit")
    top = max([p.rate_bits for p in points] + [i_xy_bits, 1e-3])
    ax.plot([0, i_xy_bits], [0, i_xy_bits], "k:", lw=1.0, label="R = I(X\u0302;Y) (bound)")
    ax.axvline(i_xy_bits, color="0.4", lw=1.0, ls="--", label=f"I(X;Y) = {i_xy_bits:.3g} bits")
    ax.set_xlabel("semantic information I(X\u0302;Y) (bits)")
    ax.set_ylabel("rate R (bits per source symbol)")
    ax.set_ylim(0.0, top * 1.05)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def envelope_grid(points: Sequence[RDPoint], d_axis: np.ndarray, ds_axis: np.ndarray) -> np.ndarray:
    """R(D_p, D_s) on a grid from achieved points: the least rate of any point with
    distortion <= D_p and semantic distortion <= D_s (nan where no point qualifies).
    Shape: len(ds_axis) x len(d_axis). It is an upper bound on the true surface, exact at
    the points on its lower convex envelope that the Lagrangian sweep reaches."""
    rate = np.array([p.rate_bits for p in points])
    dist = np.array([p.distortion for p in points])
    sem = np.array([p.semantic_distortion_bits for p in points])
    ok = (dist[None, None, :] <= d_axis[None, :, None] + 1e-12) & (sem[None, None, :] <= ds_axis[:, None, None] + 1e-12)
    grid = np.where(ok, rate[None, None, :], np.inf).min(axis=2)
    return np.where(np.isfinite(grid), grid, np.nan)


def plot_rate_contour(points: Sequence[RDPoint], *, d_range: tuple[float, float], i_xy_bits: float,
                      title: str, distortion_label: str, n_grid: int = 80) -> Figure:
    """Filled contours of R(D_p, D_s) built by :func:`envelope_grid` from the sweep's points."""
    fig = _figure()
    ax = fig.add_subplot()
    d_axis = np.linspace(d_range[0], d_range[1], n_grid)
    ds_axis = np.linspace(0.0, max(i_xy_bits, 1e-9), n_grid)
    grid = envelope_grid(points, d_axis, ds_axis)
    if np.isfinite(grid).sum() >= 4 and np.nanmax(grid) > np.nanmin(grid):
        levels = np.linspace(np.nanmin(grid), np.nanmax(grid), 12)
        filled = ax.contourf(d_axis, ds_axis, grid, levels=levels, cmap="viridis")
        ax.contour(d_axis, ds_axis, grid, levels=levels, colors="k", linewidths=0.4, alpha=0.5)
        fig.colorbar(filled, ax=ax, label="rate R (bits)")
    ax.scatter([p.distortion for p in points], [p.semantic_distortion_bits for p in points], s=4, c="w",
               edgecolors="k", linewidths=0.3, label="Lagrangian solutions")
    ax.set_xlim(d_range)
    ax.set_ylim(0.0, max(i_xy_bits, 1e-9))
    ax.set_xlabel(f"pixel distortion D_p ({distortion_label})")
    ax.set_ylabel("semantic distortion D_s = I(X;Y) - I(X\u0302;Y) (bits)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper right")
    return fig


def save_png(fig: Figure, path: str | os.PathLike) -> None:
    """Write ``fig`` as PNG atomically (no version metadata, so equal inputs give equal files)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    atomic_write_bytes(path, buffer.getvalue())
