"""The held-out classifiers that are not CNNs (HOG + linear softmax, logistic regression on
pixels): shipped, frozen, accurate on clean images, never a training task, and their HOG is
skimage's."""

import numpy as np
import pytest
import torch
import torch.nn as nn

from tosc import registry
from tosc.data import load_dataset
from tosc.errors import ConfigError, DataError
from tosc.jscc.train import JSCCTrainConfig
from tosc.source_coding.learned.train import TrainConfig
from tosc.tasks import HELD_OUT_TASKS, accuracy, fit_linear_head, load_task_network, predict, train_classifier
from tosc.tasks.classical import HOG

LINEAR = [n for n in HELD_OUT_TASKS if registry.get("task", n).meta.get("fit") is fit_linear_head]


@pytest.fixture(scope="module")
def test_images():
    return load_dataset("fashion-mnist", "test", limit=500)


def test_both_pipelines_are_registered_held_out_classifiers():
    assert {type(registry.get("task", n).meta["network"](1, 10)).__name__ for n in LINEAR} >= {"HOGLinear",
                                                                                                "PixelLinear"}
    for name in LINEAR:
        assert registry.get("task", name).meta["role"] == "held-out"


@pytest.mark.parametrize("name", LINEAR)
def test_shipped_model_loads_frozen_without_convolutions(name, test_images):
    model = load_task_network(name)
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert not any(isinstance(m, nn.Conv2d) for m in model.modules())
    logits = model(test_images.images[:7])
    assert logits.shape == (7, 10) and torch.isfinite(logits).all()
    assert predict(model, test_images.images[:7]).shape == (7,)


@pytest.mark.parametrize("name", LINEAR)
def test_clean_accuracy_is_that_of_a_trained_model(name, test_images):
    # On these 500 images the shipped fits score 0.856 (pixels) and 0.898 (HOG); untrained ones
    # about 0.08, and with the folded bias dropped 0.78 (pixels) and 0.65 (HOG).
    assert accuracy(load_task_network(name), test_images.images, test_images.labels) > 0.8


@pytest.mark.parametrize("name", LINEAR)
@pytest.mark.parametrize("config", [TrainConfig, JSCCTrainConfig])
def test_refused_as_a_training_task(name, config):
    with pytest.raises(ConfigError, match="held-out"):
        config(task=name)


def test_hog_equals_skimage(test_images):
    from skimage.feature import hog

    images = torch.cat([test_images.images[:20], torch.rand(5, 1, 28, 28)]).double()
    ours = HOG()(images).numpy()
    theirs = np.stack([hog(im, orientations=9, pixels_per_cell=(4, 4), cells_per_block=(2, 2), block_norm="L2-Hys")
                       for im in images[:, 0].numpy()])
    assert ours.shape == theirs.shape == (25, 1296)
    np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_hog_rejects_colour_and_tiny_images():
    with pytest.raises(DataError, match="N x 1 x H x W"):
        HOG()(torch.zeros(2, 3, 28, 28))
    with pytest.raises(DataError, match="smaller than one HOG block"):
        HOG()(torch.zeros(2, 1, 6, 28))


def test_fit_folds_the_standardisation_into_the_linear_layer(tmp_path, monkeypatch):
    """A short fit on a small training set: the written model, which has no standardisation step,
    predicts as the standardised head did (its test accuracy is recomputed from the file)."""
    real = load_dataset

    def small(name, split, **kw):
        return real(name, split, **{**kw, "limit": 2000})

    monkeypatch.setattr("tosc.tasks.classifiers.load_dataset", small)
    out = tmp_path / "pixel.pt"
    metrics = train_classifier(LINEAR[-1], epochs=2, batch_size=200, lr=1e-2, out=out, progress=False)
    model = load_task_network(LINEAR[-1], path=out)
    test = small("fashion-mnist", "test")
    assert accuracy(model, test.images, test.labels) == pytest.approx(metrics["test_accuracy"])
    assert metrics["validation_accuracy"] > 0.6 and metrics["test_accuracy"] > 0.6
