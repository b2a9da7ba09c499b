"""Joint source-channel coding over the analog channel: Deep JSCC and analog TOSC-SR.

No bits: the trained encoder maps each image to ``k`` complex symbols (power-normalised per
image), the channel adds fading and noise, the decoder maps what arrived back to an image.
Nothing fails or falls back; quality degrades gracefully with SNR instead of a cliff.
``payload_bits`` is 0 and ``channel_uses`` is k for every image.

The shipped models (``src/tosc/zoo/jscc``, trained by ``scripts/train_jscc.py``) are
bandwidth-agile up to CBR 1/2 of a 1x28x28 image (k = 392); above that the symbols are
repeated and combined (see :mod:`tosc.jscc.model`).
"""

from __future__ import annotations

import numpy as np
import torch

from .. import registry
from ..channel import AnalogChannel, FadingChannel
from ..errors import ConfigError, DataError
from .base import System, Transmission

__all__ = ["AnalogSystem"]


class AnalogSystem(System):
    mode = "analog"

    def __init__(self, name: str, model: str, *, device: str = "cpu", csi: str = "perfect",
                 batch_size: int = 1000) -> None:
        from ..jscc.zoo import load_jscc

        if device != "cpu":  # the registry lists these systems as CPU-only; build_system honours that
            raise ConfigError(f"{name} runs on the CPU only, not on {device}")
        self.name, self.device = name, device
        self.model, self.checkpoint = load_jscc(model)
        self.csi = csi
        self.batch_size = batch_size

    @torch.no_grad()
    def transmit(self, images: torch.Tensor, *, snr_db: float, n_channel_uses: int, channel: str = "awgn",
                 seed: int = 0) -> Transmission:
        if images.ndim != 4:
            raise DataError(f"expected images N x C x H x W, got shape {tuple(images.shape)}")
        self.model.check_images(images)
        # the channel kind knows its equaliser (ZF keeps symbols unbiased; MMSE tames per-symbol fades)
        equalizer = FadingChannel(channel).analog_equalizer
        link = AnalogChannel(channel, csi=self.csi, equalizer=equalizer, normalize=False)
        n = len(images)
        gen = torch.Generator().manual_seed(int(seed))
        received = torch.empty_like(images, dtype=torch.float32)
        for i in range(0, n, self.batch_size):
            batch = images[i:i + self.batch_size].float()
            received[i:i + len(batch)] = self.model(batch, snr_db, n_channel_uses, link, gen)["x_hat"].clamp(0.0, 1.0)
        ones = np.ones(n, bool)
        info = {"link": "analog", "model": self.checkpoint.get("variant", self.name), "k_max": self.model.k_max,
                "repetitions": -(-int(n_channel_uses) // self.model.k_max), "csi": self.csi, "equalizer": equalizer}
        return Transmission(received, ones, np.zeros(n, np.int64), np.full(n, int(n_channel_uses), np.int64),
                            ones.copy(), np.zeros(n, np.int64), np.zeros(n, bool), info)


def _register(name: str, model: str, description: str, proposed: bool) -> None:
    """An analog system sending with the shipped JSCC model ``model`` (src/tosc/zoo/jscc)."""
    registry.register("system", name, description, mode="analog", link="analog", family="jscc", source=model,
                      proposed=proposed, trained_on="items", devices=("cpu",))(
        lambda device="cpu", **kw: AnalogSystem(name, model, device=device, **kw))


_register("deep-jscc", "deep-jscc", "Deep JSCC (Bourtsoulatze et al. 2019) over the analog channel, MSE loss",
          proposed=False)
_register("tosc-sr-analog", "tosc-sr-analog",
          "analog TOSC-SR: Deep JSCC trained with MSE + the classifier-cnn semantic term", proposed=True)
