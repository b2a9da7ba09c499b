"""Codec v3: a fully convolutional, variable-rate mean-scale hyperprior codec.

Shapes (x: N x C x H x W in [0, 1], C = 1 or 3, any H, W >= 16 padded to a multiple of 4):

    y   = g_a(x)                     N x M x H/4 x W/4
    y_s = y * gain(t)                per-channel gain at quality t in [0, 1] (gain units,
                                     Cui et al., CVPR 2021), interpolated between learned anchors
    z   = h_a(y_s)                   N x Mz x H/16 x W/16 (y zero-padded to a multiple of 4),
                                     coded with the factorized prior of the quality's band (one
                                     of ``z_bands`` equal slices of t: z is cheap where y is)
    (mu, idx) = h_s(z_symbols)       an *integer* network (:mod:`.intnet`): means in 1/16 units
                                     and indices into a fixed table of Gaussian scales
    y_symbols = round(y_s - mu)      coded with the Gaussian CDF table idx
    (context = "checkerboard")       the anchors (latent positions with i + j even) as above;
                                     then a second integer network sees the anchors' symbols and
                                     the hyper indices and adds a correction to (mu, idx) at the
                                     other positions, which are coded after every anchor
                                     (He et al., "Checkerboard context model", CVPR 2021)
    x_hat = g_s((y_symbols + mu) * inverse_gain(t))

The quality index ``q`` (``QUALITY_LEVELS`` values, t = q / (levels - 1)) travels in the stream.
Only the integer network, the stored integer CDF tables and the integer symbols decide how
bits are read, so streams decode identically on every machine; the float transforms only
shape the pixels.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compressai.entropy_models import EntropyBottleneck, GaussianConditional
from compressai.layers import GDN

from ...data.transforms import crop_padding, padding_for
from ...errors import ConfigError, DataError
from .compressai_adapter import gaussian_likelihood, medians
from .intnet import IntConv, IntNet, round_ste

__all__ = ["ConvCodecConfig", "ConvCodec", "QUALITY_LEVELS", "MEAN_FRACTION", "scale_table", "quality_band"]

QUALITY_LEVELS = 128  # 7 bits per image
CONTEXTS = ("none", "checkerboard")
CONTEXT_START_SCALE = 0.005
MEAN_FRACTION = 16  # means are integers / 16
MIN_IMAGE_SIDE = 16


def quality_band(quality: np.ndarray, bands: int) -> np.ndarray:
    """Quality indices [N] (0..QUALITY_LEVELS - 1) -> z prior bands [N], in integers."""
    return np.minimum(np.asarray(quality, dtype=np.int64) * bands // (QUALITY_LEVELS - 1), bands - 1)


def scale_table(levels: int = 64, smallest: float = 0.11, largest: float = 256.0) -> torch.Tensor:
    """Log-spaced Gaussian scales (CompressAI's default range), index 0 the smallest."""
    return torch.exp(torch.linspace(math.log(smallest), math.log(largest), levels))


@dataclass(frozen=True)
class ConvCodecConfig:
    in_channels: int = 1
    width: int = 64  # N: channels of the transforms
    latent_channels: int = 64  # M
    hyper_channels: int = 32  # Mz
    hyper_width: int = 64  # channels inside h_a / h_s
    gain_anchors: int = 6
    scale_levels: int = 64
    # z's factorized prior, one per band of qualities. One prior shared by every rate made z
    # cost more than y at the lowest quality (25 of 56 bits); the decoder knows q before z
    z_bands: int = 1
    # how the quality index is coded: "uniform" (7 bits) or "graded" (p(q) ~ 1 / (q + 8): 4.5
    # bits at q = 0, 8.6 at q = 127, where they matter least)
    quality_code: str = "uniform"
    # "none" (hyperprior only) or "checkerboard" (a two-pass spatial context, integer too)
    context: str = "none"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ConvCodecConfig":
        return cls(**d)


class ConvCodec(nn.Module):
    def __init__(self, config: ConvCodecConfig = ConvCodecConfig()) -> None:
        super().__init__()
        if config.in_channels not in (1, 3) or min(config.width, config.latent_channels, config.hyper_channels,
                                                   config.hyper_width, config.gain_anchors - 1, config.z_bands) <= 0 \
                or config.z_bands > QUALITY_LEVELS or config.quality_code not in ("uniform", "graded") \
                or config.context not in CONTEXTS:
            raise ConfigError(f"invalid codec config {config}")
        self.config = config
        c, n, m, mz, nh = (config.in_channels, config.width, config.latent_channels, config.hyper_channels,
                           config.hyper_width)
        self.g_a = nn.Sequential(
            nn.Conv2d(c, n, 5, 2, 2), GDN(n),
            nn.Conv2d(n, n, 5, 2, 2), GDN(n),
            nn.Conv2d(n, n, 3, 1, 1), GDN(n),
            nn.Conv2d(n, m, 3, 1, 1),
        )
        self.g_s = nn.Sequential(
            nn.Conv2d(m, n, 3, 1, 1), GDN(n, inverse=True),
            nn.Conv2d(n, n, 3, 1, 1), GDN(n, inverse=True),
            nn.ConvTranspose2d(n, n, 5, 2, 2, output_padding=1), GDN(n, inverse=True),
            nn.ConvTranspose2d(n, c, 5, 2, 2, output_padding=1),
        )
        self.h_a = nn.Sequential(
            nn.Conv2d(m, nh, 3, 1, 1), nn.LeakyReLU(inplace=True),
            nn.Conv2d(nh, nh, 5, 2, 2), nn.LeakyReLU(inplace=True),
            nn.Conv2d(nh, mz, 5, 2, 2),
        )
        self.h_s = IntNet([
            IntConv(mz, nh, 5, 2, transposed=True),
            IntConv(nh, nh, 5, 2, transposed=True),
            IntConv(nh, 2 * m, 3, 1, final=True),
        ], input_bound=255)
        self.ctx = None
        if config.context == "checkerboard":
            # input: the anchors' symbols (0 elsewhere) and the hyper scale indices, 2M channels;
            # output: corrections to the means (1/16 units) and scale indices, 2M channels
            self.ctx = IntNet([
                IntConv(2 * m, nh, 5, 1),
                IntConv(nh, nh, 1, 1),
                IntConv(nh, 2 * m, 1, 1, final=True),
            ], input_bound=255)
            with torch.no_grad():
                # its inputs are small integers, so the first layer's activations start 4x larger
                # than the hyper-synthesis's (on average 3 of 255 at q32 otherwise: the rounding
                # drowned them and training let the ReLUs die); the corrections start small
                # (0.2 units on average at q96), so a warm start keeps its curve
                self.ctx.layers[0].log_alpha.add_(math.log(4.0))
                self.ctx.layers[-1].log_alpha.fill_(math.log(CONTEXT_START_SCALE))
        anchors = torch.linspace(-1.0, 3.5, config.gain_anchors)[:, None].repeat(1, m)
        self.log_gain = nn.Parameter(anchors.clone())
        self.log_inverse_gain = nn.Parameter(-anchors.clone())
        self.entropy_bottleneck = EntropyBottleneck(mz * config.z_bands)  # band b: channels b*Mz..
        self.register_buffer("scales", scale_table(config.scale_levels))
        self.gaussian = GaussianConditional(None)

    # -- geometry -----------------------------------------------------------------
    def padding_for(self, height: int, width: int) -> tuple[int, int, int, int]:
        if min(height, width) < MIN_IMAGE_SIDE:
            raise DataError(f"this codec needs images of at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE}; "
                            f"got {height}x{width}")
        return padding_for(height, width, 4)

    def check_images(self, x: torch.Tensor) -> None:
        if x.ndim != 4:
            raise DataError(f"expected images N x C x H x W, got shape {tuple(x.shape)}")
        if x.shape[1] != self.config.in_channels:
            raise DataError(f"this model codes {self.config.in_channels}-channel images; got {x.shape[1]} channels")
        self.padding_for(*x.shape[-2:])

    # -- gains --------------------------------------------------------------------
    def _interpolate(self, anchors: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """anchors K x M, t [N] in [0, 1] -> N x M x 1 x 1 (exp of the log-linear interpolation)."""
        u = t.clamp(0, 1) * (anchors.shape[0] - 1)
        k = u.floor().clamp(max=anchors.shape[0] - 2).long()
        frac = (u - k)[:, None]
        log_g = anchors[k] * (1 - frac) + anchors[k + 1] * frac
        return log_g.exp()[:, :, None, None]

    def gain(self, t: torch.Tensor) -> torch.Tensor:
        return self._interpolate(self.log_gain, t)

    def inverse_gain(self, t: torch.Tensor) -> torch.Tensor:
        return self._interpolate(self.log_inverse_gain, t)

    # -- pieces shared by training and coding --------------------------------------
    def analysis(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
        """x N x C x H x W, t [N] -> (gained latent y_s N x M x H'/4 x W'/4, image padding)."""
        self.check_images(x)
        pad = self.padding_for(*x.shape[-2:])
        return self.g_a(F.pad(x, pad)) * self.gain(t), pad

    @staticmethod
    def hyper_padding(y_hw: tuple[int, int]) -> tuple[int, int, int, int]:
        h, w = y_hw
        return 0, (-w) % 4, 0, (-h) % 4

    def hyper_analysis(self, y_s: torch.Tensor) -> torch.Tensor:
        return self.h_a(F.pad(y_s, self.hyper_padding(y_s.shape[-2:])))

    def z_band(self, t: torch.Tensor) -> torch.Tensor:
        """t [N] in [0, 1] -> the z prior's band [N] (long). At t = q / (QUALITY_LEVELS - 1) it
        equals :func:`quality_band` (q * bands / 127 is never within 1e-6 of an integer but at
        q = 0 and 127)."""
        bands = self.config.z_bands
        return torch.floor(t.clamp(0, 1) * bands + 1e-6).long().clamp(0, bands - 1)

    def z_medians(self, band: torch.Tensor | None = None) -> torch.Tensor:
        """The medians z is rounded around: N x Mz x 1 x 1 for bands [N] (Bands x Mz x 1 x 1 if None)."""
        med = medians(self.entropy_bottleneck).reshape(self.config.z_bands, self.config.hyper_channels, 1, 1)
        return med if band is None else med[band]

    def z_likelihoods(self, z: torch.Tensor, band: torch.Tensor) -> torch.Tensor:
        """Likelihoods of z (N x Mz x h x w) under each image's band prior, noise proxy in training."""
        n, mz, h, w = z.shape
        bands = self.config.z_bands
        # every band's prior sees every z, then each image keeps its own: the priors are tiny
        _, lik = self.entropy_bottleneck(z.repeat(1, bands, 1, 1))
        return lik.view(n, bands, mz, h, w).gather(1, band.view(n, 1, 1, 1, 1).expand(n, 1, mz, h, w)).squeeze(1)

    def split_params(self, raw: torch.Tensor, y_hw: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """h_s output N x 2M x h x w (integers) -> (mean numerators, scale indices), cropped to y."""
        m = self.config.latent_channels
        raw = raw[:, :, : y_hw[0], : y_hw[1]]
        return raw[:, :m], raw[:, m:].clamp(0, self.config.scale_levels - 1)

    @staticmethod
    def anchor_mask(y_hw: tuple[int, int]) -> torch.Tensor:
        """1 x 1 x h x w: 1 at the checkerboard's anchors (i + j even), 0 elsewhere."""
        i = torch.arange(y_hw[0]).view(-1, 1)
        j = torch.arange(y_hw[1]).view(1, -1)
        return ((i + j) % 2 == 0).to(torch.float32).view(1, 1, *y_hw)

    def _apply_context(self, raw: torch.Tensor, mean_num: torch.Tensor, index: torch.Tensor,
                       mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m, other = self.config.latent_channels, 1 - mask
        return mean_num + raw[:, :m] * other, (index + raw[:, m:] * other).clamp(0, self.config.scale_levels - 1)

    def context_params(self, anchor_symbols: torch.Tensor, mean_num: torch.Tensor,
                       index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training path: anchors' symbols N x M x h x w (0 off the anchors), the hyper's (means,
        indices) -> the same with the context's correction at the non-anchors."""
        mask = self.anchor_mask(index.shape[-2:]).to(index.device)
        raw = self.ctx(torch.cat([anchor_symbols * mask, index], 1))
        return self._apply_context(raw, mean_num, index, mask)

    @torch.no_grad()
    def context_exact(self, anchor_symbols: torch.Tensor, mean_num: torch.Tensor,
                      index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`context_params` on integers only (int64 in, int64 out, CPU): what the codec uses."""
        mask = self.anchor_mask(index.shape[-2:]).to(torch.int64)
        raw = self.ctx.run_exact(torch.cat([anchor_symbols.to(torch.int64) * mask, index.to(torch.int64)], 1))
        return self._apply_context(raw, mean_num.to(torch.int64), index.to(torch.int64), mask)

    def synthesis(self, y_hat_s: torch.Tensor, t: torch.Tensor, pad: tuple[int, int, int, int]) -> torch.Tensor:
        return crop_padding(self.g_s(y_hat_s * self.inverse_gain(t)), pad)

    # -- training -----------------------------------------------------------------
    def forward(self, x: torch.Tensor, t: torch.Tensor) -> dict[str, torch.Tensor]:
        """Training pass at qualities t [N]: x_hat, per-image bits (noise proxy) of y and z."""
        y_s, pad = self.analysis(x, t)
        z = self.hyper_analysis(y_s)
        band = self.z_band(t)
        z_likelihoods = self.z_likelihoods(z, band)
        z_symbols = round_ste(z - self.z_medians(band))
        raw = self.h_s(z_symbols)
        mean_num, index = self.split_params(raw, y_s.shape[-2:])
        if self.ctx is not None:
            mean_num, index = self.context_params(round_ste(y_s - mean_num / MEAN_FRACTION), mean_num, index)
        means = mean_num / MEAN_FRACTION
        # straight-through: the table's scale forward, d sigma / d index = sigma * log(step) backward
        table_sigma = self.scales[index.detach().long()]
        sigma = table_sigma + (index - index.detach()) * table_sigma * math.log(self.scales[1].item() / self.scales[0].item())
        if self.training:
            y_tilde = y_s + self.training_noise(y_s)
        else:
            y_tilde = torch.round(y_s - means) + means
        y_likelihoods = gaussian_likelihood(self.gaussian, y_tilde, sigma, means)
        y_hat = round_ste(y_s - means) + means
        x_hat = self.synthesis(y_hat, t, pad)
        bits_y = -y_likelihoods.log2().flatten(1).sum(1)
        bits_z = -z_likelihoods.log2().flatten(1).sum(1)
        return {"x_hat": x_hat, "bits_y": bits_y, "bits_z": bits_z}

    @staticmethod
    def training_noise(y_s: torch.Tensor) -> torch.Tensor:
        """U(-0.5, 0.5) noise shaped like ``y_s`` (N x M x h x w), the rounding proxy of training. A
        data-parallel trainer shadows it on its instance to draw the noise of the whole global batch."""
        return torch.empty_like(y_s).uniform_(-0.5, 0.5)

    def aux_loss(self) -> torch.Tensor:
        return self.entropy_bottleneck.loss()
