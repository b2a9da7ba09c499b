#!/usr/bin/env python
"""Regenerate the README's evaluation results from an evaluation folder.

    .venv/bin/python scripts/readme_eval.py runs/full/eval-full      # rewrites README.md and docs/eval_results.md
    .venv/bin/python scripts/readme_eval.py runs/demo/eval --print   # only prints the README block

Everything between ``<!-- readme_eval:begin -->`` and ``<!-- readme_eval:end -->`` in README.md
is replaced by what this writes from FOLDER/results.jsonl: where the proposed systems win and
where TOSC-SR loses (and to what), a who-wins map per metric (a row per channel and SNR, a
column per CBR), the PSNR of every system at every point per channel, the Bjøntegaard table of
tosc-sr+ldpc and the targets; the plots (one panel figure per metric against SNR and against
CBR, every system and channel) are copied from FOLDER/plots/ to docs/img/eval_*.png. Every
other number of the run (bpp, failures, MS-SSIM, each classifier, IoU) goes to the detail page
(``--detail``, default docs/eval_results.md), which the block links to.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections import defaultdict
from fractions import Fraction
from pathlib import Path

from tosc.evaluation.report import format_value

BEGIN, END = "<!-- readme_eval:begin -->", "<!-- readme_eval:end -->"
MAP_METRICS = (("psnr_db", "PSNR dB", ".1f"), ("accuracy", "accuracy (training-time classifier)", ".3f"),
               ("accuracy_classifier-resnet", "held-out ResNet accuracy", ".3f"),
               ("accuracy_classifier-mlp", "held-out MLP accuracy", ".3f"), ("seg_iou", "segmentation IoU", ".3f"))
DETAIL_METRICS = (("bpp", "bpp (actual payload)", ".3f"), ("failure_rate", "failure rate", ".3f"),
                  ("psnr_db", "PSNR dB", ".2f"),
                  ("psnr_db_of_mean_mse", "PSNR of the mean MSE, dB (worst images weigh most; a lossless image "
                   "does not count 100 dB)", ".2f"), ("ms_ssim", "MS-SSIM", ".4f"),
                  ("accuracy", "accuracy (training-time classifier)", ".3f"),
                  ("accuracy_classifier-resnet", "held-out ResNet accuracy", ".3f"),
                  ("accuracy_classifier-mlp", "held-out MLP accuracy", ".3f"),
                  ("accuracy_classifier-hog-linear", "held-out HOG + linear accuracy", ".3f"),
                  ("accuracy_classifier-pixel-linear", "held-out pixel linear accuracy", ".3f"),
                  ("seg_iou", "segmentation IoU (held out)", ".3f"))  # + every scene task's metrics (registry)
PANEL_METRICS = (("psnr_db", "PSNR"), ("accuracy", "accuracy (training-time classifier)"),
                 ("accuracy_classifier-mlp", "held-out MLP accuracy"),
                 ("accuracy_classifier-resnet", "held-out ResNet accuracy"), ("seg_iou", "segmentation IoU"))


def _cbr(value: float) -> str:
    return str(Fraction(value).limit_denominator(4096))


def _value(record, metric: str):
    """A record's number for ``metric``; "bpp" is the actual payload rate (None for analog systems)."""
    if metric == "bpp":
        from tosc.evaluation.bd import record_mode

        return None if record_mode(record) == "analog" else record.rate.bpp
    return record.metrics.get(metric)


def pivot_tables(records, metric: str, label: str, spec: str) -> list[str]:
    """Per channel: a row per system, a column per (SNR, CBR) point; the best value of a quality
    metric at each point in bold (not for bpp and failure rate, where more is not better)."""
    lines = []
    bold_best = metric not in ("bpp", "failure_rate")
    for channel in sorted({r.channel.kind for r in records}):
        mine = [r for r in records if r.channel.kind == channel and _value(r, metric) is not None]
        points = sorted({(r.rate.cbr, r.channel.snr_db) for r in mine})
        if not points:
            continue
        value = {(r.system, r.rate.cbr, r.channel.snr_db): _value(r, metric) for r in mine}
        best: dict[tuple, float] = {}
        for (_, cbr, snr), v in value.items():
            best[(cbr, snr)] = max(best.get((cbr, snr), v), v)
        lines += [f"**{label}, {channel}** (columns: SNR, CBR" + ("; bold: the best at that point, bounds included)"
                                                                 if bold_best else ")"), "",
                  "| system | " + " | ".join(f"{snr:g} dB, {_cbr(cbr)}" for cbr, snr in points) + " |",
                  "|---|" + "--:|" * len(points)]
        for system in sorted({r.system for r in mine}):
            cells = []
            for cbr, snr in points:
                v = value.get((system, cbr, snr))
                text = format_value(v, spec)
                cells.append(f"**{text}**" if bold_best and v is not None and v == best[(cbr, snr)] else text)
            lines.append(f"| {system} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def win_map_tables(records, metric: str, label: str, spec: str) -> list[str]:
    """Markdown: who wins each point on ``metric``, one row per (channel, SNR) and a column per CBR;
    a cell names the winner (best proposed system vs best baseline on a real link, bounds left
    out), its value and the margin; bold where a proposed system leads."""
    from tosc.evaluation.report import short_name
    from tosc.evaluation.summary import win_counts, win_map

    cells = win_map(records, metric)
    if not cells:
        return []
    won, compared = win_counts(records, metric)
    cbrs = sorted({c.cbr for c in cells})
    at = {(c.channel, c.snr_db, c.cbr): c for c in cells}
    lines = [f"**{label}: a proposed system leads at {won} of {compared} points** (bold; cell: the winner, "
             "its value and its margin over the best of the other side)", "",
             "| channel | SNR dB | " + " | ".join(f"CBR {_cbr(b)}" for b in cbrs) + " |",
             "|---|--:|" + "---|" * len(cbrs)]
    for channel in sorted({c.channel for c in cells}):
        for snr in sorted({c.snr_db for c in cells if c.channel == channel}):
            row = []
            for cbr in cbrs:
                c = at.get((channel, snr, cbr))
                if c is None:
                    row.append("")
                    continue
                value = c.proposed_value if c.winner == c.proposed else c.baseline_value
                text = f"{short_name(c.winner)} {format_value(value, spec)} ({format_value(c.margin, '+' + spec)})"
                row.append(f"**{text}**" if c.winner == c.proposed else text)
            lines.append(f"| {channel} | {snr:g} | " + " | ".join(row) + " |")
    return lines + [""]


def where_tosc_loses(records) -> list[str]:
    from tosc.evaluation.summary import losses, win_counts

    lines = []
    for metric, label in PANEL_METRICS:
        won, compared = win_counts(records, metric)
        if not compared:
            continue
        lost = losses(records, metric)
        by_winner = defaultdict(list)
        for cell in lost:
            by_winner[cell.baseline].append(cell)
        detail = "; ".join(
            f"{winner} at {len(cells)} ({', '.join(f'{c.channel} {c.snr_db:g} dB {_cbr(c.cbr)} {c.margin:+.2f}' for c in cells[:6])}"
            f"{', ...' if len(cells) > 6 else ''})" for winner, cells in sorted(by_winner.items(), key=lambda kv: -len(kv[1])))
        lines.append(f"- **{label}**: a proposed system leads at {won} of {compared} points"
                     + (f"; it loses to {detail}." if lost else "."))
    return lines


def _run_line(folder: Path, records) -> str:
    first = records[0]
    channels = sorted({r.channel.kind for r in records})
    points = {(r.channel.kind, r.channel.snr_db, r.rate.cbr) for r in records}
    return (f"Results of `{folder}`: {len({r.system for r in records})} systems at {len(points)} operating points "
            f"({len(records)} results) over {', '.join(channels)}, {first.n_images} {first.dataset} {first.split} "
            f"images per point, seed {first.seed}, git commit {first.git_commit[:12]}.")


def detail_page(folder: Path, records, command: str | None = None) -> str:
    """The Markdown of the page with every number of the run: per metric and channel a row per
    system and a column per (SNR, CBR) point. ``command``: how to regenerate it (default: the
    README rewrite, which writes this page too)."""
    command = command or (f"`.venv/bin/python scripts/readme_eval.py {folder}` (which also rewrites the README's "
                          "evaluation block)")
    lines = [f"# Every result of `{folder}`", "", _run_line(folder, records) + f" Regenerated with {command}. "
             "bpp is actual payload bits per pixel (NA for analog systems, which send no bits); fail is the "
             "share of images that did not arrive intact; the ideal and finite-blocklength (`+fbl`) links are "
             "bounds, not systems.", ""]
    from tosc.evaluation.report import SCENE_METRICS

    for metric, label, spec in (*DETAIL_METRICS, *((k, name, ".3f") for k, name in SCENE_METRICS)):
        lines += pivot_tables(records, metric, label, spec)
    return "\n".join(lines)


def section(folder: Path, records, img: Path, *, copy_plots: bool = True, detail: Path | None = None) -> str:
    """The Markdown of the results block; ``copy_plots``: also copy the figures it links to into ``img``
    (``--print`` leaves the committed figures alone); ``detail``: the page with every number, linked."""
    from tosc.demo import bd_markdown
    from tosc.evaluation.targets import check_targets, format_checks

    lines = [_run_line(folder, records) + f" Regenerate with `.venv/bin/python scripts/readme_eval.py {folder}`"
             + (f"; every number of the run, per metric, channel and point: [{detail.as_posix()}]({detail.as_posix()})."
                if detail else "."), "",
             "**Who wins where.** At each point the best proposed system on a real link (TOSC-SR over LDPC, analog "
             "TOSC-SR) against the best baseline on a real link (bounds left out; margins in metric units):", "",
             *where_tosc_loses(records), ""]
    for metric, label, spec in MAP_METRICS:
        lines += win_map_tables(records, metric, label, spec)
    lines += ["Headline table: PSNR of every system at every point, per channel.", ""]
    lines += pivot_tables(records, "psnr_db", "PSNR dB", ".2f")
    for metric, label in PANEL_METRICS:
        for axis in ("snr", "cbr"):
            name = f"panel_{metric}_vs_{axis}.png"
            if (folder / "plots" / name).exists():
                if copy_plots:
                    shutil.copyfile(folder / "plots" / name, img / f"eval_{name}")
                lines.append(f"![{label} vs {axis.upper()}]({img.as_posix()}/eval_{name})")
    if (folder / "plots" / "examples.png").exists():
        if copy_plots:
            shutil.copyfile(folder / "plots" / "examples.png", img / "eval_examples.png")
        lines += ["", f"![example reconstructions]({img.as_posix()}/eval_examples.png)"]
    lines += ["", "Bjøntegaard deltas of tosc-sr+ldpc (test) against each baseline on the LDPC link (anchor); "
              "negative BD-rate favours TOSC-SR:", "", bd_markdown(records), "", "Targets:", "", "```",
              format_checks(check_targets(records)), "```"]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--img", type=Path, default=Path("docs/img"))
    parser.add_argument("--readme", type=Path, default=Path("README.md"))
    parser.add_argument("--detail", type=Path, default=Path("docs/eval_results.md"),
                        help="the page with every number of the run (default docs/eval_results.md)")
    parser.add_argument("--detail-only", action="store_true",
                        help="write only the detail page (e.g. a scenes grid: --detail docs/scenes/grid.md)")
    parser.add_argument("--print", action="store_true",
                        help="print the README block instead of rewriting the README and the detail page")
    args = parser.parse_args()

    from tosc.io import atomic_write_text
    from tosc.results import read_results

    records = read_results(args.folder / "results.jsonl")
    if not records:
        print(f"error: no results in {args.folder}", file=sys.stderr)
        return 2
    def write_detail(command: str | None = None) -> None:
        args.detail.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.detail, detail_page(args.folder, records, command) + "\n")

    if args.detail_only:
        write_detail(f"`.venv/bin/python scripts/readme_eval.py {args.folder} --detail-only --detail {args.detail}`")
        print(f"wrote {args.detail} from {args.folder}")
        return 0
    if not args.print:
        args.img.mkdir(parents=True, exist_ok=True)
    text = section(args.folder, records, args.img, copy_plots=not args.print, detail=args.detail)
    if args.print:
        print(text)
        return 0
    readme = args.readme.read_text()
    if BEGIN not in readme or END not in readme:
        print(f"error: {args.readme} has no {BEGIN} ... {END} block", file=sys.stderr)
        return 2
    head, rest = readme.split(BEGIN, 1)
    atomic_write_text(args.readme, head + BEGIN + "\n" + text + "\n" + END + rest.split(END, 1)[1])
    write_detail()
    print(f"rewrote the evaluation block of {args.readme} and {args.detail} from {args.folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
