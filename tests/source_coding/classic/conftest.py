"""Shared images and codec lists for the classic codec tests (real data, no mocks)."""

import functools

import numpy as np
import pytest
import torch

from tosc.errors import DependencyMissingError
from tosc.source_coding import classic


@functools.lru_cache(maxsize=1)
def vvc_missing_reason() -> str:
    """Empty when vvencapp is built; otherwise why VVC tests skip."""
    try:
        classic.find_vvencapp()
    except DependencyMissingError as exc:
        return f"VVenC not built ({exc})"
    return ""


@pytest.fixture(params=classic.codec_names())
def codec(request) -> classic.ClassicCodec:
    """Every classic codec in turn; VVC skips with the reason when vvencapp is not built."""
    if request.param == "vvc" and vvc_missing_reason():
        pytest.skip(vvc_missing_reason())
    return classic.get_codec(request.param)


@pytest.fixture
def require_vvc() -> None:
    if vvc_missing_reason():
        pytest.skip(vvc_missing_reason())


@functools.lru_cache(maxsize=1)
def fashion_images() -> torch.Tensor:
    """The first 8 Fashion-MNIST test images, 8 x 1 x 28 x 28 float32 in [0, 1]."""
    from tosc.data import load_dataset

    return load_dataset("fashion-mnist", split="test", limit=8).images


@functools.lru_cache(maxsize=1)
def photo_rgb() -> torch.Tensor:
    """scikit-image's astronaut photo, block-averaged to 3 x 32 x 32 float32 in [0, 1]."""
    from skimage import data

    pixels = data.astronaut().astype(np.float64)  # 512 x 512 x 3
    small = pixels.reshape(32, 16, 32, 16, 3).mean(axis=(1, 3)) / 255.0
    return torch.from_numpy(small.transpose(2, 0, 1).astype(np.float32))


@pytest.fixture(scope="session")
def fashion8() -> torch.Tensor:
    return fashion_images()


@pytest.fixture(scope="session")
def gray_image() -> torch.Tensor:
    return fashion_images()[0]


@pytest.fixture(scope="session")
def rgb_image() -> torch.Tensor:
    return photo_rgb()
