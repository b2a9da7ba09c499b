"""Plots and the self-contained HTML report of an evaluation folder."""

from __future__ import annotations

import base64
import html
import io
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..io import atomic_write_bytes, atomic_write_text, load_image_arrays
from ..results import ResultRecord

__all__ = ["write_report"]

_METRICS = (("psnr_db", "PSNR (dB)"), ("accuracy", "accuracy, training-time classifier"),
            ("accuracy_classifier-mlp", "accuracy, held-out MLP"),
            ("accuracy_classifier-resnet", "accuracy, held-out ResNet"), ("failure_rate", "failure rate"))


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def _style(system: str) -> dict:
    return {"linestyle": "--" if system.endswith("+ideal") else "-", "marker": "o", "markersize": 3}


def _plots(records: list[ResultRecord]) -> dict[str, bytes]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots: dict[str, bytes] = {}
    by_channel_cbr = defaultdict(list)
    for r in records:
        by_channel_cbr[(r.channel.kind, r.rate.cbr)].append(r)
    for (channel, cbr), group in sorted(by_channel_cbr.items()):
        for key, label in _METRICS:
            fig, ax = plt.subplots(figsize=(6, 4))
            for system in sorted({r.system for r in group}):
                pts = sorted((r.channel.snr_db, r.metrics.get(key)) for r in group if r.system == system)
                pts = [(x, y if y is not None else np.nan) for x, y in pts]
                ax.plot(*zip(*pts), label=system, **_style(system))
            ax.set_xlabel("SNR (dB)")
            ax.set_ylabel(label)
            ax.set_title(f"{channel}, CBR {cbr:.4g} (dashed: ideal capacity-bound link)", fontsize=9)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=6)
            fig.tight_layout()
            plots[f"{key}_vs_snr_{channel}_cbr{cbr:.4g}.png"] = _png(fig)
    by_channel_snr = defaultdict(list)
    for r in records:
        by_channel_snr[(r.channel.kind, r.channel.snr_db)].append(r)
    for (channel, snr), group in sorted(by_channel_snr.items()):
        if len({r.rate.cbr for r in group}) < 2:
            continue
        for key, label in _METRICS[:2]:
            fig, ax = plt.subplots(figsize=(6, 4))
            for system in sorted({r.system for r in group}):
                pts = sorted((r.rate.cbr, r.metrics.get(key)) for r in group if r.system == system)
                pts = [(x, y if y is not None else np.nan) for x, y in pts]
                ax.plot(*zip(*pts), label=system, **_style(system))
            ax.set_xscale("log", base=2)
            ax.set_xlabel("channel bandwidth ratio k/n")
            ax.set_ylabel(label)
            ax.set_title(f"{channel}, SNR {snr:g} dB", fontsize=9)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=6)
            fig.tight_layout()
            plots[f"{key}_vs_cbr_{channel}_snr{snr:g}.png"] = _png(fig)
    return plots


def _examples_grid(folder: Path) -> bytes | None:
    files = sorted((folder / "examples").glob("*.npz"))
    if not files:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # one row per system, at its best-quality point in the folder
    best: dict[str, tuple[float, Path]] = {}
    for f in files:
        system = f.name.split("_")[0]
        arrays = load_image_arrays(f)
        score = float(arrays["ok"].mean()) if "ok" in arrays else 0.0
        snr = float(f.name.split("_snr")[1].split("_")[0])
        if system not in best or (score, snr) > best[system][0]:
            best[system] = ((score, snr), f)
    systems = sorted(best)
    n = 8
    fig, axes = plt.subplots(len(systems), n, figsize=(n * 0.9, len(systems) * 0.95 + 0.3), squeeze=False)
    for row, system in enumerate(systems):
        arrays = load_image_arrays(best[system][1])
        for col in range(n):
            ax = axes[row][col]
            ax.axis("off")
            if col < len(arrays["images"]):
                img = arrays["images"][col]
                ax.imshow(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0), cmap="gray", vmin=0, vmax=1)
        axes[row][0].set_title(best[system][1].stem, fontsize=5, loc="left")
    fig.tight_layout()
    return _png(fig)


def write_report(folder: str | Path, records: list[ResultRecord]) -> Path:
    """Write FOLDER/plots/*.png and FOLDER/report.html (images embedded, opens offline)."""
    folder = Path(folder)
    plots = _plots(records)
    for name, data in plots.items():
        atomic_write_bytes(folder / "plots" / name, data)
    examples = _examples_grid(folder)
    if examples is not None:
        atomic_write_bytes(folder / "plots" / "examples.png", examples)
    keys = ["psnr_db", "ms_ssim", "accuracy", "accuracy_classifier-mlp", "accuracy_classifier-resnet", "failure_rate"]
    rows = []
    for r in records:
        cells = [r.system, r.channel.kind, f"{r.channel.snr_db:g}", f"{r.rate.cbr:.4g}",
                 f"{r.rate.payload_bits_per_image:.0f}", f"{r.rate.channel_uses_per_image:.1f}"]
        cells += ["—" if r.metrics.get(k) is None else f"{r.metrics[k]:.3f}" for k in keys]
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    header = ["system", "channel", "SNR dB", "CBR", "bits/image", "channel uses/image", *keys]
    img = lambda data, alt: f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'  # noqa: E731
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>tosc evaluation report</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:12px}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}td:first-child{text-align:left}"
        "img{max-width:48%;margin:4px}</style></head><body>",
        "<h1>tosc evaluation report</h1>",
        f"<p>{len(records)} operating points, {len({r.system for r in records})} systems, "
        f"{records[0].n_images if records else 0} {html.escape(records[0].dataset if records else '')} images per point. "
        "Dashed lines: the ideal capacity-bound link. Failed images show the training-set mean image.</p>",
        "<h2>Results</h2><table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>",
        *rows, "</table><h2>Plots</h2>",
        *[img(data, name) for name, data in plots.items()],
    ]
    if examples is not None:
        parts += ["<h2>Example reconstructions</h2><p>First 8 test images, each system at its best point.</p>",
                  img(examples, "examples")]
    parts.append("</body></html>")
    atomic_write_text(folder / "report.html", "\n".join(parts))
    return folder / "report.html"
