"""Typed exceptions raised by the tosc library.

The library never exits the process; the CLI turns a :class:`ToscError` into one
``error: ...`` line on stderr and exit status 2 (see ``tosc.cli``). Anything else
escaping the library is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = [
    "ToscError",
    "DataError",
    "DatasetNotFoundError",
    "ConfigError",
    "IncompatibleSystemError",
    "CorruptFileError",
    "DoesNotFitError",
    "UnknownNameError",
    "DependencyMissingError",
    "OutputPathError",
    "InterruptedRun",
    "check_config_fields",
]


class ToscError(Exception):
    """Base class for every error caused by bad input or impossible settings."""


class DataError(ToscError):
    """A dataset or image array is malformed (bad shapes, mixed sizes, empty classes)."""


class DatasetNotFoundError(DataError):
    """Dataset files are missing; the message says how to install them."""


class ConfigError(ToscError):
    """An impossible or contradictory setting (zero bandwidth ratio, negative lambda, ...)."""


class IncompatibleSystemError(ConfigError):
    """A system asked to code images it cannot code (e.g. a model trained for 1 x 28 x 28 images
    given 1 x 64 x 64 scenes); the message names the system and the image shape."""


class CorruptFileError(ToscError):
    """A checkpoint, bitstream or results file is truncated, altered or of the wrong kind."""


class DoesNotFitError(ToscError):
    """The requested content cannot fit the available bit or channel-use budget."""


class UnknownNameError(ToscError):
    """A dataset, system, codec, model or task name is not registered."""


class DependencyMissingError(ToscError):
    """An optional tool (e.g. the VVenC encoder) is not installed; the message names the setup step."""


class OutputPathError(ToscError):
    """An output location tosc must not or cannot write: a folder given as a file, a special
    file (/dev/null, a FIFO), a read-only file, the input itself, a parent that is a file."""


class InterruptedRun(ToscError):
    """A long job stopped by Ctrl-C (SIGINT); the message says what was saved and how to resume.
    The CLI exits with status 130, as a shell does for a process killed by SIGINT."""


def check_config_fields(config) -> None:
    """Raise :class:`ConfigError` when a field of the dataclass ``config`` holds a value of the
    wrong type (``epochs = "abc"``) or a non-finite float (``lr = nan``).

    Settings come from JSON/TOML files and flags, so only the types those give are handled:
    bool, int, float (an int is accepted), str, None and tuples or lists of them.
    """
    import dataclasses
    import math
    import types
    import typing

    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        problem = _type_problem(value, hints.get(f.name, typing.Any), math, types, typing)
        if problem:
            raise ConfigError(f"{type(config).__name__} setting {f.name}: {problem}, got {value!r}")


def _type_problem(value, hint, math, types, typing) -> str | None:
    origin = typing.get_origin(hint)
    if hint is typing.Any:
        return None
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        problems = [_type_problem(value, h, math, types, typing) for h in options]
        return None if any(p is None for p in problems) else " or ".join(p for p in problems if p)
    if hint is type(None):
        return None if value is None else "must be absent"
    if hint is bool:
        return None if isinstance(value, bool) else "must be true or false"
    if hint is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "must be an integer"
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "must be a number"
        return None if math.isfinite(value) else "must be a finite number"
    if hint is str:
        return None if isinstance(value, str) else "must be a string"
    if origin in (tuple, list):
        if not isinstance(value, (tuple, list)):
            return "must be a list"
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        for item in value:
            if args and all(_type_problem(item, a, math, types, typing) for a in args):
                return f"has an element of the wrong type ({item!r})"
        return None
    return None
