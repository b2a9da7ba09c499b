#!/usr/bin/env python
"""Train the analog models on 64x64 grey scenes (``fashion-scenes``): Deep JSCC and analog TOSC-SR.

The plan of scripts/train_jscc.py, on scenes:

1. ``deep-jscc-scenes-base``: bandwidth-agile Deep JSCC (k up to CBR 1/2 of 1x64x64, k_max = 2048,
   random k and SNR in 0..20 dB per batch), MSE only, ``--epochs`` epochs over the 20,000 training
   scenes, warm-started from ``--init-from`` (default: the shipped 28x28 ``deep-jscc``; the
   layers are convolutional and both sizes have 16 latent channels, so every weight fits and
   the first k symbols at a CBR are the same latent channels; ``none`` starts from scratch).
2. From that base, with the same lr and ``--finetune-epochs`` epochs each: ``deep-jscc-scenes``
   (lambda_s = 0) and ``tosc-sr-analog-scenes`` (lambda_s = ``--lambda-s``, the summed binary
   cross-entropy of the frozen multi-label ``scene-classifier-cnn`` to the scene's set of classes).
   The two shipped models differ only in the loss of their last stage: a paired comparison.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python scripts/train_jscc_scenes.py [--only NAME ...] \\
        [--work runs/jscc-scenes] [--no-ship]
    torchrun --nproc_per_node N scripts/train_jscc_scenes.py ...   # data-parallel, the same global batches

Writes src/tosc/zoo/jscc/{deep-jscc-scenes,tosc-sr-analog-scenes}.pt (without optimizer state)
unless ``--no-ship``; keeps the resumable checkpoints in ``--work``. Deterministic (seed 0) and
resumable: a rerun continues unfinished checkpoints from their last epoch and skips finished ones.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

DATASET = "fashion-scenes"
# docs/jscc.md ("Scenes"): 4 epochs fit the wall time of a loaded 2-core machine (~260 s an epoch at 1 niced
# thread); the warm start gave +5.8 dB after 1 epoch against random weights
EPOCHS = 4
FINETUNE_EPOCHS = 1
FINETUNE_LR = 3e-4
LAMBDA_S = 0.002  # scripts/jscc_scenes_lambda.py: 0.13 dB for +2.6 F1 points (0.005: 0.33 dB for +3.3)
INIT_FROM = "src/tosc/zoo/jscc/deep-jscc.pt"
EVAL_IMAGES = 500  # validation scenes scored after every epoch (docs/jscc.md: scripts/jscc_scenes_eval.py)


def plan(epochs: int, finetune_epochs: int, lambda_s: float, task: str) -> list[tuple[str, dict, str | None]]:
    common = {"dataset": DATASET, "task": task, "eval_images": EVAL_IMAGES}
    return [
        ("deep-jscc-scenes-base", {**common, "epochs": epochs}, None),
        ("deep-jscc-scenes", {**common, "epochs": finetune_epochs, "lr": FINETUNE_LR}, "deep-jscc-scenes-base"),
        ("tosc-sr-analog-scenes", {**common, "epochs": finetune_epochs, "lr": FINETUNE_LR, "lambda_s": lambda_s},
         "deep-jscc-scenes-base"),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--finetune-epochs", type=int, default=FINETUNE_EPOCHS)
    parser.add_argument("--lambda-s", type=float, default=LAMBDA_S)
    parser.add_argument("--init-from", default=INIT_FROM, help="warm start of the base (a JSCC .pt, or 'none')")
    parser.add_argument("--only", nargs="*", help="train only these names (see plan())")
    parser.add_argument("--work", type=Path, default=Path("runs/jscc-scenes"), help="folder for resumable checkpoints")
    parser.add_argument("--no-ship", action="store_true", help="leave src/tosc/zoo/jscc alone (measurements)")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--device", default="cpu", help="cpu (default), auto (CUDA if present), cuda or cuda:N")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from tosc.distributed import distributed_session
    from tosc.jscc.train import JSCCTrainConfig, train_jscc
    from tosc.tasks.scenes import scene_training_task
    from tosc.jscc.zoo import ship_jscc

    task = scene_training_task(1)  # the grey scenes' network
    with distributed_session(args.device) as ctx:
        for name, settings, base in plan(args.epochs, args.finetune_epochs, args.lambda_s, task):
            if args.only and name not in args.only:
                continue
            work = args.work / f"{name}.pt"
            init = str(args.work / f"{base}.pt") if base is not None else args.init_from
            if init and init != "none":
                settings = {**settings, "init_from": init}
            started = time.time()
            metrics = train_jscc(JSCCTrainConfig(**settings), work, resume=True,
                                 progress=ctx.is_main and not args.no_progress, context=ctx)
            if not ctx.is_main:
                continue
            scores = ", ".join(f"{key} {metrics.get(key, float('nan')):.4f}"
                               for key in ("exact_set_accuracy", "mean_f1"))
            print(f"{name}: psnr_db {metrics.get('psnr_db', float('nan')):.3f}, {scores} "
                  f"({time.time() - started:.0f} s, {ctx.world_size} process(es))", flush=True)
            if base is not None and not args.no_ship:
                ship_jscc(work, name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
