#!/usr/bin/env python
"""Check the evaluation targets on a results file and print each one PASS / FAIL with the numbers.

    .venv/bin/python scripts/check_targets.py runs/demo/eval/results.jsonl [--system tosc-sr+ldpc]

(a) where the best classic system decodes, TOSC-SR's PSNR >= best classic + 2 dB;
(b) at CBR <= 1/8, TOSC-SR's accuracy beats every baseline;
(c) on the held-out classifiers and the segmentation task, TOSC-SR beats the MSE-only
    codec at matched operating points (mean metric difference > 0; bpp ratio and BD shown).
The definitions are in src/tosc/evaluation/targets.py. Exit status 0 whatever the
verdicts (they are results, not errors); 2 on a missing or unreadable file.
"""

from __future__ import annotations

import argparse
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", help="a results.jsonl written by `tosc evaluate`")
    parser.add_argument("--system", default="tosc-sr+ldpc", help="the TOSC-SR system to judge")
    parser.add_argument("--mse-system", default="mse-only+ldpc", help="the MSE-only codec for target (c)")
    parser.add_argument("--max-failure", type=float, default=0.01,
                        help="a classic system 'decodes' at a point when its failure rate is at most this")
    args = parser.parse_args()

    from tosc.errors import ToscError
    from tosc.evaluation.targets import check_targets, format_checks
    from tosc.results import read_results

    try:
        records = read_results(args.results)
    except (ToscError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not any(r.system == args.system for r in records):
        print(f"error: {args.results} has no records of {args.system}", file=sys.stderr)
        return 2
    print(format_checks(check_targets(records, args.system, args.mse_system, args.max_failure)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
