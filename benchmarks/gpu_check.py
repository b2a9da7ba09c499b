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
5. Codec v3: trains it (full size, the semantic term on) for ``--v3-steps`` steps on the device
   (images/s); then, with the shipped ``tosc-sr-v3``, writes one ``.tosc`` file per mode
   (transform, predictive and global quality indices) with the transforms on the device, and
   checks that a CPU-only ``tosc decode`` process gives the images of an in-process CPU decode
   bit for bit, and that decoding on the device differs from the CPU by at most one grey level
   (the entropy decoding and the integer hyper-decoder run on the CPU whatever the device; only
   the float synthesis moves), reporting the share of images that are identical.
6. Deep JSCC (the semantic term on) trains for one epoch over ``--images`` images on the device.

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
    parser.add_argument("--v3-steps", type=int, default=200, help="codec v3 training steps (global batch --batch)")
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
    failures += check_codec_v3(device, args.out, images, args.batch, args.v3_steps)
    failures += check_jscc(device, args.out, args.images)
    for failure in failures:
        print(f"FAILED: {failure}")
    print("gpu_check: " + ("all checks passed" if not failures else f"{len(failures)} check(s) failed"))
    return 1 if failures else 0


def check_codec_v3(device, out: Path, images, batch: int, steps: int) -> list[str]:
    """Step 5 of the module docstring; returns the failures."""
    import torch

    from tosc.io import load_image_arrays
    from tosc.source_coding.learned.conv import QUALITY_LEVELS
    from tosc.source_coding.learned.conv_codec import ConvLearnedCodec
    from tosc.source_coding.learned.train_conv import ConvTrainConfig, train_conv_codec

    cfg = ConvTrainConfig(epochs=1, train_images=steps * batch, batch_size=batch, lambda_s=0.05, semantic="kl")
    started = time.perf_counter()
    train_conv_codec(cfg, out / "gpu-check-v3.pt", resume=False, progress=False, device=device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    train_s = time.perf_counter() - started
    print(f"codec v3 training: {steps * batch / train_s:.0f} images/s ({steps} steps of {batch})")

    failures = []
    on_device = ConvLearnedCodec.load("tosc-sr-v3", device=device)
    on_cpu = ConvLearnedCodec.load("tosc-sr-v3", device="cpu")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    first_predictive, first_global = QUALITY_LEVELS, on_cpu.global_first
    for mode, quality in (("transform", 64), ("predictive", (first_predictive + first_global) // 2),
                          ("global", (first_global + on_cpu.quality_levels) // 2)):
        if on_cpu.mode_of(torch.tensor([quality]).numpy())[0] != ("transform", "predictive", "global").index(mode):
            failures.append(f"quality {quality} is not a {mode}-mode index of tosc-sr-v3")
            continue
        started = time.perf_counter()
        data = on_device.encode_file(images, quality)
        encode_s = time.perf_counter() - started
        path = out / f"device-v3-{mode}.tosc"
        path.write_bytes(data)
        decoded_npz = out / f"decoded-v3-{mode}.npz"
        proc = subprocess.run([sys.executable, "-m", "tosc", "decode", str(path), "--model", "tosc-sr-v3", "-o",
                               str(decoded_npz)], env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            failures.append(f"codec v3 ({mode}): tosc decode on the CPU failed: {proc.stderr.strip()[-500:]}")
            continue
        cpu = on_cpu.decode_file(data)
        process_same = torch.equal(torch.from_numpy(load_image_arrays(decoded_npz)["images"]), cpu)
        if not process_same:
            failures.append(f"codec v3 ({mode}): the decoding process and an in-process CPU decode disagree")
        dev = on_device.decode_file(data)
        levels = (dev - cpu).abs().max().item() * 255
        same = (dev == cpu).flatten(1).all(1).float().mean().item()
        if levels > 1.5:
            failures.append(f"codec v3 ({mode}): decoding on {device.type} differs from the CPU by {levels:.0f} grey levels")
        streams_same = sum(a == b for a, b in zip(on_device.encode(images, quality), on_cpu.encode(images, quality)))
        print(f"codec v3 {mode} (quality {quality}): encoding on {device.type} {len(images) / encode_s:.0f} images/s; "
              f"CPU process decode {'identical' if process_same else 'DIFFERENT'}; {device.type} decode equal to the "
              f"CPU's for {100 * same:.2f}% of images (max {levels:.0f} grey level); streams byte-identical to the "
              f"CPU encoder's {100 * streams_same / len(images):.2f}%")
    return failures


def check_jscc(device, out: Path, images: int) -> list[str]:
    """Step 6: Deep JSCC with the semantic term trains on the device (the channel noise is drawn on
    the CPU from the seeded generators; validation runs on a CPU copy)."""
    import math

    from tosc.jscc.train import JSCCTrainConfig, train_jscc

    cfg = JSCCTrainConfig(epochs=1, train_images=images, eval_images=200, lambda_s=0.05)
    started = time.perf_counter()
    metrics = train_jscc(cfg, out / "gpu-check-jscc.pt", progress=False, device=device)
    seconds = time.perf_counter() - started
    print(f"deep JSCC training: {images / seconds:.0f} images/s ({images} images, {seconds:.1f} s incl. validation), "
          f"validation PSNR {metrics['psnr_db']:.2f} dB")
    return [] if math.isfinite(metrics["psnr_db"]) else ["deep JSCC trained on the device gives a non-finite PSNR"]


if __name__ == "__main__":
    sys.exit(main())
