"""Training the codec with the TOSC-SR loss, resumably.

Loss per batch (THEORY.md, variational form)::

    L = bpp + lambda_p * MSE(x, x_hat) + lambda_s * CE(y, task(x_hat))

bpp: -log2 likelihoods of the latent per original pixel (uniform-noise proxy in
training; the evaluation measures real bytes). MSE on [0, 1] pixels. CE in nats from
the frozen training-time classifier. lambda_s = 0 is the MSE-only codec, lambda_p = 0
the task-only codec. CompressAI's auxiliary loss (the entropy bottleneck's quantile
fit) has its own optimizer over the ``quantiles`` parameters only, as intended.

Determinism and resumption: epoch ``e`` draws its shuffle and its quantisation noise
from seeds derived from (seed, e) alone, and a checkpoint (weights, both optimizers,
scheduler, metrics) is written atomically after every epoch. A run killed at any
point and resumed from its last checkpoint therefore replays the interrupted epoch
exactly and ends with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from ...checkpoint import load_checkpoint, save_checkpoint
from ...data import load_dataset
from ...errors import ConfigError
from ...metrics import psnr_db
from ...tasks import TRAINING_TASK, load_task_network
from ...zoo import task_path
from .codec import LearnedCodec, freeze_entropy_tables, load_codec_state
from .model import CodecConfig, TinyImageCodec

__all__ = ["TrainConfig", "train_codec", "evaluate_codec", "VARIANTS"]

VARIANTS = ("mse-only", "tosc-sr", "task-only")


@dataclass
class TrainConfig:
    dataset: str = "fashion-mnist"
    lambda_p: float = 100.0
    lambda_s: float = 0.0
    epochs: int = 6
    batch_size: int = 64
    lr: float = 1e-3
    aux_lr: float = 1e-3
    seed: int = 0
    latent_dim: int = 128
    width: int = 48
    task: str = TRAINING_TASK
    init_from: str | None = None  # warm start (two-stage schedule): a codec checkpoint path
    eval_images: int = 2000  # validation images coded to real bytes after each epoch
    train_images: int | None = None  # use only the first N training images (quick runs, tests)
    root: str | None = None

    def __post_init__(self) -> None:
        if self.lambda_p < 0 or self.lambda_s < 0:
            raise ConfigError(f"lambda_p and lambda_s must be >= 0 (got {self.lambda_p}, {self.lambda_s})")
        if self.lambda_p == 0 and self.lambda_s == 0:
            raise ConfigError("lambda_p and lambda_s cannot both be 0: nothing would be learned but silence")
        if self.epochs <= 0 or self.batch_size <= 0 or self.lr <= 0:
            raise ConfigError("epochs, batch_size and lr must be positive")

    @property
    def variant(self) -> str:
        if self.lambda_s == 0:
            return "mse-only"
        return "task-only" if self.lambda_p == 0 else "tosc-sr"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown training settings: {', '.join(sorted(unknown))}")
        return cls(**d)


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7919) % (2**63)


def _loss_terms(model: TinyImageCodec, task: torch.nn.Module | None, x: torch.Tensor, labels: torch.Tensor,
                cfg: TrainConfig) -> dict[str, torch.Tensor]:
    out = model(x)
    n, _, h, w = x.shape
    bpp = -out["likelihoods"].log2().sum() / (n * h * w)
    mse = F.mse_loss(out["x_hat"], x)
    terms = {"bpp": bpp, "mse": mse, "x_hat": out["x_hat"]}
    if task is not None:
        logits = task(out["x_hat"].clamp(0.0, 1.0))
        terms["ce"] = F.cross_entropy(logits, labels)
        terms["correct"] = (logits.argmax(1) == labels).float().mean()
    loss = bpp + cfg.lambda_p * mse
    if cfg.lambda_s > 0:
        loss = loss + cfg.lambda_s * terms["ce"]
    terms["loss"] = loss
    return terms


@torch.no_grad()
def evaluate_codec(codec: LearnedCodec, images: torch.Tensor, labels: torch.Tensor,
                   task_networks: dict[str, torch.nn.Module]) -> dict[str, float]:
    """Real bytes and decoded-image metrics on ``images`` (N x C x H x W)."""
    streams = codec.encode(images)
    decoded = codec.decode(streams, tuple(images.shape[-2:]))
    n, _, h, w = images.shape
    metrics = {
        "bpp": 8.0 * sum(len(s) for s in streams) / (n * h * w),
        "psnr_db": psnr_db(decoded, images).mean().item(),
    }
    from ...tasks import accuracy

    for name, net in task_networks.items():
        key = "accuracy" if name == TRAINING_TASK else f"accuracy_{name}"
        metrics[key] = accuracy(net, decoded, labels)
    return metrics


def _state(model, opt, aux_opt, sched, epoch, history, cfg) -> dict:
    return {"optimizer": opt.state_dict(), "aux_optimizer": aux_opt.state_dict(),
            "scheduler": sched.state_dict(), "epoch": epoch, "history": history}


def train_codec(cfg: TrainConfig, out: str | Path, *, resume: bool = False, progress: bool = True) -> dict:
    """Train one codec; write ``out`` (a checkpoint, rewritten atomically after every epoch).

    Returns the final validation metrics (real bytes).
    """
    out = Path(out)
    train = load_dataset(cfg.dataset, "train", root=cfg.root, seed=cfg.seed).subset(cfg.train_images)
    val = load_dataset(cfg.dataset, "validation", root=cfg.root, seed=cfg.seed).subset(cfg.eval_images)
    c, h, w = train.shape
    torch.manual_seed(cfg.seed)
    model = TinyImageCodec(CodecConfig(in_channels=c, image_hw=(h, w), width=cfg.width, latent_dim=cfg.latent_dim))
    if cfg.init_from:
        init = load_checkpoint(cfg.init_from, kind="codec")
        load_codec_state(model, init["state_dict"])
    # MSE-only training never needs the classifier, but reports its accuracy when it is there
    task = load_task_network(cfg.task) if (cfg.lambda_s > 0 or task_path(cfg.task).exists()) else None
    main_params = [p for n, p in model.named_parameters() if not n.endswith("quantiles")]
    aux_params = [p for n, p in model.named_parameters() if n.endswith("quantiles")]
    opt = torch.optim.Adam(main_params, lr=cfg.lr)
    aux_opt = torch.optim.Adam(aux_params, lr=cfg.aux_lr)
    steps_per_epoch = math.ceil(len(train) / cfg.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs * steps_per_epoch, eta_min=cfg.lr * 0.05)
    start_epoch, history = 0, []
    if resume and out.exists():
        ckpt = load_checkpoint(out, kind="codec")
        if ckpt["config"].get("train") != asdict(cfg):
            raise ConfigError(f"{out} was trained with other settings; resume needs the same config")
        load_codec_state(model, ckpt["state_dict"])
        state = ckpt["train_state"]
        if state["epoch"] >= cfg.epochs:  # already complete (shipped checkpoints keep no optimizer state)
            return state["history"][-1]
        opt.load_state_dict(state["optimizer"])
        aux_opt.load_state_dict(state["aux_optimizer"])
        sched.load_state_dict(state["scheduler"])
        start_epoch, history = state["epoch"], state["history"]
    started = time.time()
    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        gen = torch.Generator().manual_seed(_epoch_seed(cfg.seed, epoch))
        torch.manual_seed(_epoch_seed(cfg.seed, epoch) + 1)  # quantisation noise
        order = torch.randperm(len(train), generator=gen)
        bar = tqdm(range(steps_per_epoch), desc=f"{cfg.variant} epoch {epoch + 1}/{cfg.epochs}", disable=not progress,
                   leave=False, mininterval=1.0)
        running: dict[str, float] = {}
        for step in bar:
            idx = order[step * cfg.batch_size:(step + 1) * cfg.batch_size]
            x, labels = train.images[idx], train.labels[idx]
            terms = _loss_terms(model, task, x, labels, cfg)
            opt.zero_grad(set_to_none=True)
            terms["loss"].backward()
            torch.nn.utils.clip_grad_norm_(main_params, 1.0)
            opt.step()
            sched.step()
            aux_opt.zero_grad(set_to_none=True)
            model.aux_loss().backward()
            aux_opt.step()
            for key in ("bpp", "mse", "ce", "correct"):
                if key in terms:
                    running[key] = 0.98 * running.get(key, terms[key].item()) + 0.02 * terms[key].item()
            if progress and step % 20 == 0:
                post = {"bpp": f"{running['bpp']:.3f}", "psnr": f"{-10 * math.log10(max(running['mse'], 1e-10)):.2f}"}
                if "ce" in running:
                    post.update(ce=f"{running['ce']:.3f}", acc=f"{running['correct']:.3f}")
                bar.set_postfix(post)
        model.eval()
        freeze_entropy_tables(model)
        codec = LearnedCodec(model, name=out.stem)
        nets = {cfg.task: task} if task is not None else {}
        metrics = evaluate_codec(codec, val.images, val.labels, nets)
        metrics["epoch"] = epoch + 1
        history.append(metrics)
        if progress:
            tqdm.write(f"{out.stem} epoch {epoch + 1}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        save_checkpoint(out, kind="codec", arch="tiny-image-codec", state_dict=model.state_dict(),
                        config={"codec": model.config.to_dict(), "train": asdict(cfg)}, metrics=metrics,
                        variant=cfg.variant, train_state=_state(model, opt, aux_opt, sched, epoch + 1, history, cfg),
                        train_time_s=time.time() - started)
    return history[-1] if history else {}
