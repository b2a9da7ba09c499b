#!/usr/bin/env python
"""Train codec v3 (one variable-rate checkpoint per variant), resumably.

    .venv/bin/python scripts/train_codec_v3.py --out runs/v3/mse-only.pt [--epochs 16]
    .venv/bin/python scripts/train_codec_v3.py --out runs/v3/tosc-sr.pt --init-from runs/v3/mse-only.pt \
        --lambda-s 0.05 --epochs 2

Rerunning the same command resumes from the last checkpoint (written atomically every 200
steps). See ``tosc.source_coding.learned.train_conv`` for the loss.

Data parallel on several CPUs or GPUs: the same command under torchrun (``batch_size`` is the
global batch; rank 0 alone writes), e.g.

    .venv/bin/torchrun --standalone --nproc_per_node 4 scripts/train_codec_v3.py --device cuda \
        --out runs/v3/mse-only.pt --set batch_size=256
"""

from __future__ import annotations

import argparse
import json
import sys

import tosc  # noqa: F401
from tosc.cli.script import exits_on_error
from tosc.distributed import distributed_session
from tosc.source_coding.learned.train_conv import ConvTrainConfig, train_conv_codec


@exits_on_error
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="training settings (JSON values), e.g. epochs=16 lambda_s=0.05")
    parser.add_argument("--device", default="cpu", help="cpu (default), auto (CUDA if present), cuda or cuda:N")
    args = parser.parse_args()
    settings = {}
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            settings[key] = json.loads(value)
        except json.JSONDecodeError:
            settings[key] = value
    cfg = ConvTrainConfig.from_dict(settings)
    with distributed_session(args.device) as ctx:
        metrics = train_conv_codec(cfg, args.out, progress=ctx.is_main, context=ctx)
        if ctx.is_main:
            print(json.dumps({"checkpoint": args.out, "processes": ctx.world_size, "device": str(ctx.device), **metrics}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
