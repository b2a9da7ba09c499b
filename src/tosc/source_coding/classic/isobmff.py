"""Just enough ISO base media file format (HEIF, AVIF) parsing to find the coded picture.

Top-level boxes are walked; the image size comes from the ``ispe`` property inside
``meta/iprp/ipco``; the coded data is the content of ``mdat``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import CorruptFileError

__all__ = ["Box", "iter_boxes", "read_heif_like"]

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
