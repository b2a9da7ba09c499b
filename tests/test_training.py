"""The pieces every trainer shares (tosc.training): one epoch-seed formula and one way to
finish a checkpoint."""

import torch

from tosc.checkpoint import load_checkpoint, save_checkpoint
from tosc.jscc import train as jscc_train
from tosc.source_coding.learned import train as codec_train
from tosc.training import epoch_seed, strip_training_state


def test_every_trainer_uses_the_one_epoch_seed():
    assert jscc_train.epoch_seed is epoch_seed and codec_train._epoch_seed is epoch_seed
    seeds = {epoch_seed(seed, epoch) for seed in range(5) for epoch in range(50)}
    assert len(seeds) == 250 and all(0 <= s < 2**63 for s in seeds)


def test_stripping_drops_resume_state_and_keeps_the_training_runs_provenance(tmp_path):
    path = tmp_path / "model.pt"
    weights = {"w": torch.arange(4.0)}
    state = {"optimizer": {"state": {0: torch.zeros(1000)}}, "scheduler": {}, "epoch": 3, "history": [{"loss": 1.0}]}
    save_checkpoint(path, kind="jscc", arch="deep-jscc", state_dict=weights, config={"epochs": 3},
                    train_state=state, versions={"torch": "0.0-training-run"}, git_commit="abc123")
    size = path.stat().st_size
    assert strip_training_state(path, kind="jscc", arch="deep-jscc")
    ckpt = load_checkpoint(path, kind="jscc")
    assert ckpt["train_state"] == {"epoch": 3, "history": [{"loss": 1.0}], "finished": True}
    assert ckpt["versions"] == {"torch": "0.0-training-run"} and ckpt["git_commit"] == "abc123"
    assert torch.equal(ckpt["state_dict"]["w"], weights["w"]) and path.stat().st_size < size
    assert not strip_training_state(path, kind="jscc")  # nothing left to drop: unchanged
