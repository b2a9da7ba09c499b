#!/usr/bin/env python
"""Fit the extra training-only classifiers (registry role "training-extra",
``tosc.tasks.ensemble``) that an ensemble semantic term may average over, on clean
Fashion-MNIST training images with shifts and flips.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/train_training_classifiers.py [--epochs 10] [--seed 7]
        [--only NAME ...] [--zoo DIR]

Writes <zoo>/tasks/<name>.pt (seeded) and prints each model's validation and clean test
accuracy. These are never the held-out judges (a different seed, architecture or fit).
"""

from __future__ import annotations

import argparse
import sys

from tosc.cli.script import exits_on_error


@exits_on_error
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=7, help="not 0, the held-out networks' seed")
    parser.add_argument("--only", nargs="*", help="fit only these task names")
    parser.add_argument("--zoo", default=None, help="folder to write tasks/<name>.pt into (default: the model zoo)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from tosc import registry
    from tosc.tasks import train_classifiers
    from tosc.tasks.ensemble import EXTRA_TRAINING_ROLE

    names = registry.select("task", role=EXTRA_TRAINING_ROLE)
    fitted = train_classifiers(names, args.only, what="an extra training classifier", zoo=args.zoo,
                               epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed, progress=False)
    for name, metrics in fitted:
        print(f"{name}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
