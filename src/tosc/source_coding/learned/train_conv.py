"""Training codec v3 (:class:`~.conv.ConvCodec`): one variable-rate model, resumably.

Every image of a batch gets its own quality t ~ U[0, 1] and trade-off
lambda_p(t) = lambda_min * (lambda_max / lambda_min) ** t, so one checkpoint learns the whole
rate range. Per image::

    L_i = [bits_i / pixels + lambda_p(t_i) * MSE_i + lambda_s(t_i) * S_i] / (lambda_p(t_i) / lambda_min) ** balance

The division shares the model's capacity between rates: with ``balance`` = 0 the high-rate
images (whose loss is an order of magnitude larger) drown the low-rate ones, with 0.5 the
reverse happens (a t = 1 image then weighs about 20x less than a t = 0 one); it changes how
capacity is shared, not the optimum of any single image's trade-off. S_i is the semantic distortion of the TOSC-SR loss (see
:func:`semantic_distortion`) and lambda_s(t) = lambda_s (min(lambda_p(t), cap) / lambda_min) ** semantic_exponent
(:func:`semantic_weight`; cap = ``semantic_lambda_cap``, none when 0); lambda_s = 0 is the MSE-only codec.

Determinism and resumption: the shuffle of epoch e comes from (seed, e), and the noise and
qualities of step s from (seed, e, s), so a run killed anywhere and resumed from its last
checkpoint (written atomically every ``checkpoint_every`` steps and after each epoch) ends
with the weights of an uninterrupted run.

Data parallel (under torchrun, :mod:`tosc.distributed`): ``batch_size`` is the global batch.
Every rank draws the same shuffle, flips, qualities and quantisation noise for the whole global
batch (:class:`_GlobalBatchNoise`) and computes its own contiguous slice; each slice's loss is
weighted by its share and DDP averages the gradients, so N processes take the steps of one
process with the same batch size, up to float summation order. Rank 0 alone writes the
checkpoint; a resume reads it on rank 0 and hands it to every rank. The logged running means
are the global batch's (summed over ranks every step).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from compressai.entropy_models import EntropyBottleneck

from ...checkpoint import load_checkpoint
from ...data import load_dataset
from ...distributed import DistContext, check_global_batch, shard_bounds
from ...errors import ConfigError
from ...training import TrainConfigBase, TrainingRun, check_task_fits
from ...tasks.semantic import SEMANTIC_KINDS, load_training_task, semantic_distortion, semantic_targets, task_names
from .compressai_adapter import is_auxiliary, prepare_tables, table_keys
from .conv import ConvCodec, ConvCodecConfig
from .global_mode import GlobalMode, GlobalModeConfig, tile_levels

__all__ = ["ConvTrainConfig", "train_conv_codec", "lambda_at", "semantic_weight", "ARCH", "GLOBAL_ARCH"]

ARCH = "conv-codec-v3"
GLOBAL_ARCH = "conv-codec-v3-global"  # a global mode alone (:mod:`.global_mode`), attached to a v3 checkpoint later
SINGLE_RATE_ARCH = "tiny-image-codec"  # the old per-rate family (:mod:`.model`): a global mode may start from one
MODES = ("transform", "global")


@dataclass
class ConvTrainConfig(TrainConfigBase):
    """The shared settings (:class:`tosc.training.TrainConfigBase`) and codec v3's own."""

    lambda_min: float = 2.0
    lambda_max: float = 1.2e5
    lambda_s: float = 0.0  # semantic weight at t = 0 (scaled with (lambda_p / lambda_min) ** semantic_exponent above)
    semantic_exponent: float = 0.5
    # lambda_p above which the semantic weight stops growing (0: never stops). Above it the
    # semantic share of the loss falls as 1 / lambda_p, so the high rates, where MSE-only is
    # already at clean accuracy, stop paying PSNR for it
    semantic_lambda_cap: float = 0.0
    pixel_weight: float = 1.0  # 0 drops the pixel term: the task-only codec (rate + semantic distortion)
    semantic: str = "ce"  # "ce" (cross-entropy to the label), "kl" (to the task's output on x) or "kl-feature" (KL plus learnt-feature distance)
    # one training network, or several joined with "+" ("classifier-cnn+classifier-mlp-train"):
    # the semantic term is then the mean of each network's own term (tosc.tasks.semantic.TaskEnsemble)
    task: str = "classifier-cnn"
    epochs: int = 16
    batch_size: int = 64
    lr: float = 1e-3
    final_lr: float = 5e-5
    aux_lr: float = 1e-3
    width: int = 64
    latent_channels: int = 64
    hyper_channels: int = 32
    hyper_width: int = 64
    z_bands: int = 1
    quality_code: str = "uniform"
    context: str = "none"  # "checkerboard": a spatial context after the hyperprior (conv.ConvCodec)
    # the context network's learning rate (0: lr). A context added to a trained model starts from
    # scratch while the rest is only fine-tuned, so it may learn faster than the rest
    context_lr: float = 0.0
    checkpoint_every: int = 200
    flip: bool = True
    balance: float = 0.5  # exponent of the per-image loss normalisation (see the module docstring)
    # "transform": the convolutional codec; "global": the global low-rate mode of one image size
    # (:mod:`.global_mode`, the training images' size), trained at its levels' t = k / (levels - 1)
    mode: str = "transform"
    global_width: int = 32
    global_latent: int = 96
    global_levels: int = 16
    # global mode only: lambda_s as a second input of one model instead of a checkpoint of its
    # own. The mode gets 2 x global_levels levels sharing the transforms: the first global_levels
    # are trained without the semantic term (MSE-only), the others with it (TOSC-SR), each pair
    # at the same lambda_p. Measured against two separate modes (docs: "lambda_s: input or checkpoint")
    semantic_input: bool = False

    def check_task(self) -> None:
        task_names(self.task)  # each name a training network (never a held-out one), none twice

    def check(self) -> None:
        if not (math.isfinite(self.context_lr) and self.context_lr >= 0):
            raise ConfigError(f"context_lr must be a finite number >= 0 (got {self.context_lr!r})")
        for name in ("lambda_min", "lambda_max", "final_lr", "aux_lr"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be a positive finite number (got {getattr(self, name)!r})")
        if self.lambda_s < 0:
            raise ConfigError(f"lambda_s must be a finite number >= 0 (got {self.lambda_s!r})")
        if not (math.isfinite(self.semantic_lambda_cap) and self.semantic_lambda_cap >= 0):
            raise ConfigError(f"semantic_lambda_cap must be a finite number >= 0 (got {self.semantic_lambda_cap!r})")
        if not 0 <= self.balance <= 1:
            raise ConfigError(f"balance must be a number in [0, 1] (got {self.balance!r})")
        # above 1 the semantic share of the loss grows with the rate (up to semantic_lambda_cap)
        if not 0 <= self.semantic_exponent <= 2:
            raise ConfigError(f"semantic_exponent must be a number in [0, 2] (got {self.semantic_exponent!r})")
        if self.pixel_weight < 0:
            raise ConfigError(f"pixel_weight must be a finite number >= 0 (got {self.pixel_weight!r})")
        if self.pixel_weight == 0 and self.lambda_s == 0:
            raise ConfigError("pixel_weight = 0 needs lambda_s > 0 (a codec must be trained for something)")
        if self.lambda_max < self.lambda_min:
            raise ConfigError("lambda_max must be >= lambda_min")
        if self.checkpoint_every <= 0:
            raise ConfigError(f"checkpoint_every must be a positive integer (got {self.checkpoint_every!r})")
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)} (got {self.mode!r})")
        if min(self.global_width, self.global_latent, self.global_levels - 1) <= 0:
            raise ConfigError("global_width and global_latent must be positive and global_levels at least 2")
        if self.semantic not in SEMANTIC_KINDS:
            raise ConfigError(f"semantic must be one of {', '.join(SEMANTIC_KINDS)} (got {self.semantic!r})")
        if self.semantic_input and (self.mode != "global" or self.lambda_s == 0 or self.pixel_weight == 0):
            raise ConfigError("semantic_input needs mode=global, lambda_s > 0 and a pixel term "
                              "(its first half of levels is the MSE-only codec)")

    @property
    def variant(self) -> str:
        if self.pixel_weight == 0:
            return "task-only"
        return "mse-only" if self.lambda_s == 0 else "tosc-sr"

    @property
    def arch(self) -> str:
        return GLOBAL_ARCH if self.mode == "global" else ARCH

    def global_config(self, in_channels: int, image_hw: tuple[int, int]) -> GlobalModeConfig:
        return GlobalModeConfig(in_channels=in_channels, image_hw=tuple(image_hw), width=self.global_width,
                                latent_dim=self.global_latent, levels=self.mode_levels)

    @property
    def mode_levels(self) -> int:
        """The global mode's levels: ``global_levels``, twice that with ``semantic_input``."""
        return 2 * self.global_levels if self.semantic_input else self.global_levels

    def level_terms(self, level: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Global-mode levels [N] -> (t [N] in [0, 1] of their lambda_p, semantic mask [N] bool):
        with ``semantic_input`` levels k and k + global_levels share lambda_p and only the second
        has the semantic term."""
        k = self.global_levels
        rate = level % k if self.semantic_input else level
        semantic = level >= k if self.semantic_input else torch.ones_like(level, dtype=torch.bool)
        return rate.float() / (k - 1), semantic

    def codec_config(self, in_channels: int) -> ConvCodecConfig:
        return ConvCodecConfig(in_channels=in_channels, width=self.width, latent_channels=self.latent_channels,
                               hyper_channels=self.hyper_channels, hyper_width=self.hyper_width,
                               z_bands=self.z_bands, quality_code=self.quality_code, context=self.context)


def _widen_z_prior(state: dict, model: ConvCodec) -> dict:
    """A warm start with fewer z prior bands than ``model``: every band starts as a copy of the
    saved prior of the quality range it lies in (the saved band count must divide the new one)."""
    want = model.entropy_bottleneck.quantiles.shape[0]
    have = state.get("entropy_bottleneck.quantiles", model.entropy_bottleneck.quantiles).shape[0]
    if have == want:
        return state
    if want % have:
        raise ConfigError(f"cannot warm-start {want} z prior channels from {have}")
    own = model.entropy_bottleneck.state_dict()
    out = dict(state)
    for key, value in state.items():
        name = key.removeprefix("entropy_bottleneck.")
        if key.startswith("entropy_bottleneck.") and name in own and value.ndim == 3 and value.shape[0] == have:
            # band-major channels (band b holds channels b*Mz..): each saved band becomes r bands
            mz = model.config.hyper_channels
            out[key] = value.view(have // mz, mz, *value.shape[1:]).repeat_interleave(want // have, 0).reshape(
                want, *value.shape[1:])
    return out


def _colour_from_grey(state: dict, model: ConvCodec) -> dict:
    """A warm start of an RGB model from a grey one that computes the grey model's function on
    the mean of the three channels and writes its output to all three: the analysis's first
    weights split in three, the synthesis's last weights and bias copied per channel."""
    first, last = "g_a.0", f"g_s.{len(model.g_s) - 1}"
    if model.config.in_channels != 3 or state.get(f"{first}.weight", torch.empty(0, 3)).shape[1] != 1:
        return state
    out = dict(state)
    out[f"{first}.weight"] = state[f"{first}.weight"].repeat(1, 3, 1, 1) / 3
    out[f"{last}.weight"] = state[f"{last}.weight"].repeat(1, 3, 1, 1)  # ConvTranspose: (in, out, k, k)
    out[f"{last}.bias"] = state[f"{last}.bias"].repeat(3)
    return out


def _widen_transforms(state: dict, model: ConvCodec) -> dict:
    """A warm start of wider transforms (``width`` larger than the saved one) that computes the
    same function: the new channels' incoming weights keep their fresh random values, their
    outgoing weights, biases and GDN couplings to the old channels start at zero, so training
    grows them from the saved model instead of from scratch (Net2Net's idea, without copies)."""
    import torch.nn as nn
    from compressai.layers import GDN

    out = dict(state)
    for prefix in ("g_a", "g_s"):
        for index, layer in enumerate(getattr(model, prefix)):
            for name, fresh in layer.state_dict().items():
                key = f"{prefix}.{index}.{name}"
                old = state.get(key)
                if old is None or old.shape == fresh.shape:
                    continue
                if old.ndim != fresh.ndim or any(a > b for a, b in zip(old.shape, fresh.shape)):
                    raise ConfigError(f"cannot widen {key} from {tuple(old.shape)} to {tuple(fresh.shape)}")
                new = fresh.clone()
                if name == "weight" and isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
                    new_inputs = (slice(old.shape[0], None),) if isinstance(layer, nn.ConvTranspose2d) \
                        else (slice(None), slice(old.shape[1], None))
                    new[new_inputs] = 0  # what the new channels feed forward: nothing, yet
                elif name == "bias":
                    new.zero_()
                elif not (isinstance(layer, GDN) and name in ("beta", "gamma")):
                    raise ConfigError(f"cannot widen {key}")
                # (GDN's fresh beta is 1 and its fresh gamma diagonal: new channels do not
                # touch the old ones' normalisation)
                new[tuple(slice(0, d) for d in old.shape)] = old.to(new.dtype)
                out[key] = new
    return out


def lambda_at(cfg: ConvTrainConfig, t: torch.Tensor) -> torch.Tensor:
    return cfg.lambda_min * (cfg.lambda_max / cfg.lambda_min) ** t


def semantic_weight(cfg: ConvTrainConfig, lam: torch.Tensor) -> torch.Tensor:
    """lambda_s(t) for trade-offs ``lam`` = lambda_p(t): lambda_s (lambda_p / lambda_min) ** semantic_exponent,
    with lambda_p held at ``semantic_lambda_cap`` above it (when the cap is set)."""
    if cfg.semantic_lambda_cap > 0:
        lam = lam.clamp(max=cfg.semantic_lambda_cap)
    return cfg.lambda_s * (lam / cfg.lambda_min) ** cfg.semantic_exponent


def _step_seed(seed: int, epoch: int, step: int) -> int:
    return (seed * 1_000_003 + epoch * 7919 + step * 104_729 + 17) % (2**63)


def _loss(model: ConvCodec | GlobalMode, task, x, labels, t, cfg: ConvTrainConfig, *,
          model_t: torch.Tensor | None = None, semantic_on: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """``t`` [N]: each image's quality (its lambda_p); ``model_t`` [N]: the model's input when it
    differs (a global mode's level, :meth:`ConvTrainConfig.level_terms`), ``semantic_on`` [N]
    bool: the images that get the semantic term (all when None)."""
    out = model(x, t if model_t is None else model_t)
    n, _, h, w = x.shape
    lam = lambda_at(cfg, t)
    bpp = (out["bits_y"] + out["bits_z"]) / (h * w)
    mse = (out["x_hat"] - x).pow(2).flatten(1).mean(1)
    per_image = bpp + cfg.pixel_weight * lam * mse
    terms = {"bpp": bpp, "mse": mse}
    if cfg.lambda_s > 0 and task is not None:
        sem = semantic_distortion(task, out["x_hat"], x, labels, cfg.semantic)
        weight = semantic_weight(cfg, lam)
        if semantic_on is not None:
            weight = torch.where(semantic_on, weight, torch.zeros_like(weight))
        per_image = per_image + weight * sem
        terms["semantic"] = sem
    terms["loss"] = (per_image / (lam / cfg.lambda_min) ** cfg.balance).mean()
    return terms


class _GlobalBatchNoise:
    """The training noise of a model, drawn for the whole global batch on every rank.

    One process draws, per step, CompressAI's ``uniform(-0.5, 0.5)`` for each entropy
    bottleneck (shape C x 1 x N*S, batch-major in the last dimension) and the latent's noise
    (N x M x h x w, :meth:`ConvCodec.training_noise`), in that order, from the global generator.
    Here every rank draws the same tensors for the global batch of ``global_size`` images and
    adds only its slice [lo, hi), so noise, like data, does not depend on how the batch is split.
    """

    def __init__(self, model: torch.nn.Module, global_size: int, lo: int, hi: int) -> None:
        self.global_size, self.lo, self.hi = global_size, lo, hi
        for module in model.modules():
            if isinstance(module, EntropyBottleneck):
                module.quantize = self._bottleneck_quantize(module)  # shadows the method on this instance
        if isinstance(model, ConvCodec):
            model.training_noise = self._latent_noise

    def _latent_noise(self, y_s: torch.Tensor) -> torch.Tensor:
        # uniform_ fills memory in order and empty_like keeps the layout (the convolutions may
        # hand over channels-last latents), so the global draw takes y_s's layout too
        layout = (torch.channels_last if not y_s.is_contiguous() and y_s.is_contiguous(memory_format=torch.channels_last)
                  else torch.contiguous_format)
        full = torch.empty((self.global_size, *y_s.shape[1:]), dtype=y_s.dtype, device=y_s.device, memory_format=layout)
        return full.uniform_(-0.5, 0.5)[self.lo:self.hi]

    def _bottleneck_quantize(self, bottleneck: EntropyBottleneck):
        plain = type(bottleneck).quantize

        def quantize(inputs: torch.Tensor, mode: str, means: torch.Tensor | None = None) -> torch.Tensor:
            if mode != "noise":
                return plain(bottleneck, inputs, mode, means)
            per_image = inputs.shape[-1] // (self.hi - self.lo)
            full = torch.empty((*inputs.shape[:-1], self.global_size * per_image), dtype=inputs.dtype,
                               device=inputs.device).uniform_(-0.5, 0.5)
            return inputs + full[..., self.lo * per_image:self.hi * per_image]

        return quantize


def _ddp_ignored(model: torch.nn.Module) -> list[str]:
    """What DDP leaves alone: the quantiles (the auxiliary optimizer's; no gradient from the main
    loss) and every buffer (constants in training; the integer tables are empty until frozen)."""
    return [n for n, _ in model.named_parameters() if is_auxiliary(n)] + [n for n, _ in model.named_buffers()]


def train_conv_codec(cfg: ConvTrainConfig, out: str | Path, *, resume: bool = True, progress: bool = True,
                     device: str | torch.device | None = "cpu", context: DistContext | None = None) -> dict:
    """Train (or resume) one codec v3 checkpoint at ``out``; returns the last logged means.

    ``device``: where to train (``cpu``, ``cuda``, ``auto``), ignored when ``context`` is given;
    ``context``: the torchrun process group (:func:`tosc.distributed.distributed_session`;
    default: the open one, if any, else one process). The checkpoint is written on the CPU.
    """
    run = TrainingRun(out, kind="codec", arch=cfg.arch, config=cfg, resume=resume, progress=progress, device=device,
                      context=context)
    ctx, dev = run.ctx, run.device
    check_global_batch(cfg.batch_size, ctx.world_size)
    lo, hi = shard_bounds(cfg.batch_size, ctx.rank, ctx.world_size)
    train = load_dataset(cfg.dataset, "train", root=cfg.root, seed=cfg.seed).subset(cfg.train_images)
    c = train.shape[0]
    torch.manual_seed(cfg.seed)
    model: ConvCodec | GlobalMode
    if cfg.mode == "global":
        model = GlobalMode(cfg.global_config(c, train.shape[-2:]))
    else:
        model = ConvCodec(cfg.codec_config(c))
    init_from = cfg.init_from
    if cfg.init_from and cfg.mode == "global":
        source = ctx.run_on_main(lambda: load_checkpoint(init_from, kind="codec"))
        if source.get("arch") == SINGLE_RATE_ARCH:  # a codec of the old family: its level by its lambda_p
            t = torch.tensor(math.log(source["config"]["train"]["lambda_p"] / cfg.lambda_min)
                             / math.log(cfg.lambda_max / cfg.lambda_min))
            model.start_from_single_rate(source["state_dict"], int(model.level_of(t.view(1))))
        elif source.get("arch") != GLOBAL_ARCH:
            raise ConfigError(f"{cfg.init_from} is a {source.get('arch')} checkpoint; a global mode starts from "
                              f"a {GLOBAL_ARCH} or a {SINGLE_RATE_ARCH} one")
        else:
            state = source["state_dict"]
            if cfg.semantic_input and len(state["log_gain"]) == cfg.global_levels:
                state = tile_levels(state, 2)  # both halves start as the trained mode
            prepare_tables(model.entropy_bottleneck, state, "entropy_bottleneck", required=False)
            try:
                model.load_state_dict(state)
            except RuntimeError as exc:
                raise ConfigError(f"{cfg.init_from} does not fit this global mode: {str(exc).splitlines()[0]}") from None
    elif cfg.init_from:
        state = ctx.run_on_main(lambda: load_checkpoint(init_from, kind="codec", arch=ARCH)["state_dict"])
        # a shipped checkpoint may carry a global mode: trained (and attached) on its own
        state = {k: v for k, v in state.items() if not k.startswith("global_mode.")}
        state = _widen_z_prior(state, model)
        state = _widen_transforms(_colour_from_grey(state, model), model)
        tables = table_keys("entropy_bottleneck")
        # a shipped (frozen) checkpoint also holds what freezing derives: the integer network's
        # int8 weights and multipliers and the Gaussian tables, empty in a model being trained
        own = model.state_dict()
        frozen_only = {k for k, v in own.items() if v.numel() == 0}
        result = model.load_state_dict({k: v for k, v in state.items() if k not in tables and k not in frozen_only},
                                       strict=False)
        missing = set(result.missing_keys) - set(tables) - frozen_only
        if not any(k.startswith("ctx.") for k in state):  # a context added to a warm start starts fresh
            missing = {k for k in missing if not k.startswith("ctx.")}
        if missing or result.unexpected_keys:
            raise ConfigError(f"{cfg.init_from} does not fit this architecture (missing "
                              f"{sorted(missing)[:3]}, unexpected {result.unexpected_keys[:3]})")
    if cfg.lambda_s > 0:
        check_task_fits(cfg.task, train)
    task = load_training_task(cfg.task) if cfg.lambda_s > 0 else None
    if task is not None:
        task.to(dev)
    model.to(dev)
    aux_params = [p for n, p in model.named_parameters() if is_auxiliary(n)]
    context_params = [p for n, p in model.named_parameters() if n.startswith("ctx.")]
    rest = [p for n, p in model.named_parameters() if not is_auxiliary(n) and not n.startswith("ctx.")]
    main_params = rest + context_params
    groups = [{"params": rest, "lr": cfg.lr}]
    if context_params:  # (the cosine schedule below scales both groups alike)
        groups.append({"params": context_params, "lr": cfg.context_lr or cfg.lr})
    opt = torch.optim.Adam(groups, lr=cfg.lr)
    aux_opt = torch.optim.Adam(aux_params, lr=cfg.aux_lr)
    steps_per_epoch = len(train) // cfg.batch_size
    total = cfg.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (cfg.final_lr / cfg.lr) + (1 - cfg.final_lr / cfg.lr) * 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    epoch, step, log = 0, 0, []
    ckpt = run.read_resume()
    if ckpt is not None:
        state_dict = ckpt["state_dict"]
        prepare_tables(model.entropy_bottleneck, state_dict, "entropy_bottleneck", required=False)
        model.load_state_dict(state_dict)
        model.to(dev)  # (the optimizers' states follow their parameters' device)
        ts = ckpt["train_state"]
        opt.load_state_dict(ts["optimizer"])
        aux_opt.load_state_dict(ts["aux_optimizer"])
        sched.load_state_dict(ts["scheduler"])
        epoch, step, log = ts["epoch"], ts["step"], ts["log"]
    net: torch.nn.Module = model
    if ctx.distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP

        # the first conv's weight grad (C_in = 1) has strides DDP's buckets do not copy as a view
        warnings.filterwarnings("ignore", message=".*Grad strides do not match bucket view strides.*")
        ctx.broadcast_(aux_params)
        DDP._set_params_and_buffers_to_ignore_for_model(model, _ddp_ignored(model))
        net = DDP(model, device_ids=[dev.index] if dev.type == "cuda" else None, forward_sync_buffers=False)
        _GlobalBatchNoise(model, cfg.batch_size, lo, hi)
    share = (hi - lo) / cfg.batch_size * ctx.world_size  # this slice's loss weight (DDP averages over ranks)
    # multi-hot targets for a multi-label task (semantic_distortion's multi-label branch)
    images, labels_all = train.images, semantic_targets(train, cfg.task) if task is not None else train.labels
    bar = run.bar(total=total, initial=epoch * steps_per_epoch + step, mininterval=5.0, leave=True,
                  desc=f"codec v3 {cfg.variant}")
    running: dict[str, float] = {}
    while epoch < cfg.epochs:
        g = torch.Generator().manual_seed(_step_seed(cfg.seed, epoch, -1))
        order = torch.randperm(len(train), generator=g)
        model.train()
        while step < steps_per_epoch:
            torch.manual_seed(_step_seed(cfg.seed, epoch, step))
            # the draws are the global batch's on every rank (CPU generator); each rank keeps its slice
            idx = order[step * cfg.batch_size:(step + 1) * cfg.batch_size][lo:hi]
            x, labels = images[idx].to(dev), labels_all[idx].to(dev)
            if cfg.flip:
                flip = (torch.rand(cfg.batch_size) < 0.5)[lo:hi].to(dev)
                x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            if cfg.mode == "global":  # its levels only
                level = torch.randint(0, cfg.mode_levels, (cfg.batch_size,))[lo:hi]
                t, semantic_on = cfg.level_terms(level)
                terms = _loss(net, task, x, labels, t.to(dev), cfg,
                              model_t=(level.float() / (cfg.mode_levels - 1)).to(dev), semantic_on=semantic_on.to(dev))
            else:
                t = torch.rand(cfg.batch_size)[lo:hi].to(dev)
                terms = _loss(net, task, x, labels, t, cfg)
            opt.zero_grad(set_to_none=True)
            (terms["loss"] if share == 1.0 else terms["loss"] * share).backward()
            torch.nn.utils.clip_grad_norm_(main_params, 1.0)
            opt.step()
            sched.step()
            aux_opt.zero_grad(set_to_none=True)
            model.aux_loss().backward()
            ctx.average_grads_(aux_params)
            aux_opt.step()
            step += 1
            bar.update(1)
            # the logged running means are the global batch's: (bpp sum, mse sum, count) of the
            # low and the high third of the qualities, summed over ranks
            sums = torch.stack([torch.stack([terms["bpp"][m].sum(), terms["mse"][m].sum(), m.sum()]).double()
                                for m in (t < 0.33, t > 0.67)]).detach().cpu()  # one device sync a step
            sums = ctx.all_reduce_sum(sums)
            for key, (bpp_sum, mse_sum, count) in zip(("low", "high"), sums.tolist()):
                if count:
                    for name, v in (("bpp", bpp_sum / count), ("mse", mse_sum / count)):
                        k = f"{name}_{key}"
                        running[k] = 0.97 * running.get(k, v) + 0.03 * v
            if step % 25 == 0 and run.show:
                bar.set_postfix({"bpp_low": f"{running.get('bpp_low', 0):.3f}",
                                 "psnr_low": f"{-10 * math.log10(max(running.get('mse_low', 1), 1e-12)):.1f}",
                                 "bpp_high": f"{running.get('bpp_high', 0):.2f}",
                                 "psnr_high": f"{-10 * math.log10(max(running.get('mse_high', 1), 1e-12)):.1f}"})
            if step % cfg.checkpoint_every == 0 or step == steps_per_epoch:
                log.append({"epoch": epoch, "step": step, **running})
                at_end = step == steps_per_epoch
                run.save(state_dict={k: v.detach().cpu() for k, v in model.state_dict().items()},
                         config={"codec": model.config.to_dict()}, metrics=log[-1], variant=cfg.variant,
                         processes=ctx.world_size,
                         train_state={"optimizer": opt.state_dict(), "aux_optimizer": aux_opt.state_dict(),
                                      "scheduler": sched.state_dict(), "epoch": epoch + 1 if at_end else epoch,
                                      "step": 0 if at_end else step, "log": log})
        run.check_finite(model, epoch)  # the same verdict on every rank
        ctx.check_in_sync(list(model.parameters()))
        epoch, step = epoch + 1, 0
    bar.close()
    return log[-1] if log else {}
