#!/usr/bin/env python
"""Make the README table of classic codecs: smallest sizes and reachable (SNR, CBR) points.

    .venv/bin/python scripts/classic_table.py --limit 100 > table.md

Same as ``tosc codecs --table``; the numbers come from real encodes of the first N images.
Needs VVenC built (``bash scripts/build_vvenc.sh``) unless ``--codec`` leaves VVC out.
"""

from __future__ import annotations

import argparse
import sys

from tosc.data import load_dataset
from tosc.cli.script import exits_on_error
from tosc.io import atomic_write_text
from tosc.source_coding import classic
from tosc.source_coding.classic.survey import render_markdown, survey_codec


@exits_on_error
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--split", default="test")
    parser.add_argument("--root", default=None)
    parser.add_argument("--limit", type=int, default=100, help="first N images of the split (default 100)")
    parser.add_argument("--codec", action="append", help="codec name (repeatable); default: all")
    parser.add_argument("--out", default=None, help="write the markdown here instead of stdout")
    args = parser.parse_args(argv)
    images = load_dataset(args.dataset, split=args.split, root=args.root, limit=args.limit).images
    names = args.codec or classic.codec_names()
    surveys = [survey_codec(classic.get_codec(name), images) for name in names]
    text = render_markdown(surveys, dataset=args.dataset)
    command = ["python scripts/classic_table.py", f"--limit {args.limit}"]
    if (args.dataset, args.split) != ("fashion-mnist", "test"):
        command.append(f"--dataset {args.dataset} --split {args.split}")
    command += [f"--codec {name}" for name in args.codec or []]
    text += f"\nMade by `{' '.join(command)}`.\n"
    if args.out:
        atomic_write_text(args.out, text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
