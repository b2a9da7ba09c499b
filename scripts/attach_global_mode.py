#!/usr/bin/env python
"""Attach a trained global mode (:mod:`tosc.source_coding.learned.global_mode`) to a shipped v3 checkpoint.

    .venv/bin/python scripts/attach_global_mode.py --mode runs/v3global/mse-global.pt --to mse-only-v3
    .venv/bin/python scripts/attach_global_mode.py --mode runs/v3global/tosc-sr-global.pt --to tosc-sr-v3

The global mode is trained by ``scripts/train_codec_v3.py --set mode=global ...`` (README,
"Codec v3"). The checkpoint keeps its weights, lineage and provenance; it gains the mode's
weights and frozen tables under ``global_mode.``, the mode's configuration, and a record of
where the mode came from (its training settings, time and commit). Then it is loaded as users
load it and the mode's levels are added to the validation curve ``tosc models`` shows. The
CDF tables of every entropy model are stored without their zero padding.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tosc.cli.script import exits_on_error  # noqa: E402 (after the path)


@exits_on_error
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", required=True, help="a trained global mode (conv-codec-v3-global checkpoint)")
    parser.add_argument("--to", required=True, help="the v3 codec (zoo name or path) that gains it")
    parser.add_argument("--int8-weights", action="store_true",
                        help="store the mode's transform weights as int8 rows instead of float16 (half their size)")
    args = parser.parse_args()

    from fit_predictive_tables import rewrite_with_curve

    from tosc.checkpoint import load_checkpoint
    from tosc.provenance import git_commit
    from tosc.source_coding.learned.compressai_adapter import prepare_tables
    from tosc.source_coding.learned.conv_codec import packed_tables, stored_global_mode
    from tosc.source_coding.learned.global_mode import GlobalMode, GlobalModeConfig
    from tosc.source_coding.learned.train_conv import GLOBAL_ARCH
    from tosc.zoo import codec_path

    trained = load_checkpoint(args.mode, kind="codec", arch=GLOBAL_ARCH)
    config = GlobalModeConfig.from_dict(trained["config"]["codec"])
    mode = GlobalMode(dataclasses.replace(config, int8_weights=args.int8_weights or config.int8_weights))
    prepare_tables(mode.entropy_bottleneck, trained["state_dict"], "entropy_bottleneck", required=False)
    mode.load_state_dict(trained["state_dict"])
    path = Path(args.to) if Path(args.to).suffix else codec_path(args.to)
    ckpt = load_checkpoint(path, kind="codec")
    state = {k: v for k, v in ckpt["state_dict"].items() if not k.startswith("global_mode.")}
    state.update(stored_global_mode(mode))
    ckpt["state_dict"] = packed_tables(state)
    ckpt["config"]["global_mode"] = mode.config.to_dict()
    ckpt["global_mode_attached"] = {"git_commit": git_commit(), "from": Path(args.mode).name,
                                    "train": trained["config"].get("train"),
                                    "train_time_s": trained.get("train_time_s"),
                                    "trained_at_commit": trained.get("git_commit")}

    codec = rewrite_with_curve(path, ckpt)  # attached: loaded as users load it, its levels added to the curve
    print(f"{path}: quality indices 0..{codec.quality_levels - 1} (global from {codec.global_first}); "
          f"{path.stat().st_size} bytes")
    curve = ckpt["metrics"]
    print(f"validation curve ({curve['images']} images): quality | bpp | PSNR dB | accuracy {curve.get('task', '')}")
    for q, bpp, psnr, acc in zip(curve["qualities"], curve["bpp"], curve["psnr_db"], curve["accuracy"]):
        if q < 8 or q >= codec.global_first:
            print(f"{q} | {bpp:.4f} | {psnr:.2f} | {100 * acc:.1f}")


if __name__ == "__main__":
    main()
