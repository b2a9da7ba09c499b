#!/usr/bin/env python
"""Encode + decode throughput of codec v3 (real arithmetic-coded bytes) against Pillow's JPEG
on the same Fashion-MNIST test images, in the same process, one thread.

    .venv/bin/python benchmarks/codec_v3_bench.py [--model mse-only-v3] [--images 2000] [--quality 64]
        [--refine-steps N]

Prints images/s of v3 (encode and decode) and of JPEG, and the ratio v3 / JPEG, for the fast
encoder (the analysis transform's latent) and, in the same run, for the refining encoder
(the default: ``--refine-steps`` search steps per image, 0 to skip it) with its ratio to the
fast one. Also checks that the compiled coder and the pure-Python one
write the same bytes, and prints their ratio.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
import torch
from pillow_jpeg import time_pillow_jpeg


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="mse-only-v3")
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--quality", type=int, default=64, help="v3 quality index (0..127 transform codec; 128.. predictive mode, then global mode, where the model has them)")
    parser.add_argument("--jpeg-quality", type=int, default=75)
    parser.add_argument("--refine-steps", type=int, default=None,
                        help="the refining encoder's steps (default: the codec's; 0: time the fast encoder only)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    import tosc  # noqa: F401
    from tosc.data import load_dataset
    from tosc.source_coding.learned import arithmetic
    from tosc.source_coding.learned.conv_codec import ConvLearnedCodec

    codec = ConvLearnedCodec.load(args.model)
    refining = codec.refinement if args.refine_steps is None else replace(codec.refinement, steps=args.refine_steps)
    codec.refinement = replace(codec.refinement, steps=0)
    images = load_dataset("fashion-mnist", "test", limit=args.images).images
    codec.decode(codec.encode(images[:8], args.quality), (28, 28))  # compile and warm up

    t0 = time.perf_counter()
    streams = codec.encode(images, args.quality)
    t1 = time.perf_counter()
    decoded = codec.decode(streams, (28, 28))
    t2 = time.perf_counter()
    v3_s, encode_s, decode_s = t2 - t0, t1 - t0, t2 - t1

    jpeg_s, sizes = time_pillow_jpeg(images, args.jpeg_quality)

    m = min(200, len(images))  # the coder comparison's sample (the Python coder is slow)
    y, _ = codec.latents(images[:m])
    symbols, indexes = codec._symbols(y, np.full(m, args.quality))
    t0 = time.perf_counter()
    from tosc.source_coding.learned.fastcoder import encode_batch

    fast = encode_batch(symbols, indexes, codec.tables)
    t1f = time.perf_counter()
    cdfs = codec.tables.rows()
    slow = [arithmetic.encode(s.tolist(), i.tolist(), cdfs, codec.tables.lengths.tolist(), codec.tables.offsets.tolist())
            for s, i in zip(symbols, indexes)]
    t2f = time.perf_counter()
    assert fast == slow, "compiled and Python coders disagree"

    n = len(images)
    print(f"model {args.model}, {n} images, quality {args.quality}, torch threads {torch.get_num_threads()}")
    print(f"codec v3      : {n / v3_s:8.0f} images/s (encode {n / encode_s:.0f}/s, decode {n / decode_s:.0f}/s, "
          f"transforms included)  {np.mean([len(s) for s in streams]):7.2f} B/image")
    print(f"Pillow JPEG q{args.jpeg_quality}: {n / jpeg_s:8.0f} images/s  {np.mean(sizes):7.2f} B/image (whole file)")
    print(f"ratio v3/JPEG throughput: {jpeg_s / v3_s:.3f}")
    print(f"entropy coding of {m} images: compiled {m / (t1f - t0):.0f} images/s, Python {m / (t2f - t1f):.0f} "
          f"images/s (ratio {(t2f - t1f) / (t1f - t0):.0f}x), identical bytes")
    assert decoded.shape == images.shape
    if refining.steps and codec.mode_of(np.array([args.quality]))[0] == 0:
        codec.refinement = refining
        t0 = time.perf_counter()
        refined = codec.encode(images, args.quality)
        t1 = time.perf_counter()
        codec.decode(refined, (28, 28))
        t2 = time.perf_counter()
        print(f"refining encoder ({refining.steps} steps): {n / (t2 - t0):8.0f} images/s (encode {n / (t1 - t0):.0f}/s, "
              f"decode {n / (t2 - t1):.0f}/s)  {np.mean([len(s) for s in refined]):7.2f} B/image; ratio to the fast "
              f"encoder {v3_s / (t2 - t0):.3f}, to JPEG {jpeg_s / (t2 - t0):.3f}")


if __name__ == "__main__":
    main()
