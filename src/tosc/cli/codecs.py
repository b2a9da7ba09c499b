"""``tosc codecs``: how small each classic codec gets on a data set, and where it fits a link."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import List, Optional

import typer

from ..errors import DependencyMissingError
from .app import app


@app.command("codecs")
def codecs(
    dataset: str = typer.Option("fashion-mnist", help="Data set to measure on."),
    split: str = typer.Option("test", help="Split of the data set."),
    root: Optional[str] = typer.Option(None, help="Directory holding the data set files."),
    limit: int = typer.Option(16, help="Number of images (the first N of the split)."),
    codec: Optional[List[str]] = typer.Option(None, "--codec", help="Codec name (repeatable); default: all."),
    table: bool = typer.Option(False, "--table", help="Print the README tables (markdown) instead."),
    as_json: bool = typer.Option(False, "--json", help="Print the measured sizes as JSON."),
) -> None:
    """Per classic codec: smallest whole-file and payload sizes and the bpp range on N images."""
    from .. import data as tosc_data
    from ..source_coding import classic
    from ..source_coding.classic import survey as survey_mod

    names = codec or classic.codec_names()
    images = tosc_data.load_dataset(dataset, split=split, root=root, limit=limit).images
    surveys = []
    for name in names:
        try:
            surveys.append(survey_mod.survey_codec(classic.get_codec(name), images))
        except DependencyMissingError as exc:
            if codec:  # asked for by name: that is an error
                raise
            typer.echo(f"note: {name} skipped: {exc}", err=True)
    if as_json:
        typer.echo(json.dumps([asdict(s) for s in surveys], indent=2))
    elif table:
        typer.echo(survey_mod.render_markdown(surveys, dataset=dataset), nl=False)
    else:
        typer.echo(f"{dataset} {split}, first {len(images)} images, {tuple(images.shape[1:])}")
        typer.echo(survey_mod.render_summary(surveys))
