"""Image-quality metrics on float images in [0, 1].

PSNR is computed per image and then averaged over images (the "mean of per-image
PSNR", as CompressAI's evaluation does), not from the mean MSE.
"""

from __future__ import annotations

import torch

__all__ = ["psnr_db", "PSNR_CAP_DB"]

PSNR_CAP_DB = 100.0  # a lossless image would have infinite PSNR; cap it so averages stay finite


def psnr_db(decoded: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB (peak 1.0) of N x C x H x W tensors -> N."""
    mse = ((decoded.double() - reference.double()) ** 2).flatten(1).mean(1)
    return (10 * torch.log10(1.0 / mse.clamp_min(10 ** (-PSNR_CAP_DB / 10)))).float()
