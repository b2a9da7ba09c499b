"""Explicit, documented image transforms (the only way tosc resizes or pads).

Each transform maps a float tensor C x H x W or N x C x H x W in [0, 1] to another.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from ..errors import ConfigError, DataError

__all__ = ["PadTo", "Resize", "Grayscale", "Compose", "padding_for"]


def _as_batch(images: torch.Tensor) -> tuple[torch.Tensor, bool]:
    if images.ndim == 3:
        return images[None], True
    if images.ndim == 4:
        return images, False
    raise DataError(f"expected C x H x W or N x C x H x W, got shape {tuple(images.shape)}")


def padding_for(height: int, width: int, multiple: int) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) zero padding that makes H and W multiples of ``multiple``,
    split as evenly as possible (the extra pixel goes right/bottom)."""
    pad_h = (-height) % multiple
    pad_w = (-width) % multiple
    return pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2


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
        top = (self.height - h) // 2
        left = (self.width - w) // 2
        out = F.pad(batch, (left, self.width - w - left, top, self.height - h - top), value=self.fill)
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
