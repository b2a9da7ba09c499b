"""Fixtures for the reliability tests: real images, every classic codec, VVC only where built."""

import functools

import pytest

from tosc.errors import DependencyMissingError
from tosc.source_coding import classic


@functools.lru_cache(maxsize=1)
def available_codecs() -> tuple[str, ...]:
    """Classic codec names whose encoder is installed (VVC needs scripts/build_vvenc.sh)."""
    names = list(classic.codec_names())
    try:
        classic.find_vvencapp()
    except DependencyMissingError:
        names.remove("vvc")
    return tuple(names)


@pytest.fixture(params=classic.codec_names())
def codec_name_available(request) -> str:
    if request.param not in available_codecs():
        pytest.skip("VVenC not built: run bash scripts/build_vvenc.sh")
    return request.param


@pytest.fixture(scope="session")
def gray_image(fashion_test_slice):
    return fashion_test_slice.images[0]
