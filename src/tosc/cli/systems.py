"""``tosc systems`` and ``tosc transmit``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .app import app


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
) -> None:
    """Send images through a system at one (SNR, CBR); write received.npz and result.json."""
    from ..channel import parse_cbr
    from ..channel.conventions import check_channel_kind
    from ..data import load_dataset
    from ..evaluation import OperatingPoint, run_point
    from ..io import save_image_arrays
    from ..results import write_result
    from ..systems import build_system

    point = OperatingPoint(check_channel_kind(channel), float(snr_db), parse_cbr(cbr))
    data = load_dataset(dataset, split, root=root, limit=limit)
    sys_ = build_system(system)
    tx, record = run_point(sys_, data.images, data.labels, point, dataset=dataset, split=split, seed=seed,
                           config={"limit": limit})
    save_image_arrays(out / "received.npz", tx.received.numpy(), data.labels.numpy(), data.indices.numpy(),
                      ok=tx.ok, payload_bits=tx.payload_bits, channel_uses=tx.channel_uses)
    write_result(out / "result.json", record)
    m = record.metrics
    typer.echo(f"{system} @ {channel} {snr_db:g} dB, CBR {cbr}: {record.rate.payload_bits_per_image:.0f} bits/image, "
               f"{record.rate.channel_uses_per_image:.1f} channel uses/image, failures {m['failure_rate']:.3f}, "
               f"PSNR {m['psnr_db']:.2f} dB, accuracy {m['accuracy']:.3f} -> {out}")
