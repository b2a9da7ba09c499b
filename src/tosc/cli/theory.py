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
        "gaussian-vector, fashion-mnist, fashion-mnist-images (see --list-sources)."),
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
    lambda_p: str = typer.Option(
        "10,50,250,1500", "--lambda-p", help="Image sources: pixel-MSE weights of the learned bound, comma-separated."),
    lambda_s: str = typer.Option(
        "0,0.1", "--lambda-s", help="Image sources: class cross-entropy weights of the learned bound."),
    epochs: int = typer.Option(12, "--epochs", help="Image sources: training epochs per bound point."),
    n_train: int = typer.Option(20000, "--train-images", help="Image sources: training images (0: all)."),
    n_eval: int = typer.Option(0, "--eval-images", help="Image sources: test images the bound is measured on (0: all)."),
    width: int = typer.Option(32, "--width", help="Image sources: channels of the bound's second convolution."),
    latent_dim: int = typer.Option(64, "--latent-dim", help="Image sources: size of the bound's latent."),
) -> None:
    """Sweep the semantic rate-distortion surface of a source; write OUT/theory.json and OUT/plots/."""
    from .. import theory as th

    if list_sources:
        for name in th.source_names():
            params = ", ".join(f"{k}={v}" for k, v in th.source_parameters(name).items()) or "no parameters"
            doc = (th.SOURCES[name].__doc__ or "").strip().splitlines()[0]
            typer.echo(f"{name}\t{doc} ({params})")
        for name, doc in th.IMAGE_SOURCES.items():
            typer.echo(f"{name}\t{doc} (--lambda-p, --lambda-s, --epochs, --train-images, --eval-images, --width, "
                       "--latent-dim)")
        return
    if (source is None) == (input_path is None):
        raise ConfigError("give exactly one of --source NAME or --input FILE.npz")
    if out is None:
        raise ConfigError("--out DIR is required")
    from ..io import check_output_dir

    check_output_dir(out, files=("theory.json", "bound.json"))  # before any work
    if source in th.IMAGE_SOURCES:
        _image_bound(source, out, param, seed, lambda_p, lambda_s, epochs, n_train, n_eval, quiet, width, latent_dim)
        return
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


def _parse_weights(text: str, option: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"{option} takes comma-separated numbers, got {text!r}") from None
    if not values:
        raise ConfigError(f"{option} needs at least one value")
    return values


def _image_bound(source: str, out: Path, param: list[str], seed: int, lambda_p: str, lambda_s: str, epochs: int,
                 n_train: int, n_eval: int, quiet: bool, width: int, latent_dim: int) -> None:
    from ..theory.image_bound import ImageBoundConfig, run_image_bound

    if param:
        raise ConfigError(f"{source} takes --lambda-p, --lambda-s, --epochs, --train-images, --eval-images, not --param")
    for name, value in (("--train-images", n_train), ("--eval-images", n_eval)):
        if value < 0 or value == 1:
            raise ConfigError(f"{name} must be 0 (all) or >= 2, got {value}")
    config = ImageBoundConfig(
        lambda_ps=_parse_weights(lambda_p, "--lambda-p"), lambda_ss=_parse_weights(lambda_s, "--lambda-s"),
        epochs=epochs, n_train=n_train or None, n_eval=n_eval or None, seed=seed, width=width, latent_dim=latent_dim,
    )
    record = run_image_bound(out, config, source=source, progress=not quiet)
    typer.echo(f"source      {record['source']['description']}")
    typer.echo("lambda_p  lambda_s   MSE        bpp bound   I(Xhat;Y) >=   train s")
    for p in record["points"]:
        typer.echo(f"{p['lambda_p']:8g}  {p['lambda_s']:8g}   {p['distortion']:.5f}    {p['rate_per_dim_bits']:.4f}"
                   f"      {p['semantic_info_bits']:.3f} bits     {p['train_seconds']:.0f}")
    typer.echo(f"wrote       {out / 'bound.json'}")
    typer.echo(f"            {out / record['plots']['rate_vs_distortion']}")
