"""Image-quality metrics on float images in [0, 1].

PSNR is computed per image and then averaged over images (the "mean of per-image
PSNR", as CompressAI's evaluation does), not from the mean MSE.
"""

from __future__ import annotations

import torch

__all__ = ["psnr_db", "ssim", "ms_ssim", "PSNR_CAP_DB"]

PSNR_CAP_DB = 100.0  # a lossless image would have infinite PSNR; cap it so averages stay finite


def psnr_db(decoded: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB (peak 1.0) of N x C x H x W tensors -> N."""
    mse = ((decoded.double() - reference.double()) ** 2).flatten(1).mean(1)
    return (10 * torch.log10(1.0 / mse.clamp_min(10 ** (-PSNR_CAP_DB / 10)))).float()


def ssim(decoded: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM (Gaussian window 11, sigma 1.5, peak 1.0) via pytorch-msssim -> N."""
    from pytorch_msssim import ssim as _ssim

    return _ssim(decoded.float(), reference.float(), data_range=1.0, size_average=False).reshape(-1)


MS_SSIM_WINDOW = 7
MS_SSIM_MIN_SIDE = (MS_SSIM_WINDOW - 1) * 2**4 + 1  # 5 scales need 97 pixels with a 7-pixel window


def ms_ssim(decoded: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Per-image MS-SSIM -> N.

    pytorch-msssim's 5 scales need sides of at least (win - 1) * 16 + 1 pixels; with a
    7-pixel Gaussian window that is 97, so smaller images (28x28 Fashion-MNIST, 32x32 CIFAR)
    are first upsampled by the smallest integer factor that reaches it (4 for 28x28),
    bilinearly and identically for both images. Values are therefore comparable between
    systems here, not with MS-SSIM reported on large photos (window 11, no upsampling).
    """
    from pytorch_msssim import ms_ssim as _ms_ssim

    side = min(decoded.shape[-2:])
    factor = -(-MS_SSIM_MIN_SIDE // side)
    if factor > 1:
        up = lambda t: torch.nn.functional.interpolate(t.float(), scale_factor=factor, mode="bilinear",  # noqa: E731
                                                       align_corners=False).clamp(0, 1)
        decoded, reference = up(decoded), up(reference)
    out = []
    for i in range(0, len(decoded), 256):
        out.append(_ms_ssim(decoded[i:i + 256].float(), reference[i:i + 256].float(), data_range=1.0,
                            win_size=MS_SSIM_WINDOW, size_average=False).reshape(-1))
    return torch.cat(out) if out else torch.zeros(0)
