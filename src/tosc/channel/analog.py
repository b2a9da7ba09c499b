"""The analog (Deep JSCC style) channel: power normalisation, fading, AWGN, equalisation.

Encoder output ``2k`` reals -> ``k`` complex symbols -> ``z <- sqrt(k) z / ||z||`` per
image (so each image spends exactly Es = 1 per symbol) -> :class:`FadingChannel` ->
equalised symbols (perfect CSI) or the raw received symbols (no CSI). All of it is
differentiable in ``z``, so a JSCC model trains through it; the noise and fading come
from the ``torch.Generator`` passed in.
"""

from __future__ import annotations

import torch

from ..errors import ConfigError
from .fading import ChannelOutput, FadingChannel

__all__ = ["normalize_power", "real_to_complex", "complex_to_real", "AnalogChannel"]


def normalize_power(z: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Per-image power normalisation ``sqrt(k) z / ||z||``.

    z: [N, k] complex (or [N, ...], flattened per image). Returns the same shape and dtype
    with sum |z_i|^2 = k for every image, i.e. Es = 1 per complex symbol. ``eps`` guards
    an all-zero image (it stays zero rather than becoming NaN).
    """
    if z.ndim < 2:
        raise ConfigError(f"z must have a batch dimension, got shape {tuple(z.shape)}")
    flat = z.reshape(z.shape[0], -1)
    k = flat.shape[1]
    norm = torch.linalg.vector_norm(flat, dim=1, keepdim=True).clamp_min(eps)
    return (flat * (k ** 0.5 / norm)).reshape(z.shape)


def real_to_complex(x: torch.Tensor) -> torch.Tensor:
    """[N, 2k] real -> [N, k] complex: the first k values are the real parts, the last k the imaginary parts."""
    if x.ndim != 2 or x.shape[1] % 2 or x.is_complex():
        raise ConfigError(f"x must be a real [N, 2k] tensor, got {x.dtype} of shape {tuple(x.shape)}")
    if x.dtype not in (torch.float32, torch.float64):
        x = x.float()
    k = x.shape[1] // 2
    return torch.complex(x[:, :k], x[:, k:])


def complex_to_real(z: torch.Tensor) -> torch.Tensor:
    """[N, k] complex -> [N, 2k] real, the inverse of :func:`real_to_complex`."""
    if z.ndim != 2 or not z.is_complex():
        raise ConfigError(f"z must be a complex [N, k] tensor, got {z.dtype} of shape {tuple(z.shape)}")
    return torch.cat([z.real, z.imag], dim=1)


class AnalogChannel(torch.nn.Module):
    """Power-normalise, send over ``kind`` at ``snr_db``, equalise: the JSCC channel layer.

    forward(z, snr_db, generator=None) -> z_hat
        z:       [N, k] complex symbols (any scale; normalised here unless ``normalize=False``).
        snr_db:  float, or [N] tensor (one SNR per image, e.g. drawn per batch in training).
        z_hat:   [N, k] complex. With ``csi='perfect'`` the equalised estimate of the
                 normalised z (``equalizer`` 'zf' = y/h, or 'mmse'); with ``csi='none'`` the
                 raw received y = h z + w. For AWGN both equal y.

    :meth:`transmit` returns the full :class:`ChannelOutput` (y, h, N0) when a model needs
    the gains or the noise level. No parameters; gradients flow from z_hat to z.
    """

    def __init__(self, kind: str = "awgn", csi: str = "perfect", equalizer: str = "zf",
                 normalize: bool = True) -> None:
        super().__init__()
        if equalizer not in ("zf", "mmse"):
            raise ConfigError(f"equalizer must be 'zf' or 'mmse', got {equalizer!r}")
        self.channel = FadingChannel(kind, csi)
        self.equalizer = equalizer
        self.normalize = normalize

    @property
    def kind(self) -> str:
        return self.channel.kind

    @property
    def csi(self) -> str:
        return self.channel.csi

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, csi={self.csi!r}, equalizer={self.equalizer!r}, normalize={self.normalize}"

    def transmit(self, z: torch.Tensor, snr_db: float | torch.Tensor,
                 generator: torch.Generator | None = None) -> ChannelOutput:
        """Normalise (if enabled) and pass through the channel; [N, k] complex in, :class:`ChannelOutput` out."""
        if z.ndim != 2 or not z.is_complex():
            raise ConfigError(f"z must be a complex [N, k] tensor, got {z.dtype} of shape {tuple(z.shape)}")
        x = normalize_power(z) if self.normalize else z
        return self.channel(x, snr_db, generator)

    def forward(self, z: torch.Tensor, snr_db: float | torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
        out = self.transmit(z, snr_db, generator)
        if self.csi == "perfect":
            return out.equalised(self.equalizer)
        return out.y
