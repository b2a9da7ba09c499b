#!/usr/bin/env python
"""lambda_s as a second input of one model, or a checkpoint per trade-off? Measured on the
global mode (codec v3's low-rate mode, 28 x 28).

    .venv/bin/python scripts/lambda_s_input.py --joint runs/lams/joint.pt \\
        --mse runs/v3global/mse-global-ft.pt --tosc-sr runs/v3global/tosc-sr-global-cap5.pt \\
        --limit 2000 --out docs/codec_v3/lambda_s_input

``--joint`` is a global mode trained with ``semantic_input=true`` (its first half of levels
MSE-only, its second half with the semantic term, transforms shared); ``--mse`` and
``--tosc-sr`` are the two separate modes trained from the same start with the same settings.
On the first ``--limit`` test images, each level's rate (the ideal code length of its rounded
latents under its own prior, in bits per pixel: the coder adds at most a few bits, and the
quality index the same for all), mean per-image PSNR and the accuracy of the training
classifier and every held-out classifier. Then each half of the joint mode against its
separate counterpart at the counterpart's rates (interpolated in log-rate), and TOSC-SR
against MSE-only inside each design by the issue's rule (:func:`semantic_verdict` of
``codec_v3_report.py``). Writes OUT.json (config, seed, versions, commit) and OUT.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np
import torch

import tosc  # noqa: F401
from tosc.cli.script import exits_on_error


def _report_module():
    """``codec_v3_report.py`` (its semantic rule and equal-rate reading), loaded from beside this script."""
    spec = importlib.util.spec_from_file_location("codec_v3_report", Path(__file__).with_name("codec_v3_report.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_mode(path: str):
    """A trained global mode (a ``mode=global`` training checkpoint) and its training settings."""
    from tosc.checkpoint import load_checkpoint
    from tosc.errors import ConfigError
    from tosc.source_coding.learned.compressai_adapter import prepare_tables
    from tosc.source_coding.learned.global_mode import GlobalMode, GlobalModeConfig
    from tosc.source_coding.learned.train_conv import GLOBAL_ARCH

    ckpt = load_checkpoint(path, kind="codec")
    if ckpt.get("arch") != GLOBAL_ARCH:
        raise ConfigError(f"{path} is not a global mode ({ckpt.get('arch')})")
    mode = GlobalMode(GlobalModeConfig.from_dict(ckpt["config"]["codec"]))
    state = ckpt["state_dict"]
    prepare_tables(mode.entropy_bottleneck, state, "entropy_bottleneck", required=False)
    mode.load_state_dict(state)
    return mode.eval(), ckpt["config"]["train"], ckpt.get("train_time_s")


@torch.no_grad()
def level_rows(mode, levels: list[int], x: torch.Tensor, scores) -> list[dict]:
    """One row per level: {"level", "bpp", **scores(decoded)} on images x (N x C x H x W)."""
    rows = []
    total = mode.config.levels
    n, _, h, w = x.shape
    for level in levels:
        bits, decoded = [], []
        for chunk in torch.split(x, 500):
            out = mode(chunk, torch.full((len(chunk),), level / (total - 1)))
            bits.append(out["bits_y"])
            decoded.append(out["x_hat"].clamp(0, 1))
        rows.append({"level": level, "bpp": float(torch.cat(bits).mean() / (h * w)), **scores(torch.cat(decoded))})
    return rows


def against(test: list[dict], anchor: list[dict], report) -> dict:
    """``test``'s scores minus ``anchor``'s at each anchor rate inside test's range (the
    report's :func:`equal_rate` reading): per key the mean and the worst difference."""
    pairs = report.equal_rate(anchor, test)
    out = {}
    for k in pairs[0]["mse_only"] if pairs else ():
        d = [p["tosc_sr"][k] - p["mse_only"][k] for p in pairs]
        out[k] = {"mean": float(np.mean(d)), "worst": float(np.min(d)), "points": len(d)}
    return out


@exits_on_error
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--joint", required=True)
    parser.add_argument("--mse", required=True)
    parser.add_argument("--tosc-sr", required=True)
    parser.add_argument("--limit", type=int, default=2000)
    parser.add_argument("--out", default="docs/codec_v3/lambda_s_input")
    args = parser.parse_args()

    from tosc.data import load_dataset
    from tosc.errors import ConfigError
    from tosc.io import atomic_write_json, atomic_write_text
    from tosc.metrics import psnr_db
    from tosc.provenance import git_commit, package_versions
    from tosc.tasks import HELD_OUT_TASKS, TRAINING_TASK, accuracy, load_task_network

    started = time.time()
    report = _report_module()
    torch.manual_seed(0)
    test = load_dataset("fashion-mnist", "test", limit=args.limit)
    x, labels = test.images, test.labels
    nets = {name: load_task_network(name) for name in (TRAINING_TASK, *HELD_OUT_TASKS)}
    clean = {f"acc_{k}": accuracy(net, x, labels) for k, net in nets.items()}

    def scores(decoded: torch.Tensor) -> dict:
        return {"psnr_db": psnr_db(decoded, x).mean().item(),
                **{f"acc_{k}": accuracy(net, decoded, labels) for k, net in nets.items()}}

    joint, joint_cfg, joint_time = load_mode(args.joint)
    if not joint_cfg.get("semantic_input"):
        raise ConfigError(f"{args.joint} was not trained with semantic_input=true")
    k = joint_cfg["global_levels"]
    mse, mse_cfg, mse_time = load_mode(args.mse)
    sr, sr_cfg, sr_time = load_mode(args.tosc_sr)
    rows = {
        "joint/mse-only": level_rows(joint, list(range(k)), x, scores),
        "joint/tosc-sr": level_rows(joint, list(range(k, 2 * k)), x, scores),
        "separate/mse-only": level_rows(mse, list(range(mse.config.levels)), x, scores),
        "separate/tosc-sr": level_rows(sr, list(range(sr.config.levels)), x, scores),
    }
    comparisons = {
        "mse-only: joint vs separate": against(rows["joint/mse-only"], rows["separate/mse-only"], report),
        "tosc-sr: joint vs separate": against(rows["joint/tosc-sr"], rows["separate/tosc-sr"], report),
    }
    training = "acc_" + TRAINING_TASK
    verdicts = {}
    for design in ("joint", "separate"):
        pairs = report.equal_rate(rows[f"{design}/mse-only"], rows[f"{design}/tosc-sr"])
        verdicts[design] = report.semantic_verdict(pairs, clean, len(x), TRAINING_TASK, list(HELD_OUT_TASKS))
    sizes = {name: sum(p.numel() for p in m.parameters()) for name, m in
             (("joint", joint), ("mse-only", mse), ("tosc-sr", sr))}
    result = {"config": {**vars(args), "joint_train": joint_cfg, "mse_train": mse_cfg, "tosc_sr_train": sr_cfg},
              "seed": 0, "versions": package_versions(), "git_commit": git_commit(), "images": len(x),
              "train_time_s": {"joint": joint_time, "mse-only": mse_time, "tosc-sr": sr_time},
              "parameters": sizes, "clean": clean, "rows": rows, "comparisons": comparisons,
              "semantic_verdicts": verdicts, "elapsed_s": time.time() - started}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out.with_suffix(".json"), result)

    keys = ["psnr_db", training] + [f"acc_{h}" for h in HELD_OUT_TASKS]
    lines = [f"First {len(x)} Fashion-MNIST test images. Rate: ideal code length of each level's rounded "
             "latents (bits per pixel, without the quality index). Parameters: joint "
             f"{sizes['joint']:,}, separate {sizes['mse-only']:,} + {sizes['tosc-sr']:,}.", "",
             "| rows | level | bpp | " + " | ".join(keys) + " |", "|---|---|---|" + "---|" * len(keys)]
    for name, rs in rows.items():
        for r in rs:
            lines.append(f"| {name} | {r['level']} | {r['bpp']:.4f} | "
                         + " | ".join(f"{r[k]:.2f}" if k == "psnr_db" else f"{100 * r[k]:.1f}" for k in keys) + " |")
    lines += ["", "Joint against separate at the separate mode's rates (mean / worst difference; PSNR in dB, "
              "accuracy in points):", "", "| pair | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for name, comp in comparisons.items():
        scale = {k: 1.0 if k == "psnr_db" else 100.0 for k in keys}
        lines.append(f"| {name} | " + " | ".join(
            f"{scale[k] * comp[k]['mean']:+.2f} / {scale[k] * comp[k]['worst']:+.2f}" if k in comp else "-"
            for k in keys) + " |")
    lines += ["", "TOSC-SR against MSE-only inside each design (the issue's rule):", ""]
    for design, v in verdicts.items():
        met = sum(g["meets"] for g in v["gap_rows"])
        lines.append(f"- {design}: gap rule met at {met} of {len(v['gap_rows'])} rows; held-out mean gains "
                     + ", ".join(f"{h} {d['mean_gain_points']:+.2f}" for h, d in v["held_out"].items())
                     + f"; all met: {v['all_met']}")
    atomic_write_text(out.with_suffix(".md"), "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
