"""Who wins where: the proposed systems against the best baseline at every operating point.

For each channel, metric and point (SNR, CBR) the summary compares the best *proposed* system
on a real link (registry metadata ``proposed``; TOSC-SR over LDPC, analog TOSC-SR) with the
best *baseline* on a real link (everything else that is not a bound: the ideal and
finite-blocklength links are bounds, not systems). It feeds the report's colour-coded
SNR x CBR maps and the README's "where TOSC-SR loses" list.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from .. import registry
from ..results import ResultRecord
from .bd import record_mode

__all__ = ["Cell", "is_proposed", "is_bound", "win_map", "losses", "win_counts"]

def is_proposed(system: str) -> bool:
    return bool(registry.meta_of("system", system).get("proposed"))


def is_bound(record: ResultRecord) -> bool:
    """The ideal capacity link and the finite-blocklength bound are limits, not systems."""
    return record_mode(record) == "ideal"


@dataclass(frozen=True)
class Cell:
    """One point of a win map. ``margin``: best proposed minus best baseline (metric units)."""

    channel: str
    snr_db: float
    cbr: float
    proposed: str | None
    proposed_value: float
    baseline: str | None
    baseline_value: float

    @property
    def margin(self) -> float:
        return self.proposed_value - self.baseline_value

    @property
    def winner(self) -> str | None:
        if math.isnan(self.margin):
            return self.proposed if not math.isnan(self.proposed_value) else self.baseline
        return self.proposed if self.margin >= 0 else self.baseline

    @property
    def where(self) -> str:
        return f"{self.channel} {self.snr_db:g} dB, CBR {Fraction(self.cbr).limit_denominator(4096)}"


def _best(records: list[ResultRecord], metric: str) -> tuple[str | None, float]:
    scored = [(r.metrics[metric], r.system) for r in records
              if r.metrics.get(metric) is not None and not math.isnan(r.metrics[metric])]
    if not scored:
        return None, float("nan")
    value, system = max(scored)
    return system, float(value)


def win_map(records: list[ResultRecord], metric: str) -> list[Cell]:
    """One Cell per (channel, SNR, CBR) present in ``records``, sorted by channel, CBR, SNR."""
    by_point: dict[tuple, list[ResultRecord]] = {}
    for r in records:
        if not is_bound(r):
            by_point.setdefault((r.channel.kind, r.channel.snr_db, r.rate.cbr), []).append(r)
    cells = []
    for (channel, snr, cbr), group in sorted(by_point.items(), key=lambda kv: (kv[0][0], kv[0][2], kv[0][1])):
        proposed = _best([r for r in group if is_proposed(r.system)], metric)
        baseline = _best([r for r in group if not is_proposed(r.system)], metric)
        if proposed[0] is None and baseline[0] is None:
            continue
        cells.append(Cell(channel, snr, cbr, *proposed, *baseline))
    return cells


def losses(records: list[ResultRecord], metric: str) -> list[Cell]:
    """The points where the best baseline beats every proposed system on ``metric``."""
    return [c for c in win_map(records, metric) if c.proposed is not None and c.baseline is not None
            and c.margin < 0]


def win_counts(records: list[ResultRecord], metric: str) -> tuple[int, int]:
    """(points the proposed systems win or tie, points compared) on ``metric``."""
    cells = [c for c in win_map(records, metric) if not math.isnan(c.margin)]
    return sum(c.margin >= 0 for c in cells), len(cells)
