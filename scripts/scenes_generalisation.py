#!/usr/bin/env python
"""The classification-to-detection generalisation test on scenes: codecs trained on
fashion-scenes, TOSC-SR (semantic term through the multi-label scene classifier) against
MSE-only at equal rate, judged by networks the codecs never saw.

    .venv/bin/python scripts/scenes_generalisation.py --limit 2000 --out docs/scenes

For each codec and quality index: real streams of the first ``--limit`` test scenes, their
bits per pixel, mean per-image PSNR, and on the decoded scenes the held-out detector's
mAP@0.5 and mAP@[.5:.95], the held-out HOG scene classifier's exact-set accuracy and mean F1,
the training network's (scene-classifier-cnn) and the scene segmenter's IoU. Standard errors
come from ``--folds`` disjoint folds of the scenes (mAP is a set metric, so no per-image
variance exists): each fold's curve is interpolated in log-rate at MSE-only's rate and the
paired differences' spread over folds gives the standard error of each difference.

Writes ``OUT/scenes_generalisation.json`` (config, seed, versions, git commit, every number)
and ``OUT/table.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

import tosc  # noqa: F401
from tosc import registry
from tosc.cli.script import exits_on_error

QUALITIES = (0, 8, 16, 24, 32, 48, 64, 96, 127)
METRICS = ("psnr_db", "det_map_50", "det_map", "exact_hog", "f1_hog", "exact_cnn", "f1_cnn", "seg_iou")


def fold_scores(decoded: torch.Tensor, scenes, tasks, folds: int) -> list[dict[str, float]]:
    """The metrics of each of ``folds`` disjoint contiguous folds of the scenes."""
    from tosc.metrics import psnr_db
    from tosc.tasks.detection import detect, detection_map
    from tosc.tasks.scenes import multilabel_scores, predict_present

    n = len(decoded)
    psnr = psnr_db(decoded, scenes.images[:n])
    boxes = detect(tasks.detector, decoded) if tasks.detector is not None else None  # colour scenes: none
    targets = scenes.detection_targets()[:n]
    present = {name: predict_present(model, decoded) for name, model in tasks.classifiers.items()}
    seg_pred, mean_iou = None, None
    if tasks.segmenter is not None:
        from tosc.tasks.segmentation import mean_iou, predict_masks

        seg_pred = predict_masks(tasks.segmenter, decoded)
    (held_out,) = [n_ for n_ in tasks.classifiers if registry.meta_of("task", n_).get("role") == "held-out"]
    (training,) = [n_ for n_ in tasks.classifiers if n_ != held_out]
    out = []
    for rows in np.array_split(np.arange(n), folds):
        sl = slice(int(rows[0]), int(rows[-1]) + 1)
        det = detection_map(boxes[sl], targets[sl]) if boxes is not None else {"map_50": float("nan"),
                                                                                 "map": float("nan")}
        ho = multilabel_scores(present[held_out][sl], scenes.present[sl])
        tr = multilabel_scores(present[training][sl], scenes.present[sl])
        row = {"psnr_db": psnr[sl].mean().item(), "det_map_50": det["map_50"], "det_map": det["map"],
               "exact_hog": ho["exact_set_accuracy"], "f1_hog": ho["mean_f1"],
               "exact_cnn": tr["exact_set_accuracy"], "f1_cnn": tr["mean_f1"], "seg_iou": float("nan")}
        if seg_pred is not None:
            truth = scenes.masks[sl].bool()
            row["seg_iou"] = mean_iou(seg_pred[sl].reshape(truth.shape), truth)
        out.append(row)
    return out


def interpolate(bpp_curve: np.ndarray, values: np.ndarray, at: float) -> float:
    """values at rate ``at``, linear in log-rate (tosc.evaluation.bd.value_at_rate); NaN outside."""
    from tosc.evaluation.bd import value_at_rate

    value = value_at_rate(bpp_curve, values, at)
    return float("nan") if value is None else value


@exits_on_error
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--codecs", nargs="+", default=["mse-only-v3-scenes", "tosc-sr-v3-scenes",
                                                        "task-only-v3-scenes", "mse-only-v3"])
    parser.add_argument("--pair", nargs=2, default=["mse-only-v3-scenes", "tosc-sr-v3-scenes"], metavar=("MSE", "TOSC"))
    parser.add_argument("--qualities", type=int, nargs="+", default=list(QUALITIES))
    parser.add_argument("--limit", type=int, default=2000)
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", default="test", choices=["test", "validation"],
                        help="validation: for choosing settings (e.g. lambda_s) without touching the test scenes")
    parser.add_argument("--dataset", default="fashion-scenes", choices=["fashion-scenes", "fashion-scenes-rgb"],
                        help="grey scenes, or colour ones (judged by the colour-scene networks; no detector)")
    parser.add_argument("--out", default="docs/scenes")
    args = parser.parse_args()
    from tosc.data import load_dataset
    from tosc.provenance import git_commit, package_versions
    from tosc.source_coding.learned.conv_codec import ConvLearnedCodec, stream_bits
    from tosc.tasks.scene_scores import load_scene_tasks

    scenes = load_dataset(args.dataset, args.split, seed=args.seed, limit=args.limit)
    tasks = load_scene_tasks(channels=scenes.images.shape[1])
    codecs = {name: ConvLearnedCodec.load(name) for name in args.codecs}  # zoo names or .pt paths
    x = scenes.images
    h, w = x.shape[-2:]
    started = time.time()
    results: dict = {"clean": fold_scores(x, scenes, tasks, args.folds), "codecs": {}}
    with tqdm(total=len(codecs) * len(args.qualities), desc="scenes") as bar:
        for name, codec in codecs.items():
            rows = []
            for q in args.qualities:
                streams = codec.encode(x, q)
                decoded = codec.decode(streams, (h, w))
                bits = np.array([stream_bits(s) for s in streams], dtype=np.float64)
                folds = fold_scores(decoded, scenes, tasks, args.folds)
                rows.append({"quality": q, "bpp": float(bits.mean() / (h * w)),
                             "fold_bpp": [float(b.mean() / (h * w)) for b in np.array_split(bits, args.folds)],
                             "folds": folds,
                             **{m: float(np.mean([f[m] for f in folds])) for m in METRICS}})
                bar.update(1)
            results["codecs"][name] = rows
    results["seconds"] = time.time() - started
    mse, tosc_name = args.pair
    table = paired_table(results, mse, tosc_name, args.folds) if mse in codecs and tosc_name in codecs else []
    results["paired"] = table
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record = {"config": vars(args), "n_scenes": len(x), "versions": package_versions(),
              "git_commit": git_commit(), **results}
    tmp = out / "scenes_generalisation.json.tmp"
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(out / "scenes_generalisation.json")
    text = markdown(results, table, args, len(x))
    (out / "table.md").write_text(text)
    print(text)
    return 0


def paired_table(results: dict, mse: str, tosc_name: str, folds: int) -> list[dict]:
    """At each of MSE-only's rates: TOSC-SR's metrics interpolated in log-rate, the difference,
    and its standard error over the folds (each fold's TOSC-SR curve interpolated at the rate)."""
    a, b = results["codecs"][mse], results["codecs"][tosc_name]
    b_bpp = np.array([r["bpp"] for r in b])
    rows = []
    for ra in a:
        row = {"bpp": ra["bpp"], "quality": ra["quality"]}
        for m in METRICS:
            tv = interpolate(b_bpp, np.array([r[m] for r in b]), ra["bpp"])
            diffs = [interpolate(np.array([r["fold_bpp"][f] for r in b]), np.array([r["folds"][f][m] for r in b]),
                                 ra["fold_bpp"][f]) - ra["folds"][f][m] for f in range(folds)]
            diffs = np.array(diffs)
            ok = diffs[np.isfinite(diffs)]
            row[m] = {"mse": ra[m], "tosc": tv, "diff": tv - ra[m],
                      "se": float(ok.std(ddof=1) / np.sqrt(len(ok))) if len(ok) > 1 else float("nan")}
        rows.append(row)
    return rows


def markdown(results: dict, table: list[dict], args, n: int) -> str:
    clean = {m: np.mean([f[m] for f in results["clean"]]) for m in METRICS}
    kind = "grey" if args.dataset == "fashion-scenes" else "colour"
    lines = [f"First {n} {args.dataset} {args.split} scenes (64 x 64 {kind}); rate = mean stream bits per pixel; "
             f"standard errors over {args.folds} disjoint folds. Clean scenes: PSNR inf, detection mAP@0.5 "
             f"{clean['det_map_50']:.3f}, mAP {clean['det_map']:.3f}, HOG exact-set {clean['exact_hog']:.3f}, "
             f"CNN exact-set {clean['exact_cnn']:.3f}, segmentation IoU {clean['seg_iou']:.3f}.", "",
             "| codec | q | bpp | PSNR dB | det mAP@0.5 | det mAP | HOG exact | HOG F1 | CNN exact | CNN F1 | seg IoU |",
             "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for name, rows in results["codecs"].items():
        for r in rows:
            lines.append(f"| {name} | {r['quality']} | {r['bpp']:.3f} | {r['psnr_db']:.2f} | {r['det_map_50']:.3f} | "
                         f"{r['det_map']:.3f} | {r['exact_hog']:.3f} | {r['f1_hog']:.3f} | {r['exact_cnn']:.3f} | "
                         f"{r['f1_cnn']:.3f} | {r['seg_iou']:.3f} |")
    if table:
        mse, tosc_name = args.pair
        lines += ["", f"{tosc_name} against {mse} at {mse}'s rates ({tosc_name} interpolated in log-rate; "
                  "difference +- one standard error):", "",
                  "| bpp | PSNR dB | det mAP@0.5 | det mAP | HOG exact | seg IoU | CNN exact (training net) |",
                  "|--:|--:|--:|--:|--:|--:|--:|"]
        for r in table:
            cells = []
            for m, scale in (("psnr_db", 1), ("det_map_50", 100), ("det_map", 100), ("exact_hog", 100),
                             ("seg_iou", 100), ("exact_cnn", 100)):
                c = r[m]
                cells.append(f"{c['mse'] * scale:.2f} -> {c['tosc'] * scale:.2f} ({c['diff'] * scale:+.2f} +- "
                             f"{c['se'] * scale:.2f})")
            lines.append(f"| {r['bpp']:.3f} | " + " | ".join(cells) + " |")
        lines += ["", "Detection, classifier and IoU columns in points (x 100)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
