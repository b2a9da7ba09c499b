"""JPEG (ITU-T T.81) through Pillow's libjpeg-turbo.

Grayscale is coded natively (one component); RGB with Pillow's defaults (YCbCr, 4:2:0), the
same settings CompressAI's bench uses. quality: Pillow/libjpeg quality 1..100.

Payload: the entropy-coded segments of every scan (the bytes between each SOS header and the
next marker, restart markers and byte stuffing included). Markers, the JFIF header, DQT
(fixed by the quality), SOF, SOS headers and DHT count as known to the receiver, which is true
for the standard Huffman tables of the default ``jpeg`` codec. ``jpeg-optimized``
(``optimize=True``) writes Huffman tables fitted to the image; those cannot be known in advance,
so its payload also counts the DHT segments.
"""

from __future__ import annotations

import io

import numpy as np
import PIL
from PIL import Image, features

from ... import registry
from ...errors import CorruptFileError
from .base import ClassicCodec, Parsed

__all__ = ["JpegCodec", "parse_jpeg"]

_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM, RST0..7: no length field


def parse_jpeg(data: bytes, *, tables_in_payload: bool = False) -> Parsed:
    """Walk the marker segments of a JPEG file; see the module docstring for the payload."""
    n = len(data)
    if n < 4 or data[0] != 0xFF or data[1] != 0xD8:
        raise CorruptFileError("jpeg: no SOI marker at the start")
    ranges: list[tuple[int, int]] = []
    height = width = 0
    pos = 2
    while True:
        if pos + 2 > n:
            raise CorruptFileError("jpeg: file ends before the EOI marker")
        if data[pos] != 0xFF:
            raise CorruptFileError(f"jpeg: expected a marker at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:  # EOI
            break
        if marker in _STANDALONE:
            pos += 2
            continue
        if pos + 4 > n:
            raise CorruptFileError("jpeg: truncated marker segment")
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        end = pos + 2 + length
        if length < 2 or end > n:
            raise CorruptFileError(f"jpeg: marker 0x{marker:02X} at byte {pos} has a bad length {length}")
        if marker in _SOF_MARKERS:
            if length < 8:
                raise CorruptFileError("jpeg: SOF segment too short")
            height = int.from_bytes(data[pos + 5 : pos + 7], "big")
            width = int.from_bytes(data[pos + 7 : pos + 9], "big")
        if marker == 0xC4 and tables_in_payload:
            ranges.append((pos, end))
        pos = end
        if marker == 0xDA:  # SOS: entropy-coded data follows until a marker other than RSTn
            start = pos
            while True:
                hit = data.find(b"\xff", pos)
                if hit < 0 or hit + 1 >= n:
                    raise CorruptFileError("jpeg: scan data runs to the end of the file (no EOI)")
                following = data[hit + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7:
                    pos = hit + 2
                    continue
                if following == 0xFF:  # fill bytes before a marker
                    pos = hit + 1
                    continue
                break
            if hit > start:
                ranges.append((start, hit))
            pos = hit
    if not ranges or not (height and width):
        raise CorruptFileError("jpeg: no frame header or no scan data")
    return Parsed(tuple(ranges), height, width)


class JpegCodec(ClassicCodec):
    __doc__ = __doc__
    quality_meaning = "Pillow/libjpeg quality"
    quality_min = 1
    quality_max = 100
    native_gray = True
    max_side = 65500

    def __init__(self, optimize: bool = False) -> None:
        self.optimize = bool(optimize)
        self.name = "jpeg-optimized" if optimize else "jpeg"
        self.description = (
            "JPEG, image-fitted Huffman tables (Pillow optimize=True; tables counted as payload)"
            if optimize
            else "JPEG, standard Huffman tables (Pillow / libjpeg-turbo)"
        )

    @property
    def library(self) -> str:
        return f"Pillow {PIL.__version__} (libjpeg-turbo {features.version('libjpeg_turbo')})"

    def _encode(self, pixels: np.ndarray, quality: int) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality, optimize=self.optimize)
        return buffer.getvalue()

    def _decode(self, data: bytes, channels: int | None = None) -> np.ndarray:
        with Image.open(io.BytesIO(data), formats=["JPEG"]) as image:
            image.load()
            if image.mode not in ("L", "RGB"):
                raise CorruptFileError(f"jpeg: unsupported decoded mode {image.mode}")
            return np.asarray(image)

    def parse(self, data: bytes) -> Parsed:
        return parse_jpeg(data, tables_in_payload=self.optimize)

    def _split_payload(self, template: bytes, ranges, payload: bytes) -> list[bytes]:
        """DHT segments (``jpeg-optimized``) carry their own lengths; the scan data is the rest."""
        pieces, cursor = [], 0
        for i, (start, _) in enumerate(ranges):
            if template[start : start + 2] == b"\xff\xc4":
                if payload[cursor : cursor + 2] != b"\xff\xc4" or cursor + 4 > len(payload):
                    raise CorruptFileError("jpeg: the payload does not start with the Huffman tables it should")
                end = cursor + 2 + int.from_bytes(payload[cursor + 2 : cursor + 4], "big")
            elif i == len(ranges) - 1:
                end = len(payload)
            else:
                raise CorruptFileError("jpeg: more than one scan cannot be cut from a payload")
            pieces.append(payload[cursor:end])
            cursor = end
        return pieces


registry.register("codec", "jpeg", "JPEG (Pillow/libjpeg-turbo), standard Huffman tables; payload = scan data",
                  family="classic")(JpegCodec)
registry.register(
    "codec", "jpeg-optimized", "JPEG (Pillow optimize=True), image-fitted Huffman tables; payload = scans + DHT",
    family="classic",
)(lambda: JpegCodec(optimize=True))
