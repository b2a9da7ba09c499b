#!/usr/bin/env python
"""Codec v3 against the classic codecs on the same Fashion-MNIST test images, in one run.

    .venv/bin/python scripts/codec_v3_report.py --codecs mse-only-v3 tosc-sr-v3 --limit 1000 --out docs/codec_v3

``--classic`` with no names skips the classic codecs (v3 against v3 and the semantic verdict
only); ``--codecs`` also takes checkpoint paths.

For each v3 checkpoint, a sweep of its quality index; for each classic codec (payload
bytes plus its quality-index bits, the rule of the digital systems), a sweep of its quality
knob, all on the first ``--limit`` test images. Rate = mean payload bits per pixel (real
bytes; v3 streams without their trailing zero bits), quality = mean per-image PSNR, plus
the accuracy of the training classifier and of every held-out classifier on the decoded
images. Then the Bjontegaard deltas of each v3 codec against each classic codec (pchip,
``tosc.evaluation.bd``), PSNR at VVC's own operating points, and TOSC-SR against MSE-only
at equal rate, and the first v3 codec against the old fixed-rate family (``--family``, by
default its three lowest-rate MSE-only models) at their own rates. Writes OUT/codec_v3.json (with config, versions, git commit), OUT/table.md,
OUT/rate_psnr.png and OUT/rate_accuracy.png. Classic encodes are cached on disk
(``tosc.source_coding.classic.table``), so a rerun is fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import math
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

V3_QUALITIES = list(range(0, 128, 8)) + [127]  # the transform codec; every predictive step and global level is added
MODE_NAMES = ("transform", "predictive", "global")


def pareto_rows(rows: list[dict]) -> list[dict]:
    """The rows no other row beats in both rate and PSNR, by rate: a codec with two modes (the
    transform codec's and the predictive indices of v3) as its encoder would use it."""
    out: list[dict] = []
    for r in sorted(rows, key=lambda r: (r["bpp"], -r["psnr_db"])):
        if not out or r["psnr_db"] > out[-1]["psnr_db"]:
            out.append(r)
    return out


def _classic_qualities(codec, points: int = 12) -> list[int]:
    """``points`` quality settings spread over the codec's whole knob."""
    return sorted(set(np.linspace(codec.quality_min, codec.quality_max, points).round().astype(int).tolist()))


def warm_classic(names, x: torch.Tensor, jobs: int) -> int:
    """Fill the disk cache with every classic encode the report needs (each codec's
    :func:`_classic_qualities` for the images ``x``), ``jobs`` processes over chunks of images
    (:func:`~tosc.source_coding.classic.table.fill_table`). Returns how many real encodes were made."""
    from tosc.source_coding import classic
    from tosc.source_coding.classic.table import RateCache, RateTable, fill_table

    calls = 0
    for name in names:
        codec = classic.get_codec(name)
        calls += fill_table(RateTable(codec, RateCache()), x, [], "payload", qualities=_classic_qualities(codec),
                            jobs=jobs)
    return calls


def classic_rows(names, x: torch.Tensor, scores, cache) -> tuple[dict[str, list[dict]], int]:
    """Each classic codec's rows over its whole quality knob for the images ``x`` (N x C x H x W
    in [0, 1]): {"quality", "bpp" (payload plus quality-index bits), **scores(decoded)}.
    ``cache``: a :class:`~tosc.source_coding.classic.table.RateCache` (or None), so a second
    report, or the evaluation grid, encodes nothing twice. Also returns how many real encodes
    were made."""
    from tosc.source_coding import classic
    from tosc.source_coding.classic.table import RateTable

    n, c, h, w = x.shape
    rows: dict[str, list[dict]] = {}
    encodes = 0
    for name in names:
        codec = classic.get_codec(name)
        table = RateTable(codec, cache)
        index_bits = codec.quality_index_bits
        rows[name] = []
        keys = [table.key_of(img) for img in x]
        for q in tqdm(_classic_qualities(codec), desc=name):
            entries = [table.entry(img, q, key=k) for img, k in zip(x, keys)]
            decoded = torch.stack([table.decoded_tensor(e.decoded) for e in entries]).reshape(n, c, h, w)
            payload = np.array([8 * e.payload_bytes + index_bits for e in entries])
            rows[name].append({"quality": q, "bpp": float(payload.mean() / (h * w)), **scores(decoded)})
        encodes += table.encoder_calls
        table.forget_memory()
    return rows, encodes


class RowStore:
    """Finished rows in ``folder/<name>.json`` under a key of everything they depend on, so an
    interrupted report (the 10k one runs for about an hour) resumes where it stopped.
    ``base``: the key parts every codec shares (the images, the judging networks, this script's
    source); a codec adds its own (checkpoint digest or classic codec key)."""

    def __init__(self, folder: Path | None, base: list[str]) -> None:
        self.folder, self.base = folder, base

    def _key(self, parts: list[str]) -> str:
        return hashlib.sha256("\n".join(self.base + parts).encode()).hexdigest()

    def rows(self, name: str, parts: list[str], compute) -> list[dict]:
        """The rows of ``name``: stored ones when their key matches, else ``compute()`` (stored)."""
        import json

        from tosc.io import atomic_write_json

        if self.folder is None:
            return compute()
        file, key = self.folder / f"{name.replace('/', '_')}.json", self._key(parts)
        if file.exists():
            try:
                stored = json.loads(file.read_text())
                if stored.get("key") == key:
                    return stored["rows"]
            except (OSError, ValueError):
                pass  # unreadable: computed again
        rows = compute()
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_json(file, {"key": key, "rows": rows})
        return rows


def semantic_verdict(semantic: list[dict], clean: dict, n: int, training: str, held_out: list[str]) -> dict:
    """The issue's criteria on equal-rate pairs: where MSE-only is >= 2 points below clean on
    the training network, TOSC-SR closes >= half the gap at <= 0.3 dB PSNR cost; each held-out
    network gains on average and loses nowhere by more than one standard error."""
    def se(p1: float, p2: float) -> float:
        return math.sqrt((p1 * (1 - p1) + p2 * (1 - p2)) / n)

    key = f"acc_{training}"
    gaps = []
    for s in semantic:
        gap = clean[key] - s["mse_only"][key]
        if gap >= 0.02:
            closed = (s["tosc_sr"][key] - s["mse_only"][key]) / gap
            cost = s["mse_only"]["psnr_db"] - s["tosc_sr"]["psnr_db"]
            gaps.append({"bpp": s["bpp"], "gap_points": 100 * gap, "closed_pct": 100 * closed,
                         "psnr_cost_db": cost, "meets": bool(closed >= 0.5 and cost <= 0.3)})
    held = {}
    for k in held_out:
        gains = [s["tosc_sr"][f"acc_{k}"] - s["mse_only"][f"acc_{k}"] for s in semantic]
        if not gains:
            continue
        worst = int(np.argmin(gains))
        err = se(semantic[worst]["mse_only"][f"acc_{k}"], semantic[worst]["tosc_sr"][f"acc_{k}"])
        held[k] = {"mean_gain_points": 100 * float(np.mean(gains)), "worst_gain_points": 100 * gains[worst],
                   "worst_bpp": semantic[worst]["bpp"], "se_points": 100 * err,
                   "meets": bool(np.mean(gains) > 0 and gains[worst] >= -err)}
    return {"gap_rows": gaps, "held_out": held,
            "all_met": bool(gaps and all(g["meets"] for g in gaps) and all(h["meets"] for h in held.values()))}


def equal_rate(mse_rows: list[dict], sr_rows: list[dict]) -> list[dict]:
    """TOSC-SR's scores at each of MSE-only's rates inside TOSC-SR's range (interpolated in
    log-rate): one entry per MSE-only row, {"bpp", "mse_only": {...}, "tosc_sr": {...}} with the
    rows' "psnr_db" and "acc_<task>" keys."""
    from tosc.evaluation.bd import value_at_rate

    tb = np.array([r["bpp"] for r in sr_rows])
    out = []
    for r in mse_rows:
        if not (tb.min() <= r["bpp"] <= tb.max()):
            continue
        entry = {"bpp": r["bpp"], "mse_only": {k: r[k] for k in r if k.startswith(("acc_", "psnr"))}}
        entry["tosc_sr"] = {k: value_at_rate(tb, [q[k] for q in sr_rows], r["bpp"]) for k in entry["mse_only"]}
        out.append(entry)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--codecs", nargs="+", default=["mse-only-v3", "tosc-sr-v3"])
    parser.add_argument("--classic", nargs="*", default=None,
                        help="classic codec names (default: all registered; --classic alone: none, v3 only)")
    parser.add_argument("--classic-from", default=None, metavar="JSON",
                        help="take the classic codecs' rows from an earlier report (its codec_v3.json) of the same "
                             "images instead of encoding them again; for comparing checkpoints quickly, not for "
                             "the README's report (which measures everything in one run)")
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--split", choices=("test", "validation"), default="test",
                        help="Fashion-MNIST split (validation: 6,000 images held out of training, for choosing "
                             "a setting before the test set judges it)")
    parser.add_argument("--jobs", type=int, default=2, help="processes for the classic encodes")
    parser.add_argument("--warm-only", action="store_true",
                        help="only fill the disk cache with the classic encodes (resumable), then exit")
    parser.add_argument("--out", default="docs/codec_v3")
    parser.add_argument("--resume", action="store_true",
                        help="keep finished rows in OUT/rows/ (per v3 quality, per classic codec) and reuse them "
                             "when nothing they depend on changed (images, checkpoint, networks, versions, this "
                             "script), so an interrupted report resumes where it stopped")
    parser.add_argument("--family", nargs="*", default=["mse-only-r1", "mse-only-r2", "mse-only-r3"],
                        help="codecs of the old fixed-rate family measured on the same images (rate: whole bytes "
                             "plus the model index, as their systems send them); the first --codecs entry is "
                             "compared with them at their rates (the issue's low-rate bar)")
    parser.add_argument("--transform-qualities", nargs="+", type=int, default=V3_QUALITIES, metavar="Q",
                        help="the transform codec's quality indices to sweep (every predictive step and global "
                             "level is added); fewer for a quick semantic verdict, which reads the mid rates only")
    parser.add_argument("--refine-steps", type=int, default=None, metavar="N",
                        help="the transform mode's refining encoder: N search steps per image (default: the "
                             "codec's, 20; 0: the fast encoder, the analysis transform's latent as it is)")
    parser.add_argument("--pair", nargs=2, default=["mse-only-v3", "tosc-sr-v3"], metavar=("MSE", "TOSC"),
                        help="the two --codecs compared at equal rate (MSE-only, TOSC-SR)")
    args = parser.parse_args()
    if not all(0 <= q < 128 for q in args.transform_qualities):
        raise SystemExit(f"error: --transform-qualities must lie in 0..127 (got {args.transform_qualities})")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tosc import registry
    from tosc.data import load_dataset
    from tosc.evaluation.bd import RateCurve, bd_metrics, upper_envelope, value_at_rate
    from tosc.io import atomic_write_json, atomic_write_text
    from tosc.metrics import psnr_db
    from tosc.provenance import git_commit, package_versions
    from tosc.source_coding.learned.conv_codec import ConvLearnedCodec, stream_bits
    from tosc.source_coding.learned.refine import encoder_key
    from tosc.tasks import HELD_OUT_TASKS, TRAINING_TASK, accuracy, load_task_network

    started = time.time()
    test = load_dataset("fashion-mnist", args.split, limit=args.limit)
    x, labels = test.images, test.labels
    classic_names = args.classic if args.classic is not None else registry.select("codec", family="classic")
    if args.warm_only or (args.jobs > 1 and not args.classic_from):
        calls = warm_classic(classic_names, x, args.jobs)
        if args.warm_only:
            print(f"cache warm for {len(x)} images: {calls} new encodes")
            return
    n, c, h, w = x.shape
    nets = {name: load_task_network(name) for name in (TRAINING_TASK, *HELD_OUT_TASKS)}

    def scores(decoded: torch.Tensor) -> dict:
        out = {"psnr_db": psnr_db(decoded, x).mean().item()}
        for name, net in nets.items():
            out[f"acc_{name}"] = accuracy(net, decoded, labels)
        return out

    clean = {f"acc_{k}": accuracy(net, x, labels) for k, net in nets.items()}
    from tosc.diskcache import file_digest, source_digest
    from tosc.zoo import codec_path, task_path

    from tosc.systems.memo import batch_key

    store = RowStore(Path(args.out) / "rows" if args.resume else None,
                     [batch_key(x).hex(), str(sorted(package_versions().items())), source_digest(__file__),
                      *(file_digest(task_path(k)) for k in nets)])

    def v3_row(codec, q: int) -> list[dict]:
        streams = codec.encode(x, q)
        decoded = codec.decode(streams, (h, w))
        bits = np.array([stream_bits(s) for s in streams])
        return [{"quality": q, "mode": int(codec.mode_of(np.array([q]))[0]),
                 "bpp": float(bits.mean() / (h * w)), **scores(decoded)}]

    rows: dict[str, list[dict]] = {}
    for name in args.codecs:
        path = Path(name) if Path(name).suffix else codec_path(name)
        codec = ConvLearnedCodec.load(name)
        if args.refine_steps is not None:
            codec.refinement = dataclasses.replace(codec.refinement, steps=args.refine_steps)
        encoder = encoder_key(codec.objective, codec.refinement)  # it shapes the transform rows
        rows[name] = []
        for q in tqdm(args.transform_qualities + list(range(128, codec.quality_levels)), desc=name):
            # one stored row per quality: at 10k images each takes about a minute
            rows[name] += store.rows(f"{name}@{q}", [file_digest(path), str(q), encoder],
                                  lambda q=q: v3_row(codec, q))

    from tosc.source_coding.learned import list_codecs
    from tosc.source_coding.learned.codec import LearnedCodec
    from tosc.systems.digital import LearnedFamilySource

    def family_rows(name: str) -> list[dict]:
        codec = LearnedCodec.load(name)
        streams = codec.encode(x)
        bits = np.array([8 * len(s) for s in streams])
        # its system sends whole bytes plus which of its variant's models wrote them, the rule
        # the classic rows follow (payload plus quality-index bits)
        index_bits = LearnedFamilySource(codec.meta["variant"]).index_bits
        return [{"quality": 0, "mode": -1, "bpp": float((bits.mean() + index_bits) / (h * w)),
                 "bpp_bytes_only": float(bits.mean() / (h * w)), "index_bits": index_bits,
                 **scores(codec.decode(streams, (h, w)))}]

    for name in args.family:  # the old fixed-rate family: one rate per checkpoint
        members = sorted(str(e.path) for e in list_codecs() if e.arch == "tiny-image-codec")
        rows[name] = store.rows(name, [file_digest(codec_path(name)), *members], lambda name=name: family_rows(name))

    from tosc.source_coding.classic.table import RateCache

    earlier = None
    if args.classic_from:
        import json

        earlier = json.loads(Path(args.classic_from).read_text())
        if (earlier.get("images") != n or earlier["config"].get("limit") != args.limit
                or earlier["config"].get("split", "test") != args.split):
            raise SystemExit(f"error: {args.classic_from} holds a report of other images "
                             f"({earlier.get('images')}, not {n})")
        missing = [name for name in classic_names if name not in earlier["rows"]]
        if missing:
            raise SystemExit(f"error: {args.classic_from} has no rows for {', '.join(missing)}")
    if earlier is not None:
        rows.update({name: earlier["rows"][name] for name in classic_names})
    else:
        from tosc.source_coding import classic
        from tosc.source_coding.classic.table import codec_key

        cache = RateCache()
        for name in classic_names:
            rows[name] = store.rows(name, [codec_key(classic.get_codec(name))],
                                    lambda name=name: classic_rows([name], x, scores, cache)[0][name])

    def curve(name: str) -> RateCurve:
        b, q = upper_envelope([(r["bpp"], r["psnr_db"]) for r in rows[name]])
        return RateCurve(name, "none", "psnr_db", b, q)

    bd = []
    for test_name in args.codecs:
        for anchor in classic_names:
            try:
                result = bd_metrics(curve(anchor), curve(test_name))
                bd.append({"test": test_name, "anchor": anchor, "bd_rate_pct": result.bd_rate_pct,
                           "bd_psnr_db": result.bd_quality, "note": getattr(result, "note", "")})
            except Exception as exc:  # noqa: BLE001 - no overlap etc.: say so in the table
                bd.append({"test": test_name, "anchor": anchor, "error": str(exc)})

    at_vvc = []
    if "vvc" in rows:
        for test_name in args.codecs:
            tb, tq = curve(test_name).bpp, curve(test_name).quality
            for r in rows["vvc"]:
                ours = value_at_rate(tb, tq, r["bpp"])
                at_vvc.append({"test": test_name, "vvc_quality": r["quality"], "bpp": r["bpp"],
                               "vvc_psnr_db": r["psnr_db"], "test_psnr_db": ours})

    against_family = []
    if args.family:  # v3 at each family codec's own rate and PSNR
        tb, tq = curve(args.codecs[0]).bpp, curve(args.codecs[0]).quality
        for name in args.family:
            r = rows[name][0]
            ours, bytes_only = value_at_rate(tb, tq, r["bpp"]), value_at_rate(tb, tq, r["bpp_bytes_only"])
            against_family.append({"test": args.codecs[0], "family": name, "bpp": r["bpp"],
                                   "bpp_bytes_only": r["bpp_bytes_only"], "family_psnr_db": r["psnr_db"],
                                   "test_psnr_db": ours, "delta_db": None if ours is None else ours - r["psnr_db"],
                                   "test_psnr_db_at_bytes_only": bytes_only,
                                   "delta_db_at_bytes_only": None if bytes_only is None else bytes_only - r["psnr_db"]})

    semantic, verdict = [], {}
    mse_name, sr_name = args.pair
    if mse_name in rows and sr_name in rows:
        semantic = equal_rate(pareto_rows(rows[mse_name]), pareto_rows(rows[sr_name]))
        verdict = semantic_verdict(semantic, clean, n, TRAINING_TASK, list(HELD_OUT_TASKS))

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"config": vars(args), "images": n, "clean": clean, "rows": rows, "bd": bd, "at_vvc_points": at_vvc,
              "against_family": against_family, "semantic_at_equal_rate": semantic, "semantic_verdict": verdict, "versions": package_versions(), "git_commit": git_commit(),
              "seconds": time.time() - started}
    atomic_write_json(out / "codec_v3.json", result)

    lines = [f"First {n} Fashion-MNIST test images; rate = mean payload bits per pixel; PSNR = mean per-image.", "",
             "| system | quality | bpp | PSNR dB | " + " | ".join(f"acc {k}" for k in nets) + " |",
             "|---|---|---|---|" + "---|" * len(nets)]
    for name, rs in rows.items():
        for r in rs:
            lines.append(f"| {name} | {r['quality']} | {r['bpp']:.3f} | {r['psnr_db']:.2f} | "
                         + " | ".join(f"{100 * r[f'acc_{k}']:.1f}" for k in nets) + " |")
    lines += ["", "| test | anchor | BD-rate % | BD-PSNR dB |", "|---|---|---|---|"]
    for b in bd:
        if "error" in b:
            lines.append(f"| {b['test']} | {b['anchor']} | n/a ({b['error']}) | |")
        else:
            lines.append(f"| {b['test']} | {b['anchor']} | {b['bd_rate_pct']:+.1f} | {b['bd_psnr_db']:+.2f} |")
    if at_vvc:
        lines += ["", "| test | VVC QP | bpp | VVC PSNR | test PSNR at that bpp |", "|---|---|---|---|---|"]
        # tosc's VVC quality knob q is 63 - QP
        for a in at_vvc:
            ours = "outside range" if a["test_psnr_db"] is None else f"{a['test_psnr_db']:.2f}"
            lines.append(f"| {a['test']} | {63 - a['vvc_quality']} | {a['bpp']:.3f} | {a['vvc_psnr_db']:.2f} | {ours} |")
    if against_family:
        lines += ["", f"{args.codecs[0]} against the old fixed-rate family at the family's rates (interpolated on "
                  f"{args.codecs[0]}'s curve); the family's rate with its model index (its system's rule, the classic "
                  "rows' rule) and, after the slash, its bytes alone:", "",
                  "| family | bpp | family PSNR | test PSNR | delta dB |", "|---|---|---|---|---|"]

        def pair(a, b, fmt):
            return " / ".join("outside range" if v is None else format(v, fmt) for v in (a, b))

        for a in against_family:
            lines.append(f"| {a['family']} | {a['bpp']:.4f} / {a['bpp_bytes_only']:.4f} | {a['family_psnr_db']:.2f} | "
                         f"{pair(a['test_psnr_db'], a['test_psnr_db_at_bytes_only'], '.2f')} | "
                         f"{pair(a['delta_db'], a['delta_db_at_bytes_only'], '+.2f')} |")
    if semantic:
        keys = list(semantic[0]["mse_only"])
        lines += ["", f"{sr_name} against {mse_name} at {mse_name}'s rates ({sr_name} interpolated in log-rate):", "",
                  "| bpp | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
        for s in semantic:
            lines.append(f"| {s['bpp']:.3f} | " + " | ".join(
                f"{s['mse_only'][k] if k.startswith('psnr') else 100 * s['mse_only'][k]:.2f} -> "
                f"{s['tosc_sr'][k] if k.startswith('psnr') else 100 * s['tosc_sr'][k]:.2f}" for k in keys) + " |")
    if verdict:
        lines += ["", f"Against the issue's bar (training network {TRAINING_TASK}; standard error of a difference "
                  f"of two accuracies on {n} images):", ""]
        for g in verdict["gap_rows"]:
            lines.append(f"- {g['bpp']:.3f} bpp: {mse_name} {g['gap_points']:.1f} points below clean, "
                         f"{sr_name} closes {g['closed_pct']:.0f}% at {g['psnr_cost_db']:+.2f} dB PSNR cost "
                         f"({'meets' if g['meets'] else 'misses'} >= 50% at <= 0.3 dB)")
        for k, h in verdict["held_out"].items():
            lines.append(f"- held-out {k}: mean gain {h['mean_gain_points']:+.2f} points over the rates, worst "
                         f"{h['worst_gain_points']:+.2f} at {h['worst_bpp']:.3f} bpp (SE {h['se_points']:.2f}): "
                         f"{'meets' if h['meets'] else 'misses'}")
    atomic_write_text(out / "table.md", "\n".join(lines) + "\n")

    def plot(ax, name: str, values) -> None:
        rs = sorted(rows[name], key=lambda r: r["bpp"])
        if name not in args.codecs:
            ax.plot([r["bpp"] for r in rs], values(rs), "--.", label=name, markersize=3)
            return
        # v3: each mode its own line, in the codec's colour
        modes = [[r for r in rs if r.get("mode", int(r["quality"] >= 128)) == m] for m in range(len(MODE_NAMES))]
        line, = ax.plot([r["bpp"] for r in modes[0]], values(modes[0]), "-o", label=name, markersize=3)
        for m, style in ((1, ":^"), (2, "-.v")):
            if modes[m]:
                ax.plot([r["bpp"] for r in modes[m]], values(modes[m]), style, color=line.get_color(), markersize=3,
                        label=f"{name} {MODE_NAMES[m]}")

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in rows:
        plot(ax, name, lambda rs: [r["psnr_db"] for r in rs])
    ax.set_xscale("log")
    ax.set_xlabel("bits per pixel (payload)")
    ax.set_ylabel("PSNR (dB)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "rate_psnr.png", dpi=120)
    fig, axes = plt.subplots(1, len(nets), figsize=(3.2 * len(nets), 3.2), sharey=True)
    for ax, k in zip(np.atleast_1d(axes), nets):
        for name in rows:
            plot(ax, name, lambda rs, k=k: [100 * r[f"acc_{k}"] for r in rs])
        ax.axhline(100 * clean[f"acc_{k}"], color="k", lw=0.8)
        ax.set_xscale("log")
        ax.set_title(k, fontsize=8)
        ax.set_xlabel("bpp")
    np.atleast_1d(axes)[0].set_ylabel("accuracy %")
    np.atleast_1d(axes)[-1].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out / "rate_accuracy.png", dpi=110)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
