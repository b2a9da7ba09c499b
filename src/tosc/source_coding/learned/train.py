"""Training the codec with the TOSC-SR loss, resumably.

Loss per batch (docs/theory.md, "From the bound to a codec's loss")::

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

Data parallel (under ``torchrun``, see :mod:`tosc.distributed`): ``batch_size`` is the
*global* batch. Every rank draws the same shuffle and the same quantisation noise for the
whole global batch and uses its own contiguous slice, DDP averages the gradients, so N
processes take the steps one process takes (up to float summation order), and a run can be
resumed with another number of processes. The entropy bottleneck's ``quantiles`` get no
gradient from the main loss, so DDP is told to ignore them (with the variable-size integer
tables); the auxiliary loss depends on parameters alone, so its gradient is the same on every
rank, and it is still averaged over ranks so that the replicas cannot drift apart; a check
after every epoch raises if they did. Epoch metrics are summed over ranks, the validation
set is split across ranks, and only rank 0 reads and writes checkpoints (resume state is
broadcast from it). Entropy tables are frozen and bitstreams coded on the CPU in float32,
whatever the training device.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ...checkpoint import load_checkpoint
from ...data import load_dataset
from ...distributed import DistContext, GlobalBatchSampler, RankBatch, shard_bounds
from ...errors import ConfigError
from ...metrics import psnr_db
from ...tasks import TRAINING_TASK, load_task_network, predict
from ...training import TrainConfigBase, TrainingRun, check_task_fits, task_fits
from ...zoo import task_path
from .codec import LearnedCodec, freeze_entropy_tables, load_codec_state
from .compressai_adapter import is_auxiliary, table_keys
from .model import CodecConfig, TinyImageCodec

__all__ = ["TrainConfig", "train_codec", "evaluate_codec", "ARCH"]

ARCH = "tiny-image-codec"


@dataclass
class TrainConfig(TrainConfigBase):
    """The shared settings (:class:`tosc.training.TrainConfigBase`) and the family codec's own."""

    lambda_p: float = 100.0
    lambda_s: float = 0.0
    epochs: int = 6
    batch_size: int = 64
    lr: float = 1e-3
    aux_lr: float = 1e-3
    latent_dim: int = 128
    width: int = 48
    task: str = TRAINING_TASK
    eval_images: int = 2000  # validation images coded to real bytes after each epoch

    def check(self) -> None:
        if self.lambda_p < 0 or self.lambda_s < 0:
            raise ConfigError(f"lambda_p and lambda_s must be >= 0 (got {self.lambda_p}, {self.lambda_s})")
        if self.lambda_p == 0 and self.lambda_s == 0:
            raise ConfigError("lambda_p and lambda_s cannot both be 0: nothing would be learned but silence")

    @property
    def variant(self) -> str:
        if self.lambda_s == 0:
            return "mse-only"
        return "task-only" if self.lambda_p == 0 else "tosc-sr"


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


def _evaluate_across_ranks(codec: LearnedCodec, images: torch.Tensor, labels: torch.Tensor,
                           task_networks: dict[str, torch.nn.Module], ctx: DistContext) -> dict[str, float]:
    """:func:`evaluate_codec` with the images split over ranks and the sums reduced."""
    lo, hi = shard_bounds(len(images), ctx.rank, ctx.world_size)
    part, part_labels = images[lo:hi], labels[lo:hi]
    names = list(task_networks)
    sums = torch.zeros(2 + 2 * len(names), dtype=torch.float64)  # bytes, PSNR sum, (correct, labelled) per net
    if len(part):
        streams = codec.encode(part)
        decoded = codec.decode(streams, tuple(part.shape[-2:]))
        sums[0] = float(sum(len(s) for s in streams))
        sums[1] = psnr_db(decoded, part).double().sum()
        known = part_labels >= 0
        for j, name in enumerate(names):
            sums[2 + 2 * j] = (predict(task_networks[name], decoded)[known] == part_labels[known]).sum()
            sums[3 + 2 * j] = known.sum()
    sums = ctx.all_reduce_sum(sums)
    n, _, h, w = images.shape
    metrics = {"bpp": 8.0 * sums[0].item() / (n * h * w), "psnr_db": sums[1].item() / n}
    for j, name in enumerate(names):
        key = "accuracy" if name == TRAINING_TASK else f"accuracy_{name}"
        labelled = sums[3 + 2 * j].item()
        metrics[key] = sums[2 + 2 * j].item() / labelled if labelled else float("nan")
    return metrics


class _GlobalBatchNoise:
    """The entropy bottleneck's training noise, drawn for the whole global batch on every rank.

    One process draws ``uniform(-0.5, 0.5)`` of shape latent_dim x 1 x B from the global
    generator inside CompressAI's ``quantize``; here every rank draws that same tensor (same
    seed, same generator, same shape) and adds only its slice, so noise, like data, does not
    depend on how the batch is split.
    """

    def __init__(self, model: TinyImageCodec) -> None:
        self.bottleneck = model.entropy_bottleneck
        self.latent_dim = model.config.latent_dim
        self.slice: torch.Tensor | None = None
        self.bottleneck.quantize = self._quantize  # shadows the method on this instance only

    def draw(self, batch: RankBatch, device: torch.device) -> None:
        full = torch.empty(self.latent_dim, 1, batch.global_size, device=device).uniform_(-0.5, 0.5)
        lo, hi = (batch.lo, batch.hi) if batch.hi > batch.lo else (0, 1)  # stand-in item of an empty slice
        self.slice = full[:, :, lo:hi]

    def _quantize(self, inputs: torch.Tensor, mode: str, means: torch.Tensor | None = None) -> torch.Tensor:
        if mode != "noise":
            return type(self.bottleneck).quantize(self.bottleneck, inputs, mode, means)
        if self.slice is None or self.slice.shape != inputs.shape:
            raise RuntimeError("training noise was not drawn for this batch")
        noise, self.slice = self.slice, None
        return inputs + noise


# DDP leaves these alone: quantiles are the auxiliary optimizer's (no gradient from the main
# loss), the integer tables change size when frozen
_DDP_IGNORED = ["entropy_bottleneck.quantiles", *table_keys("entropy_bottleneck")]


def _cpu_copy(model: TinyImageCodec) -> TinyImageCodec:
    copy = TinyImageCodec(model.config)
    load_codec_state(copy, {k: v.detach().cpu() for k, v in model.state_dict().items()})
    return copy


_TRAIN_SUMS = ("loss", "bpp", "mse", "ce", "correct")


def train_codec(cfg: TrainConfig, out: str | Path, *, resume: bool = False, progress: bool = True,
                device: str | torch.device | None = "cpu", context: DistContext | None = None) -> dict:
    """Train one codec; write ``out`` (a checkpoint, rewritten atomically after every epoch).

    ``device``: where to train (``cpu``, ``cuda``, ``auto``); ignored when ``context`` is
    given. ``context``: the process group from :func:`tosc.distributed.distributed_session`
    (default: the open one, if any, else one process). Returns the final validation
    metrics (real bytes) and the epoch's training means (``train_*``), on every rank.
    """
    run = TrainingRun(out, kind="codec", arch=ARCH, config=cfg, resume=resume, progress=progress, device=device,
                      context=context)
    ctx, dev = run.ctx, run.device
    train = load_dataset(cfg.dataset, "train", root=cfg.root, seed=cfg.seed).subset(cfg.train_images)
    val = load_dataset(cfg.dataset, "validation", root=cfg.root, seed=cfg.seed).subset(cfg.eval_images)
    c, h, w = train.shape
    sampler = GlobalBatchSampler(len(train), cfg.batch_size, ctx.rank, ctx.world_size)
    torch.manual_seed(cfg.seed)
    model = TinyImageCodec(CodecConfig(in_channels=c, image_hw=(h, w), width=cfg.width, latent_dim=cfg.latent_dim))
    if cfg.init_from:
        init_from = cfg.init_from
        load_codec_state(model, ctx.run_on_main(lambda: load_checkpoint(init_from, kind="codec")["state_dict"]))
    model.to(dev)
    if cfg.lambda_s > 0:
        check_task_fits(cfg.task, train)
    # MSE-only training never needs the classifier, but reports its accuracy when it is there and
    # judges these images (a Fashion-MNIST classifier says nothing about a user's photos)
    task = (load_task_network(cfg.task)
            if cfg.lambda_s > 0 or (task_path(cfg.task).exists() and task_fits(cfg.task, train)) else None)
    if task is not None:
        task.to(dev)
    main_params = [p for n, p in model.named_parameters() if not is_auxiliary(n)]
    aux_params = [p for n, p in model.named_parameters() if is_auxiliary(n)]
    opt = torch.optim.Adam(main_params, lr=cfg.lr)
    aux_opt = torch.optim.Adam(aux_params, lr=cfg.aux_lr)
    steps_per_epoch = len(sampler)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs * steps_per_epoch, eta_min=cfg.lr * 0.05)
    start_epoch, history = 0, []
    saved = run.read_resume()
    if saved is not None:
        load_codec_state(model, saved["state_dict"])
        model.to(dev)
        state = saved["train_state"]
        if state["epoch"] >= cfg.epochs:  # already complete (shipped checkpoints keep no optimizer state)
            return state["history"][-1]
        opt.load_state_dict(state["optimizer"])
        aux_opt.load_state_dict(state["aux_optimizer"])
        sched.load_state_dict(state["scheduler"])
        start_epoch, history = state["epoch"], state["history"]
    net: torch.nn.Module = model
    noise = None
    if ctx.distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP

        # the first conv's weight grad (C_in = 1) has strides DDP's buckets do not copy as a view;
        # a copy per step of a 200-value tensor is free
        warnings.filterwarnings("ignore", message=".*Grad strides do not match bucket view strides.*")
        ctx.broadcast_(aux_params)
        DDP._set_params_and_buffers_to_ignore_for_model(model, _DDP_IGNORED)
        # buffers (GDN pedestals, likelihood bounds) are constants: no per-step broadcast
        net = DDP(model, device_ids=[dev.index] if dev.type == "cuda" else None, forward_sync_buffers=False)
        noise = _GlobalBatchNoise(model)
    images, labels_all = train.images.to(dev), train.labels.to(dev)
    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        seed = run.seed(epoch)
        torch.manual_seed(seed + 1)  # quantisation noise
        bar = run.bar(sampler.epoch(seed), total=steps_per_epoch, desc=f"{cfg.variant} epoch {epoch + 1}/{cfg.epochs}")
        running: dict[str, float] = {}
        sums = torch.zeros(len(_TRAIN_SUMS) + 1, dtype=torch.float64)  # n-weighted terms, then n
        for step, batch in enumerate(bar):
            n_local = batch.hi - batch.lo
            # a rank whose slice of a short last batch is empty computes a stand-in item with
            # weight 0, so that every rank still joins the gradient all-reduce
            idx = batch.indices if n_local else torch.zeros(1, dtype=torch.long)
            x, labels = images[idx.to(dev)], labels_all[idx.to(dev)]
            if noise is not None:
                noise.draw(batch, dev)
            terms = _loss_terms(net, task, x, labels, cfg)
            share = batch.weight * ctx.world_size
            loss = terms["loss"] if share == 1.0 else terms["loss"] * share
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(main_params, 1.0)
            opt.step()
            sched.step()
            aux_opt.zero_grad(set_to_none=True)
            model.aux_loss().backward()
            ctx.average_grads_(aux_params)
            aux_opt.step()
            for j, key in enumerate(_TRAIN_SUMS):
                if key in terms:
                    sums[j] += n_local * terms[key].item()
            sums[-1] += n_local
            for key in ("bpp", "mse", "ce", "correct"):
                if key in terms:
                    running[key] = 0.98 * running.get(key, terms[key].item()) + 0.02 * terms[key].item()
            if run.show and step % 20 == 0:
                post = {"bpp": f"{running['bpp']:.3f}", "psnr": f"{-10 * math.log10(max(running['mse'], 1e-10)):.2f}"}
                if "ce" in running:
                    post.update(ce=f"{running['ce']:.3f}", acc=f"{running['correct']:.3f}")
                bar.set_postfix(post)
        model.eval()
        run.check_finite(model, epoch)  # the same verdict on every rank
        ctx.check_in_sync(list(model.parameters()))
        sums = ctx.all_reduce_sum(sums)
        # tables are frozen and streams coded on the CPU in float32, whatever the training device
        eval_model = model if dev.type == "cpu" else _cpu_copy(model)
        freeze_entropy_tables(eval_model)
        codec = LearnedCodec(eval_model, name=run.out.stem)
        nets = {cfg.task: task} if task is not None else {}
        if ctx.world_size == 1:
            metrics = evaluate_codec(codec, val.images, val.labels, nets)
        else:
            metrics = _evaluate_across_ranks(codec, val.images, val.labels, nets, ctx)
        for j, key in enumerate(_TRAIN_SUMS):
            if key in ("ce", "correct") and task is None:
                continue
            metrics[f"train_{'accuracy' if key == 'correct' else key}"] = sums[j].item() / sums[-1].item()
        metrics["epoch"] = epoch + 1
        history.append(metrics)
        run.say(f"{run.out.stem} epoch {epoch + 1}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        run.save(state_dict=eval_model.state_dict(), config={"codec": model.config.to_dict()}, metrics=metrics,
                 variant=cfg.variant, processes=ctx.world_size,
                 train_state={"optimizer": opt.state_dict(), "aux_optimizer": aux_opt.state_dict(),
                              "scheduler": sched.state_dict(), "epoch": epoch + 1, "history": history})
        ctx.barrier()
    return history[-1] if history else {}
