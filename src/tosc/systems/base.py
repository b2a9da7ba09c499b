"""The system interface and the registry glue."""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .. import registry
from ..data import load_dataset

__all__ = ["Transmission", "System", "build_system", "system_names", "fallback_image"]


@dataclass
class Transmission:
    """What a system delivered for N images at one operating point.

    received:       float32 N x C x H x W in [0, 1] (the fallback image where ``ok`` is False).
    ok:             [N] bool: decoded from an intact transmission (no failed codeword,
                    the source fitted the budget, the bitstream decoded).
    payload_bits:   [N] int64, bits handed to the channel (0 where nothing was sent).
    channel_uses:   [N] int64, complex channel uses spent (<= the allotment k).
    fitted:         [N] bool: the source coder found a rate that fits the bit budget.
    failed_codewords: [N] int64.
    decode_errors:  [N] bool: bits arrived "intact" but the decoder rejected them
                    (residual errors the channel code did not detect).
    info:           scheme, budget and other per-point facts for the results record.
    """

    received: torch.Tensor
    ok: np.ndarray
    payload_bits: np.ndarray
    channel_uses: np.ndarray
    fitted: np.ndarray
    failed_codewords: np.ndarray
    decode_errors: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)


class System(ABC):
    name: str = "?"
    mode: str = "digital"  # "digital", "ideal" or "analog"
    device: str = "cpu"  # where its neural networks run ("cpu" when it has none); results record it

    @abstractmethod
    def transmit(self, images: torch.Tensor, *, snr_db: float, n_channel_uses: int, channel: str = "awgn",
                 seed: int = 0) -> Transmission:
        """Send ``images`` (N x C x H x W in [0, 1]) with ``n_channel_uses`` complex uses each."""


@functools.lru_cache(maxsize=4)
def _mean_image(dataset: str, shape: tuple[int, int, int], root: str | None) -> torch.Tensor:
    train = load_dataset(dataset, "train", root=root)
    if train.shape != shape:
        return torch.full(shape, 0.5)
    return train.images.mean(0)


def fallback_image(shape: tuple[int, int, int], dataset: str = "fashion-mnist", root: str | None = None) -> torch.Tensor:
    """The documented fallback for a failed image: the training-set mean image of the dataset
    (C x H x W; ``root``: its directory, as for :func:`~tosc.data.load_dataset`), or mid-grey
    when the shape does not match it."""
    return _mean_image(dataset, tuple(shape), None if root is None else str(root)).clone()


def build_system(name: str, *, device: str | None = None, **options: Any) -> System:
    """The system registered as ``name``, its neural networks placed on ``device`` (cpu, cuda,
    cuda:N; None is cpu). A system whose registry entry lists only "cpu" in ``devices`` (the
    classic codecs, the analog models) is built on the CPU whatever ``device`` says, so one grid
    can mix them with systems on a GPU; ``system.device`` says where each one ran."""
    entry = registry.get("system", name)
    wanted = "cpu" if device is None else str(device)
    runs_on = wanted if wanted.split(":")[0] in entry.meta["devices"] else "cpu"
    return entry.factory(device=runs_on, **options)


def system_names() -> list[str]:
    return registry.names("system")
