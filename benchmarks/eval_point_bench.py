#!/usr/bin/env python
"""CPU time of the evaluation grid's points with the noise-free caches off and on.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/eval_point_bench.py --limit 30

Every system of ``make demo-full`` (``tosc.demo.full_systems()``) runs the full grid's 60
points (SNR 0..20 dB x CBR 1/16..1/2 x AWGN, block and fast Rayleigh fading) on ``--limit``
test images in this process, twice: with the caches of :mod:`tosc.systems.memo` off (every
point encodes and decodes afresh, as before they existed) and on. The points are dealt to
``--workers`` simulated grid workers (``tosc evaluate --jobs``) that share no cache, and each
pass starts cold (the caches and the per-process score table emptied). Classic rate tables
are looked up warm from ~/.cache/tosc (filled, untimed, before the passes). Prints CPU ms
(time.process_time) per image and point for each system, the ratio off/on, and the
full grid's CPU time extrapolated to 1000 images; checks the records are identical.
"""

from __future__ import annotations

import argparse
import time
from fractions import Fraction

import torch

from tosc.channel import channel_uses
from tosc.data import load_dataset
from tosc.demo import FULL_CBRS, FULL_CHANNELS, FULL_IMAGES, FULL_SNRS_DB, full_systems
from tosc.evaluation import point as point_module
from tosc.evaluation.point import OperatingPoint, run_point
from tosc.systems import build_system
from tosc.systems.memo import caching, clear_all


def run_pass(system, data, points, workers: int, cache: bool) -> tuple[float, list[dict]]:
    """CPU seconds and records (timings dropped) of ``points``, dealt to ``workers``."""
    records, seconds = [], 0.0
    for w in range(workers):
        clear_all()
        point_module._SCORES.clear()  # a worker starts with no scores either
        started = time.process_time()
        with caching(cache):
            for p in points[w::workers]:
                _, record = run_point(system, data.images, data.labels, p, dataset="fashion-mnist", split="test",
                                      seed=0)
                records.append({k: v for k, v in record.to_dict().items() if k != "timings_s"})
        seconds += time.process_time() - started
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
    print(f"{'system':30s} {'off ms':>8s} {'on ms':>8s} {'off/on':>7s}   (CPU ms per image and point)")
    total_off = total_on = 0.0
    for i, name in enumerate(names):
        system = build_system(name)
        if hasattr(system, "prepare"):  # the warm rate table, as in a second run
            system.prepare(data.images, [(p.channel, p.snr_db, channel_uses(p.cbr, shape)) for p in points])
        run_pass(system, data, points[:1], 1, False)  # lazy loading (networks, libraries) out of the timing
        # alternate which pass goes first, so neither always profits from a warmer process
        order = (False, True) if i % 2 == 0 else (True, False)
        result = {cache: run_pass(system, data, points, args.workers, cache) for cache in order}
        (off, off_records), (on, on_records) = result[False], result[True]
        key = lambda r: (r["channel"]["kind"], r["channel"]["snr_db"], r["rate"]["cbr"])  # noqa: E731
        if sorted(off_records, key=key) != sorted(on_records, key=key):
            raise SystemExit(f"{name}: the records differ with the caches on")
        total_off, total_on = total_off + off, total_on + on
        print(f"{name:30s} {1000 * off / per:8.2f} {1000 * on / per:8.2f} {off / on:7.2f}", flush=True)
    n = len(names) * per
    print(f"{'mean per system':30s} {1000 * total_off / n:8.2f} {1000 * total_on / n:8.2f} {total_off / total_on:7.2f}")
    full = len(names) * len(points) * FULL_IMAGES / n
    print(f"full grid ({len(points)} points x {len(names)} systems x {FULL_IMAGES} images), point work only: "
          f"{total_off * full / 3600:.2f} CPU-hours off, {total_on * full / 3600:.2f} on "
          f"({total_on * full / 60 / 2:.0f} min on 2 cores); records identical")


if __name__ == "__main__":
    main()
