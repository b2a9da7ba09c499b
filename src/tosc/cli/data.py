"""``tosc data ...``: inspect data sets."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Optional

import typer

from .app import app

data_app = typer.Typer(help="Inspect data sets.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("info")
def info(
    dataset: str = typer.Argument(..., help="Dataset name, e.g. fashion-mnist, cifar10 or folder (an unknown "
                                  "name lists the known ones)."),
    root: Optional[str] = typer.Option(None, help="Directory holding the data set files."),
    seed: int = typer.Option(0, help="Seed of the train/validation split."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """Counts, image shape, classes and pixel statistics of DATASET."""
    from .. import data as tosc_data

    summary = tosc_data.dataset_info(dataset, root=root, seed=seed)
    scenes = _scene_lines(dataset, root, seed)
    if as_json:
        typer.echo(json.dumps({**asdict(summary), **({"scenes": scenes} if scenes else {})}, indent=2))
        return
    sizes = summary.split_sizes
    c, h, w = summary.image_shape
    typer.echo(f"dataset     {summary.name}   ({summary.root})")
    typer.echo(f"train       {sizes['train'] + sizes['validation']}   "
               f"(= {sizes['train']} train + {sizes['validation']} validation, seed {seed})")
    typer.echo(f"test        {sizes['test']}")
    typer.echo(f"image       {c}x{h}x{w} (C x H x W), float in [0, 1]")
    typer.echo(f"classes     {len(summary.classes)}: {', '.join(summary.classes)}")
    typer.echo(f"pixels      mean {summary.pixel_mean:.4f}, std {summary.pixel_std:.4f}")
    counts = ", ".join(f"{k} {v}" for k, v in summary.class_counts.items())
    typer.echo(f"per class   {counts}" + ("   (scenes: class of the largest item)" if scenes else ""))
    for split, part in (scenes or {}).items():
        items = ", ".join(f"{k}: {v}" for k, v in part["items_per_scene"].items())
        objects = ", ".join(f"{k} {v}" for k, v in part["objects_per_class"].items())
        side = part["box_side_px"]
        typer.echo(f"{split:<11} items per scene {items}; box side {side['min']:.0f}-{side['max']:.0f} px "
                   f"(mean {side['mean']:.1f}); objects: {objects}")


def _scene_lines(dataset: str, root: Optional[str], seed: int) -> dict:
    """Per split: items per scene, objects per class and box sides, for scene data sets only."""
    from .. import data as tosc_data
    from ..data.scenes import is_scene_set, scene_summary

    parts = {split: tosc_data.load_dataset(dataset, split, root=root, seed=seed) for split in tosc_data.SPLITS}
    return {split: scene_summary(part) for split, part in parts.items() if is_scene_set(part)}
