"""Measured block error rates of rate-matched 5G LDPC + QAM codewords, and the model the link
chooses its scheme from.

A *codeword shape* is (k channel uses, log2 M bits per symbol, K information bits): Sionna's
``LDPC5GEncoder`` makes n = k log2(M) coded bits out of K bits (shortening, puncturing, base
graph as 38.212 picks it; below code rate 1/5 the start of base graph 2's circular buffer), the
38.212 output interleaver feeds the Gray QAM mapper, and the receiver runs the exact APP
demapper and BP (:mod:`tosc.channel.ldpc`, :data:`~tosc.channel.ldpc.NUM_ITER` iterations). For
each channel that is simulated (``awgn``, ``rayleigh-fast``) and each reference length k in
:data:`REFERENCE_USES` and modulation, :func:`simulate_thresholds` walks K up a grid of code
rates and, for each K, finds the threshold SNR: a walk in :data:`SNR_STEP_DB` steps to the
first point where at most ``target * max_codewords`` of ``max_codewords`` codewords fail (a
failure: the decoded bits are wrong or the parity checks fail), then a bisection to
:data:`REFINE_STEP_DB` with the stricter test of :data:`REFINE_PASS_FRACTION` x the target on
:data:`REFINE_CODEWORDS` codewords. The file records every point (SNR, codewords, failures,
undetected errors of the LDPC parity check alone), the seed, counts, versions and git commit.
A targeted run measures only given shapes; :func:`merge_models` completes it with an older
model's rows, each row keeping its iterations and the margin it is read with. The same walk
measures the short-block alternatives: BP followed by OSD (curves ``"k/m/osd2"``) and the 5G
CA-polar code with SCL decoding (``"k/m/polar"``, K counting its CRC; :mod:`tosc.channel.polar`).

:class:`BlerModel` answers "how many information bits can k channel uses at this SNR carry
with this modulation": it reads the threshold curve of the longest reference length
<= k (shorter blocks need more SNR, so this errs on the safe side), interpolates the
threshold linearly in K between measured neighbours (each raised by its row's margin), and
scales the information bits per channel use to k. Block fading is not simulated: its codewords
see AWGN at SNR g s with g = |h|^2 ~ Exp(1), so a scheme is judged by the AWGN curve at
s g_min + margin, with P(g < g_min) = target / 2 (see :meth:`BlerModel.max_info_bits`).
"""

from __future__ import annotations

import datetime as _dt
import functools
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
from .ldpc import MAX_RATE, MIN_RATE, NUM_ITER, get_code, max_coded_bits, rate_matchable
from .polar import POLAR_LINK_CRC, POLAR_LIST_SIZE, POLAR_MAX_CODED_BITS, get_polar_code, polar_feasible

__all__ = [
    "BlerModel",
    "merge_models",
    "simulate_codewords",
    "simulate_thresholds",
    "load_model",
    "model_path",
    "curve_key",
    "parse_curve_key",
    "check_code",
    "CODES",
    "POLAR_CRC",
    "POLAR_LIST_SIZE",
    "REFERENCE_USES",
    "MODULATION_BITS",
    "TARGET_BLER",
    "MIN_RATE",
    "MAX_RATE",
    "SNR_STEP_DB",
    "REFINE_STEP_DB",
]

TARGET_BLER = 1e-3
REFERENCE_USES = (24, 49, 98, 196, 392)
MODULATION_BITS = (2, 4, 6, 8)  # QPSK .. 256-QAM (BPSK carries half of QPSK in the same uses)
MIN_INFO_BITS = 12
SNR_STEP_DB = 0.25  # the coarse walk
REFINE_STEP_DB = 0.0625  # the refinement between the last failing and the first passing coarse point
# A refined threshold is the lowest point (to REFINE_STEP_DB) where at most REFINE_PASS_FRACTION x
# target x REFINE_CODEWORDS codewords failed: half the target, so that a threshold whose true
# BLER is the target passes only by chance (P(<= 4 of 8,000 | 1e-3) = 10%). It is read one
# refinement step low (REFINED_MARGIN_DB): the bisection tries two or three points and keeps the
# lowest that passed, and without that step two of the 20 verified operating points measured
# 21 and 20 failures in 20,000 codewords. Older, coarse models (the first 3,000-codeword point
# of the walk that passed) are read MODEL_MARGIN_DB low; a model file says which it is
# (params["model_margin_db"], and per row "margin_db").
REFINE_CODEWORDS = 8000
REFINE_PASS_FRACTION = 0.5
REFINED_MARGIN_DB = REFINE_STEP_DB
MODEL_MARGIN_DB = 0.25
# code rates simulated per modulation: where that modulation can be the best choice. QPSK goes
# below Sionna's 1/5 (base graph 2's whole circular buffer, tosc.channel.ldpc.max_coded_bits):
# at 0 dB the shortest blocks carry only about 1/6.
RATE_GRID = {2: (0.15, 0.9), 4: (0.4, 0.9), 6: (0.5, 0.9), 8: (0.6, 0.925)}
RATE_STEP = 0.05
MODEL_FORMAT = "tosc-bler-model"
MODEL_VERSION = 1
CODES = ("ldpc", "polar")
# The CA-polar code of short blocks: its CRC is the transport CRC and also picks the path out of
# the SCL list, so it is part of the code and of its curves ("k/m/polar", whose K counts these
# bits); both chosen by measurement (tosc.channel.polar).
POLAR_CRC = POLAR_LINK_CRC
_DATA_DIR = Path(__file__).resolve().parent / "data"
# optional per-row keys: BP iterations, the margin the row is read with, where it came from
_ROW_OPTIONS = ("num_iter", "margin_db", "from", "osd_order")
_MODULATION_NAMES = {1: "bpsk", 2: "qpsk", 4: "16qam", 6: "64qam", 8: "256qam"}


def curve_key(reference_uses: int, bits_per_symbol: int, osd_order: int = 0, code: str = "ldpc") -> str:
    """The model's key for one reference shape and decoder: ``"k/m"`` for LDPC with BP, ``"k/m/osd2"``
    for BP followed by order-2 OSD, ``"k/m/polar"`` for the CA-polar code with SCL decoding
    (:mod:`tosc.channel.polar`)."""
    base = f"{int(reference_uses)}/{int(bits_per_symbol)}"
    if check_code(code) == "polar":
        return base + "/polar"
    return base + (f"/osd{int(osd_order)}" if osd_order else "")


def parse_curve_key(key: str) -> tuple[int, int, int, str]:
    """``"k/m[/osdN|/polar]"`` -> (k, m, N, code) with N = 0 for BP alone and for polar."""
    parts = key.split("/")
    if len(parts) > 2 and parts[2] == "polar":
        return int(parts[0]), int(parts[1]), 0, "polar"
    return int(parts[0]), int(parts[1]), int(parts[2][3:]) if len(parts) > 2 else 0, "ldpc"


def check_code(code: str) -> str:
    """``code`` if it names a channel code of the link (:data:`CODES`), else :class:`ConfigError`."""
    if code not in CODES:
        raise ConfigError(f"code must be one of {', '.join(CODES)}, got {code!r}")
    return code


def modulation_name(bits_per_symbol: int) -> str:
    try:
        return _MODULATION_NAMES[int(bits_per_symbol)]
    except KeyError:
        raise ConfigError(f"no modulation with {bits_per_symbol} bits per symbol") from None


def info_bits_grid(n_channel_uses: int, bits_per_symbol: int, code: str = "ldpc") -> list[int]:
    """The K values simulated for a reference length: code rates on the modulation's grid (for the
    polar code, K counts its CRC, and only shapes it can build: at most
    :data:`~tosc.channel.polar.POLAR_MAX_CODED_BITS` coded bits)."""
    n = n_channel_uses * bits_per_symbol
    lo, hi = RATE_GRID[bits_per_symbol]
    rates = np.arange(lo, hi + 1e-9, RATE_STEP)
    if rates[-1] < hi - 1e-9:
        rates = np.append(rates, hi)
    ks = sorted({int(math.floor(r * n + 1e-9)) for r in rates})
    if check_code(code) == "polar":
        return [k for k in ks if k > POLAR_CRC[1] and polar_feasible(k - POLAR_CRC[1], n, POLAR_CRC[1])]
    return [k for k in ks if MIN_INFO_BITS <= k and rate_matchable(k, n)]


def simulate_codewords(info_bits: int, n_channel_uses: int, bits_per_symbol: int, channel, snr_db: float, *,
                       max_codewords: int, stop_failures: int, generator: torch.Generator,
                       first_batch: int = 32, batch: int = 1024, num_iter: int = NUM_ITER,
                       osd_order: int = 0, code: str = "ldpc") -> tuple[int, int, int]:
    """Send random codewords of one shape; return (codewords, failures, undetected).

    channel: a :class:`~tosc.channel.fading.FadingChannel` (perfect CSI). A failure is a
    codeword whose parity checks fail or whose decoded bits are wrong; ``undetected`` counts
    those whose parity checks passed with wrong bits (what a CRC must catch; with OSD, every
    wrong decision). Stops after ``max_codewords`` or at ``stop_failures`` failures.
    osd_order: OSD after failed BP (:meth:`~tosc.channel.ldpc.LDPC5GCode.decode`), 0 for none.
    code: ``"polar"`` sends the CA-polar code instead (:data:`POLAR_CRC`, SCL with
    :data:`POLAR_LIST_SIZE` paths); its ``info_bits`` count the CRC, its check is the CRC, so
    ``undetected`` counts wrong words whose CRC passed.
    """
    from .modulation import get_modem

    n = n_channel_uses * bits_per_symbol
    if check_code(code) == "polar":
        coder = get_polar_code(info_bits - POLAR_CRC[1], n, POLAR_CRC[0], POLAR_LIST_SIZE)
        decode = coder.decode
    else:
        coder = get_code(info_bits, n, bits_per_symbol, num_iter)
        decode = functools.partial(coder.decode, osd_order=osd_order)
    modem = get_modem(modulation_name(bits_per_symbol))
    sent = failures = undetected = 0
    while sent < max_codewords and failures < stop_failures:
        # small first batches: far below the threshold a handful of codewords settles the point
        b = min(batch, max(first_batch, sent), max_codewords - sent)
        u = torch.randint(0, 2, (b, coder.k), generator=generator, dtype=torch.uint8)
        out = channel(modem.map(coder.encode(u)), snr_db, generator)
        res = decode(modem.demap(out.equalised("zf"), out.effective_n0()))
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


def useful_info_bits(hint: "BlerModel", reference_uses: int, bits_per_symbol: int, grid: Sequence[int],
                     max_snr_db: float) -> list[int]:
    """The K of ``grid`` worth simulating, judged by an older model ``hint``: those it has no
    threshold for, and those whose threshold is at most ``max_snr_db`` + 1.5 dB and where no other
    modulation carries 3% more bits at that SNR; plus the next K above the last one kept, so
    the model can interpolate up to it. A model without the others still answers correctly:
    it offers that modulation only up to its highest measured K."""
    rows = {r["info_bits"]: r["threshold_db"] for r in hint.curves.get(f"{reference_uses}/{bits_per_symbol}", [])}
    others = [m for m in hint.modulation_bits() if m != bits_per_symbol]
    keep = []
    for info_bits in grid:
        t = rows.get(info_bits)
        if t is None:
            keep.append(info_bits)
        elif t <= max_snr_db + 1.5 and info_bits >= 0.97 * max(
                (hint.max_info_bits_at_reference(reference_uses, m, t) for m in others), default=0.0):
            keep.append(info_bits)
    if keep and keep[-1] != grid[-1]:
        keep.append(grid[grid.index(keep[-1]) + 1])
    return keep


def simulate_thresholds(channel_kind: str, out: str | os.PathLike, *, reference_uses: Sequence[int] = REFERENCE_USES,
                        modulation_bits: Sequence[int] = MODULATION_BITS, target_bler: float = TARGET_BLER,
                        max_codewords: int = 3000, refine_codewords: int = REFINE_CODEWORDS, seed: int = 0,
                        num_iter: int = NUM_ITER, hint: "BlerModel | None" = None,
                        useful_below_db: float | None = None, shapes: Sequence[Sequence[int]] | None = None,
                        osd_order: int = 0, code: str = "ldpc",
                        progress: Callable[[str], None] | None = None) -> "BlerModel":
    """Measure thresholds for every reference shape into ``out`` (JSON), resuming what is there.

    Per shape (k channel uses, log2 M, K), two stages:

    1. The coarse walk: SNR steps of :data:`SNR_STEP_DB`, each point up to ``max_codewords``
       codewords and stopped at ``target x max_codewords + 1`` failures, until a point passes
       (at most ``target x max_codewords`` failures). It starts 1 dB below ``hint``'s threshold
       for the shape when ``hint`` (an older model) has one, else just below the normal
       approximation, and first walks down if its first point passes.
    2. The refinement (``refine_codewords`` > 0): on the :data:`REFINE_STEP_DB` grid between the
       last failing and the first passing coarse point, the lowest point where at most
       :data:`REFINE_PASS_FRACTION` x target x ``refine_codewords`` codewords fail (a bisection;
       the points are stopped at one failure more), walking up past the coarse point if even it
       fails this stricter test. That point is the threshold, read :data:`REFINED_MARGIN_DB` low.

    ``useful_below_db`` (needs ``hint``): simulate only :func:`useful_info_bits` up to that SNR.
    ``shapes``: simulate only these (k, log2 M, K), in this order (a targeted refinement; see
    :func:`merge_models` for completing such a model from an older one).
    ``osd_order``: decode with BP followed by OSD of that order on BP failures; the rows go to
    the curves ``"k/m/osdN"`` (:func:`curve_key`). ``code="polar"``: the CA-polar code
    (:func:`simulate_codewords`), rows ``"k/m/polar"``, shapes it cannot build skipped.

    Each K gets its own generator seeded by (seed, channel, k, log2 M, K), so a resumed run
    gives the same numbers as an uninterrupted one. The file is rewritten atomically after
    every K. A file holding a different simulation (channel, seed, counts, iterations) is refused.
    """
    from .fading import FadingChannel

    kind = check_channel_kind(channel_kind)
    if check_code(code) == "polar" and osd_order:
        raise ConfigError("OSD belongs to the LDPC code; the polar code is decoded by SCL")
    channel = FadingChannel(kind, "perfect")
    if channel.per_image_gain:
        raise ConfigError("block fading is judged from the AWGN model (see BlerModel); simulate 'awgn'")
    out = Path(out)
    stop_failures = int(math.floor(target_bler * max_codewords)) + 1
    refine_pass = int(math.floor(REFINE_PASS_FRACTION * target_bler * refine_codewords))
    params = {"target_bler": target_bler, "max_codewords": max_codewords, "stop_failures": stop_failures,
              "code": code,
              "seed": seed, "snr_step_db": SNR_STEP_DB, "rate_grid": {str(m): RATE_GRID[m] for m in modulation_bits},
              "rate_step": RATE_STEP, "num_iter": num_iter, "osd_order": osd_order,
              "decoder": f"tosc fast flooding BP, {num_iter} iterations, early stop on zero syndrome"
                         + (f", then order-{osd_order} OSD on the channel LLRs where BP failed" if osd_order else ""),
              "demapper": "exact APP (separable)", "csi": "perfect, zero-forcing",
              "encoder": "Sionna LDPC5GEncoder with the 38.212 output interleaver (rates below 1/5: the "
                         "first n bits of base graph 2's circular buffer, no repetition)",
              "failure": "parity checks failed or decoded bits wrong",
              "undetected": "parity checks passed, decoded bits wrong"}
    if code == "polar":
        params.update({"decoder": f"tosc CA-SCL, list {POLAR_LIST_SIZE}, min-sum f, the first path "
                                  f"(by metric) whose {POLAR_CRC[0]} passes",
                       "encoder": "tosc 5G CA-polar (38.212 5.3.1 / 5.4.1 uplink construction, rate "
                                  "matching and channel interleaver; no PC bits)",
                       "polar_crc": POLAR_CRC[0], "polar_list_size": POLAR_LIST_SIZE,
                       "failure": f"{POLAR_CRC[0]} of the chosen path failed or decoded bits wrong",
                       "undetected": f"{POLAR_CRC[0]} passed, decoded bits wrong"})
    if refine_codewords:
        params.update({"refine_codewords": refine_codewords, "refine_pass_failures": refine_pass,
                       "refine_step_db": REFINE_STEP_DB, "model_margin_db": REFINED_MARGIN_DB,
                       "threshold": f"lowest point on the {REFINE_STEP_DB} dB grid with <= {refine_pass} failures "
                                    f"in {refine_codewords} codewords, between the last failing and the first "
                                    f"passing point of the {SNR_STEP_DB} dB walk"})
    else:
        params.update({"model_margin_db": MODEL_MARGIN_DB,
                       "threshold": f"first point of the {SNR_STEP_DB} dB walk with <= {stop_failures - 1} "
                                    f"failures in {max_codewords} codewords"})
    if hint is not None:
        params["walk_start"] = f"1 dB below the thresholds of {Path(hint.source).name} where it has the shape"
    if useful_below_db is not None:
        if hint is None:
            raise ConfigError("useful_below_db needs a hint model to judge which shapes are useful")
        params["shapes"] = (f"those useful up to {useful_below_db:g} dB by {Path(hint.source).name} "
                            "(tosc.channel.bler.useful_info_bits)")
    if out.exists():
        model = BlerModel.from_json(json.loads(out.read_text()), str(out))
        defaults = {"num_iter": 20, "code": "ldpc"}
        mismatch = [key for key in ("seed", "max_codewords", "num_iter", "refine_codewords", "osd_order", "code",
                                    "polar_crc", "polar_list_size")
                    if model.params.get(key, defaults.get(key, 0)) != params.get(key, defaults.get(key, 0))]
        if model.channel != kind or mismatch:
            raise ConfigError(f"{out} holds a different simulation ({', '.join(mismatch) or 'channel'} differ)")
    else:
        model = BlerModel(kind, target_bler, {}, params, {})
    if shapes is not None:
        params["shapes"] = "targeted: " + ", ".join(f"{k}/{m}/{kk}" for k, m, kk in shapes)
        work = [(int(k), int(m), [int(kk)]) for k, m, kk in shapes]
    else:
        work = []
        for k_ref in reference_uses:
            for m in modulation_bits:
                grid = info_bits_grid(k_ref, m, code)
                if not grid:
                    continue
                if useful_below_db is not None:
                    grid = useful_info_bits(hint, k_ref, m, grid, useful_below_db)
                work.append((k_ref, m, grid))
    started = time.time()
    for k_ref, m, grid in work:
        if True:  # one (k, log2 M) and its K, in order
            key = curve_key(k_ref, m, osd_order, code)
            rows = model.curves.setdefault(key, [])
            done = {r["info_bits"] for r in rows}
            snr = None
            for info_bits in grid:
                if info_bits in done:
                    snr = next(r["threshold_db"] for r in rows if r["info_bits"] == info_bits)
                    continue
                hinted = None
                if hint is not None:
                    hinted = next((r["threshold_db"] for r in hint.curves.get(key, hint.curves.get(curve_key(k_ref, m), []))
                                   if r["info_bits"] == info_bits), None)
                if hinted is not None:
                    snr = math.floor((hinted - 1.0) / SNR_STEP_DB) * SNR_STEP_DB
                elif snr is None:
                    # a measured neighbour's threshold (this run's), else just below the normal approximation
                    near = [r for r in rows if r["info_bits"] < info_bits]
                    snr = (math.floor((near[-1]["threshold_db"] - 0.25) / SNR_STEP_DB) * SNR_STEP_DB if near
                           else _start_snr_db(channel, info_bits, k_ref, target_bler))
                else:
                    snr = math.floor((snr - 0.5) / SNR_STEP_DB) * SNR_STEP_DB  # previous K's threshold, a little lower
                generator = torch.Generator().manual_seed(_seed(seed, kind, k_ref, m, info_bits))
                points = []
                tag = (f"{kind} k={k_ref} {modulation_name(m)} K={info_bits}" + (f" OSD-{osd_order}" if osd_order else "")
                       + (" polar" if code == "polar" else ""))

                def measure(at: float, codewords: int, allowed: int) -> bool:
                    sent, failed, undetected = simulate_codewords(
                        info_bits, k_ref, m, channel, at, max_codewords=codewords, stop_failures=allowed + 1,
                        generator=generator, num_iter=num_iter, osd_order=osd_order, code=code)
                    points.append([round(at, 4), sent, failed, undetected])
                    if progress:
                        progress(f"{tag}: {at:+.4f} dB {failed}/{sent} failed, {undetected} undetected")
                    return failed <= allowed and sent >= codewords

                # 1. coarse walk: find a failing point directly below a passing one
                passed_at = failed_at = None
                for _ in range(400):
                    if measure(snr, max_codewords, stop_failures - 1):
                        passed_at = snr
                        if failed_at is not None:
                            break
                        snr -= SNR_STEP_DB  # the first point passed: walk down to a failing one
                    else:
                        failed_at = snr
                        if passed_at is not None:
                            break
                        snr += SNR_STEP_DB
                if passed_at is None or failed_at is None:
                    raise ConfigError(f"{tag}: the walk found no threshold")
                threshold = passed_at
                if refine_codewords:
                    # 2. refinement: the lowest REFINE_STEP_DB point in (failed_at, passed_at] meeting the
                    # stricter test; bisection assumes the BLER falls with SNR
                    steps = int(round(SNR_STEP_DB / REFINE_STEP_DB))
                    lo, hi = 0, steps  # failed_at + i * step: i = lo failed, i = hi unknown yet
                    verdict: dict[int, bool] = {}

                    def ok(i: int) -> bool:
                        if i not in verdict:
                            verdict[i] = measure(failed_at + i * REFINE_STEP_DB, refine_codewords, refine_pass)
                        return verdict[i]

                    while hi - lo > 1:
                        mid = (lo + hi) // 2
                        if ok(mid):
                            hi = mid
                        else:
                            lo = mid
                    while not ok(hi):  # even the coarse point failed the stricter test: walk up
                        hi += 1
                    threshold = failed_at + hi * REFINE_STEP_DB
                rows.append({"info_bits": info_bits, "coded_bits": k_ref * m, "threshold_db": round(threshold, 4),
                             "points": points, "num_iter": num_iter, "margin_db": params["model_margin_db"],
                             **({"osd_order": osd_order} if osd_order else {})})
                rows.sort(key=lambda r: r["info_bits"])
                snr = threshold
                model.params = params
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
    the upward walk that passed with the full codeword count. Curves ``"k/m/osd2"`` hold the
    same for BP followed by order-2 OSD, curves ``"k/m/polar"`` for the CA-polar code
    (:func:`curve_key`).
    """

    channel: str
    target_bler: float
    curves: dict[str, list[dict[str, Any]]]
    params: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    def reference_uses(self, bits_per_symbol: int, osd_order: int = 0, code: str = "ldpc") -> list[int]:
        """Reference lengths measured for this modulation with this code and decoder (BP: osd_order 0)."""
        return sorted(k for k, m, o, c in map(parse_curve_key, (key for key, rows in self.curves.items() if rows))
                      if m == bits_per_symbol and o == osd_order and c == code)

    def modulation_bits(self) -> list[int]:
        return sorted({parse_curve_key(key)[1] for key, rows in self.curves.items() if rows})

    def row_margin_db(self, row: dict[str, Any]) -> float:
        """dB row ``row``'s threshold is read low: its own ``margin_db`` (a model completed from an
        older one holds rows of both kinds), else the model's :attr:`margin_db`."""
        return float(row.get("margin_db", self.margin_db))

    def max_info_bits_at_reference(self, reference_uses: int, bits_per_symbol: int, snr_db: float,
                                   margin_db: float | None = 0.0, osd_order: int = 0, code: str = "ldpc") -> float:
        """Largest K the reference shape carries at ``snr_db`` (threshold interpolated linearly
        between measured K; 0 below the lowest measured threshold). Each threshold is raised by
        ``margin_db``, or by its row's own margin (:meth:`row_margin_db`) when that is None.
        With ``osd_order``, the larger of the OSD curve's answer and BP's: OSD runs only where BP
        failed, so a BP threshold also holds for BP + OSD. ``code="polar"``: the polar curve (K counts
        its CRC)."""
        if check_code(code) == "polar":
            return self._max_on_curve(self.curves.get(curve_key(reference_uses, bits_per_symbol, code=code), []),
                                      snr_db, margin_db)
        if osd_order:
            return max(self.max_info_bits_at_reference(reference_uses, bits_per_symbol, snr_db, margin_db),
                       self._max_on_curve(self.curves.get(curve_key(reference_uses, bits_per_symbol, osd_order), []),
                                          snr_db, margin_db))
        return self._max_on_curve(self.curves.get(curve_key(reference_uses, bits_per_symbol), []), snr_db, margin_db)

    def _max_on_curve(self, rows: list[dict[str, Any]], snr_db: float, margin_db: float | None) -> float:
        best = 0.0

        def threshold(row: dict[str, Any]) -> float:
            return row["threshold_db"] + (self.row_margin_db(row) if margin_db is None else margin_db)

        for lower, upper in zip(rows, rows[1:]):
            t0, t1 = threshold(lower), threshold(upper)
            if t1 <= snr_db:
                best = float(upper["info_bits"])
            elif t0 <= snr_db:
                # interpolate only between neighbours of the simulation grid: a targeted run
                # (the OSD curves) leaves gaps that a straight line would bridge optimistically
                near = upper["info_bits"] - lower["info_bits"] <= math.ceil(RATE_STEP * lower["coded_bits"]) + 1
                frac = (snr_db - t0) / (t1 - t0) if t1 > t0 and near else 0.0
                best = max(best, lower["info_bits"] + frac * (upper["info_bits"] - lower["info_bits"]))
        if rows and threshold(rows[0]) <= snr_db:
            best = max(best, float(rows[0]["info_bits"]))
        return best

    @property
    def margin_db(self) -> float:
        """dB the thresholds must be read low: :data:`REFINED_MARGIN_DB` for a refined model (its
        thresholds passed at half the target), :data:`MODEL_MARGIN_DB` for a coarse one."""
        return float(self.params.get("model_margin_db", MODEL_MARGIN_DB))

    def max_info_bits(self, n_channel_uses: int, bits_per_symbol: int, snr_db: float,
                      margin_db: float | None = None, osd_order: int = 0, code: str = "ldpc") -> int:
        """Information bits (CRC included) one codeword of ``n_channel_uses`` symbols of
        log2 M = ``bits_per_symbol`` carries at ``snr_db`` with BLER <= target, by the model:
        the bits per channel use of the longest reference <= n_channel_uses at ``snr_db`` minus
        ``margin_db`` (default: each row's own, :meth:`row_margin_db`), times n_channel_uses.
        0 when no measured shape qualifies. ``osd_order``: the receiver runs BP + OSD of that
        order (:meth:`max_info_bits_at_reference`). ``code="polar"``: the CA-polar code, K counting
        its CRC (:data:`POLAR_CRC`), 0 where it cannot be built (one block of at most
        :data:`~tosc.channel.polar.POLAR_MAX_CODED_BITS` coded bits)."""
        snr_db = check_snr_db(snr_db)
        refs = [r for r in self.reference_uses(bits_per_symbol, code=check_code(code)) if r <= n_channel_uses]
        if not refs:
            return 0
        ref = refs[-1]
        per_use = self.max_info_bits_at_reference(ref, bits_per_symbol, snr_db, margin_db, osd_order, code) / ref
        bits = int(math.floor(per_use * n_channel_uses + 1e-9))
        n = n_channel_uses * bits_per_symbol
        if code == "polar":
            if n > POLAR_MAX_CODED_BITS:
                return 0
            while bits > POLAR_CRC[1] and not polar_feasible(bits - POLAR_CRC[1], n, POLAR_CRC[1]):
                bits -= 1
            return bits if bits > POLAR_CRC[1] else 0
        bits = min(bits, int(math.floor(MAX_RATE * n)))
        # long blocks are segmented later (digital.plan_transport), so only the lowest rate binds here
        low_rate_ok = bits / n >= MIN_RATE or n <= max_coded_bits(bits)
        return bits if bits >= MIN_INFO_BITS and low_rate_ok else 0

    def undetected_fraction(self, reference_uses: int | None = None, *, max_bler: float = 1e-2,
                            num_iter: int | None = None, osd_order: int = 0, code: str = "ldpc") -> tuple[int, int]:
        """(undetected, failures) summed over the points whose failure rate is below ``max_bler``
        (of one reference length if given; of rows decoded with ``num_iter`` BP iterations if
        given; of the BP or the BP + OSD curves by ``osd_order``): how often the LDPC parity
        checks alone pass a wrong word, which the CRC length is chosen from."""
        und = fail = 0
        default_iter = self.params.get("num_iter", 20)
        for key, rows in self.curves.items():
            ref, _, order, kind = parse_curve_key(key)
            if (reference_uses is not None and ref != reference_uses) or order != osd_order or kind != code:
                continue
            for row in rows:
                if num_iter is not None and row.get("num_iter", default_iter) != num_iter:
                    continue
                for _, n, f, u in row["points"]:
                    if n and f / n < max_bler:
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
                                         "points": [[float(s), int(n), int(f), int(u)] for s, n, f, u in r["points"]],
                                         **{opt: r[opt] for opt in _ROW_OPTIONS if opt in r}}
                                        for r in rows), key=lambda r: r["info_bits"])
                      for key, rows in data["curves"].items()}
            return cls(check_channel_kind(data["channel"]), float(data["target_bler"]), curves,
                       dict(data.get("params", {})), dict(data.get("provenance", {})), source)
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptFileError(f"{source or 'BLER model'}: not a tosc BLER model ({exc})") from None


def merge_models(refined: BlerModel, older: BlerModel, older_margin_db: float | None = None) -> BlerModel:
    """``refined`` completed with the rows of ``older`` it lacks, each tagged with the BP
    iterations, margin and file it comes from (a targeted refinement measures only the shapes
    that decide the operating points of interest; the rest keep their older, coarser thresholds,
    read with the older margin, or with ``older_margin_db`` where given: the fast-fading coarse
    rows are read 0.5 dB low, see :class:`tosc.channel.fading.RayleighFastChannel`). Both must
    be of the same channel and target."""
    if refined.channel != older.channel or refined.target_bler != older.target_bler:
        raise ConfigError("can only merge BLER models of the same channel and target")
    if older_margin_db is not None and not (math.isfinite(older_margin_db) and older_margin_db >= 0):
        raise ConfigError(f"older_margin_db must be a finite number >= 0 (got {older_margin_db!r})")
    origin = f"{Path(older.source).name or 'older model'} (git {older.provenance.get('git_commit', '?')})"
    curves: dict[str, list[dict[str, Any]]] = {key: [dict(r) for r in rows] for key, rows in refined.curves.items()}
    for key, rows in older.curves.items():
        have = {r["info_bits"] for r in curves.get(key, [])}
        for row in rows:
            if row["info_bits"] not in have:
                curves.setdefault(key, []).append({
                    **row, "num_iter": row.get("num_iter", older.params.get("num_iter", 20)),
                    "margin_db": older.row_margin_db(row) if older_margin_db is None else older_margin_db,
                    "from": row.get("from", origin)})
        curves[key].sort(key=lambda r: r["info_bits"])
    params = dict(refined.params)
    params["older_rows"] = {"from": origin, "params": older.params, "provenance": older.provenance}
    if older_margin_db is not None:
        params["older_rows"]["margin_db"] = older_margin_db
    return BlerModel(refined.channel, refined.target_bler, curves, params, dict(refined.provenance))


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
