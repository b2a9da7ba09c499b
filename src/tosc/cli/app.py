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


def caused_by_interrupt(exc: BaseException) -> bool:
    """Whether ``exc`` is a Ctrl-C or was raised while one was being handled: a library's cleanup
    can fail on the state the interrupt left (numpy's ``savez`` raises ValueError when closing a
    zip file whose member the interrupt left open) and so replace the KeyboardInterrupt."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False
