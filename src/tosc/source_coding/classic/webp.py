"""WebP (lossy, VP8 intra) through Pillow's libwebp.

WebP has no grayscale mode: a gray image is coded as RGB with R = G = B (as Pillow itself does)
and decoded back to one channel with BT.601 luma weights. quality: libwebp quality 0..100
(Pillow's ``quality``; other settings at Pillow's defaults, as in CompressAI's bench).

Payload: the ``VP8 `` chunk's data without the 7 bytes a receiver knows (start code and
dimensions): the 3-byte frame tag, which holds the image-dependent size of the first
partition (and 5 known bits: key frame, version, show), then the VP8 partitions. The RIFF
header and chunk headers count as known (their sizes follow from the payload's length).
(A lossless ``VP8L`` chunk would count without its 5-byte header; an ``ALPH`` chunk would
count whole; the encoder here writes neither.)
"""

from __future__ import annotations

import io

import numpy as np
import PIL
from PIL import Image, features

from ... import registry
from ...errors import CorruptFileError
from .base import ClassicCodec, Parsed

__all__ = ["WebpCodec", "parse_webp"]


def parse_webp(data: bytes) -> Parsed:
    n = len(data)
    if n < 20 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise CorruptFileError("webp: no RIFF/WEBP header")
    riff_end = 8 + int.from_bytes(data[4:8], "little")
    if riff_end != n:
        raise CorruptFileError(f"webp: RIFF size says {riff_end} bytes, file has {n}")
    ranges: list[tuple[int, int]] = []
    height = width = 0
    pos = 12
    while pos < n:
        if pos + 8 > n:
            raise CorruptFileError("webp: truncated chunk header")
        fourcc = data[pos : pos + 4]
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        start, end = pos + 8, pos + 8 + size
        if end > n:
            raise CorruptFileError(f"webp: chunk {fourcc!r} runs past the end of the file")
        if fourcc == b"VP8 ":
            if size < 10 or data[start + 3 : start + 6] != b"\x9d\x01\x2a" or data[start] & 1:
                raise CorruptFileError("webp: VP8 chunk is not a key frame")
            width = int.from_bytes(data[start + 6 : start + 8], "little") & 0x3FFF
            height = int.from_bytes(data[start + 8 : start + 10], "little") & 0x3FFF
            ranges += [(start, start + 3), (start + 10, end)]
        elif fourcc == b"VP8L":
            if size < 5 or data[start] != 0x2F:
                raise CorruptFileError("webp: bad VP8L header")
            bits = int.from_bytes(data[start + 1 : start + 5], "little")
            width, height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
            ranges.append((start + 5, end))
        elif fourcc == b"ALPH":
            ranges.append((start, end))
        pos = end + (size & 1)  # chunks are padded to an even size
    if not ranges:
        raise CorruptFileError("webp: no image chunk")
    return Parsed(tuple(ranges), height, width)


class WebpCodec(ClassicCodec):
    __doc__ = __doc__
    name = "webp"
    description = "WebP lossy (Pillow / libwebp); payload = VP8 partitions"
    quality_meaning = "libwebp quality"
    quality_min = 0
    quality_max = 100
    native_gray = False
    gray_coded_as = "RGB, R = G = B"

    @property
    def library(self) -> str:
        return f"Pillow {PIL.__version__} (libwebp {features.version('webp')})"

    def _encode(self, pixels: np.ndarray, quality: int) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="WEBP", quality=quality)
        return buffer.getvalue()

    def _decode(self, data: bytes, channels: int | None = None) -> np.ndarray:
        with Image.open(io.BytesIO(data), formats=["WEBP"]) as image:
            image.load()
            if image.mode != "RGB":
                raise CorruptFileError(f"webp: unsupported decoded mode {image.mode}")
            return np.asarray(image)

    def parse(self, data: bytes) -> Parsed:
        return parse_webp(data)

    def rebuild_file(self, template: bytes, payload: bytes) -> bytes:
        """RIFF / ``VP8 `` chunk around the frame tag, the template's start code and
        dimensions, and the partitions (sizes and padding from the payload's length)."""
        parse_webp(template)
        if template[12:16] != b"VP8 " or len(template) != 20 + int.from_bytes(template[16:20], "little") + (
                template[16] & 1):
            raise CorruptFileError("webp: the template is not a simple lossy file (one VP8 chunk)")
        if len(payload) < 3:
            raise CorruptFileError("webp: a payload is at least the 3-byte frame tag")
        chunk = payload[:3] + template[23:30] + payload[3:]
        pad = b"\x00" * (len(chunk) & 1)
        return (b"RIFF" + (12 + len(chunk) + len(pad)).to_bytes(4, "little") + b"WEBP"
                + b"VP8 " + len(chunk).to_bytes(4, "little") + chunk + pad)


registry.register("codec", "webp", WebpCodec.description, family="classic")(WebpCodec)
