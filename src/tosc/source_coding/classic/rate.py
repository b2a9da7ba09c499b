"""Rate matching: the best quality whose bitstream fits a byte budget, by bisection.

The budget applies to the whole file (``measure="file"``) or to the payload only
(``measure="payload"``, headers known to the receiver). A link with a budget of B bits per
image carries ``B // 8`` bytes.

Bisection assumes the size grows with the quality knob. The chosen bitstream is always one that
was encoded and measured, so a match never exceeds the budget; where a codec's size is not
monotone in its knob (JPEG XL at its lowest qualities, for one), a better fitting quality can be
missed, and a budget below the size at ``quality_min`` is reported as not fitting even if some
other quality would fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

from ...errors import ConfigError, DataError
from .base import ClassicCodec

if TYPE_CHECKING:
    from .table import RateTable

__all__ = ["RateMatch", "MEASURES", "match_rate", "match_rate_batch", "decode_matches"]

MEASURES = ("file", "payload")


@dataclass(frozen=True)
class RateMatch:
    """Outcome of rate matching one image.

    fits: False when even ``quality_min`` is over the budget (then ``bitstream`` is empty,
        ``quality`` is None, and the sizes are those at ``quality_min``: how far off it was).
    file_bytes, payload_bytes: sizes of ``bitstream`` (or of the lowest-quality attempt).
    encodes: encoder calls spent.
    """

    codec: str
    measure: str
    budget_bytes: int
    fits: bool
    quality: int | None
    bitstream: bytes
    file_bytes: int
    payload_bytes: int
    encodes: int

    @property
    def counted_bytes(self) -> int:
        """The size the budget was checked against (file or payload, per ``measure``)."""
        return self.file_bytes if self.measure == "file" else self.payload_bytes


def match_rate(
    codec: ClassicCodec, image: torch.Tensor | np.ndarray, budget_bytes: int, measure: str = "file",
    table: "RateTable | None" = None,
) -> RateMatch:
    """Encode ``image`` at the highest quality whose ``measure`` size is <= ``budget_bytes``.

    table: a :class:`~.table.RateTable` of ``codec`` to look encodes up in (and add them to)
    instead of encoding; the probes and the answer are the same either way.
    """
    if measure not in MEASURES:
        raise ConfigError(f"measure must be one of {MEASURES}, got {measure!r}")
    if isinstance(budget_bytes, bool) or not isinstance(budget_bytes, (int, np.integer)) or budget_bytes < 0:
        raise ConfigError(f"budget_bytes must be a non-negative integer, got {budget_bytes!r}")
    budget_bytes = int(budget_bytes)
    if table is not None and table.codec is not codec:
        raise ConfigError(f"the rate table is {table.codec.name}'s, not {codec.name}'s")
    tried: dict[int, tuple[bytes, int, int]] = {}
    key = table.key_of(image) if table is not None else None

    def attempt(quality: int) -> tuple[bytes, int, int]:
        if quality not in tried:
            if table is not None:
                entry = table.entry(image, quality, key=key)
                tried[quality] = (entry.bitstream, entry.file_bytes, entry.payload_bytes)
            else:
                data = codec.encode(image, quality)
                tried[quality] = (data, len(data), codec.payload_bytes(data))
        return tried[quality]

    def fits(quality: int) -> bool:
        _, file_bytes, payload_bytes = attempt(quality)
        return (file_bytes if measure == "file" else payload_bytes) <= budget_bytes

    lo, hi = codec.quality_min, codec.quality_max
    if not fits(lo):
        _, file_bytes, payload_bytes = tried[lo]
        return RateMatch(codec.name, measure, budget_bytes, False, None, b"", file_bytes, payload_bytes, len(tried))
    if fits(hi):
        lo = hi
    while hi - lo > 1:  # invariant: lo fits, hi does not
        mid = (lo + hi) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid
    data, file_bytes, payload_bytes = tried[lo]
    return RateMatch(codec.name, measure, budget_bytes, True, lo, data, file_bytes, payload_bytes, len(tried))


def match_rate_batch(
    codec: ClassicCodec,
    images: torch.Tensor | np.ndarray | Sequence[torch.Tensor | np.ndarray],
    budget_bytes: int | Sequence[int],
    measure: str = "file",
    table: "RateTable | None" = None,
) -> list[RateMatch]:
    """Rate-match each image of a batch (N x C x H x W, or a sequence of C x H x W images).

    budget_bytes: one budget for all images, or one per image. table: see :func:`match_rate`.
    """
    if isinstance(images, (torch.Tensor, np.ndarray)) and images.ndim != 4:
        raise DataError(f"a batch of images must be N x C x H x W, got shape {tuple(images.shape)}")
    n = len(images)
    budgets = [budget_bytes] * n if isinstance(budget_bytes, (int, np.integer)) else list(budget_bytes)
    if len(budgets) != n:
        raise ConfigError(f"got {len(budgets)} budgets for {n} images")
    return [match_rate(codec, images[i], budgets[i], measure, table) for i in range(n)]


def decode_matches(
    codec: ClassicCodec,
    matches: Sequence[RateMatch],
    fallback: torch.Tensor,
    channels: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode rate-matched bitstreams into an N x C x H x W float32 batch.

    Images that did not fit are replaced by ``fallback`` (C x H x W, e.g. the training-set mean
    image). channels defaults to the fallback's. Returns (images, ok) with ok a bool tensor N,
    False where the fallback was used.
    """
    if fallback.ndim != 3:
        raise DataError(f"fallback must be one C x H x W image, got shape {tuple(fallback.shape)}")
    channels = fallback.shape[0] if channels is None else channels
    out, ok = [], []
    for match in matches:
        if match.fits:
            image = codec.decode(match.bitstream, channels=channels)
            if image.shape != fallback.shape:
                raise DataError(f"decoded shape {tuple(image.shape)} differs from the fallback's {tuple(fallback.shape)}")
            out.append(image)
        else:
            out.append(fallback.to(torch.float32))
        ok.append(match.fits)
    if not out:
        return torch.empty((0, *fallback.shape), dtype=torch.float32), torch.empty(0, dtype=torch.bool)
    return torch.stack(out), torch.tensor(ok, dtype=torch.bool)
