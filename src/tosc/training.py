"""The one training scaffold: what every trainer in tosc shares, so that each keeps only its
model, its loss and its evaluation.

- :class:`TrainConfigBase`: the settings every trainer has (data set, epochs, batch size,
  learning rate, seed, task network, warm start, training subset), checked once: types and
  non-finite numbers (:func:`tosc.errors.check_config_fields`), positive sizes, and the
  held-out guard (:func:`tosc.tasks.check_training_task`: a held-out network is never a
  training task). Trainers subclass it and add their own fields.
- :class:`TrainingRun`: one run's bookkeeping. Resume from the run's own checkpoint (the saved
  settings must equal the current ones; settings added after a file was written read as their
  defaults), epoch seeds, an atomic checkpoint (weights, optimizer state, history, provenance)
  written by rank 0 only, training time accumulated over resumed runs, the device and the
  torchrun process group (:mod:`tosc.distributed`), and progress bars shown on rank 0 only.
- :func:`fit_best_epoch`: the loop of the task networks (classifiers, segmenters): AdamW with a
  one-cycle schedule, the best validation epoch kept, resumable after every epoch.
- :func:`epoch_seed`: the seed of one epoch of a seeded run. A run resumed from its checkpoint
  after epoch e draws the same batches and noise from epoch e + 1 on as a run never stopped.
- :func:`strip_training_state`: a finished checkpoint without what only resuming needs
  (optimizer and scheduler state triple its size), keeping the training run's provenance.
- :func:`check_task_fits`: a task network that judges single items is refused on scenes, and
  the reverse, by the registry's metadata.

Trainers on this scaffold: the codec family (:mod:`tosc.source_coding.learned.train`, data
parallel under torchrun), codec v3 (:mod:`tosc.source_coding.learned.train_conv`), Deep JSCC
and analog TOSC-SR (:mod:`tosc.jscc.train`) and every task network fitted with
:func:`fit_best_epoch` (:mod:`tosc.tasks.classifiers`, ``segmentation``, ``scenes``).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from .checkpoint import load_checkpoint, save_checkpoint
from .errors import ConfigError, check_config_fields

__all__ = ["TrainConfigBase", "TrainingRun", "fit_best_epoch", "fit_state_path", "epoch_seed",
           "strip_training_state", "check_task_fits", "task_fits", "task_judges", "task_trained_on"]


def epoch_seed(seed: int, epoch: int) -> int:
    """Seed (0 <= s < 2**63) of epoch ``epoch`` (0-based) of a run seeded ``seed``."""
    return (seed * 1_000_003 + epoch * 7919) % (2**63)


@dataclasses.dataclass
class TrainConfigBase:
    """Settings every trainer shares. Subclasses redeclare a field to change its default.

    dataset: a registered data set; epochs, batch_size (the global batch under torchrun), lr;
    seed: every random draw of the run derives from it; task: the training-time task network
    (never a held-out one); init_from: a checkpoint to warm-start from; train_images: only the
    first N training images (quick runs, tests); root: the data set's folder, if not the default.
    """

    dataset: str = "fashion-mnist"
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0
    task: str = "classifier-cnn"
    init_from: str | None = None
    train_images: int | None = None
    root: str | None = None

    def __post_init__(self) -> None:
        check_config_fields(self)  # wrong types and NaN/inf (which pass every `<= 0` test), first
        for name in ("epochs", "batch_size"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be a positive integer (got {getattr(self, name)!r})")
        if self.lr <= 0:
            raise ConfigError(f"lr must be a positive number (got {self.lr!r})")
        if self.train_images is not None and self.train_images <= 0:
            raise ConfigError(f"train_images must be positive (or absent: all), got {self.train_images}")
        self.check_task()
        self.check()

    def check_task(self) -> None:
        """Refuse a ``task`` that no training run may use (a held-out or unknown network); a
        trainer that accepts several networks overrides this."""
        from .tasks import check_training_task

        check_training_task(self.task)

    def check(self) -> None:
        """The subclass's own checks (called after the shared ones)."""

    def to_dict(self) -> dict[str, Any]:
        """The settings as stored in a checkpoint (JSON-able: tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        if not isinstance(d, dict):
            raise ConfigError(f"training settings must be a table (name = value), not a {type(d).__name__}")
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError(f"unknown training settings: {', '.join(sorted(unknown))}")
        return cls(**d)

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Every field's default, as :meth:`to_dict` writes it (no instance is built: a
        subclass's defaults need not pass its checks on their own)."""
        out = {}
        for f in dataclasses.fields(cls):
            value = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


class TrainingRun:
    """The bookkeeping of one training run that writes the checkpoint ``out``.

    kind, arch: the checkpoint's identity (see :mod:`tosc.checkpoint`); config: the
    :class:`TrainConfigBase` of the run; resume: continue from ``out`` if it exists;
    device / context: where to train and the torchrun process group (default: the open one,
    if any, else one process on ``device``); progress: show bars and per-epoch lines.
    """

    def __init__(self, out: str | os.PathLike, *, kind: str, arch: str, config: TrainConfigBase,
                 resume: bool = False, progress: bool = True, device: Any = "cpu", context: Any = None) -> None:
        from .distributed import current_context

        self.out = Path(out)
        self.kind, self.arch, self.config = kind, arch, config
        self.resume, self.progress = resume, progress
        self.ctx = context or current_context(device)
        self.device = self.ctx.device
        self._started = time.time()
        self.elapsed_before = 0.0  # training time of earlier, interrupted runs of this checkpoint

    @property
    def show(self) -> bool:
        """Whether this process shows progress (rank 0 of a run asked to)."""
        return self.progress and self.ctx.is_main

    def seed(self, epoch: int) -> int:
        return epoch_seed(self.config.seed, epoch)

    def read_resume(self) -> dict | None:
        """The checkpoint to continue from, read on rank 0 and handed to every rank; None when
        not resuming or when ``out`` does not exist yet. Raises :class:`ConfigError` when it was
        trained with other settings."""
        if not self.resume:
            return None

        def read() -> dict | None:
            if not self.out.exists():
                return None
            ckpt = load_checkpoint(self.out, kind=self.kind, arch=self.arch)
            saved = {**type(self.config).defaults(), **ckpt.get("config", {}).get("train", {})}
            current = self.config.to_dict()
            if saved != current:
                changed = sorted(k for k in saved.keys() | current.keys() if saved.get(k) != current.get(k))
                raise ConfigError(f"{self.out} was trained with other settings ({', '.join(changed)}); "
                                  "resume needs the same config")
            return ckpt

        ckpt = self.ctx.run_on_main(read)
        if ckpt is not None:
            state = ckpt.get("train_state", {})
            self.elapsed_before = float(state.get("train_time_s", ckpt.get("train_time_s", 0.0)) or 0.0)
        return ckpt

    def elapsed_s(self) -> float:
        """Training time of this checkpoint so far, over every resumed run."""
        return self.elapsed_before + time.time() - self._started

    def bar(self, iterable: Iterable | None = None, *, total: int | None = None, desc: str = "", initial: int = 0,
            mininterval: float = 1.0, leave: bool = False):
        from tqdm import tqdm

        return tqdm(iterable, total=total, desc=desc, initial=initial, disable=not self.show, leave=leave,
                    mininterval=mininterval)

    def say(self, line: str) -> None:
        if self.show:
            from tqdm import tqdm

            tqdm.write(line)

    def check_finite(self, model, epoch: int) -> None:
        """Stop with one clear error when the weights diverged (same verdict on every rank)."""
        import torch

        if not all(torch.isfinite(p).all() for p in model.parameters()):
            raise ConfigError(f"training diverged in epoch {epoch + 1}: weights became NaN or infinite (lr "
                              f"{self.config.lr:g} is likely too high); {self.out} keeps the last saved state, if any")

    def save(self, *, state_dict: dict, config: dict, train_state: dict, metrics: dict | None = None,
             **extra: Any) -> None:
        """Write the checkpoint atomically (rank 0 only): ``config`` gets the run's settings under
        ``train``; ``train_state`` (optimizer state, epoch, history) gets the accumulated
        training time, which is also stored at the top level."""
        if not self.ctx.is_main:
            return
        elapsed = self.elapsed_s()
        save_checkpoint(self.out, kind=self.kind, arch=self.arch, state_dict=state_dict,
                        config={**config, "train": self.config.to_dict()}, metrics=metrics,
                        train_state={**train_state, "train_time_s": elapsed}, train_time_s=elapsed, **extra)


def fit_best_epoch(model, n_train: int, batch_loss: Callable, validate: Callable[[], float], *, epochs: int,
                   batch_size: int, lr: float, generator, desc: str, score_name: str, progress: bool,
                   state_path: str | os.PathLike | None = None) -> float:
    """AdamW with a one-cycle schedule over shuffled batches of indices into the training set
    (``batch_loss(idx)`` gives the loss of one batch); after each epoch ``validate()`` scores the
    model (higher is better) and the best epoch's weights are loaded at the end. Returns its score.

    ``state_path``: after every epoch the whole state (weights, optimizer, schedule, the best
    epoch's weights and score, and ``generator``'s state, which draws the shuffles and the
    augmentation) is written there atomically, and a rerun continues from it: an interrupted
    fit ends with the weights of an uninterrupted one. The file is removed when the fit ends.
    """
    import torch
    from tqdm import tqdm

    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * math.ceil(n_train / batch_size))
    best: tuple[float, dict | None] = (-1.0, None)
    start = 0
    fingerprint = {"n_train": n_train, "epochs": epochs, "batch_size": batch_size, "lr": lr, "desc": desc}
    if state_path is not None and Path(state_path).exists():
        saved = load_checkpoint(state_path, kind="fit-state")
        if saved["config"] != fingerprint:
            raise ConfigError(f"{state_path} holds another fit ({saved['config']}); remove it to start over")
        ts = saved["train_state"]
        model.load_state_dict(saved["state_dict"])
        opt.load_state_dict(ts["optimizer"])
        sched.load_state_dict(ts["scheduler"])
        generator.set_state(ts["generator"])
        best, start = (ts["best_score"], ts["best_state"]), ts["epoch"]
    for epoch in range(start, epochs):
        model.train()
        order = torch.randperm(n_train, generator=generator)
        bar = tqdm(range(0, n_train, batch_size), desc=f"{desc} epoch {epoch + 1}/{epochs}", disable=not progress,
                   leave=False)
        for i in bar:
            loss = batch_loss(order[i:i + batch_size])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.set_postfix(loss=f"{loss.item():.4f}")
        score = validate()
        if progress:
            tqdm.write(f"{desc} epoch {epoch + 1}: {score_name} {score:.4f}")
        if score > best[0]:
            best = (score, {k: v.detach().clone() for k, v in model.state_dict().items()})
        if state_path is not None and epoch + 1 < epochs:
            save_checkpoint(state_path, kind="fit-state", arch=desc, state_dict=model.state_dict(),
                            config=fingerprint, train_state={
                                "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                                "generator": generator.get_state(), "best_score": best[0],
                                "best_state": best[1], "epoch": epoch + 1})
    model.load_state_dict(best[1])
    if state_path is not None:
        Path(state_path).unlink(missing_ok=True)
    return best[0]


def fit_state_path(out: str | os.PathLike) -> Path:
    """Where :func:`fit_best_epoch` keeps the resumable state of a fit that writes ``out``
    (beside it, so a rerun with the same output finds it)."""
    out = Path(out)
    return out.with_name(out.name + ".fit-state")


def task_trained_on(name: str) -> dict | None:
    """What the task network ``name`` was trained on, from the zoo's checkpoint index (no weights
    loaded): {"dataset", "shape" (C, H, W; None where not recorded)}, or None when its file is
    missing or unreadable (loading it then says what is wrong)."""
    from .checkpoint import checkpoint_index
    from .zoo import task_path

    path = task_path(name)
    info = checkpoint_index(path.parent).get(path.name) if path.parent.is_dir() else None
    if info is None or "error" in info:
        return None
    cfg = info.get("config") or {}
    hw = cfg.get("image_hw") or ([cfg["image_size"]] * 2 if "image_size" in cfg else None)
    shape = (int(cfg["in_channels"]), int(hw[0]), int(hw[1])) if "in_channels" in cfg and hw else None
    return {"dataset": cfg.get("dataset"), "shape": shape}


def task_judges(name: str, dataset: str, shape: tuple[int, int, int]) -> bool:
    """Whether the task network ``name`` was trained on images of ``dataset`` at ``shape`` (C, H, W):
    a Fashion-MNIST classifier's output on a user's photos, or on CIFAR-10, measures nothing (or
    fails in its first layer). A network whose file cannot be read counts as judging them, so that
    loading it says what is wrong."""
    seen = task_trained_on(name)
    if seen is None:
        return True
    return seen["dataset"] in (None, dataset) and seen["shape"] in (None, tuple(shape))


def check_task_fits(task: str, data) -> None:
    """Refuse a task network (or ensemble, names joined with "+") that judges another kind of
    image than ``data`` holds: a one-label classifier on scenes, by the registry's metadata, or
    any network on a data set or image size it was not trained on, by its checkpoint (it would
    fail deep inside its forward pass, or worse, run on images it never saw)."""
    from . import registry
    from .data.scenes import is_scene_set
    from .tasks.semantic import is_multilabel, task_names

    if is_multilabel(task) != is_scene_set(data):
        kind = "scenes" if is_multilabel(task) else "single items"
        fitting = registry.select("task", role="scene-training" if is_scene_set(data) else "training")
        raise ConfigError(f"task {task} judges {kind}; {data.name} holds "
                          f"{'scenes' if is_scene_set(data) else 'single items'} (its training task: "
                          f"{', '.join(fitting)})")
    shape = tuple(data.images.shape[1:])
    for name in task_names(task):
        if not task_judges(name, data.name, shape):
            seen = task_trained_on(name)
            raise ConfigError(
                f"task network {name} was trained on {seen['dataset']} images of "
                f"{'x'.join(map(str, seen['shape'] or ('?',)))}; {data.name} holds {'x'.join(map(str, shape))} "
                "images: train a task network on them (tosc.tasks.train_classifier) or set lambda_s to 0")


def task_fits(task: str, data) -> bool:
    """:func:`check_task_fits` as a yes or no: whether a trainer may report the task's scores on
    ``data`` when its loss does not use the task."""
    try:
        check_task_fits(task, data)
    except ConfigError:
        return False
    return True


def strip_training_state(path: str | os.PathLike, *, kind: str, arch: str | None = None) -> bool:
    """Rewrite the checkpoint at ``path`` (atomically) without its optimizer and scheduler state;
    the epoch count and per-epoch history stay, marked ``finished``. The versions and git commit
    stay those of the training run, not of whoever strips it. Returns False, changing nothing,
    when there is no optimizer state to drop (already stripped)."""
    ckpt = load_checkpoint(path, kind=kind, arch=arch)
    state = ckpt.get("train_state", {})
    if "optimizer" not in state:
        return False
    kept = {k: state[k] for k in ("epoch", "history", "log", "train_time_s") if k in state}
    ckpt["train_state"] = {**kept, "finished": True}
    save_checkpoint(path, **{k: v for k, v in ckpt.items() if k not in ("format", "format_version")})
    return True
