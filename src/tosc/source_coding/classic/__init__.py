"""Classic image codecs behind one interface, with payload measurement and rate matching.

=============  ===========================================  =====================  ===========
name           codec (library)                              quality knob           grayscale
=============  ===========================================  =====================  ===========
jpeg           JPEG, standard tables (Pillow/libjpeg-turbo)  1..100                 native
jpeg-optimized JPEG, image-fitted tables (Pillow)            1..100                 native
jpeg2000       JPEG 2000 J2K (imagecodecs/OpenJPEG)          target PSNR 1..70 dB   native
webp           WebP lossy (Pillow/libwebp)                   0..100                 as RGB
heif           HEVC intra in HEIF (pillow-heif/x265) = BPG   0..100                 native
avif           AV1 intra in AVIF (Pillow/libavif)            0..100                 native
jpegxl         JPEG XL (imagecodecs/libjxl)                  0..100                 native
vvc            VVC intra (VVenC + FFmpeg via PyAV)           63 - QP, 0..63         Y + flat chroma
=============  ===========================================  =====================  ===========

Every codec is registered in :mod:`tosc.registry` as kind ``"codec"``; build one with
:func:`get_codec`. What a system layer calls::

    codec = get_codec("webp")
    matches = match_rate_batch(codec, images, budget_bytes=B // 8, measure="payload")
    received, ok = decode_matches(codec, matches, fallback=mean_image)

Each codec's ``encode(image, quality) -> bytes``, ``decode(bytes, channels=None) -> tensor``,
``payload_bytes(bytes) -> int`` (and ``payload`` / ``splice_payload`` to send only the payload
bytes and rebuild the file at the receiver) are documented on :class:`ClassicCodec`; each
codec module's docstring says which bytes its payload counts.
"""

from __future__ import annotations

import importlib
import pkgutil

from ... import registry
from .base import MAX_DECODE_PIXELS, ClassicCodec, Parsed
from .rate import MEASURES, RateMatch, decode_matches, match_rate, match_rate_batch

# importing the codec modules registers them
from .jpeg import JpegCodec
from .webp import WebpCodec
from .jpeg2000 import Jpeg2000Codec
from .heif import HeifCodec
from .avif import AvifCodec
from .jpegxl import JpegXlCodec
from .vvc import VvcCodec, find_vvencapp

# ...and so does every other module of this package: a new codec is one file that registers itself
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "ClassicCodec",
    "Parsed",
    "MAX_DECODE_PIXELS",
    "RateMatch",
    "MEASURES",
    "match_rate",
    "match_rate_batch",
    "decode_matches",
    "get_codec",
    "codec_names",
    "JpegCodec",
    "WebpCodec",
    "Jpeg2000Codec",
    "HeifCodec",
    "AvifCodec",
    "JpegXlCodec",
    "VvcCodec",
    "find_vvencapp",
]


def get_codec(name: str, **options) -> ClassicCodec:
    """Build the registered codec ``name`` (UnknownNameError lists the known ones)."""
    return registry.get("codec", name).factory(**options)


def codec_names() -> list[str]:
    """Names of the classic codecs: the registered codecs whose metadata says family "classic"."""
    return registry.select("codec", family="classic")
