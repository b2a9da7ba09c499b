#!/usr/bin/env python
"""Copy the headline plots of an evaluation folder to docs/img/ and print the README's tables.

    .venv/bin/python scripts/readme_eval.py runs/demo/eval

Prints the headline table (every system and point), the Bjøntegaard table of tosc-sr+ldpc
and the targets, as Markdown, from FOLDER/results.jsonl; copies FOLDER/plots/<name>.png to
docs/img/eval_<name>.png for the plots named below.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

PLOTS = ("psnr_db_vs_snr_awgn_cbr0.125", "accuracy_vs_snr_awgn_cbr0.125", "psnr_db_vs_cbr_awgn_snr15",
         "accuracy_vs_cbr_awgn_snr15", "psnr_db_vs_bpp_awgn", "seg_iou_vs_snr_awgn_cbr0.125",
         "accuracy_classifier-resnet_vs_snr_awgn_cbr0.125", "examples")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--img", type=Path, default=Path("docs/img"))
    args = parser.parse_args()

    from tosc.demo import bd_markdown, headline_table
    from tosc.evaluation.targets import check_targets, format_checks
    from tosc.results import read_results

    records = read_results(args.folder / "results.jsonl")
    args.img.mkdir(parents=True, exist_ok=True)
    for name in PLOTS:
        src = args.folder / "plots" / f"{name}.png"
        if src.exists():
            shutil.copyfile(src, args.img / f"eval_{name}.png")
        else:
            print(f"(no {src})", file=sys.stderr)
    print(headline_table(records), "", bd_markdown(records), "", "```", format_checks(check_targets(records)), "```",
          sep="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
