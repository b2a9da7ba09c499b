"""Codec v3's global mode: one vector latent per image, for the lowest rates at one image size.

The transform codec (:mod:`.conv`) pays for its generality at the lowest rates: a spatial
latent with side information needs about 40 bits before an image looks like anything, and at
0.06 bpp (47 bits at 28 x 28) that is the whole stream. For images of one known size whose
content is aligned (Fashion-MNIST's centred items), a position-specific vector latent with a
factorized prior needs no side information at all; the old per-rate family (:mod:`.model`)
measured it 2 dB ahead of v3 there. This mode brings that to the one variable-rate checkpoint:

    y     = g_a(x)                      N x L     (conv-GDN x 2, then a linear layer)
    y_s   = y * gain[k]                 level k in 0..levels-1 (gain units, one vector per level)
    sym   = round(y_s - median[k])      coded with level k's factorized tables (levels x L
                                        channels of one CompressAI EntropyBottleneck)
    x_hat = g_s((sym + median[k]) * inverse_gain[k])

The decoder reads symbols with integer tables only (frozen with the weights), so streams parse
identically everywhere; the float transforms shape only the pixels. It codes exactly one size
and channel count (``image_hw``, ``in_channels``); the codec offers it to no other image.
Level k is trained at lambda_p(t) with t = k / (levels - 1), like the transform codec's
continuous t, over its own lambda range.

Shapes: x N x C x H x W in [0, 1] with (C, H, W) = (in_channels, *image_hw); level [N] (long).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from compressai.entropy_models import EntropyBottleneck
from compressai.layers import GDN

from ...errors import ConfigError, DataError
from .compressai_adapter import TABLE_BUFFERS, medians

__all__ = ["GlobalModeConfig", "GlobalMode", "INT8_WEIGHTS", "stored_as_int8", "to_int8_rows", "from_int8_rows", "tile_levels"]


@dataclass(frozen=True)
class GlobalModeConfig:
    in_channels: int = 1
    image_hw: tuple[int, int] = (28, 28)  # multiples of 4: the one size this mode codes
    width: int = 32
    latent_dim: int = 96
    levels: int = 16
    # store the weights of the transforms (linear and convolutional layers: most of the mode) and
    # the prior's density parameters as int8 with a scale per row, instead of float16: they shape
    # only the pixels and the encoder's choice of symbols, never the coder's tables (kept exact)
    int8_weights: bool = False

    def to_dict(self) -> dict:
        d = asdict(self)
        d["image_hw"] = list(self.image_hw)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "GlobalModeConfig":
        d = dict(d)
        d["image_hw"] = tuple(d["image_hw"])
        return cls(**d)


#: the transform weights an ``int8_weights`` mode stores as int8 (a scale per slice along the first dimension)
INT8_WEIGHTS = ("g_a.0.weight", "g_a.2.weight", "g_a.5.weight", "g_s_linear.weight", "g_s.1.weight", "g_s.3.weight")


def stored_as_int8(name: str) -> bool:
    """Whether an ``int8_weights`` mode stores the state entry ``name`` as int8 rows: the weights
    of its linear and convolutional layers, and its prior's density parameters (used in training
    only: the coder reads the frozen tables, and the medians come from the quantiles, kept)."""
    if name.startswith("entropy_bottleneck."):
        return name.split(".", 1)[1].startswith(("_matrix", "_bias", "_factor"))
    return name in INT8_WEIGHTS


def to_int8_rows(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight R x ... -> (int8 R x ..., float16 scale R x 1 x ...), weight ~ int8 * scale.

    The scale is max |slice| / 127 in float16, so that int8 * scale is exact in float32, and
    at least float16's smallest normal number (2^-14): a normal scale is within 2^-11 of
    max / 127, so the largest entry maps to +-127 and storing the weights read back from a file
    gives the same integers and scales again; a subnormal scale could map it to less, and the
    next save would pick another scale."""
    w = weight.detach().float()
    scale = (w.abs().reshape(len(w), -1).amax(1) / 127).half().clamp_min(2.0 ** -14)
    scale = scale.view(-1, *[1] * (w.ndim - 1))
    return torch.round(w / scale.float()).clamp(-127, 127).to(torch.int8), scale


def from_int8_rows(values: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`to_int8_rows` (float32)."""
    return values.float() * scale.float()


def tile_levels(state: dict, copies: int) -> dict:
    """A global mode's ``state_dict`` with its levels repeated ``copies`` times (level k of the
    result is level k mod levels of ``state``): the level-indexed entries (the gains, levels x L,
    and the prior's per-channel parameters, levels * L x ...) tiled, the frozen tables emptied (as
    in a mode being trained), the transforms as they are. How a mode with lambda_s as a second
    input starts from a trained one."""
    levels, latent = state["log_gain"].shape
    tables = {f"entropy_bottleneck.{name}" for name in TABLE_BUFFERS}
    out = {}
    for name, value in state.items():
        if name in tables:
            value = value.new_empty(0)
        if name in ("log_gain", "log_inverse_gain") or (
                name.startswith("entropy_bottleneck.") and value.ndim and value.shape[0] == levels * latent):
            value = value.repeat(copies, *[1] * (value.ndim - 1))
        out[name] = value
    return out


class GlobalMode(nn.Module):
    def __init__(self, config: GlobalModeConfig = GlobalModeConfig()) -> None:
        super().__init__()
        h, w = config.image_hw
        if config.in_channels not in (1, 3) or min(config.width, config.latent_dim, config.levels - 1) <= 0 \
                or h % 4 or w % 4 or min(h, w) <= 0:
            raise ConfigError(f"invalid global mode config {config}")
        self.config = config
        c, n, latent, k = config.in_channels, config.width, config.latent_dim, config.levels
        self._features = (n, h // 4, w // 4)
        self.g_a = nn.Sequential(
            nn.Conv2d(c, n, 5, 2, 2), GDN(n),
            nn.Conv2d(n, n, 5, 2, 2), GDN(n),
            nn.Flatten(), nn.Linear(n * (h // 4) * (w // 4), latent),
        )
        self.g_s_linear = nn.Linear(latent, n * (h // 4) * (w // 4))
        self.g_s = nn.Sequential(
            GDN(n, inverse=True), nn.ConvTranspose2d(n, n, 5, 2, 2, output_padding=1),
            GDN(n, inverse=True), nn.ConvTranspose2d(n, c, 5, 2, 2, output_padding=1),
        )
        steps = torch.linspace(0.0, 2.0, k)[:, None].repeat(1, latent)
        self.log_gain = nn.Parameter(steps.clone())
        self.log_inverse_gain = nn.Parameter(-steps.clone())
        self.entropy_bottleneck = EntropyBottleneck(k * latent)  # level k: channels k*L..(k+1)*L-1

    def applies(self, shape: tuple[int, ...]) -> bool:
        """Whether images of ``shape`` (N x C x H x W or C x H x W) are this mode's size."""
        return tuple(shape[-3:]) == (self.config.in_channels, *self.config.image_hw)

    def check_images(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or not self.applies(x.shape):
            raise DataError(f"the global mode codes {self.config.in_channels} x {self.config.image_hw[0]} x "
                            f"{self.config.image_hw[1]} images only; got {tuple(x.shape)}")

    def level_of(self, t: torch.Tensor) -> torch.Tensor:
        """t [N] in [0, 1] -> the nearest level [N]."""
        return torch.round(t.clamp(0, 1) * (self.config.levels - 1)).long()

    def medians(self) -> torch.Tensor:
        """levels x L: what each level's latents are rounded around."""
        return medians(self.entropy_bottleneck).view(self.config.levels, self.config.latent_dim)

    def analysis(self, x: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        """x N x C x H x W, level [N] -> gained latent y_s N x L."""
        self.check_images(x)
        return self.g_a(x) * self.log_gain[level].exp()

    def synthesis(self, y_hat_s: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        """Gained latent N x L (symbols plus medians) at ``level`` [N] -> x_hat N x C x H x W (not clamped)."""
        features = self.g_s_linear(y_hat_s * self.log_inverse_gain[level].exp())
        return self.g_s(features.view(-1, *self._features))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> dict[str, torch.Tensor]:
        """Training pass at qualities t [N] (each rounded to its level): x_hat, per-image bits
        (noise proxy in training, rounding in eval) of the latent; ``bits_z`` is zero (no side
        information), so the transform codec's loss serves unchanged."""
        n, latent, k = len(x), self.config.latent_dim, self.config.levels
        level = self.level_of(t)
        y_s = self.analysis(x, level)
        # every level's prior sees every latent, each image keeps its own: the priors are tiny
        _, lik = self.entropy_bottleneck(y_s.repeat(1, k)[:, :, None, None], training=self.training)
        lik = lik.view(n, k, latent).gather(1, level.view(n, 1, 1).expand(n, 1, latent)).squeeze(1)
        med = self.medians()[level]
        y_hat = y_s + (torch.round(y_s - med) + med - y_s).detach()
        return {"x_hat": self.synthesis(y_hat, level), "bits_y": -lik.log2().sum(1),
                "bits_z": torch.zeros(n, device=x.device)}

    def aux_loss(self) -> torch.Tensor:
        return self.entropy_bottleneck.loss()

    @torch.no_grad()
    def start_from_single_rate(self, state: dict, anchor_level: int) -> None:
        """Start from a single-rate codec of the same design (the old per-rate family,
        :mod:`.model`; its ``state_dict``): its transforms, with ``anchor_level`` starting as
        that codec exactly. The other levels start with gains e^(2 (k - anchor) / (levels - 1))
        relative to it, and their priors are the codec's, rescaled to those gains (the density
        of g y: the first layer of the cumulative's network divided by g, the quantiles times g).

        Raises ConfigError when the codec's width, latent size or image size differ."""
        k, latent = self.config.levels, self.config.latent_dim
        if not 0 <= anchor_level < k:
            raise ConfigError(f"anchor_level must be in 0..{k - 1} (got {anchor_level})")
        own = self.state_dict()
        transforms = {n: v for n, v in state.items() if n.split(".")[0] in ("g_a", "g_s_linear", "g_s")}
        misfit = sorted(n for n in own if n.split(".")[0] in ("g_a", "g_s_linear", "g_s")
                        and (n not in transforms or transforms[n].shape != own[n].shape))
        if misfit:
            raise ConfigError(f"the single-rate codec does not fit this global mode (width {self.config.width}, "
                              f"{latent} latents, {self.config.image_hw}): {misfit[0]} differs")
        self.load_state_dict(transforms, strict=False)
        steps = torch.linspace(0.0, 2.0, k)
        relative = (steps - steps[anchor_level])[:, None].repeat(1, latent)
        self.log_gain.copy_(relative)
        self.log_inverse_gain.copy_(-relative)
        gain = relative.exp().reshape(k * latent)  # channel c = level * L + latent
        bottleneck = self.entropy_bottleneck
        for name, param in bottleneck.named_parameters():
            source = state[f"entropy_bottleneck.{name}"]
            if source.shape[0] != latent:
                raise ConfigError(f"the single-rate codec's prior has {source.shape[0]} channels, not {latent}")
            value = source.to(param.dtype).repeat(k, *[1] * (source.ndim - 1))
            if name == "_matrix0":  # the cumulative's first layer multiplies softplus(matrix) by the input
                value = torch.log(torch.expm1(F.softplus(value) / gain.view(-1, 1, 1)))
            elif name == "quantiles":
                value = value * gain.view(-1, 1, 1)
            param.copy_(value)
