"""The ``.tosc`` file format and the per-image streams the channel carries.

Per-image stream: the arithmetic-coded latent of one image (see ``arithmetic.py``).
It has no header and no length: the receiver knows the model, and because the
decoder reads missing bits as zeros, a stream zero-padded to any length (as a
fixed channel budget delivers it) decodes identically.

File layout (all integers unsigned LEB128 varints unless said otherwise)::

    b"TOSC"            4 bytes  magic
    version            1 byte   1: the codec family v1 (vector latent); 2: codec v3 (streams
                                start with their quality index, see ``conv_codec.py``)
    model_id           8 bytes  first 8 bytes of the SHA-256 of the decoder's weights and tables
    C, H, W            varints  original image shape
    left, right, top, bottom    varints  padding added before coding (undone after decoding)
    N                  varint   number of images
    N x (length varint, stream bytes)
    crc32              4 bytes  little-endian CRC-32 of everything before it

Every byte of the file is counted in the whole-file rate; the per-image streams are
the payload rate (what a link carries per image).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

__all__ = ["MAGIC", "FORMAT_VERSION", "FileHeader", "pack_file", "unpack_file", "check_writer", "write_varint",
           "read_varint"]

from ...errors import CorruptFileError

MAGIC = b"TOSC"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (1, 2)
MAX_IMAGES = 1 << 24
MAX_SIDE = 1 << 14


def write_varint(value: int) -> bytes:
    if value < 0:
        raise ValueError("varints are unsigned")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = 0
    for shift in range(0, 63, 7):
        if pos >= len(data):
            raise CorruptFileError("truncated .tosc file (inside a number)")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
    raise CorruptFileError("malformed .tosc file (number too long)")


@dataclass(frozen=True)
class FileHeader:
    model_id: bytes
    shape: tuple[int, int, int]  # C, H, W of the original images
    padding: tuple[int, int, int, int]  # left, right, top, bottom
    version: int = FORMAT_VERSION


def pack_file(header: FileHeader, streams: list[bytes]) -> bytes:
    if len(header.model_id) != 8:
        raise ValueError("model_id must be 8 bytes")
    if header.version not in SUPPORTED_VERSIONS:
        raise ValueError(f"unknown .tosc version {header.version}")
    body = bytearray(MAGIC)
    body.append(header.version)
    body += header.model_id
    for value in (*header.shape, *header.padding, len(streams)):
        body += write_varint(value)
    for stream in streams:
        body += write_varint(len(stream))
        body += stream
    body += struct.pack("<I", zlib.crc32(body))
    return bytes(body)


def unpack_file(data: bytes) -> tuple[FileHeader, list[bytes]]:
    """Parse and verify a .tosc file; any damage raises CorruptFileError, never garbage."""
    if len(data) < len(MAGIC) or data[:4] != MAGIC:
        raise CorruptFileError("not a .tosc file (bad magic)")
    if len(data) < 4 + 1 + 8 + 4:
        raise CorruptFileError("truncated .tosc file")
    if data[4] not in SUPPORTED_VERSIONS:
        raise CorruptFileError(f".tosc format version {data[4]} is not supported (this tosc reads "
                               f"{', '.join(map(str, SUPPORTED_VERSIONS))})")
    (stored_crc,) = struct.unpack("<I", data[-4:])
    if zlib.crc32(data[:-4]) != stored_crc:
        raise CorruptFileError(".tosc file is damaged or truncated (checksum mismatch)")
    body = data[:-4]
    model_id = body[5:13]
    pos = 13
    values = []
    for _ in range(8):
        value, pos = read_varint(body, pos)
        values.append(value)
    c, h, w, left, right, top, bottom, n = values
    if c not in (1, 3) or not (0 < h <= MAX_SIDE and 0 < w <= MAX_SIDE) or n > MAX_IMAGES:
        raise CorruptFileError(f"implausible .tosc header: shape {c}x{h}x{w}, {n} images")
    if max(left, right, top, bottom) > MAX_SIDE:
        raise CorruptFileError("implausible .tosc header: padding")
    streams = []
    for _ in range(n):
        length, pos = read_varint(body, pos)
        if pos + length > len(body):
            raise CorruptFileError("truncated .tosc file (image stream runs past the end)")
        streams.append(bytes(body[pos:pos + length]))
        pos += length
    if pos != len(body):
        raise CorruptFileError(f".tosc file has {len(body) - pos} unexpected trailing bytes")
    return FileHeader(bytes(model_id), (c, h, w), (left, right, top, bottom), data[4]), streams


_WRITERS = {1: "the v1 codec family", 2: "codec v3"}


def check_writer(header: FileHeader, version: int, model_id: bytes, name: str) -> None:
    """Refuse a file that ``name`` (format ``version``, id ``model_id``) did not write, in one line."""
    if header.version != version:
        raise CorruptFileError(f"file is .tosc version {header.version} ({_WRITERS.get(header.version, '?')}); "
                               f"{name} reads version {version} ({_WRITERS[version]}): decode it with the model "
                               "that wrote it")
    if header.model_id != model_id:
        raise CorruptFileError(f"file was written by model {header.model_id.hex()}, not by {name} ({model_id.hex()})")
