"""Modulation and coding schemes and the table that picks one for an SNR.

The MCS set is {1/2, 2/3, 3/4, 5/6} x {BPSK, QPSK, 16-QAM, 64-QAM} (docs/channel.md). For each
SNR the table picks the highest-throughput scheme (r_c * log2(M) information bits per
channel use) whose simulated block error rate is <= 1e-3.

The table is measured, not assumed: :func:`compute_table` sends random 5G LDPC codewords
through the same encoder, mapper, channel, APP demapper and BP decoder as
:class:`tosc.channel.digital.DigitalLink`, on an SNR grid, for several reference
codeword lengths (short codewords need more SNR than long ones). A block counts as failed
when its decoded bits are wrong or its success flag is false. The counts behind every
threshold are stored in the JSON file with the parameters that produced them, the package
versions and the git commit.

Tables for ``awgn`` and ``rayleigh-fast`` (simulated, about 15 and 30 minutes on two busy
cores) and ``rayleigh-block`` (derived exactly from the AWGN curves, see
:func:`derive_block_fading`) ship inside the package (``channel/data``);
``tosc channel mcs --channel C --recompute`` recomputes one into the user cache
(``$TOSC_CACHE_DIR`` or ``~/.cache/tosc``), which takes precedence when present.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import ConfigError, CorruptFileError
from ..io import atomic_write_text
from .conventions import check_channel_kind, check_snr_db, db_to_linear
from .modulation import MODULATIONS, Modulation

__all__ = [
    "Mcs",
    "MCS_SET",
    "CODE_RATES",
    "get_mcs",
    "McsChoice",
    "McsTable",
    "load_table",
    "save_table",
    "compute_table",
    "derive_block_fading",
    "simulate_bler",
    "shipped_table_path",
    "cached_table_path",
    "TARGET_BLER",
    "REFERENCE_CODEWORD_BITS",
]

TARGET_BLER = 1e-3
CODE_RATES = (Fraction(1, 2), Fraction(2, 3), Fraction(3, 4), Fraction(5, 6))
REFERENCE_CODEWORD_BITS = (128, 256, 512, 1024)  # codeword lengths the shipped AWGN table covers
REFERENCE_SLACK = 1.1  # a reference may be up to 10% longer than the codeword it stands for
TABLE_FORMAT = "tosc-mcs-table"
TABLE_VERSION = 1
_DATA_DIR = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class Mcs:
    """A modulation and coding scheme: 5G LDPC at ``code_rate`` on ``modulation``."""

    code_rate: Fraction
    modulation: Modulation

    @property
    def name(self) -> str:
        """e.g. ``qpsk-1/2``."""
        return f"{self.modulation.name}-{self.code_rate.numerator}/{self.code_rate.denominator}"

    @property
    def bits_per_symbol(self) -> int:
        return self.modulation.bits_per_symbol

    @property
    def spectral_efficiency(self) -> float:
        """Information bits per complex channel use, r_c * log2(M)."""
        return float(self.code_rate) * self.modulation.bits_per_symbol

    def codeword(self, codeword_bits: int) -> tuple[int, int]:
        """(k, n) of the longest codeword of at most ``codeword_bits`` coded bits that fills whole symbols."""
        n = (codeword_bits // self.bits_per_symbol) * self.bits_per_symbol
        return int(math.floor(self.code_rate * n)), int(n)

    def __str__(self) -> str:
        return self.name


MCS_SET: tuple[Mcs, ...] = tuple(
    Mcs(rate, MODULATIONS[name]) for name in ("bpsk", "qpsk", "16qam", "64qam") for rate in CODE_RATES
)  # the fixed schemes of the first link (BPSK..64-QAM); the rate-matched link lives in tosc.channel.scheme


def get_mcs(name: str | Mcs) -> Mcs:
    """An MCS by name, e.g. ``'16qam-3/4'``; raises :class:`ConfigError` for unknown names."""
    if isinstance(name, Mcs):
        return name
    for mcs in MCS_SET:
        if mcs.name == str(name).lower():
            return mcs
    raise ConfigError(f"unknown MCS {name!r}; known: {', '.join(m.name for m in MCS_SET)}")


@dataclass(frozen=True)
class McsChoice:
    """The scheme chosen for one SNR.

    mcs: the scheme. meets_target: False when no scheme reaches the target BLER at this SNR
    and the most robust one was returned anyway (expect failed codewords: the cliff).
    threshold_db: the SNR at which ``mcs`` first met the target (None if it never did).
    reference_bits: the reference codeword length whose threshold was used.
    """

    mcs: Mcs
    meets_target: bool
    threshold_db: float | None
    reference_bits: int


@dataclass
class McsTable:
    """Measured BLER curves and the thresholds derived from them, for one channel.

    curves[reference_bits][mcs_name] = {"k", "n", "threshold_db": float | None, and either
    "points": [[snr_db, codewords, failures], ...] (measured) or "expected": [[snr_db, bler], ...]
    (derived)}. ``threshold_db`` is the first SNR of the upward walk whose failure rate is
    <= target_bler.
    """

    channel: str
    target_bler: float
    curves: dict[int, dict[str, dict[str, Any]]]
    params: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    derived_from: str | None = None
    source: str = ""  # where the table was read from

    @property
    def reference_bits(self) -> list[int]:
        return sorted(self.curves)

    def threshold_db(self, mcs: Mcs | str, reference_bits: int) -> float | None:
        entry = self.curves[reference_bits].get(get_mcs(mcs).name)
        return None if entry is None else entry.get("threshold_db")

    def reference_for(self, codeword_bits: int) -> int:
        """The reference length used for codewords of ``codeword_bits`` bits: the longest one
        not longer than it (shorter codes need more SNR, so this errs on the safe side), where
        "not longer" allows 10% (a 1000-bit codeword uses the 1024-bit curves: the waterfall
        moves by well under the 0.25 dB grid step), or the shortest reference when the
        codeword is shorter than all of them (then the table is optimistic)."""
        refs = self.reference_bits
        fitting = [r for r in refs if r <= REFERENCE_SLACK * codeword_bits]
        return fitting[-1] if fitting else refs[0]

    def select(self, snr_db: float, codeword_bits: int | None = None,
               candidates: Sequence[Mcs] | None = None) -> McsChoice:
        """Highest-throughput scheme whose threshold is <= ``snr_db``.

        codeword_bits: length of the codewords that will be sent (default: the longest
        reference). candidates: restrict the choice (default all 16). Ties in throughput go
        to the lower threshold. Below every threshold, the most robust scheme (lowest
        threshold) is returned with ``meets_target=False``.
        """
        snr_db = check_snr_db(snr_db)
        ref = self.reference_for(codeword_bits if codeword_bits is not None else self.reference_bits[-1])
        pool = list(candidates) if candidates is not None else list(MCS_SET)
        scored = []
        for mcs in pool:
            thr = self.threshold_db(mcs, ref)
            if thr is not None:
                scored.append((mcs, thr))
        if not scored:
            raise ConfigError(f"the {self.channel} MCS table has no threshold for these schemes at {ref} bits")
        passing = [(m, t) for m, t in scored if t <= snr_db + 1e-9]
        if passing:
            mcs, thr = max(passing, key=lambda mt: (mt[0].spectral_efficiency, -mt[1]))
            return McsChoice(mcs, True, thr, ref)
        mcs, thr = min(scored, key=lambda mt: (mt[1], mt[0].spectral_efficiency))
        return McsChoice(mcs, False, thr, ref)

    def rows(self, snr_grid_db: Sequence[float], codeword_bits: int | None = None) -> list[dict[str, Any]]:
        """One row per SNR: ``snr_db``, ``mcs`` (name or None), ``bits_per_channel_use``, ``threshold_db``."""
        out = []
        for snr in snr_grid_db:
            choice = self.select(float(snr), codeword_bits)
            out.append({
                "snr_db": float(snr),
                "mcs": choice.mcs.name if choice.meets_target else None,
                "bits_per_channel_use": choice.mcs.spectral_efficiency if choice.meets_target else 0.0,
                "threshold_db": choice.threshold_db if choice.meets_target else None,
            })
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "format": TABLE_FORMAT,
            "version": TABLE_VERSION,
            "channel": self.channel,
            "derived_from": self.derived_from,
            "target_bler": self.target_bler,
            "params": self.params,
            "provenance": self.provenance,
            "mcs": [{"name": m.name, "code_rate": f"{m.code_rate.numerator}/{m.code_rate.denominator}",
                     "modulation": m.modulation.name, "bits_per_symbol": m.bits_per_symbol} for m in MCS_SET],
            "curves": {str(ref): curves for ref, curves in sorted(self.curves.items())},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], source: str = "") -> "McsTable":
        try:
            if data.get("format") != TABLE_FORMAT:
                raise KeyError("format")
            if int(data["version"]) != TABLE_VERSION:
                raise KeyError(f"version {data['version']}")
            curves = {int(ref): dict(c) for ref, c in data["curves"].items()}
            for ref_curves in curves.values():
                for name, entry in ref_curves.items():
                    get_mcs(name)
                    entry["points"] = [[float(s), int(n), int(e)] for s, n, e in entry.get("points", [])]
                    entry["expected"] = [[float(s), float(b)] for s, b in entry.get("expected", [])]
                    thr = entry.get("threshold_db")
                    entry["threshold_db"] = None if thr is None else float(thr)
            return cls(channel=check_channel_kind(data["channel"]), target_bler=float(data["target_bler"]),
                       curves=curves, params=dict(data.get("params", {})),
                       provenance=dict(data.get("provenance", {})), derived_from=data.get("derived_from"),
                       source=source)
        except (KeyError, TypeError, ValueError, ConfigError) as exc:
            raise CorruptFileError(f"{source or 'MCS table'}: not a tosc MCS table ({exc})") from None


# --------------------------------------------------------------------------- files


def shipped_table_path(channel: str) -> Path:
    """The table shipped inside the package for ``channel``."""
    return _DATA_DIR / f"mcs_{check_channel_kind(channel)}.json"


def cached_table_path(channel: str) -> Path:
    """The user-cache location ``--recompute`` writes to: ``$TOSC_CACHE_DIR/mcs_<channel>.json``
    (default ``~/.cache/tosc``)."""
    root = Path(os.environ.get("TOSC_CACHE_DIR") or Path.home() / ".cache" / "tosc")
    return root / f"mcs_{check_channel_kind(channel)}.json"


_NUMBER_LIST = re.compile(r"\[\s*((?:-?[\d.eE+-]+|null)(?:,\s*(?:-?[\d.eE+-]+|null))*)\s*\]")


def save_table(table: McsTable, path: str | os.PathLike) -> Path:
    """Write ``table`` as JSON, atomically; lists of numbers (the curve points) stay on one line."""
    path = Path(path)
    text = json.dumps(table.to_json(), indent=1, sort_keys=True)
    text = _NUMBER_LIST.sub(lambda mt: "[" + ", ".join(x.strip() for x in mt.group(1).split(",")) + "]", text)
    atomic_write_text(path, text + "\n")
    return path


def load_table(channel: str = "awgn", path: str | os.PathLike | None = None) -> McsTable:
    """The MCS table for ``channel``: from ``path``, else the user cache, else the shipped copy.

    Raises :class:`ConfigError` when none exists (the message gives the command that makes it)
    and :class:`CorruptFileError` for an unreadable file.
    """
    check_channel_kind(channel)
    candidates = [Path(path)] if path is not None else [cached_table_path(channel), shipped_table_path(channel)]
    for candidate in candidates:
        if candidate.exists():
            try:
                data = json.loads(candidate.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise CorruptFileError(f"{candidate}: unreadable MCS table ({exc})") from None
            table = McsTable.from_json(data, source=str(candidate))
            if table.channel != channel:
                raise CorruptFileError(f"{candidate}: holds the {table.channel} table, not {channel}")
            return table
    raise ConfigError(f"no MCS table for channel {channel!r} (looked in {', '.join(map(str, candidates))}); "
                      f"make one with: tosc channel mcs --channel {channel} --recompute")


# ---------------------------------------------------------------------- simulation


def simulate_bler(mcs: Mcs, codeword_bits: int, snr_db: float, channel: str = "awgn", *,
                  max_codewords: int = 20000, stop_failures: int = 21, batch: int = 512,
                  generator: torch.Generator | None = None, num_iter: int = 20,
                  decoder: str = "fast") -> tuple[int, int]:
    """Send random codewords of ``mcs`` at ``snr_db``; return (codewords sent, failures).

    Stops after ``max_codewords`` codewords or once ``stop_failures`` failures are seen. A
    failure is a codeword whose decoded bits are wrong or whose success flag is false.
    Fading (``rayleigh-fast``: one h per symbol; ``rayleigh-block``: one h per codeword)
    uses perfect CSI, as the digital link does.
    """
    from .fading import FadingChannel
    from .ldpc import get_code
    from .modulation import get_modem

    k, n = mcs.codeword(codeword_bits)
    code = get_code(k, n, mcs.bits_per_symbol)
    modem = get_modem(mcs.modulation.name)
    chan = FadingChannel(channel, "perfect")
    sent = failures = 0
    while sent < max_codewords and failures < stop_failures:
        # small first batches: far below threshold a handful of codewords settles the point
        b = min(batch, max(32, sent), max_codewords - sent)
        u = torch.randint(0, 2, (b, k), generator=generator, dtype=torch.uint8)
        x = modem.map(code.encode(u))
        out = chan(x, snr_db, generator)
        llr = modem.demap(out.equalised("zf"), out.effective_n0())
        res = code.decode(llr, decoder=decoder)
        failed = (~res.ok) | (res.bits != u).any(dim=1)
        sent += b
        failures += int(failed.sum())
    return sent, failures


def _threshold(points: list[list[float]], target: float) -> float | None:
    """Lowest simulated SNR from which on every point has failures/codewords <= target."""
    thr = None
    for snr, n, e in sorted(points, key=lambda p: p[0]):
        if n > 0 and e / n <= target:
            thr = snr if thr is None else thr
        else:
            thr = None
    return thr


def _start_snr_db(mcs: Mcs, channel: str, step: float) -> float:
    """A grid point below the SNR where the channel's capacity reaches the scheme's rate (the
    first few points all fail)."""
    from .fading import FadingChannel

    chan = FadingChannel(channel)
    lo, hi = -30.0, 60.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if chan.capacity_bits_per_use(mid) >= mcs.spectral_efficiency else (mid, hi)
    return math.floor(hi / step) * step


def compute_table(channel: str = "awgn", reference_bits: Sequence[int] = REFERENCE_CODEWORD_BITS, *,
                  target_bler: float = TARGET_BLER, snr_step_db: float = 0.25,
                  max_codewords: int = 20000, seed: int = 0, num_iter: int = 20,
                  schemes: Sequence[Mcs] | None = None, progress: bool = False) -> McsTable:
    """Simulate BLER curves and thresholds for ``channel`` (``awgn`` or ``rayleigh-fast``).

    For each reference codeword length and scheme, walk an SNR grid of ``snr_step_db`` upward
    from below the scheme's Shannon limit; at each point send up to ``max_codewords``
    codewords, stopping early once ``target_bler * max_codewords + 1`` failures show the
    point cannot pass; stop the walk at the first passing point. For ``rayleigh-block`` use
    :func:`derive_block_fading` on the AWGN table instead.
    """
    from .fading import FadingChannel

    if FadingChannel(check_channel_kind(channel)).per_image_gain:
        raise ConfigError("the rayleigh-block table is derived from the AWGN one: use derive_block_fading()")
    if not 0 < target_bler < 1 or max_codewords < 1 or snr_step_db <= 0:
        raise ConfigError("need 0 < target_bler < 1, max_codewords >= 1 and snr_step_db > 0")
    from tqdm import tqdm

    schemes = list(schemes) if schemes is not None else list(MCS_SET)
    stop_failures = int(math.floor(target_bler * max_codewords)) + 1
    generator = torch.Generator().manual_seed(int(seed))
    started = time.time()
    curves: dict[int, dict[str, dict[str, Any]]] = {}
    jobs = [(int(ref), mcs) for ref in reference_bits for mcs in schemes]
    bar = tqdm(jobs, desc=f"MCS table ({channel})", unit="scheme", disable=not progress)
    for ref, mcs in bar:
        k, n = mcs.codeword(ref)
        points: list[list[float]] = []
        snr = _start_snr_db(mcs, channel, snr_step_db)
        threshold = None
        for _ in range(400):
            bar.set_postfix_str(f"n={ref} {mcs.name} {snr:+.2f} dB")
            sent, failed = simulate_bler(mcs, ref, snr, channel, max_codewords=max_codewords,
                                         stop_failures=stop_failures, generator=generator, num_iter=num_iter)
            points.append([round(snr, 4), sent, failed])
            if failed / sent <= target_bler:
                threshold = round(snr, 4)
                break
            snr += snr_step_db
        curves.setdefault(ref, {})[mcs.name] = {"k": k, "n": n, "points": points, "threshold_db": threshold}
    from ..provenance import git_commit, package_versions

    params = {
        "reference_codeword_bits": [int(r) for r in reference_bits], "snr_step_db": snr_step_db,
        "max_codewords": max_codewords, "stop_failures": stop_failures, "seed": int(seed),
        "num_iter": num_iter, "decoder": "fast (flooding BP, early stop on zero syndrome)",
        "demapper": "APP (exact)", "csi": "perfect", "interleaver": "3GPP 38.212 output bit interleaver",
        "failure": "decoded bits wrong or syndrome check failed",
    }
    provenance = {
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "elapsed_s": round(time.time() - started, 1), "versions": package_versions(), "git_commit": git_commit(),
    }
    return McsTable(channel, target_bler, curves, params, provenance)


def _bler_curve(points: list[list[float]]):
    """Failure rate as a function of linear SNR: log-linear interpolation in dB between the
    measured points, 1 below the first, and beyond the last point the log-slope of the last
    two measured points with a nonzero failure count continued downward."""
    pts = sorted(points, key=lambda p: p[0])
    snr_db = np.array([p[0] for p in pts])
    rate = np.array([p[2] / p[1] for p in pts])
    nonzero = rate > 0
    xs = snr_db[nonzero]
    ys = np.log10(rate[nonzero])
    if len(xs) >= 2:
        slope = (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
    else:
        slope = -3.0  # decades per dB, typical of an LDPC waterfall
    slope = min(slope, -0.5)

    def curve(snr_lin: np.ndarray) -> np.ndarray:
        s_db = 10.0 * np.log10(np.maximum(snr_lin, 1e-30))
        out = np.ones_like(s_db)
        inside = (s_db >= xs[0]) & (s_db <= xs[-1])
        out[inside] = 10.0 ** np.interp(s_db[inside], xs, ys)
        above = s_db > xs[-1]
        out[above] = 10.0 ** (ys[-1] + slope * (s_db[above] - xs[-1]))
        return np.minimum(out, 1.0)

    return curve


def derive_block_fading(awgn: McsTable, snr_max_db: float = 70.0, snr_step_db: float = 0.25) -> McsTable:
    """The ``rayleigh-block`` table from the AWGN one, without simulation.

    With one h ~ CN(0, 1) per image and perfect CSI, a codeword at SNR s sees exactly an
    AWGN channel at SNR g*s with g = |h|^2 ~ Exp(1), so BLER_block(s) = E_g[BLER_awgn(g s)].
    The expectation is a numerical integral over g of the interpolated AWGN curve (see
    :func:`_bler_curve`); thresholds are read off the same SNR grid. Every codeword of an
    image sees the same g, so an image fails about as often as one of its codewords.
    """
    if awgn.channel != "awgn":
        raise ConfigError("derive_block_fading needs the AWGN table")
    # Gauss-Laguerre nodes for E[f(g)], g ~ Exp(1), plus a fine grid near g = 0 where the
    # failure probability lives
    g_fine = np.concatenate([np.logspace(-9, 0, 3000), np.linspace(1.0, 40.0, 2000)[1:]])
    w_fine = np.gradient(g_fine) * np.exp(-g_fine)
    curves: dict[int, dict[str, dict[str, Any]]] = {}
    for ref, ref_curves in awgn.curves.items():
        for name, entry in ref_curves.items():
            bler_awgn = _bler_curve(entry["points"])
            points, threshold = [], None
            if entry.get("threshold_db") is not None:
                s_db = float(entry["threshold_db"])
                while s_db <= snr_max_db:
                    s = db_to_linear(s_db)
                    # P(g < g0) is added in closed form for the region below the fine grid
                    below = 1.0 - math.exp(-g_fine[0])
                    value = below + float((bler_awgn(g_fine * s) * w_fine).sum())
                    points.append([round(s_db, 4), value])
                    if value <= awgn.target_bler:
                        threshold = round(s_db, 4)
                        break
                    s_db += snr_step_db
            curves.setdefault(ref, {})[name] = {
                "k": entry["k"], "n": entry["n"], "threshold_db": threshold,
                "expected": [[p[0], float(f"{p[1]:.6g}")] for p in points],
            }
    params = dict(awgn.params)
    params["derivation"] = ("BLER_block(s) = E_g[BLER_awgn(g s)], g ~ Exp(1); AWGN curve interpolated "
                            "log-linearly in dB and extrapolated with its last slope")
    params["snr_step_db"] = snr_step_db
    provenance = dict(awgn.provenance)
    provenance["derived_utc"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    return McsTable("rayleigh-block", awgn.target_bler, curves, params, provenance, derived_from="awgn")
