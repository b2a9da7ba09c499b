"""VVC (H.266) intra: Fraunhofer HHI's VVenC encoder, FFmpeg's native decoder through PyAV.

No VVC encoder installs from PyPI or Debian, so VVenC 1.9.1 is built once from the vendored
source tarball by ``bash scripts/build_vvenc.sh`` into a cache outside the checkout; this module
finds ``vvencapp`` there (or at ``$TOSC_VVENCAPP``) and raises DependencyMissingError naming that
command when it is absent. Decoding needs nothing extra: PyAV ships FFmpeg's ``vvc`` decoder.

Colour: ``vvencapp`` reads 8-bit YUV 4:2:0 only (internal bit depth 10). RGB is converted with
the full-range BT.601 (JFIF) matrix and 2 x 2 chroma averaging; a grayscale image is the Y plane
with both chroma planes at 128, and decoding with ``channels=1`` returns the decoded Y plane.
Width and height must be even (4:2:0); other sizes need no padding: VVenC's automatic
conformance window codes e.g. 28 x 28 as 32 x 32 and the decoder crops it back.
quality: ``QP = 63 - quality`` (QP 63..0), preset ``slow``, one frame, one thread.

Payload: the NAL units that carry this picture (VCL slices, and picture headers or adaptation
parameter sets if present, since those hold picture-specific data), with their 2-byte NAL
headers: one byte range from the first of them to the end of the last, so where there are
several (an ALF parameter set before the slice) the start codes between them are payload too,
and the receiver can cut them apart again. VPS, SPS, PPS (and OPI, DCI, AUD) count as known.
"""

from __future__ import annotations

import io
import os
import subprocess
import tempfile
from pathlib import Path

import av
import numpy as np

from ... import registry
from ...errors import CorruptFileError, DataError, DependencyMissingError
from .base import ClassicCodec, Parsed, _as_bytes

__all__ = ["VvcCodec", "parse_vvc", "find_vvencapp", "VVENC_SHA256", "BUILD_COMMAND"]

VVENC_SHA256 = "a0d0c942d0fa76932c018228365b2e4ffa90162e304b32b4cb94e64f7543c9f3"
BUILD_COMMAND = "bash scripts/build_vvenc.sh"
_PICTURE_NALS = set(range(0, 12)) | {17, 18, 19}  # VCL 0..11, prefix/suffix APS, picture header
_APS_NALS = {17, 18}  # VVenC writes a zero byte before their start code (00 00 00 01), as before a VPS / SPS / PPS
_ENCODE_TIMEOUT_S = 120


def find_vvencapp() -> Path:
    """Path of the VVenC encoder: ``$TOSC_VVENCAPP``, else the build script's cache."""
    override = os.environ.get("TOSC_VVENCAPP")
    if override:
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise DependencyMissingError(f"TOSC_VVENCAPP={override} is not an executable file")
        return path
    from .table import cache_root

    path = cache_root() / f"vvenc-{VVENC_SHA256[:16]}" / "bin" / "vvencapp"
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise DependencyMissingError(
            f"the VVC encoder (VVenC's vvencapp) is not built: run `{BUILD_COMMAND}` "
            f"(expected at {path}; or set TOSC_VVENCAPP)"
        )
    return path


def _split_nal_units(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each NAL unit in an Annex B byte stream, start codes and trailing zeros removed."""
    starts = []
    pos = data.find(b"\x00\x00\x01")
    while pos >= 0:
        starts.append(pos + 3)
        pos = data.find(b"\x00\x00\x01", pos + 3)
    if not starts or data[: starts[0] - 3].strip(b"\x00"):
        raise CorruptFileError("vvc: not an Annex B byte stream (no start code at the beginning)")
    units = []
    for i, start in enumerate(starts):
        end = starts[i + 1] - 3 if i + 1 < len(starts) else len(data)
        while end > start and data[end - 1] == 0:
            end -= 1
        units.append((start, end))
    return units


class _RbspReader:
    """Bits of a NAL unit's payload, emulation prevention bytes (00 00 03) removed."""

    def __init__(self, nal_payload: bytes) -> None:
        self.data = nal_payload.replace(b"\x00\x00\x03", b"\x00\x00")
        self.pos = 0

    def u(self, n: int) -> int:
        value = 0
        for _ in range(n):
            if self.pos >= 8 * len(self.data):
                raise CorruptFileError("vvc: sequence parameter set is truncated")
            value = (value << 1) | (self.data[self.pos >> 3] >> (7 - (self.pos & 7))) & 1
            self.pos += 1
        return value

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise CorruptFileError("vvc: Exp-Golomb code too long in the sequence parameter set")
        return (1 << zeros) - 1 + self.u(zeros)

    def align(self) -> None:
        self.pos += -self.pos % 8


def _sps_size(nal_payload: bytes) -> tuple[int, int]:
    """(height, width) of the coded picture (sps_pic_*_max_in_luma_samples, H.266 7.3.2.4).

    Read so that a damaged size field is refused before FFmpeg allocates the picture. Streams
    with general constraints info (which VVenC does not write) are refused rather than guessed.
    """
    r = _RbspReader(nal_payload)
    r.u(8)  # sps_seq_parameter_set_id, sps_video_parameter_set_id
    max_sublayers_minus1 = r.u(3)
    r.u(4)  # sps_chroma_format_idc, sps_log2_ctu_size_minus5
    if r.u(1):  # sps_ptl_dpb_hrd_params_present_flag: profile_tier_level(1, max_sublayers_minus1)
        r.u(7 + 1 + 8 + 1 + 1)  # profile, tier, level, frame-only and multilayer flags
        if r.u(1):
            raise CorruptFileError("vvc: general constraints info in the SPS is not supported")
        r.align()
        present = [r.u(1) for _ in range(max_sublayers_minus1)]
        r.align()
        r.u(8 * sum(present))  # sublayer_level_idc
        r.u(32 * r.u(8))  # ptl_num_sub_profiles x general_sub_profile_idc
    r.u(1)  # sps_gdr_enabled_flag
    if r.u(1):  # sps_ref_pic_resampling_enabled_flag
        r.u(1)
    width = r.ue()
    height = r.ue()
    if not (width and height):
        raise CorruptFileError("vvc: the SPS declares an empty picture")
    return height, width


def parse_vvc(data: bytes) -> Parsed:
    ranges = []
    size = None
    for start, end in _split_nal_units(data):
        if end - start < 2 or data[start] & 0x80:
            raise CorruptFileError(f"vvc: bad NAL unit header at byte {start}")
        nal_type = data[start + 1] >> 3
        if nal_type == 15 and size is None:
            size = _sps_size(data[start + 2 : end])
        if nal_type in _PICTURE_NALS:
            ranges.append((start, end))
    if size is None or not any(data[s + 1] >> 3 < 12 for s, _ in ranges):
        raise CorruptFileError("vvc: no sequence parameter set or no coded slice")
    # one range over every picture NAL unit and what lies between them (their start codes): a
    # template may hold fewer or more of them than the file (an ALF parameter set is written only
    # where the filter pays), and the payload must say where each one starts
    # the SPS gives the coded size; the conformance window crops the picture to at most that
    return Parsed(((ranges[0][0], ranges[-1][1]),), size[0], size[1], exact=False)


def _rgb_to_ycbcr420(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = rgb.astype(np.float64)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = 128.0 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 128.0 + 0.5 * r - 0.418688 * g - 0.081312 * b

    def down(c: np.ndarray) -> np.ndarray:
        return (c[0::2, 0::2] + c[1::2, 0::2] + c[0::2, 1::2] + c[1::2, 1::2]) / 4.0

    def u8(c: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(c), 0, 255).astype(np.uint8)

    return u8(y), u8(down(cb)), u8(down(cr))


def _ycbcr420_to_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """Float planes on the 8-bit scale (chroma at half size) -> uint8 RGB."""
    h, w = y.shape
    cb = np.repeat(np.repeat(cb, 2, axis=0), 2, axis=1)[:h, :w] - 128.0
    cr = np.repeat(np.repeat(cr, 2, axis=0), 2, axis=1)[:h, :w] - 128.0
    r = y + 1.402 * cr
    g = y - 0.344136 * cb - 0.714136 * cr
    b = y + 1.772 * cb
    return np.clip(np.rint(np.stack([r, g, b], axis=-1)), 0, 255).astype(np.uint8)


def _plane(frame: "av.VideoFrame", index: int, width: int, height: int, bytes_per_sample: int) -> np.ndarray:
    plane = frame.planes[index]
    dtype = np.dtype("<u2") if bytes_per_sample == 2 else np.dtype(np.uint8)
    rows = np.frombuffer(memoryview(plane), dtype=np.uint8)[: plane.line_size * height]
    return rows.reshape(height, plane.line_size).view(dtype)[:, :width]


class VvcCodec(ClassicCodec):
    __doc__ = __doc__
    name = "vvc"
    description = "VVC intra (VVenC 1.9.1 encoder, FFmpeg/PyAV decoder); payload = slice NAL units"
    quality_meaning = "63 - QP"
    quality_min = 0
    quality_max = 63
    native_gray = False
    gray_coded_as = "Y, flat 4:2:0 chroma"
    _takes_gray = True
    min_side = 2
    max_side = 8192
    even_sides = True  # 4:2:0 input; a conformance window crops in whole chroma samples only

    def __init__(self, preset: str = "slow") -> None:
        self.preset = preset

    @property
    def library(self) -> str:
        return f"VVenC 1.9.1 vvencapp, PyAV {av.__version__} (FFmpeg vvc decoder)"

    @staticmethod
    def qp_to_quality(qp: int) -> int:
        return 63 - int(qp)

    def encode_qp(self, image, qp: int) -> bytes:
        """Encode at a VVC quantisation parameter (0..63) instead of the quality knob."""
        return self.encode(image, self.qp_to_quality(qp))

    def _encode(self, pixels: np.ndarray, quality: int) -> bytes:
        height, width = pixels.shape[:2]
        if height % 2 or width % 2:
            raise DataError(
                f"vvc: width and height must be even (4:2:0 input), got {height} x {width}; "
                "pad the image first (tosc.data.PadTo)"
            )
        app = find_vvencapp()
        if pixels.ndim == 2:
            luma = pixels
            chroma = np.full((height // 2, width // 2), 128, np.uint8)
            planes = (luma, chroma, chroma)
        else:
            planes = _rgb_to_ycbcr420(pixels)
        with tempfile.TemporaryDirectory(prefix="tosc-vvc-") as tmp:
            source, output = Path(tmp) / "in.yuv", Path(tmp) / "out.266"
            source.write_bytes(b"".join(p.tobytes() for p in planes))
            command = [
                str(app), "-i", str(source), "-s", f"{width}x{height}", "-c", "yuv420",
                "-q", str(63 - quality), "-f", "1", "--preset", self.preset, "-t", "1",
                "-o", str(output),
            ]  # fmt: skip
            try:
                # the log is only read for error messages, and vvencapp's is not always UTF-8
                # (seen on 64 x 64 scenes): undecodable bytes must not fail the encode
                done = subprocess.run(command, capture_output=True, text=True, errors="replace",
                                      timeout=_ENCODE_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                raise RuntimeError(f"vvencapp did not finish in {_ENCODE_TIMEOUT_S} s") from None
            if done.returncode != 0 or not output.is_file():
                tail = (done.stdout + done.stderr).strip().splitlines()[-3:]
                raise DataError(f"vvc: vvencapp refused the image ({done.returncode}): {' | '.join(tail)}")
            return output.read_bytes()

    def rebuild_file(self, template: bytes, payload: bytes) -> bytes:
        """The template's parameter sets, then the payload (this picture's NAL units from the
        first one's header on) behind the start code VVenC writes before that first unit: four
        bytes before an adaptation parameter set, three before a slice. The template may hold
        another number of picture units than the file (an ALF parameter set is written only
        where the filter pays), so its own start code there says nothing."""
        data, payload = _as_bytes(template), _as_bytes(payload)
        ((start, end),) = self.parse(data).payload
        if len(payload) < 2:
            raise ValueError(f"{len(payload)} payload bytes hold no NAL unit header")
        head = data[: start - 3].rstrip(b"\x00")  # the parameter sets; their last byte holds a stop bit
        code = b"\x00\x00\x00\x01" if payload[1] >> 3 in _APS_NALS else b"\x00\x00\x01"
        return head + code + payload + data[end:]

    def _decode(self, data: bytes, channels: int | None = None) -> np.ndarray:
        with av.open(io.BytesIO(data), format="vvc") as container:
            frames = list(container.decode(video=0))
        if len(frames) != 1:
            raise CorruptFileError(f"vvc: expected one picture, decoded {len(frames)}")
        frame = frames[0]
        fmt = frame.format.name
        if fmt not in ("yuv420p10le", "yuv420p", "gray10le", "gray"):
            raise CorruptFileError(f"vvc: unsupported decoded pixel format {fmt}")
        depth = 2 if "10" in fmt else 1
        scale = 4.0 if depth == 2 else 1.0
        w, h = frame.width, frame.height
        y = _plane(frame, 0, w, h, depth).astype(np.float64) / scale
        if channels == 1 or fmt.startswith("gray"):
            return np.clip(np.rint(y), 0, 255).astype(np.uint8)
        cw, ch = (w + 1) // 2, (h + 1) // 2
        cb = _plane(frame, 1, cw, ch, depth).astype(np.float64) / scale
        cr = _plane(frame, 2, cw, ch, depth).astype(np.float64) / scale
        return _ycbcr420_to_rgb(y, cb, cr)

    def parse(self, data: bytes) -> Parsed:
        return parse_vvc(data)


registry.register("codec", "vvc", VvcCodec.description, family="classic")(VvcCodec)
