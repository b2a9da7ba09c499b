"""JPEG 2000 (ITU-T T.800) through imagecodecs' OpenJPEG, as a raw J2K codestream.

Grayscale is coded natively (one component); RGB with the irreversible colour transform.
quality: OpenJPEG's fixed-quality target, a PSNR in dB (imagecodecs ``level``; 9/7 wavelet,
one quality layer). Measured at 28 x 28: targets up to about 16 dB all give the smallest
stream (almost no coefficient data), and the size stops growing near 64 dB.

Why not Pillow: its ``quality_mode="rates"`` (compression ratios) was measured not to move the
size at 28 x 28 (ratios 200, 50 and 10 all gave the same 257-byte file), and it wraps the
codestream in a JP2 box structure the link does not need.

Payload: the packet data of every tile-part (from each SOD marker to the end of its tile-part,
as given by the SOT length). The main header (SIZ, COD, QCD, ...) and the SOT/SOD marker
segments count as known.
"""

from __future__ import annotations

import imagecodecs
import numpy as np

from ... import registry
from ...errors import CorruptFileError
from .base import ClassicCodec, Parsed

__all__ = ["Jpeg2000Codec", "parse_j2k"]


def parse_j2k(data: bytes) -> Parsed:
    n = len(data)
    if n < 4 or data[:4] != b"\xff\x4f\xff\x51":
        raise CorruptFileError("jpeg2000: not a J2K codestream (no SOC followed by SIZ)")
    siz_length = int.from_bytes(data[4:6], "big")
    if siz_length < 38 or 4 + siz_length > n:
        raise CorruptFileError("jpeg2000: bad SIZ segment")
    xsiz, ysiz, x0, y0 = (int.from_bytes(data[8 + 4 * i : 12 + 4 * i], "big") for i in range(4))
    if xsiz <= x0 or ysiz <= y0:
        raise CorruptFileError("jpeg2000: SIZ declares an empty image")
    pos = 4 + siz_length
    # main header: marker segments until the first SOT
    while True:
        if pos + 4 > n:
            raise CorruptFileError("jpeg2000: main header runs past the end of the codestream")
        if data[pos] != 0xFF:
            raise CorruptFileError(f"jpeg2000: expected a marker at byte {pos}")
        if data[pos + 1] == 0x90:
            break
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if length < 2:
            raise CorruptFileError("jpeg2000: bad marker segment length")
        pos += 2 + length
    ranges: list[tuple[int, int]] = []
    while True:
        if pos + 2 > n:
            raise CorruptFileError("jpeg2000: codestream ends without EOC")
        marker = data[pos : pos + 2]
        if marker == b"\xff\xd9":
            break
        if marker != b"\xff\x90" or pos + 12 > n:
            raise CorruptFileError(f"jpeg2000: expected SOT or EOC at byte {pos}")
        psot = int.from_bytes(data[pos + 6 : pos + 10], "big")
        tile_end = pos + psot if psot else n - 2  # Psot = 0: the last tile-part, up to EOC
        if psot and psot < 14 or tile_end > n:
            raise CorruptFileError("jpeg2000: tile-part length out of range")
        cursor = pos + 12
        while True:  # tile-part header up to SOD
            if cursor + 2 > tile_end:
                raise CorruptFileError("jpeg2000: tile-part without SOD")
            if data[cursor : cursor + 2] == b"\xff\x93":
                cursor += 2
                break
            length = int.from_bytes(data[cursor + 2 : cursor + 4], "big")
            if data[cursor] != 0xFF or length < 2:
                raise CorruptFileError("jpeg2000: bad tile-part header")
            cursor += 2 + length
        if tile_end > cursor:
            ranges.append((cursor, tile_end))
        pos = tile_end
    if pos + 2 != n:
        raise CorruptFileError("jpeg2000: bytes after EOC")
    return Parsed(tuple(ranges), ysiz - y0, xsiz - x0)


class Jpeg2000Codec(ClassicCodec):
    __doc__ = __doc__
    name = "jpeg2000"
    description = "JPEG 2000 J2K codestream (imagecodecs / OpenJPEG); payload = tile-part packet data"
    quality_meaning = "OpenJPEG fixed-quality target PSNR in dB"
    quality_min = 1
    quality_max = 70
    native_gray = True

    @property
    def library(self) -> str:
        return f"imagecodecs {imagecodecs.__version__} ({imagecodecs.jpeg2k_version()})"

    def _encode(self, pixels: np.ndarray, quality: int) -> bytes:
        return imagecodecs.jpeg2k_encode(pixels, level=quality, codecformat="j2k", numthreads=1)

    def _decode(self, data: bytes, channels: int | None = None) -> np.ndarray:
        pixels = imagecodecs.jpeg2k_decode(data, numthreads=1)
        if pixels.ndim == 3 and pixels.shape[2] == 1:
            pixels = pixels[..., 0]
        return pixels

    def parse(self, data: bytes) -> Parsed:
        return parse_j2k(data)

    def _fix_lengths(self, data: bytes, template: bytes, ranges, pieces: list[bytes]) -> bytes:
        """Each tile-part's Psot (SOT to the end of its packet data) follows its payload."""
        out = bytearray(data)
        shift = 0
        for (start, end), piece in zip(ranges, pieces):
            sot = template.rfind(b"\xff\x90", 0, start)  # the tile-part header: SOT ... SOD
            psot = int.from_bytes(template[sot + 6 : sot + 10], "big")
            if sot < 0 or psot == 0 or sot + psot != end:
                raise CorruptFileError("jpeg2000: the template's tile-part layout is not SOT ... SOD payload")
            out[sot + shift + 6 : sot + shift + 10] = (psot + len(piece) - (end - start)).to_bytes(4, "big")
            shift += len(piece) - (end - start)
        return bytes(out)


registry.register("codec", "jpeg2000", Jpeg2000Codec.description, family="classic")(Jpeg2000Codec)
