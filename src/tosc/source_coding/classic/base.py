"""The one interface every classic codec implements.

A codec turns one image into a real file (``encode``) and back (``decode``); an integer
``quality`` knob in ``[quality_min, quality_max]`` trades size for fidelity, larger meaning
larger files and better images for every codec (VVC maps it to ``QP = 63 - quality``).

Two sizes are reported for every bitstream, because headers dominate tiny images:
- whole file: ``len(bitstream)``, everything a stand-alone decoder needs;
- payload: the coded picture data found by parsing the container (``payload_ranges``),
  with container boxes, parameter sets, fixed tables and length fields counted as known to
  the receiver. Each codec's docstring says exactly which bytes it counts.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass

import numpy as np
import torch

from ...errors import ConfigError, CorruptFileError, DataError
from .image import convert_channels, to_tensor, to_uint8

__all__ = ["ClassicCodec", "Parsed", "MAX_DECODE_PIXELS"]

#: Decoders refuse bitstreams that declare more pixels than this (a corrupted size field must
#: not make a library allocate gigabytes). Generous for the datasets used here.
MAX_DECODE_PIXELS = 4096 * 4096


@dataclass(frozen=True)
class Parsed:
    """What a codec's own container parser found in a bitstream.

    payload: (start, end) byte ranges of the coded picture data, in file order, disjoint.
    height, width: picture size declared by the headers (0 where the headers do not say).
    exact: the decoded picture has exactly that size (False: the headers give the coded size
        and a crop, e.g. HEIF's clean aperture, makes the picture smaller).
    """

    payload: tuple[tuple[int, int], ...]
    height: int
    width: int
    exact: bool = True


class ClassicCodec(abc.ABC):
    """Base class: validation, channel handling and error mapping live here, once."""

    name: str = ""
    description: str = ""
    #: what the quality integer means for this codec
    quality_meaning: str = ""
    quality_min: int = 0
    quality_max: int = 100
    #: True where grayscale is coded as one component; otherwise gray input is coded as RGB
    #: (R = G = B) and decoded back to one channel with BT.601 luma weights.
    native_gray: bool = True
    #: how a grayscale image is coded, for reports
    gray_coded_as: str = "1 component"
    #: whether ``_encode`` takes H x W gray pixels (otherwise they arrive as R = G = B)
    _takes_gray: bool | None = None  # None: same as native_gray
    min_side: int = 1
    max_side: int = 16383

    # ---- what subclasses provide -------------------------------------------------------
    @abc.abstractmethod
    def _encode(self, pixels: np.ndarray, quality: int) -> bytes:
        """uint8 H x W (gray, only if native_gray) or H x W x 3 -> file bytes."""

    @abc.abstractmethod
    def _decode(self, data: bytes, channels: int | None = None) -> np.ndarray:
        """File bytes -> uint8 H x W or H x W x 3. May raise anything on bad data.

        ``channels`` is a hint (a codec may return the requested layout directly); the base
        class converts whatever comes back.
        """

    @abc.abstractmethod
    def parse(self, data: bytes) -> Parsed:
        """Parse the container for real; raise CorruptFileError if it is malformed."""

    @property
    @abc.abstractmethod
    def library(self) -> str:
        """The library (and version) doing the coding, for reports."""

    # ---- the public interface ----------------------------------------------------------
    def encode(self, image: torch.Tensor | np.ndarray, quality: int) -> bytes:
        """Encode one image (see :mod:`.image` for accepted forms) at ``quality``."""
        quality = self.check_quality(quality)
        pixels = to_uint8(image, min_side=self.min_side, max_side=self.max_side)
        takes_gray = self.native_gray if self._takes_gray is None else self._takes_gray
        if pixels.ndim == 2 and not takes_gray:
            pixels = convert_channels(pixels, 3)
        return bytes(self._encode(pixels, quality))

    def decode(self, bitstream: bytes, channels: int | None = None) -> torch.Tensor:
        """Decode a file to a float32 tensor C x H x W in [0, 1].

        channels: None keeps what the file holds; 1 or 3 converts (RGB -> gray with BT.601
        luma weights, gray -> RGB by repetition). Malformed input raises CorruptFileError.
        """
        if channels not in (None, 1, 3):
            raise ConfigError(f"channels must be 1, 3 or None, got {channels!r}")
        data = _as_bytes(bitstream)
        parsed = self.parse(data)
        if parsed.height * parsed.width > MAX_DECODE_PIXELS:
            raise CorruptFileError(
                f"{self.name}: headers declare {parsed.height} x {parsed.width} pixels, "
                f"more than the decoder limit of {MAX_DECODE_PIXELS}"
            )
        try:
            pixels = self._decode(data, channels)
        except (CorruptFileError, MemoryError):
            raise
        except Exception as exc:  # noqa: BLE001 - library errors on bad data come in many types
            raise CorruptFileError(f"{self.name}: cannot decode ({type(exc).__name__}: {exc})") from None
        pixels = np.asarray(pixels)
        if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] != 3):
            raise CorruptFileError(f"{self.name}: decoded to an unsupported layout {pixels.dtype} {pixels.shape}")
        h, w = pixels.shape[:2]
        if parsed.height and parsed.width and (
            (h, w) != (parsed.height, parsed.width) if parsed.exact else (h > parsed.height or w > parsed.width)
        ):
            raise CorruptFileError(
                f"{self.name}: decoded {pixels.shape[:2]} but headers declare {(parsed.height, parsed.width)}"
            )
        return to_tensor(convert_channels(pixels, channels))

    def payload_ranges(self, bitstream: bytes) -> tuple[tuple[int, int], ...]:
        """(start, end) byte ranges of the payload inside ``bitstream``."""
        return self.parse(_as_bytes(bitstream)).payload

    def payload_bytes(self, bitstream: bytes) -> int:
        """Size of the payload (the coded picture data) in bytes; see the codec's docstring."""
        return sum(end - start for start, end in self.payload_ranges(bitstream))

    def payload(self, bitstream: bytes) -> bytes:
        """The payload bytes themselves, concatenated in file order (what a link would carry)."""
        data = _as_bytes(bitstream)
        return b"".join(data[start:end] for start, end in self.parse(data).payload)

    def splice_payload(self, bitstream: bytes, payload: bytes) -> bytes:
        """Rebuild a file from its known non-payload parts and a (received) payload.

        ``splice_payload(f, payload(f)) == f``: a receiver that knows the headers can rebuild
        the file from payload bytes alone, which is what the payload rate assumes.
        """
        data = _as_bytes(bitstream)
        ranges = self.parse(data).payload
        if len(payload) != sum(end - start for start, end in ranges):
            raise DataError(f"{self.name}: payload has {len(payload)} bytes, the file holds a different amount")
        out, cursor, taken = bytearray(), 0, 0
        for start, end in ranges:
            out += data[cursor:start]
            out += payload[taken : taken + end - start]
            taken += end - start
            cursor = end
        out += data[cursor:]
        return bytes(out)

    # ---- payload-only transmission: what the receiver rebuilds from what it was sent ------
    @property
    def quality_levels(self) -> int:
        return self.quality_max - self.quality_min + 1

    @property
    def quality_index_bits(self) -> int:
        """Bits of the quality index a payload-only sender puts in front of the payload:
        ceil(log2(number of quality levels))."""
        return max(1, math.ceil(math.log2(self.quality_levels)))

    def template(self, quality: int, shape: tuple[int, ...]) -> bytes:
        """The file this codec writes for a flat mid-grey image of ``shape`` (C x H x W) at
        ``quality``: built by the receiver from what it knows (codec, quality, image shape),
        it supplies every byte of a file that is not payload."""
        quality = self.check_quality(quality)
        if len(shape) != 3 or shape[0] not in (1, 3):
            raise DataError(f"{self.name}: template shape must be C x H x W with C 1 or 3, got {tuple(shape)}")
        return self.encode(np.full(tuple(shape), 128, np.uint8), quality)

    def rebuild_file(self, template: bytes, payload: bytes) -> bytes:
        """A file from a :meth:`template` and a received payload: the payload pieces in the
        template's payload ranges, then the length fields that depend on them set again.
        ``rebuild_file(template(q, shape), payload(f)) == f`` for a file f of an image of that
        shape at quality q; codecs whose headers hold more than that override it."""
        data = _as_bytes(template)
        ranges = self.parse(data).payload
        pieces = self._split_payload(data, ranges, _as_bytes(payload))
        out, cursor = bytearray(), 0
        for (start, end), piece in zip(ranges, pieces):
            out += data[cursor:start]
            out += piece
            cursor = end
        out += data[cursor:]
        return self._fix_lengths(bytes(out), data, ranges, pieces)

    def _split_payload(self, template: bytes, ranges, payload: bytes) -> list[bytes]:
        """The received payload cut into one piece per template range (default: one range)."""
        if len(ranges) != 1:
            raise DataError(f"{self.name}: cannot cut a payload over {len(ranges)} ranges")
        return [payload]

    def _fix_lengths(self, data: bytes, template: bytes, ranges, pieces: list[bytes]) -> bytes:
        """Set the header fields that count payload bytes (default: there are none)."""
        return data

    def check_quality(self, quality: int) -> int:
        if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)):
            raise ConfigError(f"{self.name}: quality must be an integer, got {quality!r}")
        if not self.quality_min <= quality <= self.quality_max:
            raise ConfigError(
                f"{self.name}: quality must lie in [{self.quality_min}, {self.quality_max}] "
                f"({self.quality_meaning}), got {quality}"
            )
        return int(quality)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} quality {self.quality_min}..{self.quality_max}>"


def _as_bytes(bitstream: bytes) -> bytes:
    if isinstance(bitstream, (bytes, bytearray, memoryview)):
        return bytes(bitstream)
    raise DataError(f"bitstream must be bytes, got {type(bitstream).__name__}")
