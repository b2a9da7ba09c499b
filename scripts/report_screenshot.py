#!/usr/bin/env python
"""Open an evaluation report in headless Chromium and save a screenshot of its top.

    .venv/bin/python scripts/report_screenshot.py runs/full/eval-full/report.html
    .venv/bin/python scripts/report_screenshot.py REPORT --out docs/img/eval_report_summary.png --size 1400x1800

Checks the report in a real browser (Debian's ``chromium`` package: ``apt-get install chromium``),
not only that the HTML was written: the page must render and its first screen (the summary
maps) is what the README shows. Prints one ``error:`` line and exits 2 when Chromium is not
installed or writes no image.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report", type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs/img/eval_report_summary.png"))
    parser.add_argument("--size", default="1400x1800", help="window WIDTHxHEIGHT in pixels (default 1400x1800)")
    args = parser.parse_args()

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print("error: no chromium on PATH (apt-get install chromium)", file=sys.stderr)
        return 2
    if not args.report.is_file():
        print(f"error: no report at {args.report}", file=sys.stderr)
        return 2
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        print(f"error: --size must be WIDTHxHEIGHT, got {args.size!r}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="tosc-shot-") as tmp:
        shot = Path(tmp) / "shot.png"
        # a throw-away profile: the user's Chromium profile is neither read nor locked
        command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                   f"--user-data-dir={tmp}/profile", f"--window-size={width},{height}", f"--screenshot={shot}",
                   args.report.resolve().as_uri()]
        done = subprocess.run(command, capture_output=True, text=True, errors="replace", timeout=120)
        if done.returncode != 0 or not shot.is_file() or shot.stat().st_size == 0:
            tail = " | ".join((done.stdout + done.stderr).strip().splitlines()[-2:])
            print(f"error: chromium wrote no screenshot ({done.returncode}): {tail}", file=sys.stderr)
            return 2
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp_out = args.out.with_suffix(args.out.suffix + ".tmp")
        shutil.copyfile(shot, tmp_out)
        tmp_out.replace(args.out)  # atomic: a reader never sees half a PNG
    print(f"wrote {args.out} ({width} x {height}) from {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
