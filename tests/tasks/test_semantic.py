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


def test_an_ensemble_term_is_the_mean_of_each_networks_own_term():
    from tosc.tasks.semantic import TaskEnsemble

    a, b = _Linear(), _Linear()
    with torch.no_grad():
        b.fc.weight.mul_(-2.0)
    x, x_hat, labels = torch.rand(4, 2, 3, 3), torch.rand(4, 2, 3, 3), torch.tensor([0, 1, 2, 3])
    ensemble = TaskEnsemble([a, b])
    for kind in ("ce", "kl"):
        want = (semantic_distortion(a, x_hat, x, labels, kind) + semantic_distortion(b, x_hat, x, labels, kind)) / 2
        assert torch.allclose(semantic_distortion(ensemble, x_hat, x, labels, kind), want)
    with pytest.raises(ConfigError):
        TaskEnsemble([])


def test_task_names_join_training_networks_and_never_a_held_out_one():
    from tosc import registry
    from tosc.source_coding.learned.train_conv import ConvTrainConfig
    from tosc.tasks import TRAINING_TASK, held_out_tasks, training_task
    from tosc.tasks.semantic import TaskEnsemble, task_names

    assert task_names("classifier-cnn") == ("classifier-cnn",)
    ens = "classifier-cnn+classifier-mlp-train+classifier-linear-train"
    assert task_names(ens) == ("classifier-cnn", "classifier-mlp-train", "classifier-linear-train")
    assert ConvTrainConfig(lambda_s=0.03, task=ens).task == ens
    # the extra networks are neither the default training network nor held-out judges
    assert training_task() == TRAINING_TASK == "classifier-cnn"
    extra = registry.select("task", role="training-extra")
    assert set(extra) == {"classifier-mlp-train", "classifier-linear-train"}
    assert not set(extra) & set(held_out_tasks(None))
    for bad, match in (("classifier-cnn+classifier-mlp", "held-out"),
                       ("classifier-cnn+classifier-pixel-linear", "held-out"),
                       ("classifier-cnn+classifier-cnn", "twice"), ("classifier-cnn+", "empty"),
                       ("classifier-cnn+scene-classifier-cnn", "mixes")):
        with pytest.raises(ConfigError, match=match):
            ConvTrainConfig(lambda_s=0.03, task=bad)
    net = load_training_task(ens)
    assert isinstance(net, TaskEnsemble) and len(net.networks) == 3
    assert not any(p.requires_grad for p in net.parameters())
    assert net(torch.rand(2, 1, 28, 28)).shape == (2, 10)


def test_kl_feature_adds_the_relative_distance_of_learnt_features_only():
    from tosc.tasks.semantic import FEATURE_WEIGHT

    x, x_hat, labels = torch.rand(6, 1, 28, 28), torch.rand(6, 1, 28, 28), torch.zeros(6, dtype=torch.long)
    cnn = load_training_task("classifier-cnn")
    for net in load_training_task("classifier-mlp-train+classifier-linear-train").networks:
        # no learnt features (an MLP; a linear model whose "features" only flatten the pixels): the KL alone
        assert torch.equal(semantic_distortion(net, x_hat, x, labels, "kl-feature"),
                           semantic_distortion(net, x_hat, x, labels, "kl"))
    assert semantic_distortion(cnn, x, x, labels, "kl-feature").abs().max() < 1e-5
    x_hat.requires_grad_(True)
    both = semantic_distortion(cnn, x_hat, x, labels, "kl-feature")
    kl = semantic_distortion(cnn, x_hat, x, labels, "kl")
    with torch.no_grad():
        clean, moved = cnn.features(x).flatten(1), cnn.features(x_hat).flatten(1)
        expected = FEATURE_WEIGHT * (moved - clean).pow(2).sum(1) / clean.pow(2).sum(1)
    assert torch.allclose(both - kl, expected, rtol=1e-4)
    both.sum().backward()
    assert x_hat.grad.abs().sum() > 0
