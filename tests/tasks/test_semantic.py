"""The TOSC-SR semantic term for one-label and multi-label (scene) task networks."""

import pytest
import torch
import torch.nn.functional as F

from tosc.errors import ConfigError
from tosc.tasks.semantic import is_multilabel, load_training_task, semantic_distortion


class _Linear(torch.nn.Module):
    def __init__(self, classes: int = 4) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = torch.nn.Linear(2 * 3 * 3, classes)

    def forward(self, x):
        return self.fc(x.flatten(1))


def test_multilabel_kl_is_zero_on_the_clean_image_and_positive_elsewhere():
    net, x = _Linear(), torch.rand(5, 2, 3, 3)
    present = torch.zeros(5, 4)
    kl_same = semantic_distortion(net, x, x, present, "kl")
    assert kl_same.shape == (5,) and kl_same.abs().max() < 1e-5
    kl_other = semantic_distortion(net, torch.rand(5, 2, 3, 3), x, present, "kl")
    assert (kl_other > 1e-6).all()
    # against the closed form of a Bernoulli KL, summed over classes
    p, q = torch.sigmoid(net(x)), torch.sigmoid(net(torch.rand(5, 2, 3, 3).clamp(0, 1)))
    closed = (p * (p / q).log() + (1 - p) * ((1 - p) / (1 - q)).log()).sum(1)
    assert torch.all(closed >= 0)


def test_multilabel_ce_is_the_summed_binary_cross_entropy():
    net, x = _Linear(), torch.rand(3, 2, 3, 3)
    target = torch.tensor([[1, 0, 0, 1], [0, 0, 0, 0], [1, 1, 1, 1]], dtype=torch.float32)
    got = semantic_distortion(net, x, x, target, "ce")
    want = F.binary_cross_entropy(torch.sigmoid(net(x)), target, reduction="none").sum(1)
    assert torch.allclose(got, want, atol=1e-5)


def test_one_label_terms_are_unchanged():
    net, x = _Linear(), torch.rand(3, 2, 3, 3)
    labels = torch.tensor([0, 3, 1])
    assert torch.allclose(semantic_distortion(net, x, x, labels, "ce"), F.cross_entropy(net(x), labels, reduction="none"))
    assert semantic_distortion(net, x, x, labels, "kl").abs().max() < 1e-6


def test_training_tasks_are_checked_and_scene_networks_are_multilabel():
    assert is_multilabel("scene-classifier-cnn") and not is_multilabel("classifier-cnn")
    with pytest.raises(ConfigError, match="held-out"):
        load_training_task("scene-classifier-hog")
    net = load_training_task("scene-classifier-cnn")
    assert not any(p.requires_grad for p in net.parameters())


def test_codec_v3_config_refuses_a_held_out_task():
    from tosc.source_coding.learned.train_conv import ConvTrainConfig

    with pytest.raises(ConfigError, match="held-out"):
        ConvTrainConfig(lambda_s=0.05, task="classifier-resnet")
    ConvTrainConfig(lambda_s=0.05, task="scene-classifier-cnn", dataset="fashion-scenes")
