"""Running tosc under ``torchrun``: the launcher, the process group, devices and sampling.

``torchrun`` (``python -m torch.distributed.run``) starts one process per rank and gives each
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``. Without them a
command is a plain single process and nothing here touches ``torch.distributed``.

- :func:`resolve_device` turns ``auto|cpu|cuda[:N]`` into a device, with a clear error where
  CUDA is not there.
- :func:`distributed_session` opens the process group when launched (gloo on CPU, nccl on
  CUDA) and closes it; it yields a :class:`DistContext`, which is also what a single process
  gets, so a training loop is written once: every collective is a no-op for one process.
- :class:`GlobalBatchSampler` is the seeded shuffle. Every rank draws the *same* permutation
  from the epoch's seed and cuts the *same* global batches as the single-process loop; rank r
  takes the r-th contiguous slice of each. With the loss of each slice weighted by its share
  of the global batch and gradients averaged over ranks, N processes with per-rank batch B/N
  take the same steps as one process with batch B (up to float summation order).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable, Iterator, Sequence

import torch
import torch.distributed as dist

from .errors import ConfigError, ToscError

__all__ = ["DEVICE_CHOICES", "DistContext", "GlobalBatchSampler", "RankBatch", "launched_by_torchrun",
           "resolve_device", "distributed_session", "current_context", "shard_bounds"]

DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"
_LAUNCHER_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


def launched_by_torchrun(environ: dict[str, str] | None = None) -> bool:
    """True when ``torchrun`` (or another launcher speaking its protocol) started this process."""
    environ = os.environ if environ is None else environ
    return all(key in environ for key in _LAUNCHER_ENV)


def resolve_device(name: str | torch.device | None = "auto", local_rank: int = 0) -> torch.device:
    """``auto`` (CUDA if present, else CPU), ``cpu``, ``cuda`` (this rank's GPU) or ``cuda:N``."""
    text = str(name if name is not None else "auto").strip().lower()
    if text == "auto":
        return torch.device("cuda", local_rank % torch.cuda.device_count()) if torch.cuda.is_available() \
            else torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "cuda" or text.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {text}: no CUDA GPU is available to this process (torch {torch.__version__}, "
                              f"CUDA build {torch.version.cuda or 'none'}); use --device cpu or auto")
        try:
            device = torch.device(text)
        except RuntimeError:
            raise ConfigError(f"unknown device {name!r}: use {DEVICE_CHOICES}") from None
        index = local_rank if device.index is None else device.index
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device cuda:{index}: this machine has {torch.cuda.device_count()} GPU(s)")
        return torch.device("cuda", index)
    raise ConfigError(f"unknown device {name!r}: use {DEVICE_CHOICES}")


def shard_bounds(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """[lo, hi) of the rank-th of ``world_size`` contiguous slices of n items (sizes differ by <= 1)."""
    base, extra = divmod(n, world_size)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (1 if rank < extra else 0)


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: rank, world size, device. One process is ``DistContext()``."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    backend: str | None = None  # None: no process group

    @property
    def distributed(self) -> bool:
        return self.backend is not None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def _comm(self, tensor: torch.Tensor) -> torch.Tensor:
        # nccl reduces CUDA tensors only, gloo CPU tensors
        return tensor.to(self.device if self.backend == "nccl" else "cpu")

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """The sum over ranks of ``tensor`` (a new tensor on tensor's device)."""
        return self._all_reduce(tensor, "SUM")

    def all_reduce_max(self, tensor: torch.Tensor) -> torch.Tensor:
        return self._all_reduce(tensor, "MAX")

    def _all_reduce(self, tensor: torch.Tensor, op: str) -> torch.Tensor:
        if not self.distributed:
            return tensor.clone()
        buffer = self._comm(tensor.detach().clone())
        dist.all_reduce(buffer, op=getattr(dist.ReduceOp, op))
        return buffer.to(tensor.device)

    def average_grads_(self, params: Sequence[torch.nn.Parameter]) -> None:
        """Replace each parameter's gradient by its mean over ranks (what DDP does for the others)."""
        if not self.distributed:
            return
        for p in params:
            if p.grad is not None:
                p.grad.copy_(self.all_reduce_sum(p.grad) / self.world_size)

    def broadcast_(self, tensors: Sequence[torch.Tensor]) -> None:
        """Overwrite ``tensors`` in place with rank 0's values."""
        if not self.distributed:
            return
        with torch.no_grad():
            for t in tensors:
                buffer = self._comm(t.detach().clone())
                dist.broadcast(buffer, src=0)
                t.copy_(buffer.to(t.device))

    def run_on_main(self, fn: Callable[[], Any]) -> Any:
        """Call ``fn`` on rank 0 only and hand its result to every rank.

        A :class:`ToscError` raised there is raised on every rank, so bad input (a checkpoint
        trained with other settings, say) stops all of them with the same message instead of
        leaving the others waiting. Only rank 0 touches the file system, so other nodes need
        no shared disk.
        """
        if not self.distributed:
            return fn()
        box: list[Any] = [None]
        if self.is_main:
            try:
                box[0] = ("ok", fn())
            except ToscError as exc:
                box[0] = ("error", exc)
        dist.broadcast_object_list(box, src=0)
        status, value = box[0]
        if status == "error":
            raise value
        return value

    def gather_to_main(self, obj: Any) -> list[Any] | None:
        """Every rank's ``obj`` on rank 0 (in rank order); None on the other ranks."""
        if not self.distributed:
            return [obj]
        out: list[Any] | None = [None] * self.world_size if self.is_main else None
        dist.gather_object(obj, out, dst=0)
        return out

    def check_in_sync(self, tensors: Sequence[torch.Tensor], what: str = "parameters") -> None:
        """Raise if ranks hold different values (cheap: one float64 per tensor)."""
        if not self.distributed:
            return
        sums = torch.stack([t.detach().double().sum().cpu() for t in tensors])
        high = self.all_reduce_max(sums)
        low = -self.all_reduce_max(-sums)
        if not torch.equal(high, low):
            raise RuntimeError(f"ranks hold different {what}: the data-parallel replicas diverged")


def current_context(device: str | torch.device | None = "cpu") -> DistContext:
    """The context of an already open process group, or a single process on ``device``."""
    if not (dist.is_available() and dist.is_initialized()):
        return DistContext(device=resolve_device(device))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, resolve_device(device, local_rank),
                       dist.get_backend())


@contextlib.contextmanager
def distributed_session(device: str | torch.device | None = "auto", *, backend: str | None = None,
                        timeout_s: float = 1800.0) -> Iterator[DistContext]:
    """Open the process group when launched by torchrun; yield the :class:`DistContext`.

    Backend: nccl when this rank's device is CUDA, gloo otherwise (``backend`` overrides:
    an evaluation grid only exchanges Python objects and uses gloo even on GPUs).
    ``timeout_s`` bounds how long a collective waits for the slowest rank.
    """
    if not launched_by_torchrun():
        yield DistContext(device=resolve_device(device))
        return
    rank, world_size, local_rank = (int(os.environ[key]) for key in _LAUNCHER_ENV)
    device = resolve_device(device, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    backend = backend or ("nccl" if device.type == "cuda" else "gloo")
    opened = False
    if not dist.is_initialized():
        # env:// reads MASTER_ADDR / MASTER_PORT from the launcher
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
        opened = True
    try:
        yield DistContext(rank, world_size, local_rank, device, dist.get_backend())
    finally:
        if opened:
            dist.destroy_process_group()


@dataclass(frozen=True)
class RankBatch:
    """This rank's part of one global batch.

    indices: int64 [hi - lo], dataset indices of this rank's slice (may be empty when the
             last global batch has fewer items than ranks).
    lo, hi:  the slice's position inside the global batch.
    global_size: items in the global batch, over all ranks.
    """

    indices: torch.Tensor
    lo: int
    hi: int
    global_size: int

    @property
    def weight(self) -> float:
        """This slice's share of the global batch. A slice's mean loss times share x world size,
        averaged over ranks, is the mean loss of the whole global batch."""
        return 0.0 if self.global_size == 0 else (self.hi - self.lo) / self.global_size


def check_global_batch(global_batch: int, world_size: int) -> None:
    """Raise ConfigError when a global batch cannot give every process at least one item."""
    if global_batch < world_size:
        raise ConfigError(f"batch size {global_batch} is smaller than the {world_size} processes sharing it "
                          "(the batch size is global: each process takes batch_size / processes)")


class GlobalBatchSampler:
    """Seeded shuffle cut into global batches of ``global_batch``; each rank gets one slice.

    Epoch order is ``torch.randperm(n_items, generator=Generator().manual_seed(seed))``: the
    same on every rank and the same as the single-process loop, so a run can be resumed with
    another number of processes and still see the same global batches.
    """

    def __init__(self, n_items: int, global_batch: int, rank: int = 0, world_size: int = 1) -> None:
        check_global_batch(global_batch, world_size)
        if n_items <= 0:
            raise ConfigError("nothing to sample: the dataset is empty")
        self.n_items, self.global_batch, self.rank, self.world_size = n_items, global_batch, rank, world_size

    def __len__(self) -> int:
        return -(-self.n_items // self.global_batch)

    def order(self, seed: int) -> torch.Tensor:
        return torch.randperm(self.n_items, generator=torch.Generator().manual_seed(seed))

    def epoch(self, seed: int) -> Iterator[RankBatch]:
        order = self.order(seed)
        for step in range(len(self)):
            batch = order[step * self.global_batch:(step + 1) * self.global_batch]
            lo, hi = shard_bounds(len(batch), self.rank, self.world_size)
            yield RankBatch(batch[lo:hi], lo, hi, len(batch))

