#!/usr/bin/env python
"""HOG features of Fashion-MNIST test images: ``tosc.tasks.classical.HOG`` (batched torch)
against ``skimage.feature.hog`` (one call per image) with the same settings, in the same process.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/hog_bench.py [--images 10000]

Prints the seconds of each, the ratio skimage / torch and the largest feature difference. The
held-out HOG classifier runs at every operating point of an evaluation, hence the torch version.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=10000)
    args = parser.parse_args()

    import torch
    from skimage.feature import hog

    from tosc.data import load_dataset
    from tosc.tasks.classical import HOG

    images = load_dataset("fashion-mnist", "test", limit=args.images).images
    extractor = HOG()
    with torch.no_grad():
        extractor(images[:10])  # warm-up
        t0 = time.perf_counter()
        ours = torch.cat([extractor(images[i:i + 1000]) for i in range(0, len(images), 1000)]).numpy()
        torch_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    theirs = np.stack([hog(im, orientations=extractor.orientations, pixels_per_cell=(extractor.cell,) * 2,
                           cells_per_block=(extractor.block,) * 2, block_norm="L2-Hys")
                       for im in images[:, 0].numpy()])
    skimage_s = time.perf_counter() - t0

    n = len(images)
    print(f"{n} images, {ours.shape[1]} features each")
    print(f"torch HOG   {torch_s:7.3f} s  ({n / torch_s:9.0f} images/s)")
    print(f"skimage HOG {skimage_s:7.3f} s  ({n / skimage_s:9.0f} images/s)")
    print(f"ratio skimage / torch: {skimage_s / torch_s:.1f}x; max |difference| {np.abs(ours - theirs).max():.2e}")


if __name__ == "__main__":
    main()
