#!/usr/bin/env python
"""The checks behind ``benchmarks/gpu_check.sh``: train on a device, code there, decode on the CPU.

    .venv/bin/python benchmarks/gpu_check.py --device cuda --out DIR [--images 20000] [--test 2000]
    .venv/bin/python benchmarks/gpu_check.py --device cpu --out DIR --images 512 --test 128   # the same path, no GPU

1. Trains one TOSC-SR codec for one epoch over ``--images`` training images on ``--device``
   (images/s printed).
2. Writes the test images to a ``.tosc`` file with the transforms on the device (images/s).
3. Decodes that file in a separate process started with ``CUDA_VISIBLE_DEVICES=`` (``tosc
   decode``: CPU only) and checks: the CPU parses every stream back to exactly the symbols the
   device computed, and the images equal an in-process CPU decode bit for bit.
4. Reports, without failing on it, how many streams the device wrote byte-identical to a
   CPU encoder (latents within float error of a rounding boundary may round the other way;
   such a stream is still a valid stream that decodes exactly), and the same under bfloat16
   autocast on CUDA: the measurement that decides whether mixed precision may be used.

Exit status: 0 every check passed, 1 a check failed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--images", type=int, default=20000, help="training images (one epoch)")
    parser.add_argument("--test", type=int, default=2000, help="test images to code")
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()

    import numpy as np
    import torch

    from tosc.data import load_dataset
    from tosc.distributed import resolve_device
    from tosc.source_coding.learned import LearnedCodec
    from tosc.source_coding.learned.train import TrainConfig, train_codec

    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device {device} ({name}), torch {torch.__version__}")
    args.out.mkdir(parents=True, exist_ok=True)
    ckpt = args.out / "gpu-check.pt"
    cfg = TrainConfig(epochs=1, train_images=args.images, eval_images=500, batch_size=args.batch, lambda_p=40.0,
                      lambda_s=0.05)
    started = time.perf_counter()
    metrics = train_codec(cfg, ckpt, progress=False, device=device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    train_s = time.perf_counter() - started
    print(f"training: {args.images / train_s:.0f} images/s ({args.images} images, batch {args.batch}, "
          f"{train_s:.1f} s incl. validation), bpp {metrics['bpp']:.3f}, PSNR {metrics['psnr_db']:.2f} dB")

    images = load_dataset("fashion-mnist", "test", limit=args.test).images
    on_device = LearnedCodec.load(ckpt, device=device)
    on_cpu = LearnedCodec.load(ckpt, device="cpu")
    on_device.encode_file(images[:8])  # warm-up (CUDA context, kernels)
    started = time.perf_counter()
    data = on_device.encode_file(images)
    encode_s = time.perf_counter() - started
    tosc_file = args.out / "device.tosc"
    tosc_file.write_bytes(data)
    print(f"encoding on {device.type}: {len(images) / encode_s:.0f} images/s, {len(data)} bytes")

    failures = []
    decoded_npz = args.out / "decoded-on-cpu.npz"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, "-m", "tosc", "decode", str(tosc_file), "--model", str(ckpt), "-o",
                           str(decoded_npz)], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        failures.append(f"tosc decode on the CPU failed: {proc.stderr.strip()[-500:]}")
    else:
        from tosc.io import load_image_arrays
        from tosc.source_coding.learned.bitstream import unpack_file

        _, streams = unpack_file(data)
        symbols_device, _ = on_device.symbols(images)
        if not torch.equal(on_cpu.decode_symbols(streams), symbols_device):
            failures.append("the CPU decoded other symbols than the device encoded")
        decoded = torch.from_numpy(load_image_arrays(decoded_npz)["images"])
        if not torch.equal(decoded, on_cpu.decode_file(data)):
            failures.append("the decoding process and an in-process CPU decode disagree")
        print(f"decoding on the CPU (separate process, CUDA hidden): {len(streams)} streams, "
              f"symbols {'identical' if not failures else 'DIFFERENT'}")

    same = np.mean([a == b for a, b in zip(on_device.encode(images), on_cpu.encode(images))])
    print(f"streams byte-identical to the CPU encoder's (float32): {100 * same:.2f}%")
    if device.type == "cuda":
        with torch.autocast("cuda", dtype=torch.bfloat16):
            amp = on_device.encode(images)
        same_amp = np.mean([a == b for a, b in zip(amp, on_cpu.encode(images))])
        print(f"streams byte-identical under bfloat16 autocast: {100 * same_amp:.2f}% "
              "(below 100%: mixed precision changes the bitstream, so tosc leaves it off)")
    for failure in failures:
        print(f"FAILED: {failure}")
    print("gpu_check: " + ("all checks passed" if not failures else f"{len(failures)} check(s) failed"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
