"""AWGN and Rayleigh fading on complex symbols: the one channel model both paths use.

``y = h * x + w`` per complex symbol, with ``w ~ CN(0, N0)`` (variance N0/2 per real
dimension), ``N0 = 10**(-snr_db/10)`` for unit-energy symbols (Es = 1), and

- ``awgn``: h = 1;
- ``rayleigh-block``: one ``h ~ CN(0, 1)`` per image (slow fading, all its symbols);
- ``rayleigh-fast``: an independent ``h ~ CN(0, 1)`` per symbol.

The caller is responsible for Es = 1 (:func:`tosc.channel.analog.normalize_power` for the
analog path; unit-energy constellations for the digital path). Everything here is plain
torch arithmetic, so gradients flow from ``y`` back to ``x`` (JSCC training). Randomness
comes only from the ``generator`` passed in, so a seeded generator reproduces a run.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import registry
from ..errors import ConfigError
from .conventions import CHANNEL_KINDS, check_channel_kind, check_csi, check_snr_db

__all__ = [
    "ChannelOutput",
    "FadingChannel",
    "make_channel",
    "complex_normal",
    "noise_variance",
]


def complex_normal(shape: tuple[int, ...], generator: torch.Generator | None = None,
                   device: torch.device | str | None = None,
                   dtype: torch.dtype = torch.complex64) -> torch.Tensor:
    """Samples of CN(0, 1): real and imaginary parts independent N(0, 1/2). Shape ``shape``."""
    real_dtype = torch.float64 if dtype == torch.complex128 else torch.float32
    gen_device = generator.device if generator is not None else (device or "cpu")
    pair = torch.randn(*shape, 2, generator=generator, device=gen_device, dtype=real_dtype)
    pair = pair.mul_(0.5 ** 0.5)
    out = torch.view_as_complex(pair)
    return out.to(device) if device is not None else out


def noise_variance(snr_db: float | torch.Tensor, n_rows: int, device: torch.device | str = "cpu",
                   dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """N0 per complex symbol for Es = 1, shape [n_rows, 1]; ``snr_db`` is a float or a [n_rows] tensor."""
    if isinstance(snr_db, torch.Tensor):
        snr = snr_db.to(device=device, dtype=dtype).reshape(-1)
        if snr.numel() == 1:
            snr = snr.expand(n_rows)
        if snr.numel() != n_rows:
            raise ConfigError(f"snr_db has {snr.numel()} entries for {n_rows} images")
        if not torch.isfinite(snr).all():
            raise ConfigError("snr_db must be finite")
        return torch.pow(10.0, -snr / 10.0).reshape(n_rows, 1)
    value = check_snr_db(snr_db)
    return torch.full((n_rows, 1), 10.0 ** (-value / 10.0), device=device, dtype=dtype)


@dataclass
class ChannelOutput:
    """What the channel returns for ``x`` of shape [N, k] (N images, k complex symbols each).

    y:  [N, k] complex, received ``h * x + w``.
    h:  [N, k] complex channel gains (all ones for AWGN; constant along k for block fading).
    n0: [N, 1] float, noise power per complex symbol (N0).
    """

    y: torch.Tensor
    h: torch.Tensor
    n0: torch.Tensor

    def equalised(self, equalizer: str = "zf") -> torch.Tensor:
        """Perfect-CSI estimate of x, [N, k] complex.

        ``zf``: y / h (unbiased; noise N0/|h|^2 per symbol, unbounded in deep fades).
        ``mmse``: conj(h) y / (|h|^2 + N0) (bounded; recommended when training through fast fading).
        """
        if equalizer == "zf":
            return self.y / self.h
        if equalizer == "mmse":
            gain = self.h.abs().square()
            return self.h.conj() * self.y / (gain + self.n0)
        raise ConfigError(f"equalizer must be 'zf' or 'mmse', got {equalizer!r}")

    def effective_n0(self) -> torch.Tensor:
        """Noise power per symbol after zero-forcing, N0 / |h|^2, [N, k] float (for APP demapping)."""
        return self.n0 / self.h.abs().square()


class FadingChannel:
    """A channel of one kind (``awgn``, ``rayleigh-block``, ``rayleigh-fast``) and receiver CSI.

    Call it with ``x`` [N, k] complex (Es = 1 per symbol), ``snr_db`` (float, or [N] tensor
    for one SNR per image) and a ``torch.Generator``; get a :class:`ChannelOutput`.
    """

    def __init__(self, kind: str = "awgn", csi: str = "perfect") -> None:
        self.kind = check_channel_kind(kind)
        self.csi = check_csi(csi)

    def __repr__(self) -> str:
        return f"FadingChannel(kind={self.kind!r}, csi={self.csi!r})"

    def gains(self, n_rows: int, n_symbols: int, generator: torch.Generator | None = None,
              device: torch.device | str = "cpu", dtype: torch.dtype = torch.complex64) -> torch.Tensor:
        """Channel gains h, [n_rows, n_symbols] complex."""
        if self.kind == "awgn":
            return torch.ones(n_rows, n_symbols, dtype=dtype, device=device)
        if self.kind == "rayleigh-block":
            h = complex_normal((n_rows, 1), generator, device, dtype)
            return h.expand(n_rows, n_symbols)
        return complex_normal((n_rows, n_symbols), generator, device, dtype)

    def __call__(self, x: torch.Tensor, snr_db: float | torch.Tensor,
                 generator: torch.Generator | None = None) -> ChannelOutput:
        if x.ndim != 2 or not x.is_complex():
            raise ConfigError(f"x must be a complex [N, k] tensor, got {x.dtype} of shape {tuple(x.shape)}")
        n_rows, n_symbols = x.shape
        real_dtype = torch.float64 if x.dtype == torch.complex128 else torch.float32
        n0 = noise_variance(snr_db, n_rows, device=x.device, dtype=real_dtype)
        h = self.gains(n_rows, n_symbols, generator, x.device, x.dtype)
        w = complex_normal((n_rows, n_symbols), generator, x.device, x.dtype)
        y = h * x + w * n0.sqrt()
        return ChannelOutput(y=y, h=h, n0=n0)


def make_channel(kind: str = "awgn", csi: str = "perfect") -> FadingChannel:
    """The registered channel ``kind`` with receiver CSI ``csi`` (``perfect`` or ``none``)."""
    return registry.get("channel", kind).factory(csi=csi)


@registry.register("channel", "awgn", "complex AWGN, SNR = Es/N0 per complex symbol")
def _awgn(csi: str = "perfect") -> FadingChannel:
    return FadingChannel("awgn", csi)


@registry.register("channel", "rayleigh-block", "Rayleigh block fading: one h ~ CN(0,1) per image, plus AWGN")
def _rayleigh_block(csi: str = "perfect") -> FadingChannel:
    return FadingChannel("rayleigh-block", csi)


@registry.register("channel", "rayleigh-fast", "Rayleigh fast fading: an independent h ~ CN(0,1) per symbol, plus AWGN")
def _rayleigh_fast(csi: str = "perfect") -> FadingChannel:
    return FadingChannel("rayleigh-fast", csi)


assert set(registry.names("channel")) >= set(CHANNEL_KINDS)
