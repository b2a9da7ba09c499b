"""Image conversion at the codec boundary: what encoders accept and decoders return.

Accepted input (one image): a torch tensor or numpy array, either
- float (any float dtype), values in [0, 1], shape C x H x W with C in {1, 3}, or H x W; or
- uint8, values 0..255, same shapes.
Float values are quantised to 8 bits as ``round(255 * x)`` before encoding (every codec here
works on 8-bit samples), so the reference for distortion is the 8-bit image.

Decoders return a float32 torch tensor C x H x W in [0, 1] (``value / 255``).
"""

from __future__ import annotations

import numpy as np
import torch

from ...errors import DataError

__all__ = ["to_uint8", "to_tensor", "convert_channels", "luma_bt601"]


def to_uint8(image: torch.Tensor | np.ndarray, *, min_side: int = 1, max_side: int = 16383) -> np.ndarray:
    """Validate one image and return it as uint8, H x W (grayscale) or H x W x 3 (RGB).

    Raises DataError naming the problem for anything else: batches (4-D), 2 or 4 channels
    (alpha is not supported), non-finite or out-of-range floats, other dtypes, sides outside
    [min_side, max_side].
    """
    if isinstance(image, torch.Tensor):
        tensor = image.detach().cpu()
        array = (tensor.to(torch.float64) if tensor.is_floating_point() else tensor).numpy()  # bfloat16 too
    elif isinstance(image, np.ndarray):
        array = image
    else:
        raise DataError(f"image must be a torch tensor or numpy array, got {type(image).__name__}")
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        hint = " (a batch? encode images one at a time)" if array.ndim == 4 else ""
        raise DataError(f"image must be C x H x W or H x W, got shape {tuple(array.shape)}{hint}")
    channels, height, width = array.shape
    if channels not in (1, 3):
        raise DataError(
            f"image must have 1 (grayscale) or 3 (RGB) channels, got {channels} "
            f"(shape {tuple(array.shape)}; alpha and other modes are not supported)"
        )
    if not (min_side <= height <= max_side and min_side <= width <= max_side):
        raise DataError(f"image sides must lie in [{min_side}, {max_side}] for this codec, got {height} x {width}")
    if array.dtype == np.uint8:
        pixels = array
    elif np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise DataError("float image contains NaN or infinity")
        if array.min() < 0.0 or array.max() > 1.0:
            raise DataError(f"float image values must lie in [0, 1], got [{array.min():.4g}, {array.max():.4g}]")
        pixels = np.rint(array.astype(np.float64) * 255.0).astype(np.uint8)
    else:
        raise DataError(f"image dtype must be float in [0, 1] or uint8, got {array.dtype}")
    if channels == 1:
        return np.ascontiguousarray(pixels[0])
    return np.ascontiguousarray(pixels.transpose(1, 2, 0))


def luma_bt601(rgb: np.ndarray) -> np.ndarray:
    """uint8 H x W x 3 RGB -> uint8 H x W luma, ITU-R BT.601 weights (as Pillow's convert("L"))."""
    y = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


def convert_channels(pixels: np.ndarray, channels: int | None) -> np.ndarray:
    """Convert uint8 H x W or H x W x 3 to the requested channel count (None: keep)."""
    have = 1 if pixels.ndim == 2 else 3
    if channels is None or channels == have:
        return pixels
    if channels == 1:
        return luma_bt601(pixels)
    if channels == 3:
        return np.repeat(pixels[..., None], 3, axis=2)
    raise DataError(f"channels must be 1, 3 or None, got {channels}")


def to_tensor(pixels: np.ndarray) -> torch.Tensor:
    """uint8 H x W or H x W x 3 -> float32 tensor C x H x W in [0, 1]."""
    if pixels.dtype != np.uint8:
        raise TypeError(f"expected uint8 pixels, got {pixels.dtype}")  # internal: a bug, not bad input
    chw = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(chw).astype(np.float32) / 255.0)
