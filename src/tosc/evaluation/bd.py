"""Bjøntegaard deltas (BD-rate, BD-PSNR) between systems on their operational rate curves.

The integrals come from the maintained ``bjontegaard`` package (FAU-LMS, BSD-3) with
``method="pchip"``: piecewise cubic Hermite interpolation, the variant of the JCT-VC and
JVET common-test-conditions Excel sheets (the package matches that sheet to 10 decimals).
BD-PSNR is the mean quality gap over the overlapping log10-rate interval; BD-rate is the
mean relative rate change (in %) at equal quality over the overlapping quality interval;
negative BD-rate and positive BD-PSNR mean the test system is better than the anchor.

A system's **operational rate curve** on one channel is built from its results records:
rate = the actual payload bits per pixel it sent (``rate.bpp``, from real bytes), quality
= a metric (PSNR by default), over every (SNR, CBR) point of that channel. Points that
sent nothing are dropped, and only the upper envelope is kept (the best quality reached at
or below each rate), so the curve is strictly increasing in both rate and quality, which
is what the interpolation needs. Analog systems send no bits and get no curve.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from .. import registry
from ..results import ResultRecord

__all__ = ["METHOD", "RateCurve", "BDResult", "rate_curve", "upper_envelope", "value_at_rate", "bd_metrics", "bd_table",
           "record_mode"]

METHOD = "pchip"


def record_mode(record: ResultRecord) -> str:
    """"digital", "ideal" or "analog" (from the record's config; older records from the registry)."""
    mode = record.config.get("mode")
    if mode:
        return str(mode)
    return str(registry.meta_of("system", record.system).get("mode", "digital"))


@dataclass(frozen=True)
class RateCurve:
    """bpp and quality (1-D float arrays of equal length, both strictly increasing)."""

    system: str
    channel: str
    metric: str
    bpp: np.ndarray
    quality: np.ndarray

    def __len__(self) -> int:
        return len(self.bpp)


def rate_curve(records: list[ResultRecord], system: str, channel: str, metric: str = "psnr_db") -> RateCurve:
    pts = sorted(((r.rate.bpp, r.metrics.get(metric)) for r in records
                  if r.system == system and r.channel.kind == channel and record_mode(r) != "analog"
                  and r.rate.bpp > 0 and r.metrics.get(metric) is not None and math.isfinite(r.metrics[metric])),
                 key=lambda p: (p[0], -p[1]))
    bpp, quality = upper_envelope(pts)
    return RateCurve(system, channel, metric, bpp, quality)


def upper_envelope(points) -> tuple[np.ndarray, np.ndarray]:
    """(rate, quality) pairs -> the best quality reached at or below each rate: two float
    arrays, both strictly increasing (what the BD interpolation needs)."""
    bpp, quality = [], []
    for rate, q in sorted(points, key=lambda p: (p[0], -p[1])):
        if (not quality or q > quality[-1]) and (not bpp or rate > bpp[-1]):
            bpp.append(rate)
            quality.append(q)
    return np.array(bpp, dtype=float), np.array(quality, dtype=float)


def value_at_rate(bpp, values, at: float) -> float | None:
    """A curve's value at rate ``at`` (bits per pixel): linear in log-rate between the two
    measured points around it, the way the comparisons at equal rate read a curve; None
    outside the measured range (no extrapolation). ``bpp`` and ``values``: one entry per
    measured point, in any order; ``bpp`` > 0."""
    bpp, values = np.asarray(bpp, dtype=float), np.asarray(values, dtype=float)
    if bpp.shape != values.shape or bpp.ndim != 1 or not len(bpp) or (bpp <= 0).any() or not at > 0:
        raise ValueError("value_at_rate needs positive rates, one value per rate, and a positive rate to read at")
    order = np.argsort(bpp, kind="stable")
    x, y = np.log(bpp[order]), values[order]
    if not x[0] <= math.log(at) <= x[-1]:
        return None
    return float(np.interp(math.log(at), x, y))


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    lo, hi = max(a.min(), b.min()), min(a.max(), b.max())
    return max(hi - lo, 0.0) / (max(a.max(), b.max()) - min(a.min(), b.min()))


@dataclass(frozen=True)
class BDResult:
    """BD between an anchor and a test curve. ``bd_rate_pct``: mean rate change of test vs
    anchor at equal quality (%); ``bd_quality``: mean quality gain at equal rate (the
    metric's unit: dB for PSNR). NaN with a ``note`` when the curves cannot be compared.
    ``rate_overlap`` / ``quality_overlap``: fraction of the joint interval both cover."""

    anchor: str
    test: str
    channel: str
    metric: str
    bd_rate_pct: float
    bd_quality: float
    rate_overlap: float
    quality_overlap: float
    n_anchor: int
    n_test: int
    note: str = ""


def bd_metrics(anchor: RateCurve, test: RateCurve) -> BDResult:
    import bjontegaard

    nan = float("nan")
    base = dict(anchor=anchor.system, test=test.system, channel=anchor.channel, metric=anchor.metric,
                n_anchor=len(anchor), n_test=len(test))
    if len(anchor) < 2 or len(test) < 2:
        return BDResult(bd_rate_pct=nan, bd_quality=nan, rate_overlap=nan, quality_overlap=nan,
                        note="fewer than 2 rate points", **base)
    log_overlap = _overlap(np.log10(anchor.bpp), np.log10(test.bpp))
    q_overlap = _overlap(anchor.quality, test.quality)
    with warnings.catch_warnings():
        # the package warns on small overlaps; the overlaps are reported instead
        warnings.simplefilter("ignore")
        kw = dict(method=METHOD, require_matching_points=False, min_overlap=0.0)
        bd_q = bjontegaard.bd_psnr(anchor.bpp, anchor.quality, test.bpp, test.quality, **kw) if log_overlap > 0 else nan
        bd_r = bjontegaard.bd_rate(anchor.bpp, anchor.quality, test.bpp, test.quality, **kw) if q_overlap > 0 else nan
    notes = [n for n, o in (("rates do not overlap", log_overlap), ("qualities do not overlap", q_overlap)) if o <= 0]
    return BDResult(bd_rate_pct=float(bd_r), bd_quality=float(bd_q), rate_overlap=log_overlap,
                    quality_overlap=q_overlap, note="; ".join(notes), **base)


def bd_table(records: list[ResultRecord], test_system: str, metric: str = "psnr_db") -> list[BDResult]:
    """``test_system`` against every other system on the same link mode and channel."""
    modes = {r.system: record_mode(r) for r in records}
    if test_system not in modes or modes[test_system] == "analog":
        return []
    out = []
    for channel in sorted({r.channel.kind for r in records if r.system == test_system}):
        test = rate_curve(records, test_system, channel, metric)
        for system in sorted(s for s, m in modes.items() if s != test_system and m == modes[test_system]):
            if any(r.system == system and r.channel.kind == channel for r in records):
                out.append(bd_metrics(rate_curve(records, system, channel, metric), test))
    return out
