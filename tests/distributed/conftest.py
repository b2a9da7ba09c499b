"""Launching tosc under torchrun from tests, and comparing checkpoints."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import torch
import torch.distributed as dist

from tosc.checkpoint import load_checkpoint
from tosc.distributed import DistContext

# train_images 97 with a global batch of 32: the last global batch holds one image, so one of
# two ranks gets an empty slice (the weighting and stand-in path are exercised)
TINY = dict(train_images=97, eval_images=40, batch_size=32, latent_dim=16, width=8, lambda_p=50.0, lambda_s=0.05)


def env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def torchrun_args(nproc: int, *launcher: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), *launcher]


def standalone(nproc: int) -> list[str]:
    return torchrun_args(nproc, "--standalone")


def write_config(path: Path, **settings) -> Path:
    path.write_text(json.dumps(settings))
    return path


def assert_same_weights(a: str | Path, b: str | Path, atol: float) -> None:
    """Every tensor of the two codec checkpoints agrees within ``atol`` (tables: exactly)."""
    sa, sb = (load_checkpoint(p, kind="codec")["state_dict"] for p in (a, b))
    assert sa.keys() == sb.keys()
    for key, value in sa.items():
        if value.is_floating_point():
            torch.testing.assert_close(sb[key], value, rtol=0, atol=atol, msg=key)


def max_difference(a: str | Path, b: str | Path) -> float:
    """Largest absolute difference over the float tensors of two codec checkpoints."""
    sa, sb = (load_checkpoint(p, kind="codec")["state_dict"] for p in (a, b))
    return max((sa[k] - sb[k]).abs().max().item() for k in sa if sa[k].is_floating_point() and sa[k].numel())


def run(cmd: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def kill_when_written(cmd: list[str], checkpoint: Path, timeout: float = 240) -> None:
    """Start the torchrun command ``cmd``; as soon as ``checkpoint`` exists, SIGKILL the launcher
    and all its workers at once (torchrun starts them in sessions of their own), as on a lost node."""
    proc = subprocess.Popen(cmd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while not checkpoint.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    workers = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGKILL)
    for worker in workers:
        worker.send_signal(signal.SIGKILL)
    proc.wait()
    _, alive = psutil.wait_procs(workers, timeout=30)
    assert workers and not alive


@contextlib.contextmanager
def one_rank_group():
    """A gloo process group of one rank in this process: the DDP code path without torchrun."""
    dist.init_process_group("gloo", rank=0, world_size=1, store=dist.HashStore())
    try:
        yield DistContext(backend="gloo")
    finally:
        dist.destroy_process_group()
