#!/usr/bin/env python
"""Design choices of the analog models, measured on the validation split at equal training.

    .venv/bin/python benchmarks/jscc_bench.py design [--images 18000] [--epochs 3]
    .venv/bin/python benchmarks/jscc_bench.py attention --base runs/jscc/deep-jscc-base.pt
    .venv/bin/python benchmarks/jscc_bench.py lambda-s --base runs/jscc/deep-jscc-base.pt [--values 0 0.002 0.005 0.02]

``design``: from random weights, the same images in the same order, the same number of steps:
  - agile:           one bandwidth-agile model (random k per batch), no SNR attention (what ships);
  - agile-attention: the same with SNR attention (encoder and decoder told the SNR);
  - fixed-1/16, fixed-1/4: the paper's one model per CBR, with SNR attention (as first measured).
  Prints PSNR at each (CBR, SNR) of the validation grid and agile minus each alternative.
``attention``: the base schedule of ``--base`` (10 epochs, all training images) with SNR attention
  switched the other way, into ``--out`` (resumable): PSNR per point and the difference.
``lambda-s``: fine-tunes the base model for one pass over ``--images`` images at each lambda_s
  (0 is the Deep JSCC control) and prints mean PSNR and classifier-cnn accuracy over the grid
  and at CBR 1/16. Both write nothing outside a temporary folder.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch


def _table(results: dict[str, dict], keys: list[str]) -> None:
    width = max(len(k) for k in keys) + 2
    print(f"{'point':<{width}}" + "".join(f"{name:>14}" for name in results))
    for key in keys:
        print(f"{key:<{width}}" + "".join(f"{m.get(key, float('nan')):>14.3f}" for m in results.values()))


def design(args) -> None:
    from tosc.jscc.train import JSCCTrainConfig, train_jscc

    common = dict(train_images=args.images, eval_images=args.eval_images, epochs=args.epochs)
    variants = {
        "agile-attention": {"snr_adaptive": True},
        "agile": {},
        "fixed-1/16": {"cbrs": (1 / 16,), "snr_adaptive": True},
        "fixed-1/4": {"cbrs": (1 / 4,), "snr_adaptive": True},
    }
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, settings in variants.items():
            results[name] = train_jscc(JSCCTrainConfig(**common, **settings), Path(tmp) / "m.pt", progress=False)
            print(f"trained {name}: mean PSNR {results[name]['psnr_db']:.3f} dB", flush=True)
    keys = [k for k in results["agile"] if k.startswith("psnr_db/")]
    _table(results, keys + ["psnr_db"])
    for other, cbr in (("fixed-1/16", "cbr1_16"), ("fixed-1/4", "cbr1_4")):
        diffs = [results["agile-attention"][k] - results[other][k] for k in keys if k.startswith(f"psnr_db/{cbr}@")]
        print(f"agile-attention minus {other} at its own CBR: " + ", ".join(f"{d:+.2f}" for d in diffs) + " dB (SNR 0, 10, 20)")
    diffs = [results["agile-attention"][k] - results["agile"][k] for k in keys]
    print(f"SNR attention (agile-attention minus agile): mean {sum(diffs) / len(diffs):+.2f} dB, "
          f"min {min(diffs):+.2f}, max {max(diffs):+.2f}")


def lambda_s(args) -> None:
    from tosc.jscc.train import JSCCTrainConfig, train_jscc

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for value in args.values:
            cfg = JSCCTrainConfig(train_images=args.images, eval_images=args.eval_images, epochs=1, lr=3e-4,
                                  lambda_s=value, init_from=str(args.base))
            results[f"ls={value:g}"] = train_jscc(cfg, Path(tmp) / "m.pt", progress=False)
            m = results[f"ls={value:g}"]
            print(f"lambda_s {value:g}: mean PSNR {m['psnr_db']:.3f} dB, mean accuracy {m['accuracy']:.4f}", flush=True)
    keys = sorted(k for k in next(iter(results.values())) if "/" in k)
    _table(results, keys + ["psnr_db", "accuracy"])


def attention(args) -> None:
    from tosc.checkpoint import load_checkpoint
    from tosc.jscc.train import JSCCTrainConfig, train_jscc

    base = load_checkpoint(args.base, kind="jscc")
    settings = {**base["config"]["train"], "snr_adaptive": not base["config"]["train"]["snr_adaptive"]}
    other = train_jscc(JSCCTrainConfig.from_dict(settings), args.out, resume=True, progress=False)
    results = {"attention": other, "no-attention": base["metrics"]}
    if base["config"]["train"]["snr_adaptive"]:
        results = {"attention": base["metrics"], "no-attention": other}
    keys = sorted(k for k in results["attention"] if k.startswith("psnr_db/"))
    _table(results, keys + ["psnr_db", "accuracy"])
    diffs = [results["attention"][k] - results["no-attention"][k] for k in keys]
    print(f"SNR attention (with minus without): mean {sum(diffs) / len(diffs):+.2f} dB, "
          f"min {min(diffs):+.2f}, max {max(diffs):+.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what")  # none: design (what `make bench` runs)
    d = sub.add_parser("design")
    d.add_argument("--images", type=int, default=18000)
    d.add_argument("--epochs", type=int, default=3)
    d.add_argument("--eval-images", type=int, default=1000)
    s = sub.add_parser("lambda-s")
    s.add_argument("--base", type=Path, default=Path("runs/jscc/deep-jscc-base.pt"))
    s.add_argument("--values", type=float, nargs="+", default=[0.0, 0.002, 0.005, 0.02])
    s.add_argument("--images", type=int, default=18000)
    s.add_argument("--eval-images", type=int, default=1000)
    a = sub.add_parser("attention")
    a.add_argument("--base", type=Path, default=Path("runs/jscc/deep-jscc-base.pt"))
    a.add_argument("--out", type=Path, default=Path("runs/jscc/deep-jscc-base-other-attention.pt"))
    args = parser.parse_args()
    if args.what is None:
        args = parser.parse_args(["design"])
    torch.set_num_threads(1)
    {"design": design, "lambda-s": lambda_s, "attention": attention}[args.what](args)


if __name__ == "__main__":
    main()
