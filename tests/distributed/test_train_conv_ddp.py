"""Codec v3 under torchrun (gloo, CPU) against the single-process loop: the same global batches,
flips, qualities and quantisation noise, so the same steps."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tosc.checkpoint import load_checkpoint
from tosc.distributed import DistContext
from tosc.errors import ConfigError
from tosc.source_coding.learned.train_conv import ConvTrainConfig, train_conv_codec

from .conftest import assert_same_weights, env, kill_when_written, one_rank_group, run, standalone

SCRIPT = str(Path(__file__).resolve().parents[2] / "scripts" / "train_codec_v3.py")
# 48 images, global batch 16 (3 steps an epoch), two ranks of 8; a checkpoint every 2 steps, so
# one falls inside an epoch. The semantic term (the shipped classifier's KL) is on
TINY = dict(width=8, latent_channels=8, hyper_channels=4, hyper_width=8, train_images=48, batch_size=16,
            checkpoint_every=2, lambda_s=0.05, semantic="kl")
GLOBAL = dict(mode="global", global_width=4, global_latent=8, global_levels=4, lambda_min=1.2, lambda_max=60)
# float summation order differs (one batch of 16 against two of 8): measured differences are
# 1e-6 (transform) and 3e-6 (global mode) after 6 steps
ATOL = 2e-4


def _script(nproc: int, out: Path, settings: dict, *extra: str) -> list[str]:
    sets = [f"{k}={json.dumps(v)}" for k, v in settings.items()]
    return standalone(nproc) + [SCRIPT, "--out", str(out), "--device", "cpu", *extra, "--set", *sets]


@pytest.mark.parametrize("mode", ["transform", "global"])
def test_ddp_code_path_with_one_rank_is_the_plain_loop_bit_for_bit(tmp_path, mode):
    cfg = ConvTrainConfig(epochs=1, **TINY, **(GLOBAL if mode == "global" else {}))
    train_conv_codec(cfg, tmp_path / "plain.pt", progress=False)
    with one_rank_group() as context:
        train_conv_codec(cfg, tmp_path / "ddp.pt", progress=False, context=context)
    assert_same_weights(tmp_path / "plain.pt", tmp_path / "ddp.pt", atol=0.0)


@pytest.mark.parametrize("mode", ["transform", pytest.param("global", marks=pytest.mark.slow)])
def test_two_processes_take_the_steps_of_one_with_the_same_global_batch(tmp_path, mode):
    settings = dict(epochs=2, **TINY, **(GLOBAL if mode == "global" else {}))
    train_conv_codec(ConvTrainConfig(**settings), tmp_path / "one.pt", progress=False)
    out = run(_script(2, tmp_path / "two.pt", settings))
    assert_same_weights(tmp_path / "one.pt", tmp_path / "two.pt", atol=ATOL)
    two = load_checkpoint(tmp_path / "two.pt", kind="codec")
    assert two["processes"] == 2 and two["train_state"]["epoch"] == 2
    # the logged running means are the global batch's, not rank 0's slice
    one = load_checkpoint(tmp_path / "one.pt", kind="codec")["train_state"]["log"]
    assert [(r["epoch"], r["step"]) for r in two["train_state"]["log"]] == [(r["epoch"], r["step"]) for r in one]
    for mine, theirs in zip(two["train_state"]["log"], one):
        assert mine.keys() == theirs.keys()
        for key in mine.keys() - {"epoch", "step"}:
            assert mine[key] == pytest.approx(theirs[key], rel=1e-4), key
    # only rank 0 writes and reports: one checkpoint, one result line, no temporary files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.pt", "two.pt"]
    assert out.stdout.count('"checkpoint"') == 1
    assert json.loads(out.stdout.strip().splitlines()[-1])["processes"] == 2


def test_a_global_batch_smaller_than_the_processes_is_refused_before_any_work(tmp_path):
    # (refused before any collective, so a context of two ranks needs no process group here)
    cfg = ConvTrainConfig(epochs=1, **{**TINY, "batch_size": 1})
    with pytest.raises(ConfigError, match="batch size 1 is smaller than the 2 processes sharing it"):
        train_conv_codec(cfg, tmp_path / "x.pt", progress=False, context=DistContext(0, 2, backend="gloo"))
    assert not (tmp_path / "x.pt").exists()


@pytest.mark.slow
def test_two_processes_killed_mid_epoch_resume_to_the_uninterrupted_weights(tmp_path):
    settings = dict(epochs=3, **{**TINY, "train_images": 320, "checkpoint_every": 3})
    run(_script(2, tmp_path / "whole.pt", settings))
    killed = tmp_path / "killed.pt"
    cmd = _script(2, killed, settings)
    kill_when_written(cmd, killed)
    state = load_checkpoint(killed, kind="codec")["train_state"]
    assert (state["epoch"], state["step"]) < (3, 0), "the run finished before it could be killed; nothing was tested"
    run(cmd)  # the same command resumes
    assert load_checkpoint(killed, kind="codec")["train_state"]["epoch"] == 3
    assert_same_weights(tmp_path / "whole.pt", killed, atol=0.0)


def test_script_refuses_an_unknown_device_in_one_line(tmp_path):
    proc = subprocess.run([sys.executable, SCRIPT, "--out", str(tmp_path / "x.pt"), "--device", "tpu"], env=env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("error: unknown device 'tpu'")
