"""The Typer application every CLI module attaches its commands to."""

import typer

app = typer.Typer(
    name="tosc",
    help="Task-oriented image semantic communication: codecs, channels, theory and evaluation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help text: importing rich would double the time `tosc --help` takes
)
