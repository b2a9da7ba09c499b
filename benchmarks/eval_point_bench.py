#!/usr/bin/env python
"""CPU time of the evaluation grid's points with the noise-free caches off, on, and warm on disk.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/eval_point_bench.py --limit 30

Every system of ``make demo-full`` (``tosc.demo.full_systems()``) runs the full grid's 60
points (SNR 0..20 dB x CBR 1/16..1/2 x AWGN, block and fast Rayleigh fading) on ``--limit``
test images in this process, twice: with the caches of :mod:`tosc.systems.memo` off (every
point encodes and decodes afresh, as before they existed) and on. The points are dealt to
``--workers`` simulated grid workers (``tosc evaluate --jobs``) that share no cache, and each
pass starts cold (the caches and the per-process score table emptied, the on-disk caches of
scores and codec v3 streams in a new empty folder). A third pass, "warm", is a second run's
view: memory emptied again, the disk caches the "on" pass filled. Classic rate tables are
looked up warm from ~/.cache/tosc (filled, untimed, before the passes). Prints CPU ms
(time.process_time) per image and point for each system, the ratios off/on and off/warm, and
the full grid's CPU time extrapolated to 1000 images; checks the records are identical.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from fractions import Fraction

import torch

from tosc.channel import channel_uses
from tosc.data import load_dataset
from tosc.demo import FULL_CBRS, FULL_CHANNELS, FULL_IMAGES, FULL_SNRS_DB, full_systems
from tosc.errors import DependencyMissingError
from tosc.evaluation import point as point_module
from tosc.evaluation.point import OperatingPoint, run_point
from tosc.source_coding.classic.vvc import find_vvencapp
from tosc.systems import build_system
from tosc.systems.memo import caching, clear_all


def run_pass(system, data, points, workers: int, cache: bool, disk: str | None = None) -> tuple[float, list[dict]]:
    """CPU seconds and records (timings dropped) of ``points``, dealt to ``workers``; ``disk``:
    the folder of the on-disk score and codec v3 caches during the pass."""
    records, seconds = [], 0.0
    before, vvenc_before = os.environ.get("TOSC_CACHE_DIR"), os.environ.get("TOSC_VVENCAPP")
    if disk is not None:
        try:  # VVenC is built into the cache folder: keep finding it there
            os.environ.setdefault("TOSC_VVENCAPP", str(find_vvencapp()))
        except DependencyMissingError:
            pass  # the VVC systems then say so themselves
        os.environ["TOSC_CACHE_DIR"] = disk  # read per call by tosc.diskcache (rate tables keep theirs)
    try:
        for w in range(workers):
            clear_all()
            point_module._SCORES.clear()  # a worker starts with no scores either
            started = time.process_time()
            with caching(cache):
                for p in points[w::workers]:
                    _, record = run_point(system, data.images, data.labels, p, dataset="fashion-mnist",
                                          split="test", seed=0)
                    records.append({k: v for k, v in record.to_dict().items() if k != "timings_s"})
            seconds += time.process_time() - started
    finally:
        for name, value in (("TOSC_CACHE_DIR", before), ("TOSC_VVENCAPP", vvenc_before)):
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return seconds, records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--limit", type=int, default=30, help="test images per point")
    parser.add_argument("--workers", type=int, default=2, help="grid worker processes to simulate")
    parser.add_argument("--systems", default=None, help="comma-separated (default: all of make demo-full)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = load_dataset("fashion-mnist", "test", limit=args.limit)
    shape = tuple(data.images.shape[1:])
    points = [OperatingPoint(channel, float(snr), Fraction(cbr))
              for channel in FULL_CHANNELS for cbr in FULL_CBRS for snr in FULL_SNRS_DB]
    names = args.systems.split(",") if args.systems else list(full_systems())
    per = len(data) * len(points)
    print(f"{len(names)} systems x {len(points)} points x {len(data)} images, {args.workers} simulated workers")
    print(f"{'system':30s} {'off ms':>8s} {'on ms':>8s} {'warm ms':>8s} {'off/on':>7s} {'off/warm':>8s}"
          "   (CPU ms per image and point)")
    total = {"off": 0.0, "on": 0.0, "warm": 0.0}
    for i, name in enumerate(names):
        system = build_system(name)
        if hasattr(system, "prepare"):  # the warm rate table, as in a second run
            system.prepare(data.images, [(p.channel, p.snr_db, channel_uses(p.cbr, shape)) for p in points])
        with tempfile.TemporaryDirectory() as scratch:
            run_pass(system, data, points[:1], 1, False)  # lazy loading (networks, libraries) out of the timing
            # alternate which of off / on goes first, so neither always profits from a warmer process;
            # "warm" reads the disk caches "on" filled
            order = ("off", "on") if i % 2 == 0 else ("on", "off")
            result = {kind: run_pass(system, data, points, args.workers, kind == "on", scratch) for kind in order}
            result["warm"] = run_pass(system, data, points, args.workers, True, scratch)
        key = lambda r: (r["channel"]["kind"], r["channel"]["snr_db"], r["rate"]["cbr"])  # noqa: E731
        for kind in ("on", "warm"):
            if sorted(result["off"][1], key=key) != sorted(result[kind][1], key=key):
                raise SystemExit(f"{name}: the records differ with the caches {kind}")
        secs = {kind: result[kind][0] for kind in total}
        for kind in total:
            total[kind] += secs[kind]
        print(f"{name:30s} {1000 * secs['off'] / per:8.2f} {1000 * secs['on'] / per:8.2f} "
              f"{1000 * secs['warm'] / per:8.2f} {secs['off'] / secs['on']:7.2f} {secs['off'] / secs['warm']:8.2f}",
              flush=True)
    n = len(names) * per
    print(f"{'mean per system':30s} {1000 * total['off'] / n:8.2f} {1000 * total['on'] / n:8.2f} "
          f"{1000 * total['warm'] / n:8.2f} {total['off'] / total['on']:7.2f} {total['off'] / total['warm']:8.2f}")
    full = len(names) * len(points) * FULL_IMAGES / n
    print(f"full grid ({len(points)} points x {len(names)} systems x {FULL_IMAGES} images), point work only: "
          f"{total['off'] * full / 3600:.2f} CPU-hours off, {total['on'] * full / 3600:.2f} on, "
          f"{total['warm'] * full / 3600:.2f} warm ({total['warm'] * full / 60 / 2:.0f} min on 2 cores); "
          "records identical")


if __name__ == "__main__":
    main()
