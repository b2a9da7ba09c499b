"""The one place that touches CompressAI beyond its documented calls, checked against its version.

tosc's learned codecs use CompressAI's ``EntropyBottleneck``, ``GaussianConditional`` and
``GDN``. Besides their public calls they need a few things CompressAI keeps private: the
frozen integer tables (``_quantized_cdf``, ``_offset``, ``_cdf_length``) that the codecs store
in their checkpoints and hand to tosc's own arithmetic coder, the learned medians of the
factorized prior, the Gaussian likelihood at given means and scales, and the name of the
auxiliary (quantile) parameters. Those names have changed between releases before, so every
access goes through this module, which refuses a CompressAI outside the tested range with a
clear :class:`~tosc.errors.DependencyMissingError` instead of a failure deep in a codec.
"""

from __future__ import annotations

import functools

import torch

from ...errors import CorruptFileError
from ...provenance import require_tested

__all__ = ["TESTED_VERSIONS", "TABLE_BUFFERS", "check_compressai", "table_keys", "has_tables", "tables_of",
           "freeze_factorized", "freeze_gaussian", "prepare_tables", "pack_tables", "unpack_tables", "medians", "gaussian_likelihood",
           "is_auxiliary"]

TESTED_VERSIONS = ((1, 2),)  # (major, minor): 1.2.x (1.2.6 at the time of writing)
TABLE_BUFFERS = ("_quantized_cdf", "_offset", "_cdf_length")
_AUXILIARY = "quantiles"


@functools.lru_cache(maxsize=1)
def check_compressai() -> str:
    """CompressAI's version string; raises DependencyMissingError outside :data:`TESTED_VERSIONS`."""
    return require_tested("compressai", "CompressAI", TESTED_VERSIONS)


def table_keys(prefix: str) -> tuple[str, ...]:
    """State-dict keys of an entropy model's frozen tables, e.g. ``entropy_bottleneck._offset``."""
    return tuple(f"{prefix}.{name}" for name in TABLE_BUFFERS)


def has_tables(module) -> bool:
    """Whether ``module`` (EntropyBottleneck or GaussianConditional) holds frozen tables."""
    check_compressai()
    return module._quantized_cdf.numel() > 0


def tables_of(module) -> tuple[list[list[int]], list[int], list[int]]:
    """The frozen integer tables of ``module`` as lists: (cdfs, lengths, offsets), one row per
    channel (factorized prior) or per scale (Gaussian)."""
    check_compressai()
    return (module._quantized_cdf.tolist(), module._cdf_length.reshape(-1).tolist(),
            module._offset.reshape(-1).tolist())


def freeze_factorized(module) -> None:
    """Compute a factorized prior's integer tables from its current density, once."""
    check_compressai()
    module.update(force=True)


def freeze_gaussian(module, scales: torch.Tensor) -> None:
    """Compute a Gaussian conditional's integer tables for the given scale table, once."""
    check_compressai()
    module.update_scale_table(scales.tolist(), force=True)


def prepare_tables(module, state_dict: dict, prefix: str, *, required: bool = True) -> None:
    """Give ``module``'s table buffers the sizes saved in ``state_dict`` so that
    ``load_state_dict`` can fill them (they are empty until frozen, and their length depends
    on the trained density). Missing tables raise CorruptFileError when ``required``."""
    check_compressai()
    for name, key in zip(TABLE_BUFFERS, table_keys(prefix)):
        if key not in state_dict:
            if required:
                raise CorruptFileError(f"checkpoint has no entropy table {key}: it was saved before tables were frozen")
            continue
        setattr(module, name, torch.zeros_like(state_dict[key]))


def pack_tables(state_dict: dict, prefix: str) -> dict:
    """``state_dict`` with ``prefix``'s CDF table stored without its padding: CompressAI keeps
    one row per channel or scale, zero-padded to the longest (the Gaussian tables of codec v3:
    200,512 entries, 27,256 of them used), so a checkpoint stores the used entries only, row
    after row. :func:`unpack_tables` restores the padded table exactly."""
    key, length = f"{prefix}._quantized_cdf", f"{prefix}._cdf_length"
    table = state_dict.get(key)
    if table is None or table.ndim != 2 or length not in state_dict:
        return state_dict
    lengths = state_dict[length].reshape(-1).tolist()
    out = dict(state_dict)
    out[key] = torch.cat([row[:n] for row, n in zip(table, lengths)]) if lengths else table.reshape(-1)
    return out


def unpack_tables(state_dict: dict, prefix: str) -> dict:
    """The inverse of :func:`pack_tables` (a padded table is returned as it is)."""
    key, length = f"{prefix}._quantized_cdf", f"{prefix}._cdf_length"
    flat = state_dict.get(key)
    if flat is None or flat.ndim != 1 or not flat.numel() or length not in state_dict:  # (empty: not frozen yet)
        return state_dict
    lengths = state_dict[length].reshape(-1).tolist()
    if sum(lengths) != flat.numel() or min(lengths, default=1) < 1:
        raise CorruptFileError(f"checkpoint's packed table {key} does not match its lengths")
    table = torch.zeros(len(lengths), max(lengths, default=0), dtype=flat.dtype)
    start = 0
    for row, n in enumerate(lengths):
        table[row, :n] = flat[start:start + n]
        start += n
    out = dict(state_dict)
    out[key] = table
    return out


def medians(module) -> torch.Tensor:
    """A factorized prior's learned medians, one per channel [C]."""
    check_compressai()
    return module._get_medians().reshape(-1)


def gaussian_likelihood(module, values: torch.Tensor, scales: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    """P(values) under N(means, scales) integrated over unit bins, floored as CompressAI does."""
    check_compressai()
    return module.likelihood_lower_bound(module._likelihood(values, scales, means))


def is_auxiliary(parameter_name: str) -> bool:
    """Whether a parameter is a factorized prior's quantile (trained by the auxiliary loss only)."""
    return parameter_name.endswith(_AUXILIARY)
