"""What the scripts in ``scripts/`` share with the ``tosc`` command: a library error
(:class:`tosc.errors.ToscError`) ends the script with one ``error: ...`` line on stderr and exit
status 2, anything else keeps its traceback."""

from __future__ import annotations

import functools
import sys
from typing import Callable

from ..errors import ToscError

__all__ = ["exits_on_error"]


def exits_on_error(main: Callable) -> Callable:
    """Decorate a script's ``main``: a :class:`ToscError` raised anywhere in it becomes one
    ``error:`` line and ``SystemExit(2)``; its return value passes through."""

    @functools.wraps(main)
    def run(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except ToscError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None

    return run
