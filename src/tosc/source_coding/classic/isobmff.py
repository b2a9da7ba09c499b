"""Just enough ISO base media file format (HEIF, AVIF) parsing to find the coded picture.

Top-level boxes are walked; the image size comes from the ``ispe`` property inside
``meta/iprp/ipco``; the coded data is the content of ``mdat``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import CorruptFileError

__all__ = ["Box", "iter_boxes", "read_heif_like", "resize_coded_data"]

_CONTAINERS = {b"meta": 4, b"iprp": 0, b"ipco": 0, b"dinf": 0}  # value: full-box header bytes


@dataclass(frozen=True)
class Box:
    kind: bytes
    start: int  # first byte of the box header
    data_start: int  # first byte of the content
    end: int


def iter_boxes(data: bytes, start: int, end: int, label: str) -> list[Box]:
    boxes = []
    pos = start
    while pos < end:
        if pos + 8 > end:
            raise CorruptFileError(f"{label}: truncated box header at byte {pos}")
        size = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        header = 8
        if size == 1:
            if pos + 16 > end:
                raise CorruptFileError(f"{label}: truncated large box header")
            size = int.from_bytes(data[pos + 8 : pos + 16], "big")
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise CorruptFileError(f"{label}: box {kind!r} at byte {pos} has a bad size {size}")
        boxes.append(Box(kind, pos, pos + header, pos + size))
        pos += size
    return boxes


def _find(data: bytes, boxes: list[Box], path: list[bytes], label: str) -> list[Box]:
    """All boxes at ``path`` below ``boxes``."""
    found = [b for b in boxes if b.kind == path[0]]
    if len(path) == 1:
        return found
    out = []
    for box in found:
        skip = _CONTAINERS.get(box.kind, 0)
        out += _find(data, iter_boxes(data, box.data_start + skip, box.end, label), path[1:], label)
    return out


def read_heif_like(data: bytes, brands: tuple[bytes, ...], label: str) -> tuple[tuple[int, int], int, int, bool]:
    """Check the file type; return the mdat content range, the coded (height, width) from
    ``ispe``, and whether that is the picture size (False when a ``clap`` crop is present)."""
    top = iter_boxes(data, 0, len(data), label)
    if not top or top[0].kind != b"ftyp":
        raise CorruptFileError(f"{label}: no ftyp box at the start")
    ftyp = top[0]
    compatible = {data[ftyp.data_start : ftyp.data_start + 4]}
    compatible |= {data[i : i + 4] for i in range(ftyp.data_start + 8, ftyp.end - 3, 4)}
    if not compatible & set(brands):
        raise CorruptFileError(f"{label}: file type brands {sorted(compatible)} are not {list(brands)}")
    mdats = [b for b in top if b.kind == b"mdat"]
    if len(mdats) != 1:
        raise CorruptFileError(f"{label}: expected one mdat box, found {len(mdats)}")
    ispe = _find(data, top, [b"meta", b"iprp", b"ipco", b"ispe"], label)
    if not ispe or ispe[0].end - ispe[0].data_start < 12:
        raise CorruptFileError(f"{label}: no image size (ispe) property")
    body = ispe[0].data_start + 4  # full box: version and flags
    width = int.from_bytes(data[body : body + 4], "big")
    height = int.from_bytes(data[body + 4 : body + 8], "big")
    cropped = bool(_find(data, top, [b"meta", b"iprp", b"ipco", b"clap"], label))
    return (mdats[0].data_start, mdats[0].end), height, width, not cropped


def _iloc_extents(data: bytes, iloc: Box, label: str) -> list[tuple[int, int, int, int]]:
    """(absolute offset, length, position of the length field, its size) of every extent in
    an ``iloc`` box (ISO/IEC 14496-12, 8.11.3), file-offset items only."""
    pos = iloc.data_start
    version = data[pos]
    pos += 4
    sizes = data[pos : pos + 2]
    offset_size, length_size, base_size = sizes[0] >> 4, sizes[0] & 15, sizes[1] >> 4
    index_size = sizes[1] & 15 if version in (1, 2) else 0
    pos += 2

    def read(n: int) -> int:
        nonlocal pos
        if pos + n > iloc.end:
            raise CorruptFileError(f"{label}: truncated iloc box")
        value = int.from_bytes(data[pos : pos + n], "big")
        pos += n
        return value

    extents = []
    for _ in range(read(2 if version < 2 else 4)):
        read(2 if version < 2 else 4)  # item_ID
        if version in (1, 2) and read(2) & 15:
            raise CorruptFileError(f"{label}: iloc items built from other items are not supported")
        read(2)  # data_reference_index
        base = read(base_size)
        for _ in range(read(2)):
            read(index_size)
            offset = base + read(offset_size)
            field = pos
            extents.append((offset, read(length_size), field, length_size))
    return extents


def resize_coded_data(template: bytes, data: bytes, changed_at: int, delta: int, label: str) -> bytes:
    """``data`` is ``template`` with its coded picture data (inside ``mdat``, from byte
    ``changed_at`` on) made ``delta`` bytes longer; set the ``mdat`` size and the length of
    the ``iloc`` extent that holds it to match."""
    top = iter_boxes(template, 0, len(template), label)
    mdats = [b for b in top if b.kind == b"mdat"]
    if len(mdats) != 1 or not mdats[0].data_start <= changed_at <= mdats[0].end:
        raise CorruptFileError(f"{label}: the template has no mdat holding the coded data")
    mdat = mdats[0]
    out = bytearray(data)

    def add(pos: int, size: int) -> None:
        pos = pos + delta if pos >= mdat.end else pos  # boxes after mdat moved
        value = int.from_bytes(out[pos : pos + size], "big") + delta
        if value < 0 or value >= 1 << (8 * size):
            raise CorruptFileError(f"{label}: a length field cannot hold {value}")
        out[pos : pos + size] = value.to_bytes(size, "big")

    header = mdat.data_start - mdat.start
    if header == 16:
        add(mdat.start + 8, 8)
    elif int.from_bytes(template[mdat.start : mdat.start + 4], "big"):  # 0: runs to the end of the file
        add(mdat.start, 4)
    holding = [(offset, length, field, size) for iloc in _find(template, top, [b"meta", b"iloc"], label)
               for offset, length, field, size in _iloc_extents(template, iloc, label)
               if offset <= changed_at < offset + length or (length == 0 and offset <= changed_at)]
    if len(holding) != 1:
        raise CorruptFileError(f"{label}: expected one iloc extent holding the coded data, found {len(holding)}")
    _, length, field, size = holding[0]
    if size and length:
        add(field, size)
    return bytes(out)
