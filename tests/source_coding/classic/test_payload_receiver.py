"""Payload-only sending counts every per-image choice: the receiver rebuilds the file from a
quality index it was sent, a template it builds itself, and the payload, nothing else."""

import math

import numpy as np
import pytest
import torch

from tosc.channel import bytes_from_bits
from tosc.errors import CorruptFileError
from tosc.source_coding import classic
from tosc.systems.digital import ClassicSource


def _qualities(codec):
    lo, hi = codec.quality_min, codec.quality_max
    return sorted({lo, lo + 1, (lo + hi) // 2, hi - 3, hi})


def test_every_file_is_rebuilt_from_template_and_payload(codec, fashion8, rgb_image):
    """What the receiver knows (codec, quality, image shape) plus the payload is the file."""
    images = list(fashion8[:3] if codec.name == "vvc" else fashion8) + [rgb_image]
    for image in images:
        for quality in _qualities(codec):
            data = codec.encode(image, quality)
            template = codec.template(quality, tuple(image.shape))
            assert codec.rebuild_file(template, codec.payload(data)) == data, (codec.name, quality)


def test_quality_index_bits_are_the_log_of_the_levels():
    for name in classic.codec_names():
        codec = classic.get_codec(name)
        assert codec.quality_index_bits == math.ceil(math.log2(codec.quality_max - codec.quality_min + 1))
    assert classic.get_codec("jpeg").quality_index_bits == 7 and classic.get_codec("vvc").quality_index_bits == 6


@pytest.mark.parametrize("name", ["jpeg", "jpeg-optimized", "jpeg2000", "webp", "heif", "avif", "jpegxl"])
def test_a_fresh_receiver_decodes_from_the_counted_bits_alone(name, fashion8):
    """The sender's state is not needed: a second ClassicSource (no table, nothing shared)
    decodes the bits to what the codec makes of the sender's file, and the bits are exactly
    the quality index and the payload."""
    sender = ClassicSource(name, "payload", cache=None)
    receiver = ClassicSource(name, "payload", cache=None)
    codec = sender.codec
    budget = 8 * 150 + codec.quality_index_bits
    bits = sender.encode(fashion8, budget).bits
    assert any(b is not None for b in bits)
    for image, sent in zip(fashion8, bits):
        if sent is None:
            continue
        match = classic.match_rate(codec, image, 150, "payload")
        assert len(sent) == codec.quality_index_bits + 8 * match.payload_bytes <= budget
        index = int("".join(map(str, sent[: codec.quality_index_bits].tolist())), 2)
        assert index + codec.quality_min == match.quality
        assert bytes_from_bits(sent[codec.quality_index_bits:]) == codec.payload(match.bitstream)
        got = receiver.decode(sent, tuple(image.shape))
        assert torch.equal(got, codec.decode(match.bitstream, channels=1))


def test_the_index_is_paid_from_the_budget(fashion8):
    """A budget of exactly 8 x payload bytes no longer fits that payload: its index does not fit."""
    codec = classic.get_codec("webp")
    source = ClassicSource("webp", "payload", cache=None)
    image = fashion8[3]
    quality = 60
    payload_bits = 8 * codec.payload_bytes(codec.encode(image, quality))
    sent = source.encode(image[None], payload_bits).bits[0]
    assert sent is not None and len(sent) <= payload_bits
    index = int("".join(map(str, sent[: codec.quality_index_bits].tolist())), 2)
    assert index + codec.quality_min < quality


def test_webp_counts_the_first_partition_size(fashion8):
    """VP8's frame tag holds the image's first-partition size: it is payload, not header."""
    codec = classic.get_codec("webp")
    tags = set()
    for image in fashion8:
        data = codec.encode(image, 50)
        chunk = data.index(b"VP8 ") + 8
        assert codec.payload(data)[:3] == data[chunk : chunk + 3]
        tags.add(data[chunk : chunk + 3])
    assert len(tags) > 1


def test_a_damaged_index_or_payload_is_a_decode_error(fashion8):
    source = ClassicSource("jpeg2000", "payload", cache=None)
    sent = source.encode(fashion8[:1], 8 * 200).bits[0]
    with pytest.raises(CorruptFileError):
        source.decode(sent[:3], (1, 28, 28))  # shorter than the index
    with pytest.raises(CorruptFileError):
        source.decode(np.concatenate([np.ones(7, np.uint8), sent[7:]]), (1, 28, 28))  # index 127 > 69


def test_payload_system_records_the_index_in_its_rate(fashion8):
    from tosc.systems import build_system

    system = build_system("jpeg2000-payload+ideal")
    tx = system.transmit(fashion8, snr_db=20.0, n_channel_uses=98, channel="awgn", seed=1)
    codec = classic.get_codec("jpeg2000")
    budget = tx.info["budget_bits"]
    for image, bits, fitted in zip(fashion8, tx.payload_bits, tx.fitted):
        if fitted:
            match = classic.match_rate(codec, image, (budget - 7) // 8, "payload")
            assert bits == 7 + 8 * match.payload_bytes <= budget
