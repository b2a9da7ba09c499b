"""Training Deep JSCC and analog TOSC-SR through the analog channel, resumably.

Loss per batch (the paper's loss in the analog mode; there is no rate term, the CBR fixes
the channel uses)::

    L = lambda_p * MSE(x, x_hat) + lambda_s * mean_n S(x_hat_n, y_n)

MSE on [0, 1] pixels; S the semantic distortion in nats of the frozen training-time task
network (:func:`tosc.tasks.semantic.semantic_distortion`, the term the codec trainer uses too):
the cross-entropy of ``classifier-cnn`` on Fashion-MNIST (one label per image; its batch mean
is the batch-mean CE of the first version of this trainer), the binary cross-entropy summed
over the 10 classes of the multi-label ``scene-classifier-cnn`` on ``fashion-scenes`` (targets:
``SceneSet.present``). Held-out networks are never loaded here.
``lambda_s = 0`` is Deep JSCC, ``lambda_s > 0`` analog TOSC-SR.

Warm starts (``init_from``) may come from a model of another image size when the weights have
the same shapes (same channels, width, attention, ``max_cbr`` and latent channels): the symbols
are the latent read channel by channel, and at CBR r the first ``2 k`` reals fill
``32 r C`` whole latent channels at any size (H x W a multiple of 4), so a warm start keeps
the meaning of "the first k symbols" (see :func:`warm_start_compatible`).

Each batch draws its SNR uniformly from ``snr_range_db`` (docs/channel.md: "the SNR drawn per batch")
and its number of symbols ``k``: from ``cbrs`` when given (one CBR: the paper's one model per
CBR), otherwise half the batches from the evaluator's CBRs 1/16..1/2 of ``max_cbr`` and half
uniformly from [k_max / 16, k_max] (the bandwidth-agile model).

Determinism and resumption as in :mod:`tosc.source_coding.learned.train`: epoch ``e`` draws
its shuffle, SNRs, k and channel noise from seeds derived from (seed, e) alone, and a
checkpoint (weights, optimizer, scheduler, history) is written atomically after every epoch,
so a run killed anywhere and resumed ends with the same weights as an uninterrupted one.

Under torchrun (``context`` from :func:`tosc.distributed.distributed_session`) every process
trains one data-parallel replica on its slice of each global batch of ``batch_size`` images.
Every rank draws the SNR, k and the channel's noise and gains for the whole global batch and
keeps its slice's rows, so N processes take the steps of one process up to float summation
order, and a run may be resumed with another number of processes.
"""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import torch
import torch.nn.functional as F

from ..channel import AnalogChannel
from ..channel.fading import ChannelOutput
from ..checkpoint import load_checkpoint
from ..data import load_dataset
from ..distributed import DistContext, GlobalBatchSampler, RankBatch
from ..errors import ConfigError
from ..metrics import psnr_db
from ..tasks import TRAINING_TASK
from ..tasks.semantic import load_training_task, semantic_distortion, semantic_targets
from ..training import TrainConfigBase, TrainingRun, check_task_fits, task_fits
from .model import DeepJSCC, JSCCConfig
from .zoo import ARCH, CHECKPOINT_KIND

__all__ = ["JSCCTrainConfig", "train_jscc", "evaluate_jscc", "semantic_targets", "warm_start_compatible", "EVAL_CBRS",
           "EVAL_SNRS_DB", "CHECKPOINT_KIND", "ARCH"]

EVAL_CBRS = (Fraction(1, 16), Fraction(1, 8), Fraction(1, 4), Fraction(1, 2))
EVAL_SNRS_DB = (0.0, 10.0, 20.0)
TASK_SCORES = ("accuracy", "exact_set_accuracy", "mean_f1")  # one-label accuracy; multi-label scene scores


@dataclass
class JSCCTrainConfig(TrainConfigBase):
    """The shared settings (:class:`tosc.training.TrainConfigBase`) and the analog trainer's own.

    ``task``: the training-time classifier (``scene-classifier-cnn`` on ``fashion-scenes``).
    """

    lambda_p: float = 1.0
    lambda_s: float = 0.0
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    width: int = 32
    max_cbr: float = 0.5
    snr_adaptive: bool = False  # SNR attention; measured not to help (docs/jscc.md)
    snr_range_db: tuple[float, float] = (0.0, 20.0)
    cbrs: tuple[float, ...] | None = None  # None: bandwidth-agile (random k); else k drawn from these CBRs
    channel: str = "awgn"
    task: str = TRAINING_TASK
    eval_images: int = 1000

    def check(self) -> None:
        if len(self.snr_range_db) != 2:
            raise ConfigError(f"snr_range_db must be (low, high), got {self.snr_range_db}")
        self.snr_range_db = tuple(float(s) for s in self.snr_range_db)
        if self.cbrs is not None:
            self.cbrs = tuple(float(c) for c in self.cbrs)
            if not self.cbrs or any(not 0 < c <= self.max_cbr for c in self.cbrs):
                raise ConfigError(f"cbrs must lie in (0, max_cbr = {self.max_cbr}], got {self.cbrs}")
        if self.lambda_p < 0 or self.lambda_s < 0 or (self.lambda_p == 0 and self.lambda_s == 0):
            raise ConfigError(f"need lambda_p, lambda_s >= 0, not both 0 (got {self.lambda_p}, {self.lambda_s})")
        lo, hi = self.snr_range_db
        if not lo <= hi:
            raise ConfigError(f"snr_range_db must be (low, high) with low <= high, got {self.snr_range_db}")

    @property
    def variant(self) -> str:
        return "tosc-sr-analog" if self.lambda_s > 0 else "deep-jscc"


def _draw_k(cfg: JSCCTrainConfig, k_max: int, n_source: int, gen: torch.Generator) -> int:
    if cfg.cbrs is not None:
        choice = cfg.cbrs[int(torch.randint(len(cfg.cbrs), (1,), generator=gen))]
        return max(1, math.floor(choice * n_source))
    if torch.rand((), generator=gen) < 0.5:
        return max(1, k_max >> int(torch.randint(4, (1,), generator=gen)))
    return int(torch.randint(max(1, k_max // 16), k_max + 1, (1,), generator=gen))


class _RankSliceChannel(AnalogChannel):
    """``channel`` as one rank's slice of a global batch meets it: the gains and noise are drawn
    for all ``batch.global_size`` images, in the single-process order, and the slice's rows kept.

    With Es = 1 already set by the encoder (``normalize=False``) the channel computes
    ``y = h x + w sqrt(N0)`` row by row, so sending zeros gives the noise term exactly and
    ``h z + noise`` is bit for bit what one process computes for these rows. A rank whose slice
    of a short last batch is empty sends its stand-in image (weight 0) through row 0.
    """

    def __init__(self, channel: AnalogChannel) -> None:
        super().__init__(channel.kind, channel.csi, channel.equalizer, normalize=False)
        self.batch: RankBatch | None = None

    def transmit(self, z: torch.Tensor, snr_db, generator: torch.Generator | None = None) -> ChannelOutput:
        batch = self.batch
        full = super().transmit(torch.zeros(batch.global_size, z.shape[1], dtype=z.dtype, device=z.device), snr_db,
                                generator)
        lo, hi = (batch.lo, batch.hi) if batch.hi > batch.lo else (0, len(z))
        h = full.h[lo:hi]
        return ChannelOutput(y=h * z + full.y[lo:hi], h=h, n0=full.n0[lo:hi])


def _loss_terms(model: DeepJSCC, task: torch.nn.Module | None, x: torch.Tensor, targets: torch.Tensor,
                snr_db: float, k: int, channel: AnalogChannel, gen: torch.Generator,
                cfg: JSCCTrainConfig) -> dict[str, torch.Tensor]:
    """targets: int64 [N] labels or float [N, classes] multi-hot (see :func:`semantic_targets`)."""
    x_hat = model(x, snr_db, k, channel, gen)["x_hat"]
    terms = {"mse": F.mse_loss(x_hat, x)}
    if task is not None:
        # batch mean: on one-label tasks exactly the F.cross_entropy of the first version
        terms["ce"] = semantic_distortion(task, x_hat, x, targets, "ce").mean()
    loss = cfg.lambda_p * terms["mse"]
    if cfg.lambda_s > 0:
        loss = loss + cfg.lambda_s * terms["ce"]
    terms["loss"] = loss
    return terms


@torch.no_grad()
def evaluate_jscc(model: DeepJSCC, images: torch.Tensor, labels: torch.Tensor, task: torch.nn.Module | None,
                  *, cbrs=EVAL_CBRS, snrs_db=EVAL_SNRS_DB, channel: str = "awgn", seed: int = 0) -> dict[str, float]:
    """Mean PSNR and task scores over the (CBR, SNR) grid, plus one entry per point.

    labels: int64 [N] (``task`` a one-label classifier: ``accuracy``) or bool/float [N, classes]
    multi-hot (a multi-label scene network: ``exact_set_accuracy`` and ``mean_f1``, see
    :func:`tosc.tasks.scenes.multilabel_scores`).
    """
    from ..tasks import accuracy
    from ..tasks.scenes import multilabel_scores, predict_present

    model.eval()
    ch = AnalogChannel(channel, normalize=False)
    metrics: dict[str, float] = {}
    for cbr in cbrs:
        k = max(1, math.floor(cbr * images[0].numel()))
        for snr in snrs_db:
            gen = torch.Generator().manual_seed(seed)
            x_hat = model(images, snr, k, ch, gen)["x_hat"]
            key = f"cbr{Fraction(cbr).limit_denominator(1 << 10)}@{snr:g}dB".replace("/", "_")
            metrics[f"psnr_db/{key}"] = psnr_db(x_hat, images).mean().item()
            if task is not None and labels.ndim == 2:
                scores = multilabel_scores(predict_present(task, x_hat), labels > 0.5)
                for name, value in scores.items():
                    metrics[f"{name}/{key}"] = value
            elif task is not None:
                metrics[f"accuracy/{key}"] = accuracy(task, x_hat, labels)
    for name in ("psnr_db", *TASK_SCORES):
        values = [v for k, v in metrics.items() if k.startswith(name + "/")]
        if values:
            metrics[name] = sum(values) / len(values)
    return metrics


def warm_start_compatible(saved: JSCCConfig, model: JSCCConfig) -> bool:
    """True when a checkpoint of config ``saved`` may warm-start a model of config ``model``.

    The same config, or one that differs only in ``image_hw`` (both canvases equal to the image,
    i.e. sides multiples of 4) with the same latent channels: then every weight has the same
    shape and the first ``2 k`` reals at CBR r are the same ``32 r C`` whole latent channels.
    """
    if saved == model:
        return True
    same = (saved.in_channels, saved.width, saved.snr_adaptive, saved.max_cbr, saved.latent_shape[0]) == \
        (model.in_channels, model.width, model.snr_adaptive, model.max_cbr, model.latent_shape[0])
    unpadded = all(c.canvas_hw == c.image_hw for c in (saved, model))
    return same and unpadded


def train_jscc(cfg: JSCCTrainConfig, out: str | Path, *, resume: bool = False, progress: bool = True,
               device: str | torch.device | None = "cpu", context: DistContext | None = None) -> dict:
    """Train one model; write ``out`` (a checkpoint rewritten atomically after every epoch).

    ``device``: where the training steps run (``cpu``, ``cuda``, ``auto``); ignored when
    ``context`` is given. ``context``: the torchrun process group (default: the open one, if
    any, else one process); ``batch_size`` is then the global batch. The channel noise is drawn
    on the CPU from the run's seeded generators whatever the device, and the validation (on
    rank 0) and the checkpoint use a CPU copy of the model. Returns the last epoch's validation
    metrics (see :func:`evaluate_jscc`), on every rank.
    """
    run = TrainingRun(out, kind=CHECKPOINT_KIND, arch=ARCH, config=cfg, resume=resume, progress=progress,
                      device=device, context=context)
    ctx, dev = run.ctx, run.device
    train = load_dataset(cfg.dataset, "train", root=cfg.root, seed=cfg.seed).subset(cfg.train_images)
    val = load_dataset(cfg.dataset, "validation", root=cfg.root, seed=cfg.seed).subset(cfg.eval_images)
    c, h, w = train.shape
    sampler = GlobalBatchSampler(len(train), cfg.batch_size, ctx.rank, ctx.world_size)
    torch.manual_seed(cfg.seed)
    model = DeepJSCC(JSCCConfig(in_channels=c, image_hw=(h, w), max_cbr=cfg.max_cbr, width=cfg.width,
                                snr_adaptive=cfg.snr_adaptive))
    if cfg.init_from:
        init_from = cfg.init_from
        init = ctx.run_on_main(lambda: load_checkpoint(init_from, kind=CHECKPOINT_KIND, arch=ARCH))
        if not warm_start_compatible(JSCCConfig.from_dict(init["config"]["model"]), model.config):
            raise ConfigError(f"{cfg.init_from} has another architecture than this training config")
        model.load_state_dict(init["state_dict"])
    if cfg.lambda_s > 0:
        check_task_fits(cfg.task, train)
    judged = cfg.lambda_s > 0 or task_fits(cfg.task, train)  # the task's scores mean something on these images
    targets, val_targets = ((semantic_targets(train, cfg.task), semantic_targets(val, cfg.task)) if judged
                            else (train.labels, val.labels))
    task = load_training_task(cfg.task) if cfg.lambda_s > 0 else None
    # Deep JSCC never needs the classifier but reports its scores when it is installed and judges these images
    monitor = task if task is not None else (_maybe_task(cfg.task) if judged else None)
    channel = AnalogChannel(cfg.channel, normalize=False)
    model.to(dev)
    # the loss's frozen networks on the device; the monitor scores the CPU copy on the CPU
    task_on_dev = task if task is None or dev.type == "cpu" else copy.deepcopy(task).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    steps_per_epoch = len(sampler)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs * steps_per_epoch, eta_min=cfg.lr * 0.05)
    start_epoch, history = 0, []
    ckpt = run.read_resume()
    if ckpt is not None:
        model.load_state_dict(ckpt["state_dict"])  # (copied onto the device's parameters)
        state = ckpt["train_state"]
        if state["epoch"] >= cfg.epochs:  # already complete (shipped checkpoints keep no optimizer state)
            return state["history"][-1]
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        start_epoch, history = state["epoch"], state["history"]
    net: torch.nn.Module = model
    step_channel = channel
    if ctx.distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP

        # the first conv's weight grad (C_in = 1) has strides DDP's buckets do not copy as a view;
        # a copy per step of a 400-value tensor is free
        warnings.filterwarnings("ignore", message=".*Grad strides do not match bucket view strides.*")
        # GDN's buffers are constants: no per-step broadcast
        net = DDP(model, device_ids=[dev.index] if dev.type == "cuda" else None, forward_sync_buffers=False)
        step_channel = _RankSliceChannel(channel)
    lo, hi = cfg.snr_range_db
    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        seed = run.seed(epoch)
        gen = torch.Generator().manual_seed(seed)
        noise = torch.Generator().manual_seed(seed + 1)
        # the epoch's order is sampler.order(seed); drawing it here too keeps gen where the
        # single-process loop always had it for the SNR and k draws that follow
        torch.randperm(len(train), generator=gen)
        bar = run.bar(sampler.epoch(seed), total=steps_per_epoch, desc=f"{cfg.variant} epoch {epoch + 1}/{cfg.epochs}")
        running: dict[str, float] = {}
        for step, batch in enumerate(bar):
            snr = lo + (hi - lo) * float(torch.rand((), generator=gen))
            k = _draw_k(cfg, model.k_max, c * h * w, gen)
            # a rank whose slice of a short last batch is empty computes a stand-in image with
            # weight 0, so that every rank still joins the gradient all-reduce
            idx = batch.indices if batch.hi > batch.lo else torch.zeros(1, dtype=torch.long)
            if step_channel is not channel:
                step_channel.batch = batch
            terms = _loss_terms(net, task_on_dev, train.images[idx].to(dev), targets[idx].to(dev), snr, k,
                                step_channel, noise, cfg)
            share = batch.weight * ctx.world_size
            loss = terms["loss"] if share == 1.0 else terms["loss"] * share
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            for key in ("mse", "ce"):
                if key in terms:
                    running[key] = 0.98 * running.get(key, terms[key].item()) + 0.02 * terms[key].item()
            if run.show and step % 20 == 0:
                post = {"psnr": f"{-10 * math.log10(max(running['mse'], 1e-10)):.2f}"}
                if "ce" in running:
                    post.update(ce=f"{running['ce']:.3f}")
                bar.set_postfix(post)
        run.check_finite(model, epoch)
        ctx.check_in_sync(list(model.parameters()))
        on_cpu = model if dev.type == "cpu" else copy.deepcopy(model).cpu()
        metrics = ctx.run_on_main(lambda: evaluate_jscc(on_cpu, val.images, val_targets, monitor,
                                                        channel=cfg.channel, seed=cfg.seed))
        metrics["epoch"] = epoch + 1
        history.append(metrics)
        run.say(f"{run.out.stem} epoch {epoch + 1}: psnr_db {metrics['psnr_db']:.3f}"
                + "".join(f", {name} {metrics[name]:.4f}" for name in TASK_SCORES if name in metrics))
        run.save(state_dict=on_cpu.state_dict(), config={"model": model.config.to_dict()}, metrics=metrics,
                 variant=cfg.variant, processes=ctx.world_size,
                 train_state={"optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                              "epoch": epoch + 1, "history": history})
        ctx.barrier()
    return history[-1] if history else {}


def _maybe_task(name: str) -> torch.nn.Module | None:
    from ..zoo import task_path

    return load_training_task(name) if task_path(name).exists() else None
