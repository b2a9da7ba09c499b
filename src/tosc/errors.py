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
    "CorruptFileError",
    "DoesNotFitError",
    "UnknownNameError",
    "DependencyMissingError",
]


class ToscError(Exception):
    """Base class for every error caused by bad input or impossible settings."""


class DataError(ToscError):
    """A dataset or image array is malformed (bad shapes, mixed sizes, empty classes)."""


class DatasetNotFoundError(DataError):
    """Dataset files are missing; the message says how to install them."""


class ConfigError(ToscError):
    """An impossible or contradictory setting (zero bandwidth ratio, negative lambda, ...)."""


class CorruptFileError(ToscError):
    """A checkpoint, bitstream or results file is truncated, altered or of the wrong kind."""


class DoesNotFitError(ToscError):
    """The requested content cannot fit the available bit or channel-use budget."""


class UnknownNameError(ToscError):
    """A dataset, system, codec, model or task name is not registered."""


class DependencyMissingError(ToscError):
    """An optional tool (e.g. the VVenC encoder) is not installed; the message names the setup step."""
