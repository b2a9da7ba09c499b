#!/usr/bin/env python
"""One-stage vs two-stage training of the TOSC-SR codec, at equal epochs and data.

    .venv/bin/python benchmarks/schedule_bench.py [--lambda-p 6] [--lambda-s 0.1] [--epochs 4] [--images 20000]

one-stage: L = bpp + lambda_p MSE + lambda_s CE from random weights for E epochs.
two-stage: MSE-only (lambda_s = 0) for E - 2 epochs, then the full loss for 2 epochs at a
lower learning rate (what scripts/train_family.py does). Both see the same images in the
same order. Prints validation bpp (real bytes), PSNR and accuracy of each, and the
differences two-stage minus one-stage.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lambda-p", type=float, default=6.0)
    parser.add_argument("--lambda-s", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--images", type=int, default=20000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from tosc.source_coding.learned.train import TrainConfig, train_codec

    common = dict(train_images=args.images, eval_images=2000, lambda_p=args.lambda_p)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        one = train_codec(TrainConfig(epochs=args.epochs, lambda_s=args.lambda_s, **common), tmp / "one.pt",
                          progress=False)
        train_codec(TrainConfig(epochs=args.epochs - 2, lambda_s=0.0, **common), tmp / "warm.pt", progress=False)
        two = train_codec(TrainConfig(epochs=2, lambda_s=args.lambda_s, lr=3e-4, init_from=str(tmp / "warm.pt"),
                                      **common), tmp / "two.pt", progress=False)
    print(f"{'schedule':<10}{'bpp':>8}{'psnr_db':>9}{'accuracy':>10}")
    for name, m in (("one-stage", one), ("two-stage", two)):
        print(f"{name:<10}{m['bpp']:>8.4f}{m['psnr_db']:>9.2f}{m['accuracy']:>10.4f}")
    print(f"two minus one: bpp {two['bpp'] - one['bpp']:+.4f}, psnr {two['psnr_db'] - one['psnr_db']:+.2f} dB, "
          f"accuracy {100 * (two['accuracy'] - one['accuracy']):+.2f} points")


if __name__ == "__main__":
    main()
