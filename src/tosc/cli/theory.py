"""``tosc theory``: semantic rate-distortion surface of a source, as JSON and plots.

Only parses arguments and calls :func:`tosc.theory.run_theory`.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..errors import ConfigError
from .app import app


def _parse_params(values: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--param takes KEY=VALUE, got {item!r}")
        params[key.strip()] = value.strip()
    return params


def _parse_fractions(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"--semantic-levels takes comma-separated fractions of I(X;Y), got {text!r}") from None


@app.command("theory")
def theory(
    source: Optional[str] = typer.Option(
        None, "--source", help="Built-in source: binary-symmetric, dsbs, uniform-mary, two-bits, gaussian, "
        "gaussian-vector, fashion-mnist (see --list-sources)."),
    input_path: Optional[Path] = typer.Option(
        None, "--input", help="An .npz with p_xy (|X| x |Y|, sums to 1) and distortion (|X| x |Xhat|)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output directory: theory.json and plots/*.png."),
    param: List[str] = typer.Option([], "--param", help="Source parameter KEY=VALUE (repeatable), e.g. eps=0.2."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random starts; the same seed gives the same files."),
    n_lams: int = typer.Option(12, "--lams", help="Number of lam values in the sweep (0 included)."),
    n_betas: int = typer.Option(12, "--betas", help="Number of beta values in the sweep (0 included)."),
    lam_max: Optional[float] = typer.Option(None, "--lam-max", help="Largest lam, bits per unit distortion."),
    beta_max: float = typer.Option(50.0, "--beta-max", help="Largest beta."),
    semantic_levels: str = typer.Option(
        "0,0.5,0.8,0.95", "--semantic-levels", help="I_0 of the R(D_p) curves, as fractions of I(X;Y)."),
    n_distortions: int = typer.Option(10, "--distortions", help="D_p points per R(D_p) curve."),
    restarts: int = typer.Option(1, "--restarts", help="Random starts per sweep point besides the warm start."),
    max_iter: int = typer.Option(300, "--max-iter", help="Update cap per solve of the sweep."),
    jobs: int = typer.Option(1, "--jobs", help="Worker processes for the sweep (results do not depend on it)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
    list_sources: bool = typer.Option(False, "--list-sources", help="List the built-in sources and exit."),
) -> None:
    """Sweep the semantic rate-distortion surface of a source; write OUT/theory.json and OUT/plots/."""
    from .. import theory as th

    if list_sources:
        for name in th.source_names():
            params = ", ".join(f"{k}={v}" for k, v in th.source_parameters(name).items()) or "no parameters"
            doc = (th.SOURCES[name].__doc__ or "").strip().splitlines()[0]
            typer.echo(f"{name}\t{doc} ({params})")
        return
    if (source is None) == (input_path is None):
        raise ConfigError("give exactly one of --source NAME or --input FILE.npz")
    if out is None:
        raise ConfigError("--out DIR is required")
    params = _parse_params(param)
    if input_path is not None:
        if params:
            raise ConfigError("--param applies to built-in sources, not to --input")
        src = th.load_source_npz(input_path)
    else:
        src = th.make_source(source, **params)  # type: ignore[arg-type]
    config = th.TheoryConfig(
        n_lams=n_lams, n_betas=n_betas, lam_max_bits=lam_max, beta_max=beta_max,
        semantic_fractions=_parse_fractions(semantic_levels), n_distortions=n_distortions,
        n_restarts=restarts, max_iter=max_iter, seed=seed,
    )
    extra = {"source": src.name, "source_params": params, "input": None if input_path is None else str(input_path)}
    report = th.run_theory(src, out, config, progress=not quiet, extra_config=extra, jobs=jobs)
    summary = report.record["source"]
    typer.echo(f"source      {src.description}")
    typer.echo(f"alphabets   |X| = {summary['n_x']}, |Y| = {summary['n_y']}, |Xhat| = {summary['n_xhat']}; "
               f"I(X;Y) = {summary['mutual_information_xy_bits']:.4f} bits")
    typer.echo(f"wrote       {report.json_path}")
    for path in report.plot_paths.values():
        typer.echo(f"            {path}")
