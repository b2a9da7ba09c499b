"""One registry for every named part: datasets, systems, codecs, channels, tasks.

Configs and the CLI refer to parts by ``(kind, name)``; a single table keeps the
names from drifting apart (a weak spot of several codebases in this field).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .errors import UnknownNameError

__all__ = ["Entry", "register", "get", "names", "entries", "KINDS"]

KINDS = ("dataset", "system", "codec", "channel", "task")


@dataclass(frozen=True)
class Entry:
    kind: str
    name: str
    description: str
    factory: Callable[..., Any]


_TABLE: dict[tuple[str, str], Entry] = {}


def register(kind: str, name: str, description: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering ``factory`` under ``(kind, name)``; a duplicate name is a bug."""
    if kind not in KINDS:
        raise ValueError(f"unknown registry kind {kind!r}; expected one of {KINDS}")

    def decorate(factory: Callable[..., Any]) -> Callable[..., Any]:
        key = (kind, name)
        if key in _TABLE and _TABLE[key].factory is not factory:
            raise ValueError(f"{kind} {name!r} is registered twice")
        _TABLE[key] = Entry(kind, name, description, factory)
        return factory

    return decorate


def get(kind: str, name: str) -> Entry:
    try:
        return _TABLE[(kind, name)]
    except KeyError:
        known = ", ".join(names(kind)) or "none"
        raise UnknownNameError(f"unknown {kind} {name!r}; known: {known}") from None


def names(kind: str) -> list[str]:
    return sorted(n for (k, n) in _TABLE if k == kind)


def entries(kind: str) -> list[Entry]:
    return [_TABLE[(kind, n)] for n in names(kind)]
