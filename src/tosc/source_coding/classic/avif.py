"""AVIF (AV1 intra in HEIF) through Pillow's libavif.

Grayscale is coded natively (AV1 monochrome 4:0:0); RGB as YCbCr 4:2:0 (Pillow's default).
quality: libavif quality 0..100 (Pillow's ``quality``; speed at Pillow's default).

Why not imagecodecs: its ``avif_encode`` ``level`` was measured not to move the size of a
28 x 28 grayscale image (722 bytes at every level), while Pillow's ``quality`` does.

Payload: the OBUs inside ``mdat`` that carry the picture (frame, frame header, tile group),
with their OBU headers, without their size fields. The sequence header OBU (AV1's parameter
set, also stored in the ``av1C`` property) and the ftyp/meta boxes count as known.
"""

from __future__ import annotations

import io

import numpy as np
import PIL
from PIL import Image, features

from ... import registry
from ...errors import CorruptFileError
from .base import ClassicCodec, Parsed
from .isobmff import read_heif_like, resize_coded_data

__all__ = ["AvifCodec", "parse_avif"]

_PICTURE_OBUS = {3, 4, 6, 7}  # frame header, tile group, frame, redundant frame header


def _leb128(data: bytes, pos: int, end: int) -> tuple[int, int]:
    value = 0
    for i in range(8):
        if pos + i >= end:
            raise CorruptFileError("avif: truncated OBU size field")
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, pos + i + 1
    raise CorruptFileError("avif: OBU size field longer than 8 bytes")


def parse_avif(data: bytes) -> Parsed:
    (start, end), height, width, exact = read_heif_like(data, (b"avif",), "avif")
    ranges: list[tuple[int, int]] = []
    pos = start
    while pos < end:
        header = data[pos]
        if header & 0x80:
            raise CorruptFileError(f"avif: forbidden bit set in the OBU header at byte {pos}")
        obu_type = (header >> 3) & 0x0F
        header_len = 2 if header & 0x04 else 1
        if not header & 0x02:
            raise CorruptFileError("avif: OBU without a size field inside mdat")
        size, data_start = _leb128(data, pos + header_len, end)
        data_end = data_start + size
        if data_end > end:
            raise CorruptFileError(f"avif: OBU at byte {pos} runs past the end of mdat")
        if obu_type in _PICTURE_OBUS:
            ranges += [(pos, pos + header_len), (data_start, data_end)]
        pos = data_end
    if not ranges:
        raise CorruptFileError("avif: no frame OBU in mdat")
    return Parsed(tuple(ranges), height, width, exact)


class AvifCodec(ClassicCodec):
    __doc__ = __doc__
    name = "avif"
    description = "AVIF, AV1 intra (Pillow / libavif); payload = frame OBUs"
    quality_meaning = "libavif quality"
    quality_min = 0
    quality_max = 100
    native_gray = True

    @property
    def library(self) -> str:
        return f"Pillow {PIL.__version__} (libavif {features.version('avif')})"

    def _encode(self, pixels: np.ndarray, quality: int) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="AVIF", quality=quality, max_threads=1)
        return buffer.getvalue()

    def _decode(self, data: bytes, channels: int | None = None) -> np.ndarray:
        with Image.open(io.BytesIO(data), formats=["AVIF"]) as image:
            image.load()
            if image.mode not in ("L", "RGB"):
                raise CorruptFileError(f"avif: unsupported decoded mode {image.mode}")
            return np.asarray(image)

    def parse(self, data: bytes) -> Parsed:
        return parse_avif(data)

    def _split_payload(self, template: bytes, ranges, payload: bytes) -> list[bytes]:
        """One picture OBU: its header (1 byte, 2 with the extension flag), then its data."""
        if len(ranges) != 2 or not payload:
            raise CorruptFileError("avif: a payload is one frame OBU (header and data)")
        header = 2 if payload[0] & 0x04 else 1
        return [payload[:header], payload[header:]]

    def _fix_lengths(self, data: bytes, template: bytes, ranges, pieces: list[bytes]) -> bytes:
        """The OBU's LEB128 size field (minimal length, as libaom writes it), then the mdat
        size and the iloc extent length."""
        (h_start, h_end), (d_start, d_end) = ranges
        size_at = h_start + len(pieces[0])
        value, size = len(pieces[1]), bytearray()
        while True:
            size.append((value & 0x7F) | (0x80 if value > 0x7F else 0))
            value >>= 7
            if not value:
                break
        old = d_start - h_end
        out = data[:size_at] + bytes(size) + data[size_at + old :]
        grown = len(pieces[0]) + len(size) + len(pieces[1]) - (d_end - h_start)
        return resize_coded_data(template, out, h_start, grown, "avif")


registry.register("codec", "avif", AvifCodec.description, family="classic")(AvifCodec)
