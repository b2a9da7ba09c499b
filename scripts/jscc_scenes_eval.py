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
prints each one's PSNR minus the first one's, paired per scene (mean ± standard error);
``--psnr-only`` skips the task networks (seconds instead of minutes).
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

    (trained,) = registry.select("task", role="scene-training")
    held_out = registry.select("task", images="scenes", output="present", role="held-out")
    return ([("det_map_50", "mAP@.5"), (f"scene_exact_{trained}", f"exact {trained}"),
             (f"scene_f1_{trained}", f"F1 {trained}")]
            + [(f"scene_f1_{name}", f"F1 {name} (held out)") for name in held_out] + [("scene_seg_iou", "IoU")])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--systems", nargs="+")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--cbr", nargs="+", default=["1/16", "1/8", "1/4"])
    parser.add_argument("--snr-db", nargs="+", type=float, default=[0.0, 10.0, 20.0])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--psnr-only", action="store_true", help="no task scores, only PSNR")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from tosc import registry
    from tosc.data import load_dataset
    from tosc.metrics import psnr_db
    from tosc.systems import build_system
    from tosc.tasks.scene_scores import load_scene_tasks, score_scenes

    systems = args.systems or [n for n in registry.select("system", family="jscc")
                               if registry.get("system", n).meta["trained_on"] == "scenes"]
    scenes = load_dataset("fashion-scenes", args.split, limit=args.limit)
    tasks = None if args.psnr_only else load_scene_tasks()

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
                if first is None:
                    first = psnr
                else:
                    diff = psnr - first
                    paired.append(f"{name} - {systems[0]} at CBR {cbr}, {snr:g} dB: PSNR "
                                  f"{diff.mean().item():+.3f} ± {(diff.std() / math.sqrt(len(diff))).item():.3f} dB")
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
