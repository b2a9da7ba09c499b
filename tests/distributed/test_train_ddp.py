"""Data-parallel training under torchrun (gloo, CPU) against the single-process loop."""

import os
import shutil
import subprocess

import pytest
import torch

from tosc.checkpoint import load_checkpoint
from tosc.source_coding.learned.train import TrainConfig, train_codec

from .conftest import (TINY, assert_same_weights, env, free_port, kill_when_written, max_difference, one_rank_group,
                       run, standalone, torchrun_args, write_config)

# float summation order differs (one mean over 32 images vs two means over 16): measured
# differences are about 1e-5 after 6 Adam steps
ATOL = 2e-4


def test_ddp_code_path_with_one_rank_is_the_plain_loop_bit_for_bit(tmp_path):
    """One rank through DDP, the global-batch noise and the rank reductions changes nothing."""
    cfg = TrainConfig(epochs=1, **TINY)
    train_codec(cfg, tmp_path / "plain.pt", progress=False)
    with one_rank_group() as context:
        train_codec(cfg, tmp_path / "ddp.pt", progress=False, context=context)
    assert_same_weights(tmp_path / "plain.pt", tmp_path / "ddp.pt", atol=0.0)
    a, b = (load_checkpoint(tmp_path / n, kind="codec") for n in ("plain.pt", "ddp.pt"))
    assert a["metrics"]["bpp"] == b["metrics"]["bpp"]


def test_two_processes_take_the_steps_of_one_with_the_same_global_batch(tmp_path):
    cfg = dict(epochs=2, **TINY)
    reference = train_codec(TrainConfig(**cfg), tmp_path / "one.pt", progress=False)
    config = write_config(tmp_path / "cfg.json", **cfg)
    out = run(standalone(2) + ["-m", "tosc", "train", "--codec", "family", "--config", str(config), "--out",
                               str(tmp_path / "two.pt"),
                               "--device", "cpu"])
    assert_same_weights(tmp_path / "one.pt", tmp_path / "two.pt", atol=ATOL)
    two = load_checkpoint(tmp_path / "two.pt", kind="codec")
    assert two["processes"] == 2
    # metrics are reduced over ranks: validation bytes and accuracy exactly, means closely
    assert two["metrics"]["bpp"] == pytest.approx(reference["bpp"], rel=1e-3)
    for key in ("psnr_db", "train_loss", "train_bpp", "train_mse", "train_ce", "train_accuracy"):
        assert two["metrics"][key] == pytest.approx(reference[key], rel=1e-3), key
    # only rank 0 writes: one checkpoint, one result line, no temporary files left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cfg.json", "one.pt", "two.pt"]
    assert out.stdout.count('"checkpoint"') == 1


@pytest.mark.slow
def test_two_processes_resume_after_sigkill(tmp_path):
    cfg = dict(epochs=4, **{**TINY, "train_images": 480})
    config = write_config(tmp_path / "cfg.json", **cfg)
    killed = tmp_path / "killed.pt"

    def train(out):
        return standalone(2) + ["-m", "tosc", "train", "--codec", "family", "--config", str(config), "--out", str(out),
                                "--device", "cpu"]

    run(train(tmp_path / "whole.pt"))
    cmd = train(killed)
    kill_when_written(cmd, killed)
    epochs_done = load_checkpoint(killed, kind="codec")["train_state"]["epoch"]
    assert epochs_done < 4, "the run finished before it could be killed; nothing was tested"
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    # global batches do not depend on the process count, so one process may take over: it ends
    # no further from the 2-process run than a 1-process run does (float differences grow
    # over 60 steps, to about 1e-3, so a fixed tolerance would not do)
    shutil.copy(killed, tmp_path / "taken-over.pt")
    train_codec(TrainConfig(**cfg), tmp_path / "taken-over.pt", resume=True, progress=False)
    history = load_checkpoint(tmp_path / "taken-over.pt", kind="codec")["train_state"]["history"]
    assert history[:epochs_done] == load_checkpoint(killed, kind="codec")["train_state"]["history"]  # resumed
    train_codec(TrainConfig(**cfg), tmp_path / "one.pt", progress=False)
    one = max_difference(tmp_path / "whole.pt", tmp_path / "one.pt")
    assert 0 < max_difference(tmp_path / "whole.pt", tmp_path / "taken-over.pt") <= 2 * one
    run(cmd + ["--resume"])
    assert load_checkpoint(killed, kind="codec")["train_state"]["epoch"] == 4
    # the same two processes, interrupted or not, compute the same sums in the same order
    assert_same_weights(tmp_path / "whole.pt", killed, atol=0.0)


@pytest.mark.slow
def test_two_nodes_on_localhost_train_together(tmp_path):
    """Two torchrun invocations meeting at a c10d rendezvous, as two machines would."""
    cfg = dict(epochs=1, **TINY)
    train_codec(TrainConfig(**cfg), tmp_path / "one.pt", progress=False)
    config = write_config(tmp_path / "cfg.json", **cfg)
    port = free_port()
    procs = []
    for node in (0, 1):
        launcher = torchrun_args(1, "--nnodes", "2", "--node_rank", str(node), "--rdzv_backend", "c10d",
                                 "--rdzv_endpoint", f"localhost:{port}", "--rdzv_id", "tosc-test")
        procs.append(subprocess.Popen(launcher + ["-m", "tosc", "train", "--codec", "family", "--config", str(config),
                                                  "--out",
                                                  str(tmp_path / "nodes.pt"), "--device", "cpu"],
                                      env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0, err[-3000:]
    assert sum(stdout.count('"checkpoint"') for stdout, _ in results) == 1
    assert load_checkpoint(tmp_path / "nodes.pt", kind="codec")["processes"] == 2
    assert_same_weights(tmp_path / "one.pt", tmp_path / "nodes.pt", atol=ATOL)
