#!/usr/bin/env python
"""Learned codecs against the learned bound on the images' own R(D_p, I_0) (issue 22).

    .venv/bin/python scripts/theory_vs_codecs.py --bound runs/theory-fashion-mnist-images/bound.json \
        [--bound MORE.json] [--codecs tosc-sr-r3 mse-only-r3 path/to/new.pt ...] [--limit N] \
        [--out docs/img/theory_codecs_vs_bound.png]

For each codec (default: every shipped one, ``tosc models``; names or .pt checkpoints):
bpp from the actual payload bytes of the Fashion-MNIST test images, pixel MSE (pixels in
[0, 1]) and the class information I(Xhat;Y) >= H(Y) - CE certified by the same classifier
and temperature calibration as the bound (tosc.theory.neural_bound.class_information_bits).
The bound at a codec's point is the least rate among the trained bound points that are at
least as good in both MSE and class information (tosc.theory.neural_bound.upper_bound_at);
the gap is codec bpp minus that rate. Writes the plot, a Markdown table and a JSON file
beside it (OUT with .md and .json; the JSON records versions and git commit).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch
from tqdm import tqdm


def codec_point(name: str, images: torch.Tensor, labels: torch.Tensor, classifier, h_y: float) -> dict:
    from tosc.source_coding.learned import LearnedCodec
    from tosc.source_coding.learned.zoo import resolve_codec
    from tosc.theory.neural_bound import class_information_bits

    codec: LearnedCodec = resolve_codec(name)
    n, _, h, w = images.shape
    streams = codec.encode(images)
    decoded = codec.decode(streams, image_hw=(h, w)).clamp(0, 1)
    mse = (decoded - images).pow(2).flatten(1).mean(1)
    with torch.no_grad():
        logits = torch.cat([classifier(decoded[i:i + 1000]) for i in range(0, n, 1000)])
    info, info_se, temperature = class_information_bits(logits, labels, h_y)
    return {
        "codec": name, "bpp": 8.0 * sum(map(len, streams)) / (n * h * w), "mse": float(mse.mean()),
        "mse_se": float(mse.std() / math.sqrt(n)), "psnr_of_mean_mse_db": float(-10 * torch.log10(mse.mean())),
        "semantic_info_bits": info, "semantic_info_se": info_se, "temperature": temperature,
        "accuracy": float((logits.argmax(1) == labels).double().mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bound", action="append", required=True, help="bound.json from tosc theory (repeatable)")
    parser.add_argument("--codecs", nargs="*", default=None, help="codec names or .pt files (default: all shipped)")
    parser.add_argument("--limit", type=int, default=None, help="first N test images (default: all 10000)")
    parser.add_argument("--out", default="docs/img/theory_codecs_vs_bound.png", help="plot path (.png)")
    args = parser.parse_args()

    from matplotlib.figure import Figure

    from tosc.data import load_dataset
    from tosc.io import atomic_write_json, atomic_write_text
    from tosc.provenance import git_commit, package_versions
    from tosc.source_coding.learned import list_codecs
    from tosc.tasks import TRAINING_TASK, load_task_network
    from tosc.theory.neural_bound import upper_bound_at
    from tosc.theory.plots import save_png

    bounds = [json.loads(Path(b).read_text()) for b in args.bound]
    points = [p for b in bounds for p in b["points"]]
    predictors = {b["config"]["predictor"] for b in bounds}
    if predictors != {TRAINING_TASK}:
        raise SystemExit(f"error: the bound files use predictor(s) {sorted(predictors)}, this script {TRAINING_TASK}")
    test = load_dataset("fashion-mnist", "test", limit=args.limit)
    counts = torch.bincount(test.labels, minlength=len(test.classes)).double()
    p_y = counts / counts.sum()
    h_y = float(-(p_y[p_y > 0] * torch.log2(p_y[p_y > 0])).sum())
    classifier = load_task_network(TRAINING_TASK)
    names = args.codecs if args.codecs else [e.name for e in list_codecs()]
    rows = []
    for name in tqdm(names, desc="codecs"):
        row = codec_point(name, test.images, test.labels, classifier, h_y)
        both = upper_bound_at(points, row["mse"], row["semantic_info_bits"])
        pixel = upper_bound_at(points, row["mse"], 0.0)
        row["bound_bpp"] = None if both is None else both["rate_per_dim_bits"]
        row["bound_point"] = None if both is None else {k: both[k] for k in ("lambda_p", "lambda_s", "distortion",
                                                                              "semantic_info_bits")}
        row["gap_bpp"] = None if both is None else row["bpp"] - both["rate_per_dim_bits"]
        row["pixel_only_bound_bpp"] = None if pixel is None else pixel["rate_per_dim_bits"]
        rows.append(row)
        tqdm.write(f"{name}: {row['bpp']:.3f} bpp, MSE {row['mse']:.5f}, I >= {row['semantic_info_bits']:.3f} bits, "
                   f"bound {row['bound_bpp']}")

    lines = ["| codec | bpp | pixel MSE | PSNR of mean MSE (dB) | I(Xhat;Y) >= (bits) | accuracy | bound (bpp) at "
             "MSE and I | bound point (λp, λs) | gap (bpp) | bound at MSE only (bpp) |", "|---" * 10 + "|"]

    def fmt(v, spec):
        return "none" if v is None else format(v, spec)

    for r in sorted(rows, key=lambda r: (r["codec"].rsplit("-r", 1)[0], r["bpp"])):
        bp = r["bound_point"]
        bp_text = "-" if bp is None else f"{bp['lambda_p']:g}, {bp['lambda_s']:g}"
        lines.append(f"| {r['codec']} | {r['bpp']:.3f} | {r['mse']:.5f} | {r['psnr_of_mean_mse_db']:.2f} | "
                     f"{r['semantic_info_bits']:.3f} | {100 * r['accuracy']:.1f}% | {fmt(r['bound_bpp'], '.3f')} | "
                     f"{bp_text} | "
                     f"{fmt(r['gap_bpp'], '+.3f')} | {fmt(r['pixel_only_bound_bpp'], '.3f')} |")
    table = "\n".join(lines) + "\n"
    atomic_write_text(Path(args.out).with_suffix(".md"), table)
    print(table)

    fig = Figure(figsize=(6.4, 4.6))
    ax = fig.add_subplot()
    by_ls: dict[float, list] = {}
    for p in points:
        by_ls.setdefault(p["lambda_s"], []).append(p)
    greys = ["black", "dimgray", "darkgray", "silver"]
    for k, (ls, pts) in enumerate(sorted(by_ls.items())):
        pts.sort(key=lambda p: p["distortion"])
        ax.plot([p["distortion"] for p in pts], [p["rate_per_dim_bits"] for p in pts], "-" if ls == 0 else "--",
                color=greys[k % len(greys)], marker="D", ms=5, label=f"learned upper bound, λs = {ls:g}")
        for p in pts:
            ax.annotate(f"I≥{p['semantic_info_bits']:.2f}", (p["distortion"], p["rate_per_dim_bits"]), fontsize=6,
                        xytext=(3, 3), textcoords="offset points")
    families: dict[str, list] = {}
    for r in rows:
        families.setdefault(r["codec"].rsplit("-r", 1)[0], []).append(r)
    for (family, rs), marker in zip(sorted(families.items()), "osv^<>p"):
        rs.sort(key=lambda r: r["mse"])
        ax.plot([r["mse"] for r in rs], [r["bpp"] for r in rs], marker=marker, ls=":", label=f"{family} (actual bytes)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("pixel MSE (pixels in [0, 1])")
    ax.set_ylabel("bits per pixel")
    ax.set_title(f"Fashion-MNIST test ({len(test)} images): codecs vs learned R(D_p, I_0) bound", fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_png(fig, args.out)
    atomic_write_json(Path(args.out).with_suffix(".json"), {
        "kind": "tosc-theory-codecs-vs-bound", "bounds": args.bound, "bound_configs": [b["config"] for b in bounds],
        "bound_git_commits": [b["git_commit"] for b in bounds], "n_images": len(test), "rows": rows,
        "predictor": TRAINING_TASK, "versions": package_versions(), "git_commit": git_commit(),
    })
    print(f"wrote {args.out} and its .json and .md")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
