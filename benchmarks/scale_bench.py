#!/usr/bin/env python
"""Scaling out on one machine: 1 process against 2, for codec training (the family codec and
codec v3) and an evaluation grid.

    .venv/bin/python benchmarks/scale_bench.py [--images 4096] [--batch 64] [--grid-limit 100]

Training: the same codec (full size, TOSC-SR loss) for one epoch over ``--images`` images,
once as a plain process (global batch B) and once under ``torchrun --nproc_per_node 2``
(DDP over gloo, B/2 per process: the same steps); likewise codec v3 (full size, the shipped
ensemble semantic term) for one epoch over ``--images`` images. Grid: the same operating points once in
one process and once under torchrun as 2 slices merged by rank 0. Each worker starts its
clock after imports, data loading and the process group are ready (a barrier), so the
ratios compare the work, not Python start-up. Every process uses one torch thread.
Prints images/s, wall times, the ratios 2-process / 1-process, and the load average, since
other programs on the machine take cores from both runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()


def _worker(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(1)
    from tosc.distributed import distributed_session

    with distributed_session("cpu") as ctx:
        if args.worker == "train":
            from tosc.source_coding.learned.train import TrainConfig, train_codec

            cfg = TrainConfig(epochs=1, train_images=args.images, eval_images=64, batch_size=args.batch,
                              lambda_p=40.0, lambda_s=0.05)
            ctx.barrier()
            started = time.perf_counter()
            metrics = train_codec(cfg, Path(args.out) / "codec.pt", progress=False, context=ctx)
            elapsed = time.perf_counter() - started
            result = {"seconds": elapsed, "images_per_s": args.images / elapsed, "bpp": metrics["bpp"]}
        elif args.worker == "train-v3":
            from tosc.source_coding.learned.train_conv import ConvTrainConfig, train_conv_codec

            cfg = ConvTrainConfig(epochs=1, train_images=args.images, batch_size=args.batch, lambda_s=0.1,
                                  semantic="kl", semantic_exponent=1.0, semantic_lambda_cap=1000,
                                  task="classifier-cnn+classifier-mlp-train+classifier-linear-train")
            ctx.barrier()
            started = time.perf_counter()
            train_conv_codec(cfg, Path(args.out) / "v3.pt", resume=False, progress=False, context=ctx)
            elapsed = time.perf_counter() - started
            result = {"seconds": elapsed, "images_per_s": args.images / elapsed}
        else:
            from fractions import Fraction

            from tosc.evaluation import GridSpec, run_grid
            from tosc.evaluation.grid import run_grid_on_ranks

            spec = GridSpec(("mse-only-family+ldpc", "webp-payload+ldpc"), ("awgn",), (0.0, 10.0),
                            (Fraction(1, 8), Fraction(1, 4)), limit=args.grid_limit, seed=0)
            ctx.barrier()
            started = time.perf_counter()
            if ctx.distributed:
                records = run_grid_on_ranks(spec, args.out, ctx, jobs=1, progress=False)
            else:
                records = run_grid(spec, args.out, jobs=1, progress=False)
            result = {"seconds": time.perf_counter() - started, "points": len(records or [])}
        if ctx.is_main:
            print("RESULT " + json.dumps(result), flush=True)


def _launch(kind: str, processes: int, args: argparse.Namespace, out: Path) -> dict:
    worker = [str(HERE), "--worker", kind, "--out", str(out), "--images", str(args.images), "--batch",
              str(args.batch), "--grid-limit", str(args.grid_limit)]
    if processes == 1:
        cmd = [sys.executable, *worker]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
               *worker]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.exit(f"{kind} with {processes} process(es) failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=4096, help="training images (one epoch)")
    parser.add_argument("--batch", type=int, default=64, help="global batch size")
    parser.add_argument("--grid-limit", type=int, default=100, help="test images per operating point")
    parser.add_argument("--worker", choices=("train", "train-v3", "grid"), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args)
        return
    print(f"{os.cpu_count()} CPU cores, load average before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        runs = {(kind, n): _launch(kind, n, args, Path(tmp) / f"{kind}{n}") for kind in ("train", "train-v3", "grid")
                for n in (1, 2)}
    t1, t2 = runs[("train", 1)], runs[("train", 2)]
    g1, g2 = runs[("grid", 1)], runs[("grid", 2)]
    print(f"training, {args.images} images, global batch {args.batch}, full-size TOSC-SR codec:")
    print(f"  1 process  : {t1['images_per_s']:8.1f} images/s ({t1['seconds']:.1f} s)")
    print(f"  2 processes: {t2['images_per_s']:8.1f} images/s ({t2['seconds']:.1f} s, DDP over gloo)")
    print(f"  ratio 2/1 throughput: {t2['images_per_s'] / t1['images_per_s']:.2f}")
    v1, v2 = runs[("train-v3", 1)], runs[("train-v3", 2)]
    print(f"training, {args.images} images, global batch {args.batch}, codec v3 (full size, ensemble semantic term):")
    print(f"  1 process  : {v1['images_per_s']:8.1f} images/s ({v1['seconds']:.1f} s)")
    print(f"  2 processes: {v2['images_per_s']:8.1f} images/s ({v2['seconds']:.1f} s, DDP over gloo)")
    print(f"  ratio 2/1 throughput: {v2['images_per_s'] / v1['images_per_s']:.2f}")
    print(f"evaluation grid, {g1['points']} operating points x {args.grid_limit} images:")
    print(f"  1 shard  : {g1['seconds']:.1f} s")
    print(f"  2 shards : {g2['seconds']:.1f} s (torchrun, merged by rank 0; {g2['points']} points)")
    print(f"  ratio 1-shard / 2-shard wall time (speed-up): {g1['seconds'] / g2['seconds']:.2f}")
    print(f"load average after: {os.getloadavg()[0]:.2f} (above the core count, other programs shared the cores)")


if __name__ == "__main__":
    main()
