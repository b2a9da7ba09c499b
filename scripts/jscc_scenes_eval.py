#!/usr/bin/env python
"""The scene table of docs/jscc.md: analog systems trained on scenes, on validation scenes.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python scripts/jscc_scenes_eval.py --limit 1000 \\
        [--systems deep-jscc-scenes tosc-sr-analog-scenes] [--cbr 1/16 1/8 1/4] [--snr-db 0 10 20]

For every (CBR, SNR) on AWGN and every system: mean PSNR (dB, with its standard error over the
scenes) and :func:`tosc.tasks.scene_scores.score_scenes` of what arrived (detection mAP@0.5 of
the held-out detector, exact-set accuracy and mean F1 of the scene classifiers, IoU of the scene
segmenter), plus one row for the clean scenes. Validation scenes by default: the test scenes are
the evaluation's. Channel noise seed 0 for every system, so the columns are paired.
Prints a markdown table; ``--json`` also writes the rows. With two or more systems it also
prints each one's scores minus the first one's, paired per scene, with standard errors: PSNR
and the training scene classifier's exact-set accuracy (mean ± s.e. of the per-scene
differences) and mean F1 (bootstrap over the scenes, ``BOOTSTRAP`` resamples, seed 0).
``--paired-only`` skips the table's task scores (the detector dominates the time).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from fractions import Fraction
from pathlib import Path



def columns() -> list[tuple[str, str]]:
    """(score key of score_scenes, title): detection, the training scene classifier's exact-set
    accuracy and F1, each held-out scene classifier's F1, segmentation IoU (names from the registry)."""
    from tosc import registry
    from tosc.tasks.scenes import scene_training_task

    trained = scene_training_task(1)  # the grey scenes' network
    held_out = registry.select("task", images="scenes", output="present", role="held-out", channels=1)
    return ([("det_map_50", "mAP@.5"), (f"scene_exact_{trained}", f"exact {trained}"),
             (f"scene_f1_{trained}", f"F1 {trained}")]
            + [(f"scene_f1_{name}", f"F1 {name} (held out)") for name in held_out] + [("scene_seg_iou", "IoU")])


BOOTSTRAP = 1000


def _mean_se(diff) -> str:
    return f"{diff.mean().item():+.3f} ± {(diff.std() / math.sqrt(len(diff))).item():.3f}"


def _macro_f1(predicted, present, weights):
    """Mean per-class F1 (a class with no true and no predicted member counts 1, as
    tosc.tasks.scenes.multilabel_scores) of bool N x K sets, scenes counted ``weights`` [B, N] times."""
    import torch

    p, t = predicted.double(), present.double()
    tp, fp, fn = weights @ (p * t), weights @ (p * (1 - t)), weights @ ((1 - p) * t)
    denom = 2 * tp + fp + fn
    return torch.where(denom > 0, 2 * tp / denom.clamp_min(1), torch.ones_like(denom)).mean(1)


def _paired(psnr, predicted, psnr_0, predicted_0, present) -> str:
    """Paired differences to the first system: PSNR (dB) and exact-set accuracy (per-scene
    mean ± s.e.), mean F1 (full-sample difference ± bootstrap s.e.)."""
    import torch

    exact = (predicted == present).all(1).double() - (predicted_0 == present).all(1).double()
    n = len(present)
    gen = torch.Generator().manual_seed(0)
    weights = torch.stack([torch.bincount(torch.randint(n, (n,), generator=gen), minlength=n)
                           for _ in range(BOOTSTRAP)]).double()
    ones = torch.ones(1, n, dtype=torch.float64)
    f1 = (_macro_f1(predicted, present, ones) - _macro_f1(predicted_0, present, ones)).item()
    f1_se = (_macro_f1(predicted, present, weights) - _macro_f1(predicted_0, present, weights)).std().item()
    return (f"PSNR {_mean_se(psnr - psnr_0)} dB, exact set {_mean_se(exact)}, "
            f"mean F1 {f1:+.3f} ± {f1_se:.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--systems", nargs="+")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--cbr", nargs="+", default=["1/16", "1/8", "1/4"])
    parser.add_argument("--snr-db", nargs="+", type=float, default=[0.0, 10.0, 20.0])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--paired-only", action="store_true", help="skip the table's task scores")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from tosc import registry
    from tosc.data import load_dataset
    from tosc.metrics import psnr_db
    from tosc.systems import build_system
    from tosc.tasks.scene_scores import load_scene_tasks, score_scenes
    from tosc.tasks.scenes import predict_present, scene_training_task

    systems = args.systems or [n for n in registry.select("system", family="jscc")
                               if registry.get("system", n).meta["trained_on"] == "scenes"]
    scenes = load_dataset("fashion-scenes", args.split, limit=args.limit)
    tasks = None if args.paired_only else load_scene_tasks()
    trained = scene_training_task(1)  # the grey scenes' network
    classifier = registry.get("task", trained).factory()

    def scores(images):
        return {} if tasks is None else score_scenes(images, scenes, tasks)

    started = time.time()
    rows = [{"system": "clean scenes", "cbr": "", "snr_db": "", "psnr_db": math.inf, "psnr_se": 0.0,
             **scores(scenes.images)}]
    paired = []
    n_pixels = scenes.images[0].numel()
    for cbr in args.cbr:
        k = max(1, math.floor(Fraction(cbr) * n_pixels))
        for snr in args.snr_db:
            first = None
            for name in systems:
                received = build_system(name).transmit(scenes.images, snr_db=snr, n_channel_uses=k, seed=0).received
                psnr = psnr_db(received, scenes.images)
                rows.append({"system": name, "cbr": cbr, "snr_db": snr, "psnr_db": psnr.mean().item(),
                             "psnr_se": (psnr.std() / math.sqrt(len(psnr))).item(), **scores(received)})
                predicted = predict_present(classifier, received)
                if first is None:
                    first = (psnr, predicted)
                else:
                    paired.append(f"{name} - {systems[0]} at CBR {cbr}, {snr:g} dB: "
                                  + _paired(psnr, predicted, *first, scenes.present))
    elapsed = time.time() - started
    print(f"{len(scenes)} {args.split} scenes, AWGN, {elapsed:.0f} s")
    cols = columns()
    print("| system | CBR | SNR dB | PSNR dB | " + " | ".join(title for _, title in cols) + " |")
    print("|---|---|---|---|" + "---|" * len(cols))
    for r in rows:
        psnr = "" if math.isinf(r["psnr_db"]) else f"{r['psnr_db']:.2f} ± {r['psnr_se']:.2f}"
        snr = "" if r["snr_db"] == "" else f"{r['snr_db']:g}"
        print(f"| {r['system']} | {r['cbr']} | {snr} | {psnr} | "
              + " | ".join(f"{r[key]:.3f}" if key in r else "" for key, _ in cols) + " |")
    for line in paired:
        print(line)
    if args.json:
        args.json.write_text(json.dumps({"split": args.split, "scenes": len(scenes), "seconds": elapsed,
                                         "rows": [{**r, "psnr_db": None if math.isinf(r["psnr_db"]) else r["psnr_db"]}
                                                  for r in rows]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
