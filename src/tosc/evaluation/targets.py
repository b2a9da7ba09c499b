"""The evaluation issue's targets, checked on a results file, PASS or FAIL with the numbers.

(a) **Quality.** At every point (channel, SNR, CBR) where the best classic system decodes
    (its failure rate is at most ``max_failure``, 1% by default), TOSC-SR's PSNR is at least
    2 dB above the best PSNR among the classic systems that decode there.
(b) **Task at low bandwidth.** At every point with CBR <= 1/8, TOSC-SR's accuracy (the
    training-time classifier) is higher than that of every baseline at that point.
(c) **Multi-task generalisation.** On each held-out classifier and on the segmentation
    task, TOSC-SR beats the MSE-only codec at equal rate, compared at matched operating
    points: both families get the same channel budget (same SNR, CBR and noise) and each
    image is sent with the family's highest-rate model that fits, so the rates match up to
    the small size differences of paired models; the mean over the points of the metric's
    difference must be positive on every channel. The ratio of their actual bpp is printed
    beside it, and so is the Bjøntegaard delta of the metric (:mod:`tosc.evaluation.bd`,
    mean gain over the overlapping log-rate range of the operational curves), which
    corrects for rate but has only as many support points as distinct rates.

TOSC-SR is ``tosc-sr+ldpc`` (change with ``system=``). Baselines are all other systems on a
real link (digital or analog); TOSC-SR's own variants (names starting with ``tosc-sr``) and
the ideal capacity-bound link, a bound rather than a system, are not baselines. Classic
systems are those whose source coder is a registered classic codec (JPEG, WebP, ...).
A target with nothing to compare in the file is "n/a", never PASS.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from .. import registry
from ..results import ResultRecord
from .bd import bd_metrics, rate_curve, record_mode

__all__ = ["TargetCheck", "check_targets", "is_classic", "format_checks"]

PSNR_MARGIN_DB = 2.0
LOW_CBR = Fraction(1, 8)
GENERALISATION_METRICS = (*(f"accuracy_{name}" for name in registry.select("task", role="held-out", output="class")),
                          "seg_iou")


@dataclass
class TargetCheck:
    name: str
    description: str
    passed: bool | None  # None: nothing in the file to judge it on
    details: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return "n/a" if self.passed is None else ("PASS" if self.passed else "FAIL")


def is_classic(system: str) -> bool:
    return registry.meta_of("system", system).get("family") == "classic"


def _is_baseline(record: ResultRecord, system: str) -> bool:
    return (not registry.meta_of("system", record.system).get("proposed", False)) and record.system != system and record_mode(record) != "ideal"


def _points(records: list[ResultRecord]) -> dict[tuple, list[ResultRecord]]:
    by_point = defaultdict(list)
    for r in records:
        by_point[(r.channel.kind, r.channel.snr_db, r.rate.cbr)].append(r)
    return dict(sorted(by_point.items(), key=lambda kv: (kv[0][0], kv[0][2], kv[0][1])))


def _where(point: tuple) -> str:
    channel, snr, cbr = point
    return f"{channel} {snr:g} dB CBR {Fraction(cbr).limit_denominator(4096)}"


def _quality(records, system, max_failure) -> TargetCheck:
    check = TargetCheck("a", f"PSNR >= best decoding classic + {PSNR_MARGIN_DB:g} dB", None)
    results = []
    for point, group in _points(records).items():
        tosc = next((r for r in group if r.system == system), None)
        present = [r for r in group if _is_baseline(r, system) and is_classic(r.system)]
        classic = [r for r in present
                   if (r.metrics.get("failure_rate") or 0.0) <= max_failure and r.metrics.get("psnr_db") is not None]
        if tosc is None or not present:
            continue
        if not classic:
            check.details.append(f"{_where(point)}: no classic system decodes (skipped)")
            continue
        best = max(classic, key=lambda r: r.metrics["psnr_db"])
        ok = tosc.metrics["psnr_db"] >= best.metrics["psnr_db"] + PSNR_MARGIN_DB
        results.append(ok)
        check.details.append(f"{_where(point)}: {system} {tosc.metrics['psnr_db']:.2f} dB vs {best.system} "
                             f"{best.metrics['psnr_db']:.2f} dB (margin {tosc.metrics['psnr_db'] - best.metrics['psnr_db']:+.2f})"
                             f" {'ok' if ok else 'MISSED'}")
    check.passed = all(results) if results else None
    return check


def _accuracy(records, system) -> TargetCheck:
    check = TargetCheck("b", f"accuracy beats every baseline at CBR <= {LOW_CBR}", None)
    results = []
    for point, group in _points(records).items():
        if Fraction(point[2]).limit_denominator(4096) > LOW_CBR:
            continue
        tosc = next((r for r in group if r.system == system), None)
        others = [r for r in group if _is_baseline(r, system) and r.metrics.get("accuracy") is not None]
        if tosc is None or not others:
            continue
        best = max(others, key=lambda r: r.metrics["accuracy"])
        ok = tosc.metrics["accuracy"] > best.metrics["accuracy"]
        results.append(ok)
        check.details.append(f"{_where(point)}: {system} {tosc.metrics['accuracy']:.3f} vs best baseline {best.system} "
                             f"{best.metrics['accuracy']:.3f} {'ok' if ok else 'MISSED'}")
    check.passed = all(results) if results else None
    return check


def _generalisation(records, system, anchor) -> TargetCheck:
    check = TargetCheck("c", f"held-out networks and segmentation beat {anchor} at matched operating points", None)
    results = []
    for channel in sorted({r.channel.kind for r in records if r.system == system}):
        pairs = [(next((r for r in g if r.system == system), None), next((r for r in g if r.system == anchor), None))
                 for point, g in _points(records).items() if point[0] == channel]
        pairs = [(t, a) for t, a in pairs if t is not None and a is not None]
        if not pairs:
            continue
        rates = [t.rate.bpp / a.rate.bpp for t, a in pairs if a.rate.bpp > 0]
        rate_note = f"mean bpp ratio {np.mean(rates):.3f}" if rates else "no bits sent"
        for metric in GENERALISATION_METRICS:
            deltas = [t.metrics[metric] - a.metrics[metric] for t, a in pairs
                      if t.metrics.get(metric) is not None and a.metrics.get(metric) is not None]
            if not deltas:
                check.details.append(f"{channel} {metric}: not measured")
                continue
            ok = float(np.mean(deltas)) > 0
            results.append(ok)
            bd = bd_metrics(rate_curve(records, anchor, channel, metric), rate_curve(records, system, channel, metric))
            check.details.append(f"{channel} {metric}: mean {system} - {anchor} {np.mean(deltas):+.4f} over "
                                 f"{len(deltas)} points (ahead at {sum(d > 0 for d in deltas)}; {rate_note}; "
                                 f"BD {_bd_text(bd)}) {'ok' if ok else 'MISSED'}")
    check.passed = all(results) if results else None
    return check


def _bd_text(bd) -> str:
    return "n/a" if math.isnan(bd.bd_quality) else f"{bd.bd_quality:+.4f} over {bd.rate_overlap:.0%} of the log-rate range"


def check_targets(records: list[ResultRecord], system: str = "tosc-sr+ldpc", mse_system: str = "mse-only+ldpc",
                  max_failure: float = 0.01) -> list[TargetCheck]:
    """The three targets for ``system`` on ``records`` (one results file)."""
    return [_quality(records, system, max_failure), _accuracy(records, system),
            _generalisation(records, system, mse_system)]


def format_checks(checks: list[TargetCheck]) -> str:
    lines = []
    for c in checks:
        lines.append(f"({c.name}) {c.verdict}: {c.description}")
        lines += [f"    {d}" for d in c.details]
    return "\n".join(lines)
