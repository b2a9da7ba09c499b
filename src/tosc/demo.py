"""``make demo``: the main job a newcomer runs.

It runs each stage of the chain on Fashion-MNIST with the shipped models, then evaluates
the main systems over AWGN at a few operating points with ``tosc evaluate`` (both cores),
prints the headline table, the Bjøntegaard deltas and the targets, and says where the
report is (``runs/demo/eval/report.html``; the folder is $TOSC_DEMO_OUT or ``--out``).
Every step is a ``tosc`` command you can rerun by hand.

The demo's points span both ends of the grid: SNR 0, 10 and 20 dB x CBR 1/16 and 1/2, so its
tables show the lowest corner (0 dB, CBR 1/16: a few dozen bits per image) and the high-rate
one (20 dB, CBR 1/2: about 2,000 bits, where the classic codecs are at their best). Then one
scenes point: 100 ``fashion-scenes`` test scenes (64 x 64, 1-4 items) at 10 dB, CBR 1/8, through
the systems made for scenes (:func:`scene_systems`), scored by detection mAP, the scene
classifiers and the scene segmenter (``runs/demo/eval-scenes``).

``python -m tosc.demo --full`` (``make demo-full``) runs the whole grid instead: SNR 0, 5,
10, 15, 20 dB x CBR 1/16, 1/8, 1/4, 1/2 over AWGN, block and fast Rayleigh fading, on
``--limit`` test images (default 1000), with every registered system family that is
installed: each classic codec in payload mode and every learned family over the LDPC link,
the analog systems, and the proposed codec over the ideal and finite-blocklength links.
It resumes where it stopped when rerun and splits with ``--shard I/N`` (then ``--merge``).
Classic codecs are rate-matched from the on-disk rate table (``~/.cache/tosc``), so a second
run encodes nothing.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from .cli import main as cli_main

DEMO_SYSTEMS = ("tosc-sr+ldpc", "mse-only+ldpc", "task-only+ldpc", "jpeg2000-payload+ldpc", "webp-payload+ldpc",
                "vvc-payload+ldpc", "tosc-sr+ideal", "deep-jscc", "tosc-sr-analog")
DEMO_SNRS_DB = ("0", "10", "20")
DEMO_CBRS = ("1/16", "1/2")
DEMO_IMAGES = 300
SCENES_DATASET = "fashion-scenes"  # one scenes point: multi-object 64 x 64 scenes, scored by the scene tasks
SCENES_SNR_DB = "10"
SCENES_CBR = "1/8"
SCENES_IMAGES = 100
FULL_SNRS_DB = ("0", "5", "10", "15", "20")
FULL_CBRS = ("1/16", "1/8", "1/4", "1/2")
FULL_CHANNELS = ("awgn", "rayleigh-block", "rayleigh-fast")
FULL_IMAGES = 1000


def full_systems(dataset: str = "fashion-mnist") -> tuple[str, ...]:
    """Every registered system family of the full grid, from the registry's metadata (see
    :func:`tosc.evaluation.compat.default_systems`): each classic codec in payload mode and each
    learned family over the LDPC link, the analog systems, and the proposed digital codecs over
    the ideal and finite-blocklength links, trained on the data set's kind of images. Systems
    whose models are not installed (or that cannot code the images) are left out, with a line on
    standard error."""
    from .evaluation.compat import default_systems

    return default_systems(dataset)


def scene_systems() -> tuple[str, ...]:
    """The systems of the demo's scenes point: the default selection for scenes, with the classic
    codecs cut to those of the Fashion-MNIST demo (whole file and payload) to keep it short."""
    from . import registry

    demo_codecs = {registry.meta_of("system", n).get("source") for n in DEMO_SYSTEMS
                   if registry.meta_of("system", n).get("family") == "classic"}
    return tuple(n for n in full_systems(SCENES_DATASET) if registry.meta_of("system", n).get("family") != "classic"
                 or registry.meta_of("system", n).get("source") in demo_codecs)


def _step(title: str, argv: list[str]) -> None:
    print(f"\n== {title}\n$ tosc {' '.join(argv)}", flush=True)
    status = cli_main(argv)
    if status != 0:
        sys.exit(status)


def _repeat(option: str, values) -> list[str]:
    return [a for v in values for a in (option, str(v))]


def evaluate_argv(out: Path, *, full: bool, limit: int, systems: tuple[str, ...] = DEMO_SYSTEMS,
                  shard: str | None = None) -> list[str]:
    """The ``tosc evaluate`` command line of the demo (or of the full grid)."""
    snrs, cbrs, channels = (FULL_SNRS_DB, FULL_CBRS, FULL_CHANNELS) if full else (DEMO_SNRS_DB, DEMO_CBRS, ("awgn",))
    return ["evaluate", *_repeat("--systems", systems), *_repeat("--snr-db", snrs), *_repeat("--cbr", cbrs),
            *_repeat("--channel", channels), "--limit", str(limit), "--jobs", "2", "--out", str(out),
            *(["--shard", shard] if shard else [])]


def _fmt(value, spec: str) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def headline_table(records) -> str:
    """Markdown table: one row per system and operating point (the README's headline table)."""
    from fractions import Fraction

    from .evaluation.bd import record_mode

    lines = ["| system | channel | SNR dB | CBR | bpp | fail | PSNR dB | MS-SSIM | acc cnn | acc mlp | acc resnet "
             "| seg IoU |", "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for r in sorted(records, key=lambda r: (r.channel.kind, r.rate.cbr, r.channel.snr_db, r.system)):
        m = r.metrics
        bpp = "NA" if record_mode(r) == "analog" else f"{r.rate.bpp:.3f}"
        lines.append(f"| {r.system} | {r.channel.kind} | {r.channel.snr_db:g} | "
                     f"{Fraction(r.rate.cbr).limit_denominator(4096)} | {bpp} | {_fmt(m.get('failure_rate'), '.2f')} | "
                     f"{_fmt(m.get('psnr_db'), '.2f')} | {_fmt(m.get('ms_ssim'), '.3f')} | "
                     f"{_fmt(m.get('accuracy'), '.3f')} | {_fmt(m.get('accuracy_classifier-mlp'), '.3f')} | "
                     f"{_fmt(m.get('accuracy_classifier-resnet'), '.3f')} | {_fmt(m.get('seg_iou'), '.3f')} |")
    return "\n".join(lines)


def scene_table(records) -> str:
    """Markdown table of scene records: rate, failures, PSNR, MS-SSIM and every scene task metric
    present (detection mAP, scene classifiers' exact-set accuracy and F1, segmentation IoU)."""
    from fractions import Fraction

    from .evaluation.bd import record_mode
    from .evaluation.report import SCENE_METRICS

    keys = [(k, label) for k, label in SCENE_METRICS if any(r.metrics.get(k) is not None for r in records)]
    short = {"det_map_50": "det mAP@.5", "det_map": "det mAP@[.5:.95]", "scene_seg_iou": "seg IoU"}
    names = [short.get(k, k.replace("scene_", "").replace("scene-classifier-", "")) for k, _ in keys]
    lines = ["| system | SNR dB | CBR | bpp | fail | PSNR dB | MS-SSIM | " + " | ".join(names) + " |",
             "|---|--:|--:|--:|--:|--:|--:|" + "--:|" * len(keys)]
    for r in sorted(records, key=lambda r: (r.channel.kind, r.rate.cbr, r.channel.snr_db, r.system)):
        m = r.metrics
        bpp = "NA" if record_mode(r) == "analog" else f"{r.rate.bpp:.3f}"
        lines.append(f"| {r.system} | {r.channel.snr_db:g} | {Fraction(r.rate.cbr).limit_denominator(4096)} | {bpp} | "
                     f"{_fmt(m.get('failure_rate'), '.2f')} | {_fmt(m.get('psnr_db'), '.2f')} | "
                     f"{_fmt(m.get('ms_ssim'), '.3f')} | " + " | ".join(_fmt(m.get(k), ".3f") for k, _ in keys) + " |")
    return "\n".join(lines)


def bd_markdown(records, test: str = "tosc-sr+ldpc") -> str:
    """Markdown table: BD-rate and BD-PSNR of ``test`` against each baseline on the LDPC link."""
    from .evaluation.bd import bd_table

    lines = ["| anchor | channel | BD-rate % | BD-PSNR dB | rate overlap | PSNR overlap | rate points (test/anchor) |",
             "|---|---|--:|--:|--:|--:|--:|"]
    for bd in bd_table(records, test):
        lines.append(f"| {bd.anchor} | {bd.channel} | {_fmt(bd.bd_rate_pct, '+.1f')} | {_fmt(bd.bd_quality, '+.2f')} | "
                     f"{_fmt(bd.rate_overlap, '.0%')} | {_fmt(bd.quality_overlap, '.0%')} | {bd.n_test}/{bd.n_anchor} |")
    return "\n".join(lines)


def run(out: Path, *, full: bool = False, limit: int | None = None, shard: str | None = None) -> Path:
    from .results import read_results

    limit = limit or (FULL_IMAGES if full else DEMO_IMAGES)
    _step("data: Fashion-MNIST from Debian's dataset-fashion-mnist", ["data", "info", "fashion-mnist"])
    _step("theory: semantic rate-distortion of a doubly symmetric binary source",
          ["theory", "--source", "dsbs", "--out", str(out / "theory")])
    _step("channel: the modulation and coding table (simulated once, shipped)", ["channel", "mcs", "--channel", "awgn"])
    _step("codec: the trained models", ["models"])
    from .data import load_dataset
    from .io import save_image_arrays

    sample = load_dataset("fashion-mnist", "test", limit=16)
    save_image_arrays(out / "sample.npz", sample.images.numpy(), sample.labels.numpy(), sample.indices.numpy())
    _step("codec: 16 test images to a .tosc file and back",
          ["encode", str(out / "sample.npz"), "--model", "tosc-sr-v3", "--quality", "40", "-o", str(out / "sample.tosc")])
    _step("codec: decode (the model is found by the id in the file)",
          ["decode", str(out / "sample.tosc"), "-o", str(out / "sample_decoded.npz")])
    folder = out / ("eval-full" if full else "eval")
    what = "the whole grid" if full else f"{len(DEMO_SNRS_DB) * len(DEMO_CBRS)} operating points over AWGN"
    systems = full_systems() if full else DEMO_SYSTEMS
    _step(f"evaluate: {len(systems)} systems at {what}, {limit} test images, same noise for every system",
          evaluate_argv(folder, full=full, limit=limit, systems=systems, shard=shard))
    records = read_results(folder / "results.jsonl")
    print(f"\n== headline table ({limit} Fashion-MNIST test images; bpp from actual bytes; fail: failed images)")
    print(headline_table(records))
    print("\n== Bjøntegaard deltas of tosc-sr+ldpc (PSNR over actual bpp, PCHIP)")
    print(bd_markdown(records))
    from .evaluation.targets import check_targets, format_checks

    print(f"\n== targets (also: .venv/bin/python scripts/check_targets.py {folder / 'results.jsonl'})")
    print(format_checks(check_targets(records)))
    if not full:
        run_scenes(out / "eval-scenes")
    report = (folder / "report.html").resolve()
    print(f"\nDemo outputs are in {out}/\nReport: {report}  (open it in a browser; plots in {folder / 'plots'}/)",
          flush=True)
    return report


def run_scenes(folder: Path, *, limit: int = SCENES_IMAGES) -> None:
    """The demo's scenes point: the scene systems at one (SNR, CBR) over AWGN on ``limit`` test scenes,
    and its table (the report is ``folder/report.html``)."""
    from .results import read_results

    systems = scene_systems()
    _step(f"evaluate: {len(systems)} systems on {limit} {SCENES_DATASET} test scenes at {SCENES_SNR_DB} dB, "
          f"CBR {SCENES_CBR}, scored by the scene tasks",
          ["evaluate", "--dataset", SCENES_DATASET, *_repeat("--systems", systems), "--snr-db", SCENES_SNR_DB,
           "--cbr", SCENES_CBR, "--limit", str(limit), "--jobs", "2", "--out", str(folder)])
    records = read_results(folder / "results.jsonl")
    networks = sorted({n for r in records for n in (r.config.get("task_networks") or {}).values()})
    print(f"\n== scenes table ({limit} {SCENES_DATASET} test scenes; task networks: {', '.join(networks) or 'none'}; "
          f"report: {folder / 'report.html'})")
    print(scene_table(records))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tosc.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="run the whole grid (see above)")
    parser.add_argument("--limit", type=int, default=None,
                        help=f"test images per point (default {DEMO_IMAGES}, or {FULL_IMAGES} with --full)")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("TOSC_DEMO_OUT", "runs/demo")))
    parser.add_argument("--shard", default=None, help="with --full: run the I-th of N slices of the grid (I/N)")
    args = parser.parse_args(argv)
    run(args.out, full=args.full, limit=args.limit, shard=args.shard)
    return 0


if __name__ == "__main__":
    sys.exit(main())
