#!/usr/bin/env python
"""Evaluate every trained codec on the Fashion-MNIST test set; write the README table and plots.

    .venv/bin/python scripts/codec_report.py [--limit N] [--out docs/codec]

For each codec in ``tosc models``: bpp from actual bytes (whole .tosc file with its
header amortised over the N images, and payload = the per-image streams), PSNR (mean of
per-image PSNR), SSIM, MS-SSIM (upsampled, see tosc.metrics; first 1000 images), and the accuracy of the
training-time classifier and of each held-out network on the decoded images.
Writes OUT/codecs.json, OUT/codec_table.md and OUT/rate_psnr.png, OUT/rate_accuracy.png.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from tqdm import tqdm


MS_SSIM_IMAGES = 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=None, help="first N test images (default: all 10000)")
    parser.add_argument("--out", default="docs/codec")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tosc.data import load_dataset
    from tosc.io import atomic_write_json, atomic_write_text
    from tosc.metrics import ms_ssim, psnr_db, ssim
    from tosc.provenance import git_commit, package_versions
    from tosc.source_coding.learned import LearnedCodec, list_codecs
    from tosc.tasks import HELD_OUT_TASKS, TRAINING_TASK, accuracy, load_task_network

    test = load_dataset("fashion-mnist", "test", limit=args.limit)
    x, labels = test.images, test.labels
    n, _, h, w = x.shape
    nets = {name: load_task_network(name) for name in (TRAINING_TASK, *HELD_OUT_TASKS)}
    rows = []
    clean = {"name": "clean (no coding)", "variant": "-"}
    for name, net in nets.items():
        clean["accuracy" if name == TRAINING_TASK else f"accuracy_{name}"] = accuracy(net, x, labels)
    for entry in tqdm(list_codecs(), desc="codecs"):
        codec = LearnedCodec.load(entry.path)
        data = codec.encode_file(x)
        from tosc.source_coding.learned.bitstream import unpack_file

        streams = unpack_file(data)[1]
        decoded = codec.decode_file(data)
        row = {
            "name": entry.name, "variant": entry.variant, "lambda_p": entry.lambda_p, "lambda_s": entry.lambda_s,
            "bpp_whole": 8 * len(data) / (n * h * w),
            "bpp_payload": 8 * sum(map(len, streams)) / (n * h * w),
            "psnr_db": psnr_db(decoded, x).mean().item(),
            "ssim": ssim(decoded, x).mean().item(),
            # MS-SSIM needs 4x upsampling at 28x28 (see tosc.metrics): on the first 1000 images only
            "ms_ssim": ms_ssim(decoded[:MS_SSIM_IMAGES], x[:MS_SSIM_IMAGES]).mean().item(),
        }
        for net_name, net in nets.items():
            row["accuracy" if net_name == TRAINING_TASK else f"accuracy_{net_name}"] = accuracy(net, decoded, labels)
        rows.append(row)
    out = Path(args.out)
    atomic_write_json(out / "codecs.json", {"n_images": n, "dataset": "fashion-mnist", "split": "test",
                                             "clean": clean, "codecs": rows, "versions": package_versions(),
                                             "git_commit": git_commit()})
    held = [f"accuracy_{t}" for t in HELD_OUT_TASKS]
    lines = ["| model | variant | λp | λs | bpp whole | bpp payload | PSNR dB | SSIM | MS-SSIM | acc (cnn) | "
             + " | ".join(f"acc ({t.split('-')[-1]})" for t in HELD_OUT_TASKS) + " |",
             "|---" * (10 + len(held)) + "|"]
    for r in sorted(rows, key=lambda r: (r["variant"], r["bpp_payload"])):
        lines.append(f"| {r['name']} | {r['variant']} | {r['lambda_p']:g} | {r['lambda_s']:g} | {r['bpp_whole']:.3f} | "
                     f"{r['bpp_payload']:.3f} | {r['psnr_db']:.2f} | {r['ssim']:.3f} | {r['ms_ssim']:.3f} | "
                     f"{100 * r['accuracy']:.1f} | " + " | ".join(f"{100 * r[k]:.1f}" for k in held) + " |")
    lines.append(f"| clean images | - | | | | | ∞ | 1 | 1 | {100 * clean['accuracy']:.1f} | "
                 + " | ".join(f"{100 * clean[k]:.1f}" for k in held) + " |")
    atomic_write_text(out / "codec_table.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    for metric, label, fname in (("psnr_db", "PSNR (dB)", "rate_psnr.png"), ("accuracy", "accuracy (training classifier)",
                                                                             "rate_accuracy.png")):
        fig, ax = plt.subplots(figsize=(5.5, 4))
        for variant, style in (("mse-only", "o-"), ("tosc-sr", "s-"), ("task-only", "^-")):
            pts = sorted((r["bpp_payload"], r[metric]) for r in rows if r["variant"] == variant)
            if pts:
                ax.plot(*zip(*pts), style, label=variant)
        ax.set_xlabel("bpp (payload, actual bytes)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
        ax.set_title(f"Fashion-MNIST test ({n} images)")
        fig.tight_layout()
        import io as _io

        buf = _io.BytesIO()
        fig.savefig(buf, format="png", dpi=110)
        plt.close(fig)
        from tosc.io import atomic_write_bytes

        atomic_write_bytes(out / fname, buf.getvalue())
    print(f"wrote {out}/")


if __name__ == "__main__":
    torch.set_num_threads(max(1, torch.get_num_threads()))
    main()
