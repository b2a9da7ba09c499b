"""Simulate the BLER model the digital link chooses its scheme from (tosc.channel.bler).

    nice -n 10 env OMP_NUM_THREADS=1 .venv/bin/python scripts/simulate_bler.py --channel awgn \
        --hint OLDER_MODEL.json --shapes SHAPES.json --out runs/bler_awgn.json \
        --complete-from OLDER_MODEL.json
    nice -n 10 env OMP_NUM_THREADS=1 .venv/bin/python scripts/simulate_bler.py --channel rayleigh-fast

Writes src/tosc/channel/data/bler_<channel>.json (or --out) after every measured shape, with
the seed, codeword counts, versions and git commit; rerunning the same command resumes. Per
shape: a coarse 0.25 dB walk (3,000 codewords at a passing point), then a refinement to
0.0625 dB with 8,000 codewords and half the target BLER (see tosc.channel.bler). --shapes
simulates only the listed [k, log2 M, K] (the shipped AWGN model refined the 67 shapes that
decide the README table's operating points, listed in its params["shapes"], plus every useful
shape at k = 24), and --complete-from fills the other rows from an older model. --osd-order 2
measures BP followed by order-2 OSD instead (the curves "k/m/osd2" of the shipped AWGN model:
the shapes of the README table's operating points with at most 400 coded bits, a few K above
BP's choice). --code polar measures the CA-polar code with SCL decoding (rows "k/m/polar", K
counting its CRC; only shapes of at most 1,088 coded bits).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from tosc.cli.script import exits_on_error


@exits_on_error
def main(argv: list[str] | None = None) -> int:
    from tosc.channel import bler
    from tosc.channel.ldpc import NUM_ITER

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--channel", default="awgn", help="awgn or rayleigh-fast")
    parser.add_argument("--out", default=None, help="JSON file (default: the shipped model)")
    parser.add_argument("--max-codewords", type=int, default=3000, help="codewords at a passing point of the coarse walk")
    parser.add_argument("--refine-codewords", type=int, default=bler.REFINE_CODEWORDS,
                        help="codewords at a refinement point (0: coarse thresholds, read with a margin)")
    parser.add_argument("--num-iter", type=int, default=None, help="BP iterations (default: the link's)")
    parser.add_argument("--useful-below-db", type=float, default=None,
                        help="simulate only the shapes the --hint model finds useful up to this SNR")
    parser.add_argument("--shapes", default=None,
                        help="JSON file: a list of [k, log2 M, K] to simulate, in that order (a targeted refinement)")
    parser.add_argument("--hint", default=None,
                        help="an older model whose thresholds the walks start 1 dB below (e.g. the shipped one)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--osd-order", type=int, default=0,
                        help="decode with BP, then OSD of this order where BP failed (rows 'k/m/osdN'; 0: BP alone)")
    parser.add_argument("--code", default="ldpc", choices=list(bler.CODES),
                        help="ldpc (5G LDPC, BP) or polar (CA-polar, SCL; rows 'k/m/polar')")
    parser.add_argument("--uses", type=int, nargs="+", default=list(bler.REFERENCE_USES),
                        help="reference channel uses per codeword")
    parser.add_argument("--bits", type=int, nargs="+", default=list(bler.MODULATION_BITS),
                        help="bits per symbol (2 QPSK .. 8 256-QAM)")
    parser.add_argument("--complete-from", default=None,
                        help="after simulating, write --out completed with this older model's other rows "
                             "to --merged-out (tosc.channel.bler.merge_models)")
    parser.add_argument("--merged-out", default=None, help="where --complete-from writes (default: the shipped model)")
    parser.add_argument("--older-margin-db", type=float, default=None,
                        help="read the rows taken from --complete-from this many dB low instead of by their own "
                             "margin (the shipped fast-fading model: 0.5 for its coarse rows)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    hint = None
    if args.hint:
        hint = bler.BlerModel.from_json(json.loads(Path(args.hint).read_text()), args.hint)
    bler.simulate_thresholds(args.channel, args.out or bler.model_path(args.channel),
                             reference_uses=args.uses, modulation_bits=args.bits,
                             max_codewords=args.max_codewords, refine_codewords=args.refine_codewords,
                             num_iter=args.num_iter or NUM_ITER, seed=args.seed, hint=hint,
                             useful_below_db=args.useful_below_db,
                             shapes=json.loads(Path(args.shapes).read_text()) if args.shapes else None,
                             osd_order=args.osd_order, code=args.code,
                             progress=lambda line: print(line, flush=True))
    if args.complete_from:
        out = Path(args.out or bler.model_path(args.channel))
        refined = bler.BlerModel.from_json(json.loads(out.read_text()), str(out))
        older = bler.BlerModel.from_json(json.loads(Path(args.complete_from).read_text()), args.complete_from)
        bler.save_model(bler.merge_models(refined, older, args.older_margin_db),
                        args.merged_out or bler.model_path(args.channel))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
