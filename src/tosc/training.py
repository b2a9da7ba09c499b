"""What every trainer in tosc shares, so that each keeps only its model, loss and evaluation.

- :func:`epoch_seed`: the seed of one epoch of a seeded run. A run resumed from its checkpoint
  after epoch e draws the same batches and noise from epoch e + 1 on as a run never stopped.
- :func:`strip_training_state`: a finished checkpoint without what only resuming needs
  (optimizer and scheduler state triple its size), keeping the training run's provenance.

The held-out guard lives with the task networks (:func:`tosc.tasks.check_training_task`), and
every training config calls it.
"""

from __future__ import annotations

import os

from .checkpoint import load_checkpoint, save_checkpoint

__all__ = ["epoch_seed", "strip_training_state"]


def epoch_seed(seed: int, epoch: int) -> int:
    """Seed (0 <= s < 2**63) of epoch ``epoch`` (0-based) of a run seeded ``seed``."""
    return (seed * 1_000_003 + epoch * 7919) % (2**63)


def strip_training_state(path: str | os.PathLike, *, kind: str, arch: str | None = None) -> bool:
    """Rewrite the checkpoint at ``path`` (atomically) without its optimizer and scheduler state;
    the epoch count and per-epoch history stay, marked ``finished``. The versions and git commit
    stay those of the training run, not of whoever strips it. Returns False, changing nothing,
    when there is no optimizer state to drop (already stripped)."""
    ckpt = load_checkpoint(path, kind=kind, arch=arch)
    state = ckpt.get("train_state", {})
    if "optimizer" not in state:
        return False
    ckpt["train_state"] = {"epoch": state.get("epoch"), "history": state.get("history", []), "finished": True}
    save_checkpoint(path, **{k: v for k, v in ckpt.items() if k not in ("format", "format_version")})
    return True
