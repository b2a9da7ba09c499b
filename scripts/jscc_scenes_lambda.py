#!/usr/bin/env python
"""lambda_s for analog TOSC-SR on scenes: the small measurement behind LAMBDA_S of
scripts/train_jscc_scenes.py (docs/jscc.md, "Scenes").

1-epoch fine-tunes (lr 3e-4) on the first 5000 training scenes, all from the 1-epoch
warm-started base ``runs/jscc-scenes/ws-warm/deep-jscc-scenes-base.pt``, made by::

    scripts/train_jscc_scenes.py --only deep-jscc-scenes-base --epochs 1 --work runs/jscc-scenes/ws-warm --no-ship

with lambda_s in {0, 0.005, 0.002, 0.02} (finished runs are skipped on a rerun); scores on 500
validation scenes over evaluate_jscc's grid (CBR 1/16..1/2 x 0, 10, 20 dB), means and CBR 1/16.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python scripts/jscc_scenes_lambda.py
"""

from __future__ import annotations

import sys
import time

BASE = "runs/jscc-scenes/ws-warm/deep-jscc-scenes-base.pt"
LAMBDAS = (0.0, 0.005, 0.002, 0.02)


def main() -> int:
    import torch

    torch.set_num_threads(1)
    from tosc.jscc.train import JSCCTrainConfig, train_jscc
    from tosc.tasks.scenes import scene_training_task

    task = scene_training_task(1)  # the grey scenes' network
    for lam in LAMBDAS:
        started = time.time()
        cfg = JSCCTrainConfig(dataset="fashion-scenes", task=task, eval_images=500, train_images=5000, epochs=1,
                              lr=3e-4, lambda_s=lam, init_from=BASE)
        m = train_jscc(cfg, f"runs/jscc-scenes/lambda/ls{lam:g}.pt", resume=True, progress=False)
        points = [k.split("/", 1)[1] for k in m if k.startswith("psnr_db/cbr1_16")]
        low = ", ".join(f"{p}: psnr {m['psnr_db/' + p]:.2f} exact {m['exact_set_accuracy/' + p]:.3f} "
                        f"f1 {m['mean_f1/' + p]:.3f}" for p in points)
        print(f"lambda_s {lam:g}: psnr {m['psnr_db']:.3f} exact {m['exact_set_accuracy']:.4f} f1 {m['mean_f1']:.4f} "
              f"| CBR 1/16: {low} ({time.time() - started:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
