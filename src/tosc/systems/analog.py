"""Joint source-channel coding over the analog channel: Deep JSCC and analog TOSC-SR.

No bits: the trained encoder maps each image to ``k`` complex symbols (power-normalised per
image), the channel adds fading and noise, the decoder maps what arrived back to an image.
Nothing fails or falls back; quality degrades gracefully with SNR instead of a cliff.
``payload_bits`` is 0 and ``channel_uses`` is k for every image.

The shipped models (``src/tosc/zoo/jscc``) are bandwidth-agile up to CBR 1/2 of their image:
``deep-jscc`` and ``tosc-sr-analog`` of a 1x28x28 Fashion-MNIST item (k = 392, metadata
``trained_on="items"``, ``scripts/train_jscc.py``), ``deep-jscc-scenes`` and
``tosc-sr-analog-scenes`` of a 1x64x64 ``fashion-scenes`` scene (k = 2048, ``trained_on="scenes"``,
semantic term through ``scene-classifier-cnn``, ``scripts/train_jscc_scenes.py``). Above k_max the
symbols are repeated and combined (see :mod:`tosc.jscc.model`).
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
        self.name, self.device, self.source = name, device, model
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
        # the zoo model's name: the checkpoint's variant ("deep-jscc" / "tosc-sr-analog") is the
        # same for the items and the scenes models
        info = {"link": "analog", "model": self.source, "k_max": self.model.k_max,
                "repetitions": -(-int(n_channel_uses) // self.model.k_max), "csi": self.csi, "equalizer": equalizer}
        return Transmission(received, ones, np.zeros(n, np.int64), np.full(n, int(n_channel_uses), np.int64),
                            ones.copy(), np.zeros(n, np.int64), np.zeros(n, bool), info)


def _register(name: str, model: str, description: str, proposed: bool, trained_on: str) -> None:
    """An analog system sending with the shipped JSCC model ``model`` (src/tosc/zoo/jscc);
    ``trained_on``: "items" (28x28 Fashion-MNIST) or "scenes" (64x64 fashion-scenes)."""
    registry.register("system", name, description, mode="analog", link="analog", family="jscc", source=model,
                      proposed=proposed, trained_on=trained_on, devices=("cpu",))(
        lambda device="cpu", **kw: AnalogSystem(name, model, device=device, **kw))


_register("deep-jscc", "deep-jscc", "Deep JSCC (Bourtsoulatze et al. 2019) over the analog channel, MSE loss",
          proposed=False, trained_on="items")
_register("tosc-sr-analog", "tosc-sr-analog",
          "analog TOSC-SR: Deep JSCC trained with MSE + the classifier-cnn semantic term", proposed=True,
          trained_on="items")
_register("deep-jscc-scenes", "deep-jscc-scenes",
          "Deep JSCC trained on 64x64 fashion-scenes over the analog channel, MSE loss", proposed=False,
          trained_on="scenes")
_register("tosc-sr-analog-scenes", "tosc-sr-analog-scenes",
          "analog TOSC-SR trained on 64x64 fashion-scenes: MSE + the scene-classifier-cnn semantic term",
          proposed=True, trained_on="scenes")
