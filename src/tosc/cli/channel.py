"""``tosc channel ...``: the modulation-and-coding table of the digital link."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional

import typer

from ..errors import ConfigError
from .app import app

MAX_ROWS = 10_000  # SNR rows printed at most (a tiny --snr-step used to loop for minutes)

channel_app = typer.Typer(help="The transmission layer: AWGN / Rayleigh, 5G LDPC + QAM.", no_args_is_help=True)
app.add_typer(channel_app, name="channel")


@channel_app.command("mcs")
def mcs(
    channel: str = typer.Option("awgn", help="awgn, rayleigh-block or rayleigh-fast."),
    codeword_bits: int = typer.Option(1024, help="Codeword length whose thresholds to show (the nearest "
                                                 "reference length not above it is used)."),
    snr_min: float = typer.Option(-2.0, help="First SNR row (dB)."),
    snr_max: Optional[float] = typer.Option(None, help="Last SNR row (dB); default just past the last threshold."),
    snr_step: float = typer.Option(1.0, help="SNR step between rows (dB)."),
    recompute: bool = typer.Option(False, "--recompute", help="Simulate the table again (minutes) and cache it."),
    out: Optional[Path] = typer.Option(None, help="Where --recompute writes (default: the user cache)."),
    table_path: Optional[Path] = typer.Option(None, "--table", help="Read the table from this file."),
    max_codewords: int = typer.Option(20000, help="--recompute: codewords per SNR point at most."),
    seed: int = typer.Option(0, help="--recompute: random seed."),
    as_json: bool = typer.Option(False, "--json", help="Print the rows as JSON."),
) -> None:
    """Print, for each SNR, the highest-throughput scheme with block error rate <= 1e-3."""
    from ..channel import conventions, mcs as mcs_lib

    conventions.check_channel_kind(channel)
    for name, value in (("--snr-min", snr_min), ("--snr-max", snr_max), ("--snr-step", snr_step)):
        if value is not None and not math.isfinite(value):
            raise ConfigError(f"{name} must be a finite number of dB, got {value}")
    if snr_step <= 0:
        raise ConfigError(f"--snr-step must be positive, got {snr_step:g}")
    if recompute and out is not None:
        from ..io import check_output_file

        check_output_file(out)  # before minutes of simulation
    if recompute:
        if channel == "rayleigh-block":
            table = mcs_lib.derive_block_fading(mcs_lib.load_table("awgn"))
        else:
            table = mcs_lib.compute_table(channel, max_codewords=max_codewords, seed=seed, progress=True)
        path = mcs_lib.save_table(table, out or mcs_lib.cached_table_path(channel))
        typer.echo(f"wrote {path}", err=True)
        table.source = str(path)
    else:
        table = mcs_lib.load_table(channel, table_path)

    ref = table.reference_for(codeword_bits)
    thresholds = [(m, table.threshold_db(m, ref)) for m in mcs_lib.MCS_SET]
    known = [t for _, t in thresholds if t is not None]
    top = snr_max if snr_max is not None else (max(known) + snr_step if known else snr_min)
    if (top - snr_min) / snr_step > MAX_ROWS:
        raise ConfigError(f"SNR rows from {snr_min:g} to {top:g} dB in steps of {snr_step:g} dB: more than {MAX_ROWS}")
    grid = []
    value = snr_min
    while value <= top + 1e-9:
        grid.append(round(value, 6))
        value += snr_step
    rows = table.rows(grid, codeword_bits)
    if as_json:
        typer.echo(json.dumps({"channel": channel, "reference_codeword_bits": ref, "target_bler": table.target_bler,
                               "source": table.source, "rows": rows,
                               "thresholds_db": {m.name: t for m, t in thresholds}}, indent=2))
        return
    typer.echo(f"# MCS table: channel {channel}, BLER <= {table.target_bler:g}, codewords of {ref} bits, "
               f"{table.params.get('num_iter', 20)} BP iterations")
    typer.echo(f"# source: {table.source}")
    typer.echo(f"{'scheme':<12}{'bits/use':>9}{'SNR threshold (dB)':>20}")
    for m, t in sorted(thresholds, key=lambda mt: (mt[1] is None, mt[1] if mt[1] is not None else 0.0)):
        typer.echo(f"{m.name:<12}{m.spectral_efficiency:>9.3f}{('%.2f' % t) if t is not None else 'never':>20}")
    typer.echo("")
    typer.echo(f"{'SNR (dB)':>8}  {'scheme':<12}{'bits/use':>9}{'capacity':>10}")
    for row in rows:
        cap = float(conventions.capacity_bits_per_use(row["snr_db"])) if channel == "awgn" else \
            conventions.ergodic_rayleigh_capacity_bits_per_use(row["snr_db"])
        typer.echo(f"{row['snr_db']:>8.2f}  {row['mcs'] or '-':<12}{row['bits_per_channel_use']:>9.3f}{cap:>10.3f}")
