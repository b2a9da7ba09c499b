"""The analog (Deep JSCC / TOSC-SR) trainer under torchrun (gloo, CPU) against the single-process
loop: the same global batches, SNRs, k and channel noise, so the same steps."""

import json

import pytest
import torch

from tosc.checkpoint import load_checkpoint
from tosc.distributed import RankBatch
from tosc.channel import AnalogChannel
from tosc.jscc.train import JSCCTrainConfig, _RankSliceChannel, train_jscc

from .conftest import one_rank_group, run, standalone, write_config

# 97 images, global batch 32: the last batch holds one image, so one of two ranks computes the
# weight-0 stand-in. The semantic term (the shipped classifier's cross-entropy) is on
TINY = dict(train_images=97, eval_images=40, batch_size=32, width=8, lambda_s=0.01)
# float summation order differs (one mean over 32 images against two over 16)
ATOL = 2e-4


def _weights(path):
    return load_checkpoint(path, kind="jscc")["state_dict"]


def _assert_close(a, b, atol):
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for key, value in wa.items():
        torch.testing.assert_close(wb[key], value, rtol=0, atol=atol, msg=key)


@pytest.mark.parametrize("kind", ["awgn", "rayleigh-fast", "rayleigh-block"])
def test_a_ranks_slice_of_the_channel_is_the_single_process_rows_bit_for_bit(kind):
    channel = AnalogChannel(kind, normalize=False)
    z = torch.randn(10, 24, dtype=torch.complex64)
    whole = channel.transmit(z, 7.0, torch.Generator().manual_seed(3))
    sliced = _RankSliceChannel(channel)
    for lo, hi in ((0, 5), (5, 10), (3, 4)):
        sliced.batch = RankBatch(torch.arange(lo, hi), lo, hi, 10)
        part = sliced.transmit(z[lo:hi], 7.0, torch.Generator().manual_seed(3))
        for name in ("y", "h", "n0"):
            assert torch.equal(getattr(part, name), getattr(whole, name)[lo:hi]), name


def test_ddp_code_path_with_one_rank_is_the_plain_loop_bit_for_bit(tmp_path):
    cfg = JSCCTrainConfig(epochs=1, channel="rayleigh-fast", **TINY)
    train_jscc(cfg, tmp_path / "plain.pt", progress=False)
    with one_rank_group() as context:
        train_jscc(cfg, tmp_path / "ddp.pt", progress=False, context=context)
    _assert_close(tmp_path / "plain.pt", tmp_path / "ddp.pt", atol=0.0)


def test_two_processes_take_the_steps_of_one_with_the_same_global_batch(tmp_path):
    settings = dict(epochs=2, **TINY)
    reference = train_jscc(JSCCTrainConfig(**settings), tmp_path / "one.pt", progress=False)
    config = write_config(tmp_path / "cfg.json", **settings)
    out = run(standalone(2) + ["-m", "tosc", "train", "--codec", "jscc", "--config", str(config), "--out",
                               str(tmp_path / "two.pt"), "--device", "cpu"])
    _assert_close(tmp_path / "one.pt", tmp_path / "two.pt", atol=ATOL)
    two = load_checkpoint(tmp_path / "two.pt", kind="jscc")
    assert two["processes"] == 2 and two["train_state"]["epoch"] == 2
    assert two["metrics"]["psnr_db"] == pytest.approx(reference["psnr_db"], abs=0.01)
    # only rank 0 writes and reports: one checkpoint, one result line, no temporary files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cfg.json", "one.pt", "two.pt"]
    assert out.stdout.count('"checkpoint"') == 1
    assert json.loads(out.stdout.strip().splitlines()[-1])["processes"] == 2
