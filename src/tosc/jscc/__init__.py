"""Analog joint source-channel coding: Deep JSCC and analog TOSC-SR.

- ``model``: :class:`DeepJSCC`, encoder -> k complex symbols -> power normalisation ->
  :class:`tosc.channel.AnalogChannel` -> decoder.
- ``train``: training with ``lambda_p * MSE + lambda_s * S(x_hat)``, S the semantic term of
  :mod:`tosc.tasks.semantic` (CE of ``classifier-cnn`` on items, summed BCE of the multi-label
  ``scene-classifier-cnn`` on scenes; ``lambda_s = 0``: Deep JSCC; ``lambda_s > 0``: analog
  TOSC-SR), resumable.
- ``zoo``: the shipped weights (``src/tosc/zoo/jscc/*.pt``), found by name.
"""

from .model import DeepJSCC, JSCCConfig

__all__ = ["DeepJSCC", "JSCCConfig"]
