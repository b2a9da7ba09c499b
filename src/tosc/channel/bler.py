"""Measured block error rates of rate-matched 5G LDPC + QAM codewords, and the model the link
chooses its scheme from.

A *codeword shape* is (k channel uses, log2 M bits per symbol, K information bits): Sionna's
``LDPC5GEncoder`` makes n = k log2(M) coded bits out of K bits (shortening, puncturing, base
graph as 38.212 picks it), the 38.212 output interleaver feeds the Gray QAM mapper, and the
receiver runs the exact APP demapper and BP (:mod:`tosc.channel.ldpc`). For each channel
that is simulated (``awgn``, ``rayleigh-fast``) and each reference length k in
:data:`REFERENCE_USES` and modulation, :func:`simulate_thresholds` walks K up a grid of code
rates and, for each K, walks the SNR up in :data:`SNR_STEP_DB` steps from the previous
threshold until a point passes: at most ``target * max_codewords`` failures in
``max_codewords`` codewords (a failure: the decoded bits are wrong or the parity checks
fail). The file records every point (SNR, codewords, failures, undetected errors of the
LDPC parity check alone), the seed, counts, versions and git commit.

:class:`BlerModel` answers "how many information bits can k channel uses at this SNR carry
with this modulation": it reads the threshold curve of the longest reference length
<= k (shorter blocks need more SNR, so this errs on the safe side), interpolates the
threshold linearly in K between measured neighbours, and scales the information bits per
channel use to k. Block fading is not simulated: its codewords see AWGN at SNR g s with
g = |h|^2 ~ Exp(1), so a scheme is judged by the AWGN curve at s g_min + margin, with
P(g < g_min) = target / 2 (see :meth:`BlerModel.max_info_bits`).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..errors import ConfigError, CorruptFileError
from ..io import atomic_write_text
from .conventions import check_channel_kind, check_snr_db

__all__ = [
    "BlerModel",
    "simulate_codewords",
    "simulate_thresholds",
    "load_model",
    "model_path",
    "REFERENCE_USES",
    "MODULATION_BITS",
    "TARGET_BLER",
    "MIN_RATE",
    "MAX_RATE",
    "SNR_STEP_DB",
]

TARGET_BLER = 1e-3
REFERENCE_USES = (24, 49, 98, 196, 392)
MODULATION_BITS = (2, 4, 6, 8)  # QPSK .. 256-QAM (BPSK carries half of QPSK in the same uses)
MIN_RATE, MAX_RATE = 0.2, 948 / 1024  # 5G LDPC without repetition; 38.212's highest code rate
MIN_INFO_BITS = 12
SNR_STEP_DB = 0.25
# the model reads thresholds this much below the SNR asked about: a threshold rests on a few
# thousand codewords (<= target x codewords failures), so its true BLER may sit a little above
MODEL_MARGIN_DB = 0.25
# code rates simulated per modulation: where that modulation can be the best choice
RATE_GRID = {2: (0.2, 0.9), 4: (0.4, 0.9), 6: (0.5, 0.9), 8: (0.6, 0.925)}
RATE_STEP = 0.05
MODEL_FORMAT = "tosc-bler-model"
MODEL_VERSION = 1
_DATA_DIR = Path(__file__).resolve().parent / "data"
_MODULATION_NAMES = {1: "bpsk", 2: "qpsk", 4: "16qam", 6: "64qam", 8: "256qam"}


def modulation_name(bits_per_symbol: int) -> str:
    try:
        return _MODULATION_NAMES[int(bits_per_symbol)]
    except KeyError:
        raise ConfigError(f"no modulation with {bits_per_symbol} bits per symbol") from None


def info_bits_grid(n_channel_uses: int, bits_per_symbol: int) -> list[int]:
    """The K values simulated for a reference length: code rates on the modulation's grid."""
    n = n_channel_uses * bits_per_symbol
    lo, hi = RATE_GRID[bits_per_symbol]
    rates = np.arange(lo, hi + 1e-9, RATE_STEP)
    if rates[-1] < hi - 1e-9:
        rates = np.append(rates, hi)
    ks = sorted({int(math.floor(r * n + 1e-9)) for r in rates})
    return [k for k in ks if MIN_INFO_BITS <= k and MIN_RATE <= k / n <= MAX_RATE]


def simulate_codewords(info_bits: int, n_channel_uses: int, bits_per_symbol: int, channel, snr_db: float, *,
                       max_codewords: int, stop_failures: int, generator: torch.Generator,
                       first_batch: int = 32, batch: int = 1024) -> tuple[int, int, int]:
    """Send random codewords of one shape; return (codewords, failures, undetected).

    channel: a :class:`~tosc.channel.fading.FadingChannel` (perfect CSI). A failure is a
    codeword whose parity checks fail or whose decoded bits are wrong; ``undetected`` counts
    those whose parity checks passed with wrong bits (what a CRC must catch). Stops after
    ``max_codewords`` or at ``stop_failures`` failures.
    """
    from .ldpc import get_code
    from .modulation import get_modem

    code = get_code(info_bits, n_channel_uses * bits_per_symbol, bits_per_symbol)
    modem = get_modem(modulation_name(bits_per_symbol))
    sent = failures = undetected = 0
    while sent < max_codewords and failures < stop_failures:
        # small first batches: far below the threshold a handful of codewords settles the point
        b = min(batch, max(first_batch, sent), max_codewords - sent)
        u = torch.randint(0, 2, (b, info_bits), generator=generator, dtype=torch.uint8)
        out = channel(modem.map(code.encode(u)), snr_db, generator)
        res = code.decode(modem.demap(out.equalised("zf"), out.effective_n0()))
        wrong = (res.bits != u).any(dim=1)
        sent += b
        failures += int(((~res.ok) | wrong).sum())
        undetected += int((res.ok & wrong).sum())
    return sent, failures, undetected


def _seed(*parts: Any) -> int:
    return int.from_bytes(hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:8], "little") >> 1


def _start_snr_db(channel, info_bits: int, n_channel_uses: int, target: float) -> float:
    """A grid point a little below the normal approximation's SNR for this shape (the walk starts here)."""
    lo, hi = -20.0, 60.0
    for _ in range(40):
        mid = (lo + hi) / 2
        if channel.normal_approximation_bits(mid, n_channel_uses, target) >= info_bits:
            hi = mid
        else:
            lo = mid
    return math.floor(hi / SNR_STEP_DB) * SNR_STEP_DB - SNR_STEP_DB


def simulate_thresholds(channel_kind: str, out: str | os.PathLike, *, reference_uses: Sequence[int] = REFERENCE_USES,
                        modulation_bits: Sequence[int] = MODULATION_BITS, target_bler: float = TARGET_BLER,
                        max_codewords: int = 10000, seed: int = 0,
                        progress: Callable[[str], None] | None = None) -> "BlerModel":
    """Measure thresholds for every reference shape into ``out`` (JSON), resuming what is there.

    Each K gets its own generator seeded by (seed, channel, k, log2 M, K), so a resumed run
    gives the same numbers as an uninterrupted one. The file is rewritten atomically after
    every K.
    """
    from .fading import FadingChannel

    kind = check_channel_kind(channel_kind)
    channel = FadingChannel(kind, "perfect")
    if channel.per_image_gain:
        raise ConfigError("block fading is judged from the AWGN model (see BlerModel); simulate 'awgn'")
    out = Path(out)
    stop_failures = int(math.floor(target_bler * max_codewords)) + 1
    params = {"target_bler": target_bler, "max_codewords": max_codewords, "stop_failures": stop_failures,
              "seed": seed, "snr_step_db": SNR_STEP_DB, "rate_grid": {str(m): RATE_GRID[m] for m in modulation_bits},
              "rate_step": RATE_STEP, "decoder": "tosc fast flooding BP, 20 iterations, early stop on zero syndrome",
              "demapper": "exact APP (separable)", "csi": "perfect, zero-forcing",
              "encoder": "Sionna LDPC5GEncoder with the 38.212 output interleaver",
              "failure": "parity checks failed or decoded bits wrong",
              "undetected": "parity checks passed, decoded bits wrong"}
    if out.exists():
        model = BlerModel.from_json(json.loads(out.read_text()), str(out))
        if model.channel != kind or model.params.get("seed") != seed or \
                model.params.get("max_codewords") != max_codewords:
            raise ConfigError(f"{out} holds a different simulation (channel, seed or codeword count)")
    else:
        model = BlerModel(kind, target_bler, {}, params, {})
    started = time.time()
    for k_ref in reference_uses:
        for m in modulation_bits:
            key = f"{k_ref}/{m}"
            rows = model.curves.setdefault(key, [])
            done = {r["info_bits"] for r in rows}
            snr = None
            for info_bits in info_bits_grid(k_ref, m):
                if info_bits in done:
                    snr = next(r["threshold_db"] for r in rows if r["info_bits"] == info_bits)
                    continue
                if snr is None:
                    snr = _start_snr_db(channel, info_bits, k_ref, target_bler)
                generator = torch.Generator().manual_seed(_seed(seed, kind, k_ref, m, info_bits))
                points = []
                for _ in range(400):
                    sent, failed, undetected = simulate_codewords(
                        info_bits, k_ref, m, channel, snr, max_codewords=max_codewords,
                        stop_failures=stop_failures, generator=generator)
                    points.append([round(snr, 4), sent, failed, undetected])
                    if progress:
                        progress(f"{kind} k={k_ref} {modulation_name(m)} K={info_bits}: {snr:+.2f} dB "
                                 f"{failed}/{sent} failed, {undetected} undetected")
                    if failed / sent <= target_bler and sent >= max_codewords:
                        break
                    snr += SNR_STEP_DB
                rows.append({"info_bits": info_bits, "coded_bits": k_ref * m, "threshold_db": round(snr, 4),
                             "points": points})
                rows.sort(key=lambda r: r["info_bits"])
                model.provenance = _provenance(model.provenance, started)
                started = time.time()  # elapsed_s accumulates over resumed runs
                save_model(model, out)
    return model


def _provenance(previous: dict[str, Any], started: float) -> dict[str, Any]:
    from ..provenance import git_commit, package_versions

    return {"created_utc": previous.get("created_utc")
            or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "updated_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "elapsed_s": round(previous.get("elapsed_s", 0.0) + time.time() - started, 1),
            "versions": package_versions(), "git_commit": git_commit()}


@dataclass
class BlerModel:
    """Measured thresholds of one channel.

    curves["k/m"] = [{"info_bits", "coded_bits", "threshold_db", "points": [[snr_db, codewords,
    failures, undetected], ...]}, ...] sorted by info_bits; ``threshold_db`` is the first SNR of
    the upward walk that passed with the full codeword count.
    """

    channel: str
    target_bler: float
    curves: dict[str, list[dict[str, Any]]]
    params: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    def reference_uses(self, bits_per_symbol: int) -> list[int]:
        return sorted(int(key.split("/")[0]) for key, rows in self.curves.items()
                      if int(key.split("/")[1]) == bits_per_symbol and rows)

    def modulation_bits(self) -> list[int]:
        return sorted({int(key.split("/")[1]) for key, rows in self.curves.items() if rows})

    def max_info_bits_at_reference(self, reference_uses: int, bits_per_symbol: int, snr_db: float) -> float:
        """Largest K the reference shape carries at ``snr_db`` (threshold interpolated linearly
        between measured K; 0 below the lowest measured threshold)."""
        rows = self.curves.get(f"{reference_uses}/{bits_per_symbol}", [])
        best = 0.0
        for lower, upper in zip(rows, rows[1:]):
            t0, t1 = lower["threshold_db"], upper["threshold_db"]
            if t1 <= snr_db:
                best = float(upper["info_bits"])
            elif t0 <= snr_db:
                frac = (snr_db - t0) / (t1 - t0) if t1 > t0 else 0.0
                best = max(best, lower["info_bits"] + frac * (upper["info_bits"] - lower["info_bits"]))
        if rows and rows[0]["threshold_db"] <= snr_db:
            best = max(best, float(rows[0]["info_bits"]))
        return best

    def max_info_bits(self, n_channel_uses: int, bits_per_symbol: int, snr_db: float,
                      margin_db: float = MODEL_MARGIN_DB) -> int:
        """Information bits (CRC included) one codeword of ``n_channel_uses`` symbols of
        log2 M = ``bits_per_symbol`` carries at ``snr_db`` with BLER <= target, by the model:
        the bits per channel use of the longest reference <= n_channel_uses at ``snr_db`` minus
        ``margin_db`` (:data:`MODEL_MARGIN_DB` by default), times n_channel_uses.
        0 when no measured shape qualifies."""
        snr_db = check_snr_db(snr_db) - margin_db
        refs = [r for r in self.reference_uses(bits_per_symbol) if r <= n_channel_uses]
        if not refs:
            return 0
        ref = refs[-1]
        per_use = self.max_info_bits_at_reference(ref, bits_per_symbol, snr_db) / ref
        bits = int(math.floor(per_use * n_channel_uses + 1e-9))
        n = n_channel_uses * bits_per_symbol
        bits = min(bits, int(math.floor(MAX_RATE * n)))
        return bits if bits >= max(MIN_INFO_BITS, math.ceil(MIN_RATE * n)) else 0

    def undetected_fraction(self, reference_uses: int | None = None) -> tuple[int, int]:
        """(undetected, failures) summed over every point (of one reference length if given): how
        often the LDPC parity checks alone pass a wrong word, which the CRC length is chosen from."""
        und = fail = 0
        for key, rows in self.curves.items():
            if reference_uses is not None and int(key.split("/")[0]) != reference_uses:
                continue
            for row in rows:
                for _, _, f, u in row["points"]:
                    und, fail = und + u, fail + f
        return und, fail

    def to_json(self) -> dict[str, Any]:
        return {"format": MODEL_FORMAT, "version": MODEL_VERSION, "channel": self.channel,
                "target_bler": self.target_bler, "params": self.params, "provenance": self.provenance,
                "curves": self.curves}

    @classmethod
    def from_json(cls, data: dict[str, Any], source: str = "") -> "BlerModel":
        try:
            if data.get("format") != MODEL_FORMAT or int(data["version"]) != MODEL_VERSION:
                raise KeyError("format/version")
            curves = {str(key): sorted(({"info_bits": int(r["info_bits"]), "coded_bits": int(r["coded_bits"]),
                                         "threshold_db": float(r["threshold_db"]),
                                         "points": [[float(s), int(n), int(f), int(u)] for s, n, f, u in r["points"]]}
                                        for r in rows), key=lambda r: r["info_bits"])
                      for key, rows in data["curves"].items()}
            return cls(check_channel_kind(data["channel"]), float(data["target_bler"]), curves,
                       dict(data.get("params", {})), dict(data.get("provenance", {})), source)
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptFileError(f"{source or 'BLER model'}: not a tosc BLER model ({exc})") from None


def model_path(channel_kind: str) -> Path:
    """The model shipped inside the package: ``channel/data/bler_<channel>.json``."""
    return _DATA_DIR / f"bler_{check_channel_kind(channel_kind)}.json"


def save_model(model: BlerModel, path: str | os.PathLike) -> Path:
    from .mcs import _NUMBER_LIST  # the MCS table's layout: each list of numbers on one line

    path = Path(path)
    text = json.dumps(model.to_json(), indent=1, sort_keys=True)
    text = _NUMBER_LIST.sub(lambda mt: "[" + ", ".join(x.strip() for x in mt.group(1).split(",")) + "]", text)
    atomic_write_text(path, text + "\n")
    return path


_CACHE: dict[str, BlerModel] = {}


def load_model(channel_kind: str) -> BlerModel:
    """The shipped model simulated for ``channel_kind`` (``awgn`` or ``rayleigh-fast``); cached.

    Raises :class:`ConfigError` when it is missing (with the command that makes it) and
    :class:`CorruptFileError` when it is unreadable.
    """
    path = model_path(channel_kind)
    key = str(path)
    if key not in _CACHE:
        if not path.exists():
            raise ConfigError(f"no BLER model for {channel_kind!r} at {path}; make it with: "
                              f"python scripts/simulate_bler.py --channel {channel_kind}")
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CorruptFileError(f"{path}: unreadable BLER model ({exc})") from None
        _CACHE[key] = BlerModel.from_json(data, key)
    return _CACHE[key]
