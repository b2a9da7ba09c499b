"""Plots and the self-contained HTML report of an evaluation folder.

Line styles say what a curve is: dashed for the ideal capacity-bound link (a bound, drawn
beside the real links), solid for real systems, digital (LDPC + QAM) or analog (JSCC).
Analog systems send no bits, so their rate columns read "NA" and they have no rate curve.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections import defaultdict
from fractions import Fraction
from pathlib import Path

import numpy as np

from .. import registry
from ..errors import DataError, DatasetNotFoundError
from ..io import atomic_write_bytes, atomic_write_text, load_image_arrays
from ..results import ResultRecord
from .bd import bd_table, rate_curve, record_mode
from .targets import GENERALISATION_METRICS, check_targets

__all__ = ["write_report", "summary_maps", "panel_plots", "system_styles", "format_value", "short_name", "METRICS",
           "SCENE_METRICS"]



def _scene_metrics() -> tuple[tuple[str, str], ...]:
    """(metric key, label) of every scene task (task metadata ``images="scenes"``), as
    :func:`tosc.tasks.scene_scores.score_scenes` names them."""
    out = []
    for name in registry.select("task", images="scenes"):
        meta = registry.meta_of("task", name)
        role = "held-out" if meta.get("role") == "held-out" else "training-time"
        output = meta.get("output")
        if output == "boxes":
            out += [("det_map_50", f"detection mAP@0.5, {role} {name}"),
                    ("det_map", f"detection mAP@[.5:.95], {role} {name}")]
        elif output == "present":
            out += [(f"scene_exact_{name}", f"exact-set accuracy, {role} {name}"),
                    (f"scene_f1_{name}", f"mean F1, {role} {name}")]
        elif output == "scene-mask":
            out.append(("scene_seg_iou", f"scene segmentation IoU, {role} {name}"))
    order = ("det_", "scene_exact_", "scene_f1_", "scene_seg")  # detection first, as in the README tables
    return tuple(sorted(out, key=lambda kv: next(i for i, p in enumerate(order) if kv[0].startswith(p))))


SCENE_METRICS = _scene_metrics()
METRICS = (("psnr_db", "PSNR (dB)"), ("ms_ssim", "MS-SSIM"), ("accuracy", "accuracy, training-time classifier"),
           *((f"accuracy_{name}", f"accuracy, held-out {name}")
             for name in registry.select("task", role="held-out", output="class")),
           ("seg_iou", "segmentation IoU, held-out U-Net"), *SCENE_METRICS, ("failure_rate", "failure rate"))
_SCENE_KEYS = tuple(k for k, _ in SCENE_METRICS)
_LABELS = dict(METRICS)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def _modes(records: list[ResultRecord]) -> dict[str, str]:
    return {r.system: record_mode(r) for r in records}


_MARKERS = "os^vD<>pP*hX"


def system_styles(modes: dict[str, str]) -> dict[str, dict]:
    """Matplotlib line keywords per system, the same in every plot of a report: a colour of its
    own from the 20 of ``tab20``, dark shades first to the proposed systems, then the learned
    baselines, the classic codecs and the bounds (a second marker past 20 systems),
    squares for analog systems, dashed for the ideal and finite-blocklength bound links, thick
    for the proposed systems.

    modes: system name -> record mode (``digital``, ``analog`` or ``ideal``), as :func:`_modes`."""
    from .summary import is_proposed

    def rank(system: str) -> tuple[int, str]:  # the dark shades go to the systems one compares most
        group = (3 if modes[system] == "ideal" else 0 if is_proposed(system) else
                 2 if registry.meta_of("system", system).get("family") == "classic" else 1)
        return group, system

    out = {}
    for i, system in enumerate(sorted(modes, key=rank)):
        proposed = rank(system)[0] == 0  # a proposed system on a real link: the bounds are group 3
        out[system] = {"color": _TAB20[i % 20], "marker": _MARKERS[(i // 20 + (modes[system] == "analog")) % len(_MARKERS)],
                       "markersize": 3, "linewidth": 2.0 if proposed else 1.0,
                       "linestyle": "--" if modes[system] == "ideal" else "-"}
    return out


# tab20: its ten dark shades, then its ten light ones
_TAB20 = tuple(f"#{c}" for c in ("1f77b4", "ff7f0e", "2ca02c", "d62728", "9467bd", "8c564b", "e377c2", "7f7f7f",
                                 "bcbd22", "17becf", "aec7e8", "ffbb78", "98df8a", "ff9896", "c5b0d5", "c49c94",
                                 "f7b6d2", "c7c7c7", "dbdb8d", "9edae5"))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _line_plot(group: list[ResultRecord], modes: dict[str, str], x_of, key: str, xlabel: str, title: str,
               log2_x: bool = False) -> bytes | None:
    plt = _pyplot()
    series = {}
    for system in sorted({r.system for r in group}):
        pts = sorted((x_of(r), r.metrics.get(key)) for r in group if r.system == system)
        pts = [(x, np.nan if y is None else y) for x, y in pts]
        if not all(math.isnan(y) for _, y in pts):
            series[system] = pts
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    styles = system_styles(modes)
    for system, pts in series.items():
        ax.plot(*zip(*pts), label=system, **styles[system])
    if log2_x:
        ax.set_xscale("log", base=2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(_LABELS[key])
    ax.set_title(title + " (dashed: ideal capacity-bound link)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
    fig.tight_layout()
    return _png(fig)


def _plots(records: list[ResultRecord]) -> dict[str, bytes]:
    modes = _modes(records)
    plots: dict[str, bytes] = {}
    by_channel_cbr = defaultdict(list)
    for r in records:
        by_channel_cbr[(r.channel.kind, r.rate.cbr)].append(r)
    for (channel, cbr), group in sorted(by_channel_cbr.items()):
        for key, _ in METRICS:
            png = _line_plot(group, modes, lambda r: r.channel.snr_db, key, "SNR (dB)", f"{channel}, CBR {cbr:.4g}")
            if png is not None:
                plots[f"{key}_vs_snr_{channel}_cbr{cbr:.4g}.png"] = png
    by_channel_snr = defaultdict(list)
    for r in records:
        by_channel_snr[(r.channel.kind, r.channel.snr_db)].append(r)
    for (channel, snr), group in sorted(by_channel_snr.items()):
        if len({r.rate.cbr for r in group}) < 2:
            continue
        for key, _ in METRICS[:-1]:
            png = _line_plot(group, modes, lambda r: r.rate.cbr, key, "channel bandwidth ratio k/n",
                             f"{channel}, SNR {snr:g} dB", log2_x=True)
            if png is not None:
                plots[f"{key}_vs_cbr_{channel}_snr{snr:g}.png"] = png
    for channel in sorted({r.channel.kind for r in records}):
        for key in ("psnr_db", "accuracy", *GENERALISATION_METRICS, *_SCENE_KEYS):
            png = _rate_plot(records, modes, channel, key)
            if png is not None:
                plots[f"{key}_vs_bpp_{channel}.png"] = png
    return plots


def panel_plots(records: list[ResultRecord]) -> dict[str, bytes]:
    """One figure per metric and axis with every system: ``panel_<metric>_vs_snr.png`` (a row
    per channel, a column per CBR) and ``panel_<metric>_vs_cbr.png`` (a row per channel, a
    column per SNR)."""
    plt = _pyplot()
    modes = _modes(records)
    systems = sorted(modes)
    styles = system_styles(modes)
    channels = sorted({r.channel.kind for r in records})
    out: dict[str, bytes] = {}
    for key in ("psnr_db", "accuracy", *GENERALISATION_METRICS, *_SCENE_KEYS):
        if not any(r.metrics.get(key) is not None for r in records):
            continue
        for axis, other, x_of, other_of in (("snr", "cbr", lambda r: r.channel.snr_db, lambda r: r.rate.cbr),
                                            ("cbr", "snr", lambda r: r.rate.cbr, lambda r: r.channel.snr_db)):
            columns = sorted({other_of(r) for r in records})
            if axis == "cbr" and len({r.rate.cbr for r in records}) < 2:
                continue
            fig, axes = plt.subplots(len(channels), len(columns), figsize=(3.1 * len(columns), 2.5 * len(channels)),
                                     squeeze=False, sharey=True)
            for i, channel in enumerate(channels):
                for j, column in enumerate(columns):
                    ax = axes[i][j]
                    for system in systems:
                        pts = sorted((x_of(r), r.metrics.get(key)) for r in records if r.system == system
                                     and r.channel.kind == channel and other_of(r) == column
                                     and r.metrics.get(key) is not None)
                        if pts:
                            ax.plot(*zip(*pts), label=system, **styles[system])
                    if axis == "cbr":
                        ax.set_xscale("log", base=2)
                    title = f"CBR {Fraction(column).limit_denominator(4096)}" if axis == "snr" else f"{column:g} dB"
                    ax.set_title(f"{channel}, {title}", fontsize=8)
                    ax.tick_params(labelsize=7)
                    ax.grid(alpha=0.3)
            for ax in axes[-1]:
                ax.set_xlabel("SNR (dB)" if axis == "snr" else "CBR k/n", fontsize=8)
            for row in axes:
                row[0].set_ylabel(_LABELS.get(key, key), fontsize=8)
            handles, labels = axes[0][0].get_legend_handles_labels()
            fig.legend(handles, labels, loc="lower center", ncol=min(6, len(labels)), fontsize=7)
            fig.tight_layout(rect=(0, 0.04 + 0.012 * math.ceil(len(labels) / 6), 1, 1))
            out[f"panel_{key}_vs_{axis}.png"] = _png(fig)
    return out


def _rate_plot(records: list[ResultRecord], modes: dict[str, str], channel: str, key: str) -> bytes | None:
    """Operational rate curves (bd.rate_curve) with every measured point behind them."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    drawn = False
    styles = system_styles(modes)
    for system in sorted(s for s, m in modes.items() if m != "analog"):
        curve = rate_curve(records, system, channel, key)
        if not len(curve):
            continue
        color = styles[system]["color"]
        pts = [(r.rate.bpp, r.metrics[key]) for r in records if r.system == system and r.channel.kind == channel
               and r.rate.bpp > 0 and r.metrics.get(key) is not None]
        ax.scatter(*zip(*pts), s=6, color=color, alpha=0.4)
        ax.plot(curve.bpp, curve.quality, label=system, **styles[system])
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xscale("log")
    ax.set_xlabel("rate (payload bits per pixel, actual bytes)")
    ax.set_ylabel(_LABELS[key])
    ax.set_title(f"{channel}: operational rate curves (upper envelope of all points; dashed: ideal link)", fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
    fig.tight_layout()
    return _png(fig)


def _originals(arrays: dict, record: ResultRecord | None) -> np.ndarray | None:
    """The clean images the example row shows (by their dataset indices), if the dataset is here."""
    if record is None or "indices" not in arrays:
        return None
    from ..data import load_dataset

    try:
        data = load_dataset(record.dataset, record.split)
    except (DatasetNotFoundError, DataError):  # a report of someone else's run, without the dataset
        return None
    return data.images[np.asarray(arrays["indices"], dtype=np.int64)].numpy()


def _examples_grid(folder: Path, records: list[ResultRecord]) -> bytes | None:
    files = sorted((folder / "examples").glob("*.npz"))
    if not files:
        return None
    plt = _pyplot()
    # one row per system, at its best-quality point in the folder
    best: dict[str, tuple[tuple[float, float], Path]] = {}
    for f in files:
        system = f.name.split("_")[0]
        arrays = load_image_arrays(f)
        score = float(arrays["ok"].mean()) if "ok" in arrays else 0.0
        snr = float(f.name.split("_snr")[1].split("_")[0])
        if system not in best or (score, snr) > best[system][0]:
            best[system] = ((score, snr), f)
    systems = sorted(best)
    first = load_image_arrays(best[systems[0]][1])
    originals = _originals(first, records[0] if records else None)
    rows = ([("clean (sent)", originals)] if originals is not None else []) + \
        [(best[s][1].stem, load_image_arrays(best[s][1])["images"]) for s in systems]
    n = 8
    fig, axes = plt.subplots(len(rows), n, figsize=(n * 0.9, len(rows) * 0.95 + 0.3), squeeze=False)
    for row, (title, images) in enumerate(rows):
        for col in range(n):
            ax = axes[row][col]
            ax.axis("off")
            if col < len(images):
                img = images[col]
                ax.imshow(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0), cmap="gray", vmin=0, vmax=1)
        axes[row][0].set_title(title, fontsize=5, loc="left")
    fig.tight_layout()
    return _png(fig)


def format_value(value, spec: str = ".3f") -> str:
    """``value`` formatted by ``spec``, or a dash for a missing value (None or NaN)."""
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def _table(header: list[str], rows: list[list[str]]) -> str:
    return ("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"
            + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
            + "</table>")


def _results_table(records: list[ResultRecord]) -> str:
    keys = [k for k, _ in METRICS if any(r.metrics.get(k) is not None for r in records)]
    rows = []
    for r in records:
        analog = record_mode(r) == "analog"
        rows.append([r.system, record_mode(r), r.channel.kind, f"{r.channel.snr_db:g}",
                     str(Fraction(r.rate.cbr).limit_denominator(4096)),
                     "NA" if analog else f"{r.rate.payload_bits_per_image:.0f}",
                     "NA" if analog else f"{r.rate.bpp:.4f}", format_value(r.rate.channel_uses_per_image, ".1f"),
                     *[format_value(r.metrics.get(k)) for k in keys]])
    return _table(["system", "mode", "channel", "SNR dB", "CBR", "bits/image", "bpp", "channel uses/image", *keys], rows)


def _tosc_systems(records: list[ResultRecord]) -> list[str]:
    return sorted({r.system for r in records
                   if registry.meta_of("system", r.system).get("proposed") and record_mode(r) != "analog"})


def _bd_section(records: list[ResultRecord]) -> str:
    rows = []
    for test in _tosc_systems(records):
        for bd in bd_table(records, test):
            rows.append([bd.test, bd.anchor, bd.channel, format_value(bd.bd_rate_pct, "+.1f"), format_value(bd.bd_quality, "+.2f"),
                         format_value(bd.rate_overlap, ".0%"), format_value(bd.quality_overlap, ".0%"),
                         f"{bd.n_test} / {bd.n_anchor}", bd.note])
    if not rows:
        return "<p>No digital or ideal-link TOSC-SR system with a baseline on the same link in this folder.</p>"
    return ("<p>Bjøntegaard deltas of TOSC-SR (test) against each baseline (anchor) on the same link, on their "
            "operational rate curves (rate: actual payload bpp; quality: PSNR; PCHIP, as in the JVET CTC sheet). "
            "Negative BD-rate and positive BD-PSNR favour TOSC-SR. Overlap: share of the joint log-rate "
            "(BD-PSNR) or PSNR (BD-rate) range both curves cover; small overlaps make the numbers extrapolations "
            "of very little data.</p>"
            + _table(["test", "anchor", "channel", "BD-rate %", "BD-PSNR dB", "rate overlap", "PSNR overlap",
                      "rate points", "note"], rows))


def _generalisation_section(records: list[ResultRecord]) -> str:
    rows = []
    for test in _tosc_systems(records):
        anchor = test.replace("tosc-sr", "mse-only", 1)
        for metric in ("accuracy", *GENERALISATION_METRICS, *_SCENE_KEYS):
            for bd in [b for b in bd_table(records, test, metric) if b.anchor == anchor]:
                rows.append([test, anchor, bd.channel, _LABELS[metric], format_value(bd.bd_quality, "+.4f"),
                             format_value(bd.rate_overlap, ".0%"), f"{bd.n_test} / {bd.n_anchor}", bd.note])
    intro = ("<p>The codecs were trained with the classifier-cnn term only (on scenes: scene-classifier-cnn). "
             "The held-out classifiers and the U-Net segmenter (IoU of the item mask predicted on the received image "
             "against the mask of the clean image) were never used in codec training; on scenes neither were the "
             "detector (mAP against the scenes' boxes), the HOG scene classifier and the scene segmenter. BD of the "
             "metric: the mean gain of TOSC-SR over the MSE-only codec at equal rate, over the overlapping log-rate "
             "range.</p>")
    return intro + (_table(["test", "anchor", "channel", "metric", "BD (metric units)", "rate overlap", "rate points",
                            "note"], rows) if rows else "<p>No TOSC-SR / MSE-only pair in this folder.</p>")


def _task_networks_note(records: list[ResultRecord]) -> str:
    """Which network scored each task metric (the records' ``config["task_networks"]``)."""
    named: dict[str, set[str]] = defaultdict(set)
    for r in records:
        for metric, network in (r.config.get("task_networks") or {}).items():
            named[metric].add(str(network))
    if not named:
        return ""
    rows = [[metric, ", ".join(sorted(named[metric]))] for metric in sorted(named)]
    return "<p>Task networks behind the scene metrics (from the records):</p>" + _table(["metric", "network"], rows)


def _margin_colour(margin: float, scale: float) -> str:
    """Green where the proposed systems lead, red where a baseline does; paler when close."""
    if math.isnan(margin):
        return "#eeeeee"
    strength = min(1.0, abs(margin) / scale) if scale > 0 else 1.0
    light = int(235 - 110 * strength)
    return f"rgb({light},235,{light})" if margin >= 0 else f"rgb(235,{light},{light})"


def short_name(system: str | None) -> str:
    """A system's name in a win map's cell: without "-payload" and "+ldpc" (a dash for none)."""
    return "—" if system is None else system.replace("-payload", "").replace("+ldpc", "")


def summary_maps(records: list[ResultRecord]) -> str:
    """HTML: per metric, how many points the proposed systems win, and one small SNR x CBR map
    per channel; each cell names the winner (best proposed vs best baseline on real links)
    with its value, coloured by the margin."""
    from .summary import is_proposed, win_counts, win_map

    metrics = [(k, _LABELS.get(k, k)) for k in ("psnr_db", "accuracy", *GENERALISATION_METRICS, *_SCENE_KEYS)
               if any(r.metrics.get(k) is not None for r in records)]
    proposed = sorted({r.system for r in records if is_proposed(r.system) and record_mode(r) != "ideal"})
    out = [f"<p>Proposed systems: {html.escape(', '.join(proposed) or 'none')}. Each map compares, at every "
           "point, the best proposed system with the best baseline on a real link (the ideal and "
           "finite-blocklength bounds are left out). Cell: the winner and its value, margin in brackets; "
           "green: a proposed system leads, red: a baseline leads; darker: a larger margin.</p><div class='maps'>"]
    for key, label in metrics:
        won, compared = win_counts(records, key)
        cells = win_map(records, key)
        if not cells:
            continue
        scale = 3.0 if key == "psnr_db" else 0.1
        out.append(f"<div class='block'><h3>{html.escape(label)}: proposed systems lead at {won} of {compared} "
                   "points</h3><div class='maps'>")
        for channel in sorted({c.channel for c in cells}):
            mine = [c for c in cells if c.channel == channel]
            snrs = sorted({c.snr_db for c in mine}, reverse=True)
            cbrs = sorted({c.cbr for c in mine})
            at = {(c.snr_db, c.cbr): c for c in mine}
            rows = ["<tr><th>SNR \\ CBR</th>" + "".join(
                f"<th>{Fraction(b).limit_denominator(4096)}</th>" for b in cbrs) + "</tr>"]
            for snr in snrs:
                row = [f"<th>{snr:g} dB</th>"]
                for cbr in cbrs:
                    c = at.get((snr, cbr))
                    if c is None:
                        row.append("<td></td>")
                        continue
                    fmt = ".1f" if key == "psnr_db" else ".2f"
                    value = c.proposed_value if c.winner == c.proposed else c.baseline_value
                    row.append(f"<td class='cell' style='background:{_margin_colour(c.margin, scale)}' "
                               f"title='{html.escape(c.where)}: {html.escape(str(c.proposed))} "
                               f"{format_value(c.proposed_value)} vs {html.escape(str(c.baseline))} {format_value(c.baseline_value)}'>"
                               f"{html.escape(short_name(c.winner))}<br>{format_value(value, fmt)} ({format_value(c.margin, '+' + fmt)})"
                               "</td>")
                rows.append("<tr>" + "".join(row) + "</tr>")
            out.append(f"<table class='map'><caption>{html.escape(channel)}</caption>{''.join(rows)}</table>")
        out.append("</div></div>")
    return "".join(out) + "</div>"


def write_report(folder: str | Path, records: list[ResultRecord]) -> Path:
    """Write FOLDER/plots/*.png and FOLDER/report.html (images embedded, opens offline)."""
    folder = Path(folder)
    plots = _plots(records)
    plots.update(panel_plots(records))
    for name, data in plots.items():
        atomic_write_bytes(folder / "plots" / name, data)
    examples = _examples_grid(folder, records)
    if examples is not None:
        atomic_write_bytes(folder / "plots" / "examples.png", examples)
    img = lambda data, alt: f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'  # noqa: E731

    def section(kinds: tuple[str, ...]) -> list[str]:
        return [img(data, name) for name, data in plots.items() if name.startswith(kinds)]

    checks = check_targets(records) if any(r.system == "tosc-sr+ldpc" for r in records) else []
    targets = "".join(f"<p><b>({c.name}) {c.verdict}</b>: {html.escape(c.description)}</p><ul>"
                      + "".join(f"<li>{html.escape(d)}</li>" for d in c.details) + "</ul>" for c in checks)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>tosc evaluation report</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:12px}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}td:first-child{text-align:left}"
        "img{max-width:48%;margin:4px}li{font-size:12px}.maps{display:flex;flex-wrap:wrap;gap:12px}"
        "table.map{font-size:11px}table.map td.cell{text-align:center;min-width:84px}"
        "caption{font-weight:bold;text-align:left}h3{font-size:13px;margin:10px 0 4px}"
        ".block{border:1px solid #ddd;padding:4px 8px}</style></head><body>",
        "<h1>tosc evaluation report</h1>",
        f"<p>{len(records)} operating points, {len({r.system for r in records})} systems, "
        f"{records[0].n_images if records else 0} {html.escape(records[0].dataset if records else '')} images per point"
        f"{f', seed {records[0].seed}, git commit {html.escape(records[0].git_commit[:12])}' if records else ''}. "
        "Solid lines: real systems (digital LDPC + QAM, or analog JSCC); dashed lines: the ideal capacity-bound link "
        "beside them. Failed images show the training-set mean image. Analog systems send no bits (rate NA).</p>",
        "<h2>At a glance: who wins where</h2>", summary_maps(records),
        "<h2>Targets</h2>" + (targets or "<p>No tosc-sr+ldpc records here.</p>"),
        "<h2>Results</h2>", _results_table(records),
        "<h2>Image quality and task accuracy vs SNR and vs channel bandwidth ratio</h2>",
        *section(("psnr_db_vs_snr", "ms_ssim_vs_snr", "accuracy_vs_snr", "failure_rate_vs_snr",
                  "psnr_db_vs_cbr", "ms_ssim_vs_cbr", "accuracy_vs_cbr")),
        "<h2>Rate curves and Bjøntegaard deltas</h2>", _bd_section(records),
        *section(("psnr_db_vs_bpp", "accuracy_vs_bpp")),
        "<h2>Multi-task generalisation: held-out networks and segmentation</h2>", _generalisation_section(records),
        *section(("accuracy_classifier", "seg_iou")),
    ]
    if any(r.metrics.get(k) is not None for r in records for k in _SCENE_KEYS):
        parts += ["<h2>Scenes: detection, scene classification and segmentation</h2>", _task_networks_note(records),
                  *section(tuple(f"{k}_vs_" for k in _SCENE_KEYS))]
    if examples is not None:
        parts += ["<h2>Example reconstructions</h2><p>The first 8 test images as sent, then each system at its "
                  "best point in this folder.</p>", img(examples, "examples")]
    parts.append("</body></html>")
    atomic_write_text(folder / "report.html", "\n".join(parts))
    return folder / "report.html"
