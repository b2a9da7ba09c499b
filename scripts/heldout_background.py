#!/usr/bin/env python
"""What the held-out logistic regression on pixels reads, and how much background noise codecs leave.

    .venv/bin/python scripts/heldout_background.py [--codecs mse-only-v3 tosc-sr-v3] [--qualities 4 12 24 40]
        [--limit 1000]

``classifier-pixel-linear`` is fitted on standardised pixels, then the standardisation is folded
into its weights, so a pixel that is almost always 0 gets a weight divided by a tiny standard
deviation. This prints the share of the summed weight magnitude that lies on pixels which are 0
in more than 99% of the test images, and, per codec and quality index on the first ``--limit``
test images: bpp, the mean absolute error on the clean background (pixels that are 0) and
elsewhere, in grey levels, the share of background pixels decoded above 0, and the accuracy of
``classifier-pixel-linear`` on the decoded images.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from tosc.cli.script import exits_on_error


@exits_on_error
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--codecs", nargs="+", default=["mse-only-v3", "tosc-sr-v3"],
                        help="codec v3 zoo names or checkpoint paths")
    parser.add_argument("--qualities", nargs="+", type=int, default=[4, 12, 24, 40])
    parser.add_argument("--limit", type=int, default=1000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from tosc.data import load_dataset
    from tosc.source_coding.learned.conv_codec import ConvLearnedCodec, stream_bits
    from tosc.tasks import accuracy, load_task_network

    test = load_dataset("fashion-mnist", "test", limit=args.limit)
    judge = load_task_network("classifier-pixel-linear")
    x, labels = test.images, test.labels
    n, _, h, w = x.shape
    weight_mass = judge.linear.weight.detach().abs().sum(0)  # [C*H*W]: summed over classes
    always_zero = ((x == 0).float().mean(0).flatten() > 0.99)
    print(f"classifier-pixel-linear: {100 * (weight_mass[always_zero].sum() / weight_mass.sum()).item():.1f}% "
          f"of |W| on the {int(always_zero.sum())} pixels that are 0 in > 99% of {n} test images; "
          f"largest pixel {(weight_mass.max() / weight_mass.median()).item():.0f}x the median")
    background = x == 0
    for name in args.codecs:
        codec = ConvLearnedCodec.load(name)
        for q in args.qualities:
            streams = codec.encode(x, q)
            decoded = codec.decode(streams, (h, w))
            bpp = float(np.mean([stream_bits(s) for s in streams])) / (h * w)
            err = 255 * (decoded - x).abs()
            print(f"{name} q{q}: {bpp:.3f} bpp, background error {err[background].mean():.2f} grey levels "
                  f"({100 * (decoded[background] > 0).float().mean():.0f}% of background pixels above 0), "
                  f"elsewhere {err[~background].mean():.2f}; pixel-linear accuracy "
                  f"{100 * accuracy(judge, decoded, labels):.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
