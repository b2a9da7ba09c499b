"""The baseline both codec benchmarks time against: Pillow JPEG, encode + decode, one image at a time."""

from __future__ import annotations

import io
import time

import numpy as np
from PIL import Image


def time_pillow_jpeg(images, quality: int) -> tuple[float, list[int]]:
    """Grayscale images (N x 1 x H x W floats in [0, 1]) -> (seconds, whole-file bytes per image)."""
    arrays = (images[:, 0].numpy() * 255).round().astype(np.uint8)
    t0 = time.perf_counter()
    sizes = []
    for a in arrays:
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format="JPEG", quality=quality)
        data = buf.getvalue()
        sizes.append(len(data))
        np.asarray(Image.open(io.BytesIO(data)))
    return time.perf_counter() - t0, sizes
