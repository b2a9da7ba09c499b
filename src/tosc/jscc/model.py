"""Deep JSCC (Bourtsoulatze, Kurka, Gunduz 2019) with bandwidth-agile symbols and SNR attention.

The chain for one batch::

    x [N, C, H, W] in [0, 1]
      -> encoder: conv 5x5 (stride 2, 2, 1, 1, 1; 16, 32, 32, 32, c_out filters), GDN + PReLU
      -> 2 k_max reals per image, ordered by importance
      -> first 2k reals -> k complex symbols (symbol i = real 2i + j real 2i+1)
      -> z <- sqrt(k) z / ||z||  (per image: Es = 1 per symbol, tosc.channel.normalize_power)
      -> tosc.channel.AnalogChannel (awgn / rayleigh-block / rayleigh-fast, perfect CSI, equalised)
      -> zeros for the k_max - k symbols not sent
      -> decoder: transposed convs mirroring the encoder, inverse GDN + PReLU, sigmoid
      -> x_hat [N, C, H, W] in [0, 1]

Differences from the paper, each for a reason:

- **Bandwidth agility.** The paper trains one model per CBR. Here one model carries up to
  ``k_max = floor(max_cbr * C*H*W)`` symbols and is trained with a random ``k`` per batch,
  so its symbols come out ordered by importance and any ``k <= k_max`` is served by
  truncation (the receiver puts zeros where nothing was sent). ``benchmarks/jscc_bench.py``
  measures what this costs against a model trained at one fixed CBR.
- **Bandwidth expansion.** Above ``k_max`` the symbols are repeated cyclically and the
  receiver combines the copies by maximum-ratio combining, an SNR gain of about
  ``10 log10(k / k_max)`` dB; it is not a trained code.
- **SNR attention** (ADJSCC, Xu et al. 2021), optional and off in the shipped models (it cost
  0.17 dB after the full schedule, ``benchmarks/jscc_bench.py attention``): after the 3rd and 4th encoder
  layers and the 1st and 2nd decoder layers a small MLP of (channel means, SNR in dB, and in
  the decoder k/k_max) rescales each channel. The encoder is not told k, so the first k
  symbols of a k_max-symbol codeword are exactly the k-symbol codeword (up to power). The decoder is given the SNR the receiver knows (per image on
  block fading: ``SNR |h|^2``).
- Images are padded to a multiple of 4 (the canvas) and cropped back, as the learned codec does.

Shapes: ``x`` N x C x H x W; ``z`` N x k complex; ``snr_db`` a float or an [N] tensor.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from compressai.layers import GDN

from ..channel import AnalogChannel, normalize_power
from ..data.transforms import centre_padding, crop_padding
from ..errors import ConfigError, DataError

__all__ = ["JSCCConfig", "DeepJSCC", "SNR_CONDITION_RANGE_DB"]

# the SNR fed to the attention modules is clipped to a little beyond the training range
SNR_CONDITION_RANGE_DB = (-5.0, 25.0)


@dataclass(frozen=True)
class JSCCConfig:
    """in_channels, image_hw: the images the model codes; max_cbr: k_max / (C*H*W);
    width: the paper's 32 filters (the first layer has width // 2); snr_adaptive: attention modules."""

    in_channels: int = 1
    image_hw: tuple[int, int] = (28, 28)
    max_cbr: float = 0.5
    width: int = 32
    snr_adaptive: bool = False

    def __post_init__(self) -> None:
        h, w = self.image_hw
        if self.in_channels < 1 or h < 1 or w < 1 or self.width < 2:
            raise ConfigError(f"invalid JSCC config {self}")
        if not 0 < self.max_cbr <= 4:
            raise ConfigError(f"max_cbr must lie in (0, 4], got {self.max_cbr}")
        if self.k_max < 1:
            raise ConfigError(f"max_cbr {self.max_cbr} gives no channel use for {self.in_channels}x{h}x{w} images")

    @property
    def canvas_hw(self) -> tuple[int, int]:
        h, w = self.image_hw
        return h + (-h) % 4, w + (-w) % 4

    @property
    def n_source(self) -> int:
        return self.in_channels * self.image_hw[0] * self.image_hw[1]

    @property
    def k_max(self) -> int:
        return math.floor(self.max_cbr * self.n_source)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """(c_out, H/4, W/4) of the canvas: the smallest c_out holding 2 k_max reals."""
        ch, cw = self.canvas_hw
        cells = (ch // 4) * (cw // 4)
        return math.ceil(2 * self.k_max / cells), ch // 4, cw // 4

    def to_dict(self) -> dict:
        d = asdict(self)
        d["image_hw"] = list(self.image_hw)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "JSCCConfig":
        d = dict(d)
        d["image_hw"] = tuple(d["image_hw"])
        return cls(**d)


class SNRAttention(nn.Module):
    """ADJSCC attention feature module: per-channel scales from (channel means, side information)."""

    def __init__(self, channels: int, n_side: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(channels + n_side, channels // 2), nn.ReLU(inplace=True),
                                 nn.Linear(channels // 2, channels), nn.Sigmoid())

    def forward(self, features: torch.Tensor, side: torch.Tensor) -> torch.Tensor:
        context = torch.cat([features.mean(dim=(2, 3)), side], dim=1)
        return features * self.mlp(context)[:, :, None, None]


def _down(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 5, stride, 2), GDN(c_out), nn.PReLU(c_out))


def _up(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 5, stride, 2, output_padding=stride - 1),
                         GDN(c_out, inverse=True), nn.PReLU(c_out))


class DeepJSCC(nn.Module):
    """Encoder and decoder of Deep JSCC; :meth:`forward` runs the whole chain through a channel."""

    def __init__(self, config: JSCCConfig = JSCCConfig()) -> None:
        super().__init__()
        self.config = config
        c, w = config.in_channels, config.width
        c_out = config.latent_shape[0]
        self.encoder = nn.ModuleList([_down(c, w // 2, 2), _down(w // 2, w, 2), _down(w, w, 1), _down(w, w, 1),
                                      nn.Conv2d(w, c_out, 5, 1, 2)])
        self.decoder = nn.ModuleList([_up(c_out, w, 1), _up(w, w, 1), _up(w, w, 1), _up(w, w // 2, 2),
                                      nn.ConvTranspose2d(w // 2, c, 5, 2, 2, output_padding=1)])
        # attention after encoder layers 3 and 4, decoder layers 1 and 2 (ADJSCC's placement, shortened)
        n_att = 2 if config.snr_adaptive else 0
        # the encoder is told the SNR only, not k: so k symbols are exactly the first k of the
        # k_max ones (truncation); the decoder knows how many arrived and is told k / k_max too
        self.enc_attention = nn.ModuleList([SNRAttention(w, 1) for _ in range(n_att)])
        self.dec_attention = nn.ModuleList([SNRAttention(w, 2) for _ in range(n_att)])

    @property
    def k_max(self) -> int:
        return self.config.k_max

    # -- geometry ------------------------------------------------------------------
    def check_images(self, x: torch.Tensor) -> None:
        want = (self.config.in_channels, *self.config.image_hw)
        if x.ndim != 4 or tuple(x.shape[1:]) != want:
            raise DataError(f"this Deep JSCC model codes images of shape {'x'.join(map(str, want))}; "
                            f"got {'x'.join(map(str, x.shape[1:])) if x.ndim == 4 else tuple(x.shape)}")

    def _padding(self) -> tuple[int, int, int, int]:
        return centre_padding(*self.config.image_hw, *self.config.canvas_hw)

    def check_k(self, k: int) -> int:
        if int(k) != k or k < 1 or k > self.k_max:
            raise ConfigError(f"this Deep JSCC model sends 1..{self.k_max} symbols per image "
                              f"(CBR up to {self.config.max_cbr:g}); got k = {k}")
        return int(k)

    def _side(self, n: int, snr_db: float | torch.Tensor, k: int, like: torch.Tensor) -> torch.Tensor:
        """[N, 2] side information: (SNR dB clipped, scaled by 1/20; k / k_max)."""
        snr = torch.as_tensor(snr_db, dtype=like.dtype, device=like.device).reshape(-1).expand(n)
        snr = snr.clamp(*SNR_CONDITION_RANGE_DB) / 20.0
        return torch.stack([snr, torch.full_like(snr, k / self.k_max)], dim=1)

    # -- the two halves ----------------------------------------------------------------
    def encode(self, x: torch.Tensor, k: int, snr_db: float | torch.Tensor = 10.0) -> torch.Tensor:
        """x N x C x H x W in [0, 1] -> z [N, k] complex with ||z_n||^2 = k (Es = 1 per symbol).

        ``snr_db`` (float or [N]) is the SNR the transmitter designs for (used only with attention).
        """
        self.check_images(x)
        k = self.check_k(k)
        h = F.pad(x, self._padding())
        side = self._side(len(x), snr_db, k, x)[:, :1] if self.config.snr_adaptive else None
        for i, layer in enumerate(self.encoder):
            h = layer(h)
            if side is not None and i in (2, 3):
                h = self.enc_attention[i - 2](h, side)
        reals = h.flatten(1)[:, : 2 * k]
        return normalize_power(torch.view_as_complex(reals.reshape(len(x), k, 2).contiguous()))

    def decode(self, z_hat: torch.Tensor, snr_db: float | torch.Tensor = 10.0) -> torch.Tensor:
        """z_hat [N, k] complex (equalised symbols) -> x_hat N x C x H x W in [0, 1]."""
        if z_hat.ndim != 2 or not z_hat.is_complex():
            raise ConfigError(f"z_hat must be a complex [N, k] tensor, got {z_hat.dtype} {tuple(z_hat.shape)}")
        n, k = z_hat.shape
        k = self.check_k(k)
        c_out, hh, ww = self.config.latent_shape
        reals = torch.view_as_real(z_hat).reshape(n, 2 * k).float()
        h = F.pad(reals, (0, c_out * hh * ww - 2 * k)).view(n, c_out, hh, ww)
        side = self._side(n, snr_db, k, reals) if self.config.snr_adaptive else None
        for i, layer in enumerate(self.decoder):
            h = layer(h)
            if side is not None and i in (0, 1):
                h = self.dec_attention[i](h, side)
        return crop_padding(torch.sigmoid(h), self._padding())

    # -- the whole chain -------------------------------------------------------------------
    def forward(self, x: torch.Tensor, snr_db: float | torch.Tensor, k: int, channel: AnalogChannel | None = None,
                generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Encode, send ``k`` symbols per image over ``channel`` (AWGN by default), decode.

        Returns x_hat (N x C x H x W), z (the sent [N, k] symbols) and snr_rx_db ([N], the SNR
        the decoder was told). ``k`` above k_max is sent by repetition (see module docstring).
        """
        channel = channel if channel is not None else AnalogChannel("awgn", normalize=False)
        if channel.normalize:
            raise ConfigError("pass an AnalogChannel(normalize=False): the encoder already normalises its power")
        if int(k) != k or k < 1:
            raise ConfigError(f"k must be a positive number of channel uses, got {k}")
        k_sent = min(int(k), self.k_max)
        z = self.encode(x, k_sent, snr_db)
        tx = z.repeat(1, math.ceil(k / k_sent))[:, :k]
        out = channel.transmit(tx, snr_db, generator)
        # maximum-ratio combining of the copies of each symbol (one copy: plain equalisation)
        slot = torch.arange(k) % k_sent
        if channel.csi == "perfect":
            num = torch.zeros_like(z).index_add_(1, slot, out.h.conj() * out.y)
            gain = torch.zeros(z.shape, dtype=out.n0.dtype).index_add_(1, slot, out.h.abs().square())
            denominator = gain + out.n0 if channel.equalizer == "mmse" else gain
            z_hat = num / denominator
        else:
            count = torch.zeros(k_sent).index_add_(0, slot, torch.ones(k))
            z_hat = torch.zeros_like(z).index_add_(1, slot, out.y) / count
        snr_rx = self._receiver_snr_db(snr_db, len(x), out.h, channel, k, k_sent)
        return {"x_hat": self.decode(z_hat, snr_rx), "z": z, "snr_rx_db": snr_rx}

    @staticmethod
    def _receiver_snr_db(snr_db, n: int, h: torch.Tensor, channel: AnalogChannel, k: int,
                         k_sent: int) -> torch.Tensor:
        snr = torch.as_tensor(snr_db, dtype=torch.float32).reshape(-1).expand(n).clone()
        snr = channel.channel.receiver_snr_db(snr, h)  # block fading with CSI: SNR |h|^2
        return snr + 10 * math.log10(k / k_sent)  # average combining gain of the repetitions
