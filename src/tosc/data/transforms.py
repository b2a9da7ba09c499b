"""Explicit, documented image transforms (the only way tosc resizes or pads).

Each transform maps a float tensor C x H x W or N x C x H x W in [0, 1] to another.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from ..errors import ConfigError, DataError

__all__ = ["PadTo", "Resize", "Grayscale", "Compose", "padding_for", "centre_padding", "crop_padding"]


def _as_batch(images: torch.Tensor) -> tuple[torch.Tensor, bool]:
    if images.ndim == 3:
        return images[None], True
    if images.ndim == 4:
        return images, False
    raise DataError(f"expected C x H x W or N x C x H x W, got shape {tuple(images.shape)}")


def centre_padding(height: int, width: int, canvas_height: int, canvas_width: int) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) padding that centres an H x W image on the canvas (the extra
    pixel of an odd difference goes right/bottom); the caller checks the image fits."""
    top, left = (canvas_height - height) // 2, (canvas_width - width) // 2
    return left, canvas_width - width - left, top, canvas_height - height - top


def padding_for(height: int, width: int, multiple: int) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) zero padding that makes H and W multiples of ``multiple``,
    split as evenly as possible (the extra pixel goes right/bottom)."""
    return centre_padding(height, width, height + (-height) % multiple, width + (-width) % multiple)


def crop_padding(images: torch.Tensor, padding: tuple[int, int, int, int]) -> torch.Tensor:
    """Undo (left, right, top, bottom) padding on the last two dimensions."""
    left, right, top, bottom = padding
    return images[..., top:images.shape[-2] - bottom, left:images.shape[-1] - right]


@dataclass(frozen=True)
class PadTo:
    """Centre the image on a ``height`` x ``width`` canvas filled with ``fill``.

    Images larger than the canvas are an error, not silently cropped.
    """

    height: int
    width: int
    fill: float = 0.0

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        batch, single = _as_batch(images)
        h, w = batch.shape[-2:]
        if h > self.height or w > self.width:
            raise DataError(f"PadTo({self.height}, {self.width}) got a larger image of {h} x {w}")
        out = F.pad(batch, centre_padding(h, w, self.height, self.width), value=self.fill)
        return out[0] if single else out


@dataclass(frozen=True)
class Resize:
    """Bilinear resize with antialiasing to ``height`` x ``width`` (values clamped to [0, 1])."""

    height: int
    width: int

    def __post_init__(self) -> None:
        if self.height <= 0 or self.width <= 0:
            raise ConfigError(f"Resize needs positive sizes, got {self.height} x {self.width}")

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        batch, single = _as_batch(images)
        out = F.interpolate(batch, size=(self.height, self.width), mode="bilinear", antialias=True, align_corners=False)
        out = out.clamp_(0.0, 1.0)
        return out[0] if single else out


@dataclass(frozen=True)
class Grayscale:
    """RGB -> one channel with ITU-R BT.601 luma weights; one-channel input passes through."""

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        batch, single = _as_batch(images)
        if batch.shape[1] == 3:
            weights = torch.tensor([0.299, 0.587, 0.114], dtype=batch.dtype).view(1, 3, 1, 1)
            batch = (batch * weights).sum(1, keepdim=True)
        elif batch.shape[1] != 1:
            raise DataError(f"Grayscale expects 1 or 3 channels, got {batch.shape[1]}")
        return batch[0] if single else batch


@dataclass(frozen=True)
class Compose:
    steps: Sequence[Callable[[torch.Tensor], torch.Tensor]]

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        for step in self.steps:
            images = step(images)
        return images
