"""Held-out classifiers that are not neural networks with convolutions: a classical HOG feature
pipeline with a linear softmax on top, and multinomial logistic regression on raw pixels.

A semantic term trained through one CNN may help only models that share its inductive bias
(local filters, pooling); these judge the codecs with models that do not. Both are ordinary
``nn.Module`` predictors (images N x C x H x W in [0, 1] -> logits N x n_classes), so
``load_task_network``, ``predict``, ``accuracy`` and the evaluation score them unchanged.

HOG is computed in torch on the whole batch, not per image with ``skimage.feature.hog``: the
evaluation runs every held-out network at every operating point, and on 10,000 test images
skimage took 14.3 s against 2.4 s here, 5.9x (``benchmarks/hog_bench.py``, one thread on the
shared 2-core machine). The features equal skimage's to 2e-7 (``tests/tasks/test_heldout_noncnn.py``).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data import ImageSet
from ..errors import ConfigError, DataError
from ..training import fit_best_epoch
from .classifiers import _register_classifier, accuracy

__all__ = ["HOG", "HOGLinear", "PixelLinear", "fit_linear_head"]


class HOG(nn.Module):
    """Histogram of oriented gradients, as ``skimage.feature.hog`` computes it with
    ``block_norm="L2-Hys"`` and ``transform_sqrt=False``, for a batch of single-channel images.

    Input N x 1 x H x W; output N x (blocks_h * blocks_w * block * block * orientations), in
    skimage's order (block row, block column, cell row, cell column, orientation). Gradients are
    central differences (zero on the border rows/columns), each pixel votes its gradient magnitude
    into one unsigned orientation bin, cells average their votes.
    """

    def __init__(self, orientations: int = 9, cell: int = 4, block: int = 2, eps: float = 1e-5) -> None:
        super().__init__()
        self.orientations, self.cell, self.block, self.eps = orientations, cell, block, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 1:
            raise DataError(f"HOG takes N x 1 x H x W images, got shape {tuple(x.shape)}")
        n, _, h, w = x.shape
        if h < self.cell * self.block or w < self.cell * self.block:
            raise DataError(f"images of {h}x{w} are smaller than one HOG block ({self.cell * self.block} px)")
        g_row = F.pad(x[:, :, 2:, :] - x[:, :, :-2, :], (0, 0, 1, 1))
        g_col = F.pad(x[:, :, :, 2:] - x[:, :, :, :-2], (1, 1, 0, 0))
        magnitude = torch.hypot(g_col, g_row)
        angle = torch.rad2deg(torch.atan2(g_row, g_col)).remainder(180.0)
        bins = (angle * (self.orientations / 180.0)).floor().long().clamp_(0, self.orientations - 1)
        votes = F.one_hot(bins[:, 0], self.orientations).permute(0, 3, 1, 2).to(x.dtype) * magnitude
        cells = F.avg_pool2d(votes, self.cell).permute(0, 2, 3, 1)  # N x cells_h x cells_w x orientations
        # every block x block window of cells, normalised on its own: N x bh x bw x block x block x orientations
        blocks = cells.unfold(1, self.block, 1).unfold(2, self.block, 1).permute(0, 1, 2, 4, 5, 3)

        def l2(t: torch.Tensor) -> torch.Tensor:
            return t / torch.sqrt(t.pow(2).sum((3, 4, 5), keepdim=True) + self.eps ** 2)

        return l2(l2(blocks).clamp(max=0.2)).reshape(n, -1)


class HOGLinear(nn.Module):
    """HOG features (``HOG()``: 9 orientations, 4x4-pixel cells, 2x2-cell blocks) and one linear
    layer: a linear softmax classifier on a hand-designed, non-learned representation."""

    def __init__(self, in_channels: int, n_classes: int) -> None:
        super().__init__()
        if in_channels != 1:
            raise ConfigError(f"the HOG pipeline takes grayscale images, not {in_channels} channels")
        self.features = HOG()
        self.linear = nn.LazyLinear(n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.features(x))


class PixelLinear(nn.Module):
    """Multinomial logistic regression on the raw pixels: one linear layer, no hidden units."""

    def __init__(self, in_channels: int, n_classes: int) -> None:
        super().__init__()
        self.features = nn.Flatten()
        self.linear = nn.LazyLinear(n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.features(x))


@torch.no_grad()
def _features(model: nn.Module, images: torch.Tensor, batch_size: int = 2000) -> torch.Tensor:
    return torch.cat([model.features(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])


def fit_linear_head(model: nn.Module, train: ImageSet, val: ImageSet, *, epochs: int, batch_size: int, lr: float,
                    generator: torch.Generator, desc: str, progress: bool, state_path=None) -> float:
    """Softmax regression of ``model.linear`` on its fixed ``model.features`` of the clean training
    images (no augmentation); returns the best validation accuracy, whose epoch's weights it keeps.

    The features are computed once and standardised for the fit; the standardisation is then
    folded into the linear layer, so the fitted model is just features -> linear.
    """
    train_x = _features(model, train.images)
    mean, std = train_x.mean(0), train_x.std(0).clamp_min(1e-6)  # constant features (e.g. border pixels) stay 0
    train_x = (train_x - mean) / std
    val_x = (_features(model, val.images) - mean) / std
    head = nn.Linear(train_x.shape[1], model.linear.out_features)

    def batch_loss(idx: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(head(train_x[idx]), train.labels[idx])

    best_val = fit_best_epoch(head, len(train), batch_loss, lambda: accuracy(head, val_x, val.labels),
                              epochs=epochs, batch_size=batch_size, lr=lr, generator=generator, desc=desc,
                              score_name="validation accuracy", progress=progress, state_path=state_path)
    with torch.no_grad():  # linear((x - mean) / std) == (W / std) x + (b - (W / std) . mean)
        weight = head.weight / std
        model.linear.weight.copy_(weight)
        model.linear.bias.copy_(head.bias - weight @ mean)
    return best_val


_register_classifier("classifier-hog-linear", HOGLinear, "held-out",
                     "held-out HOG features + linear softmax, no learned features (never used in codec training)",
                     fit=fit_linear_head)
_register_classifier("classifier-pixel-linear", PixelLinear, "held-out",
                     "held-out logistic regression on raw pixels (never used in codec training)",
                     fit=fit_linear_head)
