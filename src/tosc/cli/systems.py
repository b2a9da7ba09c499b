"""``tosc systems`` and ``tosc transmit``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from ..errors import ConfigError, InterruptedRun
from .app import app, caused_by_interrupt

# Raw source values are 8-bit: a digital system never needs more bits per value, nor a CBR above
# what carries 8 bits per value at its least efficient rate; twice that is refused as useless
# (the cost of simulating a link grows with its channel uses; CBR 1e9 used to exhaust memory).
RAW_BITS_PER_VALUE = 8
CBR_MARGIN = 2

DEVICE_HELP = "Where neural networks run: auto (CUDA if present), cpu, cuda or cuda:N; entropy coding stays on the CPU."
RESIDUAL_HELP = ("Flip each delivered bit with this probability after channel decoding (undetected errors; "
                 "digital systems only).")


@app.command("systems")
def systems() -> None:
    """One registered system name per line, a tab, and a short description."""
    from .. import registry
    from ..systems import system_names

    for name in system_names():
        typer.echo(f"{name}\t{registry.get('system', name).description}")


@app.command("transmit")
def transmit(
    system: str = typer.Option(..., "--system", help="A name from `tosc systems`."),
    dataset: str = typer.Option("fashion-mnist", "--dataset"),
    split: str = typer.Option("test", "--split"),
    limit: Optional[int] = typer.Option(None, "--limit", help="First N images of the split."),
    channel: str = typer.Option("awgn", "--channel", help="awgn, rayleigh-block or rayleigh-fast."),
    snr_db: float = typer.Option(..., "--snr-db", help="SNR per complex symbol (dB)."),
    cbr: str = typer.Option(..., "--cbr", help="Channel bandwidth ratio k/n, e.g. 1/16 or 0.0625."),
    seed: int = typer.Option(0, "--seed"),
    root: Optional[str] = typer.Option(None, "--root", help="Dataset directory."),
    out: Path = typer.Option(..., "--out", help="Folder for received.npz and result.json."),
    residual_ber: float = typer.Option(0.0, "--residual-ber", help=RESIDUAL_HELP),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
) -> None:
    """Send images through a system at one (SNR, CBR); write received.npz and result.json."""
    from ..io import check_output_dir

    check_output_dir(out, files=("received.npz", "result.json"))  # before any work
    from ..channel import parse_cbr
    from ..channel.conventions import check_channel_kind
    from ..data import load_dataset
    from ..evaluation import OperatingPoint, run_point
    from ..io import save_image_arrays
    from ..results import write_result

    point = OperatingPoint(check_channel_kind(channel), float(snr_db), parse_cbr(cbr))
    data = load_dataset(dataset, split, root=root, limit=limit)
    from ..distributed import resolve_device
    from .. import registry
    from ..evaluation.compat import check_codes, data_kind
    from ..evaluation.grid import build_for

    device = str(resolve_device(device))
    check_codes(system, tuple(data.images.shape[1:]), dataset)
    if residual_ber and registry.meta_of("system", system).get("mode") == "analog":
        raise ConfigError(f"--residual-ber flips delivered bits; {system} is analog and delivers no bits")
    sys_ = build_for(system, dataset, device=device, residual_ber=residual_ber, root=root)
    check_useful_cbr(system, sys_.mode, point.snr_db, point.cbr)
    config = {"limit": limit, "residual_ber": residual_ber}
    if device != "cpu":
        config["device"] = sys_.device  # where this system ran: a CPU-only one says "cpu"
    scenes = data if data_kind(data) == "scenes" else None
    tx, record = run_point(sys_, data.images, data.labels, point, dataset=dataset, split=split, seed=seed,
                           config=config, scenes=scenes)
    extra = {}
    if scenes is None and "accuracy" in record.metrics:
        # the one-label classifier's predictions, where it judges these images; scenes have no single label
        from ..tasks import TRAINING_TASK, load_task_network, predict

        extra["predictions"] = predict(load_task_network(TRAINING_TASK), tx.received).numpy()
    save_image_arrays(out / "received.npz", tx.received.numpy(), data.labels.numpy(), data.indices.numpy(),
                      ok=tx.ok, payload_bits=tx.payload_bits, channel_uses=tx.channel_uses,
                      failed_codewords=tx.failed_codewords, **extra)
    write_result(out / "result.json", record)
    m = record.metrics
    task = (f"accuracy {_num(m.get('accuracy'))}" if scenes is None else
            f"detection mAP@0.5 {_num(m.get('det_map_50'))}, segmentation IoU {_num(m.get('scene_seg_iou'))}")
    typer.echo(f"{system} @ {channel} {snr_db:g} dB, CBR {cbr}: {record.rate.payload_bits_per_image:.0f} bits/image, "
               f"{record.rate.channel_uses_per_image:.1f} channel uses/image, "
               f"{m['failed_codewords_per_image']:.3f} failed codewords/image, failures {m['failure_rate']:.3f}, "
               f"PSNR {m['psnr_db']:.2f} dB (of the mean MSE {m.get('psnr_db_of_mean_mse', float('nan')):.2f} dB), {task} -> {out}")


def _num(value) -> str:
    return "not measured" if value is None else f"{value:.3f}"


@app.command("evaluate")
def evaluate(
    out: Path = typer.Option(..., "--out", help="Folder for results.jsonl, report.html and plots/."),
    systems: Optional[list[str]] = typer.Option(None, "--systems", help="System names (repeat the option); "
                                                "default: every installed system made for the data set's images."),
    snr_db: Optional[list[float]] = typer.Option(None, "--snr-db", help="SNRs in dB (repeat the option)."),
    cbr: Optional[list[str]] = typer.Option(None, "--cbr", help="Channel bandwidth ratios (repeat the option)."),
    channel: list[str] = typer.Option(["awgn"], "--channel", help="awgn, rayleigh-block, rayleigh-fast."),
    dataset: str = typer.Option("fashion-mnist", "--dataset"),
    split: str = typer.Option("test", "--split"),
    root: Optional[str] = typer.Option(None, "--root", help="Dataset directory (folder, cifar10)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="First N images of the split."),
    seed: int = typer.Option(0, "--seed"),
    jobs: Optional[int] = typer.Option(None, "--jobs", help="Worker processes, one torch thread each "
                                       "(default 2; 1 per rank under torchrun)."),
    shard: Optional[str] = typer.Option(None, "--shard", help="Run the I-th of N slices of the grid (default 0/1)."),
    merge: Optional[list[Path]] = typer.Option(None, "--merge", help="Join these shard folders into --out."),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    residual_ber: float = typer.Option(0.0, "--residual-ber", help=RESIDUAL_HELP),
) -> None:
    """Run every system at every (channel, SNR, CBR); resumable; write results, plots and report.

    Under torchrun, rank r of W runs slice r/W and rank 0 merges all slices into --out.
    """
    from ..io import check_output_dir

    if jobs is not None and jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {jobs}")
    check_output_dir(out, files=("results.jsonl", "report.html"))
    try:
        _evaluate(out, systems, snr_db, cbr, channel, dataset, split, limit, seed, jobs, shard, merge, device,
                  residual_ber, root)
    except BaseException as exc:
        if caused_by_interrupt(exc):
            raise InterruptedRun(evaluation_saved(out)) from None
        raise


def _evaluate(out, systems, snr_db, cbr, channel, dataset, split, limit, seed, jobs, shard, merge, device,
              residual_ber, root=None) -> None:
    from ..channel import parse_cbr
    from ..distributed import distributed_session, launched_by_torchrun
    from ..evaluation import GridSpec, merge_results, parse_shard, run_grid, write_report
    from ..evaluation.grid import run_grid_on_ranks

    if merge:
        if launched_by_torchrun() and os.environ["RANK"] != "0":
            return  # merging is one process's job
        records = merge_results(merge, out)
    else:
        if not snr_db or not cbr:
            raise ConfigError("--snr-db and --cbr are required (or --merge DIR ...)")
        if not systems:
            from ..evaluation.compat import default_systems

            systems = default_systems(dataset, split, say=lambda line: typer.echo(line, err=True), root=root)
            typer.echo(f"systems (default for {dataset}): {' '.join(systems)}", err=True)
        spec = GridSpec(tuple(systems), tuple(channel), tuple(snr_db), tuple(parse_cbr(c) for c in cbr), dataset,
                        split, limit, seed, residual_ber, root)
        for name in spec.systems:
            for snr in spec.snrs_db:
                for ratio in spec.cbrs:
                    check_useful_cbr(name, _registered_mode(name), snr, ratio)
        if launched_by_torchrun():
            if shard is not None:
                raise ConfigError("under torchrun rank r of W runs slice r/W: drop --shard")
            # ranks only exchange Python objects (gloo, even on GPUs), and the first to finish
            # waits for the slowest at the gather: allow a day
            with distributed_session(device, backend="gloo", timeout_s=86400) as ctx:
                records = run_grid_on_ranks(spec, out, ctx, jobs=jobs or 1)
            if records is None:
                return
        else:
            records = run_grid(spec, out, jobs=2 if jobs is None else jobs, shard=parse_shard(shard or "0/1"),
                               device=device)
    report = write_report(out, records)
    typer.echo(f"{len(records)} operating points; report: {report}")


def _registered_mode(system: str) -> str | None:
    """The system's mode from its registry entry, without building it (None if not recorded)."""
    from .. import registry

    return (getattr(registry.get("system", system), "meta", None) or {}).get("mode")


def check_useful_cbr(system: str, mode: str | None, snr_db: float, cbr) -> None:
    """Refuse a CBR no system of ``mode`` can use: above CBR_MARGIN times the channel uses per
    source value that carry RAW_BITS_PER_VALUE bits at the link's least efficient rate (the
    lowest MCS for "digital"; the capacity at ``snr_db`` for "ideal"). Analog systems refuse
    what their model cannot send themselves."""
    import math

    from ..channel.conventions import capacity_bits_per_use

    if mode == "digital":
        from ..channel.mcs import MCS_SET

        floor = min(m.spectral_efficiency for m in MCS_SET)
        why = f"the lowest MCS carries {floor:g} bits per channel use"
    elif mode == "ideal":
        floor = float(capacity_bits_per_use(snr_db))
        why = f"capacity at {snr_db:g} dB is {floor:.3g} bits per channel use"
    else:
        return
    largest = CBR_MARGIN * RAW_BITS_PER_VALUE / floor if floor > 0 else math.inf
    if float(cbr) > largest:
        raise ConfigError(f"--cbr {float(cbr):g} is more than {system} can use: {why}, so CBR {largest:.3g} "
                          f"already sends every {RAW_BITS_PER_VALUE}-bit source value {CBR_MARGIN} times over")


def evaluation_saved(out: Path) -> str:
    """What an interrupted `tosc evaluate` left in ``out`` and how to continue."""
    from ..evaluation.grid import record_key
    from ..results import read_results

    path = out / "results.jsonl"
    try:
        done = len(read_results(path, key=record_key)) if path.exists() else 0
    except Exception:  # noqa: BLE001 - the message must come out whatever the file holds
        done = "?"
    return (f"interrupted; {path} holds {done} finished operating point(s): run the same command again "
            "to compute only the others")
