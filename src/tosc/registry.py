"""One registry for every named part: datasets, systems, codecs, channels, tasks.

Configs and the CLI refer to parts by ``(kind, name)``. This table is the only list of names:
everything else (which codecs are classic, which task networks are held out, which systems
run on a GPU, which link a system uses) is read from the metadata of its entry, never from a
second list or from parsing a name. ``tests/test_registry.py`` greps the code for such lists.

Metadata each kind's entries carry (``Entry.meta``):

- ``system``: ``mode`` ("digital", "ideal" or "analog"), ``link`` ("ldpc", "ideal" or
  "analog"), ``family`` ("classic", "learned" or "jscc"), ``source`` (the codec, codec-family
  variant or JSCC model it sends with), ``measure`` (classic only: "file" or "payload"),
  ``proposed`` (True for the paper's method, TOSC-SR, in each mode), ``trained_on`` (learned
  systems only: "items" for Fashion-MNIST, "scenes" for fashion-scenes) and ``devices`` (where its
  networks can run: ``("cpu",)`` or ``("cpu", "cuda")``). Every system factory takes
  ``device``, already resolved by :func:`tosc.systems.build_system`.
- ``codec``: ``family`` ("classic").
- ``task``: ``role`` ("training": the one network codecs are trained through by default;
  "training-extra": more networks a semantic term may average over, never judges; "held-out":
  used only to judge generalisation, never in training), ``output`` ("class" or "mask").
- ``channel``: none yet (the channel classes say how they fade).

Asking for a kind imports the package that registers it, so ``names("codec")`` is complete
whatever the caller imported before.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping

from .errors import UnknownNameError

__all__ = ["Entry", "register", "get", "names", "entries", "select", "meta_of", "KINDS"]

KINDS = ("dataset", "system", "codec", "channel", "task")

# the package whose import registers each kind's entries
_PROVIDERS = {
    "dataset": "tosc.data",
    "system": "tosc.systems",
    "codec": "tosc.source_coding.classic",
    "channel": "tosc.channel",
    "task": "tosc.tasks",
}


@dataclass(frozen=True)
class Entry:
    kind: str
    name: str
    description: str
    factory: Callable[..., Any]
    meta: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


_TABLE: dict[tuple[str, str], Entry] = {}


def register(kind: str, name: str, description: str, **meta: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering ``factory`` under ``(kind, name)`` with metadata ``meta``; a
    duplicate name is a bug."""
    if kind not in KINDS:
        raise ValueError(f"unknown registry kind {kind!r}; expected one of {KINDS}")

    def decorate(factory: Callable[..., Any]) -> Callable[..., Any]:
        key = (kind, name)
        if key in _TABLE and _TABLE[key].factory is not factory:
            raise ValueError(f"{kind} {name!r} is registered twice")
        _TABLE[key] = Entry(kind, name, description, factory, MappingProxyType(dict(meta)))
        return factory

    return decorate


def _load(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown registry kind {kind!r}; expected one of {KINDS}")
    importlib.import_module(_PROVIDERS[kind])  # a no-op once imported (or while it is importing)


def get(kind: str, name: str) -> Entry:
    _load(kind)
    try:
        return _TABLE[(kind, name)]
    except KeyError:
        known = ", ".join(names(kind)) or "none"
        raise UnknownNameError(f"unknown {kind} {name!r}; known: {known}") from None


def names(kind: str) -> list[str]:
    _load(kind)
    return sorted(n for (k, n) in _TABLE if k == kind)


def entries(kind: str) -> list[Entry]:
    return [_TABLE[(kind, n)] for n in names(kind)]


def select(kind: str, **criteria: Any) -> list[str]:
    """Names of ``kind`` (sorted) whose metadata equals every ``key=value`` in ``criteria``;
    e.g. ``select("task", role="held-out")`` or ``select("system", family="classic", link="ldpc")``."""
    return [e.name for e in entries(kind) if all(e.meta.get(k, _MISSING) == v for k, v in criteria.items())]


def meta_of(kind: str, name: str) -> Mapping[str, Any]:
    """The metadata of ``name``, or an empty mapping when no such name is registered (a results
    file written by another version may name a system this one does not have)."""
    _load(kind)
    entry = _TABLE.get((kind, name))
    return entry.meta if entry is not None else MappingProxyType({})


_MISSING = object()
