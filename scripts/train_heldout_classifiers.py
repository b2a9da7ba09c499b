#!/usr/bin/env python
"""Fit the shipped held-out classifiers that are not convolutional networks (the registered
tasks fitted by ``tosc.tasks.fit_linear_head``: HOG + linear softmax, logistic regression on
pixels) on clean Fashion-MNIST training images.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/train_heldout_classifiers.py [--epochs 20] [--only NAME ...]
        [--zoo DIR]

Writes <zoo>/tasks/<name>.pt (seeded: the same arguments give the same weights on the same
machine) and prints each model's validation and clean test accuracy (all 10,000 test images).
About a minute per model on one CPU thread.
"""

from __future__ import annotations

import argparse
import sys

from tosc.cli.script import exits_on_error


@exits_on_error
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*", help="fit only these task names")
    parser.add_argument("--zoo", default=None, help="folder to write tasks/<name>.pt into (default: the model zoo)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from tosc import registry
    from tosc.tasks import fit_linear_head, held_out_tasks, train_classifiers

    names = [n for n in held_out_tasks() if registry.get("task", n).meta.get("fit") is fit_linear_head]
    fitted = train_classifiers(names, args.only, what="a linear held-out classifier", zoo=args.zoo,
                               epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    for name, metrics in fitted:
        print(f"{name}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
