"""``tosc train``, ``tosc encode``, ``tosc decode``, ``tosc models``: the learned codec."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import typer

from ..errors import ConfigError, DataError
from .app import app


@app.command("train")
def train(
    out: Path = typer.Option(..., "--out", "-o", help="Checkpoint to write (rewritten atomically each epoch)."),
    config: Optional[Path] = typer.Option(None, help="JSON or TOML file of training settings; flags override it."),
    dataset: Optional[str] = typer.Option(None, help="Dataset name (default fashion-mnist)."),
    lambda_p: Optional[float] = typer.Option(None, "--lambda-p", help="Weight of the pixel MSE."),
    lambda_s: Optional[float] = typer.Option(None, "--lambda-s", help="Weight of the task cross-entropy (0: MSE-only)."),
    epochs: Optional[int] = typer.Option(None),
    batch_size: Optional[int] = typer.Option(None, "--batch-size"),
    lr: Optional[float] = typer.Option(None),
    seed: Optional[int] = typer.Option(None),
    init_from: Optional[Path] = typer.Option(None, "--init-from", help="Warm-start from this codec checkpoint."),
    root: Optional[str] = typer.Option(None, help="Dataset directory."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the checkpoint at --out."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA if present), cpu, cuda or cuda:N."),
) -> None:
    """Train a codec with L = bpp + lambda_p * MSE + lambda_s * CE(task(x_hat)).

    Under torchrun every process trains one data-parallel replica (gloo on CPU, nccl on CUDA);
    --batch-size is the global batch, split evenly over the processes; rank 0 alone writes.
    """
    from ..distributed import distributed_session
    from ..source_coding.learned.train import TrainConfig, train_codec

    settings: dict = {}
    if config is not None:
        if not config.is_file():
            raise ConfigError(f"config file {config} does not exist")
        text = config.read_text()
        try:
            settings = tomllib.loads(text) if config.suffix == ".toml" else json.loads(text)
        except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{config}: cannot parse ({exc})") from None
    flags = {"dataset": dataset, "lambda_p": lambda_p, "lambda_s": lambda_s, "epochs": epochs, "batch_size": batch_size,
             "lr": lr, "seed": seed, "init_from": str(init_from) if init_from else None, "root": root}
    settings.update({k: v for k, v in flags.items() if v is not None})
    cfg = TrainConfig.from_dict(settings)
    with distributed_session(device) as ctx:
        metrics = train_codec(cfg, out, resume=resume, progress=ctx.is_main, context=ctx)
        if ctx.is_main:
            typer.echo(json.dumps({"checkpoint": str(out), "processes": ctx.world_size, "device": str(ctx.device),
                                   **metrics}))


def _read_images(path: Path) -> tuple[torch.Tensor, np.ndarray | None, np.ndarray | None]:
    from ..io import load_image_arrays

    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.suffix == ".npz":
        arrays = load_image_arrays(path)
        return torch.from_numpy(arrays["images"]), arrays["labels"], arrays["indices"]
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            array = np.asarray(image.convert("L" if mode in ("1", "L", "I", "I;16", "F", "LA") else "RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"{path}: not a readable image ({exc})") from None
    tensor = torch.from_numpy(array.copy()).float() / 255.0
    tensor = tensor[None, None] if tensor.ndim == 2 else tensor.permute(2, 0, 1)[None]
    return tensor, None, None


@app.command("encode")
def encode(
    input: Path = typer.Argument(..., help="Images: .npz (tosc layout) or one image file (.png, .jpg, ...)."),
    model: str = typer.Option(..., "--model", "-m", help="Model name (see tosc models) or checkpoint path."),
    output: Path = typer.Option(..., "-o", "--output", help="The .tosc file to write."),
) -> None:
    """Compress images into a .tosc file."""
    from ..io import atomic_write_bytes
    from ..source_coding.learned.zoo import resolve_codec

    codec = resolve_codec(model)
    images, _, _ = _read_images(input)
    data = codec.encode_file(images)
    atomic_write_bytes(output, data)
    n, _, h, w = images.shape
    typer.echo(f"{output}: {n} image(s), {len(data)} bytes, {8 * len(data) / (n * h * w):.4f} bpp (whole file)")


@app.command("decode")
def decode(
    input: Path = typer.Argument(..., help="A .tosc file."),
    output: Path = typer.Option(..., "-o", "--output", help=".npz for any number of images, .png for one."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model (default: found by the id in the file)."),
) -> None:
    """Decompress a .tosc file."""
    from ..io import save_image_arrays
    from ..source_coding.learned.bitstream import unpack_file
    from ..source_coding.learned.zoo import find_codec_by_id, resolve_codec

    if not input.is_file():
        raise DataError(f"{input}: no such file")
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
    from ..source_coding.learned.zoo import list_codecs

    entries = list_codecs()
    if not entries:
        typer.echo("no trained codecs yet: run `tosc train` or `python scripts/train_family.py`")
        return
    typer.echo(f"{'name':<24}{'variant':<11}{'lambda_p':>9}{'lambda_s':>9}{'bpp':>8}{'psnr_db':>9}{'accuracy':>9}")
    for e in entries:
        m = e.metrics
        typer.echo(f"{e.name:<24}{e.variant:<11}{e.lambda_p:>9g}{e.lambda_s:>9g}{m.get('bpp', float('nan')):>8.3f}"
                   f"{m.get('psnr_db', float('nan')):>9.2f}{m.get('accuracy', float('nan')):>9.3f}")
