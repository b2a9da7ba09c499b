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

import hashlib
import math
from dataclasses import dataclass

import torch

from .. import registry
from ..errors import ConfigError
from . import finite
from .conventions import (capacity_bits_per_use, check_channel_kind, check_csi, check_snr_db,
                          db_to_linear, ergodic_rayleigh_capacity_bits_per_use)

__all__ = [
    "ChannelOutput",
    "FadingChannel",
    "AwgnChannel",
    "RayleighBlockChannel",
    "RayleighFastChannel",
    "make_channel",
    "complex_normal",
    "image_generator",
    "base_seed",
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


def image_generator(seed: int, image_index: int) -> torch.Generator:
    """The generator of one image's channel realisation: a function of (seed, image index) only,
    so an image sees the same fade and noise whichever other images are sent with it."""
    digest = hashlib.sha256(f"tosc-channel/{int(seed)}/{int(image_index)}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)


def base_seed(seed: int | None, generator: torch.Generator | None) -> int:
    """The seed per-image generators derive from: ``seed``, else one draw from ``generator``, else 0."""
    if seed is not None:
        return int(seed)
    if generator is not None:
        return int(torch.randint(0, 2 ** 62, (1,), generator=generator))
    return 0


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
    """A channel of one kind and the receiver's CSI; each kind is a subclass that knows its
    own gains, equaliser, effective SNR, capacity, outage and finite-length bound.

    Call it with ``x`` [N, k] complex (Es = 1 per symbol), ``snr_db`` (float, or [N] tensor
    for one SNR per image) and a ``torch.Generator``; get a :class:`ChannelOutput`.
    ``FadingChannel(kind, csi)`` returns the subclass registered for ``kind``.
    """

    kind = ""
    #: equaliser the analog (JSCC) systems use on this channel
    analog_equalizer = "zf"
    #: True when one gain covers all symbols of an image (outage is per image)
    per_image_gain = False

    def __new__(cls, kind: str | None = None, csi: str = "perfect"):
        if cls is FadingChannel:
            cls = _KINDS[check_channel_kind(kind if kind is not None else "awgn")]
        return super().__new__(cls)

    def __init__(self, kind: str | None = None, csi: str = "perfect") -> None:
        if kind is not None and kind != self.kind:
            raise ConfigError(f"{type(self).__name__} is the {self.kind!r} channel, not {kind!r}")
        self.csi = check_csi(csi)

    def __repr__(self) -> str:
        return f"FadingChannel(kind={self.kind!r}, csi={self.csi!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FadingChannel) and (self.kind, self.csi) == (other.kind, other.csi)

    def __hash__(self) -> int:
        return hash((self.kind, self.csi))

    # -- sampling -------------------------------------------------------------------------
    def gains(self, n_rows: int, n_symbols: int, generator: torch.Generator | None = None,
              device: torch.device | str = "cpu", dtype: torch.dtype = torch.complex64) -> torch.Tensor:
        """Channel gains h, [n_rows, n_symbols] complex."""
        raise NotImplementedError

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

    # -- what the receiver knows ---------------------------------------------------------
    def receiver_snr_db(self, snr_db: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """The SNR [N] a receiver with this CSI can tell a decoder, from the nominal ``snr_db`` [N]
        and the gains ``h`` [N, k]: the nominal SNR, except where one known gain scales the image."""
        return snr_db

    # -- information theory (bits per complex channel use, SNR = Es/N0 in dB) --------------
    def capacity_bits_per_use(self, snr_db: float) -> float:
        """The capacity (AWGN) or ergodic capacity (fading, perfect receiver CSI) per channel use."""
        raise NotImplementedError

    def outage_probability(self, bits_per_use: float, snr_db: float) -> float:
        """P(the channel of one image cannot carry ``bits_per_use``): 0 or 1 unless the gain is per image."""
        return 0.0 if bits_per_use <= self.capacity_bits_per_use(snr_db) else 1.0

    def normal_approximation_bits(self, snr_db: float, n_channel_uses: int, target_bler: float) -> float:
        """Information bits k channel uses carry at block error rate ``target_bler`` by the normal
        approximation (:mod:`tosc.channel.finite`); 0 when it is not positive."""
        raise NotImplementedError

    # -- how the digital link judges a scheme on this channel ------------------------------
    @property
    def model_kind(self) -> str:
        """The channel whose simulated BLER model (:mod:`tosc.channel.bler`) judges schemes here."""
        return self.kind

    def model_snr_db(self, snr_db: float, target_bler: float) -> float:
        """The SNR at which to read that model for a scheme that must meet ``target_bler`` here."""
        return check_snr_db(snr_db)


class AwgnChannel(FadingChannel):
    """Complex AWGN: h = 1."""

    kind = "awgn"

    def gains(self, n_rows, n_symbols, generator=None, device="cpu", dtype=torch.complex64):
        return torch.ones(n_rows, n_symbols, dtype=dtype, device=device)

    def capacity_bits_per_use(self, snr_db: float) -> float:
        return float(capacity_bits_per_use(check_snr_db(snr_db)))

    def normal_approximation_bits(self, snr_db, n_channel_uses, target_bler):
        return finite.awgn_normal_approximation_bits(snr_db, n_channel_uses, target_bler)


class RayleighBlockChannel(FadingChannel):
    """One h ~ CN(0, 1) per image (slow fading): an image is in outage when its own
    capacity log2(1 + |h|^2 SNR) is below its rate; the ergodic capacity is only an average."""

    kind = "rayleigh-block"
    per_image_gain = True

    def gains(self, n_rows, n_symbols, generator=None, device="cpu", dtype=torch.complex64):
        return complex_normal((n_rows, 1), generator, device, dtype).expand(n_rows, n_symbols)

    def receiver_snr_db(self, snr_db: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        if self.csi != "perfect":
            return snr_db
        return snr_db + 10 * torch.log10(h[:, 0].abs().square().float().clamp_min(1e-6))

    def capacity_bits_per_use(self, snr_db: float) -> float:
        return ergodic_rayleigh_capacity_bits_per_use(snr_db)

    def outage_probability(self, bits_per_use: float, snr_db: float) -> float:
        """P(log2(1 + g SNR) < R) = 1 - exp(-(2^R - 1) / SNR), g = |h|^2 ~ Exp(1)."""
        snr = float(db_to_linear(check_snr_db(snr_db)))
        return float(-math.expm1(-(2.0 ** bits_per_use - 1.0) / snr))

    def normal_approximation_bits(self, snr_db, n_channel_uses, target_bler):
        return finite.block_fading_normal_approximation_bits(snr_db, n_channel_uses, target_bler)

    @property
    def model_kind(self) -> str:
        return "awgn"

    def model_snr_db(self, snr_db: float, target_bler: float) -> float:
        """A codeword sees AWGN at SNR g s, g ~ Exp(1). Reading the AWGN model at s g_min with
        P(g < g_min) = target / 2 leaves the other half of the target to the AWGN failures above
        g_min, which are far fewer: the density of g near g_min is about 1, so
        P(g in [g_min, 10 g_min]) ~ 9 g_min, times a BLER <= target there."""
        g_min = -math.log1p(-target_bler / 2.0)
        return check_snr_db(snr_db) + 10.0 * math.log10(g_min)


class RayleighFastChannel(FadingChannel):
    """An independent h ~ CN(0, 1) per symbol; the analog systems equalise with MMSE, which
    keeps deep fades of single symbols from blowing up the noise."""

    kind = "rayleigh-fast"
    analog_equalizer = "mmse"
    # each row of the fast-fading model is read by its own margin: the refined rows (50 BP
    # iterations or CA-polar, passed at half the target on 8,000 codewords) 0.0625 dB low, the
    # coarse rows (20 iterations, 3,000 codewords a threshold) 0.5 dB low, since the fading
    # waterfall is shallower and 0.25 dB left 30 failures in 20,000 codewords at 5 dB, k = 49

    def gains(self, n_rows, n_symbols, generator=None, device="cpu", dtype=torch.complex64):
        return complex_normal((n_rows, n_symbols), generator, device, dtype)

    def capacity_bits_per_use(self, snr_db: float) -> float:
        return ergodic_rayleigh_capacity_bits_per_use(snr_db)

    def normal_approximation_bits(self, snr_db, n_channel_uses, target_bler):
        return finite.fast_fading_normal_approximation_bits(snr_db, n_channel_uses, target_bler)


_KINDS: dict[str, type[FadingChannel]] = {c.kind: c for c in (AwgnChannel, RayleighBlockChannel, RayleighFastChannel)}


def make_channel(kind: str = "awgn", csi: str = "perfect") -> FadingChannel:
    """The registered channel ``kind`` with receiver CSI ``csi`` (``perfect`` or ``none``)."""
    return registry.get("channel", kind).factory(csi=csi)


@registry.register("channel", "awgn", "complex AWGN, SNR = Es/N0 per complex symbol")
def _awgn(csi: str = "perfect") -> FadingChannel:
    return AwgnChannel(csi=csi)


@registry.register("channel", "rayleigh-block", "Rayleigh block fading: one h ~ CN(0,1) per image, plus AWGN")
def _rayleigh_block(csi: str = "perfect") -> FadingChannel:
    return RayleighBlockChannel(csi=csi)


@registry.register("channel", "rayleigh-fast", "Rayleigh fast fading: an independent h ~ CN(0,1) per symbol, plus AWGN")
def _rayleigh_fast(csi: str = "perfect") -> FadingChannel:
    return RayleighFastChannel(csi=csi)

