"""``tosc train``, ``tosc encode``, ``tosc decode``, ``tosc models``: the learned codec."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import ConfigError, DataError, InterruptedRun
from .app import app, caused_by_interrupt

# Decoding a .tosc file holds the decoded float images (N x C x H x W x 4 bytes) plus per-batch
# work; batches keep the rest bounded whatever N is (see LearnedCodec.decode_file).


@app.command("train")
def train(
    out: Path = typer.Option(..., "--out", "-o", help="Checkpoint to write (rewritten atomically after each epoch; "
                             "v3 also every checkpoint_every steps)."),
    config: Optional[Path] = typer.Option(None, help="JSON or TOML file of training settings; flags override it."),
    dataset: Optional[str] = typer.Option(None, help="Dataset name (default fashion-mnist)."),
    codec: str = typer.Option("v3", "--codec", help="v3: codec v3, one variable-rate model (what tosc-sr, "
                              "mse-only and task-only run); family: one single-rate codec of the old family; "
                              "jscc: the analog Deep JSCC / TOSC-SR model (lambda_s > 0)."),
    lambda_p: Optional[float] = typer.Option(None, "--lambda-p", help="Weight of the pixel MSE (family and jscc: v3 "
                                             "learns every rate, lambda_min..lambda_max)."),
    lambda_s: Optional[float] = typer.Option(None, "--lambda-s", help="Weight of the semantic term (0: MSE-only)."),
    epochs: Optional[int] = typer.Option(None),
    batch_size: Optional[int] = typer.Option(None, "--batch-size"),
    lr: Optional[float] = typer.Option(None),
    seed: Optional[int] = typer.Option(None),
    init_from: Optional[Path] = typer.Option(None, "--init-from", help="Warm-start from this codec checkpoint."),
    root: Optional[str] = typer.Option(None, help="Dataset directory."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the checkpoint at --out."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA if present), cpu, cuda or cuda:N."),
) -> None:
    """Train a codec with L = bpp + lambda_p * MSE + lambda_s * D_semantic(task, x, x_hat).

    --codec v3 (default) trains one checkpoint for every rate, lambda_p drawn per image over
    lambda_min..lambda_max (settings: tosc.source_coding.learned.train_conv.ConvTrainConfig);
    --codec family one single-rate codec at --lambda-p; --codec jscc the analog model, trained
    through the channel with L = lambda_p * MSE + lambda_s * CE (tosc.jscc.train.JSCCTrainConfig).
    Under torchrun every process trains one
    data-parallel replica (gloo on CPU, nccl on CUDA); --batch-size is the global batch, split
    evenly over the processes; rank 0 alone writes.
    """
    import json

    from ..io import check_output_file

    if codec not in _TRAINERS:
        raise ConfigError(f"--codec must be one of {', '.join(_TRAINERS)}, got {codec!r}")
    settings = read_settings(config)
    # resuming rewrites the checkpoint it reads; otherwise --out must not be one of the inputs
    check_output_file(out, inputs=(config, init_from))
    from ..distributed import distributed_session

    flags = {"dataset": dataset, "lambda_s": lambda_s, "epochs": epochs, "batch_size": batch_size,
             "lr": lr, "seed": seed, "init_from": str(init_from) if init_from else None, "root": root}
    if codec != "v3":
        flags["lambda_p"] = lambda_p
    elif lambda_p is not None:
        raise ConfigError("--lambda-p sets the one rate of a family codec; codec v3 learns every rate (set "
                          "lambda_min and lambda_max in --config), or add --codec family")
    settings.update({k: v for k, v in flags.items() if v is not None})
    cfg, train_fn = _training_config(codec, settings)
    try:
        with distributed_session(device) as ctx:
            metrics = train_fn(cfg, out, resume=resume, progress=ctx.is_main, context=ctx)
            if ctx.is_main:
                typer.echo(json.dumps({"checkpoint": str(out), "processes": ctx.world_size,
                                       "device": str(ctx.device), **metrics}))
    except BaseException as exc:
        if caused_by_interrupt(exc):
            raise InterruptedRun(training_saved(out)) from None
        raise


# --codec: (module, config class, trainer) of each trainer tosc train runs
_TRAINERS = {"v3": ("tosc.source_coding.learned.train_conv", "ConvTrainConfig", "train_conv_codec"),
             "family": ("tosc.source_coding.learned.train", "TrainConfig", "train_codec"),
             "jscc": ("tosc.jscc.train", "JSCCTrainConfig", "train_jscc")}


def _training_config(codec: str, settings: dict):
    """(config, trainer) of ``codec`` from ``settings``; a setting only another codec has is
    one error line that names the --codec to use."""
    import dataclasses
    import importlib

    def parts(name: str):
        module, config_class, trainer = _TRAINERS[name]
        module = importlib.import_module(module)
        return getattr(module, config_class), getattr(module, trainer)

    own, train_fn = parts(codec)
    names = {f.name for f in dataclasses.fields(own)}
    for other in (name for name in _TRAINERS if name != codec):
        other_names = {f.name for f in dataclasses.fields(parts(other)[0])}
        foreign = sorted(k for k in settings if k not in names and k in other_names)
        if foreign:
            raise ConfigError(f"{', '.join(foreign)}: setting(s) of --codec {other}, not of --codec {codec}; "
                              f"add --codec {other} to train that one")
    if codec == "v3" and settings.get("init_from") and settings.get("mode", "transform") == "transform":
        from ..checkpoint import load_checkpoint
        from ..source_coding.learned.train_conv import ARCH

        # a warm start keeps the source's architecture unless a setting changes it (the shipped
        # models have 8 z bands and the graded index, not the defaults)
        source = load_checkpoint(settings["init_from"], kind="codec")
        if source.get("arch") == ARCH:
            shape = (source.get("config") or {}).get("codec") or {}
            settings = {**{k: shape[k] for k in V3_ARCHITECTURE if k in shape}, **settings}
    return own.from_dict(settings), train_fn


# codec v3 settings that fix the network's shape (ConvCodecConfig), read from a warm start's checkpoint
V3_ARCHITECTURE = ("width", "latent_channels", "hyper_channels", "hyper_width", "z_bands", "quality_code", "context")


def read_settings(config: Optional[Path]) -> dict:
    """The settings table of a JSON or TOML config file (empty without one)."""
    import json
    import tomllib

    from ..io import check_input_file

    if config is None:
        return {}
    check_input_file(config, "config file")
    try:
        text = config.read_text()
        settings = tomllib.loads(text) if config.suffix == ".toml" else json.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{config}: cannot parse ({exc})") from None
    if not isinstance(settings, dict):
        raise ConfigError(f"{config}: must hold a table of settings (name = value), not a {type(settings).__name__}")
    return settings


def training_saved(out: Path) -> str:
    """What an interrupted `tosc train` left at ``out`` and how to continue."""
    from ..checkpoint import load_checkpoint
    from ..errors import CorruptFileError

    try:
        state = load_checkpoint(out).get("train_state") or {}
    except CorruptFileError:
        return f"interrupted before the first checkpoint; nothing was saved at {out}: run the command again"
    if state.get("step"):  # codec v3 saves inside an epoch too
        return (f"interrupted; {out} holds {state.get('epoch', '?')} epoch(s) and {state['step']} step(s) of the "
                "next (the steps after them are lost): continue with the same command plus --resume")
    return (f"interrupted; {out} holds epoch {state.get('epoch', '?')} (the partial epoch is lost): "
            "continue with the same command plus --resume")


def _read_images(path: Path):
    """Images N x C x H x W (float tensor in [0, 1]) from an image .npz or one image file."""
    import torch

    from ..io import check_input_file, image_levels, load_image_arrays, open_image

    check_input_file(path, "image file")
    if path.suffix == ".npz":
        return torch.from_numpy(load_image_arrays(path)["images"])
    tensor = torch.from_numpy(image_levels(open_image(path), path)).float() / 255.0
    return tensor[None, None] if tensor.ndim == 2 else tensor.permute(2, 0, 1)[None]


@app.command("encode")
def encode(
    input: Path = typer.Argument(..., help="Images: .npz (tosc layout) or one image file (.png, .jpg, ...)."),
    model: str = typer.Option(..., "--model", "-m", help="Model name (see tosc models) or checkpoint path."),
    output: Path = typer.Option(..., "-o", "--output", help="The .tosc file to write."),
    quality: Optional[int] = typer.Option(None, "--quality", "-q",
                                          help="Codec v3 models only: quality index 0..127 (transform codec, default 127); "
                                               "128.. the predictive mode's steps, coarse to fine, where the model has it "
                                               "(mse-only-v3, tosc-sr-v3: 128..142; the grey scene pair 128..146; the colour "
                                               "scene pair 128..139; the last lossless); then the global "
                                               "mode's levels, small to large, for images of its one size "
                                               "(mse-only-v3, tosc-sr-v3: 143..158; task-only-v3: 128..143; 28 x 28 grey)."),
    refine_steps: Optional[int] = typer.Option(None, "--refine-steps", min=0, max=10000,
                                               help="Codec v3 models only: the transform mode's encoder search, steps "
                                                    "per image towards the loss the model was trained on (default "
                                                    "20; 0: the fast encoder). Any value decodes the same way."),
) -> None:
    """Compress images into a .tosc file."""
    from ..io import atomic_write_bytes, check_input_file, check_output_file

    check_input_file(input, "image file")
    check_output_file(output, inputs=(input,))
    from ..source_coding.learned.zoo import resolve_codec

    codec = resolve_codec(model)
    images = _read_images(input)
    n, _, h, w = images.shape
    if n == 0 or h == 0 or w == 0:
        raise DataError(f"{input}: holds no pixels ({n} images of {h} x {w}); nothing to encode")
    wanted = getattr(codec, "in_channels", 1)
    if images.shape[1] != wanted:  # name the shipped models that do code this channel count
        got = images.shape[1]
        raise DataError(f"{model} codes {wanted}-channel images; {input} has {got} channel{'s' * (got != 1)}"
                        + _models_for_channels(got))
    if hasattr(codec, "encode_to_budget"):  # codec v3: one model, a quality index per file
        if refine_steps is not None:
            import dataclasses

            codec.refinement = dataclasses.replace(codec.refinement, steps=refine_steps)
        data = codec.encode_file(images, 127 if quality is None else quality)
    elif refine_steps is not None:
        raise DataError(f"--refine-steps applies to codec v3 models only; {model} is a fixed-rate family model")
    elif quality is not None:
        raise DataError(f"--quality applies to codec v3 models only; {model} is a fixed-rate family model")
    else:
        data = codec.encode_file(images)
    atomic_write_bytes(output, data)
    typer.echo(f"{output}: {n} image(s), {len(data)} bytes, {8 * len(data) / (n * h * w):.4f} bpp (whole file)")


def _models_for_channels(channels: int) -> str:
    """" (codec v3 models for C-channel images: a, b)" from the zoo's index, or "" when none ships."""
    from ..checkpoint import checkpoint_index
    from ..zoo import zoo_dir

    names = sorted(Path(name).stem for name, info in checkpoint_index(zoo_dir() / "codecs").items()
                   if info.get("kind") == "codec" and "lambda_min" in ((info.get("config") or {}).get("train") or {})
                   and ((info.get("config") or {}).get("codec") or {}).get("in_channels") == channels)
    return f" (codec v3 models for {channels}-channel images: {', '.join(names)})" if names else ""


@app.command("decode")
def decode(
    input: Path = typer.Argument(..., help="A .tosc file."),
    output: Path = typer.Option(..., "-o", "--output", help=".npz for any number of images, .png for one."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model (default: found by the id in the file)."),
) -> None:
    """Decompress a .tosc file."""
    from ..io import check_input_file, check_output_file

    check_input_file(input, ".tosc file")
    check_output_file(output, inputs=(input,), suffixes=(".npz", ".png"))
    import numpy as np

    from ..io import save_image_arrays
    from ..source_coding.learned.bitstream import unpack_file
    from ..source_coding.learned.zoo import find_codec_by_id, resolve_codec

    data = input.read_bytes()
    header, _ = unpack_file(data)
    codec = resolve_codec(model) if model else find_codec_by_id(header.model_id)
    images = codec.decode_file(data)
    if output.suffix == ".png":
        if len(images) != 1:
            raise DataError(f"{input} holds {len(images)} images; write them to a .npz instead of a .png")
        from PIL import Image

        from ..io import atomic_write

        array = (images[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        with atomic_write(output) as handle:
            Image.fromarray(array[..., 0] if array.shape[2] == 1 else array).save(handle, format="PNG")
    elif output.suffix == ".npz":
        save_image_arrays(output, images.numpy())
    else:
        raise DataError(f"{output}: output must end in .npz or .png")
    typer.echo(f"{output}: {len(images)} image(s) decoded with {codec.name}")


@app.command("models")
def models() -> None:
    """List trained codecs with their variant, lambdas and measured (validation) rate and quality."""
    from ..checkpoint import checkpoint_index
    from ..zoo import zoo_dir

    # the zoo's index holds each checkpoint's metrics: no checkpoint (and no torch) is loaded
    folder = zoo_dir() / "codecs"
    index = checkpoint_index(folder)
    entries = {name: info for name, info in index.items() if info.get("kind") == "codec"}
    for name, info in index.items():
        if name not in entries:
            typer.echo(f"warning: skipping {info.get('error') or f'{folder / name}: not a codec checkpoint'}", err=True)
    if not entries:
        typer.echo(f"no trained codecs in {folder} yet: run `tosc train` or `python scripts/train_family.py`")
        return
    typer.echo(f"{'name':<24}{'variant':<11}{'lambda_p':>13}{'lambda_s':>9}{'bpp':>13}{'psnr_db':>13}"
               f"{'accuracy':>13}")
    nan = float("nan")
    for name, info in entries.items():
        m = _by_rate(info.get("metrics") or {})
        train = (info.get("config") or {}).get("train") or {}
        # a variable-rate (codec v3) checkpoint: lambda range and the measured curve's ends
        lam = (_span(train["lambda_min"], train["lambda_max"], "g") if "lambda_min" in train
               else f"{_number(train.get('lambda_p', nan)):g}")
        typer.echo(f"{Path(name).stem:<24}{info.get('variant') or '?':<11}{lam:>13}"
                   f"{_number(train.get('lambda_s', nan)):>9g}{_cell(m.get('bpp'), '.3f'):>13}"
                   f"{_cell(m.get('psnr_db'), '.2f'):>13}{_cell(m.get('accuracy'), '.3f'):>13}")


def _by_rate(metrics: dict) -> dict:
    """A measured curve (lists ``bpp``, ``psnr_db``, ``accuracy`` by quality index) in order of
    rate: a v3 checkpoint lists its modes one after another (the global mode's lowest rates last)."""
    bpp = metrics.get("bpp")
    if not isinstance(bpp, (list, tuple)) or not bpp:
        return metrics
    order = sorted(range(len(bpp)), key=lambda i: _number(bpp[i]))
    out = dict(metrics)
    for key in ("bpp", "psnr_db", "accuracy"):
        value = metrics.get(key)
        if isinstance(value, (list, tuple)) and len(value) == len(bpp):
            out[key] = [value[i] for i in order]
    return out


def _span(low, high, fmt: str) -> str:
    return f"{_number(low):{fmt}}-{_number(high):{fmt}}"


def _cell(value, fmt: str) -> str:
    """One number, the first-last of a measured curve (one value per quality index, by rate), or
    "-" where the checkpoint records no such measurement."""
    if value is None:
        return "-"
    if isinstance(value, (list, tuple)) and value:
        return _span(value[0], value[-1], fmt)
    return f"{_number(value):{fmt}}"


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")
