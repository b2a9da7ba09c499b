"""The shipped analog models and the deep-jscc / tosc-sr-analog systems, on real test images."""

import json

import pytest
import torch

from tosc.channel import channel_uses
from tosc.cli import main
from tosc.errors import DataError
from tosc.io import load_image_arrays
from tosc.jscc.zoo import jscc_path, load_jscc
from tosc.metrics import psnr_db
from tosc.systems import build_system, system_names
from tosc.tasks import TRAINING_TASK, accuracy, load_task_network

ANALOG = ("deep-jscc", "tosc-sr-analog")


@pytest.fixture(scope="module")
def test_images():
    from tosc.data import load_dataset

    return load_dataset("fashion-mnist", split="test", limit=300)


def test_registered_as_analog_systems():
    for name in ANALOG:
        assert name in system_names()
        assert build_system(name).mode == "analog"


@pytest.mark.parametrize("name", ANALOG)
def test_shipped_checkpoint_loads_with_weights_only(name):
    ckpt = torch.load(jscc_path(name), map_location="cpu", weights_only=True)
    assert ckpt["kind"] == "jscc" and ckpt["variant"] == name
    assert "optimizer" not in ckpt["train_state"]  # shipped without optimizer state
    assert jscc_path(name).stat().st_size < 2_000_000
    train = ckpt["config"]["train"]
    assert train["task"] == TRAINING_TASK and (train["lambda_s"] > 0) == (name == "tosc-sr-analog")


@pytest.mark.parametrize("name", ANALOG)
def test_psnr_rises_with_snr(name, test_images):
    images = test_images.images[:200]
    system = build_system(name)
    k = channel_uses("1/8", (1, 28, 28))
    psnr = [psnr_db(system.transmit(images, snr_db=s, n_channel_uses=k, seed=0).received, images).mean().item()
            for s in (0.0, 10.0, 20.0)]
    assert psnr[0] + 1.0 < psnr[1] and psnr[1] + 0.5 < psnr[2], psnr
    assert psnr[0] > 15.0, psnr


def test_more_channel_uses_help(test_images):
    images = test_images.images[:200]
    system = build_system("deep-jscc")
    psnr = {k: psnr_db(system.transmit(images, snr_db=5.0, n_channel_uses=k, seed=0).received, images).mean().item()
            for k in (49, 196, 784)}  # 784: repetition of the 392 symbols
    assert psnr[49] < psnr[196] < psnr[784], psnr


def test_transmission_record_and_determinism(test_images):
    images = test_images.images[:16]
    system = build_system("deep-jscc")
    a = system.transmit(images, snr_db=3.0, n_channel_uses=98, channel="rayleigh-block", seed=7)
    b = system.transmit(images, snr_db=3.0, n_channel_uses=98, channel="rayleigh-block", seed=7)
    c = system.transmit(images, snr_db=3.0, n_channel_uses=98, channel="rayleigh-block", seed=8)
    assert torch.equal(a.received, b.received) and not torch.equal(a.received, c.received)
    assert a.ok.all() and a.fitted.all() and not a.decode_errors.any()
    assert (a.payload_bits == 0).all() and (a.channel_uses == 98).all() and (a.failed_codewords == 0).all()


def test_wrong_image_shape_is_a_clear_error():
    with pytest.raises(DataError, match="1x28x28"):
        build_system("tosc-sr-analog").transmit(torch.rand(2, 3, 32, 32), snr_db=5.0, n_channel_uses=192)


def test_semantic_term_raises_accuracy_at_low_cbr(test_images):
    images, labels = test_images.images, test_images.labels
    task = load_task_network(TRAINING_TASK)
    k = channel_uses("1/16", (1, 28, 28))
    acc, psnr = {}, {}
    for name in ANALOG:
        received = build_system(name).transmit(images, snr_db=5.0, n_channel_uses=k, seed=0).received
        acc[name], psnr[name] = accuracy(task, received, labels), psnr_db(received, images).mean().item()
    assert acc["tosc-sr-analog"] > acc["deep-jscc"] + 0.02, (acc, psnr)
    assert psnr["tosc-sr-analog"] > psnr["deep-jscc"] - 1.0, (acc, psnr)


def test_transmit_cli_writes_the_contract(tmp_path):
    out = tmp_path / "tx"
    assert main(["transmit", "--system", "deep-jscc", "--limit", "8", "--snr-db", "10", "--cbr", "1/16",
                 "--seed", "3", "--out", str(out)]) == 0
    arrays = load_image_arrays(out / "received.npz")
    assert arrays["images"].shape == (8, 1, 28, 28) and arrays["ok"].all()
    assert (arrays["payload_bits"] == 0).all() and (arrays["channel_uses"] == 49).all()
    record = json.loads((out / "result.json").read_text())
    assert record["system"] == "deep-jscc" and record["config"]["mode"] == "analog"
    assert record["rate"]["payload_bits_per_image"] == 0 and record["rate"]["channel_uses_per_image"] == 49
    assert record["metrics"]["failure_rate"] == 0 and record["metrics"]["psnr_db"] > 15
    assert main(["transmit", "--system", "deep-jscc", "--limit", "8", "--snr-db", "10", "--cbr", "0",
                 "--out", str(out)]) == 2
    assert main(["transmit", "--system", "deep-jscc", "--limit", "8", "--snr-db", "10", "--cbr", "1/1000",
                 "--out", str(out)]) == 2  # floor(784 / 1000) = 0 channel uses


def test_model_metadata(test_images):
    model, info = load_jscc("deep-jscc")
    assert model.k_max == 392 and info["config"]["model"]["image_hw"] == [28, 28]
