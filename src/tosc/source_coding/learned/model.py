"""The learned codec: analysis/synthesis transforms and a CompressAI entropy model.

Designed for small images (Fashion-MNIST 28x28, CIFAR 32x32). Two stride-2
convolutions take the canvas (the training image size rounded up to a multiple of
4) to a quarter of its size; a linear layer maps that to a vector latent ``y`` of
``latent_dim`` values, each with its own learned density (CompressAI's
``EntropyBottleneck``, one channel per latent). For aligned tiny images a
position-specific vector latent with a factorized prior needs no side information;
``benchmarks/prior_bench.py`` measured it on par with a mean-scale hyperprior coded in one
stream (and far ahead of the stock two-string hyperprior), and unlike a hyperprior its
decoder needs no float network to choose its tables. The entropy tables live in the
checkpoint, so encoder and decoder use the same integers on every machine.

Shapes: x N x C x H x W in [0, 1] with (H, W) <= canvas; y N x latent_dim.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from compressai.entropy_models import EntropyBottleneck
from compressai.layers import GDN

from ...data.transforms import centre_padding, crop_padding
from ...errors import ConfigError, DataError
from .compressai_adapter import medians

__all__ = ["CodecConfig", "TinyImageCodec"]


@dataclass(frozen=True)
class CodecConfig:
    in_channels: int = 1
    image_hw: tuple[int, int] = (28, 28)
    width: int = 48
    latent_dim: int = 128

    @property
    def canvas_hw(self) -> tuple[int, int]:
        h, w = self.image_hw
        return h + (-h) % 4, w + (-w) % 4

    def to_dict(self) -> dict:
        d = asdict(self)
        d["image_hw"] = list(self.image_hw)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "CodecConfig":
        d = dict(d)
        d["image_hw"] = tuple(d["image_hw"])
        return cls(**d)


class TinyImageCodec(nn.Module):
    """g_a: conv-GDN x2 -> linear -> y; entropy bottleneck on y; g_s mirrors g_a."""

    def __init__(self, config: CodecConfig = CodecConfig()) -> None:
        super().__init__()
        if config.in_channels not in (1, 3) or config.latent_dim <= 0 or config.width <= 0:
            raise ConfigError(f"invalid codec config {config}")
        self.config = config
        c, w = config.in_channels, config.width
        ch, cw = config.canvas_hw
        self._feature_shape = (w, ch // 4, cw // 4)
        n_features = w * (ch // 4) * (cw // 4)
        self.g_a = nn.Sequential(
            nn.Conv2d(c, w, 5, 2, 2), GDN(w),
            nn.Conv2d(w, w, 5, 2, 2), GDN(w),
            nn.Flatten(), nn.Linear(n_features, config.latent_dim),
        )
        self.g_s_linear = nn.Linear(config.latent_dim, n_features)
        self.g_s = nn.Sequential(
            GDN(w, inverse=True),
            nn.ConvTranspose2d(w, w, 5, 2, 2, output_padding=1), GDN(w, inverse=True),
            nn.ConvTranspose2d(w, c, 5, 2, 2, output_padding=1),
        )
        self.entropy_bottleneck = EntropyBottleneck(config.latent_dim)

    # -- geometry -----------------------------------------------------------------
    def padding_for(self, height: int, width: int) -> tuple[int, int, int, int]:
        """(left, right, top, bottom) zeros that place an H x W image on the canvas."""
        ch, cw = self.config.canvas_hw
        if height > ch or width > cw or height <= 0 or width <= 0:
            raise DataError(f"this model codes images up to {ch}x{cw}; got {height}x{width} (resize or tile first)")
        return centre_padding(height, width, ch, cw)

    def check_images(self, x: torch.Tensor) -> None:
        if x.ndim != 4:
            raise DataError(f"expected images N x C x H x W, got shape {tuple(x.shape)}")
        if x.shape[1] != self.config.in_channels:
            raise DataError(f"this model codes {self.config.in_channels}-channel images; got {x.shape[1]} channels")

    def _pad(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
        pad = self.padding_for(*x.shape[-2:])
        return F.pad(x, pad), pad

    # -- transforms ---------------------------------------------------------------
    def analysis(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
        """x N x C x H x W -> (y N x latent_dim, padding)."""
        self.check_images(x)
        padded, pad = self._pad(x)
        return self.g_a(padded), pad

    def synthesis(self, y_hat: torch.Tensor, pad: tuple[int, int, int, int]) -> torch.Tensor:
        """y_hat N x latent_dim -> x_hat N x C x H x W (not clamped)."""
        features = self.g_s_linear(y_hat).view(-1, *self._feature_shape)
        return crop_padding(self.g_s(features), pad)

    def medians(self) -> torch.Tensor:
        return medians(self.entropy_bottleneck).view(1, -1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Training/eval pass. Returns x_hat (N x C x H x W), likelihoods (N x latent_dim), y.

        The rate uses additive uniform noise (training) or rounding (eval), as CompressAI
        does; the synthesis always sees the rounded latent through a straight-through
        estimator, so training decodes what the bitstream will carry.
        """
        y, pad = self.analysis(x)
        _, likelihoods = self.entropy_bottleneck(y[:, :, None, None])
        medians = self.medians()
        y_rounded = torch.round(y - medians) + medians
        y_hat = y + (y_rounded - y).detach()
        return {"x_hat": self.synthesis(y_hat, pad), "likelihoods": likelihoods.view(y.shape), "y": y}

    def aux_loss(self) -> torch.Tensor:
        return self.entropy_bottleneck.loss()
