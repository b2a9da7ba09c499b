#!/usr/bin/env python
"""Rate matching for a whole grid: plain bisection per point against the rate table.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/rate_table_bench.py --codec webp --limit 20

For each image, the payload budgets of every point of the full grid (SNR 0..20 dB x CBR
1/16..1/2 x every registered channel, on the LDPC link) are rate-matched three
ways in this process: plain bisection per budget (how points were rate-matched before), the
rate table cold (an empty cache folder) and warm (the same folder again, a new process's view).
Prints encoder calls and seconds per image and the ratios against plain bisection; the three
must pick the same qualities (checked).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from fractions import Fraction

from tosc import registry
from tosc.channel import DigitalLink, channel_uses
from tosc.data import load_dataset
from tosc.errors import DoesNotFitError
from tosc.source_coding import classic
from tosc.source_coding.classic.table import RateCache, RateTable

SNRS = (0.0, 5.0, 10.0, 15.0, 20.0)
CBRS = (Fraction(1, 16), Fraction(1, 8), Fraction(1, 4), Fraction(1, 2))


def grid_budget_bytes(codec, shape) -> list[int]:
    budgets = set()
    for channel in registry.names("channel"):
        link = DigitalLink(channel=channel)
        for snr in SNRS:
            for cbr in CBRS:
                try:
                    bits = link.capacity_bits(snr, channel_uses(cbr, shape))
                except DoesNotFitError:
                    continue
                if bits >= codec.quality_index_bits:
                    budgets.add((bits - codec.quality_index_bits) // 8)
    return sorted(budgets)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--codec", default="webp")
    parser.add_argument("--limit", type=int, default=20)
    args = parser.parse_args()
    images = load_dataset("fashion-mnist", "test", limit=args.limit).images
    codec = classic.get_codec(args.codec)
    budgets = grid_budget_bytes(codec, tuple(images.shape[1:]))
    print(f"{args.codec}: {len(images)} images x {len(budgets)} distinct payload budgets {budgets}")

    started, calls, plain = time.perf_counter(), 0, []
    for image in images:
        for budget in budgets:
            match = classic.match_rate(codec, image, budget, "payload")
            calls += match.encodes
            plain.append(match.quality)
    rows = [("plain bisection per point", calls, time.perf_counter() - started)]
    with tempfile.TemporaryDirectory() as folder:
        for label in ("rate table, cold cache", "rate table, warm cache"):
            table = RateTable(codec, RateCache(folder))  # a fresh table: only the disk is shared
            started, got = time.perf_counter(), []
            for image in images:
                for budget in budgets:
                    got.append(classic.match_rate(codec, image, budget, "payload", table).quality)
            rows.append((label, table.encoder_calls, time.perf_counter() - started))
            assert got == plain, "the rate table chose other qualities than bisection"
    base = rows[0][2]
    for label, n, seconds in rows:
        print(f"{label:28s} {n / len(images):7.1f} encodes/image {seconds / len(images):8.3f} s/image "
              f"x{base / seconds:6.1f} faster than plain")


if __name__ == "__main__":
    main()
