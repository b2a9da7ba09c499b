"""Rate matching to a byte budget: never over budget, best quality by bisection, clear misfits."""

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tosc.errors import ConfigError, DataError
from tosc.source_coding import classic

FAST = ["jpeg", "jpeg-optimized", "jpeg2000", "webp", "heif", "avif", "jpegxl"]  # VVC: see test below


def _check(codec, image, budget, measure):
    match = classic.match_rate(codec, image, budget, measure)
    assert match.codec == codec.name and match.measure == measure and match.budget_bytes == budget
    if match.fits:
        assert match.counted_bytes <= budget, "rate matching exceeded the budget"
        assert len(match.bitstream) == match.file_bytes
        assert codec.payload_bytes(match.bitstream) == match.payload_bytes
        assert codec.encode(image, match.quality) == match.bitstream  # deterministic encoders
        if match.quality < codec.quality_max:  # bisection ends next to a quality that does not fit
            above = codec.encode(image, match.quality + 1)
            counted = len(above) if measure == "file" else codec.payload_bytes(above)
            assert counted > budget
    else:
        assert match.quality is None and match.bitstream == b""
        low = codec.encode(image, codec.quality_min)
        assert (len(low) if measure == "file" else codec.payload_bytes(low)) > budget
        assert match.file_bytes == len(low)
    return match


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])  # session fixtures
@given(
    name=st.sampled_from(FAST),
    index=st.integers(0, 8),
    budget=st.integers(0, 1200),
    measure=st.sampled_from(["file", "payload"]),
)
def test_rate_matching_never_exceeds_the_budget(fashion8, rgb_image, name, index, budget, measure):
    image = rgb_image if index == 8 else fashion8[index]
    _check(classic.get_codec(name), image, budget, measure)


def test_vvc_rate_matching(require_vvc, gray_image):
    codec = classic.get_codec("vvc")
    for budget, measure in ((400, "file"), (60, "payload"), (100, "file")):
        _check(codec, gray_image, budget, measure)


@pytest.mark.parametrize("name", FAST)
def test_too_small_a_budget_does_not_fit(name, gray_image):
    codec = classic.get_codec(name)
    match = classic.match_rate(codec, gray_image, 0, "payload")
    assert not match.fits and match.quality is None and match.bitstream == b"" and match.payload_bytes > 0
    match = classic.match_rate(codec, gray_image, 20, "file")
    assert not match.fits and match.file_bytes > 20
    match = classic.match_rate(codec, gray_image, 100_000, "file")
    assert match.fits and match.quality == codec.quality_max and match.encodes == 2


def test_batch_and_decode_with_fallback(fashion8):
    codec = classic.get_codec("webp")
    budgets = [0, 120, 200, 10_000] * 2
    matches = classic.match_rate_batch(codec, fashion8, budgets, "file")
    smallest = [len(codec.encode(image, codec.quality_min)) for image in fashion8]
    assert [m.fits for m in matches] == [b >= s for b, s in zip(budgets, smallest)]
    assert not matches[0].fits and matches[3].fits
    fallback = fashion8.mean(0)
    images, ok = classic.decode_matches(codec, matches, fallback)
    assert images.shape == fashion8.shape and images.dtype == torch.float32
    assert ok.tolist() == [m.fits for m in matches]
    assert torch.equal(images[0], fallback)
    assert not torch.equal(images[3], fallback)
    same = classic.match_rate_batch(codec, fashion8, 150, "payload")
    assert all(m.budget_bytes == 150 and (not m.fits or m.payload_bytes <= 150) for m in same)


def test_bad_arguments(gray_image, fashion8):
    codec = classic.get_codec("jpeg")
    with pytest.raises(ConfigError):
        classic.match_rate(codec, gray_image, 100, "bits")
    with pytest.raises(ConfigError):
        classic.match_rate(codec, gray_image, -1)
    with pytest.raises(ConfigError):
        classic.match_rate(codec, gray_image, 10.5)
    with pytest.raises(ConfigError):
        classic.match_rate_batch(codec, fashion8, [100, 200])
    with pytest.raises(DataError):
        classic.match_rate_batch(codec, gray_image, 100)
    with pytest.raises(DataError):
        classic.decode_matches(codec, [], fallback=fashion8)
