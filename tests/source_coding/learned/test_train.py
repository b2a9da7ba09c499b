import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from tosc.checkpoint import load_checkpoint
from tosc.errors import ConfigError
from tosc.source_coding.learned import LearnedCodec
from tosc.source_coding.learned.train import TrainConfig, train_codec

SMALL = dict(train_images=256, eval_images=64, batch_size=32, latent_dim=16, width=8, lambda_p=50.0)


def test_training_lowers_the_loss_and_writes_a_usable_checkpoint(tmp_path):
    metrics = train_codec(TrainConfig(epochs=3, **SMALL), tmp_path / "c.pt", progress=False)
    ckpt = load_checkpoint(tmp_path / "c.pt", kind="codec")
    history = ckpt["train_state"]["history"]
    assert len(history) == 3 and history[-1]["psnr_db"] > history[0]["psnr_db"]
    assert ckpt["variant"] == "mse-only" and metrics["bpp"] > 0
    codec = LearnedCodec.load(tmp_path / "c.pt")
    assert codec.config.latent_dim == 16


def test_resume_after_sigkill_gives_identical_weights(tmp_path):
    cfg = dict(epochs=4, **SMALL)
    reference = tmp_path / "reference.pt"
    train_codec(TrainConfig(**cfg), reference, progress=False)
    killed = tmp_path / "killed.pt"
    script = textwrap.dedent(f"""
        import torch
        torch.set_num_threads({torch.get_num_threads()})
        from tosc.source_coding.learned.train import TrainConfig, train_codec
        train_codec(TrainConfig(**{cfg!r}), {str(killed)!r}, progress=False)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.time() + 120
    while not killed.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    epochs_done = load_checkpoint(killed, kind="codec")["train_state"]["epoch"]
    assert epochs_done < 4, "the run finished before it could be killed; nothing was tested"
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    train_codec(TrainConfig(**cfg), killed, resume=True, progress=False)
    a = load_checkpoint(reference, kind="codec")
    b = load_checkpoint(killed, kind="codec")
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, rtol=0, atol=1e-6, msg=key)
    assert a["metrics"] == b["metrics"]


def test_resume_refuses_other_settings(tmp_path):
    train_codec(TrainConfig(epochs=1, **SMALL), tmp_path / "c.pt", progress=False)
    with pytest.raises(ConfigError, match="other settings"):
        train_codec(TrainConfig(epochs=1, **{**SMALL, "lambda_p": 3.0}), tmp_path / "c.pt", resume=True, progress=False)


@pytest.mark.parametrize("settings, message", [
    ({"lambda_p": -1.0}, ">= 0"),
    ({"lambda_p": 0.0, "lambda_s": 0.0}, "both be 0"),
    ({"epochs": 0}, "positive"),
])
def test_impossible_settings(settings, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**settings)


def test_unknown_setting_in_config_file():
    with pytest.raises(ConfigError, match="unknown training settings: lamda_p"):
        TrainConfig.from_dict({"lamda_p": 3})
