"""A learned upper bound on the semantic rate-distortion function of a continuous source.

Yang and Mandt ("Towards empirical sandwich bounds on the rate-distortion function", ICLR
2022, section 3) bound R(D) from above with a beta-VAE: any encoder q(z|x), decoder
xhat = g(z) and prior p(z) give

    I(X;Xhat) <= I(X;Z) <= E_x KL(q(z|x) || p(z))      (data processing; p(z) is any density)

at the distortion D = E ||X - g(Z)||^2 they reach, so the point (D, E KL) lies on or above
the R(D) curve. The semantic constraint of docs/theory.md is added the way the discrete solver
adds it to Blahut-Arimoto, as a Lagrangian term -beta I(Xhat;Y), with the Barber-Agakov
variational bound in place of I(Xhat;Y): for any predictor c(y|xhat)

    I(Xhat;Y) >= H(Y) - E[-log c(Y|Xhat)],

so a trained (encoder, decoder, prior) with pixel distortion D and predictor loss L certifies
R(D, H(Y) - L) <= E KL. Training minimises, per item,

    KL(q(z|x) || p(z)) / n_dims / ln 2  +  lambda_p * MSE(x, g(z))  +  lambda_s * (-ln c(y | g(z)))

(rate in bits per dimension - bits per pixel for images - so lambda_p and lambda_s mean
what they mean in the TOSC-SR loss). Every point is measured on held-out data: the rate,
distortion and predictor loss are sample means with their standard errors (the bound holds
for the data distribution up to that sampling error). No lower bound is computed: Yang and
Mandt's lower bound needs a large inner optimisation per point, beyond a 2-core budget.

Stated error, checked on Gaussian sources (tests/theory/test_theory_neural_bound.py): with
``arch="linear"`` and a one-component prior the estimate is within 0.05 bits plus three
standard errors of the closed-form R(D) (0.012 bits measured) and within 0.02 bits plus three
standard errors of R(D_p, I_0), counting the error of the certified I_0 through the curve's
slope (0.05 bits, 1.6 standard errors measured). On images no closed form exists and the
estimate is only an upper bound; see docs/theory.md for how loose it was found to be.

Shapes and units: data N x n_dims (vectors) or N x C x H x W (images in [0, 1]); rates in
bits per item and per dimension; distortion = mean squared error per dimension (per pixel).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import load_checkpoint, save_checkpoint
from ..errors import ConfigError, CorruptFileError, DataError

__all__ = [
    "NeuralBoundConfig",
    "BoundPoint",
    "ClassifierHead",
    "GaussianRegressionHead",
    "class_information_bits",
    "train_bound",
    "upper_bound_at",
    "ARCHITECTURES",
]

ARCHITECTURES = ("conv", "mlp", "linear")
_CHECKPOINT_KIND = "theory-bound"
_LOG_SIGMA_RANGE = (-12.0, 4.0)  # keeps exp() finite early in training


@dataclass(frozen=True)
class NeuralBoundConfig:
    """One trained point of the bound.

    lambda_p: weight of the per-dimension MSE (bits per dimension per unit MSE); lambda_s:
    weight of the predictor's loss in nats (0: plain R(D)). arch: "conv" (C x 28 x 28
    images), "mlp" (one hidden layer of ``width``) or "linear" (affine encoder and decoder:
    optimal for Gaussian sources). latent_dim: size of z. prior_components: Gaussians in
    the learned mixture prior p(z) (1: a learned diagonal Gaussian). epochs, batch_size,
    lr: Adam with a cosine decay to lr / 20. eval_samples: z draws per held-out item.
    """

    lambda_p: float
    lambda_s: float = 0.0
    arch: str = "conv"
    latent_dim: int = 64
    width: int = 64
    prior_components: int = 16
    epochs: int = 10
    batch_size: int = 128
    lr: float = 2e-3
    seed: int = 0
    eval_samples: int = 2

    def __post_init__(self) -> None:
        for name in ("lambda_p", "lambda_s", "lr"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.lambda_p == 0 and self.lambda_s == 0:
            raise ConfigError("lambda_p and lambda_s cannot both be 0: the bound would be the trivial rate 0")
        if self.lr == 0:
            raise ConfigError("lr must be > 0")
        if self.arch not in ARCHITECTURES:
            raise ConfigError(f"unknown arch {self.arch!r}; known: {', '.join(ARCHITECTURES)}")
        for name in ("latent_dim", "width", "prior_components", "epochs", "batch_size", "eval_samples"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed must be an integer >= 0, got {self.seed!r}")


@dataclass(frozen=True)
class BoundPoint:
    """A certified point: R(distortion, semantic_info_bits) <= rate_bits (up to sampling error).

    rate_bits: E KL(q(z|x) || p(z)) in bits per item; rate_per_dim_bits: the same per
    dimension (bits per pixel for images). distortion: MSE per dimension. semantic_info_bits:
    the Barber-Agakov lower bound H(Y) - E[-log2 c(Y|Xhat)] (None without a predictor).
    *_se: standard errors of the held-out means. train_seconds: wall time of training
    (summed over resumed runs). n_train, n_eval: items used.
    """

    lambda_p: float
    lambda_s: float
    rate_bits: float
    rate_bits_se: float
    rate_per_dim_bits: float
    distortion: float
    distortion_se: float
    semantic_info_bits: float | None
    semantic_info_se: float | None
    predictor_accuracy: float | None
    train_seconds: float
    epochs: int
    n_train: int
    n_eval: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- predictors


class ClassifierHead(nn.Module):
    """-ln c(y|xhat) from a classifier's logits divided by a learned temperature (the
    classifier itself frozen unless ``trainable``): a classifier trained on clean images is
    over-confident on blurred reconstructions, and one scalar fixes most of that."""

    def __init__(self, classifier: nn.Module, trainable: bool = False) -> None:
        super().__init__()
        self.classifier = classifier
        for p in classifier.parameters():
            p.requires_grad_(trainable)
        self.trainable = trainable
        self.log_temperature = nn.Parameter(torch.zeros(()))

    def logits(self, xhat: torch.Tensor) -> torch.Tensor:
        if not self.trainable:
            self.classifier.eval()  # batch-norm statistics stay the trained ones
        return self.classifier(xhat)

    def forward(self, xhat: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(negative log-likelihood in nats, N; correct predictions as 0/1 floats, N)."""
        logits = self.logits(xhat)
        nll = F.cross_entropy(logits * torch.exp(-self.log_temperature), y, reduction="none")
        return nll, (logits.argmax(1) == y).float()


def class_information_bits(logits: torch.Tensor, labels: torch.Tensor, label_entropy_bits: float
                           ) -> tuple[float, float, float]:
    """Barber-Agakov lower bound on I(Xhat;Y) from a classifier's logits on reconstructions.

    logits: N x n_classes, labels: N. The temperature T of softmax(logits / T) is fitted on
    these same items (one scalar, so the optimism is O(1/N) nats); returns (H(Y) - mean
    cross-entropy in bits, its standard error, T).
    """
    logits = logits.detach().double()
    labels = labels.long()

    def ce(log_t: float) -> float:
        return float(F.cross_entropy(logits * math.exp(-log_t), labels))

    lo, hi = -3.0, 5.0  # golden-section search on log T: the cross-entropy is unimodal in it
    g = (math.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = ce(a), ce(b)
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = ce(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = ce(b)
    log_t = 0.5 * (lo + hi)
    if ce(0.0) <= ce(log_t):
        log_t = 0.0
    per_item = F.cross_entropy(logits * math.exp(-log_t), labels, reduction="none") / math.log(2)
    return (float(label_entropy_bits - per_item.mean()), float(per_item.std() / math.sqrt(len(per_item))),
            math.exp(log_t))


class GaussianRegressionHead(nn.Module):
    """c(y|xhat) = N(y; A xhat + b, diag exp(2 s)), trained with the codec; y: N x dim_y."""

    def __init__(self, dim_x: int, dim_y: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim_x, dim_y)
        self.log_std = nn.Parameter(torch.zeros(dim_y))

    def forward(self, xhat: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = self.linear(xhat.flatten(1))
        z = (y - mean) * torch.exp(-self.log_std)
        nll = (0.5 * z * z + self.log_std + 0.5 * math.log(2 * math.pi)).sum(1)
        return nll, torch.full_like(nll, float("nan"))


# --------------------------------------------------------------------------- the model


class _MixturePrior(nn.Module):
    """p(z) = sum_k w_k N(z; m_k, diag exp(2 s_k)), all learned."""

    def __init__(self, latent_dim: int, components: int) -> None:
        super().__init__()
        self.means = nn.Parameter(torch.randn(components, latent_dim) * (0.0 if components == 1 else 1.0))
        self.log_std = nn.Parameter(torch.zeros(components, latent_dim))
        self.logits = nn.Parameter(torch.zeros(components))

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) in nats, N for z N x latent_dim."""
        diff = (z[:, None, :] - self.means[None]) * torch.exp(-self.log_std)[None]
        per = -0.5 * (diff * diff).sum(-1) - self.log_std.sum(-1)[None] - 0.5 * z.shape[1] * math.log(2 * math.pi)
        return torch.logsumexp(per + torch.log_softmax(self.logits, 0)[None], dim=1)


def _networks(arch: str, shape: tuple[int, ...], latent: int, width: int) -> tuple[nn.Module, nn.Module]:
    n_dims = int(np.prod(shape))
    if arch == "linear":
        return nn.Sequential(nn.Flatten(), nn.Linear(n_dims, 2 * latent)), nn.Linear(latent, n_dims)
    if arch == "mlp":
        enc = nn.Sequential(nn.Flatten(), nn.Linear(n_dims, width), nn.GELU(), nn.Linear(width, 2 * latent))
        dec = nn.Sequential(nn.Linear(latent, width), nn.GELU(), nn.Linear(width, n_dims))
        return enc, dec
    if len(shape) != 3 or shape[1] % 4 or shape[2] % 4:
        raise DataError(f"arch 'conv' needs C x H x W images with H and W divisible by 4, got {shape}")
    c, h, w = shape
    half = width // 2
    enc = nn.Sequential(
        nn.Conv2d(c, half, 5, stride=2, padding=2), nn.GELU(),
        nn.Conv2d(half, width, 5, stride=2, padding=2), nn.GELU(),
        nn.Flatten(), nn.Linear(width * (h // 4) * (w // 4), 2 * latent),
    )
    dec = nn.Sequential(
        nn.Linear(latent, width * (h // 4) * (w // 4)), nn.GELU(), nn.Unflatten(1, (width, h // 4, w // 4)),
        nn.ConvTranspose2d(width, half, 5, stride=2, padding=2, output_padding=1), nn.GELU(),
        nn.ConvTranspose2d(half, c, 5, stride=2, padding=2, output_padding=1), nn.Sigmoid(),
    )
    return enc, dec


class _BoundModel(nn.Module):
    def __init__(self, config: NeuralBoundConfig, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = shape
        self.encoder, self.decoder = _networks(config.arch, shape, config.latent_dim, config.width)
        self.prior = _MixturePrior(config.latent_dim, config.prior_components)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(rate sample in nats, N: log q(z|x) - log p(z) at one z ~ q(z|x); xhat, shaped like x)."""
        mu, log_sigma = self.encoder(x).chunk(2, dim=1)
        log_sigma = log_sigma.clamp(*_LOG_SIGMA_RANGE)
        eps = torch.randn_like(mu)
        z = mu + torch.exp(log_sigma) * eps
        log_q = (-0.5 * eps * eps - log_sigma).sum(1) - 0.5 * mu.shape[1] * math.log(2 * math.pi)
        rate = log_q - self.prior.log_prob(z)
        return rate, self.decoder(z).reshape(x.shape)


# --------------------------------------------------------------------------- training


def _check_data(x: torch.Tensor, y: torch.Tensor | None, what: str) -> None:
    if not torch.is_tensor(x) or x.dtype != torch.float32 or x.ndim < 2 or x.shape[0] < 2:
        raise DataError(f"{what} data must be a float32 tensor N x ... with N >= 2")
    if not torch.isfinite(x).all():
        raise DataError(f"{what} data hold non-finite values")
    if y is not None and (not torch.is_tensor(y) or y.shape[0] != x.shape[0]):
        raise DataError(f"{what} targets must have one entry per item ({x.shape[0]})")


def train_bound(
    config: NeuralBoundConfig,
    train_x: torch.Tensor,
    eval_x: torch.Tensor,
    *,
    train_y: torch.Tensor | None = None,
    eval_y: torch.Tensor | None = None,
    predictor: nn.Module | None = None,
    target_entropy_bits: float | None = None,
    checkpoint: str | Path | None = None,
    progress: bool = False,
    time_limit_s: float | None = None,
) -> BoundPoint:
    """Train one (encoder, decoder, prior[, predictor]) and measure its bound on ``eval_x``.

    train_x, eval_x: float32 N x ... (items x dimensions, or images). predictor: a module
    returning (-ln c(y|xhat) in nats, correct 0/1) per item, e.g. :class:`ClassifierHead`;
    with train_y / eval_y its targets and target_entropy_bits = H(Y) (needed when
    lambda_s > 0 or to report the semantic bound). checkpoint: a file written after every
    epoch and read back on a rerun, so an interrupted training resumes (a finished one is
    only re-evaluated). time_limit_s: stop training after this wall time (the point is
    evaluated anyway and reports the epochs done).
    """
    _check_data(train_x, train_y, "training")
    _check_data(eval_x, eval_y, "evaluation")
    if train_x.shape[1:] != eval_x.shape[1:]:
        raise DataError(f"training items are {tuple(train_x.shape[1:])} but evaluation items {tuple(eval_x.shape[1:])}")
    semantic = predictor is not None
    if config.lambda_s > 0 and not semantic:
        raise ConfigError("lambda_s > 0 needs a predictor of the semantic target")
    if semantic and (train_y is None or eval_y is None or target_entropy_bits is None):
        raise ConfigError("a predictor needs train_y, eval_y and target_entropy_bits = H(Y)")
    shape = tuple(train_x.shape[1:])
    n_dims = int(np.prod(shape))
    torch.manual_seed(config.seed)
    model = _BoundModel(config, shape)
    trainable = list(model.parameters())
    if semantic:
        trainable += [p for p in predictor.parameters() if p.requires_grad]
    optimiser = torch.optim.Adam(trainable, lr=config.lr)
    steps_per_epoch = math.ceil(train_x.shape[0] / config.batch_size)
    total_steps = config.epochs * steps_per_epoch
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, total_steps, eta_min=config.lr / 20)
    epoch, elapsed = 0, 0.0
    path = None if checkpoint is None else Path(checkpoint)
    fingerprint = {"config": asdict(config), "shape": list(shape), "n_train": int(train_x.shape[0])}
    if path is not None and path.exists():
        state = load_checkpoint(path, kind=_CHECKPOINT_KIND, arch=config.arch)
        if state["config"] != fingerprint:
            raise CorruptFileError(f"{path}: holds a training with other settings; remove it or use another --out")
        model.load_state_dict(state["state_dict"])
        optimiser.load_state_dict(state["optimiser"])
        schedule.load_state_dict(state["schedule"])
        if semantic and state.get("predictor") is not None:
            predictor.load_state_dict(state["predictor"])
        epoch, elapsed = int(state["epoch"]), float(state["train_seconds"])

    bar = None
    if progress and epoch < config.epochs:
        from tqdm.auto import tqdm

        bar = tqdm(total=total_steps, initial=epoch * steps_per_epoch, desc=f"bound lp={config.lambda_p:g} "
                   f"ls={config.lambda_s:g}", unit="step", leave=False)
    try:
        while epoch < config.epochs:
            if time_limit_s is not None and elapsed > time_limit_s:
                break
            started = time.perf_counter()
            model.train()
            generator = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
            torch.manual_seed(config.seed * 100_003 + epoch)  # z noise: an epoch replays the same after a resume
            order = torch.randperm(train_x.shape[0], generator=generator)
            for i in range(0, train_x.shape[0], config.batch_size):
                idx = order[i:i + config.batch_size]
                rate, xhat = model(train_x[idx])
                loss = rate.mean() / (n_dims * math.log(2)) + config.lambda_p * (xhat - train_x[idx]).pow(2).mean()
                if semantic and config.lambda_s > 0:
                    nll, _ = predictor(xhat, train_y[idx])
                    loss = loss + config.lambda_s * nll.mean()
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                schedule.step()
                if bar is not None:
                    bar.update(1)
            if not torch.isfinite(loss):
                raise ConfigError(f"training diverged (loss {loss.item()}); try a smaller lr")
            epoch += 1
            elapsed += time.perf_counter() - started  # training only: checkpoint writes are not counted
            if path is not None:
                save_checkpoint(
                    path, kind=_CHECKPOINT_KIND, arch=config.arch, state_dict=model.state_dict(), config=fingerprint,
                    optimiser=optimiser.state_dict(), schedule=schedule.state_dict(), epoch=epoch,
                    train_seconds=elapsed,
                    predictor=predictor.state_dict() if semantic else None,
                )
    finally:
        if bar is not None:
            bar.close()
    return _evaluate(model, config, eval_x, eval_y, predictor, target_entropy_bits, elapsed, epoch,
                     int(train_x.shape[0]))


@torch.no_grad()
def _evaluate(model: _BoundModel, config: NeuralBoundConfig, x: torch.Tensor, y: torch.Tensor | None,
              predictor: nn.Module | None, target_entropy_bits: float | None, elapsed: float, epochs: int,
              n_train: int) -> BoundPoint:
    model.eval()
    torch.manual_seed(config.seed + 7)
    n = x.shape[0]
    n_dims = int(np.prod(x.shape[1:]))
    rates, mses, nlls, correct = (torch.zeros(n, dtype=torch.float64) for _ in range(4))
    calibrate = isinstance(predictor, ClassifierHead)
    all_logits, all_labels = [], []
    for i in range(0, n, 1000):
        xb = x[i:i + 1000]
        for _ in range(config.eval_samples):
            rate, xhat = model(xb)
            rates[i:i + len(xb)] += rate.double()
            mses[i:i + len(xb)] += (xhat - xb).pow(2).flatten(1).mean(1).double()
            if calibrate:
                all_logits.append(predictor.logits(xhat))
                all_labels.append(y[i:i + len(xb)])
            elif predictor is not None:
                nll, ok = predictor(xhat, y[i:i + len(xb)])
                nlls[i:i + len(xb)] += nll.double()
                correct[i:i + len(xb)] += ok.double()
    rates, mses, nlls, correct = (v / config.eval_samples for v in (rates, mses, nlls, correct))
    rates = rates / math.log(2)

    def mean_se(v: torch.Tensor) -> tuple[float, float]:
        return float(v.mean()), float(v.std() / math.sqrt(len(v)))

    rate, rate_se = mean_se(rates)
    mse, mse_se = mean_se(mses)
    info = info_se = acc = None
    if calibrate:
        logits, labels = torch.cat(all_logits), torch.cat(all_labels)
        info, info_se, _ = class_information_bits(logits, labels, float(target_entropy_bits))
        acc = float((logits.argmax(1) == labels).double().mean())
    elif predictor is not None:
        nll_bits, info_se = mean_se(nlls / math.log(2))
        info = float(target_entropy_bits) - nll_bits
    return BoundPoint(
        lambda_p=config.lambda_p, lambda_s=config.lambda_s, rate_bits=rate, rate_bits_se=rate_se,
        rate_per_dim_bits=rate / n_dims, distortion=mse, distortion_se=mse_se, semantic_info_bits=info,
        semantic_info_se=info_se, predictor_accuracy=acc, train_seconds=elapsed, epochs=epochs, n_train=n_train,
        n_eval=n,
    )


def upper_bound_at(points: list[dict[str, Any]] | list[BoundPoint], max_distortion: float,
                   min_semantic_info_bits: float = 0.0) -> dict[str, Any] | None:
    """The least ``rate_per_dim_bits`` among certified points with distortion <= max_distortion
    and semantic_info_bits >= min_semantic_info_bits (the point as a dict), or None when no
    trained point meets both. Points are not mixed: time-sharing two reconstructions does not
    keep I(Xhat;Y) linear, so only trained points are certified."""
    best = None
    for p in points:
        d = p.to_dict() if isinstance(p, BoundPoint) else p
        info = d.get("semantic_info_bits")
        if d["distortion"] > max_distortion:
            continue
        if min_semantic_info_bits > 0 and (info is None or info < min_semantic_info_bits):
            continue
        if best is None or d["rate_per_dim_bits"] < best["rate_per_dim_bits"]:
            best = d
    return best


