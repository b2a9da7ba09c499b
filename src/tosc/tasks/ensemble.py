"""Extra training-only classifiers for an ensemble semantic term (role "training-extra").

A semantic term taken through one CNN pulls the reconstruction towards what that CNN sees;
averaging it over networks of different kinds (a CNN, a fully connected net, a linear softmax
on pixels) asks the codec for what several inductive biases agree on. These networks are
trained here, with their own seeds and architectures, and are NOT the held-out judges
(``classifier-mlp``, ``classifier-pixel-linear``, ...): the held-out ones never enter training
(``check_training_task``). Their role is "training-extra", not "training", so
:func:`~tosc.tasks.training_task` still names the one network every trainer defaults to.

Fit them with ``scripts/train_training_classifiers.py``; they live in the zoo as
``tasks/<name>.pt``. Inputs N x C x H x W in [0, 1], outputs logits N x n_classes.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .classical import PixelLinear
from .classifiers import _register_classifier

__all__ = ["WideMLP", "EXTRA_TRAINING_ROLE"]

EXTRA_TRAINING_ROLE = "training-extra"


class WideMLP(nn.Module):
    """One wide hidden layer (512 units) on the flattened pixels; unlike the held-out
    ``classifier-mlp`` (two hidden layers of 256 and 128)."""

    def __init__(self, in_channels: int, n_classes: int, hidden: int = 512) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.LazyLinear(hidden), nn.ReLU(inplace=True), nn.Dropout(0.3),
                                 nn.Linear(hidden, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


_register_classifier("classifier-mlp-train", WideMLP, EXTRA_TRAINING_ROLE,
                     "training-only one-hidden-layer MLP (for an ensemble semantic term; not a held-out judge)")
# logistic regression on pixels fitted end to end on shifted and flipped images (the held-out
# classifier-pixel-linear is fitted on clean, unshifted images with standardised features)
_register_classifier("classifier-linear-train", PixelLinear, EXTRA_TRAINING_ROLE,
                     "training-only linear softmax on pixels, fitted with augmentation (for an ensemble "
                     "semantic term; not a held-out judge)")
