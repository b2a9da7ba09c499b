"""Cross-check against the field's reference bench: CompressAI's JPEG and WebP classes.

CompressAI (compressai.utils.bench.codecs.PillowCodec) reads the image file with
``Image.open(path).convert("RGB")``, saves it with Pillow at ``quality=q`` (no other option),
takes bpp = file bytes * 8 / (W * H) and PSNR = 20 log10(255) - 10 log10(MSE) over the three
RGB channels of the 8-bit images. On the same RGB-converted images our codecs give the same
numbers. On the grayscale originals they differ by design: our JPEG codes one component (no
chroma planes, one set of tables), so its files are much smaller; WebP has no grayscale mode
and codes R = G = B either way, so only the PSNR's channel count differs (R = G = B, same value).
"""

import math
import warnings

import numpy as np
import pytest
from PIL import Image

with warnings.catch_warnings():  # CompressAI's model modules warn about torch deprecations on import
    warnings.simplefilter("ignore", FutureWarning)
    from compressai.utils.bench import codecs as bench

from tosc.source_coding import classic
from tosc.source_coding.classic.survey import psnr_db


@pytest.fixture(scope="module")
def png_files(tmp_path_factory, fashion8):
    folder = tmp_path_factory.mktemp("fashion-png")
    paths = []
    for i, image in enumerate(fashion8[:3]):
        path = folder / f"{i}.png"
        Image.fromarray(np.rint(image[0].numpy() * 255).astype(np.uint8), mode="L").save(path)
        paths.append(path)
    return paths


@pytest.mark.parametrize("name, reference", [("jpeg", "JPEG"), ("webp", "WebP")])
@pytest.mark.parametrize("quality", [10, 50, 90])
def test_bpp_and_psnr_equal_compressai_on_rgb(png_files, name, reference, quality):
    codec = classic.get_codec(name)
    for path in png_files:
        expected = getattr(bench, reference)(None).run(str(path), quality)
        rgb = np.asarray(Image.open(path).convert("RGB")).transpose(2, 0, 1)  # what CompressAI encodes
        data = codec.encode(rgb, quality)
        height, width = rgb.shape[1:]
        assert len(data) * 8 / (height * width) == expected["bpp"]
        decoded = codec.decode(data, channels=3)
        assert psnr_db(decoded, rgb.astype(np.float32) / 255) == pytest.approx(expected["psnr-rgb"], abs=1e-4)


def test_grayscale_numbers_differ_as_documented(png_files):
    jpeg, webp = classic.get_codec("jpeg"), classic.get_codec("webp")
    for path in png_files:
        gray = np.asarray(Image.open(path))[None]
        rgb = np.repeat(gray, 3, axis=0)
        # JPEG: one component instead of three, so a much smaller file
        assert len(jpeg.encode(gray, 50)) < 0.8 * len(jpeg.encode(rgb, 50))
        # WebP: gray is coded as R = G = B either way, so the very same file
        assert webp.encode(gray, 50) == webp.encode(rgb, 50)
        expected = bench.WebP(None).run(str(path), 50)
        decoded_gray = webp.decode(webp.encode(gray, 50), channels=1)
        assert math.isfinite(expected["psnr-rgb"])
        assert abs(psnr_db(decoded_gray, gray.astype(np.float32) / 255) - expected["psnr-rgb"]) < 0.5
