"""JPEG XL (ISO/IEC 18181) through imagecodecs' libjxl, as a bare codestream.

Grayscale is coded natively; RGB as XYB (libjxl default). quality: libjxl quality 0..100
(imagecodecs ``level``; maps to a Butteraugli distance, lossy throughout).

Payload: the frame sections (the bytes after each frame's table of contents). JPEG XL headers
are bit-packed, not byte-aligned, so the boundary is found by parsing them for real: the
signature, SizeHeader, ImageMetadata and transform data, then each FrameHeader and its TOC
(ISO/IEC 18181-1 field order). The parse is checked against the file: the TOC section sizes
must add up to exactly the bytes that follow, frame after frame, up to the end of the file.
Codestreams this parser cannot split (an embedded ICC profile, a preview, a permuted TOC,
header extensions) raise CorruptFileError from ``payload_bytes`` rather than guess.
"""

from __future__ import annotations

import imagecodecs
import numpy as np

from ... import registry
from ...errors import CorruptFileError
from .base import ClassicCodec, Parsed

__all__ = ["JpegXlCodec", "parse_jxl"]


class _Bits:
    """LSB-first bit reader (JPEG XL bit order)."""

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.bit = pos * 8

    def u(self, n: int) -> int:
        value = 0
        for i in range(n):
            byte = self.bit >> 3
            if byte >= len(self.data):
                raise CorruptFileError("jpegxl: headers run past the end of the codestream")
            value |= ((self.data[byte] >> (self.bit & 7)) & 1) << i
            self.bit += 1
        return value

    def bool(self) -> bool:
        return bool(self.u(1))

    def u32(self, *dists: tuple[int, int]) -> int:
        """U32 with four (offset, nbits) distributions chosen by a 2-bit selector."""
        offset, nbits = dists[self.u(2)]
        return offset + (self.u(nbits) if nbits else 0)

    def u64(self) -> int:
        selector = self.u(2)
        if selector == 0:
            return 0
        if selector == 1:
            return 1 + self.u(4)
        if selector == 2:
            return 17 + self.u(8)
        value, shift = self.u(12), 12
        while self.bool():
            if shift == 60:
                return value | (self.u(4) << shift)
            value |= self.u(8) << shift
            shift += 8
        return value

    def enum(self) -> int:
        return self.u32((0, 0), (1, 0), (2, 4), (18, 6))

    def f16(self) -> None:
        self.u(16)

    def zero_pad_to_byte(self) -> None:
        if self.bit & 7:
            if self.u(8 - (self.bit & 7)):
                raise CorruptFileError("jpegxl: non-zero padding bits")

    @property
    def byte_pos(self) -> int:
        return self.bit >> 3


def _size_header(r: _Bits) -> tuple[int, int]:
    dist = ((1, 9), (1, 13), (1, 18), (1, 30))
    div8 = r.bool()
    height = 8 * (1 + r.u(5)) if div8 else r.u32(*dist)
    ratio = r.u(3)
    if ratio == 0:
        width = 8 * (1 + r.u(5)) if div8 else r.u32(*dist)
    else:
        num, den = {1: (1, 1), 2: (12, 10), 3: (4, 3), 4: (3, 2), 5: (16, 9), 6: (5, 4), 7: (2, 1)}[ratio]
        width = height * num // den
    return height, width


def _bit_depth(r: _Bits) -> None:
    if r.bool():  # float samples
        r.u32((32, 0), (16, 0), (24, 0), (1, 6))
        r.u(4)
    else:
        r.u32((8, 0), (10, 0), (12, 0), (1, 6))


def _extensions(r: _Bits) -> None:
    if r.u64():
        raise CorruptFileError("jpegxl: header extensions are not supported by the payload parser")


def _customxy(r: _Bits) -> None:
    for _ in range(2):
        r.u32((0, 19), (524288, 19), (1048576, 20), (2097152, 21))


def _colour_encoding(r: _Bits) -> None:
    if r.bool():  # all_default
        return
    want_icc = r.bool()
    colour_space = r.enum()
    if want_icc:
        raise CorruptFileError("jpegxl: an embedded ICC profile is not supported by the payload parser")
    if colour_space != 2:  # not XYB
        if r.enum() == 2:  # custom white point
            _customxy(r)
        if colour_space != 1:  # not grey
            if r.enum() == 2:  # custom primaries
                for _ in range(3):
                    _customxy(r)
    if r.bool():  # have_gamma
        r.u(24)
    else:
        r.enum()
    r.enum()  # rendering intent


def _image_metadata(r: _Bits) -> dict:
    meta = {"xyb_encoded": True, "num_extra": 0, "have_animation": False, "have_timecodes": False}
    if not r.bool():  # not all_default
        extra_fields = r.bool()
        if extra_fields:
            r.u(3)  # orientation
            if r.bool():  # intrinsic size
                _size_header(r)
            if r.bool():
                raise CorruptFileError("jpegxl: a preview image is not supported by the payload parser")
            if r.bool():  # animation header
                meta["have_animation"] = True
                r.u32((100, 0), (1000, 0), (1, 10), (1, 30))
                r.u32((1, 0), (1001, 0), (1, 8), (1, 10))
                r.u32((0, 0), (0, 3), (0, 16), (0, 32))
                meta["have_timecodes"] = r.bool()
        _bit_depth(r)
        r.bool()  # modular_16bit_buffers
        meta["num_extra"] = r.u32((0, 0), (1, 0), (2, 4), (1, 12))
        for _ in range(meta["num_extra"]):
            if not r.bool():  # not d_alpha
                kind = r.enum()
                _bit_depth(r)
                r.u32((0, 0), (3, 0), (4, 0), (1, 3))  # dim_shift
                name_len = r.u32((0, 0), (0, 4), (16, 5), (48, 10))
                r.u(8 * name_len)
                if kind == 0:
                    r.bool()  # alpha_associated
                elif kind == 2:  # spot colour
                    for _ in range(4):
                        r.f16()
                elif kind == 5:  # CFA
                    r.u32((1, 0), (0, 2), (3, 4), (19, 8))
        meta["xyb_encoded"] = r.bool()
        _colour_encoding(r)
        if extra_fields and not r.bool():  # tone mapping, not all_default
            r.f16(), r.f16(), r.bool(), r.f16()
        _extensions(r)
    if not r.bool():  # transform data: not default_m
        if meta["xyb_encoded"] and not r.bool():  # opsin inverse matrix, not all_default
            for _ in range(16):
                r.f16()
        cw_mask = r.u(3)
        for bit, count in ((1, 15), (2, 55), (4, 210)):
            if cw_mask & bit:
                for _ in range(count):
                    r.f16()
    return meta


def _blending_info(r: _Bits, num_extra: int, main_mode: int | None, full_frame: bool) -> int:
    mode = r.u32((0, 0), (1, 0), (2, 0), (3, 2))
    if num_extra and mode in (2, 3):
        r.u32((0, 0), (1, 0), (2, 0), (3, 3))  # alpha channel
    if num_extra and mode in (2, 3, 4):
        r.bool()  # clamp
    governing = mode if main_mode is None else main_mode
    if governing != 0 or not full_frame:
        r.u(2)  # source
    return mode


def _restoration_filter(r: _Bits, modular: bool) -> None:
    if r.bool():  # all_default
        return
    if r.bool() and r.bool():  # gab enabled, gab custom
        for _ in range(6):
            r.f16()
    if r.u(2):  # epf iterations
        if not modular and r.bool():  # sharp custom
            for _ in range(8):
                r.f16()
        if r.bool():  # weight custom
            for _ in range(3):
                r.f16()
            r.u(32)
        if r.bool():  # sigma custom
            for _ in range(3 if modular else 4):
                r.f16()
        if modular:
            r.f16()
    _extensions(r)


def _frame(r: _Bits, meta: dict, height: int, width: int) -> tuple[int, bool, int, int]:
    """Read one FrameHeader and TOC; return (the TOC entries' total bytes, is_last, the byte
    where the TOC starts, the number of TOC entries)."""
    frame_type, modular, upsampling, lf_level = 0, False, 1, 0
    group_size_shift, num_passes, is_last = 1, 1, True
    num_extra = meta["num_extra"]
    if not r.bool():  # not all_default
        frame_type = r.u(2)
        modular = bool(r.u(1))
        flags = r.u64()
        use_lf_frame = bool(flags & 0x20)
        if not meta["xyb_encoded"] and r.bool() and not use_lf_frame:  # do_YCbCr
            r.u(6)  # jpeg_upsampling, 3 x u(2)
        if not use_lf_frame:
            upsampling = r.u32((1, 0), (2, 0), (4, 0), (8, 0))
            for _ in range(num_extra):
                r.u32((1, 0), (2, 0), (4, 0), (8, 0))
        if modular:
            group_size_shift = r.u(2)
        if meta["xyb_encoded"] and not modular:
            r.u(3), r.u(3)  # x_qm_scale, b_qm_scale
        if frame_type != 2:  # not reference-only: passes
            num_passes = r.u32((1, 0), (2, 0), (3, 0), (4, 3))
            if num_passes != 1:
                num_ds = r.u32((0, 0), (1, 0), (2, 0), (3, 1))
                r.u(2 * (num_passes - 1))  # shift
                for _ in range(num_ds):
                    r.u32((1, 0), (2, 0), (4, 0), (8, 0))
                for _ in range(num_ds):
                    r.u32((0, 0), (1, 0), (2, 0), (0, 3))
        if frame_type == 1:
            lf_level = 1 + r.u(2)
        have_crop = False
        x0 = y0 = 0
        if frame_type != 1:
            have_crop = r.bool()
        if have_crop:
            crop = ((0, 8), (256, 11), (2304, 14), (18688, 30))
            if frame_type != 2:
                x0 = _unpack_signed(r.u32(*crop))
                y0 = _unpack_signed(r.u32(*crop))
            width, height = r.u32(*crop), r.u32(*crop)
        full_frame = not have_crop or (x0 <= 0 and y0 <= 0 and x0 + width >= meta["width"] and y0 + height >= meta["height"])
        normal = frame_type in (0, 3)
        duration, mode = 0, 0
        if normal:
            mode = _blending_info(r, num_extra, None, full_frame)
            for _ in range(num_extra):
                _blending_info(r, num_extra, mode, full_frame)
            if meta["have_animation"]:
                duration = r.u32((0, 0), (1, 0), (0, 8), (0, 32))
            if meta["have_timecodes"]:
                r.u(32)
            is_last = r.bool()
        else:
            is_last = False
        save_as_reference = 0
        if frame_type != 1 and not is_last:
            save_as_reference = r.u(2)
        resets_canvas = mode == 0 and full_frame
        if frame_type == 2 or (
            resets_canvas and not is_last and (duration == 0 or save_as_reference != 0) and frame_type != 1
        ):
            r.bool()  # save_before_ct
        name_len = r.u32((0, 0), (0, 4), (16, 5), (48, 10))
        r.u(8 * name_len)
        _restoration_filter(r, modular)
        _extensions(r)
    # table of contents
    if upsampling > 1:
        width, height = -(-width // upsampling), -(-height // upsampling)
    if lf_level:
        width, height = -(-width // (1 << 3 * lf_level)), -(-height // (1 << 3 * lf_level))
    group_dim = 128 << group_size_shift
    groups = -(-width // group_dim) * -(-height // group_dim)
    lf_groups = -(-width // (8 * group_dim)) * -(-height // (8 * group_dim))
    entries = 1 if groups == 1 and num_passes == 1 else 2 + lf_groups + groups * num_passes
    if r.bool():
        raise CorruptFileError("jpegxl: a permuted TOC is not supported by the payload parser")
    r.zero_pad_to_byte()
    toc_start = r.byte_pos
    total = sum(r.u32(*_TOC_DISTRIBUTIONS) for _ in range(entries))
    r.zero_pad_to_byte()
    return total, is_last, toc_start, entries


_TOC_DISTRIBUTIONS = ((0, 10), (1024, 14), (17408, 22), (4211712, 30))


def _toc_one_entry(size: int) -> bytes:
    """A one-entry TOC holding ``size``: U32 with the first distribution that fits, LSB first,
    zero-padded to a byte (what libjxl writes)."""
    for selector, (offset, nbits) in enumerate(_TOC_DISTRIBUTIONS):
        if offset <= size < offset + (1 << nbits):
            value, n = selector | ((size - offset) << 2), 2 + nbits
            return value.to_bytes((n + 7) // 8, "little")
    raise CorruptFileError(f"jpegxl: a section of {size} bytes does not fit a TOC entry")


def _unpack_signed(value: int) -> int:
    return -((value + 1) >> 1) if value & 1 else value >> 1


def parse_jxl(data: bytes) -> Parsed:
    return _parse_with_tocs(data)[0]


def _parse_with_tocs(data: bytes) -> tuple[Parsed, list[tuple[int, int]]]:
    if len(data) < 2 or data[:2] != b"\xff\x0a":
        raise CorruptFileError("jpegxl: not a bare JPEG XL codestream (no FF0A signature)")
    r = _Bits(data, 2)
    height, width = _size_header(r)
    meta = _image_metadata(r)
    meta["height"], meta["width"] = height, width
    r.zero_pad_to_byte()
    return _walk_frames(data, r, meta, height, width)


def _walk_frames(data: bytes, r: _Bits, meta: dict, height: int, width: int) -> tuple[Parsed, list[tuple[int, int]]]:
    """The Parsed codestream and, per frame, (TOC start byte, TOC entries)."""
    ranges: list[tuple[int, int]] = []
    tocs: list[tuple[int, int]] = []
    while True:
        size, is_last, toc_start, entries = _frame(r, meta, height, width)
        tocs.append((toc_start, entries))
        start = r.byte_pos
        if start + size > len(data):
            raise CorruptFileError("jpegxl: frame sections run past the end of the codestream")
        if size:
            ranges.append((start, start + size))
        r.bit = (start + size) * 8
        if is_last:
            break
        if r.byte_pos >= len(data):
            raise CorruptFileError("jpegxl: codestream ends before its last frame")
    if r.byte_pos != len(data):
        raise CorruptFileError(
            f"jpegxl: header parse does not account for the file ({len(data) - r.byte_pos} bytes left over)"
        )
    return Parsed(tuple(ranges), height, width), tocs


class JpegXlCodec(ClassicCodec):
    __doc__ = __doc__
    name = "jpegxl"
    description = "JPEG XL bare codestream (imagecodecs / libjxl); payload = frame sections after the TOC"
    quality_meaning = "libjxl quality"
    quality_min = 0
    quality_max = 100
    native_gray = True

    @property
    def library(self) -> str:
        return f"imagecodecs {imagecodecs.__version__} ({imagecodecs.jpegxl_version()})"

    def _encode(self, pixels: np.ndarray, quality: int) -> bytes:
        return imagecodecs.jpegxl_encode(pixels, level=quality, usecontainer=False, numthreads=1)

    def _decode(self, data: bytes, channels: int | None = None) -> np.ndarray:
        pixels = imagecodecs.jpegxl_decode(data, numthreads=1)
        if pixels.ndim == 3 and pixels.shape[2] == 1:
            pixels = pixels[..., 0]
        return pixels

    def parse(self, data: bytes) -> Parsed:
        return parse_jxl(data)

    def rebuild_file(self, template: bytes, payload: bytes) -> bytes:
        """The template's headers up to its TOC, a one-entry TOC holding the payload's length,
        the payload. Codestreams with more frames or sections are refused (their section
        sizes are not known to the receiver)."""
        parsed, tocs = _parse_with_tocs(template)
        if len(tocs) != 1 or tocs[0][1] != 1:
            raise CorruptFileError("jpegxl: only one frame with one section can be rebuilt from its payload")
        return template[: tocs[0][0]] + _toc_one_entry(len(payload)) + bytes(payload)


registry.register("codec", "jpegxl", JpegXlCodec.description, family="classic")(JpegXlCodec)
