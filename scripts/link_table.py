"""The README's link table: information bits per image of the real digital link against the
normal approximation (finite-blocklength limit) and capacity, over SNR x CBR on 28x28 images.

    .venv/bin/python scripts/link_table.py --channel awgn
    nice -n 10 env OMP_NUM_THREADS=1 .venv/bin/python scripts/link_table.py --channel awgn \
        --verify 20000 --out results/link_table_awgn.json

Per point: the payload bits the link carries after every CRC bit (``DigitalLink.capacity_bits``;
"outage" when no scheme meets BLER 1e-3), the normal approximation at BLER 1e-3, capacity
(ergodic on fading), and the link's share of the normal approximation. ``--verify N`` sends N
codewords of the chosen scheme through the whole link (CRC, LDPC, QAM, channel, demapper, BP,
CRC check) and reports the block error rate and the undetected errors (every CRC passed, bits
wrong); results are written to ``--out`` after every point, with provenance, and a rerun
resumes. The markdown table goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from tosc.cli.script import exits_on_error

SNRS_DB = (0.0, 5.0, 10.0, 15.0, 20.0)
CBRS = ("1/16", "1/8", "1/4", "1/2")
IMAGE_SHAPE = (1, 28, 28)
NA_FLOOR_BITS = 150  # the per-point target applies where the normal approximation allows this many


@exits_on_error
def main(argv: list[str] | None = None) -> int:
    from tosc.channel import DigitalLink, FiniteLengthLink, IdealLink, channel_uses
    from tosc.channel.digital import measure_operating_point
    from tosc.errors import DoesNotFitError
    from tosc.io import atomic_write_json
    from tosc.provenance import git_commit, package_versions

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--channel", default="awgn", help="awgn, rayleigh-fast or rayleigh-block")
    parser.add_argument("--verify", type=int, default=0, help="codewords to simulate per point (0: none)")
    parser.add_argument("--out", default=None, help="JSON with every number, provenance; resumes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--snr-db", type=float, nargs="+", default=list(SNRS_DB))
    parser.add_argument("--cbr", nargs="+", default=list(CBRS))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    link = DigitalLink(channel=args.channel)
    fbl, ideal = FiniteLengthLink(args.channel), IdealLink(args.channel)
    from tosc.channel import bler

    model = bler.load_model(link.chan.model_kind)
    model_info = {"file": Path(model.source).name, "git_commit": model.provenance.get("git_commit"),
                  "threshold": model.params.get("threshold"), "num_iter": model.params.get("num_iter", 20)}
    previous = {}
    if args.out and Path(args.out).exists():
        previous = {(p["snr_db"], p["cbr"]): p for p in json.loads(Path(args.out).read_text())["points"]}
    points = []
    for snr in args.snr_db:
        for cbr in args.cbr:
            k = channel_uses(cbr, IMAGE_SHAPE)
            try:
                scheme = link.choose(snr, k)
                bits = scheme.plan.capacity_bits if scheme.meets_target else 0
            except DoesNotFitError:
                scheme, bits = None, 0
            na = fbl.capacity_bits(snr, k)
            point = {"snr_db": snr, "cbr": cbr, "k": k, "link_bits": bits, "na_bits": na,
                     "capacity_bits": ideal.capacity_bits(snr, k),
                     "share": bits / na if na else None,
                     "scheme": scheme.plan.describe() if scheme is not None and bits else "outage",
                     "crc_bits": scheme.plan.crc_bits if scheme is not None and bits else 0}
            old = previous.get((snr, cbr))
            done = (old or {}).get("verify") or {}
            if old and old.get("scheme") == point["scheme"] and done and done.get("codewords", 0) >= args.verify:
                point["verify"] = done
            elif args.verify and bits:
                started = time.time()
                point["verify"] = measure_operating_point(link, snr, k, args.verify, seed=args.seed,
                                                         progress=True)
                point["verify"]["elapsed_s"] = round(time.time() - started, 1)
            points.append(point)
            if args.out:
                atomic_write_json(args.out, {"table": "link_table", "channel": args.channel,
                                             "image_shape": IMAGE_SHAPE, "target_bler": link.target_bler,
                                             "link": repr(link), "bler_model": model_info,
                                             "seed": args.seed, "points": points + [
                                                 p for key, p in previous.items()
                                                 if key not in {(q["snr_db"], q["cbr"]) for q in points}],
                                             "versions": package_versions(), "git_commit": git_commit(),
                                             "argv": sys.argv[1:]})
    print(render(points, args.channel))
    print(crc_report(args.channel))
    return 0


def crc_report(channel: str) -> str:
    """The measurement behind the CRC lengths: per reference length of the BLER model, how often
    the LDPC parity checks alone passed a wrong word (points below BLER 1e-2, rows decoded with
    the link's BP iterations; BP + OSD rows apart: OSD always returns a codeword), and the
    undetected-error rate per block that leaves with no CRC, CRC-6 and CRC-11 at half the target
    BLER (what a refined threshold passed) and at the target."""
    from tosc.channel import FadingChannel, bler
    from tosc.channel.ldpc import NUM_ITER, OSD_ORDER

    model = bler.load_model(FadingChannel(channel).model_kind)
    iters = NUM_ITER if model.undetected_fraction(num_iter=NUM_ITER)[1] else model.params.get("num_iter", 20)
    lines = ["", f"| k ({model.channel} model, {iters} iterations) | undetected / failed blocks | "
             "no CRC | CRC-6 | CRC-11 | CRC-6 at the target |", "| --- | --- | --- | --- | --- | --- |"]
    for order in (0, OSD_ORDER):
        for ref in sorted({r for m in model.modulation_bits() for r in model.reference_uses(m, order)}):
            und, fail = model.undetected_fraction(ref, num_iter=iters, osd_order=order)
            if not fail:
                continue
            frac = (und + 1) / fail  # +1: a cautious estimate where none was seen
            rates = [0.5 * model.target_bler * frac * 2.0 ** -length for length in (0, 6, 11)]
            lines.append(f"| {ref}{f' (BP + OSD-{order})' if order else ''} | {und} / {fail} | "
                         + " | ".join(f"{r:.1e}" for r in rates) + f" | {model.target_bler * frac / 64:.1e} |")
    polar = [(ref, *model.undetected_fraction(ref, code="polar"))
             for ref in sorted({r for m in model.modulation_bits() for r in model.reference_uses(m, code="polar")})]
    if any(fail for _, _, fail in polar):
        # the polar code's CRC is part of the code (it also picks the SCL path), so its rows
        # already count the words a wrong path with a passing CRC got through
        lines += ["", f"| k (CA-polar, {bler.POLAR_CRC[0]}, list {bler.POLAR_LIST_SIZE}) | undetected / failed blocks | "
                  "per block at half the target | at the target |", "| --- | --- | --- | --- |"]
        for ref, und, fail in polar:
            if fail:
                frac = (und + 1) / fail
                lines.append(f"| {ref} | {und} / {fail} | {0.5 * model.target_bler * frac:.1e} | "
                             f"{model.target_bler * frac:.1e} |")
    return "\n".join(lines)


def render(points: list[dict], channel: str) -> str:
    """Markdown: one row per SNR, one column per CBR, 'link / NA (capacity), share' per cell."""
    cbrs = list(dict.fromkeys(p["cbr"] for p in points))
    by = {(p["snr_db"], p["cbr"]): p for p in points}
    head = "| SNR | " + " | ".join(f"CBR {c} (k={by[(points[0]['snr_db'], c)]['k']})" for c in cbrs) + " |"
    lines = [head, "| --- |" + " --- |" * len(cbrs)]
    for snr in dict.fromkeys(p["snr_db"] for p in points):
        cells = []
        for c in cbrs:
            p = by[(snr, c)]
            link = f"{p['link_bits']}" if p["link_bits"] else "outage"
            share = f", {100 * p['share']:.0f}%" if p["share"] is not None else ""
            check = ""
            if p.get("verify"):
                v = p["verify"]
                check = f"; BLER {v['failed_images']}/{v['images']}"
            cells.append(f"{link} / {p['na_bits']} ({p['capacity_bits']}){share}{check}")
        lines.append(f"| {snr:g} dB | " + " | ".join(cells) + " |")
    shares = [p["share"] for p in points if p["share"] is not None]
    big = [p["share"] for p in points if p["na_bits"] >= NA_FLOOR_BITS and p["share"] is not None]
    lines.append("")
    lines.append(f"{channel}: link bits / normal approximation (capacity), share of the normal approximation. "
                 f"Mean share {100 * np.mean(shares):.1f}% over the {len(shares)} points with a positive normal "
                 f"approximation; lowest where it allows >= {NA_FLOOR_BITS} bits: "
                 + (f"{100 * min(big):.1f}%." if big else "none."))
    codewords = sum(p.get("verify", {}).get("codewords", 0) for p in points if p.get("verify"))
    if codewords:
        und = sum(p["verify"]["undetected"] for p in points if p.get("verify"))
        worst = max(p["verify"]["bler"] for p in points if p.get("verify"))
        lines.append(f"Verified: {codewords} codewords in all, highest BLER {worst:.2e}, {und} undetected errors.")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
