"""Task networks' roles come from the registry: one training network, held-out ones that no
training run may use (checked in one place for the codec and JSCC trainers alike), and a
network that fails to load is an error wherever results are scored, never a column of NaN."""

import pytest
import torch

from tosc import registry
from tosc.errors import ConfigError, CorruptFileError
from tosc.evaluation import point
from tosc.jscc.train import JSCCTrainConfig
from tosc.source_coding.learned.train import TrainConfig
from tosc.tasks import HELD_OUT_TASKS, SEGMENTATION_TASK, TRAINING_TASK, build_classifier, held_out_tasks


def test_roles_are_read_from_the_registry():
    assert registry.select("task", role="training") == [TRAINING_TASK]
    assert HELD_OUT_TASKS == held_out_tasks() == tuple(registry.select("task", role="held-out", output="class"))
    assert held_out_tasks("mask") == (SEGMENTATION_TASK,)
    assert TRAINING_TASK not in held_out_tasks(None) and len(HELD_OUT_TASKS) >= 2
    for name in registry.select("task", output="class"):  # every classifier builds from its entry alone
        assert build_classifier(name, 1, 10, (28, 28))(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize("config", [TrainConfig, JSCCTrainConfig])
@pytest.mark.parametrize("task", [*held_out_tasks(None)])
def test_no_trainer_accepts_a_held_out_network(config, task):
    with pytest.raises(ConfigError, match="held-out"):
        config(task=task)


@pytest.mark.parametrize("config", [TrainConfig, JSCCTrainConfig])
def test_trainers_accept_the_training_network_and_reject_unknown_ones(config):
    assert config().task == TRAINING_TASK
    with pytest.raises(Exception, match="unknown task"):
        config(task="classifier-vit")


def test_a_held_out_network_that_does_not_load_is_an_error_not_nan(monkeypatch):
    broken = HELD_OUT_TASKS[-1]
    real = point.load_task_network

    def load(name, *args, **kwargs):
        if name == broken:
            raise CorruptFileError(f"{name}.pt: not a readable checkpoint")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(point, "load_task_network", load)
    monkeypatch.setattr(point, "_TASKS", {})
    images = torch.rand(4, 1, 28, 28)
    with pytest.raises(CorruptFileError, match=broken):
        point.score_images(images, images, torch.arange(4))
