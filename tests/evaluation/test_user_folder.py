"""A user's own images (the folder data set, --root) through transmit and evaluate: the data set's
directory reaches every place that loads it (the images, the failed-image fallback), and the
Fashion-MNIST classifiers do not pretend to judge other images."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from tosc.cli import main
from tosc.evaluation import item_task_networks
from tosc.io import load_image_arrays
from tosc.tasks import HELD_OUT_TASKS, TRAINING_TASK


@pytest.fixture(scope="module")
def rgb_folder(tmp_path_factory):
    """Smooth RGB images of 40 x 32 in two class folders (enough for a non-empty test split)."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:40, 0:32] / 40.0
    for label in ("cats", "dogs"):
        (root / label).mkdir()
        for i in range(6):
            a, b, c = rng.random(3)
            image = np.stack([np.sin(3 * a * xx + yy), np.cos(2 * b * yy), (xx * c + yy) / 2], -1)
            Image.fromarray((255 * (image - image.min()) / np.ptp(image)).astype(np.uint8)).save(root / label / f"{i}.png")
    return root


def test_only_the_networks_trained_for_a_data_set_judge_its_images():
    assert item_task_networks("fashion-mnist", (1, 28, 28)) == (TRAINING_TASK, *HELD_OUT_TASKS)
    assert item_task_networks("folder", (1, 28, 28)) == ()  # other grey 28 x 28 images: other classes
    assert item_task_networks("fashion-mnist", (3, 32, 40)) == ()


@pytest.mark.parametrize("system", ["webp-payload+ldpc", "tosc-sr-v3-scenes-rgb+ldpc"])
def test_transmit_sends_a_folder_of_rgb_images(system, rgb_folder, tmp_path, capsys):
    out = tmp_path / "tx"
    assert main(["transmit", "--system", system, "--dataset", "folder", "--root", str(rgb_folder),
                 "--snr-db", "10", "--cbr", "1/8", "--out", str(out)]) == 0
    assert "accuracy not measured" in capsys.readouterr().out
    arrays = load_image_arrays(out / "received.npz")
    assert arrays["images"].shape[1:] == (3, 40, 32) and "predictions" not in arrays
    record = json.loads((out / "result.json").read_text())
    assert record["metrics"]["psnr_db"] > 15 and not any(k.startswith("accuracy") for k in record["metrics"])
    assert record["config"]["task_networks"] == []


def test_failed_images_get_the_folders_own_mean(rgb_folder):
    from tosc.evaluation.grid import build_for
    from tosc.data import load_dataset

    data = load_dataset("folder", "test", root=str(rgb_folder))
    tx = build_for("jpeg+ldpc", "folder", root=str(rgb_folder)).transmit(data.images, snr_db=0.0, n_channel_uses=4)
    assert not tx.fitted.any()  # 4 channel uses carry no JPEG file
    mean = load_dataset("folder", "train", root=str(rgb_folder)).images.mean(0)
    assert torch.allclose(tx.received[0], mean)


def test_evaluate_takes_the_data_sets_root(rgb_folder, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["evaluate", "--dataset", "folder", "--root", str(rgb_folder), "--systems", "webp-payload+ldpc",
                 "--snr-db", "10", "--cbr", "1/8", "--cbr", "1/4", "--jobs", "1", "--out", str(out)]) == 0
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(records) == 2 and all(r["dataset"] == "folder" and r["n_images"] > 0 for r in records)
    assert (out / "report.html").exists()


def test_default_systems_of_a_folder_include_the_learned_codecs_that_code_it(rgb_folder):
    from tosc.evaluation.compat import default_systems

    chosen = default_systems("folder", root=str(rgb_folder), say=None)
    assert {"tosc-sr-v3-scenes-rgb+ldpc", "mse-only-v3-scenes-rgb+ldpc", "webp+ldpc", "webp-payload+ldpc"} <= set(chosen)
    assert "tosc-sr+ldpc" not in chosen  # grey codecs: they cannot code colour images
    assert "tosc-sr-v3-scenes-rgb+ldpc" not in default_systems("fashion-mnist", say=None)


@pytest.mark.parametrize("system, shape, fragment", [
    ("vvc-payload+ldpc", (1, 29, 45), "images with sides of 2 to 8192 pixels, width and height even"),
    ("tosc-sr+ldpc", (1, 12, 14), "1-channel images with sides of at least 16 pixels"),
    ("webp+ldpc", (3, 20000, 20), "images with sides of 1 to 16383 pixels"),
])
def test_a_system_refuses_sizes_its_coder_cannot_take_before_any_work(system, shape, fragment):
    from tosc.errors import IncompatibleSystemError
    from tosc.evaluation.compat import check_codes

    with pytest.raises(IncompatibleSystemError, match=fragment):
        check_codes(system, shape)
    check_codes(system, (shape[0], 32, 32))  # an even size every one of them codes


def test_default_systems_of_odd_sized_grey_images_leave_vvc_out(tmp_path):
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for i in range(5):
            Image.fromarray(np.full((29, 45), 40 * i, np.uint8)).save(tmp_path / label / f"{i}.png")
    said = []
    chosen = default_systems_for(tmp_path, said)
    assert "vvc-payload+ldpc" not in chosen and {"tosc-sr+ldpc", "webp-payload+ldpc"} <= set(chosen)
    assert any("vvc-payload+ldpc" in line and "width and height even" in line for line in said)


def default_systems_for(root, said):
    from tosc.evaluation.compat import default_systems

    return default_systems("folder", root=str(root), say=said.append)


def test_training_on_a_folder_uses_the_task_network_only_where_it_judges_the_images(rgb_folder, tmp_path):
    from tosc.data import load_dataset
    from tosc.errors import ConfigError
    from tosc.source_coding.learned.train import TrainConfig, train_codec
    from tosc.source_coding.learned.train_conv import ConvTrainConfig, train_conv_codec
    from tosc.training import check_task_fits, task_fits

    photos = load_dataset("folder", "train", root=str(rgb_folder))
    assert task_fits(TRAINING_TASK, load_dataset("fashion-mnist", "validation", limit=2))
    assert not task_fits(TRAINING_TASK, photos)
    with pytest.raises(ConfigError, match="classifier-cnn was trained on fashion-mnist images of 1x28x28; "
                                          "folder holds 3x40x32 images"):
        check_task_fits(TRAINING_TASK, photos)
    with pytest.raises(ConfigError, match="was trained on fashion-mnist images"):  # a semantic term needs it
        train_conv_codec(ConvTrainConfig(dataset="folder", root=str(rgb_folder), lambda_s=0.1, epochs=1,
                                         batch_size=4, width=8, latent_channels=8, hyper_channels=4, hyper_width=8),
                         tmp_path / "v3.pt", progress=False)
    # MSE-only: trains, and reports no accuracy of a classifier that never saw such images
    metrics = train_codec(TrainConfig(dataset="folder", root=str(rgb_folder), lambda_p=40.0, epochs=1,
                                      batch_size=4), tmp_path / "family.pt", progress=False)
    assert metrics["psnr_db"] > 0 and "accuracy" not in metrics
