"""The ``tosc`` command. It only parses arguments and calls the Python API.

Library errors (:class:`tosc.errors.ToscError`) become one ``error: ...`` line on
stderr and exit status 2; anything else is a bug and keeps its traceback (status 1).
Ctrl-C exits with status 130 and one line (long jobs say what was saved and how to resume).

Command modules import torch, numpy and the library inside the commands, so that ``tosc
--help``, listings and argument errors answer without loading them (benchmarks/cli_bench.py).
"""

from __future__ import annotations

import sys

import typer
from typer._click.exceptions import NoArgsIsHelpError

from ..errors import InterruptedRun, ToscError
from .app import app, caused_by_interrupt

__all__ = ["app", "main"]

# Each module adds its commands to ``app`` on import.
from . import data as _data  # noqa: E402,F401
from . import theory as _theory  # noqa: E402,F401
from . import channel as _channel  # noqa: E402,F401
from . import codec as _codec  # noqa: E402,F401
from . import codecs as _codecs  # noqa: E402,F401
from . import systems as _systems  # noqa: E402,F401


# Options that take several values after one flag (`--snr-db 0 5 10`), as the documented
# commands are written; Click wants the flag repeated, so the argument list is rewritten.
MULTI_VALUE_OPTIONS = {"--systems", "--snr-db", "--cbr", "--channel", "--merge"}


def expand_multi_value_options(argv: list[str]) -> list[str]:
    out: list[str] = []
    current = None
    for token in argv:
        if token.startswith("--"):
            current = token if token in MULTI_VALUE_OPTIONS else None
            out.append(token)
        elif current is not None and out and out[-1] != current:
            out += [current, token]
        else:
            out.append(token)
    return out


def _quiet_interrupts(unraisable) -> None:
    """``sys.unraisablehook`` of the CLI: a Ctrl-C that lands inside a callback Python cannot
    raise from (numba's compiler calls back through ctypes on a first run) would print an
    "Exception ignored ... KeyboardInterrupt" traceback beside the one ``error:`` line; the
    interrupt itself is handled by the command, so only that message is dropped."""
    if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
        return
    sys.__unraisablehook__(unraisable)


def main(argv: list[str] | None = None) -> int:
    argv = expand_multi_value_options(list(sys.argv[1:] if argv is None else argv))
    sys.unraisablehook = _quiet_interrupts  # before any worker is forked, so they inherit it
    try:
        status = app(args=argv, prog_name="tosc", standalone_mode=False)
    except InterruptedRun as exc:
        _close_progress_bars()  # so that the line starts a line, not the end of a bar
        print(f"error: {exc}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:  # outside a command (while parsing or importing)
        print("error: interrupted", file=sys.stderr)
        return 130
    except ToscError as exc:
        _close_progress_bars()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        print("error: aborted", file=sys.stderr)
        return 130
    except NoArgsIsHelpError as exc:
        print(exc.format_message(), file=sys.stderr)
        return 2
    except typer.TyperException as exc:
        # usage errors (unknown option, bad value) follow the same one-line contract
        print(f"error: {exc.format_message()}", file=sys.stderr)
        return 2
    except Exception as exc:
        if not caused_by_interrupt(exc):  # a bug: keep its traceback
            raise
        _close_progress_bars()
        print("error: interrupted", file=sys.stderr)
        return 130
    if isinstance(status, int) and status:  # Typer turns Ctrl-C inside a command into status 130
        if status == 130:
            print("error: interrupted", file=sys.stderr)
        return status
    return 0


def _close_progress_bars() -> None:
    tqdm = sys.modules.get("tqdm")
    for bar in list(getattr(getattr(tqdm, "tqdm", None), "_instances", None) or ()):
        bar.close()


def entry_point() -> None:
    sys.exit(main())


