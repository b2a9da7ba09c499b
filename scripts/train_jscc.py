#!/usr/bin/env python
"""Train the shipped analog models on Fashion-MNIST: Deep JSCC and analog TOSC-SR.

Two stages, like the digital family (scripts/train_family.py):

1. ``deep-jscc-base``: bandwidth-agile Deep JSCC (k up to CBR 1/2, random k and SNR in
   0..20 dB per batch, no SNR attention: it did not help), MSE only, ``--epochs`` epochs.
2. From that base, with the same schedule and lr, ``--finetune-epochs`` more epochs each:
   ``deep-jscc`` (lambda_s = 0) and ``tosc-sr-analog`` (lambda_s = LAMBDA_S, the semantic
   term through the frozen classifier-cnn). The two shipped models thus differ only in the
   loss of their last stage: a paired comparison at equal training.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/train_jscc.py [--only NAME ...] [--work runs/jscc]
    torchrun --nproc_per_node N scripts/train_jscc.py ...   # data-parallel, the same global batches

Writes src/tosc/zoo/jscc/{deep-jscc,tosc-sr-analog}.pt (without optimizer state) and keeps
the base and resumable checkpoints in ``--work``. Deterministic (seed 0) and resumable:
rerunning continues unfinished checkpoints from their last epoch and skips finished ones.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

# chosen by `benchmarks/jscc_bench.py lambda-s --images 9000` (docs/jscc.md)
LAMBDA_S = 0.005
EPOCHS = 10
FINETUNE_EPOCHS = 1
FINETUNE_LR = 3e-4
# SNR attention cost 0.17 dB at the full schedule: `benchmarks/jscc_bench.py attention`
SNR_ATTENTION = False


def plan(epochs: int, finetune_epochs: int, lambda_s: float) -> list[tuple[str, dict, str | None]]:
    return [
        ("deep-jscc-base", {"epochs": epochs, "snr_adaptive": SNR_ATTENTION}, None),
        ("deep-jscc", {"epochs": finetune_epochs, "lr": FINETUNE_LR, "snr_adaptive": SNR_ATTENTION}, "deep-jscc-base"),
        ("tosc-sr-analog", {"epochs": finetune_epochs, "lr": FINETUNE_LR, "lambda_s": lambda_s,
                            "snr_adaptive": SNR_ATTENTION}, "deep-jscc-base"),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--finetune-epochs", type=int, default=FINETUNE_EPOCHS)
    parser.add_argument("--lambda-s", type=float, default=LAMBDA_S)
    parser.add_argument("--only", nargs="*", help="train only these names (deep-jscc-base, deep-jscc, tosc-sr-analog)")
    parser.add_argument("--work", type=Path, default=Path("runs/jscc"), help="folder for resumable checkpoints")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--device", default="cpu", help="cpu (default), auto (CUDA if present), cuda or cuda:N")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from tosc.distributed import distributed_session
    from tosc.jscc.train import JSCCTrainConfig, train_jscc
    from tosc.jscc.zoo import ship_jscc

    with distributed_session(args.device) as ctx:
        for name, settings, base in plan(args.epochs, args.finetune_epochs, args.lambda_s):
            if args.only and name not in args.only:
                continue
            work = args.work / f"{name}.pt"
            if base is not None:
                settings = {**settings, "init_from": str(args.work / f"{base}.pt")}
            started = time.time()
            metrics = train_jscc(JSCCTrainConfig(**settings), work, resume=True,
                                 progress=ctx.is_main and not args.no_progress, context=ctx)
            if not ctx.is_main:
                continue
            print(f"{name}: psnr_db {metrics.get('psnr_db', float('nan')):.3f}, accuracy "
                  f"{metrics.get('accuracy', float('nan')):.4f} ({time.time() - started:.0f} s, "
                  f"{ctx.world_size} process(es))", flush=True)
            if base is not None:  # the shipped models: weights, config, metrics and history, no optimizer state
                ship_jscc(work, name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
