#!/usr/bin/env python
"""The analog-vs-digital table of docs/jscc.md, from a `tosc evaluate` results file.

    .venv/bin/tosc evaluate --systems deep-jscc tosc-sr-analog mse-only+ideal tosc-sr+ideal \
        --snr-db 0 5 10 20 --cbr 1/16 1/8 1/4 --limit 1000 --jobs 1 --out runs/jscc_eval
    .venv/bin/python scripts/jscc_table.py runs/jscc_eval/results.jsonl

Prints one markdown row per (channel, CBR, SNR): PSNR (dB) and classifier-cnn / held-out
ResNet accuracy (%) of every system in the file, then the PSNR gap of each analog system to
``mse-only+ideal`` (the learned digital codec at the capacity bound).
"""

from __future__ import annotations

import argparse
import sys
from fractions import Fraction
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path)
    parser.add_argument("--reference", default="mse-only+ideal")
    args = parser.parse_args()
    from tosc import registry
    from tosc.results import read_results

    records = read_results(args.results)
    seen = list(dict.fromkeys(r.system for r in records))
    analog = [s for s in registry.select("system", family="jscc") if s in seen]  # analog columns first, always
    systems = analog + [s for s in seen if s not in analog]
    table: dict[tuple, dict] = {}
    for r in records:
        key = (r.channel.kind, Fraction(r.rate.cbr).limit_denominator(1 << 12), r.channel.snr_db)
        table.setdefault(key, {})[r.system] = r.metrics
    head = ["channel", "CBR", "SNR dB"] + [f"{s} {m}" for s in systems for m in ("PSNR", "acc", "acc resnet")]
    head += [f"{s} - {args.reference} PSNR" for s in analog if args.reference in systems]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for (kind, cbr, snr), row in sorted(table.items()):
        cells = [kind, str(cbr), f"{snr:g}"]
        for s in systems:
            m = row.get(s)
            cells += ([f"{m['psnr_db']:.2f}", f"{100 * m['accuracy']:.1f}", f"{100 * m['accuracy_classifier-resnet']:.1f}"]
                      if m else ["", "", ""])
        if args.reference in systems:
            ref = row.get(args.reference)
            cells += [f"{row[s]['psnr_db'] - ref['psnr_db']:+.2f}" if ref and s in row else "" for s in analog]
        print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
