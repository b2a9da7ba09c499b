"""The ``tosc theory`` report: sweep a source's surface, trace R(D_p) curves, write JSON and plots.

:func:`run_theory` writes ``OUT/theory.json`` and ``OUT/plots/*.png``:

- ``rate_vs_distortion.png``: R vs D_p at several semantic levels I_0 (by :func:`rate_at`),
  with the closed form dashed where the source has one;
- ``rate_vs_semantic_info.png``: R vs I(Xhat;Y) along beta for several lam (Lagrangian sweep);
- ``rate_contour.png``: contours of R(D_p, D_s) from the sweep's achieved points.

The JSON holds the config, seed, package versions and git commit; it has no timings, so the
same seed gives the same files.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..io import atomic_write_json
from ..provenance import git_commit, package_versions
from . import plots
from .measures import min_distortion, zero_rate_distortion
from .solver import InfeasibleConstraintsError, RDPoint, rate_at, trace_surface
from .sources import Source

__all__ = ["TheoryConfig", "TheoryReport", "run_theory", "default_grids", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class TheoryConfig:
    """Settings of one report.

    n_lams, n_betas: grid of the Lagrangian sweep (lam = 0 and beta = 0 included).
    lam_max_bits: largest lam (default: 30 x the source's scale H(X) / distortion range).
    beta_max: largest beta (default 50). semantic_fractions: I_0 as fractions of I(X;Y), one
    R(D_p) curve each. n_distortions: D_p points per curve. n_restarts: random starts per
    sweep point besides the warm start. max_iter, tol: per solve.
    """

    n_lams: int = 12
    n_betas: int = 12
    lam_max_bits: float | None = None
    beta_max: float = 50.0
    semantic_fractions: tuple[float, ...] = (0.0, 0.5, 0.8, 0.95)
    n_distortions: int = 10
    n_restarts: int = 1
    max_iter: int = 300
    tol: float = 1e-9
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("n_lams", "n_betas", "n_distortions"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 2:
                raise ConfigError(f"{name} must be an integer >= 2, got {value!r}")
        if isinstance(self.n_restarts, bool) or not isinstance(self.n_restarts, int) or self.n_restarts < 0:
            raise ConfigError(f"n_restarts must be an integer >= 0, got {self.n_restarts!r}")
        if isinstance(self.max_iter, bool) or not isinstance(self.max_iter, int) or self.max_iter < 1:
            raise ConfigError(f"max_iter must be an integer >= 1, got {self.max_iter!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed must be an integer >= 0, got {self.seed!r}")
        if self.lam_max_bits is not None and not (self.lam_max_bits > 0 and math.isfinite(self.lam_max_bits)):
            raise ConfigError(f"lam_max_bits must be > 0, got {self.lam_max_bits}")
        if not (self.beta_max > 1.0 and math.isfinite(self.beta_max)):
            raise ConfigError(f"beta_max must be > 1 (the bottleneck is trivial for beta <= 1), got {self.beta_max}")
        if not (self.tol > 0 and math.isfinite(self.tol)):
            raise ConfigError(f"tol must be > 0, got {self.tol}")
        fractions = tuple(float(f) for f in self.semantic_fractions)
        if not fractions or any(not 0.0 <= f < 1.0 for f in fractions):
            raise ConfigError(f"semantic_fractions must be non-empty, each in [0, 1), got {self.semantic_fractions}")
        object.__setattr__(self, "semantic_fractions", fractions)


@dataclass
class TheoryReport:
    """What :func:`run_theory` wrote: the JSON record and the paths of the files."""

    record: dict[str, Any]
    json_path: Path
    plot_paths: dict[str, Path] = field(default_factory=dict)


def default_grids(source: Source, config: TheoryConfig) -> tuple[np.ndarray, np.ndarray]:
    """(lams_bits, betas): 0 then geometric. lam spans 0.1..30 x H(X) / (D_zero - D_min)
    (bits per unit distortion); beta spans 1..beta_max."""
    px = source.p_xy.sum(axis=1)
    d_range = max(zero_rate_distortion(px, source.distortion) - min_distortion(px, source.distortion), 1e-12)
    h_x = float(-(px[px > 0] * np.log2(px[px > 0])).sum())
    scale = max(h_x, 1e-3) / d_range
    lam_max = 30.0 * scale if config.lam_max_bits is None else config.lam_max_bits
    lams = np.concatenate([[0.0], np.geomspace(lam_max / 300.0, lam_max, config.n_lams - 1)])
    betas = np.concatenate([[0.0], np.geomspace(1.0, config.beta_max, config.n_betas - 1)])
    return lams, betas


def _curves(source: Source, config: TheoryConfig, i_xy: float, rng: np.random.Generator,
            progress: bool) -> tuple[list[plots.RateCurve], list[dict[str, Any]], list[RDPoint]]:
    px = source.p_xy.sum(axis=1)
    d_min = min_distortion(px, source.distortion)
    d_zero = zero_rate_distortion(px, source.distortion)
    targets = d_min + (d_zero - d_min) * np.linspace(1.0, 0.04, config.n_distortions)
    curves, records, achieved = [], [], []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(config.semantic_fractions) * len(targets), desc="R(D_p) curves", unit="point", leave=False)
    try:
        for fraction in config.semantic_fractions:
            i0 = fraction * i_xy
            rates = np.full(len(targets), np.nan)
            reference = np.full(len(targets), np.nan) if source.reference_rate is not None else None
            points_json: list[dict[str, Any]] = []
            warm: RDPoint | None = None
            for k, d_p in enumerate(targets):
                entry: dict[str, Any] = {"max_distortion": float(d_p)}
                if reference is not None:
                    value = float(source.reference_rate(float(d_p), i0))  # type: ignore[misc]
                    reference[k] = value if math.isfinite(value) else np.nan
                    entry["reference_rate_bits"] = value if math.isfinite(value) else None
                try:
                    point = rate_at(
                        source.p_xy, source.distortion, float(d_p), i0, seed=rng,
                        lam_bits=None if warm is None else warm.lam_bits,
                        beta=None if warm is None else warm.beta,
                        init=None if warm is None else warm.mapping,
                    )
                except InfeasibleConstraintsError as exc:
                    entry["infeasible"] = str(exc)
                else:
                    warm = point
                    rates[k] = point.rate_bits
                    achieved.append(point)
                    entry.update(point.to_dict())
                points_json.append(entry)
                if bar is not None:
                    bar.update(1)
            # R(D_p) does not increase with D_p: a mapping found for a tighter D_p also meets a
            # looser one, so where it has the lower rate it is the better (achievable) answer
            best = None  # index of the lowest rate among the tighter targets seen so far
            for k in range(len(targets) - 1, -1, -1):
                if best is not None and not rates[k] <= rates[best]:
                    rates[k] = rates[best]
                    kept = {key: points_json[k][key] for key in ("max_distortion", "reference_rate_bits")
                            if key in points_json[k]}
                    solved = {key: value for key, value in points_json[best].items() if key not in kept}
                    points_json[k] = {**solved, **kept, "taken_from_max_distortion": float(targets[best])}
                elif np.isfinite(rates[k]) and (best is None or rates[k] < rates[best]):
                    best = k
            curves.append(plots.RateCurve(i0, targets.copy(), rates, reference))
            records.append({"min_semantic_info_bits": i0, "fraction_of_i_xy": fraction, "points": points_json})
    finally:
        if bar is not None:
            bar.close()
    return curves, records, achieved


def run_theory(source: Source, out_dir: str | Path, config: TheoryConfig | None = None, *,
               progress: bool = False, extra_config: dict[str, Any] | None = None, jobs: int = 1) -> TheoryReport:
    """Sweep ``source``, write ``out_dir/theory.json`` and ``out_dir/plots/*.png``.

    ``jobs`` worker processes share the (lam, beta) sweep; the files do not depend on it.
    """
    config = TheoryConfig() if config is None else config
    out = Path(out_dir)
    summary = source.summary()
    i_xy = summary["mutual_information_xy_bits"]
    rng = np.random.default_rng(config.seed)
    lams, betas = default_grids(source, config)

    surface = trace_surface(
        source.p_xy, source.distortion, lams, betas, n_restarts=config.n_restarts, seed=rng,
        max_iter=config.max_iter, tol=config.tol, jobs=jobs, progress=progress,
    )
    curves, curve_records, achieved = _curves(source, config, i_xy, rng, progress)

    shown = {k: v for k, v in source.summary()["params"].items() if k not in ("input", "span")}
    title = source.name + (" (" + ", ".join(f"{k}={v}" for k, v in shown.items()) + ")" if shown else "")
    plot_paths = {
        "rate_vs_distortion": out / "plots" / "rate_vs_distortion.png",
        "rate_vs_semantic_info": out / "plots" / "rate_vs_semantic_info.png",
        "rate_contour": out / "plots" / "rate_contour.png",
    }
    fig = plots.plot_rate_vs_distortion(curves, title=title, distortion_label=source.distortion_unit,
                                        reference_label=source.reference_label or "closed form")
    plots.save_png(fig, plot_paths["rate_vs_distortion"])
    fig = plots.plot_rate_vs_semantic_info(surface, lams, i_xy_bits=i_xy, title=title)
    plots.save_png(fig, plot_paths["rate_vs_semantic_info"])
    fig = plots.plot_rate_contour(
        list(surface) + achieved, d_range=(summary["min_distortion"], summary["zero_rate_distortion"]),
        i_xy_bits=i_xy, title=title, distortion_label=source.distortion_unit,
    )
    plots.save_png(fig, plot_paths["rate_contour"])

    config_json = asdict(config)
    config_json["semantic_fractions"] = list(config.semantic_fractions)
    config_json.update(extra_config or {})
    record = {
        "kind": "tosc-theory",
        "schema_version": SCHEMA_VERSION,
        "source": summary,
        "config": config_json,
        "seed": config.seed,
        "versions": package_versions(),
        "git_commit": git_commit(),
        "units": {
            "rate_bits": "bits per source symbol",
            "distortion": summary["distortion_unit"],
            "semantic_info_bits": "I(Xhat;Y) in bits",
            "semantic_distortion_bits": "I(X;Y) - I(Xhat;Y) in bits",
            "lam_bits": "bits of rate per unit distortion",
            "beta": "dimensionless",
        },
        "surface": {
            "lams_bits": [float(v) for v in lams],
            "betas": [float(v) for v in betas],
            "order": "row-major: point i * len(betas) + j is (lams_bits[i], betas[j])",
            "points": [p.to_dict() for p in surface],
        },
        "curves": curve_records,
        "reference": source.reference_label or None,
        "plots": {name: str(path.relative_to(out)) for name, path in plot_paths.items()},
    }
    json_path = out / "theory.json"
    atomic_write_json(json_path, record)
    return TheoryReport(record=record, json_path=json_path, plot_paths=plot_paths)
