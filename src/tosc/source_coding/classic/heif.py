"""HEVC intra in HEIF through pillow-heif (libheif + x265): the BPG equivalent.

BPG (Bellard's "Better Portable Graphics", the codec the paper and CompressAI's bench call
BPG) is an HEVC intra picture in its own small container. BPG's encoder is not packaged for
this platform, so the same HEVC intra coding is done by x265 and stored in HEIF, the standard
container for it; the payload rate below excludes the container, so the two are comparable.

Grayscale is coded natively (HEVC 4:0:0 monochrome); RGB as YCbCr 4:2:0 (libheif default).
quality: libheif/x265 quality 0..100 (pillow-heif ``quality``).

Payload: the VCL NAL units (the coded slices, with their 2-byte NAL headers) inside ``mdat``,
without the 4-byte length fields. The ftyp/meta boxes and the parameter sets (VPS, SPS, PPS,
kept in the ``hvcC`` property) count as known.
"""

from __future__ import annotations

import io

import numpy as np
import pillow_heif
from PIL import Image

from ... import registry
from ...errors import CorruptFileError
from .base import ClassicCodec, Parsed
from .isobmff import read_heif_like, resize_coded_data

__all__ = ["HeifCodec", "parse_heif"]


def parse_heif(data: bytes) -> Parsed:
    (start, end), height, width, exact = read_heif_like(data, (b"heic", b"heix", b"mif1"), "heif")
    ranges: list[tuple[int, int]] = []
    pos = start
    while pos < end:
        if pos + 4 > end:
            raise CorruptFileError("heif: truncated NAL length field in mdat")
        length = int.from_bytes(data[pos : pos + 4], "big")
        nal_start, nal_end = pos + 4, pos + 4 + length
        if length < 2 or nal_end > end:
            raise CorruptFileError(f"heif: NAL unit at byte {pos} has a bad length {length}")
        nal_type = (data[nal_start] >> 1) & 0x3F
        if nal_type < 32:  # VCL: coded slice segments
            ranges.append((nal_start, nal_end))
        pos = nal_end
    if not ranges:
        raise CorruptFileError("heif: no coded slice in mdat")
    return Parsed(tuple(ranges), height, width, exact)


class HeifCodec(ClassicCodec):
    __doc__ = __doc__
    name = "heif"
    description = "HEVC intra in HEIF (pillow-heif / x265), the BPG equivalent; payload = coded slice NAL units"
    quality_meaning = "libheif/x265 quality"
    quality_min = 0
    quality_max = 100
    native_gray = True
    min_side = 1

    @property
    def library(self) -> str:
        info = pillow_heif.libheif_info()
        return f"pillow-heif {pillow_heif.__version__} (libheif {info['libheif']}, {info['HEIF']})"

    def _encode(self, pixels: np.ndarray, quality: int) -> bytes:
        buffer = io.BytesIO()
        pillow_heif.from_pillow(Image.fromarray(pixels)).save(buffer, quality=quality)
        return buffer.getvalue()

    def _decode(self, data: bytes, channels: int | None = None) -> np.ndarray:
        heif = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)
        if heif.mode not in ("L", "RGB"):
            raise CorruptFileError(f"heif: unsupported decoded mode {heif.mode}")
        return np.asarray(heif)

    def parse(self, data: bytes) -> Parsed:
        return parse_heif(data)

    def _fix_lengths(self, data: bytes, template: bytes, ranges, pieces: list[bytes]) -> bytes:
        """The NAL unit's 4-byte length, then the mdat size and the iloc extent length."""
        (start, end), piece = ranges[0], pieces[0]
        out = data[: start - 4] + len(piece).to_bytes(4, "big") + data[start:]
        return resize_coded_data(template, out, start, len(piece) - (end - start), "heif")


registry.register("codec", "heif", HeifCodec.description, family="classic")(HeifCodec)
