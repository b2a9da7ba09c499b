"""Encoder-side latent refinement for codec v3's transform mode.

The decoder is fixed; the encoder, which has the image, may send any symbols it likes. So per
image it searches for the latent that minimises the loss the checkpoint was trained on,

    J(y_s) = bits(y_s) / pixels + lambda_p(t) * pixel_weight * MSE(x_hat, x) + lambda_s(t) * S(x_hat, x)

(lambda_p, lambda_s: the trainer's schedules at the stream's quality t; S: the KL from the
frozen training task networks' output on x to their output on x_hat, nats; an encoder has no
labels, so a checkpoint trained with cross-entropy is refined with the KL), starting from the
analysis transform's latent. The hyper latent z, hence every mean and scale table, is held at
the analysis's value, so the hyperprior's tables stay those the stream names. Gradient steps
use the straight-through rounding of training; since that gradient is biased, every step's
*rounded* latent is scored with the true J (bits from the Gaussian tables' likelihoods) and
each image keeps the best it saw, starting with the unrefined one: refinement never raises J.

This is the per-image inference of Yang, Bamler and Mandt ("Improving inference for neural
image compression", NeurIPS 2020) with the hard-loss bookkeeping in place of their annealing.
Only the encoder changes: streams keep their format and decode as before, bit-exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ...errors import ConfigError
from .compressai_adapter import gaussian_likelihood
from .conv import MEAN_FRACTION, QUALITY_LEVELS, ConvCodec
from .intnet import round_ste

__all__ = ["Refinement", "EncoderObjective", "refine_latents", "encoder_loss", "encoder_key", "MAX_REFINED_PIXELS"]

# pixels per search batch, and the largest image the encoder refines: the search keeps the
# synthesis's activations for its gradient (about 64 floats per pixel per layer), so a larger
# image would need gigabytes; such images get the fast encoder
MAX_REFINED_PIXELS = 512 * 512


@dataclass(frozen=True)
class Refinement:
    """How hard the encoder searches: ``steps`` Adam steps of size ``lr`` (latent units; a
    symbol is 1). 0 steps: the analysis transform's latent, the fast encoder."""

    steps: int = 20
    lr: float = 0.006

    def __post_init__(self) -> None:
        if not (isinstance(self.steps, int) and 0 <= self.steps <= 10_000):
            raise ConfigError(f"refinement steps must be an integer in 0..10000 (got {self.steps!r})")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"refinement lr must be a positive number (got {self.lr!r})")


@dataclass(frozen=True)
class EncoderObjective:
    """The training loss's weights, read from a checkpoint's training config."""

    lambda_min: float = 2.0
    lambda_max: float = 1.2e5
    lambda_s: float = 0.0
    semantic_exponent: float = 0.5
    semantic_lambda_cap: float = 0.0
    pixel_weight: float = 1.0
    task: str | None = None

    @classmethod
    def from_train_config(cls, train: dict | None) -> "EncoderObjective":
        train = train or {}
        keys = ("lambda_min", "lambda_max", "lambda_s", "semantic_exponent", "semantic_lambda_cap", "pixel_weight")
        values = {k: float(train[k]) for k in keys if train.get(k) is not None}
        task = train.get("task") if values.get("lambda_s", 0.0) > 0 else None
        return cls(**values, task=task)

    def weights(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Qualities t [N] in [0, 1] -> (pixel weight, semantic weight) [N], the trainer's schedules."""
        from .train_conv import lambda_at, semantic_weight  # (they read only the fields this shares)

        lam = lambda_at(self, t)
        return self.pixel_weight * lam, semantic_weight(self, lam)


def encoder_key(objective: EncoderObjective, refinement: Refinement) -> str:
    """What shapes the refining encoder's streams besides the checkpoint: its setting and the
    digests of the task networks its loss reads (none when it does not search), for cache keys
    and result fingerprints."""
    if not (refinement.steps and objective.task):
        return repr(refinement)
    from ...diskcache import file_digest
    from ...tasks.semantic import task_names
    from ...zoo import task_path

    return repr(refinement) + "|" + ",".join(file_digest(task_path(t)) for t in task_names(objective.task))


def _semantic(task, x_hat: torch.Tensor, x: torch.Tensor, multilabel: bool, clean: dict | None) -> torch.Tensor:
    from ...tasks.semantic import semantic_distortion

    # the KL needs no labels; their shape only tells a multi-label task from a one-label one
    labels = torch.zeros(len(x), 1) if multilabel else torch.zeros(len(x), dtype=torch.int64)
    return semantic_distortion(task, x_hat, x, labels.to(x.device), "kl", clean)


def refine_latents(model: ConvCodec, x: torch.Tensor, y_s: torch.Tensor, quality,
                   mean_num: torch.Tensor, index: torch.Tensor, objective: EncoderObjective,
                   refinement: Refinement, task=None, multilabel: bool = False) -> torch.Tensor:
    """The refined gained latent, N x M x h x w (CPU float64); ``y_s`` itself for images
    larger than :data:`MAX_REFINED_PIXELS`.

    x: images N x C x H x W in [0, 1]; y_s: the analysis's gained latent N x M x h x w; quality:
    indices [N] (0..127); mean_num, index: the hyperprior's integer means (1/16 units) and
    scale indices for y_s, held fixed. ``task``: the frozen training
    task network(s) when ``objective.lambda_s`` > 0.
    """
    pixels = x.shape[-2] * x.shape[-1]
    if pixels > MAX_REFINED_PIXELS:
        return y_s
    step = max(1, MAX_REFINED_PIXELS // pixels)
    if len(x) > step:  # in batches of bounded memory
        return torch.cat([refine_latents(model, x[lo:lo + step], y_s[lo:lo + step], quality[lo:lo + step],
                                         mean_num[lo:lo + step], index[lo:lo + step], objective, refinement, task,
                                         multilabel) for lo in range(0, len(x), step)])
    device = next(model.g_s.parameters()).device
    x = x.to(device)
    t = torch.as_tensor(quality, dtype=torch.float32).to(device) / (QUALITY_LEVELS - 1)
    w_pixel, w_sem = objective.weights(t)
    use_task = task is not None and objective.lambda_s > 0
    pad = model.padding_for(*x.shape[-2:])
    means = (mean_num.to(torch.float32) / MEAN_FRACTION).to(device)
    sigma = model.scales[index.long().to(device)]
    with torch.enable_grad():  # (the codec's encoder runs under no_grad)
        best = _search(model, x, y_s.to(device, torch.float32), t, pad, means, sigma, w_pixel, w_sem,
                       task if use_task else None, multilabel, refinement)
    return best.cpu().double()


def encoder_loss(model: ConvCodec, x: torch.Tensor, y: torch.Tensor, t: torch.Tensor, pad, means: torch.Tensor,
                 sigma: torch.Tensor, w_pixel: torch.Tensor, w_sem: torch.Tensor, task=None,
                 multilabel: bool = False, clean: dict | None = None) -> torch.Tensor:
    """J [N] of the *rounded* latent round(y - means) + means (straight-through gradient):
    bits per pixel position (H x W, whatever C) from the Gaussian tables' likelihoods, plus the weighted pixel and semantic
    distortions. x: N x C x H x W; y, means, sigma: N x M x h x w; t, w_pixel, w_sem: [N].
    ``clean``: the task networks' outputs on x, kept from one call to the next (a dict)."""
    y_hat = round_ste(y - means) + means
    bits = -gaussian_likelihood(model.gaussian, y_hat, sigma, means).log2().flatten(1).sum(1)
    x_hat = model.synthesis(y_hat, t, pad)
    # bits per pixel position, as the trainer counts them (not per sample: an RGB image's rate
    # would otherwise weigh a third of what it was trained with)
    loss = bits / (x.shape[-2] * x.shape[-1]) + w_pixel * (x_hat.clamp(0, 1) - x).pow(2).flatten(1).mean(1)
    if task is not None:
        loss = loss + w_sem * _semantic(task, x_hat, x, multilabel, clean)
    return loss


def _search(model, x, start, t, pad, means, sigma, w_pixel, w_sem, task, multilabel,
            refinement: Refinement) -> torch.Tensor:
    best, best_j = start.clone(), torch.full((len(x),), math.inf, device=x.device)
    y = start.clone().requires_grad_(True)
    opt = torch.optim.Adam([y], lr=refinement.lr)
    clean: dict = {}  # the networks' outputs on x: the same at every step
    for step in range(refinement.steps + 1):
        loss = encoder_loss(model, x, y, t, pad, means, sigma, w_pixel, w_sem, task, multilabel, clean)
        with torch.no_grad():  # the forward pass is already the rounded latent's true loss
            better = loss < best_j
            best_j = torch.where(better, loss, best_j)
            best[better] = y.detach()[better]
        if step == refinement.steps:
            break
        # the gradient of y alone: the frozen model's parameters collect none
        (y.grad,) = torch.autograd.grad(loss.sum(), y)
        opt.step()
    return best
