#!/usr/bin/env python
"""Encode+decode throughput of the learned codec (real arithmetic-coded bytes) against
Pillow's JPEG on the same Fashion-MNIST test images, in the same process.

    .venv/bin/python benchmarks/codec_bench.py [--model NAME] [--images 2000]

Prints images/s of each and the ratio learned / JPEG, plus the bytes per image.
Also compares the stream sizes of our arithmetic coder and CompressAI's rANS coder
on the same symbols and tables.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from pillow_jpeg import time_pillow_jpeg


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=None, help="codec name (default: the first in tosc models)")
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--quality", type=int, default=50)
    args = parser.parse_args()

    import tosc  # noqa: F401  (quiets CompressAI's import-time deprecation notices)
    from compressai.ans import RansEncoder

    from tosc.data import load_dataset
    from tosc.source_coding.learned import LearnedCodec, list_codecs

    name = args.model or list_codecs()[0].name
    codec = LearnedCodec.load(name)
    images = load_dataset("fashion-mnist", "test", limit=args.images).images

    t0 = time.perf_counter()
    streams = codec.encode(images)
    decoded = codec.decode(streams)
    learned_s = time.perf_counter() - t0

    jpeg_s, jpeg_sizes = time_pillow_jpeg(images, args.quality)

    sym, _ = codec.symbols(images)
    rans = RansEncoder()
    rans_bytes = sum(len(rans.encode_with_indexes(row, codec._indexes, codec._cdfs, codec._lengths, codec._offsets))
                     for row in sym.tolist())
    n = len(images)
    print(f"model {name}, {n} images, torch threads {torch.get_num_threads()}")
    print(f"learned codec : {n / learned_s:9.0f} images/s  {sum(map(len, streams)) / n:7.2f} B/image (arithmetic coder)")
    print(f"Pillow JPEG q{args.quality}: {n / jpeg_s:9.0f} images/s  {np.mean(jpeg_sizes):7.2f} B/image (whole file)")
    print(f"ratio learned/JPEG throughput: {jpeg_s / learned_s:.3f}")
    print(f"same symbols with CompressAI rANS: {rans_bytes / n:.2f} B/image "
          f"(ours is {rans_bytes / max(sum(map(len, streams)), 1):.2f}x smaller)")
    assert decoded.shape == images.shape


if __name__ == "__main__":
    main()
