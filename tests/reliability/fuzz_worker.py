"""Mutation fuzzing of one classic codec's decoder, meant to run in its own process.

Native decoders (libjpeg-turbo, OpenJPEG, libwebp, libheif, libavif, libjxl, FFmpeg) could
crash the process or hang on hostile input; the parent test runs this script in a subprocess
so that a crash or a hang is seen (exit status, timeout) instead of taking pytest down. Before
each decode the case is written to ``OUT/current.bin``, so whatever killed the process can be
replayed. Prints one JSON line: per codec, counts of outcomes, the peak resident memory growth
(a decoder that allocates what a damaged size field asks for shows up here) and the slowest case.

    python fuzz_worker.py CODEC[,CODEC...] N_CASES SEED OUT_DIR
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np


def mutate(seed_file: bytes, rng: np.random.Generator) -> bytes:
    """One random mutation; header bytes (the first 64) are hit more often than the rest."""
    data = bytearray(seed_file)
    kind = int(rng.integers(0, 7))
    n = len(data)

    def position() -> int:
        return int(rng.integers(0, min(n, 64))) if rng.random() < 0.5 else int(rng.integers(0, n))

    if kind == 0:  # truncate
        return bytes(data[: int(rng.integers(0, n))])
    if kind == 1:  # flip 1..8 bits
        for _ in range(int(rng.integers(1, 9))):
            data[position()] ^= 1 << int(rng.integers(0, 8))
    elif kind == 2:  # overwrite bytes with extreme values (size fields, lengths)
        for _ in range(int(rng.integers(1, 5))):
            data[position()] = int(rng.choice([0x00, 0x7F, 0x80, 0xFF, int(rng.integers(0, 256))]))
    elif kind == 3:  # replace a chunk with random bytes of another length
        at = position()
        data[at : at + int(rng.integers(1, 16))] = rng.integers(0, 256, int(rng.integers(0, 16)), np.uint8).tobytes()
    elif kind == 4:  # duplicate a chunk
        at = position()
        data[at:at] = data[at : at + int(rng.integers(1, 32))]
    elif kind == 5:  # random bytes after a kept prefix
        keep = int(rng.integers(0, n))
        return bytes(data[:keep]) + rng.integers(0, 256, int(rng.integers(0, 64)), np.uint8).tobytes()
    else:  # pure random bytes
        return rng.integers(0, 256, int(rng.integers(0, 2 * n)), np.uint8).tobytes()
    return bytes(data)


def seed_files(codec, images) -> list[bytes]:
    qualities = (codec.quality_min, (codec.quality_min + codec.quality_max) // 2, codec.quality_max)
    return [codec.encode(image, q) for image, q in zip(images, qualities)]


def fuzz(name: str, n_cases: int, seed: int, out: Path) -> dict:
    import torch

    from tosc.data import load_dataset
    from tosc.errors import CorruptFileError
    from tosc.source_coding import classic

    codec = classic.get_codec(name)
    fashion = load_dataset("fashion-mnist", split="test", limit=2).images
    rgb = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(seed))
    seeds = seed_files(codec, [fashion[0], rgb, fashion[1]])
    rng = np.random.default_rng(seed)
    current = out / "current.bin"
    (out / "current.codec").write_text(name)
    baseline_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    counts = {"decoded": 0, "corrupt": 0}
    slowest = 0.0
    for i in range(n_cases):
        case = mutate(seeds[i % len(seeds)], rng)
        fd = os.open(current, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.write(fd, case)
        os.close(fd)
        started = time.perf_counter()
        try:
            image = codec.decode(case)
        except CorruptFileError:
            counts["corrupt"] += 1
        else:
            if image.ndim != 3 or image.dtype != torch.float32 or not torch.isfinite(image).all():
                raise AssertionError(f"{name} case {i}: bad image {tuple(image.shape)} {image.dtype}")
            counts["decoded"] += 1
        slowest = max(slowest, time.perf_counter() - started)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {**counts, "memory_growth_mib": (peak_kib - baseline_kib) / 1024, "slowest_s": slowest}


def main() -> int:
    names, n_cases, seed, out = sys.argv[1].split(","), int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
    import torch

    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    results = {name: fuzz(name, n_cases, seed, out) for name in names}
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
