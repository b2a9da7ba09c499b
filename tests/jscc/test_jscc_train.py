import pytest
import torch

import tosc.jscc.train as jt
import tosc.training as scaffold  # every trainer saves through the one scaffold
from tosc.checkpoint import load_checkpoint
from tosc.errors import ConfigError

TINY = dict(train_images=64, eval_images=8, epochs=2, batch_size=32, width=8, lambda_s=0.01)


class _Killed(Exception):
    pass


def test_interrupted_and_resumed_run_ends_with_identical_weights(tmp_path, monkeypatch):
    cfg = jt.JSCCTrainConfig(**TINY)
    jt.train_jscc(cfg, tmp_path / "straight.pt", progress=False)

    real_save = scaffold.save_checkpoint

    def save_then_die(*args, **kwargs):
        real_save(*args, **kwargs)
        raise _Killed  # the process dies right after the first epoch's checkpoint

    monkeypatch.setattr(scaffold, "save_checkpoint", save_then_die)
    with pytest.raises(_Killed):
        jt.train_jscc(cfg, tmp_path / "resumed.pt", progress=False)
    monkeypatch.setattr(scaffold, "save_checkpoint", real_save)
    assert load_checkpoint(tmp_path / "resumed.pt")["train_state"]["epoch"] == 1
    jt.train_jscc(cfg, tmp_path / "resumed.pt", resume=True, progress=False)

    a = load_checkpoint(tmp_path / "straight.pt", kind="jscc")
    b = load_checkpoint(tmp_path / "resumed.pt", kind="jscc")
    assert b["train_state"]["epoch"] == 2 and b["variant"] == "tosc-sr-analog"
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    assert a["metrics"]["psnr_db"] == b["metrics"]["psnr_db"]

    with pytest.raises(ConfigError, match="other settings"):
        jt.train_jscc(jt.JSCCTrainConfig(**{**TINY, "lambda_s": 0.02}), tmp_path / "resumed.pt", resume=True,
                      progress=False)


def test_fixed_cbr_training_draws_only_that_k():
    cfg = jt.JSCCTrainConfig(cbrs=(1 / 16,))
    gen = torch.Generator().manual_seed(0)
    assert {jt._draw_k(cfg, 392, 784, gen) for _ in range(50)} == {49}
    agile = {jt._draw_k(jt.JSCCTrainConfig(), 392, 784, gen) for _ in range(400)}
    assert {49, 98, 196, 392} <= agile and min(agile) >= 24 and max(agile) == 392 and len(agile) > 50


def test_training_on_a_device_this_machine_lacks_is_one_error():
    with pytest.raises(ConfigError, match="GPU|CUDA|cuda"):
        jt.train_jscc(jt.JSCCTrainConfig(**TINY), "never.pt", progress=False, device="cuda:7")
