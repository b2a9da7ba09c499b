"""Training killed with SIGKILL and resumed; files killed in the middle of being written.

`tosc train` runs in a subprocess on a small slice of Fashion-MNIST; it is killed in the middle
of an epoch (after one checkpoint exists), resumed with ``--resume``, and must end with the
weights and metrics of an uninterrupted run with the same seed. A second test forks a process
that does nothing but write checkpoints and results lines, kills it many times at random
moments (most land inside a write), and loads what is left.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tosc.checkpoint import load_checkpoint, save_checkpoint
from tosc.errors import CorruptFileError
from tosc.io import append_jsonl, read_jsonl
from tosc.source_coding.learned.train import TrainConfig, train_codec

# 768 images in batches of 32: 24 steps per epoch, long enough to kill inside one
SETTINGS = dict(train_images=768, eval_images=64, batch_size=32, latent_dim=16, width=8, lambda_p=50.0, epochs=2,
                seed=4)
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}


def _tosc(*args: str) -> list[str]:
    return [sys.executable, "-m", "tosc.cli", *args]


def _epoch(path: Path) -> int:
    return load_checkpoint(path, kind="codec")["train_state"]["epoch"] if path.exists() else 0


def _wait(condition, proc: subprocess.Popen, timeout_s: float = 300.0) -> None:
    deadline = time.time() + timeout_s
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the process ended (status {proc.returncode}) before it could be killed")
        if time.time() > deadline:
            proc.kill()
            raise AssertionError("timed out waiting for the training to reach the kill point")
        time.sleep(0.02)


def _same_weights(a: Path, b: Path) -> None:
    ca, cb = load_checkpoint(a, kind="codec"), load_checkpoint(b, kind="codec")
    assert ca["state_dict"].keys() == cb["state_dict"].keys()
    for key, value in ca["state_dict"].items():
        torch.testing.assert_close(cb["state_dict"][key], value, rtol=0, atol=1e-6, msg=key)
    ha, hb = ca["train_state"]["history"], cb["train_state"]["history"]
    assert len(ha) == len(hb) and all(x == pytest.approx(y, abs=1e-6) for x, y in zip(ha, hb))
    assert ca["metrics"] == pytest.approx(cb["metrics"], abs=1e-6)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory) -> tuple[Path, float]:
    """The uninterrupted run, in this process, and its time per epoch (s)."""
    path = tmp_path_factory.mktemp("reference") / "codec.pt"
    started = time.perf_counter()
    train_codec(TrainConfig(**SETTINGS), path, progress=False)
    return path, (time.perf_counter() - started) / SETTINGS["epochs"]


@pytest.fixture(scope="module")
def reference(reference_run) -> Path:
    return reference_run[0]


def _writes(path: Path) -> tuple:
    """Changes whenever the checkpoint is replaced (an atomic rename gives a new inode)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return ()
    return (st.st_ino, st.st_mtime_ns)


def test_sigkill_mid_epoch_then_resume_gives_the_uninterrupted_weights(tmp_path, reference_run):
    reference, epoch_s = reference_run
    config = tmp_path / "train.json"
    config.write_text(json.dumps(SETTINGS))
    out = tmp_path / "codec.pt"
    proc = subprocess.Popen(_tosc("train", "--codec", "family", "--config", str(config), "--out", str(out)), env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait(lambda: _writes(out) != (), proc)  # epoch 1 is checkpointed
    first = _writes(out)
    time.sleep(0.25 * epoch_s)  # inside epoch 2, judged by the reference run's pace
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert _writes(out) == first, "epoch 2 finished before the kill; nothing mid-epoch was tested"
    # only the partial epoch is lost: the checkpoint holds epoch 1, whole
    assert [h["epoch"] for h in load_checkpoint(out, kind="codec")["train_state"]["history"]] == [1]
    # resumed in this process (the slow test below resumes through the CLI too)
    train_codec(TrainConfig(**SETTINGS), out, resume=True, progress=False)
    assert _epoch(out) == SETTINGS["epochs"]
    _same_weights(reference, out)


@pytest.mark.slow
def test_repeated_random_kills_still_end_at_the_uninterrupted_weights(tmp_path):
    """Killed again and again, at a random moment after each new checkpoint (inside the next
    epoch's steps, its evaluation or its checkpoint write), and once during start-up; resumed
    through the CLI each time: the final checkpoint equals an uninterrupted run's."""
    settings_ = {**SETTINGS, "epochs": 5}
    reference = tmp_path / "reference.pt"
    started = time.perf_counter()
    train_codec(TrainConfig(**settings_), reference, progress=False)
    epoch_s = (time.perf_counter() - started) / settings_["epochs"]
    config = tmp_path / "train.json"
    config.write_text(json.dumps(settings_))
    out = tmp_path / "codec.pt"
    rng = random.Random(0)
    kills = 0
    for attempt in range(3 * settings_["epochs"]):
        args = ["train", "--codec", "family", "--config", str(config), "--out", str(out)]
        args += ["--resume"] if out.exists() else []
        proc = subprocess.Popen(_tosc(*args), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if attempt == 0:
            time.sleep(rng.uniform(0.5, 3.0))  # during imports and data loading
        else:
            before = _writes(out)
            deadline = time.time() + 600
            while _writes(out) == before and proc.poll() is None and time.time() < deadline:
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 1.2) * epoch_s)
        if proc.poll() is not None:
            assert proc.returncode == 0
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        if out.exists():
            load_checkpoint(out, kind="codec")  # whatever is there always loads
    else:
        raise AssertionError("training never finished")
    assert kills >= 3, "the run was hardly interrupted"
    assert _epoch(out) == settings_["epochs"]
    _same_weights(reference, out)


WEIGHTS = torch.randn(1_000_000, generator=torch.Generator().manual_seed(0))


def _write_forever(out: Path) -> None:
    """Write a 4 MB checkpoint, then append its record to results.jsonl; repeat until killed.

    Record ``i`` holds ``i``; the checkpoint written just before it holds ``step == i``. Starts
    after the last record already there, as a resumed run would.
    """
    results = out / "results.jsonl"
    step = read_jsonl(results)[-1]["step"] + 1 if results.exists() else 0
    while True:
        save_checkpoint(out / "model.pt", kind="codec", arch="write-loop", state_dict={"w": WEIGHTS + step},
                        config={}, step=step)
        append_jsonl(results, {"step": step, "payload": "x" * 2000})
        step += 1


def _kill_writes(out: Path, rounds: int, seed: int) -> int:
    """Fork a writer ``rounds`` times, SIGKILL it at a random moment, and load what is left.

    Returns how many kills landed inside a write (they left a temporary file behind).
    """
    rng = random.Random(seed)
    inside_a_write = 0
    for _ in range(rounds):
        delay = rng.uniform(0.01, 0.6)
        pid = os.fork()
        if pid == 0:  # the child writes until it is killed, and never returns into pytest
            try:
                _write_forever(out)
            finally:
                os._exit(1)
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, "the writer died on its own"
        leftovers = [p for p in out.iterdir() if p.name.endswith(".tmp")]
        inside_a_write += bool(leftovers)
        for p in leftovers:  # hidden temporary files, never at a name tosc reads
            assert p.name.startswith("."), p
            p.unlink()
        records = read_jsonl(out / "results.jsonl") if (out / "results.jsonl").exists() else []
        steps = [r["step"] for r in records]
        assert steps == list(range(len(steps))) and all(r["payload"] == "x" * 2000 for r in records)
        if (out / "model.pt").exists():
            ckpt = load_checkpoint(out / "model.pt", kind="codec")
            assert torch.equal(ckpt["state_dict"]["w"], WEIGHTS + ckpt["step"])
            # the checkpoint is written before its record: at most one step ahead of the results
            assert len(steps) in (ckpt["step"], ckpt["step"] + 1)
    return inside_a_write


def test_files_killed_while_being_written_always_load(tmp_path):
    inside = _kill_writes(tmp_path, rounds=20, seed=1)
    # the writer spends about 40% of its time with a temporary file open (measured: 4-5 of 12)
    assert inside >= 3, f"only {inside} of 20 kills landed inside a write"


@pytest.mark.slow
def test_files_killed_while_being_written_always_load_long(tmp_path):
    inside = _kill_writes(tmp_path, rounds=200, seed=2)
    assert inside >= 40, inside


def test_corrupt_resume_checkpoint_is_a_clear_error(tmp_path, capsys):
    from tosc.cli import main

    config = tmp_path / "train.json"
    config.write_text(json.dumps(SETTINGS))
    out = tmp_path / "codec.pt"
    out.write_bytes(b"PK\x03\x04" + os.urandom(500))
    assert main(["train", "--codec", "family", "--config", str(config), "--out", str(out), "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {out}: not a readable checkpoint") and err.count("\n") == 1
    with pytest.raises(CorruptFileError):
        train_codec(TrainConfig(**SETTINGS), out, resume=True, progress=False)
