"""Simulate the BLER model the digital link chooses its scheme from (tosc.channel.bler).

    nice -n 10 env OMP_NUM_THREADS=1 .venv/bin/python scripts/simulate_bler.py --channel awgn
    nice -n 10 env OMP_NUM_THREADS=1 .venv/bin/python scripts/simulate_bler.py --channel rayleigh-fast

Writes src/tosc/channel/data/bler_<channel>.json (or --out) after every measured shape, with
the seed, codeword counts, versions and git commit; rerunning the same command resumes.
"""

from __future__ import annotations

import argparse
import sys

import torch


def main(argv: list[str] | None = None) -> int:
    from tosc.channel import bler
    from tosc.errors import ToscError

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--channel", default="awgn", help="awgn or rayleigh-fast")
    parser.add_argument("--out", default=None, help="JSON file (default: the shipped model)")
    parser.add_argument("--max-codewords", type=int, default=10000, help="codewords at a passing point")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--uses", type=int, nargs="+", default=list(bler.REFERENCE_USES),
                        help="reference channel uses per codeword")
    parser.add_argument("--bits", type=int, nargs="+", default=list(bler.MODULATION_BITS),
                        help="bits per symbol (2 QPSK .. 8 256-QAM)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    try:
        bler.simulate_thresholds(args.channel, args.out or bler.model_path(args.channel),
                                 reference_uses=args.uses, modulation_bits=args.bits,
                                 max_codewords=args.max_codewords, seed=args.seed,
                                 progress=lambda line: print(line, flush=True))
    except ToscError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
