"""The second task the codecs never trained for: segmenting the item from the background.

Ground truth comes from the CLEAN image only: a pixel is foreground when its value
(the mean over channels, in [0, 1]) is above ``FOREGROUND_THRESHOLD`` = 0.1 (25.5 of
255), and holes inside the item are then filled (``scipy.ndimage.binary_fill_holes``,
4-connected), so a dark print on a shirt or the inside of a bag counts as item. On the
Fashion-MNIST training set 45.1% of pixels pass the threshold and filling adds 1.1%.

A tiny U-Net (``segmenter-unet``), trained on clean training images, predicts the
mask from a received image; the task score is the mean over images of the IoU between
that prediction and the clean image's mask (``seg_iou`` in the results record).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import registry
from ..checkpoint import load_checkpoint, save_checkpoint
from ..data import load_dataset
from ..errors import ConfigError, DataError
from ..zoo import task_path
from ..training import fit_best_epoch, fit_state_path
from .classifiers import augment

__all__ = ["SEGMENTATION_TASK", "FOREGROUND_THRESHOLD", "TinyUNet", "item_masks", "build_segmenter",
           "load_segmenter", "predict_masks", "mean_iou", "segmentation_iou", "train_segmenter"]

SEGMENTATION_TASK = "segmenter-unet"
FOREGROUND_THRESHOLD = 0.1


def item_masks(images: torch.Tensor, threshold: float = FOREGROUND_THRESHOLD) -> torch.Tensor:
    """Ground-truth item masks (bool N x H x W) of clean images N x C x H x W in [0, 1]."""
    from scipy import ndimage

    if images.ndim != 4:
        raise DataError(f"expected images N x C x H x W, got shape {tuple(images.shape)}")
    raw = (images.float().mean(1) > threshold).numpy()
    return torch.from_numpy(np.stack([ndimage.binary_fill_holes(m) for m in raw]) if len(raw) else raw)


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
                         nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class TinyUNet(nn.Module):
    """Two-level U-Net: H x W -> H/2 -> H/4 and back with skip connections; one logit per pixel.

    Input N x C x H x W in [0, 1] (H, W multiples of 4); output logits N x H x W.
    """

    def __init__(self, in_channels: int, width: int = 12) -> None:
        super().__init__()
        self.enc1, self.enc2 = _block(in_channels, width), _block(width, 2 * width)
        self.mid = _block(2 * width, 4 * width)
        self.up2, self.dec2 = nn.ConvTranspose2d(4 * width, 2 * width, 2, 2), _block(4 * width, 2 * width)
        self.up1, self.dec1 = nn.ConvTranspose2d(2 * width, width, 2, 2), _block(2 * width, width)
        self.head = nn.Conv2d(width, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(F.max_pool2d(e1, 2))
        m = self.mid(F.max_pool2d(e2, 2))
        d2 = self.dec2(torch.cat([self.up2(m), e2], 1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], 1))
        return self.head(d1)[:, 0]


def build_segmenter(in_channels: int, image_hw: tuple[int, int], width: int = 12) -> TinyUNet:
    if image_hw[0] % 4 or image_hw[1] % 4:
        raise ConfigError(f"the segmenter needs H and W divisible by 4, got {image_hw}")
    return TinyUNet(in_channels, width)


def load_segmenter(name: str = SEGMENTATION_TASK, path: str | Path | None = None) -> TinyUNet:
    """The trained segmenter in eval mode with frozen weights."""
    path = Path(path) if path is not None else task_path(name)
    ckpt = load_checkpoint(path, kind="task", arch="tiny-unet")
    cfg = ckpt["config"]
    model = build_segmenter(cfg["in_channels"], tuple(cfg["image_hw"]), cfg["width"])
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


registry.register("task", SEGMENTATION_TASK,
                  "tiny U-Net item segmenter (held-out task, scored by IoU against the clean image's mask)",
                  role="held-out", output="mask")(
    lambda **kw: load_segmenter(SEGMENTATION_TASK, **kw))


@torch.no_grad()
def predict_masks(model: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Predicted item masks (bool N x H x W) for images N x C x H x W in [0, 1]."""
    model.eval()
    if not len(images):
        return torch.zeros(0, *images.shape[2:], dtype=torch.bool)
    return torch.cat([model(images[i:i + batch_size]) > 0 for i in range(0, len(images), batch_size)])


def mean_iou(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean over images of |pred & target| / |pred | target| (bool N x H x W each); an image
    where both masks are empty counts as IoU 1."""
    if pred.shape != target.shape:
        raise DataError(f"mask shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")
    if not len(pred):
        return float("nan")
    inter = (pred & target).flatten(1).sum(1).double()
    union = (pred | target).flatten(1).sum(1).double()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union)).mean().item()


def segmentation_iou(model: nn.Module, received: torch.Tensor, reference: torch.Tensor) -> float:
    """Mean IoU of the mask predicted on ``received`` against the ground truth of the clean ``reference``."""
    if received.shape != reference.shape:
        raise DataError(f"received {tuple(received.shape)} and reference {tuple(reference.shape)} differ")
    return mean_iou(predict_masks(model, received), item_masks(reference))


def train_segmenter(*, dataset: str = "fashion-mnist", epochs: int = 2, batch_size: int = 128, lr: float = 3e-3,
                    width: int = 12, limit: int | None = None, seed: int = 0, out: str | Path | None = None,
                    root=None, progress: bool = True) -> dict:
    """Train the segmenter on clean training images (binary cross-entropy per pixel, random
    shifts and flips); keep the best validation epoch; write a checkpoint.

    Returns the metrics dict (validation and clean test IoU) that is also stored in the file.
    """
    if epochs <= 0 or batch_size <= 0 or lr <= 0:
        raise ConfigError("epochs, batch_size and lr must be positive")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    train = load_dataset(dataset, "train", root=root, seed=seed, limit=limit)
    val = load_dataset(dataset, "validation", root=root, seed=seed)
    test = load_dataset(dataset, "test", root=root)
    c, h, w = train.shape
    train_masks = item_masks(train.images).float()[:, None]
    model = build_segmenter(c, (h, w), width)
    start = time.time()

    def batch_loss(idx: torch.Tensor) -> torch.Tensor:
        # the same shift and flips for an image and its mask
        both = augment(torch.cat([train.images[idx], train_masks[idx]], 1), gen)
        return F.binary_cross_entropy_with_logits(model(both[:, :c]), both[:, c])

    out = Path(out) if out is not None else task_path(SEGMENTATION_TASK)
    best_val = fit_best_epoch(model, len(train), batch_loss, lambda: segmentation_iou(model, val.images, val.images),
                              epochs=epochs, batch_size=batch_size, lr=lr, generator=gen, desc=SEGMENTATION_TASK,
                              score_name="validation IoU", progress=progress, state_path=fit_state_path(out))
    metrics = {"validation_iou": best_val, "test_iou": segmentation_iou(model, test.images, test.images),
               "train_time_s": time.time() - start}
    config = {"dataset": dataset, "epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed, "limit": limit,
              "width": width, "in_channels": c, "image_hw": [h, w], "foreground_threshold": FOREGROUND_THRESHOLD,
              "fill_holes": True}
    save_checkpoint(out, kind="task", arch="tiny-unet",
                    state_dict=model.state_dict(), config=config, metrics=metrics)
    return metrics
