import math

import skimage.data
import skimage.metrics
import torch

from tosc.metrics import ms_ssim, psnr_db, ssim


def _camera_pair():
    clean = torch.from_numpy(skimage.data.camera()[::4, ::4].copy()).float()[None, None] / 255
    noisy = (clean + 0.05 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    return clean, noisy


def test_psnr_matches_scikit_image():
    clean, noisy = _camera_pair()
    expected = skimage.metrics.peak_signal_noise_ratio(clean[0, 0].double().numpy(), noisy[0, 0].double().numpy(),
                                                       data_range=1.0)
    assert math.isclose(psnr_db(noisy, clean).item(), expected, abs_tol=1e-4)
    assert psnr_db(clean, clean).item() == 100.0


def test_ssim_orders_quality(fashion_test_slice):
    x = fashion_test_slice.images[:4]
    slightly = (x + 0.02 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    badly = (x + 0.2 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    for metric in (ssim, ms_ssim):
        good, bad = metric(slightly, x), metric(badly, x)
        assert good.shape == (4,) and (good > bad).all() and (good <= 1.0001).all()
    assert torch.allclose(ms_ssim(x, x), torch.ones(4), atol=1e-5)
