"""Round trips, payload measurement, input checks and the registry for every classic codec."""

import math
import re

import numpy as np
import pytest
import torch

from tosc import registry
from tosc.errors import ConfigError, CorruptFileError, DataError
from tosc.source_coding import classic
from tosc.source_coding.classic.survey import psnr_db


def _two_qualities(codec):
    span = codec.quality_max - codec.quality_min
    return codec.quality_min + span // 4, codec.quality_min + (3 * span) // 4


@pytest.mark.parametrize("kind", ["gray", "rgb"])
def test_round_trip_two_qualities(codec, kind, gray_image, rgb_image):
    image = gray_image if kind == "gray" else rgb_image
    low_q, high_q = _two_qualities(codec)
    low, high = codec.encode(image, low_q), codec.encode(image, high_q)
    assert isinstance(low, bytes) and isinstance(high, bytes)
    assert len(high) > len(low), "the quality knob must move the size"
    assert codec.payload_bytes(high) > codec.payload_bytes(low)
    decoded_low = codec.decode(low, channels=image.shape[0])
    decoded_high = codec.decode(high, channels=image.shape[0])
    for decoded in (decoded_low, decoded_high):
        assert decoded.dtype == torch.float32 and decoded.shape == image.shape
        assert 0.0 <= float(decoded.min()) and float(decoded.max()) <= 1.0
    psnr_low, psnr_high = psnr_db(decoded_low, image), psnr_db(decoded_high, image)
    assert psnr_high > psnr_low + 1.0, (psnr_low, psnr_high)
    assert psnr_low > 12.0  # a real picture, not noise


def test_native_channels_on_decode(codec, gray_image):
    decoded = codec.decode(codec.encode(gray_image, codec.quality_max))
    assert decoded.shape[0] == (1 if codec.native_gray else 3)
    assert codec.decode(codec.encode(gray_image, codec.quality_max), channels=3).shape == (3, 28, 28)


def test_payload_is_a_proper_part_of_the_file(codec, gray_image, rgb_image):
    for image in (gray_image, rgb_image):
        for quality in (codec.quality_min, codec.quality_max):
            data = codec.encode(image, quality)
            ranges = codec.payload_ranges(data)
            assert ranges and all(0 <= a < b <= len(data) for a, b in ranges)
            assert all(b1 <= a2 for (_, b1), (a2, _) in zip(ranges, ranges[1:])), "ranges must be disjoint, in order"
            assert 0 < codec.payload_bytes(data) < len(data)
            assert codec.splice_payload(data, codec.payload(data)) == data


def test_payload_definitions_by_hand(gray_image, rgb_image):
    """Each payload measured against the format's layout, worked out independently."""
    jpeg = classic.get_codec("jpeg")
    data = jpeg.encode(gray_image, 50)
    sos = data.index(b"\xff\xda")
    scan_start = sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")
    assert data.endswith(b"\xff\xd9") and jpeg.payload_ranges(data) == ((scan_start, len(data) - 2),)

    webp = classic.get_codec("webp")
    data = webp.encode(gray_image, 50)
    assert data[12:16] == b"VP8 "
    vp8_size = int.from_bytes(data[16:20], "little")
    assert webp.payload_bytes(data) == vp8_size - 7  # minus start code and dimensions (the frame tag is payload)

    j2k = classic.get_codec("jpeg2000")
    data = j2k.encode(rgb_image, 40)
    sod = data.index(b"\xff\x93")
    assert data.endswith(b"\xff\xd9") and j2k.payload_ranges(data) == ((sod + 2, len(data) - 2),)

    jxl = classic.get_codec("jpegxl")
    data = jxl.encode(gray_image, 50)
    ((start, end),) = jxl.payload_ranges(data)
    assert end == len(data) and 8 < start < 40  # headers of a few bytes, then the one section

    for name in ("heif", "avif"):
        codec = classic.get_codec(name)
        data = codec.encode(gray_image, 50)
        mdat = data.index(b"mdat") - 4
        mdat_end = mdat + int.from_bytes(data[mdat : mdat + 4], "big")
        assert mdat_end == len(data)
        assert all(mdat + 8 <= a < b <= mdat_end for a, b in codec.payload_ranges(data))
        assert codec.payload_bytes(data) < mdat_end - mdat - 8  # lengths / sequence header excluded


@pytest.mark.parametrize("name", ["jpeg", "jpeg-optimized"])
def test_non_payload_bytes_do_not_depend_on_the_image(name, fashion8):
    """What the payload leaves out is really known to the receiver: identical for any image."""
    codec = classic.get_codec(name)
    a, b = (codec.encode(image, 30) for image in fashion8[:2])
    assert codec.payload(a) != codec.payload(b)
    assert _outside_payload(codec, a) == _outside_payload(codec, b)


def _outside_payload(codec, data):
    parts, cursor = [], 0
    for start, end in codec.payload_ranges(data):
        parts.append(data[cursor:start])
        cursor = end
    return parts + [data[cursor:]]


def test_optimized_jpeg_counts_its_tables(gray_image):
    plain, fitted = classic.get_codec("jpeg"), classic.get_codec("jpeg-optimized")
    a, b = plain.encode(gray_image, 10), fitted.encode(gray_image, 10)
    assert len(b) < len(a)  # fitted tables shrink the file ...
    dht = sum(int.from_bytes(b[i + 2 : i + 4], "big") + 2 for i in range(len(b) - 1) if b[i : i + 2] == b"\xff\xc4")
    assert fitted.payload_bytes(b) == plain.parse(b).payload[0][1] - plain.parse(b).payload[0][0] + dht


def test_registry_holds_every_classic_codec():
    names = registry.names("codec")
    for name in ("jpeg", "jpeg-optimized", "jpeg2000", "webp", "heif", "avif", "jpegxl", "vvc"):
        assert name in names
        codec = registry.get("codec", name).factory()
        assert isinstance(codec, classic.ClassicCodec) and codec.name == name
        assert registry.get("codec", name).description
    assert classic.codec_names() == sorted(classic.codec_names())


@pytest.mark.parametrize(
    "image, message",
    [
        (torch.rand(2, 1, 28, 28), "C x H x W"),
        (torch.rand(2, 28, 28), "1 (grayscale) or 3 (RGB) channels"),
        (torch.rand(4, 28, 28), "alpha"),
        (torch.rand(28), "C x H x W"),
        (torch.rand(1, 28, 28) * 2, "[0, 1]"),
        (torch.full((1, 28, 28), float("nan")), "NaN"),
        (np.zeros((1, 28, 28), np.int32), "dtype"),
        (np.zeros((1, 0, 28), np.uint8), "sides"),
        ([[0.5]], "torch tensor or numpy array"),
    ],
)
def test_unsupported_images_are_data_errors(image, message):
    with pytest.raises(DataError, match=re.escape(message)):
        classic.get_codec("jpeg").encode(image, 50)


def test_uint8_and_numpy_inputs_match_float(gray_image):
    codec = classic.get_codec("jpeg")
    as_uint8 = np.rint(gray_image.numpy() * 255).astype(np.uint8)
    assert codec.encode(as_uint8, 50) == codec.encode(gray_image, 50) == codec.encode(gray_image[0].numpy(), 50)


@pytest.mark.parametrize("quality", [-1, 101, 2.5, True, "50"])
def test_bad_quality_is_a_config_error(quality, gray_image):
    with pytest.raises(ConfigError):
        classic.get_codec("jpeg").encode(gray_image, quality)


def test_corrupt_bytes_raise_corrupt_file_error(codec, gray_image):
    """Truncation, bit flips and garbage: decode either succeeds or raises CorruptFileError."""
    good = codec.encode(gray_image, (codec.quality_min + codec.quality_max) // 2)
    for bad in (b"", b"\x00" * 64, b"not an image at all", good[: len(good) // 2], good[:-3]):
        with pytest.raises(CorruptFileError):
            codec.decode(bad)
    other = "webp" if codec.name != "webp" else "jpeg"
    with pytest.raises(CorruptFileError):
        codec.decode(classic.get_codec(other).encode(gray_image, 50))
    rng = np.random.default_rng(0)
    for _ in range(40):
        mutated = bytearray(good)
        for _ in range(3):
            mutated[rng.integers(0, len(mutated))] = rng.integers(0, 256)
        try:
            decoded = codec.decode(bytes(mutated))
        except CorruptFileError:
            continue
        assert decoded.ndim == 3 and torch.isfinite(decoded).all()
    with pytest.raises(DataError):
        codec.decode("a string")  # type: ignore[arg-type]


def test_psnr_helper_is_exact():
    image = torch.zeros(1, 4, 4)
    assert math.isinf(psnr_db(image, image))
    assert psnr_db(torch.full((1, 4, 4), 0.1), image) == pytest.approx(20.0)


def test_jpegxl_header_parse_on_a_multi_group_photo():
    """A 512 x 512 photo has several TOC entries; the parse must still account for every byte."""
    from skimage import data

    codec = classic.get_codec("jpegxl")
    for pixels in (data.astronaut()[:300, :300], data.camera()[:300, :300]):
        encoded = codec.encode(pixels.transpose(2, 0, 1) if pixels.ndim == 3 else pixels, 50)
        ranges = codec.payload_ranges(encoded)
        assert ranges[-1][1] == len(encoded) and codec.payload_bytes(encoded) > 0.9 * len(encoded)
        assert codec.decode(encoded).shape[1:] == (300, 300)


@pytest.mark.slow
def test_corrupt_bytes_fuzz_long(codec, fashion8):
    """A longer fuzz (a later reliability issue extends this): truncations, flips, splices."""
    rng = np.random.default_rng(1)
    seeds = [codec.encode(image, q) for image, q in zip(fashion8[:3], (codec.quality_min, 30, codec.quality_max))]
    for i in range(1500):
        mutated = bytearray(seeds[i % 3])
        kind = i % 3
        if kind == 0:
            mutated = mutated[: rng.integers(0, len(mutated))]
        elif kind == 1:
            for _ in range(rng.integers(1, 5)):
                mutated[rng.integers(0, len(mutated))] ^= 1 << int(rng.integers(0, 8))
        else:
            at = int(rng.integers(0, len(mutated)))
            mutated[at : at + int(rng.integers(1, 16))] = rng.integers(0, 256, int(rng.integers(0, 16)), dtype=np.uint8).tobytes()
        try:
            decoded = codec.decode(bytes(mutated))
        except CorruptFileError:
            continue
        assert decoded.ndim == 3 and torch.isfinite(decoded).all()
