"""One operating point: a system sends a set of images over a channel at (SNR, CBR).

The noise seed of a point is derived from its coordinates (channel, SNR, CBR) and the
user's seed only, never from the system or the order points run in: every system sees
the same noise, and a grid split over processes gives the same numbers as one process.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch

from ..channel import channel_uses, parse_cbr
from ..metrics import ms_ssim, psnr_db
from ..results import ChannelSpec, RateSpec, ResultRecord
from ..systems import System, Transmission
from ..errors import CorruptFileError
from ..tasks import (HELD_OUT_TASKS, SEGMENTATION_TASK, TRAINING_TASK, accuracy, load_segmenter, load_task_network,
                     segmentation_iou)

__all__ = ["OperatingPoint", "point_seed", "run_point", "score_images"]


@dataclass(frozen=True)
class OperatingPoint:
    channel: str
    snr_db: float
    cbr: Fraction


def point_seed(seed: int, point: OperatingPoint) -> int:
    key = f"{seed}|{point.channel}|{float(point.snr_db)!r}|{point.cbr}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "little") % (2**63)


_TASKS: dict[str, torch.nn.Module] = {}


def _task(name: str) -> torch.nn.Module:
    if name not in _TASKS:
        _TASKS[name] = load_task_network(name)
    return _TASKS[name]


def _segmenter(name: str, shape: tuple[int, int, int]) -> torch.nn.Module | None:
    """The segmenter if it is installed and was trained on images of this shape (C, H, W)."""
    key = f"seg:{name}"
    if key not in _TASKS:
        try:
            _TASKS[key] = load_segmenter(name)
        except CorruptFileError:  # not installed: seg_iou is not measured
            _TASKS[key] = None
    net = _TASKS[key]
    if net is None or net.enc1[0].in_channels != shape[0] or shape[1] % 4 or shape[2] % 4:
        return None
    return net


def score_images(received: torch.Tensor, reference: torch.Tensor, labels: torch.Tensor,
                 tasks: tuple[str, ...] = (TRAINING_TASK, *HELD_OUT_TASKS),
                 segmenter: str | None = SEGMENTATION_TASK) -> dict[str, float]:
    """PSNR (mean of per-image dB), MS-SSIM (upsampled, see tosc.metrics), task accuracies and,
    where the segmenter fits the images, ``seg_iou``: the mean IoU of the item mask it predicts
    on ``received`` against the ground-truth mask of the clean ``reference`` (tosc.tasks.segmentation)."""
    metrics = {"psnr_db": psnr_db(received, reference).mean().item(),
               "ms_ssim": ms_ssim(received, reference).mean().item()}
    for name in tasks:
        key = "accuracy" if name == TRAINING_TASK else f"accuracy_{name}"
        # no fallback: a task network that does not load is an error, never a column of NaN
        metrics[key] = accuracy(_task(name), received, labels)
    seg = _segmenter(segmenter, tuple(reference.shape[1:])) if segmenter else None
    if seg is not None:
        metrics["seg_iou"] = segmentation_iou(seg, received, reference)
    return metrics


def run_point(system: System, images: torch.Tensor, labels: torch.Tensor, point: OperatingPoint, *,
              dataset: str, split: str, seed: int, config: dict | None = None) -> tuple[Transmission, ResultRecord]:
    n, c, h, w = images.shape
    k = channel_uses(point.cbr, (c, h, w))
    started = time.perf_counter()
    tx = system.transmit(images, snr_db=point.snr_db, n_channel_uses=k, channel=point.channel,
                         seed=point_seed(seed, point))
    transmit_s = time.perf_counter() - started
    started = time.perf_counter()
    metrics = score_images(tx.received, images, labels)
    metrics["failure_rate"] = float(1.0 - tx.ok.mean()) if n else float("nan")
    metrics["did_not_fit_rate"] = float(1.0 - tx.fitted.mean()) if n else float("nan")
    metrics["decode_error_rate"] = float(tx.decode_errors.mean()) if n else float("nan")
    metrics["failed_codewords_per_image"] = float(tx.failed_codewords.mean()) if n else float("nan")
    payload = float(tx.payload_bits.mean()) if n else 0.0
    record = ResultRecord(
        system=system.name, dataset=dataset, split=split, n_images=n,
        channel=ChannelSpec(point.channel, float(point.snr_db)),
        rate=RateSpec(bpp=payload / (h * w), payload_bits_per_image=payload,
                      channel_uses_per_image=float(tx.channel_uses.mean()) if n else 0.0, cbr=float(point.cbr)),
        metrics=metrics,
        timings_s={"transmit": transmit_s, "score": time.perf_counter() - started},
        config={"channel_uses_allotted": k, "mode": system.mode, **tx.info, **(config or {})},
        seed=seed,
    )
    return tx, record
